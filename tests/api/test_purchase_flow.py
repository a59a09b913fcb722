"""The POS flow end to end on both databases: what a till and a customer would notice."""

from __future__ import annotations

from typing import Any

from tests.conftest import receipt


async def test_purchase_earns_five_percent_of_paid_amount(make_shop: Any) -> None:
    shop = await make_shop(earn_percent="5", points_step="0.01")
    member = await shop.customer()

    r = await shop.post(
        "/purchases", receipt("r1", member.card, ("coffee", 2, "1500.00"), ("milk", 1, 89.90))
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["to_pay"] == "3089.90"
    assert body["points_earned"] == "154.49"  # 5% of 3089.90 = 154.495, floored to 0.01
    assert [x["points_earned"] for x in body["lines"]] == ["150.00", "4.49"]  # largest remainder
    assert (await shop.balance(member))["available"] == "154.49"


async def test_calculate_holds_points_and_confirm_burns_them(make_shop: Any) -> None:
    shop = await make_shop(earn_percent="10", burn_max_percent="50")
    member = await shop.customer(points=300)

    calc = await shop.post(
        "/purchases/calculate", receipt("r1", member.card, ("a", 1, "1000.00"), redeem_points=200)
    )
    held = await shop.balance(member)
    conf = await shop.post("/purchases/r1/confirm")
    after = await shop.balance(member)

    assert calc.status_code == 200, calc.text
    assert calc.json()["to_pay"] == "800.00"
    assert held == {"available": "100.00", "pending": "0.00", "held": "200.00", "debt": "0.00"}
    assert conf.status_code == 200, conf.text
    assert conf.json()["points_earned"] == "80.00"
    assert after["available"] == "180.00" and after["held"] == "0.00"


async def test_cancel_releases_the_hold(make_shop: Any) -> None:
    shop = await make_shop(burn_max_percent="100")
    member = await shop.customer(points=50)

    await shop.post(
        "/purchases/calculate", receipt("r1", member.card, ("a", 1, "100.00"), redeem_points="max")
    )
    r = await shop.post("/purchases/r1/cancel")

    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert (await shop.balance(member))["available"] == "50.00"
    assert (await shop.post("/purchases/r1/confirm")).json()["code"] == "receipt_cancelled"


async def test_same_calculate_twice_gives_the_same_bytes(make_shop: Any) -> None:
    shop = await make_shop()
    member = await shop.customer(points=100)
    body = receipt("r1", member.card, ("a", 1, "100.00"), redeem_points="10")

    first = await shop.post("/purchases/calculate", body)
    second = await shop.post("/purchases/calculate", body)
    other = await shop.post("/purchases/calculate", {**body, "redeem_points": "20"})

    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    assert (await shop.balance(member))["held"] == "10.00"


async def test_non_member_receipt_is_recorded_without_points(make_shop: Any) -> None:
    shop = await make_shop()

    r = await shop.post("/purchases", receipt("anon-1", None, ("a", "1.5", "99.99")))

    assert r.status_code == 200, r.text
    assert r.json()["amount"] == "149.99"  # 1.5 x 99.99 = 149.985 -> half up
    assert r.json()["points_earned"] == "0.00" and r.json()["balance"] is None


async def test_partial_then_full_refund_returns_exactly_what_was_bought(make_shop: Any) -> None:
    shop = await make_shop(earn_percent="7", points_step="0.01", burn_max_percent="100")
    member = await shop.customer(points=100)
    await shop.post(
        "/purchases",
        receipt("r1", member.card, ("a", 3, "33.33"), ("b", 1, "10.00"), redeem_points="37"),
    )

    parts = [
        await shop.post(
            "/purchases/r1/refunds", {"refund_id": f"x{i}", "lines": [{"index": 0, "quantity": 1}]}
        )
        for i in range(3)
    ]
    rest = await shop.post("/purchases/r1/refunds", {"refund_id": "x9"})
    too_many = await shop.post(
        "/purchases/r1/refunds", {"refund_id": "x10", "lines": [{"index": 0, "quantity": 1}]}
    )

    assert all(p.status_code == 200 for p in parts), [p.text for p in parts]
    assert rest.status_code == 200, rest.text
    assert (await shop.balance(member))["available"] == "100.00"
    assert too_many.status_code == 422 and too_many.json()["code"] == "refund_exceeds_purchase"


async def test_retry_of_a_calculate_that_holds_all_points_gets_the_first_answer(
    make_shop: Any,
) -> None:
    shop = await make_shop(burn_max_percent="100")
    member = await shop.customer(points=100)
    body = receipt("r1", member.card, ("a", 1, "500.00"), redeem_points=100)

    first = await shop.post("/purchases/calculate", body)
    retry = await shop.post("/purchases/calculate", {**body, "redeem_points": "100.00"})

    assert first.status_code == 200, first.text
    assert retry.status_code == 200, retry.text
    assert retry.content == first.content


async def test_a_refused_call_with_a_used_receipt_id_is_a_conflict(make_shop: Any) -> None:
    shop = await make_shop(burn_max_percent="100")
    member = await shop.customer(points=100)
    await shop.post(
        "/purchases/calculate", receipt("r1", member.card, ("a", 1, "500.00"), redeem_points=100)
    )

    other = await shop.post(
        "/purchases/calculate", receipt("r1", member.card, ("a", 1, "500.00"), redeem_points=90)
    )

    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"


async def test_goods_can_be_returned_at_another_till_of_the_store(make_shop: Any) -> None:
    from kopilka.services.terminals import do_add_terminal

    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    await shop.post("/purchases", receipt("r1", member.card, ("a", 2, "100.00")))
    other_key = await do_add_terminal(shop.rt, store_code=shop.store_code, name="till 2")
    other = {"Authorization": f"Bearer {other_key}"}

    r = await shop.client.post(
        "/api/pos/v1/purchases/r1/refunds", json={"refund_id": "x1"}, headers=other
    )

    assert r.status_code == 200, r.text
    assert r.json()["points_taken_back"] == "20.00"
    assert (await shop.balance(member))["available"] == "0.00"


async def test_lookup_shows_the_last_five_purchases_newest_first(
    make_shop: Any, clock: Any
) -> None:
    from datetime import UTC, datetime

    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    clock.set(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    for i in range(7):
        clock.advance(hours=1)
        await shop.post("/purchases", receipt(f"r{i}", member.card, ("a", 1, f"{i + 1}0.00")))

    r = await shop.get("/customers/lookup", params={"identifier": member.card})

    last = r.json()["last_purchases"]
    assert [x["receipt_id"] for x in last] == ["r6", "r5", "r4", "r3", "r2"]
    assert last[0]["to_pay"] == "70.00" and last[0]["points_earned"] == "7.00"


async def test_a_confirm_that_repeats_the_whole_receipt_is_accepted(make_shop: Any) -> None:
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    body = receipt("r1", member.card, ("a", 1, "100.00"))
    await shop.post("/purchases/calculate", body)

    r = await shop.post("/purchases/r1/confirm", body)

    assert r.status_code == 200, r.text
    assert r.json()["points_earned"] == "10.00"


async def test_points_that_cannot_be_taken_back_are_reported_per_line(make_shop: Any) -> None:
    shop = await make_shop(earn_percent="10", burn_max_percent="100")
    member = await shop.customer()
    await shop.post(
        "/purchases", receipt("r1", member.card, ("a", 1, "300.00"), ("b", 1, "200.00"))
    )  # earns 30 + 20
    await shop.post(
        "/purchases", receipt("r2", member.card, ("c", 1, "45.00"), redeem_points="45")
    )  # spends 45 of the 50

    r = await shop.post("/purchases/r1/refunds", {"refund_id": "x1"})

    body = r.json()
    # 50 owed, 5 left (the r2 purchase earned nothing: all of it was paid with points)
    assert (body["points_taken_back"], body["points_uncollected"]) == ("5.00", "45.00")
    assert [(x["points_taken_back"], x["points_uncollected"]) for x in body["lines"]] == [
        ("3.00", "27.00"),  # 45 x 30/50 = 27
        ("2.00", "18.00"),  # 45 x 20/50 = 18
    ]
