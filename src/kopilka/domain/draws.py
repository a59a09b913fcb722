"""Prize draws: tickets from purchases, and a fair, verifiable choice of winners (pure).

Algorithm ``kopilka-draw-v1`` (docs/draws.md repeats it for third parties):

1. Commitment.  The seed is 32 random bytes written as 64 lowercase hex characters.
   ``seed_hash = sha256(ascii(seed)).hexdigest()`` (``printf %s SEED | sha256sum``) is
   published before the period closes; the seed itself after the draw.
2. Ticket list.  One ``(account_id, tickets)`` pair per member with ``tickets > 0``,
   sorted by ``account_id`` ascending.  Its digest is the SHA-256 hex of the UTF-8 text
   made of one line ``"{account_id}:{tickets}\\n"`` per pair, in that order.
3. Prize slots.  The rules' prizes in their listed order, each repeated ``count``
   times, numbered ``place = 1, 2, ...``.  Place 1 is drawn first.
4. Random numbers.  ``key = bytes.fromhex(seed)``; a counter ``c`` starts at 0.  To draw
   a uniform integer in ``[0, n)``: ``x = int(HMAC-SHA256(key, c as 8-byte big-endian))``
   (big-endian, 256 bits), ``c += 1``; if ``x >= 2**256 - (2**256 % n)`` reject it and
   draw again (rejection sampling: no modulo bias); otherwise the number is ``x % n``.
5. Selection.  For each slot: ``n`` = tickets remaining in total; stop if ``n == 0``
   (fewer winners than prizes).  Draw ``r`` in ``[0, n)``; walking the list in order with
   a running sum of tickets, the winner is the first account whose running sum exceeds
   ``r``.  Then, with ``one_prize_per_member`` the winner's tickets all leave the list;
   otherwise only the winning ticket does (the account's count drops by one).

Anyone holding the published seed, ticket list and rules reruns steps 3-5 and must get
the same ``(place, account_id)`` pairs; ``verify_record`` does exactly that.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

ALGORITHM = "kopilka-draw-v1"
_SPACE = 1 << 256


class InvalidRules(ValueError):
    """The draw's rules cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class Prize:
    """``count`` identical prizes: points credited to the winner, or goods handed over."""

    name: str
    count: int = 1
    points: Decimal | None = None
    goods: str | None = None


@dataclass(frozen=True, slots=True)
class DrawRules:
    """How purchases become tickets, and what is won.

    A receipt below ``min_purchase`` (roubles paid) gives nothing; otherwise it gives
    ``tickets_per_purchase`` plus one ticket per whole ``tickets_per_amount`` roubles
    paid (floor), when that is set.
    """

    prizes: tuple[Prize, ...]
    tickets_per_purchase: int = 1
    tickets_per_amount: Decimal | None = None
    min_purchase: Decimal = Decimal(0)
    one_prize_per_member: bool = True


@dataclass(frozen=True, slots=True)
class PaidReceipt:
    """A confirmed member receipt of the period: ``to_pay`` is what the customer paid
    (after discounts and points)."""

    account_id: int
    to_pay: Decimal
    bonus: int = 0  # tickets promotions gave on it (the ``draw_tickets`` effect)


@dataclass(frozen=True, slots=True)
class Slot:
    place: int
    prize: Prize


@dataclass(frozen=True, slots=True)
class Winner:
    place: int
    account_id: int
    prize: Prize = field(compare=False)


# --- rules as data ------------------------------------------------------------------------


def rules_from_dict(data: Mapping[str, Any]) -> DrawRules:
    """Rules from their JSON form, validated (raises ``InvalidRules``)."""
    try:
        prizes = tuple(_prize(p) for p in data.get("prizes", []))
        per_amount = data.get("tickets_per_amount")
        rules = DrawRules(
            prizes=prizes,
            tickets_per_purchase=int(data.get("tickets_per_purchase", 1)),
            tickets_per_amount=None if per_amount is None else Decimal(str(per_amount)),
            min_purchase=Decimal(str(data.get("min_purchase", "0"))),
            one_prize_per_member=bool(data.get("one_prize_per_member", True)),
        )
    except (ArithmeticError, TypeError, ValueError, KeyError) as exc:
        raise InvalidRules(f"rules: {exc}") from None
    _check(rules)
    return rules


def _prize(p: Mapping[str, Any]) -> Prize:
    points = p.get("points")
    goods = p.get("goods")
    name = p.get("name") or (goods if goods else f"{points} points")
    return Prize(
        name=str(name),
        count=int(p.get("count", 1)),
        points=None if points is None else Decimal(str(points)),
        goods=None if goods is None else str(goods),
    )


def _check(rules: DrawRules) -> None:
    if not rules.prizes:
        raise InvalidRules("prizes: at least one prize")
    for i, p in enumerate(rules.prizes):
        if p.count < 1:
            raise InvalidRules(f"prizes[{i}].count: must be at least 1")
        if (p.points is None) == (p.goods is None):
            raise InvalidRules(f"prizes[{i}]: either points or goods")
        if p.points is not None and (p.points <= 0 or p.points != p.points.quantize(CENT)):
            raise InvalidRules(f"prizes[{i}].points: positive, at most two decimals")
    if rules.tickets_per_purchase < 0:
        raise InvalidRules("tickets_per_purchase: must not be negative")
    if rules.tickets_per_amount is not None and rules.tickets_per_amount <= 0:
        raise InvalidRules("tickets_per_amount: must be positive")
    if rules.tickets_per_purchase == 0 and rules.tickets_per_amount is None:
        raise InvalidRules("tickets_per_purchase or tickets_per_amount must give tickets")
    if rules.min_purchase < 0:
        raise InvalidRules("min_purchase: must not be negative")


CENT = Decimal("0.01")


def rules_to_dict(rules: DrawRules) -> dict[str, Any]:
    """The JSON form (decimals as strings), the inverse of ``rules_from_dict``."""
    return {
        "tickets_per_purchase": rules.tickets_per_purchase,
        "tickets_per_amount": _s(rules.tickets_per_amount),
        "min_purchase": str(rules.min_purchase),
        "one_prize_per_member": rules.one_prize_per_member,
        "prizes": [
            {"name": p.name, "count": p.count, "points": _s(p.points), "goods": p.goods}
            for p in rules.prizes
        ],
    }


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# --- tickets ------------------------------------------------------------------------------


def tickets_of(receipt: PaidReceipt, rules: DrawRules) -> int:
    """Tickets one receipt gives (see ``DrawRules``), plus the bonus tickets its
    promotions gave (those whatever the amount)."""
    if receipt.to_pay <= 0 or receipt.to_pay < rules.min_purchase:
        return receipt.bonus
    n = rules.tickets_per_purchase + receipt.bonus
    if rules.tickets_per_amount is not None:
        n += int((receipt.to_pay / rules.tickets_per_amount).to_integral_value(ROUND_FLOOR))
    return n


def tickets_for(receipts: Iterable[PaidReceipt], rules: DrawRules) -> list[tuple[int, int]]:
    """The canonical ticket list: ``(account_id, tickets)``, tickets > 0, by account id."""
    totals: dict[int, int] = {}
    for r in receipts:
        n = tickets_of(r, rules)
        if n:
            totals[r.account_id] = totals.get(r.account_id, 0) + n
    return sorted(totals.items())


def tickets_digest(tickets: Sequence[tuple[int, int]]) -> str:
    """SHA-256 hex of ``"{account_id}:{tickets}\\n"`` lines in canonical order."""
    text = "".join(f"{a}:{n}\n" for a, n in canonical(tickets))
    return hashlib.sha256(text.encode()).hexdigest()


def canonical(tickets: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted by account id, without empty entries; an account listed twice is an error."""
    out = sorted((int(a), int(n)) for a, n in tickets if int(n) > 0)
    for (a, _), (b, _) in itertools.pairwise(out):
        if a == b:
            raise ValueError(f"account {a} is listed twice")
    if any(n < 0 for _, n in out):
        raise ValueError("negative tickets")
    return out


# --- commitment and selection --------------------------------------------------------------


def commitment(seed: str) -> str:
    """The seed's hash, published before the period closes: sha256 of its ASCII hex."""
    return hashlib.sha256(seed.encode("ascii")).hexdigest()


def slots_of(rules: DrawRules) -> list[Slot]:
    """Prize slots in drawing order: prizes as listed, each ``count`` times; place from 1."""
    out: list[Slot] = []
    for prize in rules.prizes:
        for _ in range(prize.count):
            out.append(Slot(len(out) + 1, prize))
    return out


class _Stream:
    """Uniform integers from HMAC-SHA256(seed, counter), by rejection sampling."""

    def __init__(self, seed: str) -> None:
        self.key = bytes.fromhex(seed)
        self.counter = 0

    def below(self, n: int) -> int:
        assert n > 0
        limit = _SPACE - (_SPACE % n)
        while True:
            msg = self.counter.to_bytes(8, "big")
            self.counter += 1
            x = int.from_bytes(hmac.new(self.key, msg, hashlib.sha256).digest(), "big")
            if x < limit:
                return x % n


def select_winners(seed: str, tickets: Sequence[tuple[int, int]], rules: DrawRules) -> list[Winner]:
    """The winners, slot by slot, as the module docstring's step 5 says."""
    remaining = [[a, n] for a, n in canonical(tickets)]
    stream = _Stream(seed)
    winners: list[Winner] = []
    for slot in slots_of(rules):
        total = sum(n for _, n in remaining)
        if total == 0:
            break
        r = stream.below(total)
        i = _owner(remaining, r)
        winners.append(Winner(slot.place, remaining[i][0], slot.prize))
        if rules.one_prize_per_member:
            remaining[i][1] = 0
        else:
            remaining[i][1] -= 1
    return winners


def _owner(remaining: Sequence[list[int]], r: int) -> int:
    running = 0
    for i, (_, n) in enumerate(remaining):
        running += n
        if running > r:
            return i
    raise AssertionError("r is below the total")  # pragma: no cover


def verify(
    seed: str,
    seed_hash: str,
    tickets: Sequence[tuple[int, int]],
    winners: Sequence[tuple[int, int]],
    rules: DrawRules,
) -> bool:
    """True when the seed matches its commitment and rerunning the selection gives the
    same ``(place, account_id)`` pairs."""
    if commitment(seed) != seed_hash:
        return False
    try:
        again = select_winners(seed, tickets, rules)
    except ValueError:
        return False
    return [(w.place, w.account_id) for w in again] == [(int(p), int(a)) for p, a in winners]


def verify_record(record: Mapping[str, Any]) -> tuple[bool, str]:
    """Check a published draw record (``services.draws.publish``): algorithm, ticket
    digest, seed commitment and winners.  Returns ``(ok, reason)``."""
    try:
        if record.get("algorithm") != ALGORITHM:
            return False, f"unknown algorithm {record.get('algorithm')!r}"
        seed = record.get("seed")
        if not seed:
            return False, "the seed is not revealed yet"
        rules = rules_from_dict(record["rules"])
        tickets = [(int(e["account_id"]), int(e["tickets"])) for e in record["tickets"]]
        if tickets_digest(tickets) != record["tickets_digest"]:
            return False, "the ticket list does not match its digest"
        winners = [(int(w["place"]), int(w["account_id"])) for w in record["winners"]]
        if commitment(seed) != record["seed_hash"]:
            return False, "the seed does not match the published seed hash"
        if not verify(seed, record["seed_hash"], tickets, winners, rules):
            return False, "rerunning the draw gives other winners"
    except (KeyError, TypeError, ValueError) as exc:
        return False, f"malformed record: {exc}"
    return True, "OK"
