"""Exact money: minor units, one rounding per step, allocation by largest remainder."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.domain.money import (
    MILLI,
    allocate,
    fmt2,
    fmt3,
    from_minor,
    prorate,
    q2,
    round_points,
    to_minor,
)

D = Decimal


# --- minor units and rounding -----------------------------------------------------------


def test_to_minor_counts_kopecks_exactly() -> None:
    kopecks = to_minor(D("1500.05"))

    assert kopecks == 150005


def test_to_minor_counts_thousandths_of_a_quantity() -> None:
    grams = to_minor(D("1.5"), unit=MILLI)

    assert grams == 1500


def test_to_minor_refuses_finer_digits_than_the_unit() -> None:
    with pytest.raises(ValueError, match="more decimals"):
        to_minor(D("1.005"))


def test_from_minor_gives_two_decimals() -> None:
    value = from_minor(150005)

    assert str(value) == "1500.05"


def test_q2_rounds_half_up_to_the_kopeck() -> None:
    rounded = [q2(D("149.985")), q2(D("149.984")), q2(D("0.005"))]

    assert rounded == [D("149.99"), D("149.98"), D("0.01")]


def test_api_strings_have_two_and_three_decimals() -> None:
    shown = (fmt2(D("150")), fmt2(D("1.005")), fmt3(D("2")), fmt3(D("0.0005")))

    assert shown == ("150.00", "1.01", "2.000", "0.001")


@pytest.mark.parametrize(
    ("value", "step", "mode", "points"),
    [
        pytest.param("154.495", "1", "floor", "154", id="floor-to-whole"),
        pytest.param("154.495", "0.01", "floor", "154.49", id="floor-to-hundredths"),
        pytest.param("154.495", "0.01", "half_up", "154.50", id="half-up-to-hundredths"),
        pytest.param("4.5", "1", "half_up", "5", id="half-up-to-whole"),
        pytest.param("4.5", "1", "down", "4", id="down"),
        pytest.param("0.999", "1", "floor", "0", id="below-one-step"),
    ],
)
def test_points_round_to_the_programs_step_with_its_mode(
    value: str, step: str, mode: str, points: str
) -> None:
    rounded = round_points(D(value), step=D(step), mode=mode)

    assert rounded == D(points)


# --- allocate -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "parts"),
    [
        pytest.param(10, [1, 2, 3, 4], [1, 2, 3, 4], id="exact-shares"),
        # 100/6 = 16.67, 33.33, 50: floors 16+33+50 = 99, the largest remainder (.67) gets 1
        pytest.param(100, [1, 2, 3], [17, 33, 50], id="largest-remainder-gets-the-unit"),
        # 10/3 each: remainders tie, the earlier index wins
        pytest.param(10, [1, 1, 1], [4, 3, 3], id="ties-go-to-the-earlier-index"),
        pytest.param(1, [5, 5], [1, 0], id="one-unit-two-equal-weights"),
        pytest.param(7, [0, 5, 0], [0, 7, 0], id="zero-weights-get-nothing"),
        pytest.param(-100, [1, 1, 1], [-34, -33, -33], id="negative-total-mirrors"),
        pytest.param(0, [0, 0], [0, 0], id="nothing-over-nothing"),
        pytest.param(0, [3, 4], [0, 0], id="nothing-over-weights"),
    ],
)
def test_allocate_by_largest_remainder(total: int, weights: list[int], parts: list[int]) -> None:
    result = allocate(total, weights)

    assert result == parts


@pytest.mark.parametrize("weights", [[0, 0], []], ids=["zero-weights", "no-parts"])
def test_allocate_refuses_a_total_over_zero_weights(weights: list[int]) -> None:
    with pytest.raises(ValueError, match="zero weights"):
        allocate(5, weights)


weights_st = st.lists(st.integers(min_value=0, max_value=10**8), min_size=1, max_size=40).filter(
    lambda ws: sum(ws) > 0
)


@settings(max_examples=300, deadline=None)
@given(total=st.integers(min_value=-(10**12), max_value=10**12), weights=weights_st)
def test_allocated_parts_sum_exactly_and_stay_within_one_unit_of_the_share(
    total: int, weights: list[int]
) -> None:
    parts = allocate(total, weights)

    assert sum(parts) == total
    assert len(parts) == len(weights)
    for part, weight in zip(parts, weights, strict=True):
        share = Fraction(total * weight, sum(weights))
        assert abs(part - share) < 1
        if weight == 0:
            assert part == 0


@settings(max_examples=300, deadline=None)
@given(total=st.integers(min_value=0, max_value=10**12), weights=weights_st)
def test_a_larger_weight_never_gets_a_smaller_part(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)

    for i in range(len(weights)):
        for j in range(len(weights)):
            if weights[i] > weights[j]:
                assert parts[i] >= parts[j]
            if weights[i] == weights[j]:
                assert abs(parts[i] - parts[j]) <= 1


# --- prorate --------------------------------------------------------------------------------


def test_prorate_rounds_half_up() -> None:
    thirds = [prorate(100, k, 3) for k in range(4)]
    half = prorate(1, 1, 2)

    assert thirds == [0, 33, 67, 100]  # 33.33 -> 33, 66.67 -> 67
    assert half == 1


def test_cumulative_refunds_of_a_line_give_back_exactly_its_total() -> None:
    # 100 kopecks on 3 units returned one by one: 33, 34, 33
    steps = [prorate(100, k + 1, 3) - prorate(100, k, 3) for k in range(3)]

    assert steps == [33, 34, 33]
    assert sum(steps) == 100


def test_prorate_needs_a_positive_whole() -> None:
    with pytest.raises(ValueError, match="positive"):
        prorate(100, 1, 0)


@st.composite
def refunds_of_a_line(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    """A line's total in minor units, its quantity in thousandths, and refunds splitting it."""
    total = draw(st.integers(min_value=0, max_value=10**10))
    whole = draw(st.integers(min_value=1, max_value=10**6))
    cuts = (
        draw(st.lists(st.integers(min_value=1, max_value=whole - 1), max_size=8))
        if whole > 1
        else []
    )
    points = sorted({0, whole, *cuts})
    return total, whole, [b - a for a, b in pairwise(points)]


@settings(max_examples=300, deadline=None)
@given(refunds_of_a_line())
def test_refunds_in_any_pieces_sum_to_the_total_and_none_is_negative(
    case: tuple[int, int, list[int]],
) -> None:
    total, whole, pieces = case

    returned = []
    done = 0
    for piece in pieces:
        returned.append(prorate(total, done + piece, whole) - prorate(total, done, whole))
        done += piece

    assert sum(returned) == total
    for piece, amount in zip(pieces, returned, strict=True):
        assert amount >= 0
        assert abs(amount - Fraction(total * piece, whole)) <= 1


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=10**10),
    whole=st.integers(min_value=1, max_value=10**6),
    data=st.data(),
)
def test_prorate_is_the_share_rounded_half_up(total: int, whole: int, data: st.DataObject) -> None:
    part = data.draw(st.integers(min_value=0, max_value=whole))

    got = prorate(total, part, whole)

    exact = Fraction(total * part, whole)
    assert exact - Fraction(1, 2) < got <= exact + Fraction(1, 2)
