"""Admin API: the territorial map's figures (issue 8) — the same report as the console's
/admin/reports/map (``analytics.map``), token-authenticated, ``reports.read``."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from kopilka.analytics import map as amap
from kopilka.analytics import map_out
from kopilka.api.admin.routes import ERRORS, JSON, SECURITY
from kopilka.domain.roles import Perm
from kopilka.services import admin, programs
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])


async def _program_id(rt: Runtime, code: str | None, token_code: str | None) -> int:
    """The program asked for; else the token's; else the only one."""
    code = code or token_code
    rows = await programs.list_programs(rt, code=code)
    if code is not None and not rows:
        raise programs.not_found(code)
    if len(rows) != 1:
        raise ServiceError(
            "program_required", "program: several programs; name one", field="program"
        )
    return rows[0].id


@router.get(
    "/reports/map",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The territorial map: figures per region and store, members far from stores",
    description=(
        "Regions (every federal subject the map knows, ISO 3166-2 codes, with stores, "
        "members, sales, receipts, members per store and the choropleth colour per "
        "measure), stores (coordinates and figures) and the towns of members who live "
        "farther than `far_km` from every store.  Money as strings.  Definitions: "
        "docs/analytics/map.md."
    ),
)
async def map_report(
    request: Request,
    program: Annotated[str | None, Query(max_length=64)] = None,
    date_from: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
    date_to: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, inclusive")] = None,
    far_km: Annotated[str | None, Query(description="default 30")] = None,
    lang: Annotated[str, Query(pattern="^(ru|en)$")] = "en",
) -> Response:
    rt: Runtime = request.app.state.runtime
    token = await admin.check_token(rt, request.headers.get("authorization", ""))
    if program is not None:
        token.check_program(program)
    actor = token.actor(request.client.host if request.client else None)
    actor.require(Perm.REPORTS_READ)
    pid = await _program_id(rt, program, token.program_code)
    period = amap.parse_period(date_from, date_to, today=rt.now().astimezone(UTC).date())
    km = amap.parse_far_km(far_km)
    report = await amap.compute(rt, actor, pid, period=period, far_km=km)
    body = map_out.to_json(report, lang)
    del body["tiles"]
    return Response(orjson.dumps(body), media_type=JSON)
