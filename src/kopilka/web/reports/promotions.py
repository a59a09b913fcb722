"""/admin/reports/promotions: the promotion-effect report (``analytics.promotions``).

The list: a table of promotions with what they gave and cost and their effect, the
effects with their 95 % intervals as an error-bar chart (ECharts candlesticks whose box
is flat at the estimate and whose whiskers are the interval), CSV/Excel downloads.
/admin/reports/promotions/{id}: one promotion, with its daily sales per member of the
two groups compared.  Both read ``from``, ``to`` (whole days, program time) and
``margin`` (percent) from the query; bad values are shown at their field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from kopilka.analytics import promotions as report
from kopilka.domain.roles import Perm
from kopilka.services import exports, programs, scope
from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.auth import Console, Forbidden, console
from kopilka.web.reports.promotions_strings import RU
from kopilka.web.templating import SECURITY_HEADERS, render

i18n.add(RU, area="effect")

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.REPORTS_READ))


async def _whole_program(c: Annotated[Console, READ]) -> Console:
    """The effect report covers every store of the program: not a partner's or a store's
    staff's (ADR 0026)."""
    if scope.partner_scoped(c.actor):
        raise Forbidden
    return c


WHOLE = Depends(_whole_program)
DEFAULT_DAYS = 30
DEFAULT_MARGIN = "25"
# A field's message in the console (the service's own words are for the API and CLI).
FIELD_MESSAGES = {
    "from": "a date such as 2026-11-01",
    "to": "a date such as 2026-11-30, not before the first day",
    "margin": "a percent from 0 to 100, e.g. 25",
}
METHODS = {
    report.HOLDOUT: "held-out control group",
    report.PRE_PERIOD: "matched pre-period",
}


@dataclass(frozen=True)
class Query:
    day_from: date
    day_to: date
    margin: Decimal | None
    values: dict[str, str]
    errors: dict[str, str]

    @property
    def query(self) -> str:
        return urlencode({k: v for k, v in self.values.items() if v})


def _query(request: Request, c: Console) -> Query:
    """The period and margin asked for (last 30 days and 25 % when not given)."""
    q = request.query_params
    today = c.rt.now().date()
    values = {
        "from": q.get("from", (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat()).strip(),
        "to": q.get("to", today.isoformat()).strip(),
        "margin": q.get("margin", DEFAULT_MARGIN).strip(),
    }
    errors: dict[str, str] = {}
    day_from = day_to = today
    margin = None

    def say(field: str) -> None:
        errors[field] = i18n.gettext(c.lang, FIELD_MESSAGES[field], "effect")

    try:
        day_from = report.parse_day(values["from"], field="from")
    except ServiceError:
        say("from")
    try:
        day_to = report.parse_day(values["to"], field="to")
    except ServiceError:
        say("to")
    try:
        margin = report.parse_margin(values["margin"])
    except ServiceError:
        say("margin")
    if not errors:
        try:
            report.check_days(day_from, day_to)
        except ServiceError:
            say("to")
    return Query(day_from, day_to, margin, values, errors)


@router.get("/admin/reports/promotions")
async def promotions_page(request: Request, c: Annotated[Console, WHOLE]) -> Response:
    prog = c.need_program()
    q = _query(request, c)
    rep = None
    if not q.errors:
        rep = await report.promotion_effects(
            c.rt, program_id=prog.id, day_from=q.day_from, day_to=q.day_to, margin=q.margin
        )
    ctx: dict[str, Any] = {
        "q": q,
        "values": q.values,
        "errors": q.errors,
        "rep": rep,
        "cells": {r.promotion_id: cells(r, c.lang) for r in rep.rows} if rep else {},
        "methods": METHODS,
        "effect_option": effect_chart(rep, c.lang) if rep is not None else None,
    }
    return render(request, "reports/promotions.html", ctx, status=422 if q.errors else 200)


@router.get("/admin/reports/promotions.{fmt}")
async def promotions_file(request: Request, fmt: str, c: Annotated[Console, WHOLE]) -> Response:
    prog = c.need_program()
    q = _query(request, c)
    if q.errors or fmt not in exports.FORMATS:
        return Response(
            "; ".join(f"{k}: {v}" for k, v in q.errors.items()) or "csv or xlsx",
            status_code=422,
            headers=SECURITY_HEADERS,
        )
    rep = await report.promotion_effects(
        c.rt, program_id=prog.id, day_from=q.day_from, day_to=q.day_to, margin=q.margin
    )
    tables = report.tables(rep)
    body = exports.xlsx_book_chunks(tables) if fmt == "xlsx" else exports.csv_chunks(tables[0])
    return StreamingResponse(
        body,
        media_type=exports.media_type(fmt),
        headers={
            **SECURITY_HEADERS,
            **exports.attachment(f"promotions-{q.day_from}-{q.day_to}", fmt),
        },
    )


@router.get("/admin/reports/promotions/{promotion_id}")
async def promotion_page(
    request: Request, promotion_id: str, c: Annotated[Console, WHOLE]
) -> Response:
    prog = c.need_program()
    _, doc = await programs.current(c.rt, prog.code)
    if not any(p.get("id") == promotion_id for p in doc.get("promotions", [])):
        raise ServiceError("not_found", f"no promotion {promotion_id!r}", field="promotion_id")
    q = _query(request, c)
    row = daily = None
    if not q.errors:
        rep = await report.promotion_effects(
            c.rt, program_id=prog.id, day_from=q.day_from, day_to=q.day_to, margin=q.margin
        )
        row = next((r for r in rep.rows if r.promotion_id == promotion_id), None)
        daily = await report.promotion_daily(
            c.rt,
            program_id=prog.id,
            promotion_id=promotion_id,
            day_from=q.day_from,
            day_to=q.day_to,
        )
    ctx: dict[str, Any] = {
        "q": q,
        "values": q.values,
        "errors": q.errors,
        "promotion_id": promotion_id,
        "row": row,
        "cells": cells(row, c.lang) if row is not None else {},
        "daily": daily,
        "methods": METHODS,
        "daily_option": daily_chart(daily, c.lang) if daily is not None else None,
    }
    return render(request, "reports/promotion.html", ctx, status=422 if q.errors else 200)


# --- what the table shows --------------------------------------------------------------------


def _span(lang: str, est: Any, low: Any, high: Any, show: Any) -> tuple[str, str]:
    """(the estimate, "[low; high]") as text; dashes when absent."""
    if est is None:
        return "—", ""
    if low is None or high is None:
        return show(est), ""
    return show(est), f"[{show(low)}; {show(high)}]"


def cells(r: report.PromotionFigures, lang: str) -> dict[str, tuple[str, str]]:
    """The effect columns of a row, formatted for ``lang``."""
    e = r.effect
    if e is None:
        return {}

    def rub(x: Any) -> str:
        return i18n.money(lang, x if isinstance(x, Decimal) else report.money_est(x))

    def pp(x: float) -> str:  # a difference of shares, in percentage points
        return i18n.number(lang, Decimal(repr(round(x * 100, 1))), 1) + (
            " п. п." if lang == "ru" else " pp"
        )

    def pct(x: float) -> str:
        return i18n.number(lang, Decimal(repr(round(x * 100))), 0) + " %"

    s, rate = e.sales, e.rate
    return {
        "effect": _span(lang, s.estimate, s.low, s.high, rub),
        "means": (rub(s.mean_a), rub(s.mean_b)),
        "rate": _span(lang, *(rate.estimate, rate.low, rate.high), pp) if rate else ("—", ""),
        "incremental": _span(lang, e.incremental, e.incremental_low, e.incremental_high, rub),
        "roi": _span(lang, e.roi, e.roi_low, e.roi_high, pct),
    }


# --- charts (ECharts options, drawn by charts.js) ---------------------------------------------


def _words(lang: str) -> Callable[[str], str]:
    def t(text: str) -> str:
        return i18n.gettext(lang, text, "effect")

    return t


def _f(x: float | Decimal | None) -> float | None:
    return None if x is None else round(float(x), 2)


def effect_chart(rep: report.EffectReport, lang: str) -> dict[str, Any] | None:
    """Each promotion's effect per member with its interval: a flat candlestick
    ``[estimate, estimate, low, high]`` (the whiskers) and a dot at the estimate."""
    rows = [r for r in rep.rows if r.effect is not None and r.effect.sales.low is not None]
    if not rows:
        return None
    t = _words(lang)
    names = [r.name for r in rows]
    boxes = []
    dots = []
    for r in rows:
        s = r.effect.sales  # type: ignore[union-attr]
        est = _f(s.estimate)
        boxes.append([est, est, _f(s.low), _f(s.high)])
        dots.append(est)
    return {
        "grid": {"left": 70, "right": 20, "top": 50, "bottom": 40},
        "tooltip": {"trigger": "axis", "valueFormatter": "fmt:money"},
        "legend": {"data": [t("Effect per member"), t("95% interval")], "top": 0},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"interval": 0}},
        "yAxis": {"type": "value", "name": "₽", "axisLabel": {"formatter": "fmt:number"}},
        "series": [
            {
                "name": t("95% interval"),
                "type": "candlestick",
                "data": boxes,
                "barMaxWidth": 14,
                "itemStyle": {
                    "color": "#1e88e5",
                    "color0": "#1e88e5",
                    "borderColor": "#1e88e5",
                    "borderColor0": "#1e88e5",
                },
                "markLine": {
                    "symbol": "none",
                    "silent": True,
                    "data": [{"yAxis": 0}],
                    "lineStyle": {"color": "#888", "type": "dashed"},
                    "label": {"show": False},
                },
            },
            {
                "name": t("Effect per member"),
                "type": "scatter",
                "data": dots,
                "symbolSize": 10,
                "itemStyle": {"color": "#d81b60"},
            },
        ],
    }


def daily_chart(d: report.Daily, lang: str) -> dict[str, Any]:
    """Sales per member per day of the two groups compared."""
    t = _words(lang)
    if d.method == report.HOLDOUT:
        a, b = t("Treatment"), t("Control (held out)")
    else:
        a, b = t("Participants"), t("Comparable non-participants")
    days = [x.isoformat() for x in d.days]
    series: list[dict[str, Any]] = [
        {"name": a, "type": "line", "data": [_f(v) for v in d.a], "showSymbol": False},
        {"name": b, "type": "line", "data": [_f(v) for v in d.b], "showSymbol": False},
    ]
    if d.period_start is not None:
        series[0]["markLine"] = {
            "symbol": "none",
            "silent": True,
            "data": [{"xAxis": d.period_start.isoformat()}],
            "label": {"formatter": t("promotion starts")},
            "lineStyle": {"color": "#888", "type": "dashed"},
        }
    return {
        "grid": {"left": 60, "right": 20, "top": 60, "bottom": 40},
        "tooltip": {"trigger": "axis", "valueFormatter": "fmt:money"},
        "legend": {"data": [a, b], "top": 0},
        "color": ["#d81b60", "#1e88e5"],
        "xAxis": {"type": "category", "data": days},
        "yAxis": {"type": "value", "name": "₽", "axisLabel": {"formatter": "fmt:number"}},
        "series": series,
    }
