"""The rewards catalogue at the till: a member pays for an item with points; the last
item in stock goes to one of two tills; a repeated order id gets the first answer."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from kopilka.services import rewards


async def test_a_member_takes_a_reward_for_points_at_the_till(make_shop: Any) -> None:
    shop = await make_shop()
    await rewards.do_add_reward(
        shop.rt,
        program_id=shop.program_id,
        code="MUG",
        name="Кружка",
        price_points=Decimal("300"),
        stock=1,
    )
    anna = await shop.customer(points=500)
    boris = await shop.customer(points=500)

    catalogue = await shop.get("/rewards")
    a, b = await asyncio.gather(
        shop.post("/rewards/orders", {"identifier": anna.card, "reward": "MUG", "order_id": "o1"}),
        shop.post("/rewards/orders", {"identifier": boris.card, "reward": "MUG", "order_id": "o2"}),
    )
    winner, order_id = (anna, "o1") if a.status_code == 201 else (boris, "o2")
    again = await shop.post(
        "/rewards/orders", {"identifier": winner.card, "reward": "MUG", "order_id": order_id}
    )

    assert catalogue.json() == [
        {"code": "MUG", "name": "Кружка", "price_points": "300.00", "stock": 1}
    ]
    assert sorted([a.status_code, b.status_code]) == [201, 409], (a.text, b.text)
    assert (a if a.status_code == 201 else b).json()["state"] == "issued"
    assert (await shop.balance(winner))["available"] == "200.00"
    assert again.status_code == 200  # the same order id: the first answer, nothing more
    assert (await shop.balance(winner))["available"] == "200.00"
    unknown = await shop.post(
        "/rewards/orders", {"identifier": "0000", "reward": "MUG", "order_id": "o3"}
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_identifier")
