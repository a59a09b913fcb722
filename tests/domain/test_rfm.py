"""RFM scores (the tie rule), the default segment map and segment files: no database."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.domain import rfm
from kopilka.domain.rfm import DEFAULT_MAP, Purchases, SegmentConfigError, scores

# --- scores: a table of worked examples -------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(
            [10, 20, 30, 40, 50, 60, 70, 80, 90, 100], [1, 1, 2, 2, 3, 3, 4, 4, 5, 5], id="ten"
        ),
        pytest.param(
            [1, 1, 1, 1, 1, 1, 2, 2, 3, 4], [1, 1, 1, 1, 1, 1, 4, 4, 5, 5], id="60pct-once"
        ),
        pytest.param([7, 7, 7], [1, 1, 1], id="all-equal"),
        pytest.param([5], [1], id="one-customer"),
        pytest.param([1, 2], [1, 3], id="two"),
        pytest.param([3, 1, 2], [4, 1, 2], id="three-unsorted"),
        pytest.param([Decimal("0.10"), Decimal("0.1"), Decimal("5")], [1, 1, 4], id="decimals"),
    ],
)
def test_scores_follow_one_plus_floor_five_w_over_n(values: list[int], expected: list[int]) -> None:
    assert scores(values) == expected


def test_recency_counts_more_days_as_worse() -> None:
    # 0 days (bought on the as-of day) is best: w = 4 customers have more days.
    assert scores([0, 10, 10, 40, 365], higher_is_better=False) == [5, 3, 3, 2, 1]


values_st = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=60)


@given(values_st, st.booleans())
def test_scores_are_between_one_and_five(values: list[int], higher: bool) -> None:
    assert all(1 <= s <= 5 for s in scores(values, higher_is_better=higher))


@given(values_st, st.booleans())
def test_a_better_value_never_gets_a_lower_score_and_equal_values_equal_scores(
    values: list[int], higher: bool
) -> None:
    got = scores(values, higher_is_better=higher)
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            better_or_equal = a >= b if higher else a <= b
            if a == b:
                assert got[i] == got[j]
            elif better_or_equal:
                assert got[i] >= got[j]


@given(values_st, st.randoms())
def test_permuting_the_customers_changes_no_ones_score(
    values: list[int], rnd: random.Random
) -> None:
    got = dict(zip(range(len(values)), scores(values), strict=True))
    order = list(range(len(values)))
    rnd.shuffle(order)
    shuffled = scores([values[i] for i in order])
    assert {order[k]: s for k, s in enumerate(shuffled)} == got


@given(values_st)
def test_the_score_is_the_count_of_strictly_worse_customers_scaled(values: list[int]) -> None:
    # An independent, quadratic reading of the rule.
    n = len(values)
    expected = [1 + (5 * sum(1 for w in values if w < v)) // n for v in values]
    assert scores(values) == expected


# --- the default map --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("r", "f", "code"),
    [
        (5, 5, "champions"),
        (5, 4, "champions"),
        (4, 5, "loyal"),
        (3, 4, "loyal"),
        (5, 3, "potential_loyalist"),
        (4, 2, "potential_loyalist"),
        (5, 1, "new_customers"),
        (4, 1, "promising"),
        (3, 3, "need_attention"),
        (3, 2, "about_to_sleep"),
        (3, 1, "about_to_sleep"),
        (2, 4, "at_risk"),
        (1, 3, "at_risk"),
        (2, 5, "cant_lose"),
        (1, 5, "cant_lose"),
        (2, 2, "hibernating"),
        (2, 1, "hibernating"),
        (1, 2, "lost"),
        (1, 1, "lost"),
    ],
)
def test_the_default_map_puts_each_r_f_cell_in_its_segment(r: int, f: int, code: str) -> None:
    for m in rfm.SCORES:  # m never moves a customer in the default map
        assert DEFAULT_MAP.segment_of(r, f, m).code == code


def test_the_default_map_is_a_partition_of_the_25_cells() -> None:
    for r in rfm.SCORES:
        for f in rfm.SCORES:
            assert sum(s.matches(r, f, 3) for s in DEFAULT_MAP.segments) == 1
    assert len(DEFAULT_MAP.segments) == 11
    assert DEFAULT_MAP.by_code("cant_lose") is not None
    assert DEFAULT_MAP.by_code("cant_lose").label("ru") == "Нельзя потерять"  # type: ignore[union-attr]


# --- segment files ----------------------------------------------------------------------------


def test_a_segment_file_is_ordered_rules_first_match_wins() -> None:
    segments = rfm.parse_segment_map(
        {
            "segments": [
                {"code": "vip", "name": "VIP", "name_ru": "ВИП", "m": "5"},
                {"code": "active", "name": "Active", "r": "3-5", "f": [2, 5]},
                {"code": "rest", "name": "Everyone else"},
            ]
        }
    )

    assert segments.segment_of(1, 1, 5).code == "vip"  # m = 5 wins before anything
    assert segments.segment_of(4, 2, 4).code == "active"
    assert segments.segment_of(4, 1, 4).code == "rest"
    assert segments.segment_of(2, 5, 1).code == "rest"


@pytest.mark.parametrize(
    ("data", "problems"),
    [
        pytest.param([], [("segments", "give a non-empty list of segments")], id="empty"),
        pytest.param(
            [{"code": "a", "name": "A", "r": "6"}],
            [("segments[0].r", "give a score 1-5 or a range such as 4-5")],
            id="score-6",
        ),
        pytest.param(
            [{"code": "a", "name": "A", "f": "4-2"}],
            [("segments[0].f", "the range 4-2 is empty: write the smaller score first")],
            id="reversed-range",
        ),
        pytest.param(
            [{"code": "Big Spenders", "name": "A"}],
            [("segments[0].code", "give a code of 1-32 lower-case letters, digits, _ or -")],
            id="bad-code",
        ),
        pytest.param(
            [{"code": "a"}],
            [("segments[0].name", "give a non-empty text")],
            id="no-name",
        ),
        pytest.param(
            [{"code": "a", "name": "A", "rr": 1}],
            [("segments[0].rr", "unknown key (use code, name, name_ru, r, f, m)")],
            id="unknown-key",
        ),
        pytest.param(
            [{"code": "a", "name": "A"}, {"code": "a", "name": "B"}],
            [("segments", "the code 'a' is used 2 times")],
            id="duplicate",
        ),
        pytest.param(
            [{"code": "top", "name": "Top", "r": "4-5"}],
            [
                (
                    "segments",
                    "no segment matches r=1, f=1, m=1: add a last segment without r, f and m "
                    "to catch the rest",
                )
            ],
            id="gap",
        ),
        pytest.param(
            ["champions"],
            [("segments[0]", "each segment is a mapping: code, name, name_ru, r, f, m")],
            id="not-a-mapping",
        ),
    ],
)
def test_a_bad_segment_file_names_the_path_of_each_problem(
    data: object, problems: list[tuple[str, str]]
) -> None:
    with pytest.raises(SegmentConfigError) as err:
        rfm.parse_segment_map(data)

    assert err.value.problems == problems


# --- rows, totals, migration ------------------------------------------------------------------


def test_rows_are_scored_segmented_and_ordered_by_customer_text() -> None:
    as_of = date(2026, 6, 30)
    purchases = [
        Purchases(1, "b-card", date(2026, 6, 30), 3, Decimal("300.00")),
        Purchases(2, "#2", date(2026, 1, 1), 1, Decimal("50.00")),
        Purchases(3, "A-ext", date(2026, 6, 1), 1, Decimal("100.00")),
    ]

    rows = rfm.rfm_rows(purchases, as_of=as_of)

    assert [(r.customer, r.recency_days, r.r, r.f, r.m, r.segment.code) for r in rows] == [
        ("#2", 180, 1, 1, 1, "lost"),
        ("A-ext", 29, 2, 1, 2, "hibernating"),
        ("b-card", 0, 4, 4, 4, "loyal"),
    ]
    totals = {
        t.segment.code: (t.customers, t.revenue) for t in rfm.segment_totals(rows, DEFAULT_MAP)
    }
    assert totals["lost"] == (1, Decimal("50.00"))
    assert totals["champions"] == (0, Decimal("0.00"))
    assert sum(rfm.grid(rows).values()) == 3


def test_the_migration_matrix_counts_pairs_and_customers_without_purchases() -> None:
    before = {1: "lost", 2: "loyal", 3: "loyal"}
    after = {2: "champions", 3: "loyal", 4: "new_customers"}

    assert rfm.migration_matrix(before, after) == {
        ("lost", rfm.NONE): 1,
        ("loyal", "champions"): 1,
        ("loyal", "loyal"): 1,
        (rfm.NONE, "new_customers"): 1,
    }
