"""Properties of the receipt calculation for random baskets, balances and programs.

Baskets of 1-30 lines with quantities of three decimals and prices of two, a POS discount
on some lines, sometimes two products at the same price, any available balance and any
program settings; points requested: none, ``"max"`` or any allowed amount.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from kopilka.domain.money import HUNDRED, q2, round_points
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
ZERO = Decimal("0")
PROPERTY = settings(max_examples=250, deadline=None)


def hundredths(lo: int, hi: int) -> st.SearchStrategy[Decimal]:
    return st.integers(lo, hi).map(lambda n: Decimal(n) / 100)


@st.composite
def basket_lines(draw: st.DrawFn) -> BasketLine:
    quantity = Decimal(draw(st.integers(1, 100_000))) / 1000  # 0.001 .. 100.000
    unit_price = draw(hundredths(0, 10_000_000))  # 0.00 .. 100000.00
    sku = draw(st.sampled_from(["a", "b", "c", "d", "e", "f", "4601234567890"]))
    amount_kopecks = int(q2(quantity * unit_price) * 100)
    discount = Decimal(draw(st.integers(0, amount_kopecks) | st.just(0))) / 100
    return BasketLine(sku, f"item {sku}", None, quantity, unit_price, discount)


programs = st.builds(
    ProgramSettings,
    earn_percent=hundredths(0, 2_000),
    burn_max_percent=hundredths(0, 10_000),
    point_value=hundredths(1, 500),
    points_step=st.sampled_from([Decimal("1"), Decimal("0.01")]),
    earn_rounding=st.sampled_from(["floor", "half_up"]),
    min_payment=hundredths(0, 50_000),
)


@dataclass(frozen=True)
class Case:
    lines: tuple[BasketLine, ...]
    available: Decimal | None  # None: a non-member
    redeem: Decimal | str | None
    program: ProgramSettings

    @property
    def net_total(self) -> Decimal:
        return sum((x.amount - x.discount for x in self.lines), ZERO)

    def price(self, lines: tuple[BasketLine, ...] | None = None) -> PricedReceipt:
        customer = None if self.available is None else CustomerContext(1, self.available)
        basket = Basket(self.lines if lines is None else lines, redeem_points=self.redeem)
        return price_receipt(basket, customer, self.program, NOW)


@st.composite
def cases(draw: st.DrawFn, *, members_only: bool = False) -> Case:
    lines = tuple(draw(st.lists(basket_lines(), min_size=1, max_size=30)))
    if len(lines) < 30 and draw(st.booleans()):
        # A twin: another product at the same price and quantity (two yogurts at 59.90).
        twin = lines[draw(st.integers(0, len(lines) - 1))]
        lines += (dataclasses.replace(twin, sku=twin.sku + "-twin", name="twin"),)
    program = draw(programs)
    available = draw(hundredths(0, 10_000_000))
    if not members_only and draw(st.booleans()) and draw(st.booleans()):
        return Case(lines, None, None, program)
    net_total = sum((x.amount - x.discount for x in lines), ZERO)
    limit = redeem_limit(net_total, available, program)
    kind = draw(st.sampled_from(["none", "max", "part"]))
    redeem: Decimal | str | None = {"none": None, "max": "max"}.get(kind)
    if kind == "part":
        share = Decimal(draw(st.integers(0, 100))) / 100
        redeem = round_points(limit * share, step=program.points_step, mode="floor")
    return Case(lines, available, redeem, program)


def figures(line: BasketLine, priced: object) -> tuple[object, ...]:
    """A line's input and every figure the calculation gave it."""
    return (
        line.sku,
        line.quantity,
        line.price,
        line.discount,
        *(
            getattr(priced, name)
            for name in (
                "amount",
                "discount",
                "points_redeemed",
                "redeemed_value",
                "to_pay",
                "points_earned",
            )
        ),
    )


@PROPERTY
@given(cases())
def test_line_figures_add_up_exactly_to_the_receipt(case: Case) -> None:
    receipt = case.price()

    for name in ("amount", "discount", "points_redeemed", "redeemed_value", "to_pay"):
        assert sum((getattr(x, name) for x in receipt.lines), ZERO) == getattr(receipt, name), name
    assert sum((x.points_earned for x in receipt.lines), ZERO) == receipt.points_earned
    for given_line, priced in zip(case.lines, receipt.lines, strict=True):
        assert priced.amount == given_line.amount
        assert priced.to_pay == priced.amount - priced.discount - priced.redeemed_value


@PROPERTY
@given(cases())
def test_nothing_is_negative_and_no_line_is_paid_more_than_its_net(case: Case) -> None:
    receipt = case.price()

    for x in receipt.lines:
        assert x.to_pay >= 0
        assert x.points_redeemed >= 0 and x.redeemed_value >= 0 and x.points_earned >= 0
        assert x.redeemed_value <= x.amount - x.discount


@PROPERTY
@given(cases())
def test_burned_points_stay_within_share_min_payment_and_balance(case: Case) -> None:
    receipt = case.price()

    program = case.program
    net = case.net_total
    assert receipt.redeemed_value <= net * program.burn_max_percent / HUNDRED
    assert receipt.redeemed_value == q2(receipt.points_redeemed * program.point_value)
    assert receipt.points_redeemed % program.points_step == 0
    if receipt.points_redeemed > 0:
        assert case.available is not None
        assert receipt.points_redeemed <= case.available
        assert receipt.to_pay >= program.min_payment
    if case.redeem == "max":
        assert receipt.points_redeemed == receipt.redeem_max


@PROPERTY
@given(cases())
def test_earned_points_are_the_percent_of_paid_rounded_once(case: Case) -> None:
    receipt = case.price()

    if case.available is None:
        assert receipt.points_earned == 0
        return
    exact = receipt.to_pay * case.program.earn_percent / HUNDRED
    step = case.program.points_step
    assert receipt.points_earned % step == 0
    assert abs(receipt.points_earned - exact) < step


@PROPERTY
@given(cases(members_only=True), st.data())
def test_a_request_over_the_limit_is_refused_with_the_limit(
    case: Case, data: st.DataObject
) -> None:
    assert case.available is not None
    limit = redeem_limit(case.net_total, case.available, case.program)
    over = limit + case.program.points_step * data.draw(st.integers(1, 1000))
    refused_case = Case(case.lines, case.available, over, case.program)

    try:
        refused_case.price()
    except RedeemRefused as refused:
        expected = "insufficient_points" if over > case.available else "redeem_limit_exceeded"
        assert (refused.code, refused.redeem_max) == (expected, limit)
    else:
        raise AssertionError(f"{over} points over the limit {limit} were accepted")


TIE = Case(
    lines=(
        BasketLine("a", "item a", None, Decimal("1"), Decimal("0.10")),
        BasketLine("b", "item b", None, Decimal("1"), Decimal("0.10")),
    ),
    available=ZERO,
    redeem=None,
    program=ProgramSettings(points_step=Decimal("0.01")),
)


@PROPERTY
@example(case=TIE, order=[1, 0])  # 5% of 0.20 = 0.01 point: which line gets it?
@given(case=cases(), order=st.permutations(range(30)))
def test_the_result_does_not_depend_on_the_order_of_lines(case: Case, order: list[int]) -> None:
    """As a multiset of (line, its figures), keyed by sku: what each line gets does not
    depend on where the cashier scanned it."""
    positions = [i for i in order if i < len(case.lines)]
    shuffled = tuple(case.lines[i] for i in positions)

    receipt = case.price()
    reordered = case.price(shuffled)

    as_given = Counter(figures(x, p) for x, p in zip(case.lines, receipt.lines, strict=True))
    as_shuffled = Counter(figures(x, p) for x, p in zip(shuffled, reordered.lines, strict=True))
    assert as_shuffled == as_given
    assert (reordered.points_redeemed, reordered.to_pay, reordered.points_earned) == (
        receipt.points_redeemed,
        receipt.to_pay,
        receipt.points_earned,
    )
