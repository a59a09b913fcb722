"""Pending points, expiry exact to the day, burning the soonest-expiring points first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kopilka.services import ledger_jobs
from tests.conftest import Clock, receipt

# 2026-03-10 12:00 in Moscow (UTC+3)
NOON_MSK = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


async def test_delayed_points_are_pending_until_the_start_of_their_day(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOON_MSK)
    shop = await make_shop(earn_percent="10", activation_delay_days=14)
    member = await shop.customer()

    r = await shop.post("/purchases", receipt("r1", member.card, ("a", 1, "500.00")))
    clock.set(datetime(2026, 3, 23, 20, 59, tzinfo=UTC))  # 23:59 on 2026-03-23 in Moscow
    before = await shop.balance(member)
    clock.set(datetime(2026, 3, 23, 21, 0, tzinfo=UTC))  # 00:00 on 2026-03-24 in Moscow
    after = await shop.balance(member)

    assert r.json()["points_activate_at"] == "2026-03-24T00:00:00+03:00"
    assert r.json()["balance"] == {"available": "0.00", "pending": "50.00", "held": "0.00"}
    assert (before["available"], before["pending"]) == ("0.00", "50.00")
    assert (after["available"], after["pending"]) == ("50.00", "0.00")


async def test_points_are_usable_on_their_last_day_and_expire_at_midnight(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOON_MSK)
    shop = await make_shop(earn_percent="10", expiry_days=30)
    member = await shop.customer()
    r = await shop.post("/purchases", receipt("r1", member.card, ("a", 1, "500.00")))

    clock.set(datetime(2026, 4, 8, 20, 59, tzinfo=UTC))  # 23:59 on 2026-04-08, Moscow
    last_day = await shop.balance(member)
    clock.set(datetime(2026, 4, 8, 21, 0, tzinfo=UTC))  # 00:00 on 2026-04-09
    next_day = await shop.balance(member)
    await ledger_jobs.expire_points(shop.rt)
    swept = await shop.balance(member)

    assert r.json()["points_expire_at"] == "2026-04-09T00:00:00+03:00"
    assert last_day["available"] == "50.00"
    assert next_day["available"] == "0.00"
    assert swept == {"available": "0.00", "pending": "0.00", "held": "0.00", "debt": "0.00"}


async def test_burning_takes_the_points_that_expire_first(make_shop: Any, clock: Clock) -> None:
    clock.set(NOON_MSK)
    shop = await make_shop(earn_percent="10", expiry_days=30, burn_max_percent="100")
    member = await shop.customer()
    await shop.post("/purchases", receipt("old", member.card, ("a", 1, "300.00")))  # 30 pts
    clock.advance(days=10)
    await shop.post("/purchases", receipt("new", member.card, ("a", 1, "500.00")))  # 50 pts
    await shop.post(
        "/purchases", receipt("burn", member.card, ("b", 1, "40.00"), redeem_points="40")
    )

    clock.set(datetime(2026, 4, 8, 21, 0, tzinfo=UTC))  # the older points' expiry
    await ledger_jobs.expire_points(shop.rt)
    after_first = await shop.balance(member)

    # The 40 burned took the old lot's 30 and 10 of the new one: nothing was left to
    # expire on 2026-04-09; the new lot keeps 40 until 2026-04-19.
    assert after_first["available"] == "40.00"
