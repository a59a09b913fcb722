"""Promotions of the rules engine at the till, through the POS API, on both databases:
what the answer shows, what is written, and budgets and limits that hold under racing
tills."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

import orjson
from sqlalchemy import func, select, update

from kopilka.domain.rules.model import validate_document
from kopilka.store import tables as t
from tests.conftest import Shop, receipt


async def publish(shop: Shop, promotions: list[dict[str, Any]], **extra: Any) -> int:
    """A new version of the shop's program with these promotions (what `program apply`
    writes: the document, and the program's current version)."""
    doc = validate_document(
        {"code": f"prog{shop.program_id}", "name": "Test", "promotions": promotions, **extra}
    )
    async with shop.rt.engine.begin() as conn:
        version = (
            await conn.execute(
                select(t.programs.c.version).where(t.programs.c.id == shop.program_id)
            )
        ).scalar_one() + 1
        await conn.execute(
            t.program_versions.insert(),
            {
                "program_id": shop.program_id,
                "version": version,
                "document": orjson.dumps(doc.model_dump(mode="json", by_alias=True)).decode(),
                "author": "test",
                "created_at": shop.rt.now(),
            },
        )
        await conn.execute(
            update(t.programs).where(t.programs.c.id == shop.program_id).values(version=version)
        )
    return version


COFFEE_10 = {
    "id": "coffee-10",
    "name": "Кофе -10%",
    "lines": {"sku": ["coffee"]},
    "effects": [
        {"kind": "line_discount", "percent": 10},
        {"kind": "receipt_message", "text": "Скидка на кофе 10%"},
        {"kind": "cashier_message", "text": "Предложите кружку"},
    ],
}


async def test_a_promotion_discounts_its_line_and_says_so(make_shop: Any) -> None:
    shop = await make_shop()
    version = await publish(shop, [COFFEE_10])
    anna = await shop.customer()

    r = await shop.post(
        "/purchases/calculate",
        receipt("p1", anna.card, ("coffee", 2, "500.00"), ("milk", 1, "90.00")),
    )

    assert r.status_code == 200, r.text
    body = r.json()
    coffee, milk = body["lines"]
    assert (coffee["amount"], coffee["discount"], coffee["to_pay"]) == (
        "1000.00",
        "100.00",
        "900.00",
    )
    assert [p["id"] for p in coffee["promotions"]] == ["coffee-10", "base_earn"]
    assert milk["discount"] == "0.00"
    assert (body["discount"], body["to_pay"]) == ("100.00", "990.00")
    assert body["points_earned"] == "49.00"  # 5 % of 990 paid, floor
    assert body["program_version"] == version
    assert body["cashier_messages"] == ["Предложите кружку"]
    assert body["receipt_text"][0] == "Скидка на кофе 10%"

    c = await shop.post("/purchases/p1/confirm")
    assert c.status_code == 200, c.text
    async with shop.rt.engine.connect() as conn:
        rec = (
            await conn.execute(
                select(t.receipts.c.id, t.receipts.c.program_version, t.receipts.c.discount).where(
                    t.receipts.c.program_id == shop.program_id
                )
            )
        ).one()
        lines = (
            await conn.execute(
                select(t.receipt_lines.c.sku, t.receipt_lines.c.discount)
                .where(t.receipt_lines.c.receipt_pk == rec.id)
                .order_by(t.receipt_lines.c.idx)
            )
        ).all()
        promo = (
            await conn.execute(
                select(t.receipt_promotions.c.promotion_id, t.receipt_promotions.c.discount).where(
                    t.receipt_promotions.c.receipt_pk == rec.id
                )
            )
        ).all()
    assert (rec.program_version, rec.discount) == (version, D("100.00"))
    assert [(x.sku, x.discount) for x in lines] == [("coffee", D("100.00")), ("milk", D("0.00"))]
    assert [(x.promotion_id, x.discount) for x in promo] == [("coffee-10", D("100.00"))]


async def test_a_store_condition_uses_the_terminals_store(make_shop: Any) -> None:
    shop = await make_shop()
    await publish(
        shop,
        [
            {
                "id": "msk",
                "name": "Moscow only",
                "when": {"city": ["Москва"]},
                "effects": [{"kind": "basket_discount", "amount": "10.00"}],
            },
            {
                "id": "spb",
                "name": "Petersburg only",
                "when": {"city": ["Санкт-Петербург"]},
                "effects": [{"kind": "basket_discount", "amount": "50.00"}],
            },
        ],
    )

    r = await shop.post("/purchases/calculate", receipt("c1", None, ("a", 1, "100.00")))

    assert r.status_code == 200, r.text
    assert r.json()["discount"] == "10.00"
    assert [p["id"] for p in r.json()["promotions"]] == ["msk"]


async def test_a_new_version_reaches_the_till_without_a_restart(make_shop: Any) -> None:
    shop = await make_shop()
    first = await shop.post("/purchases/calculate", receipt("v1", None, ("coffee", 1, "500.00")))
    await publish(shop, [COFFEE_10])

    second = await shop.post("/purchases/calculate", receipt("v2", None, ("coffee", 1, "500.00")))

    assert first.json()["discount"] == "0.00"
    assert second.json()["discount"] == "50.00"


BUDGET_100 = {
    "id": "budget",
    "name": "30 roubles off while 100 last",
    "effects": [{"kind": "basket_discount", "amount": "30.00"}],
    "budget": {"money": "100.00"},
}


async def test_a_budget_is_never_overspent_by_racing_tills(make_shop: Any) -> None:
    shop = await make_shop()
    await publish(shop, [BUDGET_100])

    answers = await asyncio.gather(
        *[
            shop.post("/purchases/calculate", receipt(f"b{i}", None, ("a", 1, "100.00")))
            for i in range(10)
        ]
    )

    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    discounts = sorted(a.json()["discount"] for a in answers)
    assert discounts == ["0.00"] * 7 + ["30.00"] * 3
    async with shop.rt.engine.connect() as conn:
        spent = (
            await conn.execute(
                select(t.promotion_budgets.c.spent_money).where(
                    t.promotion_budgets.c.program_id == shop.program_id
                )
            )
        ).scalar_one()
    assert spent == D("90.00")


async def test_a_cancelled_receipt_gives_its_budget_back(make_shop: Any) -> None:
    shop = await make_shop()
    await publish(shop, [{**BUDGET_100, "budget": {"money": "30.00"}}])
    first = await shop.post("/purchases/calculate", receipt("k1", None, ("a", 1, "100.00")))
    second = await shop.post("/purchases/calculate", receipt("k2", None, ("a", 1, "100.00")))

    await shop.post("/purchases/k1/cancel")
    third = await shop.post("/purchases/calculate", receipt("k3", None, ("a", 1, "100.00")))

    assert [first.json()["discount"], second.json()["discount"]] == ["30.00", "0.00"]
    assert third.json()["discount"] == "30.00"


async def test_a_per_customer_limit_counts_receipts_per_day(make_shop: Any) -> None:
    shop = await make_shop()
    await publish(
        shop,
        [
            {
                "id": "once-a-day",
                "name": "100 points once a day",
                "effects": [{"kind": "fixed_points", "points": 100}],
                "limits": [{"count": 1, "period": "day"}],
            }
        ],
    )
    anna = await shop.customer()
    boris = await shop.customer()

    a1 = await shop.post("/purchases", receipt("l1", anna.card, ("a", 1, "100.00")))
    a2 = await shop.post("/purchases", receipt("l2", anna.card, ("a", 1, "100.00")))
    b1 = await shop.post("/purchases", receipt("l3", boris.card, ("a", 1, "100.00")))

    assert [x.status_code for x in (a1, a2, b1)] == [200, 200, 200]
    # 5 % of 100 = 5 base points; the promotion adds 100 once per customer and day
    assert [x.json()["points_earned"] for x in (a1, a2, b1)] == ["105.00", "5.00", "105.00"]


async def test_the_accounts_tier_sets_the_earn_rate(make_shop: Any) -> None:
    shop = await make_shop()
    tiers = {
        "qualify_by": "spend",
        "period_days": 365,
        "levels": [
            {"code": "base", "name": "Base", "threshold": 0},
            {"code": "gold", "name": "Gold", "threshold": 30000, "earn_percent": 10},
        ],
    }
    await publish(shop, [], tiers=tiers)
    anna = await shop.customer()
    boris = await shop.customer()
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.accounts).where(t.accounts.c.id == boris.account_id).values(tier="gold")
        )

    a = await shop.post("/purchases/calculate", receipt("t1", anna.card, ("a", 1, "1000.00")))
    b = await shop.post("/purchases/calculate", receipt("t2", boris.card, ("a", 1, "1000.00")))

    assert (a.json()["points_earned"], b.json()["points_earned"]) == ("50.00", "100.00")
    la = await shop.get("/customers/lookup", params={"identifier": anna.card})
    lb = await shop.get("/customers/lookup", params={"identifier": boris.card})
    assert la.json()["tier"] == {"code": "base", "name": "Base"}
    assert lb.json()["tier"] == {"code": "gold", "name": "Gold"}


async def test_receipts_without_promotions_write_no_promotion_rows(make_shop: Any) -> None:
    shop = await make_shop()
    await publish(shop, [COFFEE_10])

    await shop.post("/purchases", receipt("n1", None, ("tea", 1, "100.00")))

    async with shop.rt.engine.connect() as conn:
        n = (
            await conn.execute(
                select(func.count()).where(t.receipt_promotions.c.program_id == shop.program_id)
            )
        ).scalar_one()
    assert n == 0


async def test_a_purchase_that_crosses_the_threshold_upgrades_the_tier_at_once(
    make_shop: Any,
) -> None:
    shop = await make_shop()
    tiers = {
        "qualify_by": "spend",
        "period_days": 365,
        "levels": [
            {"code": "base", "name": "Base", "threshold": 0},
            {"code": "gold", "name": "Gold", "threshold": 1000, "earn_percent": 10},
        ],
    }
    await publish(shop, [], tiers=tiers)
    anna = await shop.customer()

    first = await shop.post("/purchases", receipt("u1", anna.card, ("a", 1, "1200.00")))
    second = await shop.post("/purchases", receipt("u2", anna.card, ("a", 1, "1000.00")))

    assert first.json()["points_earned"] == "60.00"  # still Base (5 %) on this receipt
    assert second.json()["points_earned"] == "100.00"  # Gold (10 %) from the next one
    async with shop.rt.engine.connect() as conn:
        topics = (
            (
                await conn.execute(
                    select(t.outbox.c.topic).where(t.outbox.c.program_id == shop.program_id)
                )
            )
            .scalars()
            .all()
        )
    assert "tier.changed" in topics


async def test_a_discount_program_discounts_every_line_and_lookup_shows_the_percent(
    make_shop: Any,
) -> None:
    shop = await make_shop()
    await publish(shop, [], type="discount", discount={"percent": 3, "groups": {"staff": 15}})
    anna = await shop.customer()
    staff = await shop.customer()
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == staff.customer_id)
            .values(tags='["staff"]')
        )

    a = await shop.post(
        "/purchases/calculate",
        receipt("d1", anna.card, ("a", 1, "199.99"), redeem_points="max"),
    )
    s = await shop.post("/purchases/calculate", receipt("d2", staff.card, ("a", 1, "199.99")))
    la = await shop.get("/customers/lookup", params={"identifier": anna.card})
    ls = await shop.get("/customers/lookup", params={"identifier": staff.card})

    assert a.status_code == 200, a.text
    # 3 % of 199.99 = 5.9997 -> 6.00; 15 % = 29.9985 -> 30.00; no points in this program
    assert (a.json()["discount"], a.json()["points_earned"]) == ("6.00", "0.00")
    assert a.json()["points_redeemed"] == "0.00"  # "max" of nothing is nothing
    assert s.json()["discount"] == "30.00"
    assert (la.json()["discount_percent"], ls.json()["discount_percent"]) == ("3.00", "15.00")
