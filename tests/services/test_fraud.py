"""Fraud alerts end to end on both databases: each rule's scenario made through the real
POS API and services raises exactly one alert with the right subject and evidence; the
same scenario one step short raises none; the worker's scan run again raises nothing new;
the officer's actions are audited and a blocked card is refused at the till."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from kopilka.services import audit, cards, customer_admin, fraud, giftcards
from kopilka.services.errors import ServiceError
from kopilka.store import tables as t
from tests.conftest import Member, Shop, receipt

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
OFFICER_ROLE = "security"


def officer(shop: Shop, name: str = "Олег Охранов") -> audit.Actor:
    return audit.Actor("user", 900_000 + shop.program_id, name, role=OFFICER_ROLE)


async def buy(
    shop: Shop, rid: str, member: Member | None, amount: str = "1000.00", **extra: Any
) -> dict[str, Any]:
    r = await shop.post(
        "/purchases", receipt(rid, member.card if member else None, ("a", 1, amount), **extra)
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def alerts(shop: Shop) -> list[fraud.Alert]:
    rows, _ = await fraud.list_alerts(shop.rt, officer(shop), shop.program_id)
    return [await fraud.get_alert(shop.rt, officer(shop), shop.program_id, r.id) for r in rows]


def receipt_ids(alert: fraud.Alert) -> list[str]:
    return [x["receipt_id"] for x in alert.evidence if x["kind"] == "receipt"]


# --- 1. one card on many receipts of one cashier -------------------------------------------


async def test_a_cashier_swiping_one_card_five_times_in_a_day_raises_one_alert(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    card = await shop.customer()
    for i in range(5):
        await buy(shop, f"c{i}", card, cashier_id="cashier-7")
        clock.advance(hours=4)  # 0, 4, 8, 12, 16 h: all within 24 h

    first = await fraud.scan(shop.rt, program_id=shop.program_id)
    again = await fraud.scan(shop.rt, program_id=shop.program_id)

    [alert] = await alerts(shop)
    assert (first.created, again.created, again.updated) == (1, 0, 0)
    assert alert.row.rule == "cashier_card"
    assert (alert.row.subject_type, alert.row.subject_label) == ("card", card.card)
    assert alert.row.card_number == card.card
    assert receipt_ids(alert) == ["c0", "c1", "c2", "c3", "c4"]
    assert {x["cashier_id"] for x in alert.evidence} == {"cashier-7"}


async def test_four_receipts_of_a_card_by_one_cashier_raise_nothing(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    card = await shop.customer()
    for i in range(4):
        await buy(shop, f"c{i}", card, cashier_id="cashier-7")
        clock.advance(hours=4)
    # the fifth is by another cashier, and a sixth by the same one comes a day too late
    await buy(shop, "c4", card, cashier_id="cashier-8")
    clock.advance(hours=30)
    await buy(shop, "c5", card, cashier_id="cashier-7")

    result = await fraud.scan(shop.rt, program_id=shop.program_id)

    assert result.created == 0
    assert await alerts(shop) == []


# --- 2. earned on many receipts at one till, then burned ------------------------------------


async def test_points_earned_on_four_receipts_at_one_till_then_burned_raise_one_alert(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop(earn_percent="10", burn_max_percent="50")
    card = await shop.customer()
    for i in range(4):  # strangers' purchases, 100 points each on the cashier's card
        await buy(shop, f"e{i}", card)
        clock.advance(hours=2)
    burn = await buy(shop, "burn", card, redeem_points=400)

    await fraud.scan(shop.rt, program_id=shop.program_id)

    [alert] = await alerts(shop)
    assert burn["points_redeemed"] == "400.00"
    assert alert.row.rule == "earn_then_burn" and alert.row.severity == "high"
    assert alert.row.subject_label == card.card
    assert [(x["receipt_id"], x["role"]) for x in alert.evidence] == [
        ("e0", "earned"),
        ("e1", "earned"),
        ("e2", "earned"),
        ("e3", "earned"),
        ("burn", "burned"),
    ]


async def test_three_earning_receipts_then_a_burn_raise_nothing(make_shop: Any, clock: Any) -> None:
    clock.set(T0)
    shop = await make_shop(earn_percent="10", burn_max_percent="50")
    card = await shop.customer()
    for i in range(3):
        await buy(shop, f"e{i}", card)
        clock.advance(hours=2)
    await buy(shop, "burn", card, redeem_points=300)

    await fraud.scan(shop.rt, program_id=shop.program_id)

    assert await alerts(shop) == []


# --- 3. refund after burning -----------------------------------------------------------------


async def test_a_receipt_paid_with_points_refunded_next_day_raises_one_alert(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop(burn_max_percent="50")
    card = await shop.customer(points=500)
    await buy(shop, "p1", card, redeem_points=300)
    clock.advance(days=1)
    r = await shop.post("/purchases/p1/refunds", {"refund_id": "back-1"})
    assert r.status_code == 200, r.text

    await fraud.scan(shop.rt, program_id=shop.program_id)
    again = await fraud.scan(shop.rt, program_id=shop.program_id)

    [alert] = await alerts(shop)
    assert again.created == again.updated == 0
    assert alert.row.rule == "refund_after_burn" and alert.row.severity == "medium"
    assert alert.row.subject_label == card.card
    kinds = [(x["kind"], x["receipt_id"]) for x in alert.evidence]
    assert kinds == [("receipt", "p1"), ("refund", "p1")]
    assert [x["points_redeemed"] for x in alert.evidence if x["kind"] == "receipt"] == ["300.00"]


async def test_a_refund_after_the_window_or_without_points_raises_nothing(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop(burn_max_percent="50")
    card = await shop.customer(points=500)
    await buy(shop, "p1", card, redeem_points=300)
    await buy(shop, "p2", card)  # no points burned
    clock.advance(days=3, minutes=1)  # the window is 3 days
    for rid in ("p1", "p2"):
        r = await shop.post(f"/purchases/{rid}/refunds", {"refund_id": "back"})
        assert r.status_code == 200, r.text

    await fraud.scan(shop.rt, program_id=shop.program_id)

    assert await alerts(shop) == []


# --- 4. many cards on one phone, many accounts from one device --------------------------------


async def _replace(shop: Shop, member: Member, times: int) -> list[str]:
    numbers = [member.card]
    for i in range(times):
        new = f"{shop.program_id % 1000:03d}{i}".rjust(12, "9")
        from kopilka.domain.identifiers import make_card_number

        number = make_card_number("28", int(new) % 10**9)
        await cards.do_replace_card(shop.rt, numbers[-1], number, program_id=shop.program_id)
        numbers.append(number)
    return numbers


async def test_a_fourth_card_on_one_phone_raises_one_alert(make_shop: Any, clock: Any) -> None:
    clock.set(T0)
    shop = await make_shop()
    member = await shop.customer()
    numbers = await _replace(shop, member, 3)

    await fraud.scan(shop.rt, program_id=shop.program_id)

    [alert] = await alerts(shop)
    assert alert.row.rule == "phone_cards"
    assert (alert.row.subject_type, alert.row.subject_label) == ("customer", member.phone)
    assert [x["number"] for x in alert.evidence] == numbers
    assert alert.row.card_number == numbers[-1]  # the active card is the one to block


async def test_three_cards_on_one_phone_raise_nothing(make_shop: Any, clock: Any) -> None:
    clock.set(T0)
    shop = await make_shop()
    member = await shop.customer()
    await _replace(shop, member, 2)

    await fraud.scan(shop.rt, program_id=shop.program_id)

    assert await alerts(shop) == []


async def _register(shop: Shop, n: int, device: str) -> None:
    for i in range(n):
        r = await shop.post(
            "/customers",
            {"phone": f"+7916{shop.program_id % 1000:03d}{i:04d}", "device_id": device},
        )
        assert r.status_code == 201, r.text


async def test_four_registrations_from_one_device_raise_one_alert(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    await _register(shop, 4, "android-ab12")

    await fraud.scan(shop.rt, program_id=shop.program_id)

    [alert] = await alerts(shop)
    assert (alert.row.rule, alert.row.subject_type) == ("phone_cards", "device")
    assert alert.row.subject_label == "android-ab12"
    assert len([x for x in alert.evidence if x["kind"] == "customer"]) == 4


async def test_three_registrations_from_one_device_raise_nothing(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    await _register(shop, 3, "android-ab12")

    await fraud.scan(shop.rt, program_id=shop.program_id)

    assert await alerts(shop) == []


# --- 5. bursts on one terminal --------------------------------------------------------------


async def test_twenty_card_receipts_in_ten_minutes_at_one_terminal_raise_one_alert(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    members = [await shop.customer() for _ in range(4)]
    for i in range(20):
        await buy(shop, f"b{i}", members[i % 4], amount="100.00")
        clock.advance(seconds=25)  # 20 receipts in 7 min 55 s
    first = await fraud.scan(shop.rt, program_id=shop.program_id)

    [alert] = await alerts(shop)
    assert first.created == 1
    assert (alert.row.rule, alert.row.subject_type) == ("terminal_burst", "terminal")
    assert receipt_ids(alert) == [f"b{i}" for i in range(20)]


async def test_nineteen_card_receipts_in_ten_minutes_raise_nothing(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    members = [await shop.customer() for _ in range(4)]
    for i in range(19):
        await buy(shop, f"b{i}", members[i % 4], amount="100.00")
        clock.advance(seconds=25)
    for i in range(5):  # receipts without a card do not count
        await buy(shop, f"n{i}", None, amount="100.00")

    await fraud.scan(shop.rt, program_id=shop.program_id)

    assert await alerts(shop) == []


# --- 6. manual adjustments above a limit ----------------------------------------------------


def support(shop: Shop) -> audit.Actor:
    return audit.Actor(
        "user", 800_000 + shop.program_id, "Сергей Саппортов", role="support", program_id=None
    )


async def test_an_adjustment_of_1500_points_raises_one_alert_naming_who_made_it(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    member = await shop.customer()
    await customer_admin.adjust(
        shop.rt, support(shop), shop.program_id, member.customer_id, Decimal("1500"),
        reason="compensation for a complaint",
    )  # fmt: skip

    await fraud.scan(shop.rt, program_id=shop.program_id)

    [alert] = await alerts(shop)
    assert (alert.row.rule, alert.row.subject_type) == ("big_adjustment", "user")
    assert alert.row.subject_label == "Сергей Саппортов"
    assert alert.row.customer_id == member.customer_id
    [item] = alert.evidence
    assert (item["amount"], item["reason"]) == ("1500.00", "compensation for a complaint")


async def test_an_adjustment_just_under_the_limit_raises_nothing(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    member = await shop.customer(points=2000)
    await customer_admin.adjust(
        shop.rt, support(shop), shop.program_id, member.customer_id, Decimal("-999.99"),
        reason="a mistaken receipt",
    )  # fmt: skip

    await fraud.scan(shop.rt, program_id=shop.program_id)

    assert await alerts(shop) == []


# --- 7. gift-card PIN guessing --------------------------------------------------------------


async def _gift_card(shop: Shop) -> tuple[str, str]:
    [(number, pin)] = await giftcards.do_create_series(
        shop.rt, shop.code, code="G1", name="Gift", nominal=Decimal("1000"), count=1
    )
    r = await shop.post(f"/gift-cards/{number}/activate", {})
    assert r.status_code == 200, r.text
    return number, pin


async def _pay_with(shop: Shop, rid: str, number: str, pin: str) -> int:
    body = receipt(rid, None, ("a", 1, "500.00"))
    body["gift_cards"] = [{"number": number, "pin": pin, "amount": "500.00"}]
    return (await shop.post("/purchases", body)).status_code


def _wrong(pin: str) -> str:
    return f"{(int(pin) + 1) % 10000:04d}"


async def test_three_wrong_pins_for_a_gift_card_raise_one_alert(make_shop: Any, clock: Any) -> None:
    clock.set(T0)
    shop = await make_shop()
    number, pin = await _gift_card(shop)
    statuses = [await _pay_with(shop, f"g{i}", number, _wrong(pin)) for i in range(3)]

    await fraud.scan(shop.rt, program_id=shop.program_id)
    again = await fraud.scan(shop.rt, program_id=shop.program_id)

    [alert] = await alerts(shop)
    assert statuses == [422, 422, 422]
    assert again.created == again.updated == 0
    assert (alert.row.rule, alert.row.subject_type) == ("pin_guessing", "gift_card")
    assert alert.row.subject_label == number
    assert [x["failures"] for x in alert.evidence] == [3]


async def test_two_wrong_pins_then_the_right_one_raise_nothing(make_shop: Any, clock: Any) -> None:
    clock.set(T0)
    shop = await make_shop()
    number, pin = await _gift_card(shop)
    statuses = [await _pay_with(shop, f"g{i}", number, _wrong(pin)) for i in range(2)]
    statuses.append(await _pay_with(shop, "ok", number, pin))

    await fraud.scan(shop.rt, program_id=shop.program_id)

    assert statuses == [422, 422, 200]
    assert await alerts(shop) == []


# --- the worker, the queue, the officer ----------------------------------------------------


async def _cashier_scenario(shop: Shop, clock: Any) -> Member:
    card = await shop.customer()
    for i in range(5):
        await buy(shop, f"c{i}", card, cashier_id="cashier-7")
        clock.advance(minutes=30)
    return card


async def test_new_evidence_updates_the_open_alert_and_one_event_goes_out(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    card = await _cashier_scenario(shop, clock)
    await fraud.scan(shop.rt, program_id=shop.program_id)
    await buy(shop, "c5", card, cashier_id="cashier-7")
    clock.advance(minutes=1)

    second = await fraud.scan(shop.rt, program_id=shop.program_id)

    [alert] = await alerts(shop)
    assert (second.created, second.updated) == (0, 1)
    assert receipt_ids(alert) == [f"c{i}" for i in range(6)]
    async with shop.rt.engine.connect() as conn:
        events = (
            await conn.execute(
                select(t.outbox.c.payload).where(
                    t.outbox.c.program_id == shop.program_id, t.outbox.c.topic == "fraud.alert"
                )
            )
        ).all()
    assert len(events) == 1 and f'"alert_id":{alert.row.id}' in events[0][0]


async def test_the_officer_resolves_blocks_the_card_and_the_till_refuses_it(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    card = await _cashier_scenario(shop, clock)
    await fraud.scan(shop.rt, program_id=shop.program_id)
    [alert] = await alerts(shop)
    who = officer(shop)

    await fraud.do_assign(shop.rt, who, shop.program_id, alert.row.id)
    await fraud.do_block_card(
        shop.rt, who, shop.program_id, alert.row.id, reason="cashier used own card"
    )
    await fraud.do_close(
        shop.rt, who, shop.program_id, alert.row.id, state="resolved", note="cashier warned"
    )
    till = await shop.post("/purchases", receipt("after", card.card, ("a", 1, "10.00")))
    rescan = await fraud.scan(shop.rt, program_id=shop.program_id)

    done = await fraud.get_alert(shop.rt, who, shop.program_id, alert.row.id)
    assert (done.row.state, done.row.assignee_name, done.resolution) == (
        "resolved",
        "Олег Охранов",
        "cashier warned",
    )
    assert done.card_status == "blocked"
    assert till.status_code == 422 and till.json()["code"] == "card_blocked"
    assert rescan.created == 0  # the resolved situation is not raised again
    async with shop.rt.engine.connect() as conn:
        actions = (
            (
                await conn.execute(
                    select(t.audit_log.c.action)
                    .where(t.audit_log.c.program_id == shop.program_id)
                    .order_by(t.audit_log.c.id)
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["fraud.assign", "card.block", "fraud.block_card", "fraud.resolve"]


async def test_a_support_agent_may_not_act_on_alerts_and_a_note_is_required(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    await _cashier_scenario(shop, clock)
    await fraud.scan(shop.rt, program_id=shop.program_id)
    [alert] = await alerts(shop)

    try:
        await fraud.do_assign(shop.rt, support(shop), shop.program_id, alert.row.id)
        raised: Any = None
    except ServiceError as exc:
        raised = exc
    try:
        await fraud.do_close(
            shop.rt, officer(shop), shop.program_id, alert.row.id, state="dismissed", note=" "
        )
        no_note: Any = None
    except ServiceError as exc:
        no_note = exc

    assert raised is not None and raised.code == "forbidden"
    assert no_note is not None and (no_note.code, no_note.field) == ("validation_failed", "note")


async def test_thresholds_are_per_program_and_a_disabled_rule_raises_nothing(
    make_shop: Any, clock: Any
) -> None:
    clock.set(T0)
    shop = await make_shop()
    who = officer(shop)
    await fraud.do_save_settings(
        shop.rt, who, shop.program_id, {"cashier_card_receipts": "3"}, disabled=["terminal_burst"]
    )
    card = await shop.customer()
    for i in range(3):
        await buy(shop, f"c{i}", card, cashier_id="k1")

    await fraud.scan(shop.rt, program_id=shop.program_id)
    try:
        await fraud.do_save_settings(shop.rt, who, shop.program_id, {"burst_minutes": "0"})
        bad: Any = None
    except ServiceError as exc:
        bad = exc

    [alert] = await alerts(shop)
    assert alert.row.rule == "cashier_card" and len(alert.evidence) == 3
    settings = await fraud.load_settings(shop.rt, shop.program_id)
    assert (settings.cashier_card_receipts, settings.disabled) == (3, ("terminal_burst",))
    assert bad is not None and bad.field == "burst_minutes"


async def test_a_receipt_confirmed_after_a_scan_with_an_earlier_time_is_still_seen(
    make_shop: Any, clock: Any
) -> None:
    """The watermark overlaps: a row committed late with an earlier time is read."""
    clock.set(T0)
    shop = await make_shop()
    card = await shop.customer()
    for i in range(4):
        await buy(shop, f"c{i}", card, cashier_id="k1")
    clock.advance(seconds=30)
    await fraud.scan(shop.rt, program_id=shop.program_id)
    clock.set(T0 + timedelta(seconds=10))  # the fifth receipt carries an earlier time
    await buy(shop, "c4", card, cashier_id="k1")
    clock.set(T0 + timedelta(seconds=40))

    await fraud.scan(shop.rt, program_id=shop.program_id)

    [alert] = await alerts(shop)
    assert receipt_ids(alert) == ["c0", "c1", "c2", "c3", "c4"]
    async with shop.rt.engine.connect() as conn:
        n = (
            await conn.execute(
                select(func.count())
                .select_from(t.fraud_alerts)
                .where(t.fraud_alerts.c.program_id == shop.program_id)
            )
        ).scalar()
    assert n == 1
