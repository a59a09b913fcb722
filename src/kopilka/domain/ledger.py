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
8. Coalition (ADR 0024): a lot is burnable anywhere in the program (``burn_partner_id``
   None) or only at one partner.  At partner P the spendable points are the active lots
   burnable at P less what the active holds need of them; every active hold stays
   payable from the lots burnable where it was made (``unrestricted_need`` <=
   unrestricted lots, checked by ``holds_payable``).

The functions here are pure: they take a snapshot of an account (lots, held, debt) and
return a plan (which lot gives how much) for the service to write.  They never read the
clock; ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

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
    # Where the points may be burned: None anywhere in the program, else only at that
    # partner.  Who issued (funds) them: None the program, else that partner.
    burn_partner_id: int | None = None
    funding_partner_id: int | None = None

    def burns_at(self, partner_id: int | None) -> bool:
        return self.burn_partner_id is None or self.burn_partner_id == partner_id

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
    lots: Sequence[Lot],
    amount: Decimal,
    *,
    now: datetime,
    held_before: bool = False,
    at: int | Literal["any"] | None = "any",
    unrestricted_cap: Decimal | None = None,
) -> list[Take]:
    """Take ``amount`` from active lots, soonest expiry first.

    With ``held_before`` the points were reserved by a hold earlier: lots whose expiry
    passed since then but which the expiry job has not emptied yet (it leaves accounts
    with active holds alone) still give, so a hold is honoured across midnight.
    ``at``: the partner where the points are burned (None: the program itself, e.g. a
    reward order); only lots burnable there give.  "any" ignores restrictions (an
    operator's correction).  ``unrestricted_cap``: at most this much comes out of lots
    burnable anywhere, so that active holds made elsewhere stay payable (``burn_cap``).
    Raises ``InsufficientPoints`` when the lots do not hold ``amount``.
    """
    takes: list[Take] = []
    left = amount
    cap = unrestricted_cap

    def usable(x: Lot) -> bool:
        if x.remaining <= 0 or x.is_pending(now):
            return False
        if at != "any" and not x.burns_at(at):
            return False
        return held_before or x.is_active(now)

    for lot in sorted(filter(usable, lots), key=burn_order_key):
        if left <= 0:
            break
        part = min(lot.remaining, left)
        if cap is not None and lot.burn_partner_id is None:
            part = min(part, max(cap, ZERO))
            cap -= part
        if part <= 0:
            continue
        takes.append(Take(lot.id, part))
        left -= part
    if left > 0:
        raise InsufficientPoints(needed=amount, available=amount - left)
    return takes


# --- coalition: restricted lots and holds (ADR 0024) -------------------------------------
#
# Lots burnable anywhere (U) and lots burnable only at partner X (R_X); active holds by
# the partner where they were made (H_X; None: the program, e.g. a reward order, which
# only unrestricted lots can pay).  A hold at X is paid from R_X first, then from U, so
# all holds are payable iff  U >= H_None + sum_X max(H_X - R_X, 0)  (Hall's condition for
# this star: each X has its own R_X and all share U).  Lots that expired after a hold was
# made still pay holds (see ``plan_burn``), so U and R_X here count active and overdue
# lots; new burns and holds take active lots only.


def _holding_lots(lots: Iterable[Lot], now: datetime) -> tuple[Decimal, dict[int, Decimal]]:
    """(U, R by partner) over the lots that can pay a hold: active or overdue."""
    u = ZERO
    r: dict[int, Decimal] = {}
    for x in lots:
        if x.remaining <= 0 or x.is_pending(now):
            continue
        if x.burn_partner_id is None:
            u += x.remaining
        else:
            r[x.burn_partner_id] = r.get(x.burn_partner_id, ZERO) + x.remaining
    return u, r


def unrestricted_need(
    lots: Iterable[Lot],
    held_at: Mapping[int | None, Decimal],
    *,
    besides: int | None,
    now: datetime,
) -> Decimal:
    """What the active holds made anywhere but at ``besides`` must take from lots burnable
    anywhere: the program's holds whole, a partner's beyond its own restricted lots."""
    _, r = _holding_lots(lots, now)
    need = ZERO
    for where, h in held_at.items():
        if where == besides or h <= 0:
            continue
        need += h if where is None else max(h - r.get(where, ZERO), ZERO)
    return need


def holds_payable(
    lots: Iterable[Lot], held_at: Mapping[int | None, Decimal], *, now: datetime
) -> bool:
    """Every active hold can still be paid from lots burnable where it was made."""
    lots = list(lots)
    u, r = _holding_lots(lots, now)
    need = held_at.get(None, ZERO) + sum(
        (max(h - r.get(w, ZERO), ZERO) for w, h in held_at.items() if w is not None), ZERO
    )
    return u >= need


def has_restricted(lots: Iterable[Lot]) -> bool:
    return any(x.burn_partner_id is not None for x in lots)


def spendable_at(
    lots: Sequence[Lot],
    *,
    at: int | None,
    held_at: Mapping[int | None, Decimal],
    now: datetime,
) -> Decimal:
    """Points a new hold or burn at partner ``at`` may take, all active holds kept payable.

    ``min(active lots burnable here, R_at' + U - H_at - N_at)`` where ``N_at`` is what the
    holds made elsewhere need of U (``unrestricted_need``) and ``R_at'`` counts overdue
    restricted lots only as far as they pay this partner's own holds.  Never negative.
    Without restricted lots and with every hold counted at the program this is the
    classic ``active - max(held - overdue, 0)`` of ``balance_of``.
    """
    active_here = ZERO
    active_r = ZERO
    overdue_r = ZERO
    all_u = ZERO
    for x in lots:
        if x.remaining <= 0 or x.is_pending(now) or not x.burns_at(at):
            continue
        active = x.is_active(now)
        if active:
            active_here += x.remaining
        if x.burn_partner_id is None:
            all_u += x.remaining
        elif active:
            active_r += x.remaining
        else:
            overdue_r += x.remaining
    own = held_at.get(at, ZERO)
    need = unrestricted_need(lots, held_at, besides=at, now=now)
    return max(min(active_here, active_r + min(overdue_r, own) + all_u - own - need), ZERO)


def burn_cap(
    lots: Sequence[Lot],
    *,
    at: int | None,
    held_at: Mapping[int | None, Decimal],
    now: datetime,
) -> Decimal:
    """Most a burn at ``at`` may take from unrestricted lots: U less what holds made
    elsewhere need of them.  (With it the holds stay payable whichever lots expire first;
    proof in ADR 0024.)"""
    u, _ = _holding_lots(lots, now)
    return u - unrestricted_need(lots, held_at, besides=at, now=now)


def balance_at(
    lots: Sequence[Lot],
    *,
    at: int | None,
    held: Decimal,
    held_at: Mapping[int | None, Decimal] | None,
    debt: Decimal,
    now: datetime,
) -> Balance:
    """The balance as a till of partner ``at`` sees it: ``available`` is what can be
    burned here.  Without restricted lots it is ``balance_of``.  ``held_at`` (active holds
    by partner) is needed only when there are restricted lots; None counts every hold as
    the program's, which never overstates what is spendable."""
    if not has_restricted(lots):
        return balance_of(lots, held=held, debt=debt, now=now)
    where: Mapping[int | None, Decimal] = held_at if held_at is not None else {None: held}
    pending = sum((x.remaining for x in lots if x.is_pending(now) and x.burns_at(at)), ZERO)
    available = spendable_at(lots, at=at, held_at=where, now=now)
    return Balance(available=available, pending=pending, held=held, debt=debt)


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
    own_lot_id: int | None = None,
    own_lot_ids: Collection[int] = (),
    held: Decimal,
    debt: Decimal,
    debt_limit: Decimal,
    now: datetime,
    held_at: Mapping[int | None, Decimal] | None = None,
) -> TakeBackPlan:
    """Take back ``amount`` earned points.

    The receipt's own lots give first (their funder funded what is taken back), then
    the lots that expire first.  Pending and active lots can give; expired ones cannot.
    Points covering active holds stay where they are (guarantee 6): active lots give at
    most what the holds do not need of them.  ``held_at`` (holds by partner, needed when
    there are restricted lots; None: every hold counted at the program) tells which
    lots the holds need (guarantee 8): a partner's restricted lots first, then
    unrestricted ones.
    """
    if amount <= 0:
        return TakeBackPlan()
    where: Mapping[int | None, Decimal] = held_at if held_at is not None else {None: held}
    usable = [x for x in lots if not x.is_expired(now) and x.remaining > 0]
    active_r: dict[int, Decimal] = {}
    active_u = ZERO
    for x in usable:
        if x.is_active(now):
            if x.burn_partner_id is None:
                active_u += x.remaining
            else:
                active_r[x.burn_partner_id] = active_r.get(x.burn_partner_id, ZERO) + x.remaining
    # What unrestricted active lots can give without leaving a hold unpaid.
    slack = active_u - where.get(None, ZERO)
    for w, h in where.items():
        if w is not None:
            slack -= max(h - active_r.get(w, ZERO), ZERO)
    own = {*own_lot_ids, *(() if own_lot_id is None else (own_lot_id,))}
    ordered = sorted(usable, key=lambda x: (x.id not in own, *burn_order_key(x)))
    takes: list[Take] = []
    left = amount
    for lot in ordered:
        if left <= 0:
            break
        can = min(lot.remaining, left)
        if lot.is_active(now):
            p = lot.burn_partner_id
            if p is None:
                can = min(can, max(slack, ZERO))
                slack -= can
            else:
                free = max(active_r[p] - where.get(p, ZERO), ZERO)
                can = min(can, free + max(slack, ZERO))
                slack -= max(can - free, ZERO)
                active_r[p] -= can
        if can <= 0:
            continue
        takes.append(Take(lot.id, can))
        left -= can
    debt_added = min(left, max(debt_limit - debt, ZERO))
    return TakeBackPlan(takes=takes, debt_added=debt_added, uncollected=left - debt_added)


def plan_expire(lots: Sequence[Lot], *, now: datetime) -> list[Take]:
    """Every lot whose expiry has come leaves with its whole remainder (exact to the lot's day)."""
    return [Take(x.id, x.remaining) for x in lots if x.is_expired(now) and x.remaining > 0]
