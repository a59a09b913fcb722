"""The security officer's console pages (docs/fraud.md): /admin/fraud (the queue with
filters and exports), /admin/fraud/{id} (an alert, its evidence and the actions) and
/admin/fraud/settings (thresholds).

Seeing needs ``audit.read``; acting and changing thresholds also ``cards.block`` (the
security and owner roles).  Views read the form and call ``services.fraud``, which checks
the permission and writes the change with its audit row (post/redirect/get).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain import fraud as df
from kopilka.domain.roles import Perm
from kopilka.services import fraud
from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.auth import Console, console
from kopilka.web.fraud.strings import RU
from kopilka.web.mechanics.common import download, fmt_of
from kopilka.web.reports import PAGES, ReportPage
from kopilka.web.tables import PageRequest
from kopilka.web.templating import redirect, render

i18n.add(RU, area="fraud")
router = APIRouter(include_in_schema=False)
PAGES.append(
    ReportPage(
        "/admin/fraud",
        "Fraud alerts",
        "The security officer's queue: what the fraud rules found, with the evidence",
        perm=Perm.AUDIT_READ,
    )
)
READ = Depends(console(Perm.AUDIT_READ))
ACT = Depends(console(Perm.CARDS_BLOCK))

RULE_TITLES = {
    df.Rule.CASHIER_CARD: "One card on many receipts of one cashier",
    df.Rule.EARN_THEN_BURN: "Points earned at one till, then burned",
    df.Rule.REFUND_AFTER_BURN: "Refund after paying with points",
    df.Rule.PHONE_CARDS: "Many cards on one phone or accounts on one device",
    df.Rule.TERMINAL_BURST: "Burst of receipts at one terminal",
    df.Rule.BIG_ADJUSTMENT: "Manual adjustment above the limit",
    df.Rule.PIN_GUESSING: "Gift card PIN guessing",
    df.Rule.OFFLINE_TOKEN: "Offline burn token used on more than one receipt",
    df.Rule.LEDGER_MISMATCH: "Ledger verify found a difference",
}
STATE_TITLES = {
    "open": "Open",
    "assigned": "Assigned",
    "resolved": "Resolved",
    "dismissed": "Dismissed",
}
SUBJECTS = {
    "card": "Card",
    "customer": "Customer",
    "terminal": "Terminal",
    "cashier": "Cashier",
    "user": "Employee",
    "device": "Device",
    "gift_card": "Gift card",
    "program": "Program",
}
# The settings form: (rule, [(field, label)]) in the order of docs/fraud.md.
FORM: tuple[tuple[df.Rule, tuple[tuple[str, str], ...]], ...] = (
    (
        df.Rule.CASHIER_CARD,
        (
            ("cashier_card_receipts", "Receipts of one card by one cashier, at least"),
            ("cashier_card_hours", "within hours"),
        ),
    ),
    (
        df.Rule.EARN_THEN_BURN,
        (
            ("earn_burn_receipts", "Earning receipts at one till, at least"),
            ("earn_burn_days", "within days"),
            ("earn_burn_hours", "burned within hours of the last one"),
        ),
    ),
    (
        df.Rule.REFUND_AFTER_BURN,
        (
            ("refund_days", "Refund within days of a sale paid with points"),
            ("refund_count", "Such refunds in 30 days for high severity"),
        ),
    ),
    (
        df.Rule.PHONE_CARDS,
        (
            ("phone_cards_max", "Cards on one phone, more than"),
            ("device_customers_max", "Customers registered from one device, more than"),
            ("device_days", "within days"),
        ),
    ),
    (
        df.Rule.TERMINAL_BURST,
        (
            ("burst_receipts", "Card receipts at one terminal, at least"),
            ("burst_minutes", "within minutes"),
            ("burst_factor", "or times the terminal's usual rate (0: off)"),
        ),
    ),
    (
        df.Rule.BIG_ADJUSTMENT,
        (("adjust_limit", "Points of one manual adjustment, at least"),),
    ),
    (
        df.Rule.PIN_GUESSING,
        (
            ("pin_card_failures", "Wrong PINs for one gift card in an hour, at least"),
            ("pin_terminal_failures", "Wrong numbers or PINs at one terminal in an hour, at least"),
        ),
    ),
)


def _t(c: Console, text: str) -> str:
    return i18n.gettext(c.lang, text, "fraud")


def _filter(request: Request) -> tuple[fraud.AlertFilter, dict[str, str]]:
    q = request.query_params
    values = {
        "rule": q.get("rule", ""),
        "state": q.get("state", "active"),
        "store": q.get("store", ""),
    }
    try:
        return fraud.parse_filter(**values), values
    except ServiceError:
        return fraud.AlertFilter(state="active"), {"rule": "", "state": "active", "store": ""}


def _labels() -> dict[str, Any]:
    return {
        "rule_titles": {r.value: t for r, t in RULE_TITLES.items()},
        "state_titles": STATE_TITLES,
        "subjects": SUBJECTS,
    }


@router.get("/admin/fraud")
async def alert_list(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    flt, values = _filter(request)
    pr = PageRequest.of(request, sorts=("id",), default="id", default_dir="desc")
    rows, total = await fraud.list_alerts(
        c.rt, c.actor, prog.id, flt, offset=pr.offset, limit=pr.limit
    )
    query = "&".join(f"{k}={v}" for k, v in values.items() if v)
    return render(
        request,
        "fraud/alerts.html",
        {
            "page": pr.page(rows, total),
            "values": values,
            "query": query,
            "stores": await fraud.stores(c.rt, prog.id),
            **_labels(),
        },
    )


@router.get("/admin/fraud/export")
async def alert_export(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    flt, _ = _filter(request)
    table = fraud.alerts_table(c.rt, c.actor, prog.id, flt)
    return download(table, fmt_of(request), "fraud-alerts")


async def _settings_page(
    request: Request,
    c: Console,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    on: set[str] | None = None,
    status: int = 200,
) -> Response:
    prog = c.need_program()
    s = await fraud.load_settings(c.rt, prog.id)
    stored = {k: str(v) for k, v in df.settings_to_dict(s).items() if k != "disabled"}
    return render(
        request,
        "fraud/settings.html",
        {
            "form": FORM,
            "values": values if values is not None else stored,
            "errors": errors or {},
            "on": on if on is not None else {r.value for r in df.SCAN_RULES if s.on(r)},
            "defaults": {k: str(v) for k, v in df.settings_to_dict(df.DEFAULTS).items()},
            **_labels(),
        },
        status=status,
    )


UNITS_RU = {
    "receipts": "чеков",
    "hours": "часов",
    "days": "дней",
    "refunds": "возвратов",
    "cards": "карт",
    "customers": "клиентов",
    "minutes": "минут",
    "times": "раз",
    "attempts": "попыток",
}


def _setting_error(c: Console, exc: ServiceError) -> str:
    """The domain's refusal in the viewer's language (its limits are in ``df.LIMITS``)."""
    if c.lang != "ru":
        return exc.detail
    if exc.field in df.LIMITS:
        least, most, unit = df.LIMITS[exc.field]
        return f"целое число {UNITS_RU[unit]} от {least} до {most}"
    if exc.field == "adjust_limit":
        return f"баллы больше 0, не больше {df.ADJUST_LIMIT_MAX}, два знака после запятой"
    return _t(c, exc.detail)


@router.get("/admin/fraud/settings")
async def settings_page(request: Request, c: Annotated[Console, READ]) -> Response:
    return await _settings_page(request, c)


@router.post("/admin/fraud/settings")
async def settings_save(request: Request, c: Annotated[Console, ACT]) -> Response:
    prog = c.need_program()
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k not in ("csrf", "on")}
    on = {str(x) for x in form.getlist("on")}
    off = [r.value for r in df.SCAN_RULES if r.value not in on]
    try:
        await fraud.do_save_settings(c.rt, c.actor, prog.id, values, disabled=off)
    except ServiceError as exc:
        if exc.status == 403:
            raise
        errors = {exc.field or "cashier_card_receipts": _setting_error(c, exc)}
        return await _settings_page(request, c, values, errors, on, status=422)
    return redirect("/admin/fraud/settings", flash=_t(c, "Thresholds saved."))


@router.get("/admin/fraud/{alert_id}")
async def alert_page(request: Request, alert_id: int, c: Annotated[Console, READ]) -> Response:
    return await _alert_page(request, c, alert_id)


def describe_ru(r: fraud.AlertRow, evidence: list[dict[str, Any]]) -> str:
    """The alert's "what was found" in Russian, from its evidence (the stored summary is
    English: it also goes to the API, the export and the webhook)."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for x in evidence:
        kinds.setdefault(str(x.get("kind")), []).append(x)
    receipts, n = kinds.get("receipt", []), len(evidence)
    if r.rule == "cashier_card":
        cashiers = ", ".join(sorted({str(x.get("cashier_id")) for x in receipts}))
        return f"чеков этой карты у кассира {cashiers}: {len(receipts)}"
    if r.rule == "earn_then_burn":
        earned = [x for x in receipts if x.get("role") == "earned"]
        total = sum(Decimal(x["points_earned"]) for x in earned)
        burned = sum(Decimal(x["points_redeemed"]) for x in receipts if x.get("role") == "burned")
        return f"начислено {total} баллов по {len(earned)} чекам на одной кассе, списано {burned}"
    if r.rule == "refund_after_burn":
        return f"возвратов чеков, оплаченных баллами: {len(kinds.get('refund', []))}"
    if r.rule == "phone_cards" and r.subject_type == "device":
        return f"клиентов, зарегистрированных с одного устройства: {n}"
    if r.rule == "phone_cards":
        return f"карт на один телефон: {n}"
    if r.rule == "terminal_burst":
        times = sorted(datetime.fromisoformat(x["at"]) for x in receipts)
        minutes = int((times[-1] - times[0]).total_seconds() // 60) + 1 if times else 0
        return f"чеков с картой на кассе: {len(receipts)} за {minutes} мин"
    if r.rule == "big_adjustment":
        amounts = ", ".join(str(x.get("amount")) for x in kinds.get("adjustment", []))
        return f"{r.subject_label}: ручные корректировки на {amounts} баллов"
    if r.rule == "ledger_mismatch":
        return f"расхождений журнала баллов с балансами: {len(evidence)}"
    if r.rule == "pin_guessing":
        worst = max((int(x.get("failures", 0)) for x in evidence), default=0)
        return f"неверных PIN за час: {worst}"
    return r.summary


async def _alert_page(
    request: Request,
    c: Console,
    alert_id: int,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    alert = await fraud.get_alert(c.rt, c.actor, c.need_program().id, alert_id)
    return render(
        request,
        "fraud/alert.html",
        {
            "a": alert,
            "r": alert.row,
            "evidence": [(x, datetime.fromisoformat(x["at"])) for x in alert.evidence],
            "found": describe_ru(alert.row, alert.evidence)
            if c.lang == "ru"
            else alert.row.summary,
            "values": values or {},
            "errors": errors or {},
            "can_act": c.can(Perm.CARDS_BLOCK) and c.can(Perm.AUDIT_READ),
            **_labels(),
        },
        status=status,
    )


FLASHES = {
    "assign": "Alert taken.",
    "resolve": "Alert resolved.",
    "dismiss": "Alert dismissed.",
    "block": "Card blocked.",
}


@router.post("/admin/fraud/{alert_id}/{action}")
async def alert_action(
    request: Request, alert_id: int, action: str, c: Annotated[Console, ACT]
) -> Response:
    pid = c.need_program().id
    if action not in FLASHES:
        raise ServiceError("not_found", "No such action.")
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k != "csrf"}
    try:
        if action == "assign":
            await fraud.do_assign(c.rt, c.actor, pid, alert_id)
        elif action == "block":
            await fraud.do_block_card(c.rt, c.actor, pid, alert_id, reason=values.get("reason"))
        else:
            state = "resolved" if action == "resolve" else "dismissed"
            await fraud.do_close(c.rt, c.actor, pid, alert_id, state=state, note=values.get("note"))
    except ServiceError as exc:
        if exc.status in (403, 404):
            raise
        field = exc.field or "note"
        key = f"{action}_{field}"  # two forms have a note: keep each one's error at its own
        return await _alert_page(request, c, alert_id, values, {key: _t(c, exc.detail)}, status=422)
    return redirect(f"/admin/fraud/{alert_id}", flash=_t(c, FLASHES[action]))
