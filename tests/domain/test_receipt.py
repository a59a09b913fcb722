"""The calculation of a receipt, by worked examples computed by hand.

Default program unless a test says otherwise: 5% of the paid amount earned, floored to
whole points; at most 30% of the receipt paid with points; a point is worth 1 rouble.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from kopilka.domain.program import ProgramSettings
from kopilka.domain.receipt import (
    Basket,
    BasketLine,
    PricedReceipt,
    RedeemRefused,
    price_receipt,
    redeem_limit,
)
from kopilka.domain.rules.facts import CustomerContext

NOW = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
D = Decimal
BASE = ProgramSettings()


def line(sku: str, quantity: str, price: str, discount: str = "0") -> BasketLine:
    return BasketLine(sku, f"item {sku}", None, D(quantity), D(price), D(discount))


def price(
    *lines: BasketLine,
    available: str | None = "0",
    redeem: str | None = None,
    program: ProgramSettings = BASE,
) -> PricedReceipt:
    """Price for a member with ``available`` points (``None``: a non-member)."""
    customer = None if available is None else CustomerContext(1, D(available))
    return price_receipt(Basket(tuple(lines), redeem_points=redeem), customer, program, NOW)


def column(receipt: PricedReceipt, name: str) -> list[str]:
    return [str(getattr(x, name)) for x in receipt.lines]


COFFEE_AND_MILK = (line("coffee", "2", "1500.00"), line("milk", "1", "89.90"))


# --- amounts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "unit_price", "amount"),
    [
        pytest.param("2", "1500.00", "3000.00", id="whole-units"),
        pytest.param("1.5", "99.99", "149.99", id="149.985-half-up"),
        pytest.param("0.333", "10.00", "3.33", id="weight-goods"),
        pytest.param("0.005", "1.00", "0.01", id="half-a-kopeck-up"),
        pytest.param("0.004", "1.00", "0.00", id="under-half-a-kopeck"),
    ],
)
def test_line_amount_is_quantity_times_price_rounded_half_up(
    quantity: str, unit_price: str, amount: str
) -> None:
    x = line("a", quantity, unit_price)

    assert x.amount == D(amount)


# --- earning --------------------------------------------------------------------------------


def test_earns_five_percent_of_the_paid_amount_floored_to_whole_points() -> None:
    receipt = price(*COFFEE_AND_MILK)

    # 5% of 3089.90 = 154.495 -> 154.  Spread over to_pay 3000.00 : 89.90 in hundredths:
    # 15400 x 300000 / 308990 = 14951.94, 15400 x 8990 / 308990 = 448.06; the larger
    # remainder gets the missing hundredth: 149.52 + 4.48.
    assert (receipt.amount, receipt.to_pay, receipt.points_earned) == (
        D("3089.90"),
        D("3089.90"),
        D("154"),
    )
    assert column(receipt, "points_earned") == ["149.52", "4.48"]
    assert column(receipt, "to_pay") == ["3000.00", "89.90"]


@pytest.mark.parametrize(
    ("step", "rounding", "earned"),
    [
        pytest.param("1", "floor", "4", id="whole-floor"),
        pytest.param("1", "half_up", "5", id="whole-half-up"),
        pytest.param("0.01", "floor", "4.99", id="hundredths-floor"),
        pytest.param("0.01", "half_up", "5.00", id="hundredths-half-up"),
    ],
)
def test_earned_points_round_once_to_the_programs_step(
    step: str, rounding: str, earned: str
) -> None:
    program = ProgramSettings(points_step=D(step), earn_rounding=rounding)

    receipt = price(line("a", "1", "99.99"), program=program)  # 5% = 4.9995

    assert receipt.points_earned == D(earned)
    assert receipt.lines[0].points_earned == D(earned)


def test_a_non_member_earns_nothing() -> None:
    receipt = price(*COFFEE_AND_MILK, available=None)

    assert (receipt.points_earned, receipt.redeem_max) == (D("0"), D("0"))
    assert column(receipt, "points_earned") == ["0.00", "0.00"]


def test_points_are_earned_after_the_pos_discount() -> None:
    receipt = price(line("a", "1", "1000.00", discount="200.00"))

    assert (receipt.amount, receipt.discount, receipt.to_pay) == (
        D("1000.00"),
        D("200.00"),
        D("800.00"),
    )
    assert receipt.points_earned == D("40")


# --- burning --------------------------------------------------------------------------------


def test_burn_max_is_30_percent_of_the_receipt_and_earning_follows_the_rest() -> None:
    receipt = price(*COFFEE_AND_MILK, available="1000", redeem="max")

    # 30% of 3089.90 = 926.97 -> 926 whole points = 926.00 RUB, spread 3000.00 : 89.90:
    # 92600 x 300000 / 308990 = 89905.82, 92600 x 8990 / 308990 = 2694.18 -> 899.06 + 26.94.
    # Paid 2163.90; 5% = 108.195 -> 108, spread 2100.94 : 62.96 -> 104.86 + 3.14.
    assert (receipt.points_redeemed, receipt.redeemed_value, receipt.redeem_max) == (
        D("926"),
        D("926.00"),
        D("926"),
    )
    assert column(receipt, "redeemed_value") == ["899.06", "26.94"]
    assert column(receipt, "points_redeemed") == ["899.06", "26.94"]
    assert column(receipt, "to_pay") == ["2100.94", "62.96"]
    assert receipt.to_pay == D("2163.90")
    assert receipt.points_earned == D("108")
    assert column(receipt, "points_earned") == ["104.86", "3.14"]


def test_burn_is_limited_by_what_the_customer_has() -> None:
    receipt = price(*COFFEE_AND_MILK, available="10.75", redeem="max")

    assert (receipt.points_redeemed, receipt.to_pay) == (D("10"), D("3079.90"))


def test_a_point_worth_fifty_kopecks_pays_half_a_rouble() -> None:
    program = ProgramSettings(point_value=D("0.5"))

    receipt = price(line("a", "1", "1000.00"), available="10000", redeem="max", program=program)

    # 30% of 1000.00 = 300.00 RUB = 600 points
    assert (receipt.points_redeemed, receipt.redeemed_value, receipt.to_pay) == (
        D("600"),
        D("300.00"),
        D("700.00"),
    )
    assert receipt.points_earned == D("35")


def test_min_payment_stays_in_money() -> None:
    program = ProgramSettings(burn_max_percent=D("100"), min_payment=D("100"))

    receipt = price(line("a", "1", "150.00"), available="1000", redeem="max", program=program)

    assert (receipt.points_redeemed, receipt.to_pay) == (D("50"), D("100.00"))


def test_the_burn_share_is_of_the_receipt_after_discounts() -> None:
    receipt = price(line("a", "1", "1000.00", discount="200.00"), available="1000", redeem="max")

    assert (receipt.points_redeemed, receipt.to_pay, receipt.points_earned) == (
        D("240"),
        D("560.00"),
        D("28"),
    )


def test_redeem_limit_by_share_min_payment_and_balance() -> None:
    program = ProgramSettings(burn_max_percent=D("50"), min_payment=D("30"), points_step=D("0.01"))

    limits = [
        redeem_limit(D("100.00"), D("1000"), program),  # 50% of 100 = 50
        redeem_limit(D("50.00"), D("1000"), program),  # 50 - 30 = 20 < 25
        redeem_limit(D("100.00"), D("12.345"), program),  # balance, floored to 0.01
        redeem_limit(D("20.00"), D("1000"), program),  # below min payment
        redeem_limit(D("100.00"), D("-5"), program),  # in debt
    ]

    assert limits == [D("50.00"), D("20.00"), D("12.34"), D("0"), D("0")]


def test_zero_points_requested_burns_nothing_even_for_a_non_member() -> None:
    receipt = price(*COFFEE_AND_MILK, available=None, redeem="0")

    assert (receipt.points_redeemed, receipt.to_pay) == (D("0"), D("3089.90"))


def test_a_free_receipt_burns_and_earns_nothing() -> None:
    receipt = price(line("gift", "1", "0.00"), available="100", redeem="max")

    assert (receipt.points_redeemed, receipt.points_earned, receipt.to_pay) == (
        D("0"),
        D("0"),
        D("0.00"),
    )


@pytest.mark.parametrize(
    ("kwargs", "code", "redeem_max"),
    [
        pytest.param(
            {"available": "1000", "redeem": "1.5"}, "invalid_points_step", "926", id="not-a-step"
        ),
        pytest.param(
            {"available": "100", "redeem": "101"}, "insufficient_points", "100", id="more-than-has"
        ),
        pytest.param(
            {"available": "1000", "redeem": "927"},
            "redeem_limit_exceeded",
            "926",
            id="over-the-share",
        ),
        pytest.param({"available": None, "redeem": "5"}, "not_a_member", "0", id="non-member"),
        pytest.param(
            {"available": None, "redeem": "max"}, "not_a_member", "0", id="non-member-max"
        ),
    ],
)
def test_a_redeem_the_program_does_not_allow_is_refused_with_its_code(
    kwargs: dict[str, Any], code: str, redeem_max: str
) -> None:
    with pytest.raises(RedeemRefused) as refused:
        price(*COFFEE_AND_MILK, **kwargs)

    assert (refused.value.code, refused.value.redeem_max) == (code, D(redeem_max))


def test_reasons_name_the_rule_the_points_and_the_roubles() -> None:
    receipt = price(*COFFEE_AND_MILK, available="1000", redeem="max")

    assert [(a.rule, a.discount, a.points) for a in receipt.applied] == [
        ("redeem", D("926.00"), D("-926")),
        ("base_earn", D("0"), D("108")),
    ]
    assert [a.rule for a in receipt.lines[1].applied] == ["redeem", "base_earn"]
