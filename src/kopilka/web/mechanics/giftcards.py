"""Gift cards: series (list, create: numbers and PINs shown once), cards by state, a
card's balance and movements, block/unblock with a reason, exports, breakage."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.services import giftcards
from kopilka.services.audit import require_reason
from kopilka.services.errors import ServiceError
from kopilka.web.auth import Console, console
from kopilka.web.mechanics.common import (
    FormErrors,
    Reader,
    download,
    fmt_of,
    form_values,
    refusal,
)
from kopilka.web.tables import PageRequest
from kopilka.web.templating import redirect, render

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.MECHANICS_READ))
WRITE = Depends(console(Perm.MECHANICS_WRITE))
MAX_CARDS = 1000  # a call: each PIN is hashed (~4 ms); larger series from the CLI
FIELDS = {"code": "code", "name": "name", "nominal": "nominal", "count": "count"}


@router.get("/admin/gift-cards")
async def series_list(request: Request, c: Annotated[Console, READ]) -> Response:
    program = c.need_program()
    pr = PageRequest.of(
        request, sorts=giftcards.GIFT_SERIES_SORTS, default="created_at", default_dir="desc"
    )
    rows, total = await giftcards.list_gift_series(
        c.rt,
        program_id=program.id,
        offset=pr.offset,
        limit=pr.limit,
        sort=pr.sort,
        descending=pr.descending,
    )
    breakage = await giftcards.breakage_report(c.rt, program.code)
    return render(
        request,
        "mechanics/giftcards.html",
        {
            "page": pr.page(rows, total),
            "breakage": breakage,
            "totals": {
                "breakage": sum((b.breakage for b in breakage), giftcards.ZERO),
                "activated": sum((b.activated for b in breakage), giftcards.ZERO),
                "redeemed": sum((b.redeemed for b in breakage), giftcards.ZERO),
                "outstanding": sum((b.outstanding for b in breakage), giftcards.ZERO),
            },
        },
    )


def _form(
    request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    return render(
        request, "mechanics/giftcard_new.html", {"values": values, "errors": errors}, status=status
    )


@router.get("/admin/gift-cards/new")
async def series_form(request: Request, c: Annotated[Console, WRITE]) -> Response:
    c.need_program()
    return _form(request, {"valid_days": "365", "count": "10"}, {})


@router.post("/admin/gift-cards/new")
async def series_create(request: Request, c: Annotated[Console, WRITE]) -> Response:
    program = c.need_program()
    values = await form_values(request)
    f = Reader(request, values)
    code = f.code("code")
    name = f.text("name")
    nominal = f.decimal("nominal", required=True)
    count = f.integer("count", required=True, low=1, high=MAX_CARDS)
    valid_days = f.integer("valid_days", low=1, high=36_500)
    try:
        f.check()
        assert nominal is not None and count is not None
        cards = await giftcards.do_create_series(
            c.rt,
            program.code,
            code=code,
            name=name,
            nominal=nominal,
            count=count,
            valid_days=valid_days,
            actor=c.actor,
        )
    except FormErrors as exc:
        return _form(request, values, exc.errors, 422)
    except ServiceError as exc:
        errors = refusal(request, exc, FIELDS)
        if exc.code == "gift_card_series_exists":
            errors = {"code": f._("A series with this code exists already")}
        return _form(request, values, errors, 422)
    except IntegrityError:
        return _form(request, values, {"code": f._("A series with this code exists already")}, 422)
    # The PINs exist only now (only their hashes are stored): shown on this answer once.
    return render(
        request,
        "mechanics/giftcard_pins.html",
        {"code": code, "name": name, "nominal": nominal, "cards": cards},
        headers={"Cache-Control": "no-store"},
    )


def _cards_filter(request: Request) -> dict[str, str]:
    q = request.query_params
    state = q.get("state", "")
    return {
        "series": q.get("series", "")[:64],
        "state": state if state in giftcards.CARD_STATES else "",
        "number": "".join(ch for ch in q.get("number", "") if ch.isdigit())[:32],
    }


@router.get("/admin/gift-cards/cards")
async def cards_list(request: Request, c: Annotated[Console, READ]) -> Response:
    program = c.need_program()
    flt = _cards_filter(request)
    pr = PageRequest.of(request, sorts=giftcards.CARD_SORTS, default="number")
    rows, total = await giftcards.list_cards(
        c.rt,
        program_id=program.id,
        **flt,
        offset=pr.offset,
        limit=pr.limit,
        sort=pr.sort,
        descending=pr.descending,
    )
    return render(
        request,
        "mechanics/giftcard_cards.html",
        {"page": pr.page(rows, total), "f": flt, "states": giftcards.CARD_STATES},
    )


@router.get("/admin/gift-cards/export")
async def cards_export(request: Request, c: Annotated[Console, READ]) -> Response:
    program = c.need_program()
    flt = _cards_filter(request)
    table = giftcards.cards_table(
        c.rt, program_id=program.id, series=flt["series"], state=flt["state"]
    )
    name = "-".join(x for x in ("gift-cards", flt["series"], flt["state"]) if x)
    return download(table, fmt_of(request), name)


def _card_url(number: str) -> str:
    return "/admin/gift-cards/cards/" + quote(number, safe="")


async def _card_page(
    request: Request, c: Console, number: str, ctx: dict[str, Any] | None = None, status: int = 200
) -> Response:
    # A partner user sees the movements at its own tills only (the card is the program's).
    card, moves = await giftcards.card_detail(
        c.rt, program_id=c.need_program().id, number=number, partner_id=c.actor.partner_id
    )
    return render(
        request,
        "mechanics/giftcard_card.html",
        {
            "card": card,
            "moves": moves,
            "partner_only": c.actor.partner_id is not None,
            "values": {},
            "errors": {},
            **(ctx or {}),
        },
        status=status,
    )


@router.get("/admin/gift-cards/cards/{number}")
async def card_page(request: Request, number: str, c: Annotated[Console, READ]) -> Response:
    return await _card_page(request, c, number)


@router.post("/admin/gift-cards/cards/{number}/{action}")
async def card_block(
    request: Request, number: str, action: str, c: Annotated[Console, WRITE]
) -> Response:
    program = c.need_program()
    if action not in ("block", "unblock"):
        return await _card_page(request, c, number, status=404)
    values = await form_values(request)
    f = Reader(request, values)
    try:
        reason = require_reason(values.get("reason"))
    except ServiceError:
        errors = {"reason": f._("Say why (at least 3 characters)")}
        return await _card_page(request, c, number, {"values": values, "errors": errors}, 422)
    if action == "block":
        await giftcards.do_block(c.rt, program.code, number, actor=c.actor, reason=reason)
        return redirect(_card_url(number), flash=f._("Gift card blocked"))
    await giftcards.do_unblock(c.rt, program.code, number, actor=c.actor, reason=reason)
    return redirect(_card_url(number), flash=f._("Gift card unblocked"))
