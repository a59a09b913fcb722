"""A bonus program's settings: what the calculation and the ledger need to know.

The full rules engine (tiers, promotions) grows on top of this; these settings stay the
program's base rule: how points are earned and burned, what a point is worth, how long
points take to activate and how long they live.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class ProgramSettings:
    """Base earn/burn rule of a bonus program.

    - ``earn_percent``: points earned per 100 roubles actually paid (after discounts and
      after points burned), e.g. 5 -> 5 points for 100 roubles.
    - ``burn_max_percent``: the largest share of the receipt (after discounts) that
      points may pay, in percent.
    - ``point_value``: roubles one point is worth when burned.
    - ``points_step`` and ``earn_rounding``: earned points are rounded once per receipt
      to this step (1 or 0.01) with this mode (``floor`` or ``half_up``); burned points
      must be a multiple of the step.
    - ``min_payment``: roubles the customer must pay in money whatever points he has.
    - ``activation_delay_days``: earned points are pending this many days (0: at once).
    - ``expiry_days``: points expire this many days after activation (None: never).
    - ``hold_ttl_s``: how long a calculated receipt keeps its redeemed points held.
    - ``negative_balance_limit``: how far a refund may take an account below zero.
    - ``timezone``: the program's day boundary for activation and expiry dates.
    - ``offline_cap_max``: the most points an offline burn token may allow (0: the
      program issues no offline tokens; ADR 0030).
    - ``offline_token_ttl_s``: how long an offline burn token is valid.
    """

    earn_percent: Decimal = Decimal("5")
    burn_max_percent: Decimal = Decimal("30")
    point_value: Decimal = Decimal("1")
    points_step: Decimal = Decimal("1")
    earn_rounding: str = "floor"
    min_payment: Decimal = Decimal("0")
    activation_delay_days: int = 0
    expiry_days: int | None = 365
    hold_ttl_s: int = 900
    negative_balance_limit: Decimal = Decimal("0")
    timezone: str = "Europe/Moscow"
    offline_cap_max: Decimal = Decimal("0")
    offline_token_ttl_s: int = 900
