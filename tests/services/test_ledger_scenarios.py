"""Ledger scenarios as plain tests on both databases: the shortest sequences the state
machine found breaking a guarantee of ``domain/ledger.py`` (operator debit of held
points; points held across their expiry day), and confirms after the hold's time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kopilka.services import ledger_jobs
from kopilka.services.accounts import do_adjust
from kopilka.services.errors import ServiceError
from tests.conftest import Clock, receipt
from tests.services.conftest import MakeShop, discrepancies


def balance(available: str, held: str = "0.00", pending: str = "0.00") -> dict[str, str]:
    return {"available": available, "pending": pending, "held": held, "debt": "0.00"}


async def test_operator_debit_never_takes_held_points(make_shop: MakeShop) -> None:
    """Guarantee 6: a hold never makes available negative, and the held points stay
    burnable until the hold resolves, whoever else takes points meanwhile."""
    shop = await make_shop(burn_max_percent="100")
    member = await shop.customer(points=100)
    calc = await shop.post(
        "/purchases/calculate", receipt("r1", member.card, ("a", 1, "100.00"), redeem_points="60")
    )
    assert calc.status_code == 200, calc.text

    with pytest.raises(ServiceError) as refused:
        await do_adjust(shop.rt, member.account_id, Decimal(-80), program_id=shop.program_id)
    confirmed = await shop.post("/purchases/r1/confirm")

    assert refused.value.code == "insufficient_points"
    assert confirmed.status_code == 200, confirmed.text
    assert await shop.balance(member) == balance("42.00")  # 100 - 60 + 5% of 40.00
    assert await discrepancies(shop) == []


async def test_points_held_across_their_expiry_do_not_make_available_negative(
    make_shop: MakeShop, clock: Clock
) -> None:
    """A hold taken just before the held points' lot expires keeps them (the expiry job
    leaves the account alone); meanwhile the lookup must not show a negative balance."""
    clock.set(datetime(2025, 3, 10, 9, 0, tzinfo=UTC))
    shop = await make_shop(burn_max_percent="100", expiry_days=30)
    member = await shop.customer(points=100)  # expires 2025-04-09 00:00 Moscow, 21:00 UTC
    clock.set(datetime(2025, 4, 8, 20, 55, tzinfo=UTC))  # 23:55 in Moscow
    calc = await shop.post(
        "/purchases/calculate", receipt("r1", member.card, ("a", 1, "100.00"), redeem_points="60")
    )
    assert calc.status_code == 200, calc.text

    clock.advance(minutes=10)  # the lot has expired; the hold (15 minutes) has not
    across = await shop.balance(member)
    confirmed = await shop.post("/purchases/r1/confirm")
    expired = await ledger_jobs.expire_points(shop.rt)
    after = await shop.balance(member)

    assert across == balance("0.00", held="60.00")
    assert confirmed.status_code == 200, confirmed.text
    assert expired == (1, Decimal("40.00"))
    assert after == balance("2.00")
    assert await discrepancies(shop) == []


@pytest.mark.parametrize("late", [timedelta(minutes=1), timedelta(minutes=30)])
async def test_confirm_after_the_hold_time_burns_once(
    make_shop: MakeShop, clock: Clock, late: timedelta
) -> None:
    """Confirmed after the hold's time, before or after the sweeper released it."""
    clock.set(datetime(2025, 3, 10, 9, 0, tzinfo=UTC))
    shop = await make_shop(burn_max_percent="100")
    member = await shop.customer(points=100)
    await shop.post(
        "/purchases/calculate", receipt("r1", member.card, ("a", 1, "100.00"), redeem_points="60")
    )

    clock.advance(seconds=900 + late.total_seconds())
    released = await ledger_jobs.expire_holds(shop.rt) if late > timedelta(minutes=5) else 0
    confirmed = await shop.post("/purchases/r1/confirm")

    assert confirmed.status_code == 200, confirmed.text
    assert released == (1 if late > timedelta(minutes=5) else 0)
    assert await shop.balance(member) == balance("42.00")
    assert await discrepancies(shop) == []
