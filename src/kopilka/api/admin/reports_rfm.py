"""Admin API: the RFM report (docs/analytics/rfm.md) — the same computation as the
console and ``kopilka report rfm``, token-authenticated, ``reports.read``.

- ``GET /api/admin/v1/reports/rfm?as_of=&window_days=&program=&format=json|csv|xlsx``
- ``GET /api/admin/v1/reports/rfm/migration?from=&to=&window_days=&program=&format=``

``program`` is the program's code; it may be left out when the token is limited to one
program or there is only one.  Bad input is problem+json 422 naming the parameter.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.responses import Response, StreamingResponse

from kopilka.analytics import rfm as report
from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.routes import ERRORS, JSON, SECURITY
from kopilka.domain import rfm
from kopilka.domain.money import fmt2
from kopilka.services import admin, exports
from kopilka.services import rfm as service
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.store import tables as t

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])
FORMATS = ("json", "csv", "xlsx")


async def _who(request: Request) -> tuple[Actor, int]:
    """The token's actor and the program asked for (its code in ``program``)."""
    rt = _rt(request)
    token = await admin.check_token(rt, request.headers.get("authorization", ""))
    actor = token.actor(request.client.host if request.client else None)
    code = request.query_params.get("program") or token.program_code
    p = t.programs
    async with rt.engine.connect() as conn:
        if code:
            token.check_program(code)
            pid = (await conn.execute(select(p.c.id).where(p.c.code == code))).scalar_one_or_none()
            if pid is None:
                raise ServiceError("program_not_found", f"no program {code!r}", field="program")
        else:
            ids = (await conn.execute(select(p.c.id).limit(2))).scalars().all()
            if len(ids) != 1:
                raise ServiceError("validation_failed", "give the program's code", field="program")
            pid = ids[0]
    service.check_access(actor, int(pid))
    return actor, int(pid)


def _format(request: Request) -> str:
    fmt = request.query_params.get("format") or "json"
    if fmt not in FORMATS:
        raise ServiceError("validation_failed", "give json, csv or xlsx", field="format")
    return fmt


def _segments() -> rfm.SegmentMap:
    try:
        return report.load_segment_map()
    except rfm.SegmentConfigError as exc:
        raise ServiceError(
            "validation_failed", f"the installation's segment file is invalid: {exc}"
        ) from None


def _file(tables: list[exports.Table], fmt: str, name: str) -> Response:
    body = exports.xlsx_book_chunks(tables) if fmt == "xlsx" else exports.csv_chunks(tables[0])
    return StreamingResponse(
        body, media_type=exports.media_type(fmt), headers=exports.attachment(name, fmt)
    )


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type=JSON)


@router.get(
    "/reports/rfm",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="RFM: one row per customer with a purchase in the window, scores and segments",
)
async def rfm_report(request: Request) -> Response:
    _, pid = await _who(request)
    q = request.query_params
    as_of = report.parse_as_of(q.get("as_of"))
    window = report.parse_window(q.get("window_days"))
    fmt = _format(request)
    rep = await report.compute(
        _rt(request), pid, as_of=as_of, window_days=window, segments=_segments()
    )
    if fmt != "json":
        return _file(report.tables(rep), fmt, f"rfm-{as_of.isoformat()}")
    return _json(
        {
            "as_of": as_of.isoformat(),
            "window_days": window,
            "timezone": rep.timezone,
            "customers": len(rep.rows),
            "segments": [
                {
                    "code": s.segment.code,
                    "name": s.segment.name,
                    "name_ru": s.segment.name_ru,
                    "r": str(s.segment.r),
                    "f": str(s.segment.f),
                    "m": str(s.segment.m),
                    "customers": s.customers,
                    "revenue": fmt2(s.revenue),
                }
                for s in rep.totals
            ],
            "rows": [
                {
                    "customer": r.customer,
                    "customer_id": r.customer_id,
                    "last_purchase": r.last_purchase.isoformat(),
                    "recency_days": r.recency_days,
                    "frequency": r.frequency,
                    "monetary": fmt2(r.monetary),
                    "r": r.r,
                    "f": r.f,
                    "m": r.m,
                    "segment": r.segment.code,
                }
                for r in rep.rows
            ],
        }
    )


@router.get(
    "/reports/rfm/migration",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="RFM: customers by segment at one date and segment at another",
)
async def rfm_migration(request: Request) -> Response:
    _, pid = await _who(request)
    q = request.query_params
    a = report.parse_as_of(q.get("from"), field="from")
    b = report.parse_as_of(q.get("to"), field="to")
    window = report.parse_window(q.get("window_days"))
    fmt = _format(request)
    mig = await report.migration(
        _rt(request), pid, a=a, b=b, window_days=window, segments=_segments()
    )
    if fmt != "json":
        return _file([report.migration_table(mig)], fmt, f"rfm-migration-{a}-{b}")
    return _json(
        {
            "from": a.isoformat(),
            "to": b.isoformat(),
            "window_days": window,
            "segments": mig.codes,
            "cells": [
                {"from": x or None, "to": y or None, "customers": n}
                for (x, y), n in sorted(mig.cells.items())
            ],
        }
    )
