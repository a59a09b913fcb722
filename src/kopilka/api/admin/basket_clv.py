"""Admin API: the basket and CLV reports (issue 8, docs/analytics/basket.md and clv.md),
the same services as the console and ``kopilka report``; ``reports.read`` needed.

``format=json`` (default) answers a page of rows with the totals; ``csv`` and ``xlsx``
the whole table as a file (CSV as the CLI writes it; XLSX with every sheet).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from kopilka.api.admin.common import ok as _ok
from kopilka.api.admin.routes import ERRORS, SECURITY
from kopilka.domain import basket as b
from kopilka.domain.roles import Perm
from kopilka.services import admin, basket, clv, exports
from kopilka.services.audit import Actor
from kopilka.services.runtime import Runtime

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])
Format = Annotated[str, Query(pattern="^(json|csv|xlsx)$")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=1000)]


async def _who(request: Request, program: str | None) -> tuple[Runtime, Actor, int, str]:
    rt: Runtime = request.app.state.runtime
    token = await admin.check_token(rt, request.headers.get("authorization", ""))
    actor = token.actor(request.client.host if request.client else None)
    actor.require(Perm.REPORTS_READ)
    code = program or token.program_code
    if code is not None:
        token.check_program(code)
    pid = await basket.program_of(rt, code)
    return rt, actor, pid, code or ""


def _file(tables: list[exports.Table], fmt: str, name: str) -> Response:
    chunks = (
        exports.xlsx_book_chunks(tables)
        if fmt == "xlsx"
        else exports.csv_chunks(tables[0], for_spreadsheet=False)
    )
    return StreamingResponse(
        chunks, media_type=exports.media_type(fmt), headers=exports.attachment(name, fmt)
    )


@router.get(
    "/reports/basket",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Frequently bought together: itemsets and association rules",
)
async def basket_report(
    request: Request,
    min_support: Annotated[str, Query(description="0 < S <= 1")],
    min_confidence: Annotated[str, Query(description="0 <= C <= 1")] = "0",
    max_len: Annotated[str, Query(description="2..10")] = str(b.MAX_LEN_DEFAULT),
    date_from: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
    date_to: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD")] = None,
    store: str | None = None,
    program: str | None = None,
    what: Annotated[str, Query(pattern="^(rules|itemsets)$")] = "rules",
    format: Format = "json",
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    rt, actor, pid, code = await _who(request, program)
    q = basket.parse_query(
        {
            "min_support": min_support,
            "min_confidence": min_confidence,
            "max_len": max_len,
            "from": date_from,
            "to": date_to,
            "store": store,
        }
    )
    rep = await basket.run_report(rt, actor, pid, q)
    if format != "json":
        return _file(basket.tables(rep, what, fmt=format), format, f"basket-{what}-{code}")
    m = rep.mined
    return _ok(
        {
            "receipts": m.receipts,
            "min_support": q.params.min_support,
            "min_confidence": q.params.min_confidence,
            "max_len": q.params.max_len,
            "rules_total": len(m.rules),
            "itemsets_total": len(m.itemsets),
            "rules": [_rule(r) for r in m.rules[offset : offset + limit]],
            "itemsets": [
                {"itemset": list(i.items), "support": i.support, "length": len(i.items)}
                for i in m.itemsets[offset : offset + limit]
            ],
            "seconds": {"read": round(rep.load_s, 3), "count": round(rep.mine_s, 3)},
        }
    )


def _rule(r: b.Rule) -> dict[str, Any]:
    return {
        "antecedents": list(r.antecedents),
        "consequents": list(r.consequents),
        "support": r.support,
        "confidence": r.confidence,
        "lift": r.lift,
    }


@router.get(
    "/reports/clv",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Customer lifetime value: BG/NBD and Gamma-Gamma parameters and predictions",
)
async def clv_report(
    request: Request,
    as_of: Annotated[str, Query(description="the last local date counted, YYYY-MM-DD")],
    time_unit: Annotated[str, Query(pattern="^(day|week)$")] = "week",
    horizon: str | None = None,
    penalizer: str | None = None,
    discount_rate: str | None = None,
    clv_months: str | None = None,
    program: str | None = None,
    format: Format = "json",
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    rt, actor, pid, code = await _who(request, program)
    s = clv.parse_query(
        {
            "as_of": as_of,
            "time_unit": time_unit,
            "horizon": horizon,
            "penalizer": penalizer,
            "discount_rate": discount_rate,
            "clv_months": clv_months,
        }
    )
    rep = await clv.run_report(rt, actor, pid, s)
    if format != "json":
        return _file(clv.tables(rep, fmt=format), format, f"clv-{code}-{s.as_of.isoformat()}")
    rows = rep.fitted.customers[offset : offset + limit]
    return _ok(
        {
            "params": rep.fitted.params,
            "as_of": s.as_of.isoformat(),
            "time_unit": s.unit,
            "horizon": s.horizon,
            "customers_total": len(rep.fitted.customers),
            "repeat_customers": rep.fitted.repeaters,
            "purchases": rep.purchases,
            "customers": [dict(zip(clv.HEADER, _json_row(c), strict=True)) for c in rows],
        }
    )


def _json_row(c: Any) -> tuple[Any, ...]:
    """Money as exact decimal text (to the kopeck), statistics as numbers."""
    r = clv.row(c)
    return (
        r[0],
        r[1],
        r[2],
        r[3],
        str(r[4]),
        c.p_alive,
        c.expected_purchases,
        str(r[7]),
        str(r[8]),
    )
