"""Points ledger: lots, FIFO-by-expiry burn, holds, take-back on refunds, expiry.

Guarantees (asserted where state changes, proven by ``kopilka ledger verify`` and the
state-machine test):

1. Entries are never updated or deleted; a correction is a new, reversing entry.
2. Every entry has a counterparty, its *funding party* (the program or a partner): the
   issuer's liability to members is minus the sum of entries it funded, so each posting
   sums to zero including the issuer.
3. ``account.balance == sum(entry.amount) == sum(lot.remaining) - account.debt``.
4. ``account.held == sum(entry.held_delta) == sum(amount of active holds)``.
5. ``lot.remaining >= 0``; ``account.debt >= 0`` and never above the program's
   negative-balance limit, plus what offline burns added: each at most its token's cap
   (ADR 0030).
6. ``available = sum(remaining of active lots) - held``; a hold never makes it negative.
7. A hold resolves exactly once: confirmed (burned), cancelled, or expired (released).

The functions here are pure: they take a snapshot of an account (lots, held, debt) and
return a plan (which lot gives how much) for the service to write.  They never read the
clock; ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal("0")


class EntryKind(StrEnum):
    EARN = "earn"
    BURN = "burn"
    HOLD = "hold"
    RELEASE = "release"
    REFUND = "refund"
    EXPIRE = "expire"
    ADJUST = "adjust"


class HoldState(StrEnum):
    ACTIVE = "active"
    CONFIRMED = "confirmed"
    RELEASED = "released"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Lot:
    """A portion of earned points with its own activation and expiry time.

    ``expires_at`` is exclusive: the lot is usable while ``activates_at <= now < expires_at``.
    """

    id: int
    remaining: Decimal
    activates_at: datetime
    expires_at: datetime | None

    def is_active(self, now: datetime) -> bool:
        return self.activates_at <= now and (self.expires_at is None or now < self.expires_at)

    def is_pending(self, now: datetime) -> bool:
        return now < self.activates_at

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class Balance:
    available: Decimal
    pending: Decimal
    held: Decimal
    debt: Decimal


def burn_order_key(lot: Lot) -> tuple[int, datetime, datetime, int]:
    """Lots that expire first are burned first; lots that never expire come last."""
    far = datetime.max.replace(tzinfo=lot.activates_at.tzinfo)
    return (lot.expires_at is None, lot.expires_at or far, lot.activates_at, lot.id)


def balance_of(lots: Iterable[Lot], *, held: Decimal, debt: Decimal, now: datetime) -> Balance:
    """Available, pending and held points at ``now``.

    Points held before their lot's expiry day stay burnable until the hold resolves
    (the expiry job leaves accounts with holds alone), so such overdue lots cover the
    holds first: ``available = active - max(held - overdue, 0)``, never negative.
    """
    active = ZERO
    pending = ZERO
    overdue = ZERO
    for lot in lots:
        if lot.is_active(now):
            active += lot.remaining
        elif lot.is_pending(now):
            pending += lot.remaining
        else:
            overdue += lot.remaining
    uncovered = max(held - overdue, ZERO)
    return Balance(available=active - uncovered, pending=pending, held=held, debt=debt)


@dataclass(frozen=True, slots=True)
class Take:
    lot_id: int
    amount: Decimal


def plan_burn(
    lots: Sequence[Lot], amount: Decimal, *, now: datetime, held_before: bool = False
) -> list[Take]:
    """Take ``amount`` from active lots, soonest expiry first.

    With ``held_before`` the points were reserved by a hold earlier: lots whose expiry
    passed since then but which the expiry job has not emptied yet (it leaves accounts
    with active holds alone) still give, so a hold is honoured across midnight.
    Raises ``InsufficientPoints`` when the lots do not hold ``amount``.
    """
    takes: list[Take] = []
    left = amount

    def usable(x: Lot) -> bool:
        if x.remaining <= 0 or x.is_pending(now):
            return False
        return held_before or x.is_active(now)

    for lot in sorted(filter(usable, lots), key=burn_order_key):
        if left <= 0:
            break
        part = min(lot.remaining, left)
        takes.append(Take(lot.id, part))
        left -= part
    if left > 0:
        raise InsufficientPoints(needed=amount, available=amount - left)
    return takes


class InsufficientPoints(Exception):
    def __init__(self, *, needed: Decimal, available: Decimal) -> None:
        super().__init__(f"needed {needed}, available {available}")
        self.needed = needed
        self.available = available


@dataclass(frozen=True, slots=True)
class OfflineBurnPlan:
    """An offline burn split: what the lots give, and the rest, booked as debt."""

    from_lots: Decimal
    debt: Decimal


def plan_offline_burn(points: Decimal, *, available: Decimal, cap_left: Decimal) -> OfflineBurnPlan:
    """Split ``points`` a till burned offline under a token (ADR 0030).

    The till was allowed ``cap_left`` (the token's cap less its earlier burns) whatever
    the balance; the lots give what is ``available`` now, the rest becomes debt.  So the
    debt added is at most ``cap_left``.  Precondition: ``0 <= points <= cap_left``.
    """
    assert ZERO <= points <= cap_left, (points, cap_left)
    from_lots = min(points, max(available, ZERO))
    return OfflineBurnPlan(from_lots=from_lots, debt=points - from_lots)


@dataclass(frozen=True, slots=True)
class EarnPlan:
    """Newly earned points first pay off a debt (negative balance), the rest makes a lot."""

    debt_paid: Decimal
    lot_amount: Decimal


def plan_earn(amount: Decimal, *, debt: Decimal) -> EarnPlan:
    assert amount >= 0 and debt >= 0
    paid = min(amount, debt)
    return EarnPlan(debt_paid=paid, lot_amount=amount - paid)


@dataclass(frozen=True, slots=True)
class TakeBackPlan:
    """How points earned on returned goods are taken back.

    ``takes`` come out of lots (the receipt's own lot first, then soonest expiry),
    ``debt_added`` makes the balance negative within the program's limit, and
    ``uncollected`` is what could not be taken back at all (reported to the POS and
    the fraud report).
    """

    takes: list[Take] = field(default_factory=list)
    debt_added: Decimal = ZERO
    uncollected: Decimal = ZERO


def plan_take_back(
    lots: Sequence[Lot],
    amount: Decimal,
    *,
    own_lot_id: int | None,
    held: Decimal,
    debt: Decimal,
    debt_limit: Decimal,
    now: datetime,
) -> TakeBackPlan:
    """Take back ``amount`` earned points.

    Pending and active lots can give; expired ones cannot.  Points covering active holds
    stay where they are (guarantee 6), so active lots give at most their sum minus
    ``held``.
    """
    if amount <= 0:
        return TakeBackPlan()
    usable = [x for x in lots if not x.is_expired(now) and x.remaining > 0]
    active_spare = sum((x.remaining for x in usable if x.is_active(now)), ZERO) - held
    ordered = sorted(usable, key=lambda x: (x.id != own_lot_id, *burn_order_key(x)))
    takes: list[Take] = []
    left = amount
    for lot in ordered:
        if left <= 0:
            break
        can = lot.remaining
        if lot.is_active(now):
            can = min(can, max(active_spare, ZERO))
        part = min(can, left)
        if part <= 0:
            continue
        if lot.is_active(now):
            active_spare -= part
        takes.append(Take(lot.id, part))
        left -= part
    debt_added = min(left, max(debt_limit - debt, ZERO))
    return TakeBackPlan(takes=takes, debt_added=debt_added, uncollected=left - debt_added)


def plan_expire(lots: Sequence[Lot], *, now: datetime) -> list[Take]:
    """Every lot whose expiry has come leaves with its whole remainder (exact to the lot's day)."""
    return [Take(x.id, x.remaining) for x in lots if x.is_expired(now) and x.remaining > 0]
