"""Console pages of the summary (issue 8): /admin/reports/summary (KPI cards with the
previous period's change, charts over time), /admin/reports/stores (stores and cashiers)
and /admin/reports/cohorts (retention heat map).  Each answers ``?format=csv|xlsx`` with
the file of what it shows.  A partner or store user sees its own stores only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.responses import Response, StreamingResponse

from kopilka.analytics import cohorts, facts, stores, summary
from kopilka.domain import summary as dm
from kopilka.domain.roles import Perm
from kopilka.domain.summary import Period, PeriodError
from kopilka.services import exports
from kopilka.store import tables as t
from kopilka.web import i18n
from kopilka.web.auth import Console, console
from kopilka.web.reports.summary_strings import KPI_LABELS, RU
from kopilka.web.templating import render

i18n.add(RU, area="reports")
router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.REPORTS_READ))


@dataclass
class Form:
    """The filter form as typed, the values it means, and a message per bad field."""

    values: dict[str, str]
    period: Period | None = None
    filters: summary.Filters = summary.NO_FILTERS
    errors: dict[str, str] = field(default_factory=dict)


async def _options(c: Console, program_id: int) -> dict[str, Any]:
    """Stores and cities the viewer may pick (his scope only)."""
    st = t.stores
    q = select(st.c.id, st.c.code, st.c.name, st.c.city).where(st.c.program_id == program_id)
    if c.actor.partner_id is not None:
        q = q.where(st.c.partner_id == c.actor.partner_id)
    if c.actor.store_id is not None:
        q = q.where(st.c.id == c.actor.store_id)
    async with c.rt.engine.connect() as conn:
        rows = (await conn.execute(q.order_by(st.c.code))).all()
    return {
        "stores": [(str(r.id), f"{r.code} — {r.name}") for r in rows],
        "cities": sorted({(r.city, r.city) for r in rows if r.city}),
    }


def _parse_date(form: Form, name: str, default: date) -> date | None:
    text = form.values.get(name, "").strip()
    if not text:
        form.values[name] = default.isoformat()
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        form.errors[name] = "Enter a date as YYYY-MM-DD."
        return None


async def read_form(request: Request, c: Console, *, days: int = 30) -> Form:
    """The GET parameters; the default period is the last ``days`` days up to today."""
    prog = c.need_program()
    settings = await c.rt.program(prog.id)
    today = facts.local_date(c.rt.now(), settings.timezone)
    form = Form({k: v for k, v in request.query_params.items() if k != "format"})
    end = _parse_date(form, "to", today)
    start = _parse_date(form, "from", today - timedelta(days=days - 1))
    if start and end:
        try:
            form.period = Period(start, end)
        except PeriodError as exc:
            form.errors[exc.field] = (
                "The period ends before it starts." if exc.field == "to" else "Too long a period."
            )
    if form.values.get("by", "day") not in dm.GRANULARITIES:
        form.errors["by"] = "Choose day, week or month."
    store = form.values.get("store", "")
    if store and not store.isdigit():
        form.errors["store"] = "Choose a store from the list."
    form.filters = summary.Filters(
        (int(store),) if store.isdigit() else (),
        form.values.get("city", "").strip(),
        form.values.get("tag", "").strip(),
        form.values.get("tier", "").strip(),
    )
    return form


def _file(tables: list[exports.Table], fmt: str, name: str) -> Response:
    body = exports.xlsx_book_chunks(tables) if fmt == "xlsx" else exports.csv_chunks(tables[0])
    return StreamingResponse(
        body, media_type=exports.media_type(fmt), headers=exports.attachment(name, fmt)
    )


def _fmt(request: Request) -> str | None:
    fmt = request.query_params.get("format")
    return fmt if fmt in exports.FORMATS else None


@router.get("/admin/reports/summary")
async def summary_page(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    form = await read_form(request, c)
    ctx: dict[str, Any] = {"form": form, "opts": await _options(c, prog.id), "rep": None}
    if form.period is None or form.errors:
        return render(request, "reports/summary.html", ctx, status=400)
    rep = await summary.summary_report(
        c.rt, program_id=prog.id, period=form.period, granularity=form.values.get("by", "day"),
        filters=form.filters, actor=c.actor,
    )  # fmt: skip
    if fmt := _fmt(request):
        return _file(summary.tables(rep), fmt, f"summary-{rep.period.start}-{rep.period.end}")
    lang = c.lang
    ctx.update(
        rep=rep,
        kpis=[
            (k, kind, i18n.gettext(lang, KPI_LABELS[k], "reports"), rep.kpis[k])
            for k, kind in dm.KPI_KINDS
        ],
        charts=charts(rep, lang),
        query=request.url.query,
    )
    return render(request, "reports/summary.html", ctx)


def _tr(lang: str, text: str) -> str:
    return i18n.gettext(lang, text, "reports")


def charts(rep: summary.SummaryReport, lang: str) -> dict[str, Any]:
    """ECharts options: sales and members' share; receipts and average receipt; points."""
    x = [r["bucket"].isoformat() for r in rep.series]

    def col(name: str) -> list[float | None]:
        return [None if r[name] is None else float(r[name]) for r in rep.series]

    def option(series: list[dict[str, Any]], right: str | None = None) -> dict[str, Any]:
        axes: list[dict[str, Any]] = [{"type": "value", "axisLabel": {"formatter": "fmt:number"}}]
        if right:
            axes.append(
                {"type": "value", "axisLabel": {"formatter": right}, "splitLine": {"show": False}}
            )
        return {
            "tooltip": {"trigger": "axis"},
            "legend": {"top": 0},
            "grid": {"left": 60, "right": 50 if right else 20, "top": 30, "bottom": 30},
            "xAxis": {"type": "category", "data": x},
            "yAxis": axes,
            "series": series,
        }  # fmt: skip

    return {
        "sales": option(
            [{"name": _tr(lang, "Sales"), "type": "bar", "data": col("sales"),
              "tooltip": {"valueFormatter": "fmt:money"}},
             {"name": _tr(lang, "Members' share of sales"), "type": "line", "yAxisIndex": 1,
              "data": col("members_share"), "tooltip": {"valueFormatter": "fmt:percent"}}],
            right="fmt:percent",
        ),
        "receipts": option(
            [{"name": _tr(lang, "Receipts"), "type": "bar", "data": col("receipts")},
             {"name": _tr(lang, "Average receipt"), "type": "line", "yAxisIndex": 1,
              "data": col("average_receipt"), "tooltip": {"valueFormatter": "fmt:money"}}],
            right="fmt:number",
        ),
        "points": option(
            [{"name": _tr(lang, "Points earned"), "type": "bar", "data": col("points_earned")},
             {"name": _tr(lang, "Points burned"), "type": "bar", "data": col("points_burned")}]
        ),
    }  # fmt: skip


@router.get("/admin/reports/stores")
async def stores_page(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    form = await read_form(request, c)
    ctx: dict[str, Any] = {"form": form, "opts": await _options(c, prog.id), "rows": None}
    sort = form.values.get("sort", "sales")
    if sort not in stores.SORTS:
        form.errors["sort"] = "Choose a column to sort by."
    if form.period is None or form.errors:
        return render(request, "reports/stores.html", ctx, status=400)
    rows = await stores.store_rows(
        c.rt, program_id=prog.id, period=form.period, filters=form.filters, actor=c.actor,
        sort=sort,
    )  # fmt: skip
    if fmt := _fmt(request):
        return _file(stores.tables(rows), fmt, f"stores-{form.period.start}-{form.period.end}")
    ctx.update(
        rows=[(r, r.values()) for r in rows],
        sort=sort,
        as_of=await facts.watermark(c.rt),
        query=request.url.query,
        base={k: v for k, v in form.values.items() if k != "sort"},
    )
    return render(request, "reports/stores.html", ctx)


@router.get("/admin/reports/cohorts")
async def cohorts_page(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    form = await read_form(request, c, days=365)
    ctx: dict[str, Any] = {"form": form, "opts": await _options(c, prog.id), "rows": None}
    if form.period is None or form.errors:
        return render(request, "reports/cohorts.html", ctx, status=400)
    settings = await c.rt.program(prog.id)
    rows = await cohorts.cohort_rows(
        c.rt, program_id=prog.id, period=form.period, filters=form.filters, actor=c.actor,
        as_of=facts.local_date(c.rt.now(), settings.timezone),
    )  # fmt: skip
    if fmt := _fmt(request):
        return _file(cohorts.tables(rows), fmt, f"cohorts-{form.period.start}-{form.period.end}")
    ctx.update(
        rows=rows,
        horizon=cohorts.HORIZON,
        heat=heatmap(rows, c.lang),
        as_of=await facts.watermark(c.rt),
        query=request.url.query,
    )
    return render(request, "reports/cohorts.html", ctx)


def heatmap(rows: list[dm.Cohort], lang: str) -> dict[str, Any]:
    months = [r.month.strftime("%Y-%m") for r in rows]
    data = [
        [k, i, float(v)]
        for i, r in enumerate(rows)
        for k in range(1, len(r.active))
        if (v := r.retention(k)) is not None
    ]
    return {
        "tooltip": {"position": "top"},
        "grid": {"left": 70, "right": 20, "top": 10, "bottom": 85},
        "xAxis": {"type": "category", "data": [f"+{k}" for k in range(1, cohorts.HORIZON)],
                  "name": _tr(lang, "months after the first purchase"),
                  "nameLocation": "middle", "nameGap": 28},
        "yAxis": {"type": "category", "data": months, "inverse": True},
        "visualMap": {"min": 0, "max": max([d[2] for d in data] + [1.0]), "calculable": False,
                      "orient": "horizontal", "left": "center", "bottom": 0,
                      "inRange": {"color": ["#f7fbff", "#08519c"]}},
        "series": [{"type": "heatmap", "data": [[d[0] - 1, d[1], d[2]] for d in data],
                    "label": {"show": True, "formatter": "{@[2]}"}}],
    }  # fmt: skip
