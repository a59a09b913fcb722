"""POS API: ``GET /gift-cards/{number}`` and ``POST /gift-cards/{number}/activate``; and
gift cards as a tender in calculate, purchase, confirm, cancel and refunds (these run
once services/purchases.py takes ``gift_cards``)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kopilka.api.app import create_app
from kopilka.api.pos import giftcards as gift_routes
from kopilka.services import giftcards as gc
from kopilka.services.purchases import PurchaseRequest
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Shop, new_shop, receipt
from tests.services.conftest import add_tills

GIFT_PATH = "/api/pos/v1/gift-cards/{number}"
WIRED = "gift_cards" in PurchaseRequest.__dataclass_fields__
wired = pytest.mark.skipif(not WIRED, reason="purchases do not take gift cards yet")


@pytest.fixture(scope="session")
async def gift_client(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the gift-card router (mounted here until app.py mounts it)."""
    app = create_app(rt, sweep_every_s=0)
    if not any(getattr(r, "path", None) == GIFT_PATH for r in app.routes):
        app.include_router(gift_routes.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def shop_with_card(
    rt: Runtime, client: httpx.AsyncClient, nominal: str = "2000.00"
) -> tuple[Shop, str]:
    shop = await new_shop(rt, client)
    async with rt.engine.connect() as conn:
        code = (
            await conn.execute(select(t.programs.c.code).where(t.programs.c.id == shop.program_id))
        ).scalar_one()
    [(number, _)] = await gc.do_create_series(
        rt, code, code=f"S{secrets.token_hex(3)}", name="Gift", nominal=Decimal(nominal), count=1
    )
    return shop, number


async def test_a_sold_card_shows_its_balance(rt: Runtime, gift_client: httpx.AsyncClient) -> None:
    shop, number = await shop_with_card(rt, gift_client)

    before = await shop.get(f"/gift-cards/{number}")
    activated = await shop.post(f"/gift-cards/{number}/activate", {"receipt_id": "0042-000123"})
    after = await shop.get(f"/gift-cards/{number}")

    assert before.status_code == 200, before.text
    assert (before.json()["state"], before.json()["balance"]) == ("issued", "0.00")
    assert activated.status_code == 200, activated.text
    assert after.json() == activated.json()
    body = after.json()
    assert (body["number"], body["state"], body["balance"], body["available"]) == (
        "*********" + number[-4:],
        "active",
        "2000.00",
        "2000.00",
    )


async def test_activation_elsewhere_of_a_sold_card_is_a_conflict(
    rt: Runtime, gift_client: httpx.AsyncClient
) -> None:
    shop, number = await shop_with_card(rt, gift_client)
    _, other = await add_tills(shop, 2)

    first = await shop.post(f"/gift-cards/{number}/activate")
    retry = await shop.post(f"/gift-cards/{number}/activate")
    elsewhere = await other.post(f"/gift-cards/{number}/activate")

    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json() == first.json()
    assert elsewhere.status_code == 409
    assert elsewhere.headers["content-type"] == "application/problem+json"
    assert elsewhere.json()["code"] == "gift_card_already_active"


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("7000000000011", id="valid check digit, no such card"),
        pytest.param("7000000000012", id="bad check digit"),
        pytest.param("abc", id="not digits"),
    ],
)
async def test_unknown_numbers_are_not_found(
    rt: Runtime, gift_client: httpx.AsyncClient, number: str
) -> None:
    shop, _ = await shop_with_card(rt, gift_client)

    got = await shop.get(f"/gift-cards/{number}")
    activated = await shop.post(f"/gift-cards/{number}/activate")

    assert (got.status_code, got.json()["code"]) == (404, "gift_card_not_found")
    assert (activated.status_code, activated.json()["code"]) == (404, "gift_card_not_found")


async def test_another_programs_card_is_not_found(
    rt: Runtime, gift_client: httpx.AsyncClient
) -> None:
    _, number = await shop_with_card(rt, gift_client)
    stranger = await new_shop(rt, gift_client)

    got = await stranger.get(f"/gift-cards/{number}")

    assert (got.status_code, got.json()["code"]) == (404, "gift_card_not_found")


async def test_without_a_terminal_key_nothing_is_shown(
    rt: Runtime, gift_client: httpx.AsyncClient
) -> None:
    _, number = await shop_with_card(rt, gift_client)

    got = await gift_client.get(f"/api/pos/v1/gift-cards/{number}")
    activated = await gift_client.post(f"/api/pos/v1/gift-cards/{number}/activate")

    assert (got.status_code, got.json()["code"]) == (401, "unauthorized")
    assert (activated.status_code, activated.json()["code"]) == (401, "unauthorized")


async def test_an_unknown_field_in_the_activation_body_is_refused(
    rt: Runtime, gift_client: httpx.AsyncClient
) -> None:
    shop, number = await shop_with_card(rt, gift_client)

    r = await shop.post(f"/gift-cards/{number}/activate", {"amount": "500.00"})

    assert r.status_code == 422
    assert r.json()["code"] == "validation_failed"
    assert r.json()["errors"][0] == {
        "field": "amount",
        "code": "unknown_field",
        "detail": "Extra inputs are not permitted",
    }
    assert (await shop.get(f"/gift-cards/{number}")).json()["state"] == "issued"


# --- gift cards as a tender (once purchases are wired) ------------------------------------


async def _sold(shop: Shop, nominal: str = "1000.00") -> tuple[str, str]:
    async with shop.rt.engine.connect() as conn:
        code = (
            await conn.execute(select(t.programs.c.code).where(t.programs.c.id == shop.program_id))
        ).scalar_one()
    [(n, p)] = await gc.do_create_series(
        shop.rt, code, code=f"S{secrets.token_hex(3)}", name="g", nominal=Decimal(nominal), count=1
    )
    term = await shop.rt.terminal_by_key(shop.key)
    assert term
    await gc.do_activate(shop.rt, term, n)
    return n, p


async def _state(shop: Shop, n: str) -> tuple[str, str, str]:
    term = await shop.rt.terminal_by_key(shop.key)
    assert term
    v = await gc.balance(shop.rt, term, n)
    return v["state"], v["balance"], v["held"]


def _paid(rid: str, ident: str | None, price: str, n: str, p: str, amount: str) -> dict[str, Any]:
    return receipt(
        rid, ident, ("A", 1, price), gift_cards=[{"number": n, "pin": p, "amount": amount}]
    )


@wired
async def test_calculate_confirm_cancel_and_the_refusals(make_shop: Any) -> None:
    shop = await make_shop()
    member = await shop.customer(0)
    n, p = await _sold(shop)

    r = await shop.post("/purchases/calculate", _paid("g1", member.card, "700.00", n, p, "600.00"))
    assert r.status_code == 200, r.text
    assert r.json()["gift_cards"][0]["amount"] == "600.00"
    assert await _state(shop, n) == ("active", "1000.00", "600.00")
    again = await shop.post(
        "/purchases/calculate", _paid("g1", member.card, "700.00", n, p, "600.00")
    )
    assert again.content == r.content
    c = await shop.post("/purchases/g1/confirm")
    assert c.status_code == 200, c.text
    assert await _state(shop, n) == ("active", "400.00", "0.00")

    r2 = await shop.post("/purchases/calculate", _paid("g2", None, "300.00", n, p, "300.00"))
    assert r2.status_code == 200, r2.text
    assert (await shop.post("/purchases/g2/cancel")).status_code == 200
    assert await _state(shop, n) == ("active", "400.00", "0.00")

    bad = await shop.post("/purchases/calculate", _paid("g3", None, "300.00", n, "x", "1.00"))
    assert (bad.status_code, bad.json()["code"], bad.json()["field"]) == (
        422,
        "gift_card_wrong_pin",
        "gift_cards[0].pin",
    )
    over = await shop.post("/purchases/calculate", _paid("g4", None, "300.00", n, p, "301.00"))
    assert (over.status_code, over.json()["code"]) == (422, "gift_cards_exceed_total")
    one = await shop.post("/purchases", _paid("g5", None, "300.00", n, p, "300.00"))
    assert one.status_code == 200, one.text
    assert await _state(shop, n) == ("active", "100.00", "0.00")
    assert await gc.verify_cards(shop.rt, program_id=shop.program_id) == []


@wired
async def test_two_tills_paying_with_the_last_money_at_once(make_shop: Any) -> None:
    shop = await make_shop()
    n, p = await _sold(shop, "300.00")
    tills = await add_tills(shop, 2)

    rs = await asyncio.gather(
        *(
            till.post("/purchases", _paid(f"t{i}", None, "300.00", n, p, "300.00"))
            for i, till in enumerate(tills)
        )
    )

    assert sorted((r.status_code, r.json().get("code")) for r in rs) == [
        (200, None),
        (422, "gift_card_insufficient"),
    ]
    assert await _state(shop, n) == ("used", "0.00", "0.00")


@wired
async def test_refunds_go_back_to_the_card(make_shop: Any) -> None:
    shop = await make_shop()
    n, p = await _sold(shop)
    body = receipt(
        "rf1", None, ("A", 2, "300.00"), gift_cards=[{"number": n, "pin": p, "amount": "500.00"}]
    )
    assert (await shop.post("/purchases", body)).status_code == 200

    r = await shop.post(
        "/purchases/rf1/refunds", {"refund_id": "R1", "lines": [{"index": 0, "quantity": 1}]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["gift_cards_returned"] == "300.00"
    assert await _state(shop, n) == ("active", "800.00", "0.00")
    r = await shop.post("/purchases/rf1/refunds", {"refund_id": "R2"})
    assert r.json()["gift_cards_returned"] == "200.00"
    assert await _state(shop, n) == ("active", "1000.00", "0.00")


async def test_the_program_decides_whether_the_gift_card_part_earns_points(
    make_shop: Any,
) -> None:
    from tests.api.test_promotions_at_till import publish

    earning = await make_shop()
    money_only = await make_shop()
    await publish(money_only, [], points={"earn_percent": 5, "earn_on_gift_card": False})
    answers = []
    for shop in (earning, money_only):
        member = await shop.customer(0)
        n, p = await _sold(shop)
        r = await shop.post("/purchases", _paid("e1", member.card, "1000.00", n, p, "600.00"))
        assert r.status_code == 200, r.text
        answers.append(r.json()["points_earned"])

    # 5 % of 1000.00 = 50; of the 400.00 paid in money only = 20
    assert answers == ["50.00", "20.00"]
