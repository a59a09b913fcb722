"""The rewards catalogue (both databases): order holds, issue burns, cancel releases and
returns stock; the last item ordered at two tills at once goes to exactly one member; the
ledger verified after each scenario."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from kopilka.services.rewards import (
    RewardError,
    cancel_stale_orders,
    do_add_reward,
    do_cancel_order,
    do_issue,
    do_order,
    do_update_reward,
    list_rewards,
    order_status,
    reward_by_code,
)
from kopilka.store import tables as t
from tests.conftest import Clock, Member, Shop
from tests.services.conftest import discrepancies


def balance(available: str, held: str = "0.00") -> dict[str, str]:
    return {"available": available, "pending": "0.00", "held": held, "debt": "0.00"}


async def order(shop: Shop, member: Member, code: str, key: str) -> Any:
    return await do_order(
        shop.rt,
        program_id=shop.program_id,
        account_id=member.account_id,
        reward_code=code,
        idempotency_key=key,
    )


async def outcome(coro: Any) -> str:
    try:
        o = await coro
    except RewardError as exc:
        return exc.code
    return str(o.state)


async def stock(shop: Shop, code: str) -> int | None:
    return (await reward_by_code(shop.rt, program_id=shop.program_id, code=code)).stock


async def mug(shop: Shop, *, stock: int | None = 5, price: str = "300") -> str:
    await do_add_reward(
        shop.rt,
        program_id=shop.program_id,
        code="mug",
        name="Кружка",
        price_points=Decimal(price),
        stock=stock,
    )
    return "mug"


async def test_order_holds_the_price_and_issue_burns_it(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer(points=500)
    code = await mug(shop)

    ordered = await order(shop, member, code, "o1")
    after_order = await shop.balance(member)
    issued = await do_issue(shop.rt, ordered.id)
    again = await do_issue(shop.rt, ordered.id)

    assert (ordered.state, ordered.points, ordered.reward_code) == (
        "ordered",
        Decimal("300.00"),
        "mug",
    )
    assert after_order == balance("200.00", held="300.00")
    assert (issued.state, again.state) == ("issued", "issued")
    assert await shop.balance(member) == balance("200.00")
    assert await stock(shop, code) == 4
    assert (await order_status(shop.rt, ordered.id)).state == "issued"
    assert await outcome(do_cancel_order(shop.rt, ordered.id)) == "order_issued"
    assert await discrepancies(shop) == []


async def test_cancel_releases_the_points_and_returns_the_stock(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer(points=500)
    code = await mug(shop, stock=1)

    ordered = await order(shop, member, code, "o1")
    stock_after_order = await stock(shop, code)
    cancelled = await do_cancel_order(shop.rt, ordered.id)
    again = await do_cancel_order(shop.rt, ordered.id)

    assert stock_after_order == 0
    assert (cancelled.state, again.state) == ("cancelled", "cancelled")
    assert await shop.balance(member) == balance("500.00")
    assert await stock(shop, code) == 1
    assert await outcome(do_issue(shop.rt, ordered.id)) == "order_cancelled"
    async with shop.rt.engine.connect() as conn:
        hold = (
            await conn.execute(
                select(t.holds.c.state).where(t.holds.c.reward_order_id == ordered.id)
            )
        ).scalar_one()
    assert hold == "released"
    assert await discrepancies(shop) == []


async def test_the_same_key_answers_the_first_order(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    anna = await shop.customer(points=1000)
    boris = await shop.customer(points=1000)
    code = await mug(shop)

    first = await order(shop, anna, code, "o1")
    again = await order(shop, anna, code, "o1")

    assert (again.id, again.replayed) == (first.id, True)
    assert await outcome(order(shop, boris, code, "o1")) == "idempotency_conflict"
    assert await shop.balance(anna) == balance("700.00", held="300.00")
    assert await stock(shop, code) == 4


@pytest.mark.parametrize(
    ("points", "stock_left", "code", "expected"),
    [
        pytest.param(100, 5, "mug", "insufficient_points", id="insufficient-points"),
        pytest.param(500, 0, "mug", "out_of_stock", id="out-of-stock"),
        pytest.param(100, 0, "mug", "out_of_stock", id="out-of-stock-before-points"),
        pytest.param(500, 5, "teapot", "reward_not_found", id="unknown-reward"),
        pytest.param(300, None, "mug", "ordered", id="unlimited-stock-exact-points"),
    ],
)
async def test_order_refusals(
    make_shop: Any, points: int, stock_left: int | None, code: str, expected: str
) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer(points=points)
    await mug(shop, stock=stock_left)

    got = await outcome(order(shop, member, code, "o1"))

    assert got == expected
    if expected != "ordered":
        assert await stock(shop, "mug") == stock_left
        assert await shop.balance(member) == balance(f"{points}.00")


async def test_held_points_cannot_be_ordered_twice(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer(points=500)
    code = await mug(shop)

    first = await outcome(order(shop, member, code, "o1"))
    second = await outcome(order(shop, member, code, "o2"))

    assert (first, second) == ("ordered", "insufficient_points")


async def test_an_inactive_reward_cannot_be_ordered(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer(points=500)
    code = await mug(shop)

    await do_update_reward(shop.rt, program_id=shop.program_id, code=code, active=False)

    assert await outcome(order(shop, member, code, "o1")) == "reward_not_found"
    assert [r.active for r in await list_rewards(shop.rt, program_id=shop.program_id)] == [False]


async def test_the_last_item_ordered_by_two_members_at_once_goes_to_exactly_one(
    make_shop: Any,
) -> None:
    shop: Shop = await make_shop()
    members = [await shop.customer(points=500) for _ in range(4)]
    code = await mug(shop, stock=1)

    results = await asyncio.gather(
        *(order(shop, m, code, f"o{i}") for i, m in enumerate(members)), return_exceptions=True
    )

    codes = sorted(r.code if isinstance(r, RewardError) else r.state for r in results)
    assert codes == ["ordered", "out_of_stock", "out_of_stock", "out_of_stock"]
    assert await stock(shop, code) == 0
    held = sorted([(await shop.balance(m))["held"] for m in members])
    assert held == ["0.00", "0.00", "0.00", "300.00"]
    assert await discrepancies(shop) == []


async def test_issue_and_cancel_at_once_resolve_the_order_once(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer(points=500)
    code = await mug(shop, stock=1)
    ordered = await order(shop, member, code, "o1")

    results = await asyncio.gather(
        outcome(do_issue(shop.rt, ordered.id)), outcome(do_cancel_order(shop.rt, ordered.id))
    )

    assert sorted(results) in (["issued", "order_issued"], ["cancelled", "order_cancelled"])
    final = await order_status(shop.rt, ordered.id)
    expected = balance("200.00") if final.state == "issued" else balance("500.00")
    assert await shop.balance(member) == expected
    assert await stock(shop, code) == (0 if final.state == "issued" else 1)
    assert await discrepancies(shop) == []


async def test_orders_not_issued_in_30_days_are_cancelled(make_shop: Any, clock: Clock) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer(points=500)
    code = await mug(shop, stock=1)
    ordered = await order(shop, member, code, "o1")

    clock.set(shop.rt.now() + timedelta(days=30, seconds=1))
    cancelled = await cancel_stale_orders(shop.rt)

    assert cancelled >= 1
    assert (await order_status(shop.rt, ordered.id)).state == "cancelled"
    assert await stock(shop, code) == 1
    assert await discrepancies(shop) == []
