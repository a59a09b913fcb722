"""The statistics of the promotion-effect report, checked against hand arithmetic and a
t table, and by properties that any difference-of-means interval must have."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.domain.effect import diff_in_diff, roi, welch

D = Decimal


def test_welch_with_equal_spread_and_size_has_2n_minus_2_degrees_of_freedom() -> None:
    # a: mean 2, variance 1; b: mean 5, variance 1; n = 3 each -> df = 4, t(0.975, 4) = 2.776
    # (t table); se = sqrt(1/3 + 1/3) = 0.8165; half width = 2.2669
    e = welch([1, 2, 3], [4, 5, 6])

    assert e is not None
    assert e.estimate == pytest.approx(-3.0)
    assert e.df == pytest.approx(4.0)
    assert e.low == pytest.approx(-5.2669, abs=1e-3)
    assert e.high == pytest.approx(-0.7331, abs=1e-3)


def test_welch_with_unequal_groups_by_hand() -> None:
    # a = 1..5: mean 3, var 2.5; b = 2, 4, 6: mean 4, var 4
    # se^2 = 2.5/5 + 4/3 = 1.8333; df = 1.8333^2 / (0.5^2/4 + 1.3333^2/2) = 3.5328
    e = welch([1, 2, 3, 4, 5], [2, 4, 6])

    assert e is not None
    assert e.estimate == pytest.approx(-1.0)
    assert e.df == pytest.approx(3.5328, abs=1e-3)
    # t(0.975, 3.53) lies between the table's t(0.975, 4) = 2.776 and t(0.975, 3) = 3.182
    half = e.high - e.estimate  # type: ignore[operator]
    assert 2.776 * math.sqrt(1.8333) < half < 3.182 * math.sqrt(1.8333)


def test_large_samples_approach_the_normal_interval() -> None:
    rng = random.Random(7)
    a = [rng.gauss(10, 2) for _ in range(5000)]
    b = [rng.gauss(9, 2) for _ in range(5000)]

    e = welch(a, b)

    assert e is not None
    se = math.sqrt(4 / 5000 + 4 / 5000)
    assert e.high - e.low == pytest.approx(2 * 1.96 * se, rel=0.05)  # type: ignore[operator]
    assert e.contains(1.0)


def test_no_interval_when_a_group_has_one_member_and_nothing_when_one_is_empty() -> None:
    one = welch([5], [1, 2, 3])

    assert one is not None and one.estimate == pytest.approx(3.0)
    assert (one.low, one.high) == (None, None)
    assert welch([], [1, 2]) is None


def test_groups_without_spread_give_a_point_interval() -> None:
    e = welch([3, 3, 3], [1, 1])

    assert e is not None
    assert (e.estimate, e.low, e.high) == (2.0, 2.0, 2.0)


values = st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=2, max_size=40)


@given(a=values, b=values, shift=st.floats(-1e3, 1e3, allow_nan=False))
def test_shifting_one_group_shifts_the_estimate_and_the_interval(
    a: list[float], b: list[float], shift: float
) -> None:
    base = welch(a, b)
    moved = welch([x + shift for x in a], b)

    assert base is not None and moved is not None
    assert moved.estimate == pytest.approx(base.estimate + shift, abs=1e-6)
    assert moved.low == pytest.approx(base.low + shift, abs=1e-6)  # type: ignore[operator]
    assert moved.high == pytest.approx(base.high + shift, abs=1e-6)  # type: ignore[operator]


@given(a=values, b=values)
def test_the_interval_is_symmetric_and_swapping_groups_mirrors_it(
    a: list[float], b: list[float]
) -> None:
    e = welch(a, b)
    r = welch(b, a)

    assert e is not None and r is not None
    assert e.low <= e.estimate <= e.high  # type: ignore[operator]
    assert e.estimate - e.low == pytest.approx(e.high - e.estimate, abs=1e-6)  # type: ignore[operator]
    assert r.low == pytest.approx(-e.high, abs=1e-6)  # type: ignore[operator]


def test_the_interval_covers_the_true_difference_about_95_times_in_100() -> None:
    rng = random.Random(2026)
    covered = 0
    for _ in range(400):
        a = [rng.expovariate(1 / 30) for _ in range(40)]  # mean 30, skewed like sales
        b = [rng.expovariate(1 / 20) for _ in range(60)]  # mean 20
        e = welch(a, b)
        covered += e is not None and e.contains(10.0)

    # 95 % of 400 = 380, binomial sd 4.4; skewed data lose a little coverage
    assert 360 <= covered <= 395


def test_difference_in_differences_subtracts_the_comparables_change() -> None:
    # participants: +30 and +50 (mean +40); comparables: +10, +10, +10, +10 (mean +10)
    participants = [(130.0, 100.0), (250.0, 200.0)]
    comparables = [(60.0, 50.0), (110.0, 100.0), (10.0, 0.0), (20.0, 10.0)]

    e = diff_in_diff(participants, comparables)

    assert e is not None
    assert e.estimate == pytest.approx(30.0)
    assert e.mean_a == pytest.approx(40.0) and e.mean_b == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("incremental", "cost", "margin", "expected"),
    [
        ("10000", "1000", "0.25", 1.5),  # (10000 * 0.25 - 1000) / 1000
        ("2000", "1000", "0.25", -0.5),  # (500 - 1000) / 1000: it lost half its cost
        ("10000", "1000", None, 10.0),  # revenue per rouble spent
        ("-500", "1000", "0.3", -1.15),  # fewer sales than without it
    ],
    ids=["pays", "loses", "no-margin", "negative-effect"],
)
def test_roi(incremental: str, cost: str, margin: str | None, expected: float) -> None:
    got = roi(D(incremental), D(cost), None if margin is None else D(margin))

    assert got == pytest.approx(expected)


def test_roi_of_a_promotion_that_cost_nothing_is_undefined() -> None:
    assert roi(D("100"), D("0"), D("0.25")) is None


def test_tiny_variances_whose_squares_underflow_still_give_an_interval() -> None:
    # hypothesis found it: (1.6e-101)^2 underflows to 0 in the degrees of freedom
    e = welch([0.0, 0.0], [0.0, 1.566877601176105e-101])

    assert e is not None and e.low is not None and e.high is not None
    assert e.low <= e.estimate <= e.high
