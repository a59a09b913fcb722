"""The fraud rules without a database: thresholds at their edges, evidence merging, the
settings' parsing; Hypothesis checks the sliding windows against a plain count."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.domain import fraud as df
from kopilka.domain.fraud import FraudSettings, ReceiptFact

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def rc(
    i: int,
    minutes: float,
    *,
    card: int | None = 1,
    cashier: str | None = "k1",
    terminal: int = 1,
    earned: str = "0",
    redeemed: str = "0",
) -> ReceiptFact:
    return ReceiptFact(
        id=i,
        pos_id=f"r{i}",
        at=T0 + timedelta(minutes=minutes),
        store_id=1,
        terminal_id=terminal,
        cashier_id=cashier,
        account_id=None if card is None else 100 + card,
        customer_id=None if card is None else 200 + card,
        card_id=card,
        card_number=None if card is None else f"27{card:011d}",
        amount=Decimal("100.00"),
        points_earned=Decimal(earned),
        points_redeemed=Decimal(redeemed),
    )


# --- settings --------------------------------------------------------------------------------


def test_settings_keep_what_is_not_given_and_name_the_bad_field() -> None:
    base = df.parse_settings({"refund_days": "7"}, disabled=["pin_guessing"])

    kept = df.parse_settings({"burst_minutes": "15"}, disabled=None, base=base)

    assert (kept.refund_days, kept.burst_minutes, kept.disabled) == (7, 15, ("pin_guessing",))
    for values, field in (
        ({"refund_days": "0"}, "refund_days"),
        ({"burst_receipts": "abc"}, "burst_receipts"),
        ({"adjust_limit": "0"}, "adjust_limit"),
        ({"adjust_limit": "10.001"}, "adjust_limit"),
        ({"adjust_limit": "NaN"}, "adjust_limit"),
    ):
        with pytest.raises(df.Invalid) as err:
            df.parse_settings(values)
        assert err.value.field == field
    with pytest.raises(df.Invalid) as err:
        df.parse_settings({}, disabled=["no_such_rule"])
    assert err.value.field == "disabled"


def test_a_decimal_comma_is_accepted_for_the_adjustment_limit() -> None:
    assert df.parse_settings({"adjust_limit": "1500,50"}).adjust_limit == Decimal("1500.50")


@given(
    st.fixed_dictionaries(
        {name: st.integers(least, most) for name, (least, most, _) in df.LIMITS.items()}
    ),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000"), places=2),
    st.sets(st.sampled_from([r.value for r in df.RULES])),
)
def test_settings_survive_the_trip_through_json(
    numbers: dict[str, int], limit: Decimal, off: set[str]
) -> None:
    s = df.parse_settings(
        {**{k: str(v) for k, v in numbers.items()}, "adjust_limit": str(limit)}, disabled=off
    )

    assert df.settings_from_dict(df.settings_to_dict(s)) == s
    assert s.adjust_limit == limit and set(s.disabled) == off


# --- 1. cashier's card: the window against a plain count --------------------------------------


@settings(max_examples=60)
@given(
    st.lists(st.integers(0, 72 * 60), min_size=1, max_size=25),
    st.integers(2, 8),
    st.integers(1, 48),
)
def test_cashier_card_fires_exactly_when_some_window_holds_enough_receipts(
    minutes: list[int], n: int, hours: int
) -> None:
    s = FraudSettings(cashier_card_receipts=n, cashier_card_hours=hours)
    receipts = [rc(i, m) for i, m in enumerate(minutes)]

    found = df.cashier_card(receipts, receipts, s)

    times = sorted(minutes)
    # the most receipts in any window that ends at a receipt, counted with bisect
    best = max(
        bisect.bisect_right(times, t) - bisect.bisect_left(times, t - hours * 60) for t in times
    )
    assert len(found) == (1 if best >= n else 0)
    if found:
        assert len(found[0].evidence) >= n
        assert found[0].dedup_key == "cashier_card:1:k1:1"


def test_receipts_without_a_cashier_or_by_another_do_not_count() -> None:
    s = FraudSettings(cashier_card_receipts=3)
    receipts = [rc(1, 0), rc(2, 1), rc(3, 2, cashier="k2"), rc(4, 3, cashier=None)]

    assert df.cashier_card(receipts, receipts, s) == []


# --- 2. earn then burn ------------------------------------------------------------------------


def test_a_burn_long_after_the_last_earn_is_not_suspicious() -> None:
    s = FraudSettings(earn_burn_receipts=3, earn_burn_days=3, earn_burn_hours=24)
    earns = [rc(i, i * 60, cashier=None, earned="100") for i in range(3)]
    late = rc(9, 2 * 60 + 24 * 60 + 1, cashier=None, redeemed="300")
    soon = rc(10, 2 * 60 + 24 * 60, cashier=None, redeemed="300")

    assert df.earn_then_burn([late], [*earns, late], s) == []
    [f] = df.earn_then_burn([soon], [*earns, soon], s)
    assert f.severity == "high"  # burned all that was earned
    assert [x["role"] for x in f.evidence] == ["earned", "earned", "earned", "burned"]


def test_earnings_spread_over_tills_are_not_grouped() -> None:
    s = FraudSettings(earn_burn_receipts=3)
    earns = [rc(i, i, cashier=None, terminal=i, earned="10") for i in range(3)]
    burn = rc(9, 10, cashier=None, redeemed="30")

    assert df.earn_then_burn([burn], [*earns, burn], s) == []


# --- 3. refund after burn ---------------------------------------------------------------------


def test_the_nth_refund_after_burning_makes_the_alert_severe() -> None:
    s = FraudSettings(refund_days=3, refund_count=2)
    paid = [rc(i, i, redeemed="50") for i in range(2)]
    refunds = [
        df.RefundFact(10 + i, r.at + timedelta(days=1), r, Decimal("100"), Decimal("50"))
        for i, r in enumerate(paid)
    ]

    [one] = df.refund_after_burn(refunds[:1], refunds[:1], s)
    [two] = df.refund_after_burn(refunds[1:], refunds, s)

    assert (one.severity, two.severity) == ("medium", "high")
    assert one.dedup_key == two.dedup_key == "refund_after_burn:101"
    assert [x["key"] for x in two.evidence] == ["receipt:0", "refund:10", "receipt:1", "refund:11"]


# --- 4, 5, 6, 7 ---------------------------------------------------------------------------------


def test_the_device_rule_counts_only_recent_registrations() -> None:
    s = FraudSettings(device_customers_max=2, device_days=30)
    rows = [
        df.DeviceCustomer(i, T0 - timedelta(days=d), None, None) for i, d in enumerate((40, 5, 1))
    ]

    assert df.device_accounts({"dev": rows}, s, now=T0) == []
    [f] = df.device_accounts({"dev": [*rows, df.DeviceCustomer(9, T0, None, "2700")]}, s, now=T0)
    assert [x["id"] for x in f.evidence] == [1, 2, 9]


def test_a_burst_by_rate_needs_the_factor_times_the_usual_rate() -> None:
    s = FraudSettings(burst_receipts=100, burst_minutes=10, burst_factor=10)
    receipts = [rc(i, i * 0.4, cashier=None, card=i + 1) for i in range(20)]

    busy = df.terminal_burst(receipts, receipts, s, usual_per_window={1: 2.0})
    calm = df.terminal_burst(receipts[:19], receipts[:19], s, usual_per_window={1: 2.0})
    quiet = df.terminal_burst(receipts[:10], receipts[:10], s, usual_per_window={1: 0.0})
    quieter = df.terminal_burst(receipts[:9], receipts[:9], s, usual_per_window={1: 0.0})

    assert [len(f.evidence) for f in busy] == [20]
    assert calm == []
    assert [len(f.evidence) for f in quiet] == [10]  # a quiet till counts as 1 per window
    assert quieter == []


def test_an_adjustment_counts_either_way_from_the_limit() -> None:
    s = FraudSettings(adjust_limit=Decimal("1000"))

    def adj(i: int, amount: str) -> df.AdjustFact:
        return df.AdjustFact(i, T0, "user", 5, "Ann", 7, 8, Decimal(amount), "why")

    found = df.big_adjustment([adj(1, "-1000"), adj(2, "999.99"), adj(3, "-10000")], s)

    [f] = found  # one person, one account: one situation
    assert [x["amount"] for x in f.evidence] == ["-1000", "-10000"]


@pytest.mark.parametrize(
    ("scope", "failures", "raised"),
    [("card", 2, False), ("card", 3, True), ("terminal", 9, False), ("terminal", 10, True)],
)
def test_pin_guessing_thresholds(scope: str, failures: int, raised: bool) -> None:
    found = df.pin_guessing([df.PinFailures(scope, "70123", T0, failures)], FraudSettings())

    assert bool(found) is raised


# --- evidence ---------------------------------------------------------------------------------


@given(  # a finding's evidence has unique keys
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 5)), max_size=15, unique_by=lambda x: x[0]
    ),
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 5)), max_size=15, unique_by=lambda x: x[0]
    ),
)
def test_merging_evidence_twice_changes_nothing(
    old: list[tuple[int, int]], new: list[tuple[int, int]]
) -> None:
    def items(pairs: list[tuple[int, int]]) -> list[dict[str, object]]:
        return [{"key": f"k{k}", "at": f"2026-12-0{1 + v}", "v": v} for k, v in pairs]

    once, _ = df.merge_evidence(items(old), items(new))
    twice, changed = df.merge_evidence(once, items(new))

    assert twice == once and changed is False
    assert {x["key"] for x in once} == {f"k{k}" for k, _ in old + new}
    assert df.is_covered(once, items(new))
