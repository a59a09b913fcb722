"""The summary report's arithmetic, without a database: periods, buckets, KPIs, the
comparison with the previous period and cohort retention (against a brute force)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.domain import summary as dm
from kopilka.domain.summary import Counts, Period, PeriodError, Points, Sums

D = Decimal


def test_previous_period_has_the_same_length_and_ends_the_day_before() -> None:
    march = Period(date(2026, 3, 1), date(2026, 3, 31))

    assert march.previous() == Period(date(2026, 1, 29), date(2026, 2, 28))
    assert Period(date(2026, 3, 5), date(2026, 3, 5)).previous() == Period(
        date(2026, 3, 4), date(2026, 3, 4)
    )


def test_a_period_that_ends_before_it_starts_names_the_end() -> None:
    with pytest.raises(PeriodError) as err:
        Period(date(2026, 3, 2), date(2026, 3, 1))

    assert err.value.field == "to"


@pytest.mark.parametrize(
    ("day", "granularity", "first"),
    [
        (date(2026, 3, 12), "day", date(2026, 3, 12)),
        (date(2026, 3, 12), "week", date(2026, 3, 9)),  # a Thursday; Monday the 9th
        (date(2026, 3, 9), "week", date(2026, 3, 9)),
        (date(2026, 3, 31), "month", date(2026, 3, 1)),
    ],
)
def test_bucket_is_the_first_day_of_the_bar(day: date, granularity: str, first: date) -> None:
    assert dm.bucket(day, granularity) == first


def test_buckets_cover_the_period_including_empty_ones() -> None:
    got = dm.buckets(Period(date(2026, 1, 30), date(2026, 3, 2)), "month")

    assert got == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]


def test_kpis_follow_the_definitions() -> None:
    everyone = Sums(receipts=3, lines=4, quantity=D("5.5"), to_pay=D("1700"),
                    refunds=1, refund_amount=D("1000"))  # fmt: skip
    members = Sums(receipts=2, lines=2, quantity=D("3"), to_pay=D("1250"),
                   refunds=1, refund_amount=D("1000"))  # fmt: skip
    points = Points({"earn": D("62"), "refund_out": D("-50"), "burn": D("-30"),
                     "refund_in": D("10"), "expire": D("-7")})  # fmt: skip

    k = dm.kpis(everyone, members, Counts(members=2), points, D("32.5"), D("0.5"))

    assert k["sales"] == D("700") and k["member_sales"] == D("250")
    assert k["average_receipt"] == D("233.33")
    assert k["members_share"] == D("35.7")
    assert (k["items_per_receipt"], k["units_per_receipt"]) == (D("1.33"), D("1.83"))
    assert (k["points_earned"], k["points_burned"], k["points_expired"]) == (
        D("12"), D("20"), D("7")
    )  # fmt: skip
    assert k["liability"] == D("16.25")  # 32.5 points at 0.50 roubles


def test_nothing_sold_gives_no_ratios_rather_than_zero() -> None:
    k = dm.kpis(Sums(), Sums(), Counts(), Points({}), None, D("1"))

    assert k["average_receipt"] is None and k["members_share"] is None
    assert k["liability"] is None


@pytest.mark.parametrize(
    ("value", "previous", "change", "pct"),
    [
        (D("700.00"), D("400.00"), D("300.00"), D("75.0")),
        (3, 1, 2, D("200.0")),
        (0, 2, -2, D("-100.0")),
        (D("-10"), D("-20"), D("10"), D("50.0")),  # relative to |previous|
        (5, 0, 5, None),
        (None, 3, None, None),
    ],
)
def test_compare_with_the_previous_period(
    value: Decimal | int | None, previous: Decimal | int | None, change: Decimal | int | None,
    pct: Decimal | None,
) -> None:  # fmt: skip
    got = dm.compare(value, previous)

    assert (got.change, got.change_pct) == (change, pct)


MONTHS = [date(2025, 1, 1) + timedelta(days=31 * i) for i in range(20)]
months = st.sampled_from([m.replace(day=1) for m in MONTHS])


@given(visits=st.lists(st.tuples(st.integers(1, 30), months), max_size=80))
def test_cohorts_equal_a_brute_force_count(visits: list[tuple[int, date]]) -> None:
    first: dict[int, date] = {}
    for who, month in visits:
        first[who] = min(first.get(who, month), month)
    # what the SQL hands over: (cohort month, month of activity, distinct customers)
    pairs = {(first[w], m, w) for w, m in visits}
    rows: dict[tuple[date, date], int] = {}
    for c, m, _ in pairs:
        rows[(c, m)] = rows.get((c, m), 0) + 1
    as_of = date(2026, 6, 15)

    got = dm.cohorts(
        [(c, m, n) for (c, m), n in rows.items()],
        first=date(2025, 1, 1), last=date(2026, 6, 1), horizon=12, as_of=as_of,
    )  # fmt: skip

    for cohort in got:
        members = {w for w, c in first.items() if c == cohort.month}
        assert cohort.size == len(members)
        for k, n in enumerate(cohort.active):
            month = dm.add_months(cohort.month, k)
            assert n == len({w for w, m in visits if w in members and m == month})
        begun = dm.months_between(cohort.month, as_of) + 1
        assert len(cohort.active) == min(12, begun)
