"""Gift cards: numbers, PINs, the card's state machine and its balance rules.

Guarantees (asserted where state changes, proven by ``kopilka giftcard verify`` and the
property tests):

1. Entries are never updated or deleted; a card's ``balance`` is the sum of its entries'
   ``amount`` and its ``held`` the sum of their ``held_delta``.
2. ``0 <= held <= balance <= nominal`` after every change: a hold never takes more than
   is available (``balance - held``), a debit only takes what its hold reserved, and a
   refund returns at most what that receipt debited, so the balance can never climb
   above the nominal value.
3. A receipt's hold on a card resolves once: debited (confirm) or released (cancel,
   expiry of the hold).
4. States: ``issued`` (printed, not sold: unusable) -> ``active`` (sold; balance =
   nominal) -> ``used`` (balance 0; a refund makes it ``active`` again) -> ``expired``
   (the day came: the remaining balance leaves by an ``expire`` entry, the *breakage*).
   ``blocked`` is reachable from issued, active and used and refuses every hold.
5. A card expires only with nothing held: a receipt being paid keeps its money usable
   until the hold resolves (then the next expiry run takes the rest).

Everything here is pure: the service loads a snapshot (``Card``), the functions return
the card after the change and the entry to write.  ``now`` is passed in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal("0")


class CardState(StrEnum):
    ISSUED = "issued"
    ACTIVE = "active"
    USED = "used"
    EXPIRED = "expired"
    BLOCKED = "blocked"


class GiftEntryKind(StrEnum):
    ACTIVATE = "activate"
    HOLD = "hold"
    RELEASE = "release"
    DEBIT = "debit"
    REFUND = "refund"
    EXPIRE = "expire"
    BLOCK = "block"


class GiftCardRefused(Exception):
    """A refusal with a stable code; the service maps it to a ServiceError."""

    def __init__(self, code: str, detail: str, *, available: Decimal | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.available = available


# Result codes, in their order of precedence (the first that applies is given).
BLOCKED = "gift_card_blocked"
NOT_ACTIVE = "gift_card_not_active"
EXPIRED = "gift_card_expired"
INSUFFICIENT = "gift_card_insufficient"
ALREADY_ACTIVE = "gift_card_already_active"


@dataclass(frozen=True, slots=True)
class Card:
    """A card's snapshot.  ``expires_at`` is exclusive: usable while ``now < expires_at``."""

    nominal: Decimal
    balance: Decimal
    held: Decimal
    state: CardState
    expires_at: datetime | None = None

    @property
    def available(self) -> Decimal:
        return self.balance - self.held

    def is_expired(self, now: datetime) -> bool:
        return self.state is CardState.EXPIRED or (
            self.expires_at is not None and now >= self.expires_at
        )


@dataclass(frozen=True, slots=True)
class GiftEntry:
    kind: GiftEntryKind
    amount: Decimal  # change of the balance
    held_delta: Decimal = ZERO


def _checked(card: Card) -> Card:
    assert ZERO <= card.held <= card.balance <= card.nominal, card
    if card.state in (CardState.ACTIVE, CardState.USED):
        want = CardState.USED if card.balance == 0 else CardState.ACTIVE
        card = replace(card, state=want)
    return card


def _positive(amount: Decimal) -> None:
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"amount must be positive with at most two decimals: {amount}")


def check_usable(card: Card, now: datetime) -> None:
    """Raise the refusal for spending from this card (precedence: blocked, not active,
    expired); a card with any balance left passes."""
    if card.state is CardState.BLOCKED:
        raise GiftCardRefused(BLOCKED, "the gift card is blocked")
    if card.state is CardState.ISSUED:
        raise GiftCardRefused(NOT_ACTIVE, "the gift card was not sold (activated)")
    if card.is_expired(now):
        raise GiftCardRefused(EXPIRED, "the gift card has expired")


def activate(card: Card, *, now: datetime, valid_days: int | None) -> tuple[Card, GiftEntry]:
    """The card was sold: issued -> active with the nominal value; expiry from today."""
    if card.state is CardState.BLOCKED:
        raise GiftCardRefused(BLOCKED, "the gift card is blocked")
    if card.state is not CardState.ISSUED:
        raise GiftCardRefused(ALREADY_ACTIVE, f"the gift card is already {card.state}")
    assert card.balance == 0 and card.held == 0, card
    expires = now + timedelta(days=valid_days) if valid_days is not None else None
    after = Card(card.nominal, card.nominal, ZERO, CardState.ACTIVE, expires)
    return _checked(after), GiftEntry(GiftEntryKind.ACTIVATE, card.nominal)


def plan_hold(card: Card, amount: Decimal, *, now: datetime) -> tuple[Card, GiftEntry]:
    """Reserve ``amount`` for a receipt.  Precedence: blocked > not active > expired >
    insufficient (``available`` is given with the last)."""
    _positive(amount)
    check_usable(card, now)
    if card.available < amount:
        raise GiftCardRefused(
            INSUFFICIENT,
            f"the gift card has {card.available} available, {amount} asked",
            available=card.available,
        )
    after = replace(card, held=card.held + amount)
    return _checked(after), GiftEntry(GiftEntryKind.HOLD, ZERO, amount)


def debit_held(card: Card, amount: Decimal) -> tuple[Card, GiftEntry]:
    """Confirm: the held amount leaves the card.  Never refused: the hold reserved it
    (the card may have expired or been blocked since; a hold made is a sale made)."""
    _positive(amount)
    assert amount <= card.held, (card, amount)
    after = replace(card, balance=card.balance - amount, held=card.held - amount)
    return _checked(after), GiftEntry(GiftEntryKind.DEBIT, -amount, -amount)


def release(card: Card, amount: Decimal) -> tuple[Card, GiftEntry]:
    """Cancel or hold expiry: the held amount is available again."""
    _positive(amount)
    assert amount <= card.held, (card, amount)
    after = replace(card, held=card.held - amount)
    return _checked(after), GiftEntry(GiftEntryKind.RELEASE, ZERO, -amount)


def refund(card: Card, amount: Decimal, *, now: datetime) -> tuple[Card, GiftEntry] | None:
    """Money of a refunded purchase back to the card; None when the card cannot take it.

    The caller passes at most what the receipt debited from this card (so the balance
    stays within the nominal).  An expired card takes nothing back (its value was
    already counted as breakage; the till pays that part another way).  A blocked card
    takes it back and stays blocked.  A used card becomes active again.
    """
    _positive(amount)
    if card.is_expired(now) or card.state is CardState.ISSUED:
        return None
    after = replace(card, balance=card.balance + amount)
    return _checked(after), GiftEntry(GiftEntryKind.REFUND, amount)


def plan_expire(card: Card, *, now: datetime) -> tuple[Card, GiftEntry] | None:
    """The expiry time came: the remaining balance is breakage; None if not due yet, or
    something is held (guarantee 5), or the card is blocked, issued or already expired."""
    if card.state not in (CardState.ACTIVE, CardState.USED):
        return None
    if card.expires_at is None or now < card.expires_at or card.held > 0:
        return None
    after = Card(card.nominal, ZERO, ZERO, CardState.EXPIRED, card.expires_at)
    return after, GiftEntry(GiftEntryKind.EXPIRE, -card.balance)


def block(card: Card) -> tuple[Card, GiftEntry]:
    """Block a lost or stolen card: its balance stays, frozen; holds still resolve."""
    after = replace(card, state=CardState.BLOCKED)
    return after, GiftEntry(GiftEntryKind.BLOCK, ZERO)


def apply(card: Card, entry: GiftEntry) -> Card:
    """The cached totals after an entry (used to recompute a card from its entries)."""
    return replace(card, balance=card.balance + entry.amount, held=card.held + entry.held_delta)


# --- numbers and PINs ----------------------------------------------------------------


def luhn_check_digit(payload: str) -> str:
    """The Luhn (mod 10) check digit of a digit string, as on payment cards."""
    if not (payload.isascii() and payload.isdigit()):  # "²".isdigit(), int("²") fails
        raise ValueError("payload must be digits")
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:  # the rightmost payload digit is doubled (the check digit follows)
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def make_gift_card_number(prefix: str, serial: int, *, length: int = 13) -> str:
    """``prefix`` + zero-padded serial + Luhn check digit, ``length`` digits in all."""
    width = length - 1 - len(prefix)
    if serial < 0 or len(str(serial)) > width:
        raise ValueError(f"serial {serial} does not fit in {width} digits")
    payload = f"{prefix}{serial:0{width}d}"
    return payload + luhn_check_digit(payload)


def is_valid_gift_card_number(number: str) -> bool:
    return (
        8 <= len(number) <= 19
        and number.isascii()
        and number.isdigit()
        and luhn_check_digit(number[:-1]) == number[-1]
    )


def new_pin(digits: int = 4) -> str:
    """A PIN from the system's CSPRNG (``secrets``), leading zeros kept."""
    return f"{secrets.randbelow(10**digits):0{digits}d}"
