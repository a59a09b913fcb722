"""Admin API: analytics reports (issue 8), token-authenticated, ``reports.read``.

``GET /api/admin/v1/reports/promotions?program=&from=&to=&margin=[&format=csv|xlsx]``:
the promotion-effect report (``analytics.promotions``) as JSON, or as a file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from kopilka.analytics import promotions
from kopilka.api.admin.common import ok as _ok
from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.routes import ERRORS, SECURITY, _auth
from kopilka.domain.roles import Perm
from kopilka.services import exports, scope

router = APIRouter(prefix="/api/admin/v1/reports", tags=["Admin"])


@router.get(
    "/promotions",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Promotion effect: participants, cost, incremental sales with 95% intervals, ROI",
)
async def promotions_report(
    request: Request,
    day_from: Annotated[str, Query(alias="from", description="first day, 2026-10-01")],
    day_to: Annotated[str, Query(alias="to", description="last day, included")],
    program: Annotated[str | None, Query(max_length=64, description="program code")] = None,
    margin: Annotated[
        str | None, Query(max_length=10, description="gross margin in percent, e.g. 25")
    ] = None,
    fmt: Annotated[
        str | None, Query(alias="format", pattern="^(json|csv|xlsx)$", description="default json")
    ] = None,
) -> Response:
    rt = _rt(request)
    token = await _auth(request, program, Perm.REPORTS_READ)
    scope.require_whole_program(token.actor())
    first = promotions.parse_day(day_from, field="from")
    last = promotions.parse_day(day_to, field="to")
    share = promotions.parse_margin(margin)
    pid, code = await promotions.find_program(rt, program or token.program_code)
    rep = await promotions.promotion_effects(
        rt, program_id=pid, day_from=first, day_to=last, margin=share
    )
    if fmt in exports.FORMATS:
        table = promotions.tables(rep)[0]
        return StreamingResponse(
            exports.chunks(table, fmt),
            media_type=exports.media_type(fmt),
            headers=exports.attachment(f"promotions-{first}-{last}", fmt),
        )
    return _ok(promotions.report_json(rep, code))
