"""What a calculation knows besides the basket: the store, the customer, the promotions'
spent budgets.  Frozen values, loaded by the services in one snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class StoreContext:
    code: str = ""
    partner: str = ""
    city: str | None = None
    region: str | None = None
    timezone: str | None = None  # None: the program's


@dataclass(frozen=True, slots=True)
class CustomerContext:
    """The customer as the calculation sees him; ``None`` for a non-member receipt.

    - ``available``: points spendable now.
    - ``keys``: what names him in a segment's list (customer id, phone, card numbers).
    - ``discount_percent``: his cumulative-discount level (kept by the job and at the till).
    - ``purchases``: confirmed receipts before this one (0: a first purchase).
    - ``usage``: per promotion id, receipts that used it in the current day, week, month,
      year and ever (only for promotions with limits).
    """

    account_id: int
    available: Decimal
    customer_id: int | None = None
    keys: frozenset[str] = frozenset()
    tier: str | None = None
    discount_percent: Decimal | None = None
    tags: frozenset[str] = frozenset()
    rfm: str | None = None
    last_purchase_on: date | None = None
    purchases: int = 0
    birthday: date | None = None
    offers: frozenset[str] = frozenset()
    usage: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BudgetLeft:
    """What a promotion with a budget may still give (None: that kind is unlimited)."""

    money: Decimal | None = None
    points: Decimal | None = None
