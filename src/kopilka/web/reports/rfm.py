"""/admin/reports/rfm: the RFM report of the console's program (docs/analytics/rfm.md).

The form (as-of date, window), the r × f grid, segment sizes and revenue, the customers'
rows (paged) with CSV/Excel downloads, the migration matrix between two dates, and
"Save segments" (customers.rfm_segment, for campaigns and promotions).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from kopilka.analytics import rfm as report
from kopilka.domain import rfm
from kopilka.domain.roles import Perm
from kopilka.services import exports
from kopilka.services import rfm as service
from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.auth import Console, console
from kopilka.web.reports.rfm_strings import RU
from kopilka.web.tables import PageRequest
from kopilka.web.templating import redirect, render

i18n.add(RU, area="reports")

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.REPORTS_READ))
WRITE = Depends(console(Perm.PROGRAMS_WRITE))
PATH = "/admin/reports/rfm"


async def _today(c: Console, program_id: int) -> date:
    tz = ZoneInfo((await c.rt.compiled(program_id)).settings.timezone)
    return c.rt.now().astimezone(tz).date()


def _t(c: Console, text: str) -> str:
    return i18n.gettext(c.lang, text, "reports")


async def _args(
    c: Console, q: dict[str, str], errors: dict[str, str], *, date_key: str = "as_of"
) -> tuple[date, int]:
    """The form's date and window; a message at the field on a bad value (then the
    default is used, so the rest of the page still shows)."""
    pid = c.need_program().id
    default = await _today(c, pid)
    as_of, window = default, report.DEFAULT_WINDOW_DAYS
    if q.get(date_key, "").strip():
        try:
            as_of = report.parse_as_of(q[date_key], field=date_key)
        except ServiceError as exc:
            errors[date_key] = _t(c, exc.detail)
    try:
        window = report.parse_window(q.get("window_days"), field="window_days")
    except ServiceError as exc:
        errors["window_days"] = _t(c, exc.detail)
    return as_of, window


def _segments(c: Console, errors: dict[str, str]) -> rfm.SegmentMap:
    try:
        return report.load_segment_map()
    except rfm.SegmentConfigError as exc:
        errors["_form"] = _t(c, "The segment file is invalid; the built-in map is used:") + (
            f" {exc}"
        )
        return rfm.DEFAULT_MAP


@router.get(PATH)
async def rfm_page(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    service.check_access(c.actor, prog.id)
    q = dict(request.query_params)
    errors: dict[str, str] = {}
    as_of, window = await _args(c, q, errors)
    segments = _segments(c, errors)
    rep = await report.compute_cached(
        c.rt, prog.id, as_of=as_of, window_days=window, segments=segments
    )
    pr = PageRequest.of(request, sorts=("customer",), default="customer")
    page = pr.page(rep.rows[pr.offset : pr.offset + pr.limit], len(rep.rows))
    mig = None
    if q.get("mig_from", "").strip() or q.get("mig_to", "").strip():
        a, _ = await _args(c, q, errors, date_key="mig_from")
        b, _ = await _args(c, q, errors, date_key="mig_to")
        if "mig_from" not in errors and "mig_to" not in errors:
            mig = await report.migration(
                c.rt, prog.id, a=a, b=b, window_days=window, segments=segments
            )
    values = {
        "as_of": q.get("as_of") or as_of.isoformat(),
        "window_days": q.get("window_days") or str(window),
        "mig_from": q.get("mig_from", ""),
        "mig_to": q.get("mig_to", ""),
    }
    totals = rep.totals
    ctx: dict[str, Any] = {
        "rep": rep,
        "page": page,
        "totals": totals,
        "revenue": sum((s.revenue for s in totals), report.ZERO),
        "values": values,
        "errors": errors,
        "mig": mig,
        "grid_chart": grid_chart(rep, c.lang),
        "bars_chart": bars_chart(totals, c.lang, _t(c, "Customers"), _t(c, "Revenue")),
        "query": f"as_of={as_of.isoformat()}&window_days={window}",
    }
    status = 422 if errors.keys() - {"_form"} else 200
    return render(request, "reports/rfm.html", ctx, status=status)


def grid_chart(rep: report.RfmReport, lang: str) -> dict[str, Any]:
    """The r × f heat map: each cell the number of customers and its segment's name
    (the default map's cells are whole segments; with a custom map, the segment of
    the cell's customers with m = 3)."""
    cells = rep.grid
    data = []
    for (r, f), n in cells.items():
        name = rep.segments.segment_of(r, f, 3).label(lang)
        if len(name) > 13:  # two lines in a cell: "Потенциально / лояльные"
            name = name.replace(" ", "\n", 1)
        data.append({"value": [f - 1, r - 1, n], "label": {"formatter": f"{name}\n{n}"}})
    scores = [str(s) for s in rfm.SCORES]
    return {
        "animation": False,
        "tooltip": {"show": False},
        "grid": {"left": 56, "right": 12, "top": 8, "bottom": 48},
        "xAxis": {
            "type": "category",
            "data": scores,
            "name": "F" if lang != "ru" else "F (частота)",
            "nameLocation": "middle",
            "nameGap": 28,
            "splitArea": {"show": True},
        },
        "yAxis": {
            "type": "category",
            "data": scores,
            "name": "R" if lang != "ru" else "R (давность)",
            "nameLocation": "middle",
            "nameGap": 36,
            "splitArea": {"show": True},
        },
        "visualMap": {
            "show": False,
            "min": 0,
            "max": max(cells.values()) or 1,
            "inRange": {"color": ["#f4f8fb", "#7fb3d5", "#1f5f8b"]},
        },
        "series": [
            {
                "type": "heatmap",
                "data": data,
                "label": {
                    "show": True,
                    "fontSize": 11,
                    "lineHeight": 14,
                },
                "itemStyle": {"borderColor": "#fff", "borderWidth": 2},
            }
        ],
    }


def bars_chart(
    totals: list[rfm.SegmentTotal], lang: str, customers: str, revenue: str
) -> dict[str, Any]:
    names = [s.segment.label(lang) for s in totals]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [customers, revenue], "top": 0},
        "grid": {"left": 150, "right": 24, "top": 28, "bottom": 24},
        "yAxis": {"type": "category", "data": names, "inverse": True},
        "xAxis": [
            {"type": "value", "position": "bottom"},
            {"type": "value", "position": "top", "show": False},
        ],
        "series": [
            {
                "name": customers,
                "type": "bar",
                "xAxisIndex": 0,
                "data": [s.customers for s in totals],
                "label": {"show": True, "position": "right"},
            },
            {
                "name": revenue,
                "type": "bar",
                "xAxisIndex": 1,
                # a chart's bar length: display only, the table shows the exact sums
                "data": [float(s.revenue) for s in totals],
                "tooltip": {"valueFormatter": "fmt:money"},
            },
        ],
    }


def _fmt(request: Request) -> str:
    fmt = request.query_params.get("format", "csv")
    return fmt if fmt in exports.FORMATS else "csv"


def _download(table: exports.Table, fmt: str, filename: str) -> Response:
    return StreamingResponse(
        exports.chunks(table, fmt),
        media_type=exports.media_type(fmt),
        headers=exports.attachment(filename, fmt),
    )


@router.get(PATH + "/export")
async def rfm_export(request: Request, c: Annotated[Console, READ]) -> Response:
    """The full report (every row) as CSV or Excel; Excel has a second sheet of sizes."""
    prog = c.need_program()
    service.check_access(c.actor, prog.id)
    errors: dict[str, str] = {}
    as_of, window = await _args(c, dict(request.query_params), errors)
    if errors:
        raise ServiceError("validation_failed", "; ".join(errors.values()))
    segments = _segments(c, {})
    rep = await report.compute(c.rt, prog.id, as_of=as_of, window_days=window, segments=segments)
    tables = report.tables(rep, lang=c.lang)
    fmt = _fmt(request)
    name = f"rfm-{as_of.isoformat()}"
    if fmt == "xlsx":
        return StreamingResponse(
            exports.xlsx_book_chunks(tables),
            media_type=exports.media_type(fmt),
            headers=exports.attachment(name, fmt),
        )
    return _download(tables[0], fmt, name)


@router.get(PATH + "/migration/export")
async def rfm_migration_export(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    service.check_access(c.actor, prog.id)
    q = dict(request.query_params)
    errors: dict[str, str] = {}
    a, window = await _args(c, q, errors, date_key="mig_from")
    b, _ = await _args(c, q, errors, date_key="mig_to")
    if errors:
        raise ServiceError("validation_failed", "; ".join(errors.values()))
    mig = await report.migration(
        c.rt, prog.id, a=a, b=b, window_days=window, segments=_segments(c, {})
    )
    name = f"rfm-migration-{a.isoformat()}-{b.isoformat()}"
    return _download(report.migration_table(mig, lang=c.lang), _fmt(request), name)


@router.post(PATH + "/save")
async def rfm_save(request: Request, c: Annotated[Console, WRITE]) -> Response:
    prog = c.need_program()
    form = await request.form()
    q = {k: str(v) for k, v in form.items() if k in ("as_of", "window_days")}
    errors: dict[str, str] = {}
    as_of, window = await _args(c, q, errors)
    back = f"{PATH}?as_of={as_of.isoformat()}&window_days={window}"
    if errors:
        return redirect(back, flash="; ".join(errors.values()))
    try:
        segments = report.load_segment_map()
    except rfm.SegmentConfigError as exc:
        return redirect(back, flash=_t(c, "The segment file is invalid:") + f" {exc}")
    saved = await service.do_save_segments(
        c.rt, c.actor, prog.id, as_of=as_of, window_days=window, segments=segments
    )
    text = _t(c, "Segments saved as of %(date)s: %(n)s customers in segments, %(changed)s changed.")
    return redirect(
        back,
        flash=text % {"date": as_of.isoformat(), "n": saved.customers, "changed": saved.changed},
    )
