"""Tiers and cumulative levels: qualification, upgrade at once, downgrade at period end,
the decay and how it composes with the level (domain/levels.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from kopilka.domain.levels import (
    DiscountLevel,
    Levels,
    Measures,
    cumulative_percent,
    decide_levels,
    last_month,
    next_tier,
    tier_for,
    windows,
)
from kopilka.domain.rules.model import CumulativeRules, TierRules

D = Decimal
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 23)
MSK = ZoneInfo("Europe/Moscow")


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


SPEND = TierRules.model_validate(
    {
        "qualify_by": "spend",
        "period_days": 90,
        "levels": [
            {"code": "base", "name": "Base", "threshold": 0},
            {"code": "silver", "name": "Silver", "threshold": 10000},
            {"code": "gold", "name": "Gold", "threshold": 50000},
        ],
    }
)
VISITS = TierRules.model_validate(
    {
        "qualify_by": "visits",
        "period_days": 30,
        "levels": [
            {"code": "guest", "name": "Guest", "threshold": 0},
            {"code": "regular", "name": "Regular", "threshold": 4},
            {"code": "friend", "name": "Friend", "threshold": 10},
        ],
    }
)
WHOLESALE = CumulativeRules.model_validate(
    {
        "basis": "all_time",
        "levels": [
            {"from": 0, "percent": 1},
            {"from": 100000, "percent": 3},
            {"from": 500000, "percent": 5},
        ],
        "decay": {"drop": 2, "inactive_days": 30, "min_month_amount": 20000},
    }
)
ROLLING = CumulativeRules.model_validate(
    {
        "basis": "rolling",
        "window_days": 180,
        "levels": [{"from": 0, "percent": 0}, {"from": 30000, "percent": "7.125"}],
        "decay": {"drop": 3, "inactive_days": 60},
    }
)


# --- tier qualification --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "spend", "visits", "expected"),
    [
        pytest.param(SPEND, "0", 0, "base", id="spend: nothing -> lowest"),
        pytest.param(SPEND, "9999.99", 40, "base", id="spend: a kopeck short; visits ignored"),
        pytest.param(SPEND, "10000", 0, "silver", id="spend: threshold reached exactly"),
        pytest.param(SPEND, "75000", 0, "gold", id="spend: above the top threshold"),
        pytest.param(VISITS, "99999", 3, "guest", id="visits: 3 visits; spend ignored"),
        pytest.param(VISITS, "0", 4, "regular", id="visits: threshold reached"),
        pytest.param(VISITS, "0", 12, "friend", id="visits: top tier"),
    ],
)
def test_the_qualified_tier_is_the_highest_threshold_reached(
    rules: TierRules, spend: str, visits: int, expected: str
) -> None:
    assert tier_for(rules, D(spend), visits) == expected


# --- tier review: (current, since) + qualified -> (tier, since) ---------------------------


@pytest.mark.parametrize(
    ("current", "since_days_ago", "qualified", "expected", "expected_since"),
    [
        pytest.param(None, None, "silver", "silver", "now", id="upgrade at once from none"),
        pytest.param("silver", 10, "gold", "gold", "now", id="upgrade at once mid-period"),
        pytest.param("base", 400, "gold", "gold", "now", id="skip a level on the way up"),
        pytest.param("gold", 89, "base", "gold", "kept", id="no downgrade mid-period"),
        pytest.param("gold", 89.99, "silver", "gold", "kept", id="a minute before period end"),
        pytest.param("gold", 90, "silver", "silver", "now", id="downgrade at period end"),
        pytest.param("gold", 200, "base", "base", "now", id="downgrade to the qualified tier"),
        pytest.param("gold", 90, "gold", "gold", "now", id="requalifying renews since"),
        pytest.param("silver", 30, "silver", "silver", "kept", id="same tier mid-period"),
        pytest.param(None, None, "base", None, "kept", id="lowest stays lowest, untouched"),
        pytest.param("base", 500, "base", "base", "kept", id="lowest tier never renews"),
        pytest.param("gold", None, "silver", "silver", "now", id="no since: period over"),
        pytest.param("vip", 1, "base", "base", "now", id="an unknown code is replaced"),
    ],
)
def test_tier_review(
    current: str | None,
    since_days_ago: float | None,
    qualified: str,
    expected: str | None,
    expected_since: str,
) -> None:
    since = None if since_days_ago is None else days_ago(since_days_ago)

    tier, new_since = next_tier(SPEND, current, qualified, since, NOW)

    assert tier == expected
    assert new_since == (NOW if expected_since == "now" else since)


# --- cumulative percent --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "last_on", "first_on", "month", "expected"),
    [
        pytest.param("0", None, None, "0", ("1.00", "1", None), id="no purchases: first level"),
        pytest.param(
            "99999.99", TODAY, date(2020, 1, 1), "50000", ("1.00", "1", None), id="just below"
        ),
        pytest.param(
            "100000", TODAY, date(2020, 1, 1), "50000", ("3.00", "3", None), id="level reached"
        ),
        pytest.param(
            "600000",
            TODAY - timedelta(days=29),
            date(2020, 1, 1),
            "50000",
            ("5.00", "5", None),
            id="29 days inactive: no decay yet",
        ),
        pytest.param(
            "600000",
            TODAY - timedelta(days=30),
            date(2020, 1, 1),
            "50000",
            ("3.00", "5", "inactive"),
            id="30 days inactive: drop 2",
        ),
        pytest.param(
            "600000",
            TODAY - timedelta(days=300),
            date(2020, 1, 1),
            "0",
            ("3.00", "5", "inactive"),
            id="300 days inactive: still drop 2 once, never compounding",
        ),
        pytest.param(
            "600000",
            TODAY,
            date(2020, 1, 1),
            "19999.99",
            ("3.00", "5", "low_month"),
            id="last month below the minimum: drop 2",
        ),
        pytest.param(
            "600000",
            TODAY,
            date(2020, 1, 1),
            "20000",
            ("5.00", "5", None),
            id="last month at the minimum: no decay",
        ),
        pytest.param(
            "150000",
            TODAY,
            date(2026, 10, 15),
            "0",
            ("3.00", "3", None),
            id="joined during last month: month rule waived",
        ),
        pytest.param(
            "150000",
            TODAY,
            date(2026, 10, 1),
            "0",
            ("1.00", "3", "low_month"),
            id="customer all last month: month rule applies",
        ),
        pytest.param(
            "0",
            TODAY - timedelta(days=40),
            date(2020, 1, 1),
            "0",
            ("0.00", "1", "inactive"),
            id="decay never goes below 0",
        ),
    ],
)
def test_cumulative_percent_wholesale(
    amount: str,
    last_on: date | None,
    first_on: date | None,
    month: str,
    expected: tuple[str, str, str | None],
) -> None:
    got = cumulative_percent(
        WHOLESALE,
        D(amount),
        last_purchase_on=last_on,
        month_amount=D(month),
        today=TODAY,
        first_purchase_on=first_on,
    )

    percent, level, reason = expected
    assert got == DiscountLevel(D(percent), D(level), reason)  # type: ignore[arg-type]


def test_the_percent_is_rounded_down_to_hundredths() -> None:
    got = cumulative_percent(
        ROLLING, D("30000"), last_purchase_on=TODAY, month_amount=D(0), today=TODAY
    )

    assert got == DiscountLevel(D("7.12"), D("7.125"), None)


def test_the_decay_comes_back_with_the_next_purchase() -> None:
    inactive = cumulative_percent(
        ROLLING,
        D("30000"),
        last_purchase_on=TODAY - timedelta(days=60),
        month_amount=D(0),
        today=TODAY,
    )

    back = cumulative_percent(
        ROLLING, D("30000"), last_purchase_on=TODAY, month_amount=D(0), today=TODAY
    )

    assert (inactive.percent, back.percent) == (D("4.12"), D("7.12"))


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        pytest.param(date(2026, 11, 23), (date(2026, 10, 1), date(2026, 11, 1)), id="november"),
        pytest.param(date(2026, 1, 1), (date(2025, 12, 1), date(2026, 1, 1)), id="new year"),
        pytest.param(date(2026, 3, 31), (date(2026, 2, 1), date(2026, 3, 1)), id="march 31"),
    ],
)
def test_last_month_is_the_calendar_month_before(today: date, expected: tuple[date, date]) -> None:
    assert last_month(today) == expected


# --- windows and the whole decision --------------------------------------------------------


def test_windows_are_in_the_program_time_zone() -> None:
    w = windows(SPEND, WHOLESALE, now=NOW, tz=MSK)

    assert w.tier_from == NOW - timedelta(days=90)
    assert w.cumulative_from == datetime(1970, 1, 1, tzinfo=UTC)
    assert w.month_from == datetime(2026, 9, 30, 21, 0, tzinfo=UTC)  # Oct 1, 00:00 MSK
    assert w.month_to == datetime(2026, 10, 31, 21, 0, tzinfo=UTC)
    assert w.scan_from == w.cumulative_from


def test_rolling_window_starts_window_days_ago() -> None:
    w = windows(VISITS, ROLLING, now=NOW, tz=MSK)

    assert (w.tier_from, w.cumulative_from) == (days_ago(30), days_ago(180))
    assert (w.month_from, w.month_to) == (NOW, NOW)  # no month rule: nothing to sum
    assert w.scan_from == days_ago(180)


GOLD_5 = Levels("gold", days_ago(120), D("5.00"))


@pytest.mark.parametrize(
    ("till", "measures", "expected", "decay"),
    [
        pytest.param(
            True,
            Measures(tier_spend=D(0), cumulative_amount=D(0), last_purchase_at=days_ago(40)),
            GOLD_5,
            None,
            id="till: never lowers tier or percent",
        ),
        pytest.param(
            False,
            Measures(tier_spend=D(0), cumulative_amount=D(0), last_purchase_at=days_ago(40)),
            Levels("base", NOW, D("0.00")),
            "inactive",
            id="job: lowers both after the period",
        ),
        pytest.param(
            True,
            Measures(
                tier_spend=D(60000),
                cumulative_amount=D(700000),
                month_amount=D(30000),
                first_purchase_at=days_ago(400),
                last_purchase_at=NOW,
            ),
            GOLD_5,
            None,
            id="till: already gold at 5 %: since is not renewed at the till",
        ),
    ],
)
def test_decide_levels_at_the_till_and_in_the_job(
    till: bool, measures: Measures, expected: Levels, decay: str | None
) -> None:
    got = decide_levels(SPEND, WHOLESALE, GOLD_5, measures, now=NOW, tz=MSK, till=till)

    assert got.levels == expected
    assert got.decay == decay


def test_till_raises_the_percent_when_the_level_is_reached() -> None:
    current = Levels(None, None, D("1.00"))
    measures = Measures(cumulative_amount=D(100000), last_purchase_at=NOW, month_amount=D(20000))

    got = decide_levels(None, WHOLESALE, current, measures, now=NOW, tz=MSK, till=True)

    assert got.levels == Levels(None, None, D("3.00"))


def test_a_program_without_tiers_leaves_the_tier_alone() -> None:
    current = Levels("gold", days_ago(500), None)

    got = decide_levels(None, None, current, Measures(), now=NOW, tz=MSK, till=False)

    assert got.levels == current
