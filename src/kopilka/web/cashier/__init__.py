"""The cashier screen (``/cashier``, docs/console/cashier.md): identify a customer,
register a new one, check a coupon or a gift card; for stores whose POS shows nothing.

Every panel is an htmx partial swapped into ``#panel``; without JavaScript the same
forms answer the whole page.  Lookups and checks are POSTs, so phones, card numbers and
coupon codes stay out of URLs, browser history and access logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.services import basket, cashier
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Terminal
from kopilka.web import i18n
from kopilka.web.auth import Console, console
from kopilka.web.cashier import strings  # noqa: F401  (registers the Russian strings)
from kopilka.web.templating import is_htmx, render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Console, Depends(console(Perm.CASHIER))]

# What a refusal says to the cashier, by the services' codes.
MESSAGES = {
    "unknown_identifier": "No customer with this card or phone.",
    "coupon_not_found": "No such coupon.",
    "rate_limited": "Too many unknown coupon codes; wait a minute.",
    "gift_card_not_found": "No gift card with this number.",
    "terminal_disabled": "The cashier screen is disabled in this store.",
    "already_registered": "A customer with this phone is already registered.",
    "card_taken": "This card belongs to another customer.",
    "invalid_code": "The code is wrong.",
    "code_expired": "The code has expired; ask for a new one.",
    "too_many_attempts": "Too many attempts; try again later.",
    "phone_already_confirmed": "The phone is already confirmed.",
}


@dataclass
class Screen:
    """The viewer, the store it works in and that store's terminal (None until chosen)."""

    c: Console
    stores: list[cashier.StoreRef]
    store: cashier.StoreRef | None
    term: Terminal | None
    problem: str = ""


async def _screen(c: Console, wanted: str | None) -> Screen:
    program_id = c.program.id if c.program else None
    stores = await cashier.list_stores(c.rt, c.actor, program_id=program_id)
    store_id = int(wanted) if wanted and wanted.isdigit() else None
    store = cashier.pick_store(stores, store_id)
    if store is None:
        return Screen(c, stores, None, None)
    try:
        term = await cashier.screen_terminal(c.rt, c.actor, store)
    except ServiceError as exc:
        return Screen(c, stores, store, None, MESSAGES.get(exc.code, exc.detail))
    return Screen(c, stores, store, term)


def _message(exc: ServiceError) -> str:
    return MESSAGES.get(exc.code, exc.detail)


def _respond(
    request: Request, s: Screen, panel: str, ctx: dict[str, Any], *, status: int = 200
) -> Response:
    """The panel alone for htmx; the whole screen with it otherwise."""
    context = {"s": s, "panel": panel, **ctx}
    if is_htmx(request):
        # htmx swaps only 2xx answers: a refusal shown in the panel is still a 200.  No
        # terminal (the store's screen was disabled meanwhile): the panel says why.
        return render(request, panel if s.term is not None else "cashier/_problem.html", context)
    return render(request, "cashier/screen.html", context, status=status)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}


@router.get("/cashier")
async def screen(request: Request, c: Viewer) -> Response:
    s = await _screen(c, request.query_params.get("store"))
    return render(request, "cashier/screen.html", {"s": s, "panel": None})


@router.post("/cashier/lookup")
async def lookup(request: Request, c: Viewer) -> Response:
    form = await _form(request)
    s = await _screen(c, form.get("store"))
    identifier = form.get("identifier", "")
    ctx: dict[str, Any] = {"identifier": identifier}
    if s.term is None:
        return _respond(request, s, "cashier/_customer.html", ctx)
    try:
        data = await cashier.lookup(c.rt, s.term, identifier)
    except ServiceError as exc:
        return _respond(request, s, "cashier/_customer.html", {**ctx, "error": _message(exc)})
    return _respond(request, s, "cashier/_customer.html", {**ctx, "cust": _customer_view(data)})


@router.post("/cashier/panel/{name}")
async def panel(request: Request, name: str, c: Viewer) -> Response:
    """An empty form: register, coupon, gift card."""
    form = await _form(request)
    s = await _screen(c, form.get("store"))
    template = PANELS.get(name)
    if template is None:
        return _respond(request, s, "cashier/_customer.html", {"identifier": ""}, status=404)
    return _respond(request, s, template, {"values": {}, "errors": {}})


PANELS = {
    "register": "cashier/_register.html",
    "coupon": "cashier/_coupon.html",
    "gift-card": "cashier/_giftcard.html",
    "basket": "cashier/_basket.html",
}


@router.post("/cashier/basket")
async def basket_tips(request: Request, c: Viewer) -> Response:
    """ "Customers who buy X also buy Y" for the SKUs typed or scanned: the program's
    saved basket rules (docs/analytics/basket.md); nothing is written."""
    form = await _form(request)
    s = await _screen(c, form.get("store"))
    values = {"skus": form.get("skus", "")}
    ctx: dict[str, Any] = {"values": values, "errors": {}, "tips": None}
    if s.term is None:
        return _respond(request, s, "cashier/_basket.html", ctx)
    skus = values["skus"].split()
    if len(skus) > 200:
        return _respond(
            request,
            s,
            "cashier/_basket.html",
            {**ctx, "errors": {"skus": i18n.gettext(c.lang, "at most 200 SKUs", "cashier")}},
        )
    tips = await basket.suggestions(c.rt, s.term.program_id, skus)
    return _respond(request, s, "cashier/_basket.html", {**ctx, "tips": tips})


@router.post("/cashier/register")
async def register(request: Request, c: Viewer) -> Response:
    form = await _form(request)
    s = await _screen(c, form.get("store"))
    values = {k: form.get(k, "") for k in cashier.REGISTRATION_FIELDS}
    ctx: dict[str, Any] = {"values": values, "errors": {}}
    if s.term is None:
        return _respond(request, s, "cashier/_register.html", ctx)
    reg, errors = cashier.check_registration(values)
    if reg is None:
        return _respond(request, s, "cashier/_register.html", {**ctx, "errors": errors}, status=422)
    try:
        done = await cashier.do_register(c.rt, c.actor, s.term, reg)
    except ServiceError as exc:
        errors = {exc.field or "phone": _message(exc)}
        return _respond(request, s, "cashier/_register.html", {**ctx, "errors": errors}, status=422)
    return _respond(
        request,
        s,
        "cashier/_registered.html",
        {"done": done, "reg": reg, "values": {}, "errors": {}},
    )


@router.post("/cashier/confirm-phone")
async def confirm_phone(request: Request, c: Viewer) -> Response:
    form = await _form(request)
    s = await _screen(c, form.get("store"))
    customer_id = (
        int(form.get("customer_id", "0") or 0) if form.get("customer_id", "").isdigit() else 0
    )
    done = {"customer_id": customer_id, "card": {"number": form.get("card", "")}}
    ctx: dict[str, Any] = {"done": done, "values": {"code": form.get("code", "")}, "errors": {}}
    if s.term is None:
        return _respond(request, s, "cashier/_registered.html", ctx)
    try:
        await cashier.do_confirm_phone(
            c.rt, c.actor, s.term, customer_id=customer_id, code=form.get("code", "")
        )
    except ServiceError as exc:
        ctx["errors"] = {"code": _message(exc)}
        return _respond(request, s, "cashier/_registered.html", ctx, status=422)
    return _respond(request, s, "cashier/_registered.html", {**ctx, "confirmed": True})


@router.post("/cashier/coupon")
async def coupon(request: Request, c: Viewer) -> Response:
    form = await _form(request)
    s = await _screen(c, form.get("store"))
    values = {"code": form.get("code", "")}
    ctx: dict[str, Any] = {"values": values, "errors": {}}
    if s.term is None:
        return _respond(request, s, "cashier/_coupon.html", ctx)
    try:
        found = await cashier.check_coupon(c.rt, s.term, values["code"])
    except ServiceError as exc:
        return _respond(
            request, s, "cashier/_coupon.html", {**ctx, "errors": {"code": _message(exc)}}
        )
    found["valid_from_dt"] = cashier.parse_iso(found.get("valid_from"))
    found["valid_until_dt"] = cashier.parse_iso(found.get("valid_until"))
    return _respond(request, s, "cashier/_coupon.html", {**ctx, "found": found})


@router.post("/cashier/gift-card")
async def gift_card(request: Request, c: Viewer) -> Response:
    form = await _form(request)
    s = await _screen(c, form.get("store"))
    values = {"number": form.get("number", "")}
    ctx: dict[str, Any] = {"values": values, "errors": {}}
    if s.term is None:
        return _respond(request, s, "cashier/_giftcard.html", ctx)
    try:
        found = await cashier.check_gift_card(c.rt, s.term, values["number"])
    except ServiceError as exc:
        errors = {"number": _message(exc)}
        return _respond(request, s, "cashier/_giftcard.html", {**ctx, "errors": errors})
    view = {
        **found,
        "balance_d": Decimal(found["balance"]),
        "available_d": Decimal(found["available"]),
        "held_d": Decimal(found["held"]),
        "nominal_d": Decimal(found["nominal"]),
        "expires_dt": cashier.parse_iso(found.get("expires_at")),
    }
    return _respond(request, s, "cashier/_giftcard.html", {**ctx, "found": view})


def _places(*values: str) -> int:
    """Whole points without decimals, as the balance shows them."""
    return 0 if all(Decimal(v) == Decimal(v).to_integral_value() for v in values) else 2


def _customer_view(data: dict[str, Any]) -> dict[str, Any]:
    """The lookup's strings as numbers and times, for the template's formatters."""
    bal = data["balance"]
    return {
        **data,
        "blocked": data["card"]["status"] != "active",
        "available": Decimal(bal["available"]),
        "pending": Decimal(bal["pending"]),
        "held": Decimal(bal["held"]),
        "debt": Decimal(bal.get("debt", "0")),
        "discount": None if data["discount_percent"] is None else Decimal(data["discount_percent"]),
        "purchases": [
            {
                **x,
                "at": datetime.fromisoformat(x["occurred_at"].replace("Z", "+00:00")),
                "to_pay_d": Decimal(x["to_pay"]),
                "earned_d": Decimal(x["points_earned"]),
                "redeemed_d": Decimal(x["points_redeemed"]),
                "places": _places(x["points_earned"], x["points_redeemed"]),
            }
            for x in data["last_purchases"]
        ],
        "offers_view": [
            {**o, "until": cashier.parse_iso(o.get("valid_until"))} for o in data["offers"]
        ],
    }
