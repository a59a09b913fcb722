"""Campaigns' pure parts: the control group, quiet hours, the cap, the unsubscribe token."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from kopilka.domain import campaigns as dc


def test_control_group_size_within_tolerance_and_deterministic() -> None:
    ids = range(1, 20_001)
    held = [i for i in ids if dc.in_control("seed-a", i, 20)]
    # 20 % of 20,000 = 4,000; a binomial's standard deviation is ~57: 4 sigma either side
    assert 3_770 <= len(held) <= 4_230
    assert held == [i for i in ids if dc.in_control("seed-a", i, 20)]  # same answer again
    other = [i for i in ids if dc.in_control("seed-b", i, 20)]
    assert other != held  # another campaign holds out other people
    assert not any(dc.in_control("seed-a", i, 0) for i in range(1, 1000))


def test_quiet_hours_across_midnight_postpone_to_the_morning() -> None:
    start, end = time(21, 0), time(9, 0)
    # 22:30 in Moscow (UTC+3) = 19:30 UTC: wait until 09:00 Moscow = 06:00 UTC next day
    late = datetime(2026, 3, 10, 19, 30, tzinfo=UTC)
    assert dc.quiet_until(late, "Europe/Moscow", start, end) == datetime(
        2026, 3, 11, 6, 0, tzinfo=UTC
    )
    # 07:00 Moscow = 04:00 UTC: the same morning
    early = datetime(2026, 3, 11, 4, 0, tzinfo=UTC)
    assert dc.quiet_until(early, "Europe/Moscow", start, end) == datetime(
        2026, 3, 11, 6, 0, tzinfo=UTC
    )
    # 12:00 Moscow: may send; the same instant in Vladivostok (UTC+10) is 19:00, also fine
    noon = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
    assert dc.quiet_until(noon, "Europe/Moscow", start, end) is None
    assert dc.quiet_until(noon, "Asia/Vladivostok", start, end) is None
    # a window within one day: 13:00-14:00
    lunch = datetime(2026, 3, 11, 10, 15, tzinfo=UTC)  # 13:15 Moscow
    assert dc.quiet_until(lunch, "Europe/Moscow", time(13), time(14)) == datetime(
        2026, 3, 11, 11, 0, tzinfo=UTC
    )


def test_frequency_cap_counts_only_the_window() -> None:
    now = datetime(2026, 3, 11, 12, tzinfo=UTC)
    sent = [now - timedelta(days=1), now - timedelta(days=3), now - timedelta(days=10)]
    assert dc.capped(sent, now, 2, 7)
    assert not dc.capped(sent, now, 3, 7)
    assert not dc.capped(sent, now, None, None)
    assert dc.capped(sent, now, 3, 30)


def test_unsubscribe_token_cannot_be_forged() -> None:
    token = dc.unsubscribe_token("s3cret", 12, 345, "sms")
    assert dc.token_valid("s3cret", token)
    assert not dc.token_valid("other", token)
    forged = token.replace(".345.", ".346.")
    assert not dc.token_valid("s3cret", forged)
    assert not dc.token_valid("s3cret", "12.345.fax.abc")
    assert dc.token_parts("garbage") is None


def test_uploaded_list_reads_csv_phones_and_cards() -> None:
    text = 'phone,name\n"+7 903 123-45-67",Anna\n89031234568;x\n2700000000017\n\n'
    assert dc.parse_list(text) == ("+79031234567", "+79031234568", "2700000000017")


def test_audience_form_errors_name_the_field() -> None:
    with pytest.raises(dc.Invalid) as e:
        dc.parse_audience({"days_min": "30", "days_max": "10"})
    assert e.value.field == "days_max"
    with pytest.raises(dc.Invalid) as e:
        dc.parse_audience({"birthday_month": "13"})
    assert e.value.field == "birthday_month"
    aud = dc.parse_audience({"rfm": "champions, loyal", "birthday_month": "5"})
    assert aud.rfm == ("champions", "loyal") and aud.birthday_month == 5
    assert dc.Audience.from_json(aud.to_json()) == aud
