"""Coupons at the till, on both databases: a coupon gives what its promotion says, is held
at calculate, spent at confirm, released at cancel or expiry, returned at a full refund,
and is spent once when two tills race for it."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

from kopilka.services import coupons
from kopilka.services.coupons import do_create_series
from tests.api.test_promotions_at_till import publish
from tests.conftest import Clock, Shop, receipt

COFFEE_COUPON = {
    "id": "coffee-coupon",
    "name": "Coupon: 20% off coffee",
    "when": {"coupon": ["COFFEE20"]},
    "lines": {"sku": ["coffee"]},
    "effects": [{"kind": "line_discount", "percent": 20}],
}


async def program_code(shop: Shop) -> str:
    return shop.code


async def coffee_shop(make_shop: Any, **series: Any) -> tuple[Shop, list[str]]:
    shop = await make_shop()
    await publish(shop, [COFFEE_COUPON])
    codes = await do_create_series(
        shop.rt,
        program_code=await program_code(shop),
        code="COFFEE20",
        name="20% off coffee",
        count=series.pop("count", 3),
        seed="test",
        **series,
    )
    return shop, codes


def coffee(rid: str, *codes: str, identifier: str | None = None) -> dict[str, Any]:
    return receipt(
        rid, identifier, ("coffee", 1, "500.00"), ("milk", 1, "100.00"), coupons=list(codes)
    )


async def test_a_coupon_gives_its_promotion_and_is_spent_once(make_shop: Any) -> None:
    shop, codes = await coffee_shop(make_shop)

    first = await shop.post("/purchases/calculate", coffee("c1", codes[0].lower()))
    await shop.post("/purchases/c1/confirm")
    again = await shop.post("/purchases/calculate", coffee("c2", codes[0]))

    assert first.status_code == 200, first.text
    assert first.json()["discount"] == "100.00"  # 20 % of the coffee's 500
    assert first.json()["coupons"] == [
        {"code": codes[0], "series": "COFFEE20", "status": "applied"}
    ]
    assert again.status_code == 422
    assert (again.json()["code"], again.json()["field"]) == ("coupon_used", "coupons[0]")


async def test_two_tills_racing_for_one_coupon_spend_it_once(make_shop: Any) -> None:
    shop, codes = await coffee_shop(make_shop)

    answers = await asyncio.gather(
        *[shop.post("/purchases", coffee(f"r{i}", codes[0])) for i in range(4)]
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 422, 422, 422], [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 422} == {"coupon_used"}


async def test_a_cancelled_receipt_releases_its_coupon(make_shop: Any) -> None:
    shop, codes = await coffee_shop(make_shop)

    await shop.post("/purchases/calculate", coffee("k1", codes[1]))
    cancelled = await shop.post("/purchases/k1/cancel")
    again = await shop.post("/purchases/calculate", coffee("k2", codes[1]))

    assert cancelled.status_code == 200
    assert again.status_code == 200, again.text
    assert again.json()["discount"] == "100.00"


async def test_a_coupon_no_promotion_uses_is_not_taken(make_shop: Any) -> None:
    shop, codes = await coffee_shop(make_shop)

    tea = await shop.post(
        "/purchases", receipt("t1", None, ("tea", 1, "300.00"), coupons=[codes[2]])
    )
    later = await shop.post("/purchases", coffee("t2", codes[2]))

    assert tea.json()["coupons"][0]["status"] == "not_applicable"
    assert tea.json()["discount"] == "0.00"
    assert later.json()["coupons"][0]["status"] == "applied"


async def test_an_expired_hold_frees_the_coupon_and_a_late_confirm_cannot_take_it_twice(
    make_shop: Any, clock: Clock
) -> None:
    shop, codes = await coffee_shop(make_shop)
    await shop.post("/purchases/calculate", coffee("e1", codes[0]))

    clock.advance(seconds=901)  # the default hold_ttl_s is 900
    released = await coupons.expire_coupon_holds(shop.rt)
    other = await shop.post("/purchases", coffee("e2", codes[0]))
    late = await shop.post("/purchases/e1/confirm")

    assert released >= 1  # ours (the database is shared with other tests)
    assert other.status_code == 200, other.text
    assert late.status_code == 409
    assert late.json()["code"] == "hold_expired"


async def test_a_full_refund_returns_the_coupon(make_shop: Any) -> None:
    shop, codes = await coffee_shop(make_shop)
    await shop.post("/purchases", coffee("f1", codes[0]))

    partial = await shop.post("/purchases/f1/refunds", {"refund_id": "r1", "lines": [{"index": 1}]})
    still_used = await shop.post("/purchases/calculate", coffee("f2", codes[0]))
    full = await shop.post("/purchases/f1/refunds", {"refund_id": "r2"})
    reused = await shop.post("/purchases/calculate", coffee("f3", codes[0]))

    assert partial.json()["coupons_returned"] == 0
    assert still_used.json()["code"] == "coupon_used"
    assert full.json()["coupons_returned"] == 1
    assert reused.status_code == 200, reused.text


async def test_validity_dates_and_customer_binding(make_shop: Any, clock: Clock) -> None:
    shop = await make_shop()
    await publish(shop, [COFFEE_COUPON])
    anna = await shop.customer()
    boris = await shop.customer()
    now = shop.rt.now()
    clock.set(now)
    [dated] = await do_create_series(
        shop.rt,
        program_code=await program_code(shop),
        code="COFFEE20",
        name="week",
        count=1,
        valid_from=now + timedelta(days=1),
        valid_until=now + timedelta(days=8),
    )
    [annas] = await do_create_series(
        shop.rt,
        program_code=await program_code(shop),
        code="ANNA",
        name="for Anna",
        bound_to=[anna.customer_id],
    )

    early = await shop.post("/purchases/calculate", coffee("v1", dated))
    clock.advance(days=9)
    late = await shop.post("/purchases/calculate", coffee("v2", dated))
    wrong = await shop.post("/purchases/calculate", coffee("v3", annas, identifier=boris.card))
    nobody = await shop.post("/purchases/calculate", coffee("v4", annas))
    right = await shop.post("/purchases/calculate", coffee("v5", annas, identifier=anna.card))

    assert early.json()["code"] == "coupon_not_yet_valid"
    assert late.json()["code"] == "coupon_expired"
    assert wrong.json()["code"] == "coupon_not_for_customer"
    assert nobody.json()["code"] == "coupon_not_for_customer"
    assert right.status_code == 200, right.text


async def test_lookup_says_what_a_coupon_gives_and_stops_enumeration(make_shop: Any) -> None:
    shop, codes = await coffee_shop(make_shop)

    found = await shop.get(f"/coupons/{codes[0]}")
    unknown = [await shop.get(f"/coupons/ZZZZ-ZZZZ-Z{i:02d}") for i in range(21)]

    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["valid"], body["series"], body["max_uses"]) == (True, "COFFEE20", 1)
    assert body["gives"] == [{"promotion": "coffee-coupon", "name": "Coupon: 20% off coffee"}]
    assert [u.status_code for u in unknown[:20]] == [404] * 20
    assert unknown[20].status_code == 429
    assert unknown[20].json()["code"] == "rate_limited"


async def test_a_series_from_a_seed_is_reproducible_and_imported_codes_are_kept(
    make_shop: Any,
) -> None:
    shop = await make_shop()
    code = await program_code(shop)
    a = await do_create_series(shop.rt, program_code=code, code="A", name="a", count=5, seed="s1")
    shop2 = await make_shop()
    b = await do_create_series(
        shop2.rt, program_code=await program_code(shop2), code="A", name="a", count=5, seed="s1"
    )
    imported = await do_create_series(
        shop.rt, program_code=code, code="B", name="b", codes=["summer-2026", "WINTER2026"]
    )

    assert a == b
    assert len(set(a)) == 5
    assert imported == ["SUMMER2026", "WINTER2026"]


async def test_a_points_code_from_an_sms_credits_its_points_once(make_shop: Any) -> None:
    shop = await make_shop()
    anna = await shop.customer()
    [code] = await do_create_series(
        shop.rt,
        program_code=await program_code(shop),
        code="SMS100",
        name="100 points",
        count=1,
        points=Decimal("100"),
    )

    first, second = await asyncio.gather(
        shop.post(f"/coupons/{code}/redeem", {"identifier": anna.card}),
        shop.post(f"/coupons/{code}/redeem", {"identifier": anna.card}),
    )

    assert sorted([first.status_code, second.status_code]) == [200, 422]
    ok = first if first.status_code == 200 else second
    assert ok.json()["points"] == "100.00"
    assert (await shop.balance(anna))["available"] == "100.00"
    unknown = await shop.post("/coupons/ZZZZ/redeem", {"identifier": anna.card})
    assert (unknown.status_code, unknown.json()["field"]) == (404, "code")


async def test_a_holiday_surprise_samples_members_reproducibly(make_shop: Any) -> None:
    shop = await make_shop()
    members = [await shop.customer() for _ in range(6)]
    code = await program_code(shop)

    sent = await coupons.do_surprise(
        shop.rt, program_code=code, code="XMAS", name="surprise", count=3, seed="2026-12-31"
    )

    ids = sorted(m.customer_id for m in members)
    expected = sorted(random.Random("2026-12-31").sample(ids, 3))
    assert [c for c, _ in sent] == expected
    chosen = next(m for m in members if m.customer_id == expected[0])
    other = next(m for m in members if m.customer_id not in expected)
    own = await shop.post(
        "/purchases/calculate", receipt("x1", chosen.card, ("a", 1, "10.00"), coupons=[sent[0][1]])
    )
    foreign = await shop.post(
        "/purchases/calculate", receipt("x2", other.card, ("a", 1, "10.00"), coupons=[sent[0][1]])
    )
    assert own.status_code == 200, own.text
    assert foreign.json()["code"] == "coupon_not_for_customer"
