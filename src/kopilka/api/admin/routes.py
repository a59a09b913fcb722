"""Admin API v1 (docs/admin-api.md): thin handlers over ``services.programs``.

Every call carries an admin token (``Authorization: Bearer <key>``, made with
``kopilka admin token add``); the token's name is the author of the versions it makes.
Bodies are read raw and validated here, so that a bad program document is answered with
``invalid_program`` listing every problem by its path inside the document.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from kopilka.api.admin.common import ok as _ok
from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.schemas import RollbackIn, SimulateIn, to_simulation
from kopilka.domain.roles import Perm
from kopilka.domain.rules.model import ProgramDoc, Promotion
from kopilka.services import admin, program_profile, programs
from kopilka.services import program_editor as editor
from kopilka.services.errors import ServiceError

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])
JSON = "application/json"
SCHEMAS: tuple[type[BaseModel], ...] = (ProgramDoc, Promotion, SimulateIn, RollbackIn)
PROBLEM = {"description": "problem details", "content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = {s: PROBLEM for s in (400, 401, 403, 404, 409, 422)}
SECURITY: dict[str, Any] = {"security": [{"adminToken": []}]}


async def _auth(
    request: Request, code: str | None = None, perm: Perm = Perm.PROGRAMS_READ
) -> admin.AdminToken:
    """The calling token, refused (403) if its role lacks ``perm`` or the program is not
    in its scope."""
    token = await admin.check_token(_rt(request), request.headers.get("authorization", ""))
    token.actor().require(perm)
    if code is not None:
        token.check_program(code)
    return token


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _json(request: Request) -> Any:
    """The body as JSON, decimals exact; a body that is not JSON is 400 malformed_json."""
    raw = await request.body()
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise ServiceError("malformed_json", "the body is not valid JSON") from None


def _doc_body(schema: str) -> dict[str, Any]:
    return {
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        },
    }


def _strict(model: type[BaseModel], data: Any) -> Any:
    """Strict models validate JSON text (decimals as numbers or strings)."""
    return model.model_validate_json(json.dumps(data, default=str))


@router.get("/programs", responses=ERRORS, openapi_extra=SECURITY, summary="List programs")
async def list_programs(request: Request) -> Response:
    token = await _auth(request)
    rows = await programs.list_programs(_rt(request))
    return _ok(
        [
            {"code": p.code, "name": p.name, "version": p.version}
            for p in rows
            if token.program_code is None or p.code == token.program_code
        ]
    )


@router.get(
    "/programs/{code}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The current program document and its version",
)
async def get_program(request: Request, code: str) -> Response:
    await _auth(request, code)
    version, doc = await programs.current(_rt(request), code)
    return _ok({"code": code, "version": version, "document": doc})


@router.put(
    "/programs/{code}",
    responses={**ERRORS, 201: {"description": "the program was created (version 1)"}},
    openapi_extra=_doc_body("ProgramDoc"),
    summary="Replace the whole document (a new version; creates the program if new)",
)
async def put_program(
    request: Request, code: str, note: str = Query("", max_length=500)
) -> Response:
    token = await _auth(request, code, Perm.PROGRAMS_WRITE)
    data = await _json(request)
    if isinstance(data, dict):
        data.setdefault("code", code)
        if data["code"] != code:
            raise programs.invalid_program([("code", f"must be {code!r}, as in the URL")])
    doc = programs.check_document(data)
    rt = _rt(request)
    known = await programs.list_programs(rt, code=code)
    version = await programs.do_apply(
        rt, doc, author=token.name, note=note, actor=token.actor(_ip(request))
    )
    return _ok({"code": code, "version": version}, 200 if known else 201)


@router.get(
    "/programs/{code}/settings",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The program's settings: point value, rounding, time zone, points' name, "
    "language, SMS sender, cabinet branding (docs/admin-api.md)",
)
async def get_settings(request: Request, code: str) -> Response:
    await _auth(request, code)
    return _ok((await program_profile.settings(_rt(request), code)).to_json())


@router.patch(
    "/programs/{code}/settings",
    responses=ERRORS,
    openapi_extra={
        **SECURITY,
        "requestBody": {"required": True, "content": {JSON: {"schema": {"type": "object"}}}},
    },
    summary="Change some settings; every bad field is named, nothing is written then",
)
async def patch_settings(request: Request, code: str) -> Response:
    token = await _auth(request, code, Perm.PROGRAMS_WRITE)
    data = await _json(request)
    if not isinstance(data, dict):
        raise ServiceError("validation_failed", "the body must be a JSON object", field="body")
    out = await program_profile.do_update_settings(
        _rt(request), code, data, actor=token.actor(_ip(request))
    )
    return _ok(out.to_json())


@router.put(
    "/programs/{code}/logo",
    responses=ERRORS,
    openapi_extra={
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in program_profile.LOGO_TYPES.values()
            },
        },
    },
    summary="The cabinet's logo: the body is a PNG, JPEG or WebP image (at most 256 KB)",
)
async def put_logo(request: Request, code: str) -> Response:
    token = await _auth(request, code, Perm.PROGRAMS_WRITE)
    logo = await program_profile.do_set_logo(
        _rt(request), code, await request.body(), actor=token.actor(_ip(request))
    )
    assert logo is not None
    return _ok({"content_type": logo.content_type, "sha256": logo.sha256, "bytes": len(logo.data)})


@router.delete(
    "/programs/{code}/logo",
    status_code=204,
    response_class=Response,
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Remove the cabinet's logo",
)
async def delete_logo(request: Request, code: str) -> Response:
    token = await _auth(request, code, Perm.PROGRAMS_WRITE)
    await program_profile.do_set_logo(_rt(request), code, None, actor=token.actor(_ip(request)))
    return Response(status_code=204)


@router.get(
    "/programs/{code}/versions",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Every version: author, note, time, number of promotions",
)
async def list_versions(request: Request, code: str) -> Response:
    await _auth(request, code)
    rows = await programs.versions(_rt(request), code)
    return _ok(
        [
            {
                "version": v.version,
                "author": v.author,
                "note": v.note,
                "created_at": v.created_at.isoformat(),
                "promotions": v.promotions,
            }
            for v in rows
        ]
    )


@router.get(
    "/programs/{code}/versions/{version}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The document of one version",
)
async def get_version(request: Request, code: str, version: int) -> Response:
    await _auth(request, code)
    doc = await programs.export(_rt(request), code, version)
    return _ok({"code": code, "version": version, "document": doc})


@router.get(
    "/programs/{code}/diff",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="What changed between two versions (default: to the current one)",
)
async def diff(
    request: Request,
    code: str,
    from_: int = Query(alias="from", ge=1),
    to: int | None = Query(None, ge=1),
) -> Response:
    await _auth(request, code)
    rt = _rt(request)
    if to is None:
        to = (await programs.current(rt, code))[0]
    changes = await programs.diff(rt, code, from_, to)
    return _ok(
        {
            "from": from_,
            "to": to,
            "changes": [
                {"path": c.path, "change": c.kind, "old": c.old, "new": c.new} for c in changes
            ],
        }
    )


@router.post(
    "/programs/{code}/rollback",
    responses=ERRORS,
    openapi_extra=_doc_body("RollbackIn"),
    summary="Apply an old version's document as a new version",
)
async def rollback(request: Request, code: str) -> Response:
    token = await _auth(request, code, Perm.PROGRAMS_WRITE)
    body = _strict(RollbackIn, await _json(request))
    version = await programs.do_rollback(
        _rt(request), code, body.version, author=token.name, actor=token.actor(_ip(request))
    )
    return _ok({"code": code, "version": version})


@router.get(
    "/programs/{code}/promotions",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The current version's promotions with their status, sorted and paged",
)
async def list_promotions(
    request: Request,
    code: str,
    sort: str = Query("priority", pattern="^(id|name|priority|starts_at|ends_at|status)$"),
    dir: str = Query("desc", pattern="^(asc|desc)$"),
    status: str = Query("", pattern="^(|active|scheduled|ended|disabled)$"),
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=500),
) -> Response:
    await _auth(request, code)
    page = await editor.promotions_page(
        _rt(request),
        code,
        sort=sort,
        descending=dir == "desc",
        offset=offset,
        limit=limit,
        status=status,
    )
    return _ok(
        {
            "version": page.version,
            "total": page.total,
            "promotions": [
                {
                    "id": r.id,
                    "name": r.name,
                    "priority": r.priority,
                    "starts_at": r.starts_at.isoformat() if r.starts_at else None,
                    "ends_at": r.ends_at.isoformat() if r.ends_at else None,
                    "status": r.status,
                    "effects": list(r.effects),
                    "group": r.group,
                    "exclusive": r.exclusive,
                }
                for r in page.rows
            ],
        }
    )


@router.get(
    "/programs/{code}/promotions/{promotion_id}/describe",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="One promotion in plain words, English and Russian",
)
async def describe_promotion(request: Request, code: str, promotion_id: str) -> Response:
    await _auth(request, code)
    version, raw = await programs.current(_rt(request), code)
    doc = programs.check_document(raw)
    for p in doc.promotions:
        if p.id == promotion_id:
            return _ok({"version": version, "id": p.id, **editor.describe(p, doc)})
    raise programs.ProgramError(
        "promotion_not_found", f"no promotion {promotion_id!r}", field="promotion_id"
    )


def _promotion(doc: dict[str, Any], promotion_id: str) -> dict[str, Any]:
    for p in doc.get("promotions", []):
        if p.get("id") == promotion_id:
            found: dict[str, Any] = p
            return found
    raise programs.ProgramError(
        "promotion_not_found", f"no promotion {promotion_id!r}", field="promotion_id"
    )


@router.get(
    "/programs/{code}/promotions/{promotion_id}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="One promotion of the current version",
)
async def get_promotion(request: Request, code: str, promotion_id: str) -> Response:
    await _auth(request, code)
    version, doc = await programs.current(_rt(request), code)
    return _ok({"version": version, "promotion": _promotion(doc, promotion_id)})


@router.put(
    "/programs/{code}/promotions/{promotion_id}",
    responses={**ERRORS, 201: {"description": "the promotion was added (a new version)"}},
    openapi_extra=_doc_body("Promotion"),
    summary="Add or replace one promotion (a new version)",
)
async def put_promotion(
    request: Request, code: str, promotion_id: str, note: str = Query("", max_length=500)
) -> Response:
    token = await _auth(request, code, Perm.PROGRAMS_WRITE)
    data = await _json(request)
    if isinstance(data, dict):
        data.setdefault("id", promotion_id)
        if data["id"] != promotion_id:
            raise programs.invalid_program([("id", f"must be {promotion_id!r}, as in the URL")])
    version, created = await programs.do_set_promotion(
        _rt(request), code, data, author=token.name, note=note, actor=token.actor(_ip(request))
    )
    return _ok({"code": code, "version": version}, 201 if created else 200)


@router.delete(
    "/programs/{code}/promotions/{promotion_id}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Delete one promotion (a new version)",
)
async def delete_promotion(
    request: Request, code: str, promotion_id: str, note: str = Query("", max_length=500)
) -> Response:
    token = await _auth(request, code, Perm.PROGRAMS_WRITE)
    version = await programs.do_delete_promotion(
        _rt(request),
        code,
        promotion_id,
        author=token.name,
        note=note,
        actor=token.actor(_ip(request)),
    )
    return _ok({"code": code, "version": version})


@router.post(
    "/simulate",
    responses=ERRORS,
    openapi_extra=_doc_body("SimulateIn"),
    summary="What would this basket get for this customer at this store at this time?",
)
async def simulate(request: Request) -> Response:
    raw = await request.body()
    token = await _auth(request, perm=Perm.SIMULATE)
    body = SimulateIn.model_validate_json(raw)
    token.check_program(body.program)
    return _ok(await programs.simulate(_rt(request), to_simulation(body)))
