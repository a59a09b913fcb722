"""Personal offers: a marketer assigns a promotion to a customer through the admin API;
the cashier sees it at lookup and the till applies it until it is withdrawn or expires."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from kopilka.services.admin import do_add_token
from tests.api.test_promotions_at_till import publish
from tests.conftest import Clock, receipt

PERSONAL = {
    "id": "anna-coffee",
    "name": "Персонально: −15% на кофе",
    "personal": True,
    "lines": {"sku": ["coffee"]},
    "effects": [{"kind": "line_discount", "percent": 15}],
}


async def test_an_assigned_offer_is_shown_applied_and_withdrawn(
    make_shop: Any, client: httpx.AsyncClient, clock: Clock
) -> None:
    shop = await make_shop()
    await publish(shop, [PERSONAL])
    code = shop.code
    token = await do_add_token(shop.rt, name="marketer", program_code=code)
    auth = {"Authorization": f"Bearer {token}"}
    anna, boris = await shop.customer(), await shop.customer()
    body = {
        "program": code,
        "customer": {"card": anna.card},
        "promotion": "anna-coffee",
        "valid_until": (shop.rt.now() + timedelta(days=7)).isoformat(),
    }

    assigned = await client.post("/api/admin/v1/personal-offers", json=body, headers=auth)
    unknown = await client.post(
        "/api/admin/v1/personal-offers", json={**body, "promotion": "nope"}, headers=auth
    )
    seen = await shop.get("/customers/lookup", params={"identifier": anna.card})
    hers = await shop.post(
        "/purchases/calculate", receipt("p1", anna.card, ("coffee", 1, "200.00"))
    )
    his = await shop.post(
        "/purchases/calculate", receipt("p2", boris.card, ("coffee", 1, "200.00"))
    )
    withdrawn = await client.post("/api/admin/v1/personal-offers/withdraw", json=body, headers=auth)
    after = await shop.post(
        "/purchases/calculate", receipt("p3", anna.card, ("coffee", 1, "200.00"))
    )

    assert assigned.status_code == 201, assigned.text
    assert (unknown.status_code, unknown.json()["code"]) == (404, "promotion_not_found")
    assert [o["promotion"] for o in seen.json()["offers"]] == ["anna-coffee"]
    assert seen.json()["offers"][0]["name"] == "Персонально: −15% на кофе"
    assert (hers.json()["discount"], his.json()["discount"]) == ("30.00", "0.00")
    assert withdrawn.json() == {"withdrawn": True}
    assert after.json()["discount"] == "0.00"


async def test_an_offer_past_its_date_is_neither_shown_nor_applied(
    make_shop: Any, client: httpx.AsyncClient, clock: Clock
) -> None:
    from kopilka.services import offers

    shop = await make_shop()
    await publish(shop, [PERSONAL])
    anna = await shop.customer()
    now = shop.rt.now()
    clock.set(now)
    await offers.do_assign(
        shop.rt,
        program_id=shop.program_id,
        customer_id=anna.customer_id,
        promotion_id="anna-coffee",
        valid_until=now + timedelta(hours=1),
    )

    clock.advance(hours=2)
    seen = await shop.get("/customers/lookup", params={"identifier": anna.card})
    calc = await shop.post(
        "/purchases/calculate", receipt("x1", anna.card, ("coffee", 1, "200.00"))
    )

    assert seen.json()["offers"] == []
    assert calc.json()["discount"] == "0.00"
