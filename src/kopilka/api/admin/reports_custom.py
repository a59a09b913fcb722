"""Admin API: the report builder (issue 8) — ad-hoc runs, saved reports shared with
roles, and their e-mail schedules; the same service as the console
(``services.saved_reports``), token-authenticated, needs ``reports.read``.

``program`` (a program code) says which program's receipts a new or ad-hoc report
reads; a token limited to one program may leave it out."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.responses import Response

from kopilka.analytics import builder
from kopilka.api.admin.common import ok as _ok
from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.routes import ERRORS, JSON, SECURITY
from kopilka.api.pos.schemas import Strict
from kopilka.domain import report_builder as rb
from kopilka.domain.money import fmt2
from kopilka.domain.roles import Perm
from kopilka.services import admin, audit, programs, saved_reports
from kopilka.services.errors import ServiceError
from kopilka.store import tables as t

router = APIRouter(prefix="/api/admin/v1/reports/custom", tags=["Admin: reports"])
Format = Annotated[str, Query(pattern="^(json|csv|xlsx|pdf)$")]


class SavedReportIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    definition: dict[str, Any] = Field(description="a report definition (see Definition)")
    shared_roles: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list, description="roles that may open it besides its owner"
    )


class ScheduleIn(Strict):
    frequency: Annotated[str, Field(pattern="^(daily|weekly|monthly)$")]
    at: Annotated[str, Field(pattern=r"^\d{1,2}:\d{2}$", description="local time, HH:MM")]
    weekday: Annotated[int, Field(ge=1, le=7)] | None = Field(None, description="weekly")
    day: Annotated[int, Field(ge=1, le=28)] | None = Field(None, description="monthly")
    timezone: Annotated[str, Field(max_length=64)] | None = None
    recipients: list[Annotated[str, Field(max_length=254)]] = Field(min_length=1, max_length=50)
    format: Annotated[str, Field(pattern="^(xlsx|pdf)$")] = "xlsx"
    locale: Annotated[str, Field(pattern="^(ru|en)$")] = "ru"


SCHEMAS: tuple[type[BaseModel], ...] = (rb.Definition, SavedReportIn, ScheduleIn)


async def _actor(request: Request) -> audit.Actor:
    token = await admin.check_token(_rt(request), request.headers.get("authorization", ""))
    actor = token.actor(request.client.host if request.client else None)
    actor.require(Perm.REPORTS_READ)
    return actor


async def _program(request: Request, actor: audit.Actor, code: str | None) -> int:
    """The program a new report reads: ``program``, else the token's, else the only one."""
    rt = _rt(request)
    if code is None:
        if actor.program_id is not None:
            return actor.program_id
        rows = await programs.list_programs(rt)
        if len(rows) != 1:
            raise ServiceError("validation_failed", "name the program", field="program")
        return rows[0].id
    async with rt.engine.connect() as conn:
        pid = (
            await conn.execute(select(t.programs.c.id).where(t.programs.c.code == code))
        ).scalar_one_or_none()
    if pid is None:
        raise programs.not_found(code)
    if actor.program_id is not None and actor.program_id != pid:
        raise ServiceError("forbidden", "this token is limited to another program")
    return int(pid)


async def _body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise ServiceError("malformed_json", "the body is not valid JSON") from None


def _value(v: Any) -> Any:
    if isinstance(v, Decimal):
        return fmt2(v) if v == v.quantize(Decimal("0.01")) else str(v)
    if isinstance(v, date | datetime):
        return v.isoformat()
    return v


async def _answer(res: builder.Result, *, name: str, fmt: str) -> Response:
    """The result as JSON (money as strings) or as a file."""
    if fmt == "json":
        return _ok(
            {
                "name": name,
                "period": {"from": res.first.isoformat(), "to": res.last.isoformat()},
                "columns": res.keys,
                "header": res.header(),
                "rows": [[_value(v) for v in row] for row in res.rows],
                "truncated": res.truncated,
                "chart": builder.chart_option(res),
            }
        )
    data = await saved_reports.report_file(res, title=name, fmt=fmt, lang="en")
    return Response(
        data,
        media_type=saved_reports.media_type(fmt),
        headers=saved_reports.download_headers(name, fmt),
    )


def _report(r: saved_reports.SavedReport) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "definition": orjson.loads(saved_reports.definition_json(r.definition)),
        "shared_roles": list(r.shared_roles),
        "owner": r.owner_name,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
    }


@router.post(
    "/run",
    responses=ERRORS,
    openapi_extra={
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Definition"}}},
        },
    },
    summary="Run a report definition without saving it (JSON, CSV, XLSX or PDF)",
)
async def run_adhoc(
    request: Request, program: str | None = None, format: Format = "json"
) -> Response:
    actor = await _actor(request)
    pid = await _program(request, actor, program)
    d = saved_reports.parse_definition(await _body(request))
    res = await saved_reports.run_definition(_rt(request), actor, pid, d)
    return await _answer(res, name="report", fmt=format)


@router.get("", responses=ERRORS, openapi_extra=SECURITY, summary="Saved reports you may open")
async def list_saved(request: Request, program: str | None = None) -> Response:
    actor = await _actor(request)
    pid = await _program(request, actor, program)
    rows = await saved_reports.list_reports(_rt(request), actor, pid)
    return _ok({"reports": [_report(r) for r in rows]})


async def _saved_in(request: Request) -> tuple[SavedReportIn, rb.Definition]:
    body = SavedReportIn.model_validate_json(await request.body())
    try:
        d = saved_reports.parse_definition(body.definition)
    except ServiceError as exc:  # name the field inside the body
        errors = [{**e, "field": "definition." + e["field"]} for e in exc.extra["errors"]]
        raise ServiceError(
            "validation_failed",
            exc.detail,
            field=errors[0]["field"],
            errors=errors,
        ) from None
    return body, d


def _saved_body() -> dict[str, Any]:
    return {
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/SavedReportIn"}}},
        },
    }


@router.post(
    "",
    responses=ERRORS,
    openapi_extra=_saved_body(),
    status_code=201,
    summary="Save a report (shared with roles)",
)
async def create_saved(request: Request, program: str | None = None) -> Response:
    actor = await _actor(request)
    pid = await _program(request, actor, program)
    body, d = await _saved_in(request)
    rid = await saved_reports.do_save_report(
        _rt(request), actor, pid, name=body.name, definition=d, shared_roles=body.shared_roles
    )
    return _ok(_report(await saved_reports.get_report(_rt(request), actor, rid)), status=201)


@router.get(
    "/{report_id}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Run a saved report (JSON, CSV, XLSX or PDF)",
)
async def run_saved(request: Request, report_id: int, format: Format = "json") -> Response:
    actor = await _actor(request)
    rep, res = await saved_reports.run_saved(_rt(request), actor, report_id)
    return await _answer(res, name=rep.name, fmt=format)


@router.put(
    "/{report_id}", responses=ERRORS, openapi_extra=_saved_body(), summary="Change a report"
)
async def update_saved(request: Request, report_id: int) -> Response:
    actor = await _actor(request)
    rep = await saved_reports.check_editable(_rt(request), actor, report_id)
    body, d = await _saved_in(request)
    await saved_reports.do_save_report(
        _rt(request),
        actor,
        rep.program_id,
        name=body.name,
        definition=d,
        shared_roles=body.shared_roles,
        report_id=report_id,
    )
    return _ok(_report(await saved_reports.get_report(_rt(request), actor, report_id)))


@router.delete(
    "/{report_id}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    status_code=204,
    summary="Delete a report and its schedules (confirm: its name)",
)
async def delete_saved(request: Request, report_id: int, confirm: str = "") -> Response:
    actor = await _actor(request)
    await saved_reports.do_delete_report(_rt(request), actor, report_id, confirm_name=confirm)
    return Response(status_code=204)


def _schedule(s: saved_reports.Schedule) -> dict[str, Any]:
    return {
        "id": s.id,
        "frequency": s.frequency,
        "at": s.at_time,
        "weekday": s.weekday,
        "day": s.day,
        "timezone": s.timezone,
        "recipients": list(s.recipients),
        "format": s.format,
        "locale": s.locale,
        "next_run_at": s.next_run_at.isoformat(),
        "last_run_at": s.last_run_at.isoformat() if s.last_run_at else None,
    }


@router.get(
    "/{report_id}/schedules", responses=ERRORS, openapi_extra=SECURITY, summary="E-mail schedules"
)
async def list_schedules(request: Request, report_id: int) -> Response:
    actor = await _actor(request)
    rows = await saved_reports.list_schedules(_rt(request), actor, report_id)
    return _ok({"schedules": [_schedule(s) for s in rows]})


@router.post(
    "/{report_id}/schedules",
    responses=ERRORS,
    openapi_extra={
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/ScheduleIn"}}},
        },
    },
    status_code=201,
    summary="E-mail the report as XLSX or PDF daily, weekly or monthly",
)
async def add_schedule(request: Request, report_id: int) -> Response:
    actor = await _actor(request)
    await saved_reports.check_editable(_rt(request), actor, report_id)
    body = ScheduleIn.model_validate_json(await request.body())
    values = {
        "frequency": body.frequency,
        "at": body.at,
        "weekday": "" if body.weekday is None else str(body.weekday),
        "day": "" if body.day is None else str(body.day),
        "timezone": body.timezone or "",
        "recipients": ",".join(body.recipients),
        "format": body.format,
        "locale": body.locale,
    }
    rt = _rt(request)
    sid = await saved_reports.do_add_schedule(rt, actor, report_id, values)
    rows = await saved_reports.list_schedules(rt, actor, report_id)
    return _ok(_schedule(next(s for s in rows if s.id == sid)), status=201)


@router.delete(
    "/{report_id}/schedules/{schedule_id}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    status_code=204,
    summary="Stop a schedule",
)
async def delete_schedule(request: Request, report_id: int, schedule_id: int) -> Response:
    actor = await _actor(request)
    await saved_reports.do_delete_schedule(_rt(request), actor, report_id, schedule_id)
    return Response(status_code=204)
