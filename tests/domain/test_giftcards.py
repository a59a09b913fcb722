"""Gift cards, pure rules: the state machine, holds and their resolution, refunds within
the nominal, expiry as breakage, numbers with a Luhn digit, PINs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.domain import giftcards as gd
from kopilka.domain.giftcards import Card, CardState, GiftCardRefused, GiftEntry, GiftEntryKind

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=400)
D = Decimal


def card(
    balance: str = "1000.00",
    held: str = "0.00",
    state: CardState = CardState.ACTIVE,
    expires_at: datetime | None = NOW + timedelta(days=365),
) -> Card:
    return Card(D("1000.00"), D(balance), D(held), state, expires_at)


ISSUED = Card(D("1000.00"), D("0"), D("0"), CardState.ISSUED, None)


# --- the state machine --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_card", "amount", "code"),
    [
        pytest.param(card(), "1000.00", None, id="active, the whole balance: held"),
        pytest.param(ISSUED, "1.00", "gift_card_not_active", id="issued: not sold yet"),
        pytest.param(card(state=CardState.BLOCKED), "1.00", "gift_card_blocked", id="blocked"),
        pytest.param(
            card(state=CardState.BLOCKED, expires_at=NOW),
            "1.00",
            "gift_card_blocked",
            id="blocked and expired: blocked first",
        ),
        pytest.param(card(expires_at=NOW), "1.00", "gift_card_expired", id="expiry is exclusive"),
        pytest.param(
            card(balance="0", state=CardState.EXPIRED), "1.00", "gift_card_expired", id="expired"
        ),
        pytest.param(card(held="600.00"), "400.01", "gift_card_insufficient", id="held counts"),
        pytest.param(
            card(balance="0", state=CardState.USED), "0.01", "gift_card_insufficient", id="used"
        ),
    ],
)
def test_hold_refusals_in_order_of_precedence(
    given_card: Card, amount: str, code: str | None
) -> None:
    if code is None:
        after, entry = gd.plan_hold(given_card, D(amount), now=NOW)

        assert (after.balance, after.held, entry) == (
            D("1000.00"),
            D(amount),
            GiftEntry(GiftEntryKind.HOLD, D("0"), D(amount)),
        )
        return
    with pytest.raises(GiftCardRefused) as exc:
        gd.plan_hold(given_card, D(amount), now=NOW)

    assert exc.value.code == code


def test_insufficient_tells_what_is_available() -> None:
    with pytest.raises(GiftCardRefused) as exc:
        gd.plan_hold(card(balance="300.00", held="100.00"), D("250.00"), now=NOW)

    assert (exc.value.code, exc.value.available) == ("gift_card_insufficient", D("200.00"))


def test_activation_gives_the_nominal_and_starts_the_validity() -> None:
    after, entry = gd.activate(ISSUED, now=NOW, valid_days=365)

    assert after == Card(D("1000.00"), D("1000.00"), D("0"), CardState.ACTIVE, NOW + timedelta(365))
    assert entry == GiftEntry(GiftEntryKind.ACTIVATE, D("1000.00"))


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (CardState.ACTIVE, "gift_card_already_active"),
        (CardState.USED, "gift_card_already_active"),
        (CardState.EXPIRED, "gift_card_already_active"),
        (CardState.BLOCKED, "gift_card_blocked"),
    ],
)
def test_a_card_is_activated_once(state: CardState, code: str) -> None:
    with pytest.raises(GiftCardRefused) as exc:
        gd.activate(replace(ISSUED, state=state), now=NOW, valid_days=None)

    assert exc.value.code == code


def test_debit_of_the_whole_balance_makes_the_card_used() -> None:
    held, _ = gd.plan_hold(card(), D("1000.00"), now=NOW)

    after, entry = gd.debit_held(held, D("1000.00"))

    assert (after.state, after.balance, after.held) == (CardState.USED, D("0"), D("0"))
    assert entry == GiftEntry(GiftEntryKind.DEBIT, D("-1000.00"), D("-1000.00"))


def test_partial_use_leaves_the_card_active() -> None:
    held, _ = gd.plan_hold(card(), D("250.00"), now=NOW)

    after, _ = gd.debit_held(held, D("250.00"))

    assert (after.state, after.balance) == (CardState.ACTIVE, D("750.00"))


def test_refund_to_a_used_card_makes_it_active_again() -> None:
    used = card(balance="0", state=CardState.USED)

    planned = gd.refund(used, D("300.00"), now=NOW)

    assert planned is not None
    assert (planned[0].state, planned[0].balance) == (CardState.ACTIVE, D("300.00"))


def test_refund_to_an_expired_card_is_not_taken() -> None:
    assert gd.refund(card(balance="0", expires_at=NOW), D("300.00"), now=NOW) is None


def test_refund_never_raises_the_balance_above_the_nominal() -> None:
    with pytest.raises(AssertionError):
        gd.refund(card(balance="900.00"), D("200.00"), now=NOW)


def test_release_makes_the_held_amount_available_again() -> None:
    held, _ = gd.plan_hold(card(), D("400.00"), now=NOW)

    after, entry = gd.release(held, D("400.00"))

    assert (after.available, entry.held_delta) == (D("1000.00"), D("-400.00"))


def test_expiry_takes_the_remaining_balance_as_breakage() -> None:
    planned = gd.plan_expire(card(balance="420.50"), now=LATER)

    assert planned is not None
    assert (planned[0].state, planned[0].balance) == (CardState.EXPIRED, D("0"))
    assert planned[1] == GiftEntry(GiftEntryKind.EXPIRE, D("-420.50"))


@pytest.mark.parametrize(
    "given_card",
    [
        pytest.param(card(held="10.00"), id="something held: wait for the hold"),
        pytest.param(card(expires_at=None), id="no expiry"),
        pytest.param(card(state=CardState.BLOCKED), id="blocked"),
        pytest.param(ISSUED, id="issued"),
    ],
)
def test_cards_that_do_not_expire_now(given_card: Card) -> None:
    assert gd.plan_expire(given_card, now=LATER) is None


def test_a_card_not_yet_due_does_not_expire() -> None:
    assert gd.plan_expire(card(), now=NOW) is None


# --- numbers and PINs ----------------------------------------------------------------------


def test_luhn_check_digit_of_the_textbook_example() -> None:
    assert gd.luhn_check_digit("7992739871") == "3"


def test_numbers_carry_a_luhn_digit_and_one_typo_is_caught() -> None:
    number = gd.make_gift_card_number("70", 1234567)

    typo = number[:5] + str((int(number[5]) + 1) % 10) + number[6:]

    assert (number, gd.is_valid_gift_card_number(number)) == ("7000012345677", True)
    assert gd.is_valid_gift_card_number(typo) is False


def test_pins_have_four_digits_with_leading_zeros() -> None:
    pins = {gd.new_pin(4) for _ in range(200)}

    assert all(len(p) == 4 and p.isdigit() for p in pins)
    assert len(pins) > 150


# --- properties ------------------------------------------------------------------------------

amounts = st.integers(min_value=1, max_value=120_000).map(lambda c: Decimal(c).scaleb(-2))
ops = st.lists(
    st.tuples(st.sampled_from(["hold", "confirm", "release", "refund", "expire"]), amounts),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_any_sequence_keeps_the_balance_equal_to_the_sum_of_entries(
    sequence: list[tuple[str, Decimal]],
) -> None:
    """Receipts hold, then confirm or release; confirmed receipts are refunded at most
    what they debited; the card expires at some point.  After every step the cached
    totals equal the entries' sums and 0 <= held <= balance <= nominal."""
    c, first = gd.activate(ISSUED, now=NOW, valid_days=30)
    entries = [first]
    open_holds: list[Decimal] = []
    debited: list[Decimal] = []  # per confirmed receipt, what is left to refund
    now = NOW
    for op, amount in sequence:
        step: tuple[Card, GiftEntry] | None = None
        if op == "hold":
            try:
                step = gd.plan_hold(c, amount, now=now)
                open_holds.append(amount)
            except GiftCardRefused as exc:
                assert exc.code in ("gift_card_insufficient", "gift_card_expired")
        elif op in ("confirm", "release") and open_holds:
            held = open_holds.pop(0)
            step = gd.debit_held(c, held) if op == "confirm" else gd.release(c, held)
            if op == "confirm":
                debited.append(held)
        elif op == "refund" and debited:
            back = min(amount, debited[-1])
            step = gd.refund(c, back, now=now)
            if step is not None:
                debited[-1] -= back
                if debited[-1] == 0:
                    debited.pop()
        elif op == "expire":
            now = NOW + timedelta(days=31)
            step = gd.plan_expire(c, now=now)
        if step is not None:
            c, entry = step
            entries.append(entry)
        assert c.balance == sum((e.amount for e in entries), Decimal(0))
        assert c.held == sum((e.held_delta for e in entries), Decimal(0)) == sum(open_holds)
        assert Decimal(0) <= c.held <= c.balance <= c.nominal
        if c.state in (CardState.ACTIVE, CardState.USED):
            assert (c.state is CardState.USED) == (c.balance == 0)
