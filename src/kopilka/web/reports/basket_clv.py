"""The console's basket and CLV pages: /admin/reports/basket and /admin/reports/clv.

Each is a GET form (the query string is the report's options, so a page can be shared
and exported as it is shown), a summary, charts and a paged table.  A report is computed
once and kept a few minutes per program and options, so paging does not count again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from kopilka.domain import basket as b
from kopilka.domain import clv as dclv
from kopilka.domain.roles import Perm
from kopilka.services import basket, clv, exports
from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.auth import Console, console
from kopilka.web.tables import PageRequest
from kopilka.web.templating import redirect, render

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.REPORTS_READ))
SAVE = Depends(console(Perm.PROGRAMS_WRITE))
KEEP_S = 600.0
KEEP_MAX = 8
BASKET_FIELDS = ("min_support", "min_confidence", "max_len", "from", "to", "store")
CLV_FIELDS = ("as_of", "time_unit", "horizon", "penalizer", "discount_rate", "clv_months")
_kept: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()


async def _cached(key: tuple[Any, ...], make: Callable[[], Awaitable[Any]]) -> Any:
    now = time.monotonic()
    hit = _kept.get(key)
    if hit is not None and now - hit[0] < KEEP_S:
        return hit[1]
    value = await make()
    _kept[key] = (now, value)
    while len(_kept) > KEEP_MAX:
        _kept.popitem(last=False)
    return value


def _values(request: Request, fields: tuple[str, ...]) -> dict[str, str]:
    return {k: request.query_params.get(k, "").strip() for k in fields}


def _error(c: Console, exc: ServiceError) -> dict[str, str]:
    return {
        exc.field or "form": i18n.gettext(c.lang, "Check this value", "reports") + ": " + exc.detail
    }


# --- baskets ---------------------------------------------------------------------------------


async def _basket(c: Console, values: dict[str, str]) -> basket.BasketReport:
    prog = c.need_program()
    q = basket.parse_query(values)
    key = ("basket", prog.id, c.actor.store_id, c.actor.partner_id, q)
    rep: basket.BasketReport = await _cached(
        key, lambda: basket.run_report(c.rt, c.actor, prog.id, q)
    )
    return rep


def scatter(rules: list[b.Rule], *, top: int = 500) -> dict[str, Any]:
    """ECharts: support (x) against confidence (y), the dot's size by lift."""
    shown = rules[:top]
    most = max((r.lift for r in shown), default=1.0) or 1.0
    data = [
        {
            "value": [round(r.support, 6), round(r.confidence, 6), round(r.lift, 4)],
            "name": f"{b.items_text(r.antecedents)} → {b.items_text(r.consequents)}",
            "symbolSize": 6 + 24 * r.lift / most,
        }
        for r in shown
    ]
    return {
        "grid": {"left": 60, "right": 20, "top": 20, "bottom": 50},
        "tooltip": {"trigger": "item"},
        "xAxis": {"type": "value", "name": "support", "nameLocation": "middle", "nameGap": 30},
        "yAxis": {"type": "value", "name": "confidence", "max": 1},
        "series": [{"type": "scatter", "data": data, "itemStyle": {"opacity": 0.7}}],
    }


@router.get("/admin/reports/basket")
async def basket_page(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    values = _values(request, BASKET_FIELDS)
    ran = bool(values["min_support"])
    if not ran:
        values.update({"min_support": "0.01", "min_confidence": "0.2", "max_len": "3"})
    stores = await basket.store_options(c.rt, c.actor, prog.id)
    ctx: dict[str, Any] = {"values": values, "errors": {}, "stores": stores, "rep": None}
    if not ran:
        return render(request, "reports/basket.html", ctx)
    try:
        rep = await _basket(c, values)
    except ServiceError as exc:
        if exc.status == 403:
            raise
        return render(request, "reports/basket.html", {**ctx, "errors": _error(c, exc)}, status=422)
    what = "itemsets" if request.query_params.get("what") == "itemsets" else "rules"
    pr = PageRequest.of(request, sorts=("rank",), default="rank")
    items: list[Any] = rep.mined.itemsets if what == "itemsets" else rep.mined.rules
    rows = items[pr.offset : pr.offset + pr.limit]
    shown = [_basket_row(x) for x in rows]
    skus = {
        s
        for row in shown
        for k in ("itemset", "antecedents", "consequents")
        for s in row.get(k, ())
    }
    return render(
        request,
        "reports/basket.html",
        {
            **ctx,
            "rep": rep,
            "what": what,
            "page": pr.page(shown, len(items)),
            "names": await basket.sku_names(c.rt, prog.id, skus),
            "scatter": scatter(rep.mined.rules),
            "query": urlencode({k: v for k, v in values.items() if v}),
        },
    )


def _basket_row(x: b.Rule | b.Itemset) -> dict[str, Any]:
    if isinstance(x, b.Itemset):
        return {"itemset": x.items, "support": x.support, "length": len(x.items)}
    return {
        "antecedents": x.antecedents,
        "consequents": x.consequents,
        "support": x.support,
        "confidence": x.confidence,
        "lift": x.lift,
    }


@router.get("/admin/reports/basket/export")
async def basket_export(request: Request, c: Annotated[Console, READ]) -> Response:
    fmt = "xlsx" if request.query_params.get("format") == "xlsx" else "csv"
    what = "itemsets" if request.query_params.get("what") == "itemsets" else "rules"
    rep = await _basket(c, _values(request, BASKET_FIELDS))
    tables = basket.tables(rep, what, fmt=fmt)
    chunks = exports.xlsx_book_chunks(tables) if fmt == "xlsx" else exports.csv_chunks(tables[0])
    return StreamingResponse(
        chunks,
        media_type=exports.media_type(fmt),
        headers=exports.attachment(f"basket-{what}", fmt),
    )


@router.post("/admin/reports/basket/save")
async def basket_save(request: Request, c: Annotated[Console, SAVE]) -> Response:
    """Store the shown rules for the cashier screen (post/redirect/get)."""
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in BASKET_FIELDS}
    back = "/admin/reports/basket?" + urlencode({k: v for k, v in values.items() if v})
    try:
        rep = await _basket(c, values)
    except ServiceError as exc:
        if exc.status == 403:
            raise
        return redirect(back, flash=exc.detail)
    saved = await basket.do_save_rules(c.rt, c.need_program().id, rep)
    text = i18n.gettext(c.lang, "Rules saved for the cashier screen", "reports")
    return redirect(back, flash=f"{text}: {saved}")


# --- customer lifetime value ----------------------------------------------------------------


def histogram(values: list[float], *, bins: int, label: str, low: float = 0.0) -> dict[str, Any]:
    """ECharts: how many customers fall in each of ``bins`` equal ranges."""
    high = max(values, default=1.0)
    high = high if high > low else low + 1.0
    width = (high - low) / bins
    counts = [0] * bins
    for v in values:
        counts[min(int((v - low) / width), bins - 1)] += 1
    names = [f"{low + i * width:.2f}–{low + (i + 1) * width:.2f}" for i in range(bins)]
    return {
        "grid": {"left": 50, "right": 20, "top": 20, "bottom": 70},
        "tooltip": {"trigger": "axis"},
        "xAxis": {
            "type": "category",
            "data": names,
            "name": label,
            "nameLocation": "middle",
            "nameGap": 55,
            "axisLabel": {"rotate": 30, "fontSize": 10},
        },
        "yAxis": {"type": "value", "name": "customers"},
        "series": [{"type": "bar", "data": counts}],
    }


async def _clv(c: Console, values: dict[str, str]) -> clv.ClvReport:
    prog = c.need_program()
    s = clv.parse_query(values)
    key = ("clv", prog.id, c.actor.store_id, c.actor.partner_id, s)
    rep: clv.ClvReport = await _cached(key, lambda: clv.run_report(c.rt, c.actor, prog.id, s))
    return rep


@router.get("/admin/reports/clv")
async def clv_page(request: Request, c: Annotated[Console, READ]) -> Response:
    values = _values(request, CLV_FIELDS)
    ran = bool(values["as_of"])
    if not ran:
        values["as_of"] = (c.rt.now() - timedelta(days=1)).date().isoformat()
        values["time_unit"] = "week"
    ctx: dict[str, Any] = {"values": values, "errors": {}, "rep": None, "names": dclv.PARAM_NAMES}
    if not ran:
        return render(request, "reports/clv.html", ctx)
    try:
        rep = await _clv(c, values)
    except ServiceError as exc:
        if exc.status == 403:
            raise
        return render(request, "reports/clv.html", {**ctx, "errors": _error(c, exc)}, status=422)
    pr = PageRequest.of(request, sorts=("rank",), default="rank")
    rows = [clv.row(x) for x in rep.fitted.customers[pr.offset : pr.offset + pr.limit]]
    return render(
        request,
        "reports/clv.html",
        {
            **ctx,
            "rep": rep,
            "page": pr.page(rows, len(rep.fitted.customers)),
            "alive": histogram([x.p_alive for x in rep.fitted.customers], bins=10, label="p_alive"),
            "value": histogram(
                [x.expected_value for x in rep.fitted.customers], bins=20, label="expected_value"
            ),
            "query": urlencode({k: v for k, v in values.items() if v}),
        },
    )


@router.get("/admin/reports/clv/export")
async def clv_export(request: Request, c: Annotated[Console, READ]) -> Response:
    fmt = "xlsx" if request.query_params.get("format") == "xlsx" else "csv"
    rep = await _clv(c, _values(request, CLV_FIELDS))
    tables = clv.tables(rep, fmt=fmt)
    chunks = exports.xlsx_book_chunks(tables) if fmt == "xlsx" else exports.csv_chunks(tables[0])
    return StreamingResponse(
        chunks, media_type=exports.media_type(fmt), headers=exports.attachment("clv", fmt)
    )
