"""Admin API: the summary, stores & cashiers and cohorts reports (issue 8), as JSON or as
a CSV / XLSX file (``format``).  Token-authenticated, ``reports.read``.

    GET /api/admin/v1/reports/summary?program=CODE&from=2026-03-01&to=2026-03-31&by=week
    GET /api/admin/v1/reports/stores?...&sort=sales&format=xlsx
    GET /api/admin/v1/reports/cohorts?...&format=csv

Bad parameters are answered with problem+json naming the parameter (422
``validation_failed``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from starlette.responses import Response, StreamingResponse

from kopilka.analytics import cohorts, facts, stores, summary
from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.routes import ERRORS, JSON, SECURITY
from kopilka.domain.roles import Perm
from kopilka.domain.summary import GRANULARITIES, Period, PeriodError
from kopilka.services import admin, exports
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.store import tables as t

router = APIRouter(prefix="/api/admin/v1/reports", tags=["Admin: reports"])
FORMATS = ("json", "csv", "xlsx")
Codes = Annotated[list[str] | None, Query(description="store codes (repeatable)")]


def bad(field: str, detail: str) -> ServiceError:
    return ServiceError("validation_failed", detail, field=field)


async def _who(request: Request, program: str | None) -> tuple[Actor, int]:
    rt = _rt(request)
    token = await admin.check_token(rt, request.headers.get("authorization", ""))
    actor = token.actor(request.client.host if request.client else None)
    actor.require(Perm.REPORTS_READ)
    pr = t.programs
    async with rt.engine.connect() as conn:
        q = select(pr.c.id, pr.c.code)
        if program is not None:
            q = q.where(pr.c.code == program)
        elif actor.program_id is not None:
            q = q.where(pr.c.id == actor.program_id)
        rows = (await conn.execute(q)).all()
    if not rows:
        raise bad("program", f"no program {program!r}")
    if len(rows) > 1:
        raise bad("program", "there are several programs: name one")
    if actor.program_id is not None and actor.program_id != rows[0].id:
        raise ServiceError("forbidden", "this token is limited to another program", field="program")
    return actor, int(rows[0].id)


def _date(field: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise bad(field, f"not a date (YYYY-MM-DD): {text!r}") from None


async def _args(
    request: Request, program: str | None, start: str, end: str, store: list[str] | None,
    city: str, tag: str = "", tier: str = "", fmt: str = "json",
) -> tuple[Actor, int, Period, summary.Filters]:  # fmt: skip
    if fmt not in FORMATS:
        raise bad("format", f"format must be one of {', '.join(FORMATS)}")
    actor, pid = await _who(request, program)
    try:
        period = Period(_date("from", start), _date("to", end))
    except PeriodError as exc:
        raise bad(exc.field, str(exc)) from None
    ids = []
    async with _rt(request).engine.connect() as conn:
        for code in store or []:
            found = (
                await conn.execute(
                    select(t.stores.c.id).where(
                        t.stores.c.program_id == pid, t.stores.c.code == code
                    )
                )
            ).scalar_one_or_none()
            if found is None:
                raise bad("store", f"no store {code!r}")
            ids.append(int(found))
    return actor, pid, period, summary.Filters(tuple(ids), city, tag, tier)


def _file(tables: list[exports.Table], fmt: str, name: str) -> Response:
    xlsx = fmt == "xlsx"
    body = exports.xlsx_book_chunks(tables) if xlsx else exports.csv_chunks(tables[0])
    return StreamingResponse(
        body, media_type=exports.media_type(fmt), headers=exports.attachment(name, fmt)
    )


def _json_value(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, date):
        return v.isoformat()
    return v


def _ok(data: Any) -> Response:
    return Response(orjson.dumps(data, default=_json_value), media_type=JSON)


Q = Query


@router.get("/summary", responses=ERRORS, openapi_extra=SECURITY, summary="Summary KPIs")
async def get_summary(
    request: Request,
    start: Annotated[str, Q(alias="from", description="first local date")],
    end: Annotated[str, Q(alias="to", description="last local date, included")],
    program: str | None = None,
    by: str = "day",
    store: Codes = None,
    city: str = "",
    tag: str = "",
    tier: str = "",
    format: str = "json",
) -> Response:
    """KPIs of the period with the previous period's values, and the series by ``by``."""
    actor, pid, period, f = await _args(request, program, start, end, store, city, tag, tier,
                                        format)  # fmt: skip
    if by not in GRANULARITIES:
        raise bad("by", f"by must be one of {', '.join(GRANULARITIES)}")
    rep = await summary.summary_report(
        _rt(request), program_id=pid, period=period, granularity=by, filters=f, actor=actor
    )
    if format != "json":
        return _file(summary.tables(rep), format, f"summary-{period.start}-{period.end}")
    return _ok(
        {
            "period": {"from": period.start, "to": period.end},
            "previous": {"from": rep.previous.start, "to": rep.previous.end},
            "as_of": rep.as_of.isoformat() if rep.as_of else None,
            "source": rep.source,
            "kpis": {
                k: {
                    "value": c.value,
                    "previous": c.previous,
                    "change": c.change,
                    "change_pct": c.change_pct,
                }
                for k, c in rep.kpis.items()
            },
            "series": rep.series,
        }
    )


@router.get("/stores", responses=ERRORS, openapi_extra=SECURITY, summary="Stores and cashiers")
async def get_stores(
    request: Request,
    start: Annotated[str, Q(alias="from")],
    end: Annotated[str, Q(alias="to")],
    program: str | None = None,
    store: Codes = None,
    city: str = "",
    sort: str = "sales",
    cashiers: bool = True,
    format: str = "json",
) -> Response:
    actor, pid, period, f = await _args(request, program, start, end, store, city, fmt=format)
    try:
        rows = await stores.store_rows(
            _rt(request), program_id=pid, period=period, filters=f, actor=actor, sort=sort,
            cashiers=cashiers,
        )  # fmt: skip
    except PeriodError as exc:
        raise bad(exc.field, str(exc)) from None
    if format != "json":
        return _file(stores.tables(rows), format, f"stores-{period.start}-{period.end}")
    return _ok({"as_of": _iso(await facts.watermark(_rt(request))),
                "rows": [r.values() for r in rows]})  # fmt: skip


def _iso(v: Any) -> str | None:
    return None if v is None else str(v.isoformat())


@router.get("/cohorts", responses=ERRORS, openapi_extra=SECURITY, summary="Cohort retention")
async def get_cohorts(
    request: Request,
    start: Annotated[str, Q(alias="from")],
    end: Annotated[str, Q(alias="to")],
    program: str | None = None,
    store: Codes = None,
    city: str = "",
    tag: str = "",
    tier: str = "",
    format: str = "json",
) -> Response:
    actor, pid, period, f = await _args(request, program, start, end, store, city, tag, tier,
                                        format)  # fmt: skip
    rt = _rt(request)
    settings = await rt.program(pid)
    rows = await cohorts.cohort_rows(
        rt, program_id=pid, period=period, filters=f, actor=actor,
        as_of=facts.local_date(rt.now(), settings.timezone),
    )  # fmt: skip
    if format != "json":
        return _file(cohorts.tables(rows), format, f"cohorts-{period.start}-{period.end}")
    return _ok(
        {
            "as_of": _iso(await facts.watermark(rt)),
            "cohorts": [
                {"month": c.month, "customers": c.size, "active": list(c.active),
                 "retention_pct": [c.retention(k) for k in range(len(c.active))]}
                for c in rows
            ],
        }
    )  # fmt: skip
