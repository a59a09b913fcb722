"""Admin API v1: stores and terminals, console users, the audit log (issue 6).

Thin handlers over ``services.stores``, ``services.terminals``, ``services.users`` and
``services.audit`` — the same services as the console, so the same checks and scoping
apply: the token's role must grant the permission (403 ``forbidden``), its program scope
must reach the program in the URL, and a bad body is 422 ``validation_failed`` naming
every wrong field.  A new terminal's key is in the answer of its creation only.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.responses import Response

from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.routes import ERRORS, JSON, SECURITY
from kopilka.api.pos.schemas import NO_NUL, Strict
from kopilka.domain.roles import Perm, Role
from kopilka.services import admin, audit, programs, stores, terminals, users
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
Text = Annotated[str, Field(max_length=300, pattern=NO_NUL)]
Degrees = Annotated[Decimal, Field(allow_inf_nan=False)]


class StoreIn(Strict):
    """A new store; coordinates in degrees (exact decimals), both or neither."""

    code: Code
    name: Name
    partner: Code = Field(description="the partner's code in the program")
    address: Text = ""
    city: Annotated[str, Field(max_length=100, pattern=NO_NUL)] = ""
    region: Annotated[str, Field(max_length=100, pattern=NO_NUL)] = ""
    latitude: Degrees | None = Field(None, description="-90..90")
    longitude: Degrees | None = Field(None, description="-180..180")
    timezone: Annotated[str, Field(max_length=64)] = Field(
        "Europe/Moscow", description="an IANA time zone"
    )


class StoreChangeIn(Strict):
    """Only the fields given change (``latitude``/``longitude``: give both)."""

    code: Code | None = None
    name: Name | None = None
    partner: Code | None = None
    address: Text | None = None
    city: Annotated[str, Field(max_length=100, pattern=NO_NUL)] | None = None
    region: Annotated[str, Field(max_length=100, pattern=NO_NUL)] | None = None
    latitude: Degrees | None = None
    longitude: Degrees | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None


class TerminalIn(Strict):
    name: Name


class UserIn(Strict):
    """A console user.  ``partner`` (code) for the partner role, ``store`` (code) for a
    store manager or cashier; both within ``program`` (the token's own, if limited)."""

    login: Annotated[str, Field(min_length=1, max_length=64)]
    name: Name
    password: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role
    email: Annotated[str, Field(max_length=254)] | None = None
    program: Code | None = None
    partner: Code | None = None
    store: Code | None = None
    locale: Annotated[str, Field(pattern=r"^(ru|en)$")] = "ru"


class UserChangeIn(Strict):
    """Only the fields given change.  A new role takes the ``partner``/``store`` it needs;
    disabling or a new password ends the user's sessions."""

    name: Name | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    role: Role | None = None
    partner: Code | None = None
    store: Code | None = None
    locale: Annotated[str, Field(pattern=r"^(ru|en)$")] | None = None
    active: bool | None = None
    password: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    unlock: bool | None = Field(None, description="true: end a lockout now")


class UserProgramsIn(Strict):
    """The programs granted to a user besides its own (all of them replaced; [] ends every
    grant).  Only a token that reaches every program grants programs."""

    programs: Annotated[list[Code], Field(max_length=100)]


SCHEMAS: tuple[type[BaseModel], ...] = (
    StoreIn,
    StoreChangeIn,
    TerminalIn,
    UserIn,
    UserChangeIn,
    UserProgramsIn,
)


# --- helpers ---------------------------------------------------------------------------


async def _actor(request: Request) -> Actor:
    token = await admin.check_token(_rt(request), request.headers.get("authorization", ""))
    return token.actor(request.client.host if request.client else None)


async def _program(request: Request, code: str) -> tuple[Actor, int]:
    actor = await _actor(request)
    async with _rt(request).engine.connect() as conn:
        pid = (
            await conn.execute(select(t.programs.c.id).where(t.programs.c.code == code))
        ).scalar_one_or_none()
    if pid is None:
        raise programs.not_found(code)
    if actor.program_id is not None and actor.program_id != pid:
        raise ServiceError("forbidden", "this token is limited to another program", field="code")
    return actor, int(pid)


async def _partner_id(rt: Runtime, program_id: int, code: str, field: str = "partner") -> int:
    async with rt.engine.connect() as conn:
        pid = (
            await conn.execute(
                select(t.partners.c.id).where(
                    t.partners.c.program_id == program_id, t.partners.c.code == code
                )
            )
        ).scalar_one_or_none()
    if pid is None:
        raise ServiceError("validation_failed", f"no partner {code!r} in the program", field=field)
    return int(pid)


async def _store_id(rt: Runtime, program_id: int, code: str, *, field: str = "store") -> int:
    async with rt.engine.connect() as conn:
        sid = (
            await conn.execute(
                select(t.stores.c.id).where(
                    t.stores.c.program_id == program_id, t.stores.c.code == code
                )
            )
        ).scalar_one_or_none()
    if sid is None:
        raise ServiceError("not_found", f"no store {code!r} in the program", field=field)
    return int(sid)


def _ok(data: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(data),
        status_code=status,
        media_type=JSON,
        headers={"Cache-Control": "no-store"},
    )


def _body(schema: str) -> dict[str, Any]:
    return {
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        },
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _coord(value: float | None) -> str | None:
    return None if value is None else format(Decimal(repr(value)).normalize(), "f")


def _store(s: stores.StoreRow) -> dict[str, Any]:
    return {
        "id": s.id,
        "code": s.code,
        "name": s.name,
        "partner": s.partner_code,
        "address": s.address,
        "city": s.city,
        "region": s.region,
        "latitude": _coord(s.latitude),
        "longitude": _coord(s.longitude),
        "timezone": s.timezone,
        "active_terminals": s.terminals,
    }


def _terminal(x: stores.TerminalView) -> dict[str, Any]:
    return {
        "id": x.id,
        "name": x.name,
        "key_prefix": x.key_prefix,
        "status": x.status,
        "created_at": _iso(x.created_at),
        "disabled_at": _iso(x.disabled_at),
        "last_seen_at": _iso(x.last_seen_at),
    }


def _user(v: users.User, now: datetime) -> dict[str, Any]:
    return {
        "id": v.id,
        "login": v.login,
        "name": v.name,
        "email": v.email,
        "role": v.role,
        "program_id": v.program_id,
        "partner_id": v.partner_id,
        "store_id": v.store_id,
        "locale": v.locale,
        "active": v.active,
        "locked": v.locked_until is not None and v.locked_until > now,
        "last_login_at": _iso(v.last_login_at),
        "created_at": _iso(v.created_at),
    }


Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]


# --- stores and terminals ----------------------------------------------------------------


@router.get(
    "/programs/{code}/stores",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="List the program's stores (scoped like the console)",
)
async def list_stores(
    request: Request,
    code: str,
    q: str = "",
    city: str = "",
    partner: str = "",
    sort: Annotated[str, Query(pattern="^(code|name|city|partner|terminals)$")] = "code",
    desc: bool = False,
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    actor, pid = await _program(request, code)
    rt = _rt(request)
    partner_id = await _partner_id(rt, pid, partner) if partner else None
    rows, total = await stores.list_stores(
        rt,
        actor,
        pid,
        text=q,
        city=city,
        partner_id=partner_id,
        sort=sort,
        descending=desc,
        offset=offset,
        limit=limit,
    )
    return _ok({"total": total, "items": [_store(s) for s in rows]})


@router.post(
    "/programs/{code}/stores",
    responses=ERRORS,
    openapi_extra=_body("StoreIn"),
    status_code=201,
    summary="Create a store",
)
async def create_store(request: Request, code: str) -> Response:
    actor, pid = await _program(request, code)
    actor.require(Perm.STORES_WRITE)  # before the body: no validation errors for the role
    body = StoreIn.model_validate_json(await request.body())
    rt = _rt(request)
    values: dict[str, Any] = body.model_dump()
    values["partner"] = await _partner_id(rt, pid, body.partner)
    sid = await stores.do_create_store(rt, actor, pid, values)
    return _ok(_store(await stores.get_store(rt, actor, sid)), 201)


@router.patch(
    "/programs/{code}/stores/{store_code}",
    responses=ERRORS,
    openapi_extra=_body("StoreChangeIn"),
    summary="Change a store (the fields given)",
)
async def update_store(request: Request, code: str, store_code: str) -> Response:
    actor, pid = await _program(request, code)
    actor.require(Perm.STORES_WRITE)  # before the body: no validation errors for the role
    body = StoreChangeIn.model_validate_json(await request.body())
    rt = _rt(request)
    sid = await _store_id(rt, pid, store_code)
    values: dict[str, Any] = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None
    }
    if body.partner is not None:
        values["partner"] = await _partner_id(rt, pid, body.partner)
    row = await stores.do_update_store(rt, actor, sid, values)
    return _ok(_store(row))


@router.get(
    "/programs/{code}/stores/{store_code}/terminals",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="A store's terminals with their last-seen times (never their keys)",
)
async def list_terminals(request: Request, code: str, store_code: str) -> Response:
    actor, pid = await _program(request, code)
    rt = _rt(request)
    sid = await _store_id(rt, pid, store_code)
    rows = await stores.list_store_terminals(rt, actor, sid)
    return _ok({"items": [_terminal(x) for x in rows]})


@router.post(
    "/programs/{code}/stores/{store_code}/terminals",
    responses=ERRORS,
    openapi_extra=_body("TerminalIn"),
    status_code=201,
    summary="Add a terminal; its key is in this answer only",
)
async def create_terminal(request: Request, code: str, store_code: str) -> Response:
    actor, pid = await _program(request, code)
    actor.require(Perm.STORES_WRITE)  # before the body: no validation errors for the role
    body = TerminalIn.model_validate_json(await request.body())
    rt = _rt(request)
    sid = await _store_id(rt, pid, store_code)
    tid, key = await terminals.do_create_terminal(rt, actor, sid, body.name)
    return _ok({"id": tid, "name": body.name.strip(), "key": key, "key_prefix": key[:10]}, 201)


@router.post(
    "/programs/{code}/terminals/{terminal_id}/disable",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Disable a terminal (its key is refused within seconds)",
)
async def disable_terminal(request: Request, code: str, terminal_id: int) -> Response:
    actor, pid = await _program(request, code)
    rt = _rt(request)
    scoped = Actor(
        actor.kind,
        actor.id,
        actor.name,
        actor.role,
        actor.ip,
        pid,
        actor.partner_id,
        actor.store_id,
    )
    await terminals.do_revoke_terminal(rt, scoped, terminal_id)
    return _ok({"id": terminal_id, "status": "disabled"})


# --- users -----------------------------------------------------------------------------


@router.get("/users", responses=ERRORS, openapi_extra=SECURITY, summary="List console users")
async def list_users(
    request: Request,
    q: str = "",
    role: str = "",
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    actor = await _actor(request)
    rt = _rt(request)
    rows, total = await users.list_users_page(
        rt, actor, text=q, role=role, offset=offset, limit=limit
    )
    now = rt.now()
    return _ok({"total": total, "items": [_user(v.user, now) for v in rows]})


async def _scope_ids(
    rt: Runtime,
    actor: Actor,
    program: str | None,
    partner: str | None,
    store: str | None,
    default_program: int | None,
) -> tuple[int | None, int | None, int | None]:
    pid = default_program
    if program is not None:
        _, pid = await _program_id(rt, actor, program)
    if pid is None and (partner or store):
        raise ServiceError(
            "validation_failed", "name the program of the partner or store", field="program"
        )
    partner_id = await _partner_id(rt, pid, partner) if partner and pid else None
    store_id = None
    if store and pid:
        try:
            store_id = await _store_id(rt, pid, store)
        except ServiceError as exc:
            raise ServiceError("validation_failed", exc.detail, field="store") from None
    return pid, partner_id, store_id


async def _program_id(rt: Runtime, actor: Actor, code: str) -> tuple[Actor, int]:
    async with rt.engine.connect() as conn:
        pid = (
            await conn.execute(select(t.programs.c.id).where(t.programs.c.code == code))
        ).scalar_one_or_none()
    if pid is None:
        raise ServiceError("validation_failed", f"no program {code!r}", field="program")
    if actor.program_id is not None and actor.program_id != pid:
        raise ServiceError("forbidden", "this token is limited to another program", field="program")
    return actor, int(pid)


@router.post(
    "/users",
    responses=ERRORS,
    openapi_extra=_body("UserIn"),
    status_code=201,
    summary="Create a console user",
)
async def create_user(request: Request) -> Response:
    actor = await _actor(request)
    actor.require(Perm.USERS_MANAGE)
    body = UserIn.model_validate_json(await request.body())
    rt = _rt(request)
    pid, partner_id, store_id = await _scope_ids(
        rt, actor, body.program, body.partner, body.store, actor.program_id
    )
    email = (body.email or "").strip() or None
    if email is not None and ("@" not in email or " " in email):
        raise ServiceError("validation_failed", "not an e-mail address", field="email")
    pid, partner_id, store_id = await users.check_user_scope(
        rt, actor, role=body.role.value, program_id=pid, partner_id=partner_id, store_id=store_id
    )
    uid = await users.do_create_user(
        rt,
        actor,
        login=body.login,
        name=body.name,
        password=body.password,
        role=body.role.value,
        email=email,
        program_id=pid,
        partner_id=partner_id,
        store_id=store_id,
        locale=body.locale,
    )
    return _ok(_user(await users.get_user(rt, uid), rt.now()), 201)


@router.patch(
    "/users/{user_id}",
    responses=ERRORS,
    openapi_extra=_body("UserChangeIn"),
    summary="Change a console user (the fields given)",
)
async def update_user(request: Request, user_id: int) -> Response:
    actor = await _actor(request)
    rt = _rt(request)
    user = await users.get_managed_user(rt, actor, user_id)
    body = UserChangeIn.model_validate_json(await request.body())
    role = body.role.value if body.role is not None else None
    partner_id = store_id = None
    if role is not None:
        _, partner_id, store_id = await _scope_ids(
            rt, actor, None, body.partner, body.store, user.program_id
        )
        _, partner_id, store_id = await users.check_user_scope(
            rt,
            actor,
            role=role,
            program_id=user.program_id,
            partner_id=partner_id,
            store_id=store_id,
        )
    elif body.partner is not None or body.store is not None:
        raise ServiceError(
            "validation_failed", "give the role with its partner or store", field="role"
        )
    if "email" in body.model_fields_set:
        await users.do_set_email(rt, actor, user_id, body.email)
    if body.unlock:
        await users.do_unlock_user(rt, actor, user_id)
    await users.do_update_user(
        rt,
        actor,
        user_id,
        name=body.name,
        role=role,
        partner_id=partner_id,
        store_id=store_id,
        locale=body.locale,
        active=body.active,
        password=body.password,
    )
    return _ok(_user(await users.get_user(rt, user_id), rt.now()))


@router.put(
    "/users/{user_id}/programs",
    responses=ERRORS,
    openapi_extra=_body("UserProgramsIn"),
    summary="Grant a console user several programs (it switches between them)",
)
async def put_user_programs(request: Request, user_id: int) -> Response:
    actor = await _actor(request)
    rt = _rt(request)
    user = await users.get_managed_user(rt, actor, user_id)
    body = UserProgramsIn.model_validate_json(await request.body())
    ids: set[int] = set()
    for i, code in enumerate(body.programs):
        async with rt.engine.connect() as conn:
            pid = (
                await conn.execute(select(t.programs.c.id).where(t.programs.c.code == code))
            ).scalar_one_or_none()
        if pid is None:
            raise ServiceError("validation_failed", f"no program {code!r}", field=f"programs.{i}")
        ids.add(int(pid))
    await users.do_grant_programs(rt, actor, user.id, ids)
    granted = await users.granted_programs(rt, user)
    codes = {p.id: p.code for p in await programs.list_programs(rt)}
    return _ok({"id": user.id, "programs": sorted(codes[p] for p in granted or ())})


# --- the audit log ---------------------------------------------------------------------


def _audit_filter(
    actor: Actor,
    who: str,
    action: str,
    object_type: str,
    object_id: str,
    since: date | None,
    until: date | None,
) -> audit.AuditFilter:
    actor.require(Perm.AUDIT_READ)
    return audit.AuditFilter(
        actor=who,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=since,
        until=until,
        program_id=actor.program_id,
    )


@router.get(
    "/audit",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The audit log, newest first, filtered",
)
async def list_audit(
    request: Request,
    actor: Annotated[str, Query(description="part of the actor's name")] = "",
    action: Annotated[str, Query(description="a prefix: card. finds every card action")] = "",
    object_type: str = "",
    object_id: str = "",
    since: date | None = None,
    until: Annotated[date | None, Query(description="inclusive")] = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    who = await _actor(request)
    f = _audit_filter(who, actor, action, object_type, object_id, since, until)
    rows, total = await audit.list_audit(_rt(request), f, offset=offset, limit=limit)
    items = [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "actor_kind": r.actor_kind,
            "actor_name": r.actor_name,
            "ip": r.ip,
            "action": r.action,
            "object_type": r.object_type,
            "object_id": r.object_id,
            "reason": r.reason,
            "before": orjson.loads(r.before) if r.before else None,
            "after": orjson.loads(r.after) if r.after else None,
        }
        for r in rows
    ]
    return _ok({"total": total, "items": items})


@router.get(
    "/audit.csv",
    responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
    openapi_extra=SECURITY,
    summary="The filtered audit log as CSV, oldest first",
)
async def export_audit(
    request: Request,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    since: date | None = None,
    until: date | None = None,
) -> Response:
    who = await _actor(request)
    f = _audit_filter(who, actor, action, object_type, object_id, since, until)
    body = await audit.export_audit_csv(_rt(request), f)
    return Response(
        body.encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
