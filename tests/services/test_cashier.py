"""The cashier screen's service on both databases: the store's own terminal, the POS
lookup with the masked phone and recommendations, registration (audited), coupon and
gift card checks, and who may use it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from kopilka.services import cashier
from kopilka.services import giftcards as gc
from kopilka.services.audit import Actor
from kopilka.services.coupons import do_create_series
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.api.test_promotions_at_till import publish
from tests.conftest import Member, Shop

COFFEE_X2 = {
    "id": "coffee-x2",
    "name": "Double points on coffee",
    "lines": {"category": ["coffee"]},
    "effects": [{"kind": "earn_multiplier", "factor": 2}],
}
TEA_10 = {
    "id": "tea-10",
    "name": "Tea -10%",
    "lines": {"category": ["tea"]},
    "effects": [{"kind": "line_discount", "percent": 10}],
}
GOLD_ONLY = {
    "id": "gold-weekend",
    "name": "Gold: 3% back",
    "when": {"tier": ["gold"]},
    "effects": [{"kind": "earn_percent", "percent": 3}],
}
SILVER_BONUS = {
    "id": "silver-bonus",
    "name": "Silver: 50 points on any purchase over 1000",
    "when": {"tier": ["silver"], "basket": {"amount": {"min": 1000}}},
    "effects": [{"kind": "fixed_points", "points": 50}],
}
COUPON_ONLY = {
    "id": "coupon-20",
    "name": "Coupon: 20% off coffee",
    "when": {"coupon": ["COFFEE20"]},
    "lines": {"category": ["coffee"]},
    "effects": [{"kind": "line_discount", "percent": 20}],
}
TIERS = {
    "tiers": {
        "levels": [
            {"code": "silver", "name": "Silver", "threshold": 0},
            {"code": "gold", "name": "Gold", "threshold": 100000},
        ]
    }
}
PROMOTIONS = [COFFEE_X2, TEA_10, GOLD_ONLY, SILVER_BONUS, COUPON_ONLY]


async def store_id(shop: Shop) -> int:
    async with shop.rt.engine.connect() as conn:
        sid: int = (
            await conn.execute(
                select(t.stores.c.id).where(
                    t.stores.c.program_id == shop.program_id, t.stores.c.code == shop.store_code
                )
            )
        ).scalar_one()
    return sid


async def cashier_of(shop: Shop, role: str = "cashier") -> Actor:
    return Actor(
        "user",
        None,
        f"Test {role}",
        role,
        program_id=shop.program_id,
        store_id=await store_id(shop),
    )


async def buy_coffee(shop: Shop, member: Member, rid: str = "r1") -> dict[str, Any]:
    """One purchase through the POS API: calculate, then confirm."""
    body = {
        "receipt_id": rid,
        "identifier": member.card,
        "lines": [
            {
                "sku": "beans",
                "name": "Coffee beans",
                "category": "coffee",
                "quantity": 1,
                "price": "1200.00",
            },
            {"sku": "milk", "name": "Milk", "category": "dairy", "quantity": 2, "price": "90.00"},
        ],
    }
    calc = await shop.post("/purchases/calculate", body)
    assert calc.status_code == 200, calc.text
    conf = await shop.post(f"/purchases/{rid}/confirm")
    assert conf.status_code == 200, conf.text
    out: dict[str, Any] = conf.json()
    return out


async def screen(shop: Shop) -> tuple[Actor, Any]:
    actor = await cashier_of(shop)
    stores = await cashier.list_stores(shop.rt, actor, program_id=shop.program_id)
    store = cashier.pick_store(stores, None)
    assert store is not None
    return actor, await cashier.screen_terminal(shop.rt, actor, store)


async def test_the_screen_is_one_terminal_of_its_store_made_once_and_audited(
    make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    actor = await cashier_of(shop)
    [store] = await cashier.list_stores(rt, actor, program_id=shop.program_id)

    first = await cashier.screen_terminal(rt, actor, store)
    again = await cashier.screen_terminal(rt, actor, store)

    assert first == again
    assert (first.store_id, first.program_id, first.name) == (
        store.id,
        shop.program_id,
        "cashier screen",
    )
    assert first.store.code == shop.store_code and first.active
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(t.audit_log.c.action, t.audit_log.c.actor_name).where(
                    t.audit_log.c.object_type == "terminal",
                    t.audit_log.c.object_id == str(first.id),
                )
            )
        ).all()
        await conn.execute(
            update(t.terminals).where(t.terminals.c.id == first.id).values(status="disabled")
        )
        await conn.commit()
    assert [tuple(r) for r in rows] == [("terminal.create", "Test cashier")]
    with pytest.raises(ServiceError) as refused:
        await cashier.screen_terminal(rt, actor, store)
    assert refused.value.code == "terminal_disabled"


async def test_a_bound_cashier_sees_only_its_store_and_an_owner_picks_one(
    make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    other = await make_shop()
    actor = await cashier_of(shop)
    owner = Actor("user", None, "Owner", "owner", program_id=other.program_id)

    mine = await cashier.list_stores(rt, actor, program_id=other.program_id)
    owners = await cashier.list_stores(rt, owner, program_id=other.program_id)

    assert [s.code for s in mine] == [shop.store_code]  # its own store, whatever is asked
    assert [s.code for s in owners] == [other.store_code]
    assert cashier.pick_store(owners, None) == owners[0]  # the only store
    assert cashier.pick_store([*owners, *mine], None) is None  # several: the owner chooses
    assert cashier.pick_store([*owners, *mine], mine[0].id) == mine[0]


async def test_a_role_without_the_cashier_permission_is_refused(make_shop: Any) -> None:
    shop = await make_shop()
    support = Actor("user", None, "Support", "support", program_id=shop.program_id)

    with pytest.raises(ServiceError) as refused:
        await cashier.list_stores(shop.rt, support, program_id=shop.program_id)

    assert (refused.value.code, refused.value.status) == ("forbidden", 403)


async def test_lookup_shows_the_pos_answer_with_masked_phone_and_honest_recommendations(
    make_shop: Any,
) -> None:
    shop = await make_shop()
    await publish(shop, PROMOTIONS, **TIERS)
    member = await shop.customer(points=40, first_name="Анна", last_name="Смирнова")
    await buy_coffee(shop, member)
    _, term = await screen(shop)

    data = await cashier.lookup(shop.rt, term, member.card)
    by_phone = await cashier.lookup(shop.rt, term, member.phone[2:])  # typed without +7

    assert data["customer"]["name"] == "Анна С."
    assert data["customer"]["phone"] == member.phone[:-7] + "***-**-" + member.phone[-2:]
    assert data["tier"] == {"code": "silver", "name": "Silver"}
    assert data["balance"]["available"] != "0.00"
    assert [p["to_pay"] for p in data["last_purchases"]] == ["1380.00"]
    assert data["top_categories"] == ["coffee", "dairy"]
    # Coffee (he buys it) first, then what his tier gets; not tea (he never bought it),
    # not the gold tier's, not the coupon's.
    assert [(r["promotion"], r["why"]) for r in data["recommendations"]] == [
        ("coffee-x2", [{"kind": "category", "value": "coffee"}]),
        ("silver-bonus", [{"kind": "tier", "value": "Silver"}]),
    ]
    assert by_phone["customer"]["id"] == data["customer"]["id"]


async def test_an_unknown_or_empty_identifier_is_refused_by_field(make_shop: Any) -> None:
    shop = await make_shop()
    _, term = await screen(shop)

    with pytest.raises(ServiceError) as unknown:
        await cashier.lookup(shop.rt, term, "2799999999999")
    with pytest.raises(ServiceError) as empty:
        await cashier.lookup(shop.rt, term, "   ")

    assert (unknown.value.code, unknown.value.field) == ("unknown_identifier", "identifier")
    assert (empty.value.code, empty.value.field) == ("validation_failed", "identifier")


async def test_registration_is_the_pos_registration_audited_and_findable_by_phone(
    make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    actor, term = await screen(shop)
    form = {
        "phone": "8 (916) 555-12-34",
        "first_name": "Борис",
        "last_name": "Петров",
        "consent_sms": "on",
    }

    bad, errors = cashier.check_registration({"phone": "12", "card_number": "1234"})
    reg, none = cashier.check_registration(form)
    assert reg is not None and none == {}
    done = await cashier.do_register(rt, actor, term, reg)
    with pytest.raises(ServiceError) as twice:
        await cashier.do_register(rt, actor, term, reg)
    found = await cashier.lookup(rt, term, "+79165551234")

    assert bad is None
    assert errors == {
        "phone": "not a valid phone number",
        "first_name": "enter the customer's first name",
        "card_number": "a card number has 13 digits",
    }
    assert (reg.phone, reg.consent_sms, reg.consent_email) == ("+79165551234", True, False)
    assert (twice.value.code, twice.value.field) == ("already_registered", "phone")
    assert found["customer"]["id"] == done["customer_id"]
    assert found["customer"]["name"] == "Борис П."
    async with rt.engine.connect() as conn:
        home = (
            await conn.execute(
                select(t.customers.c.home_store_id).where(t.customers.c.id == done["customer_id"])
            )
        ).scalar_one()
        audited = (
            await conn.execute(
                select(t.audit_log.c.action, t.audit_log.c.actor_name).where(
                    t.audit_log.c.object_type == "customer",
                    t.audit_log.c.object_id == str(done["customer_id"]),
                )
            )
        ).all()
    assert home == term.store_id
    assert [tuple(r) for r in audited] == [("customer.register", "Test cashier")]


async def test_coupon_and_gift_card_checks_read_what_the_till_reads(make_shop: Any) -> None:
    shop = await make_shop()
    await publish(shop, [COUPON_ONLY])
    [code] = await do_create_series(
        shop.rt, program_code=shop.code, code="COFFEE20", name="20% off coffee", count=1
    )
    [(number, _pin)] = await gc.do_create_series(
        shop.rt, shop.code, code="GIFT", name="Gift", nominal=Decimal("1500"), count=1
    )
    _, term = await screen(shop)
    await gc.do_activate(shop.rt, term, number)

    coupon = await cashier.check_coupon(shop.rt, term, code.lower())
    card = await cashier.check_gift_card(shop.rt, term, number)
    with pytest.raises(ServiceError) as no_card:
        await cashier.check_gift_card(shop.rt, term, "12345")

    assert (coupon["valid"], coupon["max_uses"], coupon["uses"]) == (True, 1, 0)
    assert coupon["gives"] == [{"promotion": "coupon-20", "name": "Coupon: 20% off coffee"}]
    assert coupon["valid_from"] is None and coupon["valid_until"] is None
    assert (card["state"], card["balance"], card["available"]) == ("active", "1500.00", "1500.00")
    assert card["expires_at"] is not None
    assert no_card.value.code == "gift_card_not_found"


async def test_a_birthday_promotion_is_recommended_only_around_the_birthday(
    make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    birthday_x2 = {
        "id": "bday",
        "name": "Birthday: double points",
        "when": {"birthday": {"days_before": 3, "days_after": 3}},
        "effects": [{"kind": "earn_multiplier", "factor": 2}],
    }
    await publish(shop, [birthday_x2])
    today = rt.now().date()
    hers = await shop.customer()
    his = await shop.customer()
    async with rt.engine.begin() as conn:
        for member, day in ((hers, today), (his, today + timedelta(days=100))):
            born = day.replace(year=1992)  # a leap year: 29 February exists
            await conn.execute(
                update(t.customers)
                .where(t.customers.c.id == member.customer_id)
                .values(birthday=born)
            )
    _, term = await screen(shop)

    for_her = await cashier.lookup(rt, term, hers.card)
    for_him = await cashier.lookup(rt, term, his.card)

    assert [(r["promotion"], r["why"]) for r in for_her["recommendations"]] == [
        ("bday", [{"kind": "birthday", "value": ""}])
    ]
    assert for_him["recommendations"] == []
