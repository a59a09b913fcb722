"""The report builder in the console: /admin/reports/builder (the form with a live
preview of the table and the chart, save, export), /admin/reports/custom (saved reports
the viewer may open) and /admin/reports/custom/{id} (the report, its exports, its
e-mail schedules, delete)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.analytics import builder
from kopilka.domain import report_builder as rb
from kopilka.domain.roles import Perm, Role, can
from kopilka.services import saved_reports
from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.auth import Console, console
from kopilka.web.notify.common import form_values
from kopilka.web.reports.builder_strings import RU
from kopilka.web.templating import redirect, render

i18n.add(RU, area="builder")
i18n.add(builder.RU, area="builder")

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.REPORTS_READ))
LIST_FILTERS = ("stores", "cities", "regions", "categories", "tiers", "segments", "cashiers")
PERIODS = (
    ("last_7_days", "Last 7 days"),
    ("last_30_days", "Last 30 days"),
    ("last_90_days", "Last 90 days"),
    ("yesterday", "Yesterday"),
    ("today", "Today"),
    ("this_week", "This week"),
    ("previous_week", "Previous week"),
    ("this_month", "This month"),
    ("previous_month", "Previous month"),
    ("this_year", "This year"),
    ("previous_year", "Previous year"),
    ("custom", "Dates below"),
)
FILE_FORMATS = {"csv", "xlsx", "pdf"}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _tr(c: Console) -> Any:
    return lambda text: i18n.gettext(c.lang, text, "builder")


def _split(raw: str | None) -> list[str]:
    return [x.strip() for x in re.split(r"[,\n]", raw or "") if x.strip()]


def form_definition(v: Mapping[str, str]) -> dict[str, Any]:
    """The form's fields as a definition's data (validated by the service)."""
    period = v.get("period") or "last_30_days"
    data: dict[str, Any] = {
        "dimensions": [v[k] for k in ("dim1", "dim2", "dim3") if v.get(k)],
        "measures": _split(v.get("measures")),
        "period": (
            {"from": v.get("from") or None, "to": v.get("to") or None}
            if period == "custom"
            else {"relative": period}
        ),
        "filters": {k: _split(v.get(k)) for k in LIST_FILTERS if _split(v.get(k))},
        "chart": v.get("chart") or "table",
    }
    member = v.get("member")
    if member in ("yes", "no"):
        data["filters"]["member"] = member == "yes"
    if v.get("sort_by"):
        data["sort"] = {"by": v["sort_by"], "desc": v.get("sort_dir", "desc") != "asc"}
    limit = (v.get("limit") or "").strip()
    if limit:
        data["limit"] = int(limit) if limit.isdigit() else limit
    return data


def form_values_of(d: rb.Definition) -> dict[str, str]:
    """A saved definition as the form's fields (editing)."""
    v: dict[str, str] = {f"dim{i + 1}": k for i, k in enumerate(d.dimensions)}
    v["measures"] = ",".join(d.measures)
    if d.period.relative is not None:
        v["period"] = d.period.relative
    else:
        v |= {"period": "custom", "from": str(d.period.from_), "to": str(d.period.to)}
    f = d.filters
    for k in LIST_FILTERS:
        if getattr(f, k):
            v[k] = ",".join(getattr(f, k))
    if f.member is not None:
        v["member"] = "yes" if f.member else "no"
    if d.sort is not None:
        v |= {"sort_by": d.sort.by, "sort_dir": "desc" if d.sort.desc else "asc"}
    v |= {"limit": str(d.limit), "chart": d.chart}
    return v


def _field_of(exc: ServiceError) -> str:
    """The form field a definition's error belongs to."""
    path = exc.field or ""
    if path == "definition":  # a rule across fields: its text starts with the field
        path = exc.detail.split(":", 1)[0].split(".", 1)[0]
    head = re.split(r"[.\[]", path, maxsplit=1)[0]
    if head == "filters":
        parts = re.split(r"[.\[]", path)
        return parts[1] if len(parts) > 1 else "filters"
    return {"dimensions": "dim1", "sort": "sort_by"}.get(head, head or "measures")


def _message(c: Console, exc: ServiceError) -> str:
    """The refusal without its field's name (shown at the field), in the viewer's language."""
    errors = exc.extra.get("errors") or [{"detail": exc.detail}]
    detail = re.sub(r"^[a-z_.\[\]0-9]+: ", "", str(errors[0]["detail"]))
    head, sep, tail = detail.partition(": ")  # "not an e-mail address: x@"
    return i18n.gettext(c.lang, head, "builder") + sep + tail


async def _parse(
    c: Console, values: Mapping[str, str]
) -> tuple[rb.Definition | None, dict[str, str]]:
    try:
        return saved_reports.parse_definition(form_definition(values)), {}
    except ServiceError as exc:
        return None, {_field_of(exc): _message(c, exc)}


async def _form_page(
    request: Request,
    c: Console,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    *,
    report: saved_reports.SavedReport | None = None,
    status: int = 200,
) -> Response:
    prog = c.need_program()
    opts = await saved_reports.filter_options(c.rt, c.actor, prog.id)
    chosen = {k: set(_split(values.get(k))) for k in (*LIST_FILTERS, "measures", "shared_roles")}
    return render(
        request,
        "builder/builder.html",
        {
            "values": values,
            "errors": errors or {},
            "opts": opts,
            "chosen": chosen,
            "report": report,
            "dimensions": [(k, builder.DIMENSION_LABELS[k]) for k in rb.DIMENSIONS],
            "measures": [(k, builder.MEASURE_LABELS[k]) for k in rb.MEASURES],
            "charts": [(k, builder.CHART_LABELS[k]) for k in rb.CHARTS],
            "periods": PERIODS,
            # the owner role sees every report; a role without reports.read could not open it
            "roles": [r.value for r in Role if r != Role.OWNER and can(r.value, Perm.REPORTS_READ)],
        },
        status=status,
    )


@router.get("/admin/reports/builder")
async def builder_page(request: Request, c: Annotated[Console, READ]) -> Response:
    """The form: empty, or a saved report's (``?id=``) to edit or copy."""
    rid = request.query_params.get("id")
    if rid and rid.isdigit():
        rep = await saved_reports.get_report(c.rt, c.actor, int(rid))
        values = form_values_of(rep.definition) | {
            "name": rep.name,
            "shared_roles": ",".join(rep.shared_roles),
        }
        # another's report opens as a copy: saving makes the viewer's own report
        editable = rep.editable_by(c.actor)
        return await _form_page(request, c, values, report=rep if editable else None)
    defaults = {"dim1": "day", "measures": "sales,receipts", "period": "last_30_days"}
    return await _form_page(request, c, defaults | {"chart": "line", "limit": "1000"})


async def _preview(
    request: Request, c: Console, res: builder.Result | None, errors: dict[str, str]
) -> Response:
    tr = _tr(c)
    return render(
        request,
        "builder/_preview.html",
        {
            "res": res,
            "header": res.header(tr) if res else [],
            "money_cols": _money_columns(res),
            "option": builder.chart_option(res, tr) if res else None,
            "errors": errors,
        },
    )


def _money_columns(res: builder.Result | None) -> set[int]:
    if res is None:
        return set()
    return {i for i, k in enumerate(res.keys) if k in builder.MONEY_MEASURES}


@router.post("/admin/reports/builder/preview")
async def builder_preview(request: Request, c: Annotated[Console, READ]) -> Response:
    """The live answer (htmx): the table and the chart of the form as it is now."""
    prog = c.need_program()
    values, _ = await form_values(request)
    d, errors = await _parse(c, values)
    res = None
    if d is not None:
        res = await saved_reports.run_definition(c.rt, c.actor, prog.id, d)
    return await _preview(request, c, res, errors)


@router.post("/admin/reports/builder/save")
async def builder_save(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    values, _ = await form_values(request)
    rid = values.get("report_id")
    report = await saved_reports.get_report(c.rt, c.actor, int(rid)) if rid else None
    d, errors = await _parse(c, values)
    if d is not None:
        try:
            new_id = await saved_reports.do_save_report(
                c.rt,
                c.actor,
                report.program_id if report else prog.id,
                name=values.get("name", ""),
                definition=d,
                shared_roles=_split(values.get("shared_roles")),
                report_id=report.id if report else None,
            )
        except ServiceError as exc:
            if exc.status in (403, 404):
                raise
            errors = {exc.field or "name": _message(c, exc)}
        else:
            flash = i18n.gettext(c.lang, "Report saved.", "builder")
            return redirect(f"/admin/reports/custom/{new_id}", flash=flash)
    return await _form_page(request, c, values, errors, report=report, status=422)


@router.post("/admin/reports/builder/export")
async def builder_export(request: Request, c: Annotated[Console, READ]) -> Response:
    """The form's report as a file, without saving it."""
    prog = c.need_program()
    values, _ = await form_values(request)
    d, errors = await _parse(c, values)
    if d is None:
        return await _form_page(request, c, values, errors, status=422)
    res = await saved_reports.run_definition(c.rt, c.actor, prog.id, d)
    name = values.get("name") or i18n.gettext(c.lang, "Report", "builder")
    return await _file(c, res, name, request.query_params.get("format", "csv"))


async def _file(c: Console, res: builder.Result, name: str, fmt: str) -> Response:
    fmt = fmt if fmt in FILE_FORMATS else "csv"
    data = await saved_reports.report_file(res, title=name, fmt=fmt, lang=c.lang, tr=_tr(c))
    return Response(
        data,
        media_type=saved_reports.media_type(fmt),
        headers=saved_reports.download_headers(name, fmt),
    )


@router.get("/admin/reports/custom")
async def saved_list(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    rows = await saved_reports.list_reports(c.rt, c.actor, prog.id)
    return render(request, "builder/list.html", {"reports": rows})


async def _report_page(
    request: Request,
    c: Console,
    report_id: int,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    rep, res = await saved_reports.run_saved(c.rt, c.actor, report_id)
    schedules = await saved_reports.list_schedules(c.rt, c.actor, report_id)
    tr = _tr(c)
    defaults = {"frequency": "daily", "at": "08:00", "format": "xlsx", "locale": c.lang}
    return render(
        request,
        "builder/report.html",
        {
            "rep": rep,
            "res": res,
            "header": res.header(tr),
            "money_cols": _money_columns(res),
            "option": builder.chart_option(res, tr),
            "schedules": schedules,
            "can_edit": rep.editable_by(c.actor),
            "values": values or defaults,
            "errors": errors or {},
            "weekdays": WEEKDAYS,
        },
        status=status,
    )


@router.get("/admin/reports/custom/{report_id}")
async def saved_page(request: Request, report_id: int, c: Annotated[Console, READ]) -> Response:
    return await _report_page(request, c, report_id)


@router.get("/admin/reports/custom/{report_id}/export")
async def saved_export(request: Request, report_id: int, c: Annotated[Console, READ]) -> Response:
    rep, res = await saved_reports.run_saved(c.rt, c.actor, report_id)
    return await _file(c, res, rep.name, request.query_params.get("format", "csv"))


@router.post("/admin/reports/custom/{report_id}/delete")
async def saved_delete(request: Request, report_id: int, c: Annotated[Console, READ]) -> Response:
    values, _ = await form_values(request)
    try:
        await saved_reports.do_delete_report(
            c.rt, c.actor, report_id, confirm_name=values.get("confirm", "")
        )
    except ServiceError as exc:
        if exc.status in (403, 404):
            raise
        return redirect(f"/admin/reports/custom/{report_id}", flash=_message(c, exc))
    flash = i18n.gettext(c.lang, "Report deleted.", "builder")
    return redirect("/admin/reports/custom", flash=flash)


@router.post("/admin/reports/custom/{report_id}/schedules")
async def schedule_add(request: Request, report_id: int, c: Annotated[Console, READ]) -> Response:
    values, _ = await form_values(request)
    try:
        await saved_reports.do_add_schedule(c.rt, c.actor, report_id, values)
    except ServiceError as exc:
        if exc.status in (403, 404):
            raise
        errors = {exc.field or "at": _message(c, exc)}
        return await _report_page(request, c, report_id, values, errors, status=422)
    flash = i18n.gettext(c.lang, "Schedule added.", "builder")
    return redirect(f"/admin/reports/custom/{report_id}", flash=flash)


@router.post("/admin/reports/custom/{report_id}/schedules/{schedule_id}/delete")
async def schedule_delete(
    request: Request, report_id: int, schedule_id: int, c: Annotated[Console, READ]
) -> Response:
    await saved_reports.do_delete_schedule(c.rt, c.actor, report_id, schedule_id)
    flash = i18n.gettext(c.lang, "Schedule stopped.", "builder")
    return redirect(f"/admin/reports/custom/{report_id}", flash=flash)
