"""The calculation of a receipt: a pure function of (basket, customer, program, clock).

``price_receipt`` takes what the POS sent and the customer's context and decides, for
every line and for the receipt: the amount, the discount, the points redeemed (and the
roubles they pay), what is left to pay, and the points earned, with the reasons.

Steps, each rounding once with a named mode:

1. ``amount = quantity * price`` rounded half up to the kopeck (checked at the edge
   against the POS's own amount).
2. ``discount``: the POS's own line discount (promotion discounts of the rules engine
   join here).  ``net = amount - discount``.
3. Points to burn: at most ``burn_max_percent`` of the net receipt (keeping
   ``min_payment``), at most what is available, a multiple of the points step.  Their
   rouble value is spread over lines by net amount (largest remainder), points likewise.
4. ``to_pay = net - redeemed value`` (never negative).
5. Points earned on the receipt's ``to_pay`` total, rounded once, then spread over lines by
   ``to_pay`` (largest remainder), so line points always add up to the receipt's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kopilka.domain.money import (
    HUNDRED,
    KOPECK,
    ZERO,
    allocate,
    from_minor,
    q2,
    round_points,
    to_minor,
)
from kopilka.domain.program import ProgramSettings
from kopilka.domain.rules.facts import CustomerContext

if TYPE_CHECKING:
    from kopilka.domain.rules.compiler import CompiledProgram

MAX = "max"


@dataclass(frozen=True, slots=True)
class BasketLine:
    sku: str
    name: str
    category: str | None
    quantity: Decimal
    price: Decimal
    discount: Decimal = ZERO

    @property
    def amount(self) -> Decimal:
        """quantity x price, rounded half up to the kopeck; before any discount."""
        return q2(self.quantity * self.price)


@dataclass(frozen=True, slots=True)
class Basket:
    lines: tuple[BasketLine, ...]
    redeem_points: Decimal | str | None = None
    occurred_at: datetime | None = None
    coupons: tuple[str, ...] = ()
    gift_card_payment: bool = False
    gift_card_amount: Decimal = ZERO  # what gift cards pay of ``to_pay``


# Applied and PricedLine are made by the dozen for every receipt: plain slotted classes
# (a frozen dataclass's __init__ is three times slower); nothing mutates them.
@dataclass(slots=True)
class Applied:
    """Why a line or receipt got what it got: a rule, the roubles and points it gave."""

    rule: str
    discount: Decimal = ZERO
    points: Decimal = ZERO
    reason: str = ""


@dataclass(slots=True)
class PricedLine:
    amount: Decimal
    discount: Decimal
    points_redeemed: Decimal
    redeemed_value: Decimal
    to_pay: Decimal
    points_earned: Decimal
    applied: tuple[Applied, ...] = ()


@dataclass(frozen=True, slots=True)
class PricedReceipt:
    lines: tuple[PricedLine, ...]
    amount: Decimal
    discount: Decimal
    points_redeemed: Decimal
    redeemed_value: Decimal
    to_pay: Decimal
    points_earned: Decimal
    redeem_max: Decimal
    applied: tuple[Applied, ...] = field(default_factory=tuple)
    messages: tuple[str, ...] = ()  # for the printed receipt
    cashier_messages: tuple[str, ...] = ()
    gifts: tuple[tuple[str, ...], ...] = ()  # (sku, name, quantity)
    program_version: int = 1
    explanations: dict[str, str] | None = None  # promotion id -> why (not) applied
    draw_tickets: dict[str, int] = field(default_factory=dict)  # promotion id -> bonus tickets


class RedeemRefused(Exception):
    """The requested points cannot be burned; ``code`` is the stable API code."""

    def __init__(self, code: str, detail: str, *, redeem_max: Decimal) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.redeem_max = redeem_max


def redeem_limit(net_total: Decimal, available: Decimal, program: ProgramSettings) -> Decimal:
    """Most points this receipt may burn: by share of the receipt, min payment and balance."""
    by_share = (net_total * program.burn_max_percent / HUNDRED).quantize(KOPECK, ROUND_DOWN)
    payable = min(by_share, max(net_total - program.min_payment, ZERO))
    points = round_points(payable / program.point_value, step=program.points_step, mode="floor")
    avail = round_points(max(available, ZERO), step=program.points_step, mode="floor")
    return max(min(points, avail), ZERO)


def price_receipt(
    basket: Basket,
    customer: CustomerContext | None,
    program: ProgramSettings | CompiledProgram,
    now: datetime,
    **kwargs: Any,
) -> PricedReceipt:
    """Price a basket with the rules engine (``rules.engine.price_receipt``).

    Given bare ``ProgramSettings`` the basket is priced by a bonus program with those
    settings and no promotions.  Raises ``RedeemRefused``.
    """
    from kopilka.domain.rules import engine

    if isinstance(program, ProgramSettings):
        program = _base_program(program)
    return engine.price_receipt(basket, customer, program, now, **kwargs)


@lru_cache(maxsize=64)
def _base_program(settings: ProgramSettings) -> CompiledProgram:
    from kopilka.domain.rules.compiler import compile_program, program_from_settings

    return compile_program(program_from_settings(settings))


def content_rank(lines: Sequence[BasketLine]) -> list[int]:
    order = sorted(
        range(len(lines)),
        key=lambda i: (
            lines[i].sku,
            lines[i].name,
            lines[i].category or "",
            lines[i].quantity,
            lines[i].price,
            lines[i].discount,
        ),
    )
    rank = [0] * len(lines)
    for pos, i in enumerate(order):
        rank[i] = pos
    return rank


def spread(total: Decimal, weights_minor: Sequence[int], rank: Sequence[int]) -> list[Decimal]:
    if total == 0 or sum(weights_minor) == 0:
        return [ZERO.quantize(KOPECK)] * len(weights_minor)
    return [from_minor(x) for x in allocate(to_minor(total), weights_minor, tiebreak=rank)]


def points_to_redeem(
    requested: Decimal | str | None,
    customer: CustomerContext | None,
    net_total: Decimal,
    program: ProgramSettings,
    *,
    enabled: bool = True,
) -> Decimal:
    """Points the request asks to burn, checked against the limits."""
    if requested is None or (requested != MAX and Decimal(requested) == 0):
        return ZERO
    if not enabled:
        if requested == MAX:  # "as much as allowed" is none; a till may always send it
            return ZERO
        raise RedeemRefused(
            "points_not_enabled", "this program has no points to redeem", redeem_max=ZERO
        )
    if customer is None:
        raise RedeemRefused(
            "not_a_member",
            "points can only be redeemed with a customer identifier",
            redeem_max=ZERO,
        )
    limit = redeem_limit(net_total, customer.available, program)
    if requested == MAX:
        return limit
    amount = Decimal(requested)
    if amount % program.points_step != 0:
        raise RedeemRefused(
            "invalid_points_step",
            f"points are redeemed in steps of {program.points_step}",
            redeem_max=limit,
        )
    if amount > customer.available:
        raise RedeemRefused(
            "insufficient_points",
            f"{amount} points requested, {customer.available} available",
            redeem_max=limit,
        )
    if amount > limit:
        raise RedeemRefused(
            "redeem_limit_exceeded",
            f"at most {limit} points can be redeemed on this receipt",
            redeem_max=limit,
        )
    return amount
