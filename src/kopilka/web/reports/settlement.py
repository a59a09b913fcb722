"""/admin/reports/settlement: the coalition's clearing report of a month (issue 9).

Everyone with ``reports.read`` sees every party; a partner's user (``users.partner_id``)
sees only its own position, the obligations it is a side of, and its own signed
statement (another's: 404); a store's staff are refused (403), settlement being a
partner's as a whole (ADR 0026).  ``programs.write`` may close a finished month,
typing the month to confirm.
Downloads: the report as CSV / Excel / PDF, each party's signed PDF statement.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from kopilka.domain.roles import Perm
from kopilka.domain.settlement import Party
from kopilka.services import exports, pdf, scope, settlement, settlement_files
from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.auth import Console, console
from kopilka.web.reports.settlement_strings import RU
from kopilka.web.templating import SECURITY_HEADERS, redirect, render

i18n.add(RU, area="settlement")
i18n.add(settlement_files.RU, area="settlement")

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.REPORTS_READ))
CLOSE = Depends(console(Perm.PROGRAMS_WRITE))
ALL = -1


def _t(c: Console, text: str) -> str:
    return i18n.gettext(c.lang, text, "settlement")


def _last_month(c: Console, prog: settlement.Program) -> str:
    today = c.rt.now().astimezone(ZoneInfo(prog.settings.timezone)).date()
    last = today.replace(day=1) - timedelta(days=1)
    return f"{last:%Y-%m}"


def _scope(c: Console) -> Party | int:
    return ALL if c.actor.partner_id is None else c.actor.partner_id


async def _report(
    c: Console, period_text: str | None
) -> tuple[settlement.Program, str, dict[str, str], settlement.Report | None]:
    scope.require_partner_level(c.actor)
    ref = c.need_program()
    prog = await settlement.find_program(c.rt, ref.code)
    period = (period_text or "").strip() or _last_month(c, prog)
    try:
        period = settlement.parse_period(period)
    except ServiceError:
        return prog, period, {"period": _t(c, "a month such as 2026-11")}, None
    return prog, period, {}, await settlement.period_report(c.rt, prog, period)


@router.get("/admin/reports/settlement")
async def settlement_page(request: Request, c: Annotated[Console, READ]) -> Response:
    prog, period, errors, rep = await _report(c, request.query_params.get("period"))
    return await _page(request, c, prog, period, errors, rep, {}, 422 if errors else 200)


async def _page(
    request: Request,
    c: Console,
    prog: settlement.Program,
    period: str,
    errors: dict[str, str],
    rep: settlement.Report | None,
    close_errors: dict[str, str],
    status: int,
) -> Response:
    seen = _scope(c)
    clearing = None
    if rep is not None:
        clearing = rep.clearing if seen == ALL else settlement.scoped(rep.clearing, seen)  # type: ignore[arg-type]
    closed = [p["period"] for p in await settlement.list_periods(c.rt, prog.id)]
    ctx: dict[str, Any] = {
        "values": {"period": period},
        "errors": errors,
        "rep": rep,
        "c_": clearing,
        "closed": closed,
        "query": urlencode({"period": period}),
        "scope_all": seen == ALL,
        "may_close": c.can(Perm.PROGRAMS_WRITE) and seen == ALL,
        "close_errors": close_errors,
        "statement_parties": (
            []
            if clearing is None
            else [(rep.code(p.party), rep.name(p.party)) for p in clearing.positions]  # type: ignore[union-attr]
        ),
    }
    return render(request, "reports/settlement.html", ctx, status=status)


@router.get("/admin/reports/settlement.{fmt}")
async def settlement_file(request: Request, fmt: str, c: Annotated[Console, READ]) -> Response:
    prog, period, errors, rep = await _report(c, request.query_params.get("period"))
    if errors or rep is None or fmt not in ("csv", "xlsx", "pdf"):
        msg = "; ".join(f"{k}: {v}" for k, v in errors.items()) or "csv, xlsx or pdf"
        return Response(msg, status_code=422, headers=SECURITY_HEADERS)
    tables = settlement_files.report_tables(rep, party=_scope(c), lang=c.lang)
    name = f"settlement-{prog.code}-{period}"
    if fmt == "pdf":
        data = settlement_files.report_pdf(rep, party=_scope(c), lang=c.lang)
        return Response(
            data,
            media_type=pdf.PDF_TYPE,
            headers={**SECURITY_HEADERS, **exports.attachment(name, "pdf")},
        )
    body = exports.xlsx_book_chunks(tables) if fmt == "xlsx" else exports.csv_chunks(tables[0])
    return StreamingResponse(
        body,
        media_type=exports.media_type(fmt),
        headers={**SECURITY_HEADERS, **exports.attachment(name, fmt)},
    )


@router.get("/admin/reports/settlement/{period}/{party}.pdf")
async def statement_file(
    request: Request, period: str, party: str, c: Annotated[Console, READ]
) -> Response:
    prog, month, errors, rep = await _report(c, period)
    if errors or rep is None:
        raise ServiceError("not_found", "No such period.")
    who: Party = None
    if party != "operator":
        found = [p.id for p in rep.partners.values() if p.code == party]
        if not found:
            raise ServiceError("not_found", "No such partner.")
        who = found[0]
    # another partner's (or the operator's) statement: a partner that does not exist (404)
    scope.check_object(c.actor, "partner", party, program_id=prog.id, partner_id=who)
    data = await settlement.stored_statement(c.rt, prog, month, who)
    if data is None:
        data = await settlement_files.signed_statement(c.rt, rep, who, c.lang)
    return Response(
        data,
        media_type=pdf.PDF_TYPE,
        headers={
            **SECURITY_HEADERS,
            **exports.attachment(f"statement-{prog.code}-{month}-{party}", "pdf"),
        },
    )


@router.post("/admin/reports/settlement/close")
async def close_period(request: Request, c: Annotated[Console, CLOSE]) -> Response:
    form = await request.form()
    period = str(form.get("period", "")).strip()
    confirm = str(form.get("confirm", "")).strip()
    if c.actor.partner_id is not None:
        raise ServiceError("forbidden", "A partner cannot close a period.")
    prog, period, errors, rep = await _report(c, period)
    close_errors: dict[str, str] = {}
    if not errors and confirm != period:
        close_errors["confirm"] = _t(c, "type the month to close it, e.g. 2026-11")
    if not errors and not close_errors:
        try:
            await settlement.do_close(
                c.rt,
                prog,
                period,
                actor=c.actor,
                statements=settlement_files.statement_maker(c.rt, c.lang),
            )
        except ServiceError as exc:
            if exc.code not in ("period_not_finished", "period_closed"):
                raise
            close_errors["confirm"] = _t(
                c,
                "The month is not over yet."
                if exc.code == "period_not_finished"
                else "The month is already closed.",
            )
    if errors or close_errors:
        return await _page(request, c, prog, period, errors, rep, close_errors, 422)
    return redirect(
        f"/admin/reports/settlement?{urlencode({'period': period})}",
        flash=_t(c, "The month is closed; its statements are signed."),
    )
