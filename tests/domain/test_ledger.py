"""The points ledger's plans: which lot gives how much, on burn, take-back and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.domain.ledger import (
    ZERO,
    Balance,
    EarnPlan,
    InsufficientPoints,
    Lot,
    Take,
    TakeBackPlan,
    balance_of,
    plan_burn,
    plan_earn,
    plan_expire,
    plan_offline_burn,
    plan_take_back,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
D = Decimal


def day(n: float) -> datetime:
    return NOW + timedelta(days=n)


def lot(id: int, remaining: str, *, activates: float = -30, expires: float | None = 335) -> Lot:
    """A lot activated ``activates`` days from now, expiring ``expires`` days from now."""
    return Lot(id, D(remaining), day(activates), None if expires is None else day(expires))


def takes(*pairs: tuple[int, str]) -> list[Take]:
    return [Take(i, D(a)) for i, a in pairs]


# --- lots and balance ---------------------------------------------------------------------


def test_a_lot_is_usable_from_activation_until_just_before_expiry() -> None:
    x = lot(1, "10", activates=0, expires=10)

    states = [
        (x.is_pending(t), x.is_active(t), x.is_expired(t))
        for t in (day(-0.0001), day(0), day(10) - timedelta(microseconds=1), day(10))
    ]

    assert states == [
        (True, False, False),
        (False, True, False),
        (False, True, False),
        (False, False, True),
    ]


def test_balance_counts_active_lots_less_held_and_pending_apart() -> None:
    lots = [
        lot(1, "100"),
        lot(2, "40", activates=3),  # pending
        lot(4, "7.50", expires=None),
    ]

    balance = balance_of(lots, held=D("30"), debt=D("5"), now=NOW)

    assert balance == Balance(available=D("77.50"), pending=D("40"), held=D("30"), debt=D("5"))


def test_an_overdue_lot_covers_the_hold_taken_before_its_expiry() -> None:
    lots = [
        lot(1, "100"),
        lot(3, "25", expires=-1),  # expired, not yet swept: the expiry job waits for the hold
        lot(4, "7.50", expires=None),
    ]

    balance = balance_of(lots, held=D("30"), debt=D("0"), now=NOW)

    # 25 of the 30 held are covered by the overdue lot; 5 come off 107.50 active.
    assert balance.available == D("102.50")


def test_an_overdue_lot_alone_never_makes_available_negative() -> None:
    balance = balance_of([lot(3, "60", expires=-1)], held=D("60"), debt=D("0"), now=NOW)

    assert balance.available == D("0")


# --- burn -----------------------------------------------------------------------------------


def test_burn_takes_the_lot_that_expires_first() -> None:
    lots = [lot(1, "100", expires=300), lot(2, "100", expires=100), lot(3, "100", expires=None)]

    plan = plan_burn(lots, D("150"), now=NOW)

    assert plan == takes((2, "100"), (1, "50"))


def test_lots_that_never_expire_burn_last() -> None:
    lots = [lot(1, "100", expires=None), lot(2, "30", expires=900)]

    plan = plan_burn(lots, D("50"), now=NOW)

    assert plan == takes((2, "30"), (1, "20"))


def test_lots_expiring_together_burn_the_older_first() -> None:
    lots = [lot(5, "10", activates=-1), lot(4, "10", activates=-2), lot(3, "10", activates=-1)]

    plan = plan_burn(lots, D("25"), now=NOW)

    assert plan == takes((4, "10"), (3, "10"), (5, "5"))


def test_pending_lots_do_not_burn() -> None:
    lots = [lot(1, "30"), lot(2, "500", activates=1)]

    with pytest.raises(InsufficientPoints) as refused:
        plan_burn(lots, D("31"), now=NOW)

    assert (refused.value.needed, refused.value.available) == (D("31"), D("30"))


def test_expired_lots_do_not_burn() -> None:
    lots = [lot(1, "30", expires=-1), lot(2, "10")]

    with pytest.raises(InsufficientPoints) as refused:
        plan_burn(lots, D("20"), now=NOW)

    assert refused.value.available == D("10")


def test_a_hold_made_before_midnight_burns_a_lot_that_expired_since() -> None:
    lots = [lot(1, "30", expires=-0.01), lot(2, "10")]

    plan = plan_burn(lots, D("35"), now=NOW, held_before=True)

    assert plan == takes((1, "30"), (2, "5"))


def test_empty_lots_give_nothing_and_a_zero_burn_takes_nothing() -> None:
    lots = [lot(1, "0", expires=1), lot(2, "5")]

    plan = plan_burn(lots, D("5"), now=NOW)
    nothing = plan_burn(lots, D("0"), now=NOW)

    assert plan == takes((2, "5"))
    assert nothing == []


# --- earn -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earned", "debt", "plan"),
    [
        pytest.param("50", "0", EarnPlan(D("0"), D("50")), id="no-debt"),
        pytest.param("50", "20", EarnPlan(D("20"), D("30")), id="debt-paid-first"),
        pytest.param("50", "80", EarnPlan(D("50"), D("0")), id="all-to-the-debt"),
    ],
)
def test_earned_points_pay_off_a_debt_first(earned: str, debt: str, plan: EarnPlan) -> None:
    result = plan_earn(D(earned), debt=D(debt))

    assert result == plan


# --- take-back on refunds: a scenario table --------------------------------------------------

OWN = 9  # the refunded receipt's own lot


def scenario(
    lots: list[Lot],
    amount: str,
    expected: TakeBackPlan,
    *,
    id: str,
    held: str = "0",
    debt: str = "0",
    limit: str = "0",
) -> Any:
    return pytest.param(lots, D(amount), D(held), D(debt), D(limit), expected, id=id)


TAKE_BACK = [
    scenario(
        [lot(1, "100", expires=30), lot(OWN, "50")],
        "20",
        TakeBackPlan(takes((OWN, "20"))),
        id="own-lot-first-even-if-others-expire-sooner",
    ),
    scenario(
        [lot(1, "100", expires=200), lot(2, "100", expires=30), lot(OWN, "10")],
        "50",
        TakeBackPlan(takes((OWN, "10"), (2, "40"))),
        id="then-the-lot-that-expires-first",
    ),
    scenario(
        [lot(OWN, "10", activates=5), lot(1, "100")],
        "30",
        TakeBackPlan(takes((OWN, "10"), (1, "20"))),
        id="a-pending-own-lot-gives-too",
    ),
    scenario(
        [lot(OWN, "0"), lot(1, "5")],
        "30",
        TakeBackPlan(takes((1, "5")), debt_added=D("20"), uncollected=D("5")),
        id="spent-then-debt-up-to-the-limit-then-uncollected",
        limit="20",
    ),
    scenario(
        [],
        "30",
        TakeBackPlan(debt_added=D("5"), uncollected=D("25")),
        id="an-existing-debt-counts-against-the-limit",
        debt="15",
        limit="20",
    ),
    scenario(
        [],
        "30",
        TakeBackPlan(uncollected=D("30")),
        id="debt-already-over-the-limit-adds-none",
        debt="25",
        limit="20",
    ),
    scenario(
        [lot(1, "100")],
        "50",
        TakeBackPlan(takes((1, "20")), uncollected=D("30")),
        id="held-points-stay-put",
        held="80",
    ),
    scenario(
        [lot(OWN, "40", activates=5), lot(1, "100")],
        "50",
        TakeBackPlan(takes((OWN, "40")), uncollected=D("10")),
        id="held-active-points-stay-pending-ones-give",
        held="100",
    ),
    scenario(
        [lot(OWN, "100", expires=-1), lot(1, "3")],
        "10",
        TakeBackPlan(takes((1, "3")), uncollected=D("7")),
        id="expired-lots-give-nothing",
    ),
    scenario([lot(OWN, "100")], "0", TakeBackPlan(), id="nothing-to-take"),
]


@pytest.mark.parametrize(("lots", "amount", "held", "debt", "limit", "expected"), TAKE_BACK)
def test_take_back_order_own_lot_then_soonest_expiry_then_debt_then_uncollected(
    lots: list[Lot],
    amount: Decimal,
    held: Decimal,
    debt: Decimal,
    limit: Decimal,
    expected: TakeBackPlan,
) -> None:
    plan = plan_take_back(
        lots, amount, own_lot_id=OWN, held=held, debt=debt, debt_limit=limit, now=NOW
    )

    assert plan == expected
    assert sum((x.amount for x in plan.takes), D(0)) + plan.debt_added + plan.uncollected == amount


def test_take_back_without_an_own_lot_follows_expiry() -> None:
    lots = [lot(1, "10", expires=None), lot(2, "10", expires=10)]

    plan = plan_take_back(
        lots, D("15"), own_lot_id=None, held=D(0), debt=D(0), debt_limit=D(0), now=NOW
    )

    assert plan == TakeBackPlan(takes((2, "10"), (1, "5")))


# --- expiry ---------------------------------------------------------------------------------


def test_expiry_takes_whole_remainders_of_lots_whose_day_has_come() -> None:
    lots = [
        lot(1, "12.34", expires=0),  # expires exactly now
        lot(2, "50", expires=-3),
        lot(3, "0", expires=-3),  # already empty
        lot(4, "70", expires=0.0001),  # a moment left
        lot(5, "8", expires=None),
        lot(6, "9", activates=2, expires=30),  # pending
    ]

    plan = plan_expire(lots, now=NOW)

    assert plan == takes((1, "12.34"), (2, "50"))


def test_expiry_is_exact_to_the_moment_the_day_starts() -> None:
    midnight = datetime(2027, 1, 1, tzinfo=UTC)
    x = Lot(1, D("10"), midnight - timedelta(days=365), midnight)

    before = plan_expire([x], now=midnight - timedelta(microseconds=1))
    at = plan_expire([x], now=midnight)

    assert before == []
    assert at == takes((1, "10"))


# --- offline burn (ADR 0030) ------------------------------------------------------------

_points = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False)


@given(
    points=_points,
    available=st.decimals(min_value=-1000, max_value=100_000, places=2),
    extra=_points,
)
def test_an_offline_burn_takes_what_the_lots_have_and_owes_the_rest_within_the_cap(
    points: Decimal, available: Decimal, extra: Decimal
) -> None:
    cap_left = points + extra

    plan = plan_offline_burn(points, available=available, cap_left=cap_left)

    assert plan.from_lots + plan.debt == points
    assert ZERO <= plan.from_lots <= max(available, ZERO)
    assert ZERO <= plan.debt <= cap_left
    assert (plan.debt == 0) == (points <= max(available, ZERO))


@pytest.mark.parametrize(
    ("points", "available", "from_lots", "debt"),
    [
        ("150", "200", "150", "0"),
        ("150", "20", "20", "130"),
        ("150", "0", "0", "150"),
        ("150", "-5", "0", "150"),  # a negative available (held beyond the lots) gives nothing
    ],
    ids=["covered", "partly", "nothing-left", "negative"],
)
def test_offline_burn_scenarios(points: str, available: str, from_lots: str, debt: str) -> None:
    plan = plan_offline_burn(Decimal(points), available=Decimal(available), cap_left=Decimal("300"))

    assert (plan.from_lots, plan.debt) == (Decimal(from_lots), Decimal(debt))
