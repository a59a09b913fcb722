"""The console's customers pages (docs/console/customers.md): search, the customer's page,
and the support actions, each a form with a mandatory reason (post/redirect/get).

Views only read the form and call ``services.customer_admin``, which checks the
permission, writes the change and its audit row in one transaction.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.services import consents, erasure
from kopilka.services import customer_admin as ca
from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.auth import Console, console
from kopilka.web.customers import texts
from kopilka.web.customers.texts import message
from kopilka.web.i18n import gettext
from kopilka.web.tables import PageRequest
from kopilka.web.templating import redirect, render

router = APIRouter(include_in_schema=False)
texts.register()

TABS = ("receipts", "movements", "lots", "coupons", "history")


@router.get("/admin/customers")
async def search_page(
    request: Request, c: Annotated[Console, Depends(console(Perm.CUSTOMERS_READ))]
) -> Response:
    program = c.need_program()
    q = request.query_params.get("q", "").strip()[:100]
    pr = PageRequest.of(request, sorts=ca.SORTS, default="name", per_page=25)
    found = await ca.search(
        c.rt,
        program.id,
        q,
        offset=pr.offset,
        limit=pr.limit,
        sort=pr.sort,
        descending=pr.descending,
    )
    return render(
        request,
        "customers/search.html",
        {"q": q, "kind": found.kind, "page": pr.page(found.items, found.total)},
    )


async def _customer(c: Console, customer_id: int) -> ca.CustomerView:
    return await ca.get_customer(c.rt, c.need_program().id, customer_id)


@router.get("/admin/customers/{customer_id}")
async def customer_page(
    request: Request,
    customer_id: int,
    c: Annotated[Console, Depends(console(Perm.CUSTOMERS_READ))],
) -> Response:
    program = c.need_program()
    cust = await _customer(c, customer_id)
    tab = request.query_params.get("tab", "receipts")
    if tab not in TABS:
        tab = "receipts"
    ctx: dict[str, Any] = {"cust": cust, "tab": tab, "tabs": TABS}
    ctx["consent_history"] = await consents.history(c.rt, program.id, customer_id)
    if tab == "receipts":
        pr = PageRequest.of(
            request, sorts=ca.RECEIPT_SORTS, default="occurred_at", default_dir="desc", per_page=20
        )
        rows, total = await ca.receipts(
            c.rt,
            program.id,
            cust.account_id,
            offset=pr.offset,
            limit=pr.limit,
            sort=pr.sort,
            descending=pr.descending,
        )
        ctx["page"] = pr.page(rows, total)
    elif tab == "movements":
        pr = PageRequest.of(request, sorts=("id",), default="id", default_dir="desc", per_page=20)
        moves, total = await ca.movements(
            c.rt,
            program.id,
            cust.account_id,
            offset=pr.offset,
            limit=pr.limit,
            descending=pr.descending,
        )
        ctx["page"] = pr.page(moves, total)
    elif tab == "history":
        pr = PageRequest.of(request, sorts=("id",), default="id", default_dir="desc", per_page=20)
        log, total = await ca.history(
            c.rt, program.id, customer_id, offset=pr.offset, limit=pr.limit
        )
        ctx["page"] = pr.page(log, total)
    return render(request, "customers/customer.html", ctx)


# --- actions ----------------------------------------------------------------------------


def _form_page(
    request: Request,
    action: str,
    cust: ca.CustomerView,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    card: str | None = None,
) -> Response:
    return render(
        request,
        "customers/action.html",
        {
            "action": action,
            "cust": cust,
            "values": values or {},
            "errors": errors or {},
            "card": card,
        },
        status=status,
    )


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items() if k != "csrf" and isinstance(v, str)}


def _refused(
    request: Request,
    c: Console,
    action: str,
    cust: ca.CustomerView,
    values: dict[str, str],
    exc: ServiceError,
    *,
    default_field: str,
    card: str | None = None,
) -> Response:
    if exc.status == 403:
        raise exc
    field = exc.field if exc.field in values or exc.field in ("reason",) else default_field
    return _form_page(
        request,
        action,
        cust,
        values=values,
        errors={field: message(c.lang, exc)},
        status=409 if exc.status == 409 else 422,
        card=card,
    )


def _back(cust_id: int, c: Console, text: str, **fmt: str) -> Response:
    return redirect(f"/admin/customers/{cust_id}", flash=gettext(c.lang, text).format(**fmt))


WRITE = console(Perm.CUSTOMERS_WRITE)
BLOCK = console(Perm.CARDS_BLOCK)


@router.get("/admin/customers/{customer_id}/adjust")
async def adjust_form(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    return _form_page(request, "adjust", await _customer(c, customer_id))


@router.post("/admin/customers/{customer_id}/adjust")
async def adjust_submit(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    cust = await _customer(c, customer_id)
    values = await _form(request)
    try:
        amount = ca.parse_amount(values.get("amount", ""))
        amount = -abs(amount) if values.get("direction") == "debit" else abs(amount)
        out = await ca.adjust(
            c.rt, c.actor, cust.program_id, customer_id, amount, reason=values.get("reason")
        )
    except ServiceError as exc:
        return _refused(request, c, "adjust", cust, values, exc, default_field="amount")
    return _back(
        customer_id,
        c,
        "Points adjusted. Available now: {available}.",
        available=i18n.number(c.lang, Decimal(out["after"]["available"])),
    )


@router.get("/admin/customers/{customer_id}/consents")
async def consents_form(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    cust = await _customer(c, customer_id)
    values = {
        "sms": "on" if cust.consent_sms else "",
        "email": "on" if cust.consent_email else "",
    }
    return _form_page(request, "consents", cust, values=values)


@router.post("/admin/customers/{customer_id}/consents")
async def consents_submit(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    cust = await _customer(c, customer_id)
    values = await _form(request)
    try:
        await ca.set_consents(
            c.rt,
            c.actor,
            cust.program_id,
            customer_id,
            sms=values.get("sms") == "on",
            email=values.get("email") == "on",
            reason=values.get("reason"),
        )
    except ServiceError as exc:
        return _refused(request, c, "consents", cust, values, exc, default_field="reason")
    return _back(customer_id, c, "Consents saved.")


@router.get("/admin/customers/{customer_id}/erase")
async def erase_form(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    return _form_page(request, "erase", await _customer(c, customer_id))


@router.post("/admin/customers/{customer_id}/erase")
async def erase_submit(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    cust = await _customer(c, customer_id)
    values = await _form(request)
    if values.get("confirm", "").strip() != str(customer_id):
        exc = ServiceError(
            "validation_failed", "type the customer number again to confirm", field="confirm"
        )
        return _refused(request, c, "erase", cust, values, exc, default_field="confirm")
    try:
        pseudonym = await erasure.do_erase_customer(
            c.rt, c.actor, cust.program_id, customer_id, reason=values.get("reason")
        )
    except ServiceError as exc:
        return _refused(request, c, "erase", cust, values, exc, default_field="reason")
    return _back(
        customer_id,
        c,
        "Personal data erased; the customer is now {pseudonym}.",
        pseudonym=pseudonym,
    )


@router.get("/admin/customers/{customer_id}/city")
async def city_form(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    cust = await _customer(c, customer_id)
    return _form_page(request, "city", cust, values={"city": cust.city or ""})


@router.post("/admin/customers/{customer_id}/city")
async def city_submit(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    cust = await _customer(c, customer_id)
    values = await _form(request)
    try:
        await ca.set_city(
            c.rt,
            c.actor,
            cust.program_id,
            customer_id,
            city=values.get("city", ""),
            reason=values.get("reason"),
        )
    except ServiceError as exc:
        return _refused(request, c, "city", cust, values, exc, default_field="city")
    return _back(customer_id, c, "City saved.")


@router.get("/admin/customers/{customer_id}/virtual-card")
async def virtual_form(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    return _form_page(request, "virtual", await _customer(c, customer_id))


@router.post("/admin/customers/{customer_id}/virtual-card")
async def virtual_submit(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    cust = await _customer(c, customer_id)
    values = await _form(request)
    try:
        number = await ca.issue_virtual_card(
            c.rt, c.actor, cust.program_id, customer_id, reason=values.get("reason")
        )
    except ServiceError as exc:
        return _refused(request, c, "virtual", cust, values, exc, default_field="reason")
    return _back(customer_id, c, "Virtual card {number} issued.", number=number)


@router.get("/admin/customers/{customer_id}/merge")
async def merge_form(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    return _form_page(request, "merge", await _customer(c, customer_id))


@router.post("/admin/customers/{customer_id}/merge")
async def merge_submit(
    request: Request, customer_id: int, c: Annotated[Console, Depends(WRITE)]
) -> Response:
    cust = await _customer(c, customer_id)
    values = await _form(request)
    try:
        other = await _other_customer(c, cust, values)
        if values.get("confirm", "").strip() != str(other):
            raise ServiceError(
                "validation_failed", "type the absorbed customer's number", field="confirm"
            )
        out = await ca.merge(
            c.rt, c.actor, cust.program_id, customer_id, other, reason=values.get("reason")
        )
    except ServiceError as exc:
        return _refused(request, c, "merge", cust, values, exc, default_field="other")
    return _back(
        customer_id,
        c,
        "Customer {other} merged into this one: {points} points moved.",
        other=str(other),
        points=i18n.number(c.lang, Decimal(out["points_moved"])),
    )


async def _other_customer(c: Console, cust: ca.CustomerView, values: dict[str, str]) -> int:
    """The absorbed customer: typed as its number, card or phone."""
    text = values.get("other", "").strip()
    if not text:
        raise ServiceError("validation_failed", "type a customer", field="other")
    if text.isdigit() and len(text) < 10:
        return int(text)
    found = await ca.search(c.rt, cust.program_id, text, limit=2)
    if found.kind in ("name", "short", "empty", "email") or found.total != 1:
        raise ServiceError("customer_not_found", "no such customer", field="other")
    return found.items[0].id


# --- cards ------------------------------------------------------------------------------


def _card_of(cust: ca.CustomerView, number: str) -> ca.CardView:
    card = next((x for x in cust.cards if x.number == number), None)
    if card is None:
        raise ServiceError("unknown_identifier", f"no card {number}", field="number")
    return card


@router.get("/admin/customers/{customer_id}/cards/{number}/{action}")
async def card_form(
    request: Request,
    customer_id: int,
    number: str,
    action: str,
    c: Annotated[Console, Depends(console(Perm.CUSTOMERS_READ))],
) -> Response:
    if action not in ("block", "unblock", "replace"):
        raise ServiceError("not_found", "no such page")
    _need(c, action)
    cust = await _customer(c, customer_id)
    _card_of(cust, number)
    return _form_page(request, action, cust, card=number)


def _need(c: Console, action: str) -> None:
    from kopilka.web.auth import Forbidden

    perm = Perm.CUSTOMERS_WRITE if action == "replace" else Perm.CARDS_BLOCK
    if not c.can(perm):
        raise Forbidden


@router.post("/admin/customers/{customer_id}/cards/{number}/{action}")
async def card_submit(
    request: Request,
    customer_id: int,
    number: str,
    action: str,
    c: Annotated[Console, Depends(console(Perm.CUSTOMERS_READ))],
) -> Response:
    if action not in ("block", "unblock", "replace"):
        raise ServiceError("not_found", "no such page")
    _need(c, action)
    cust = await _customer(c, customer_id)
    _card_of(cust, number)
    values = await _form(request)
    reason = values.get("reason")
    pid = cust.program_id
    try:
        if action == "block":
            await ca.block_card(c.rt, c.actor, pid, number, reason=reason)
            text = "Card {number} blocked."
        elif action == "unblock":
            await ca.unblock_card(c.rt, c.actor, pid, number, reason=reason)
            text = "Card {number} unblocked."
        else:
            await ca.replace_card(c.rt, c.actor, pid, number, values.get("new", ""), reason=reason)
            text = "Card {number} replaced; the balance stays with the customer."
    except ServiceError as exc:
        return _refused(
            request,
            c,
            action,
            cust,
            values,
            exc,
            default_field="new" if action == "replace" else "reason",
            card=number,
        )
    return _back(customer_id, c, text, number=number)
