"""POS API v1, gift cards (docs/gift-cards.md): state and balance, activation at sale.

Thin handlers: the terminal key is checked by the POS routes' own dependency; refusals
are ServiceErrors, turned into problem+json by the app.
"""

from __future__ import annotations

import re

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from kopilka.api.pos.routes import ERRORS, JSON, _auth, _rt
from kopilka.api.pos.schemas import ID_PATTERN
from kopilka.services import giftcards
from kopilka.services.giftcards import GiftCardError

router = APIRouter(prefix="/api/pos/v1", tags=["POS: gift cards"])
GIFT_ERRORS = {**ERRORS, 429: ERRORS[422]}
_NUMBER_RE = re.compile(r"^\d{8,19}$")


class ActivateIn(BaseModel):
    """The sale of the card: the receipt it was sold on, for the audit trail."""

    model_config = ConfigDict(extra="forbid")
    receipt_id: str | None = Field(default=None, max_length=64, pattern=ID_PATTERN)


def _number(number: str) -> str:
    """A number from the URL; one that cannot be a gift card number is simply not found."""
    if not _NUMBER_RE.match(number):
        raise GiftCardError("gift_card_not_found", "no gift card with this number", field="number")
    return number


@router.get(
    "/gift-cards/{number}",
    responses=GIFT_ERRORS,
    summary="Gift card state and balance",
)
async def gift_card(request: Request, number: str) -> Response:
    term = await _auth(request)
    data = await giftcards.balance(_rt(request), term, _number(number))
    return Response(orjson.dumps(data), media_type=JSON)


@router.post(
    "/gift-cards/{number}/activate",
    responses=GIFT_ERRORS,
    summary="The gift card was sold: it becomes usable",
)
async def activate(request: Request, number: str) -> Response:
    term = await _auth(request)
    raw = await request.body()
    if raw.strip():
        ActivateIn.model_validate_json(raw)  # validated; the receipt id is not stored yet
    data = await giftcards.do_activate(_rt(request), term, _number(number))
    return Response(orjson.dumps(data), media_type=JSON)
