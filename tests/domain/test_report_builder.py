"""The report builder's pure parts: relative periods, a zone's offsets over a range (what
SQLite's local days are computed from) and the next run of a schedule."""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.domain import report_builder as rb

MONDAY = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("today", MONDAY, MONDAY),
        ("yesterday", date(2026, 12, 6), date(2026, 12, 6)),
        ("last_7_days", date(2026, 11, 30), date(2026, 12, 6)),  # today is not over yet
        ("last_1_days", date(2026, 12, 6), date(2026, 12, 6)),
        ("this_week", MONDAY, MONDAY),
        ("previous_week", date(2026, 11, 30), date(2026, 12, 6)),
        ("this_month", date(2026, 12, 1), MONDAY),
        ("previous_month", date(2026, 11, 1), date(2026, 11, 30)),
        ("this_year", date(2026, 1, 1), MONDAY),
        ("previous_year", date(2025, 1, 1), date(2025, 12, 31)),
    ],
)
def test_relative_periods(name: str, first: date, last: date) -> None:
    assert rb.relative_dates(name, MONDAY) == (first, last)


def test_previous_month_in_march_of_a_leap_year() -> None:
    assert rb.relative_dates("previous_month", date(2028, 3, 31)) == (
        date(2028, 2, 1),
        date(2028, 2, 29),
    )


def test_periods_as_people_type_them() -> None:
    assert rb.Period(relative="Last 14 days").relative == "last_14_days"
    assert rb.Period(relative="previous-month").relative == "previous_month"


def test_local_bounds_of_moscow_days() -> None:
    start, end = rb.local_bounds(date(2026, 11, 1), date(2026, 11, 30), ZoneInfo("Europe/Moscow"))

    assert (start, end) == (
        datetime(2026, 10, 31, 21, tzinfo=UTC),
        datetime(2026, 11, 30, 21, tzinfo=UTC),
    )


ZONES = [
    "Europe/Moscow",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
]


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 1, 1)),
    span_h=st.integers(min_value=1, max_value=24 * 400),
    probe=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_offsets_agree_with_the_zone_database_at_every_instant(
    zone: str, start: datetime, span_h: int, probe: float
) -> None:
    tz = ZoneInfo(zone)
    begin = start.replace(tzinfo=UTC)
    end = begin + timedelta(hours=span_h)
    spans = rb.offsets(begin, end, tz)
    at = begin + (end - begin) * probe

    i = bisect.bisect_right([s for s, _ in spans], at) - 1
    expected = at.astimezone(tz).utcoffset()

    assert expected is not None
    assert spans[i][1] == int(expected.total_seconds())


@settings(max_examples=80, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    after=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    frequency=st.sampled_from(rb.FREQUENCIES),
    hour=st.integers(min_value=6, max_value=22),  # no zone here changes its clocks then
    minute=st.integers(min_value=0, max_value=59),
    weekday=st.integers(min_value=1, max_value=7),
    day=st.integers(min_value=1, max_value=28),
)
def test_the_next_run_is_the_first_matching_local_time_after(
    zone: str, after: datetime, frequency: str, hour: int, minute: int, weekday: int, day: int
) -> None:
    c = rb.Cadence(frequency, time(hour, minute), zone, weekday, day)
    now = after.replace(tzinfo=UTC)

    nxt = rb.next_run(c, now)

    local = nxt.astimezone(ZoneInfo(zone))
    assert nxt > now
    assert (local.hour, local.minute) == (hour, minute)
    if frequency == "weekly":
        assert local.isoweekday() == weekday
    if frequency == "monthly":
        assert local.day == day
    # nothing earlier qualifies: asking just before it answers it again
    assert rb.next_run(c, nxt - timedelta(seconds=1)) == nxt
    gap = {"daily": 1, "weekly": 7, "monthly": 31}[frequency]
    assert nxt - now <= timedelta(days=gap, hours=2)


@pytest.mark.parametrize(
    ("cadence", "field"),
    [
        (rb.Cadence("hourly", time(8), "Europe/Moscow"), "frequency"),
        (rb.Cadence("weekly", time(8), "Europe/Moscow"), "weekday"),
        (rb.Cadence("monthly", time(8), "Europe/Moscow", day=31), "day"),
    ],
)
def test_a_cadence_that_cannot_run_names_its_field(cadence: rb.Cadence, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        rb.check_cadence(cadence)


def test_addresses() -> None:
    assert rb.parse_addresses("a@x.ru, b@y.com;c@z.org") == ["a@x.ru", "b@y.com", "c@z.org"]
    with pytest.raises(ValueError, match="not an e-mail address: nobody"):
        rb.parse_addresses("a@x.ru nobody")
