"""Request bodies of the POS API, validated strictly at the edge.

Strict models (``true`` is not a number) that forbid unknown fields; decimals are
accepted as JSON numbers or strings and parsed straight to ``Decimal``.  Texts never
carry a NUL (PostgreSQL cannot store one); ids and identifiers carry no control
characters at all.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Price = Annotated[
    Decimal, Field(ge=0, le=Decimal("100000000"), decimal_places=2, allow_inf_nan=False)
]
Qty = Annotated[Decimal, Field(gt=0, le=Decimal("100000"), decimal_places=3, allow_inf_nan=False)]
Points = Annotated[
    Decimal, Field(ge=0, le=Decimal("1000000000"), decimal_places=2, allow_inf_nan=False)
]
# What the ids a POS chooses (receipt_id, refund_id) may be: they travel in URL paths.
ID_PATTERN = r"^[^\s/?#%\x00-\x1f\x7f]+$"
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
# A scanned identifier (card, phone "+7 903 ...", QR token): printable, spaces allowed.
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
Scanned = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL)]
# Free texts (names): anything but NUL.
NO_NUL = r"^[^\x00]*$"
Text100 = Annotated[str, Field(max_length=100, pattern=NO_NUL)]
Text300 = Annotated[str, Field(max_length=300, pattern=NO_NUL)]
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class LineIn(Strict):
    sku: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL)]
    name: Text300 = ""
    category: Text100 | None = None
    quantity: Qty
    price: Price
    amount: Price | None = Field(
        default=None, description="quantity x price as the POS computed it; checked"
    )
    discount: Price | None = Field(
        default=None, description="the POS's own discount on the line, in roubles"
    )


class GiftCardIn(Strict):
    number: Scanned
    pin: Annotated[str, Field(max_length=16, pattern=NO_CONTROL)] | None = None
    amount: Price


class PurchaseIn(Strict):
    """Calculate, or calculate-and-confirm: the same body."""

    receipt_id: Ident
    identifier: Scanned | None = None
    occurred_at: AwareDatetime | None = Field(
        default=None, description="with an offset; from 2000 up to a day ahead of the server"
    )
    cashier_id: Annotated[str, Field(max_length=64, pattern=NO_CONTROL)] | None = None
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=1000)]
    redeem_points: Points | Literal["max"] | None = None
    total: Price | None = Field(
        default=None, description="the receipt total after the POS's discounts; checked"
    )
    coupons: Annotated[list[Scanned], Field(max_length=100)] = Field(
        default_factory=list,
        description="coupon codes (as printed: case, spaces and dashes do not matter); "
        "each must be valid here and now, or the answer is 404 coupon_not_found / 422 "
        "coupon_used, coupon_expired, ... naming coupons[i]",
    )
    gift_cards: Annotated[list[GiftCardIn], Field(max_length=100)] = Field(
        default_factory=list,
        description="gift cards paying part of the receipt (number, PIN, amount): held at "
        "calculate, debited at confirm (docs/gift-cards.md)",
    )
    offline_token: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Z2-7]+$")] | (
        None
    ) = Field(
        default=None,
        description="a receipt made offline that burned points under the customer's signed "
        "offline token (the QR text, KO...): POST /purchases and the batch only; "
        "redeem_points is the number of points burned (docs/pos-integration.md, Offline burn)",
    )


class RedeemCodeIn(Strict):
    """Who gets the points of a points code."""

    identifier: Scanned


class RewardOrderIn(Strict):
    """A reward ordered at the till, for the customer named by ``identifier``."""

    identifier: Scanned
    reward: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL)]
    order_id: Ident = Field(description="the POS's id of this order: the idempotency key")
    issue: bool = Field(
        default=True,
        description="handed over now: the points are spent at once (false: held until "
        "issued from the admin API)",
    )


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    receipts: Annotated[list[object], Field(min_length=1, max_length=1000)]


class ConfirmIn(BaseModel):
    """Optional body of confirm/cancel; everything was sent with calculate.

    Unknown fields are ignored here, unlike everywhere else: a POS that sends the whole
    receipt again with its confirm must not have a sale that went through refused.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    occurred_at: AwareDatetime | None = None


class RefundLineIn(Strict):
    index: Annotated[int, Field(ge=0, le=10000)]
    quantity: Qty | None = None


class RefundIn(Strict):
    refund_id: Ident
    lines: Annotated[list[RefundLineIn], Field(min_length=1, max_length=1000)] | None = None


class CustomerIn(Strict):
    phone: Annotated[str, Field(min_length=5, max_length=32, pattern=NO_CONTROL)]
    first_name: Text100 = ""
    last_name: Text100 = ""
    middle_name: Text100 = ""
    email: Annotated[str, Field(max_length=254, pattern=EMAIL_PATTERN)] | None = None
    birthday: date | None = None
    gender: Literal["m", "f"] | None = None
    card_number: Annotated[str, Field(pattern=r"^\d{13}$")] | None = None
    consent_sms: bool = False
    consent_email: bool = False
    device_id: Annotated[str, Field(min_length=1, max_length=128, pattern=NO_CONTROL)] | None = (
        Field(
            default=None,
            description="the registering device's fingerprint (an app, a self-service "
            "kiosk): referrals from one device to one referrer are refused as a farm",
        )
    )
    invite_code: Annotated[str, Field(min_length=4, max_length=32, pattern=NO_CONTROL)] | None = (
        Field(
            default=None,
            description="a member's invite code: both get points after this customer's "
            "first confirmed purchase; a code that cannot be used does not stop the "
            "registration (the answer's referral says why)",
        )
    )


class PhoneCodeIn(Strict):
    code: Annotated[str, Field(pattern=r"^\d{6}$")]
