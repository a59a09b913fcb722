"""Registering a customer at the till and confirming the phone with an SMS code."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select

from kopilka.store import tables as t
from tests.conftest import Clock


async def sms_codes(shop: Any, phone: str) -> list[str]:
    async with shop.rt.engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    select(t.outbox.c.payload)
                    .where(t.outbox.c.topic == "sms.send")
                    .order_by(t.outbox.c.id)
                )
            )
            .scalars()
            .all()
        )
    payloads = [orjson.loads(p) for p in rows]
    # delivered rows are redacted (no "to") once the worker sent them
    return [p["code"] for p in payloads if p.get("to") == phone]


async def test_a_new_customer_confirms_the_phone_with_the_code_sent_by_sms(
    make_shop: Any, clock: Clock
) -> None:
    shop = await make_shop()
    phone = "+79261234567"

    reg = await shop.post("/customers", {"phone": "8 (926) 123-45-67", "first_name": "Олег"})
    cid = reg.json()["customer_id"]
    codes = await sms_codes(shop, phone)
    wrong = await shop.post(
        f"/customers/{cid}/confirm-phone", {"code": "000000" if codes[0] != "000000" else "111111"}
    )
    ok = await shop.post(f"/customers/{cid}/confirm-phone", {"code": codes[0]})

    assert reg.status_code == 201, reg.text
    assert len(reg.json()["card"]["number"]) == 13
    assert len(codes) == 1
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_code"
    assert ok.status_code == 200 and ok.json()["phone_confirmed"] is True


async def test_a_new_code_can_be_asked_for_once_a_minute(make_shop: Any, clock: Clock) -> None:
    shop = await make_shop()
    phone = "+79261234568"
    reg = await shop.post("/customers", {"phone": phone})
    cid = reg.json()["customer_id"]

    too_soon = await shop.post(f"/customers/{cid}/resend-code")
    clock.advance(seconds=61)
    again = await shop.post(f"/customers/{cid}/resend-code")
    codes = await sms_codes(shop, phone)
    confirmed = await shop.post(f"/customers/{cid}/confirm-phone", {"code": codes[-1]})
    after = await shop.post(f"/customers/{cid}/resend-code")

    assert too_soon.status_code == 429 and too_soon.json()["retry_after_s"] == 60
    assert again.status_code == 200, again.text
    assert len(codes) == 2
    assert confirmed.status_code == 200, confirmed.text
    assert after.status_code == 409 and after.json()["code"] == "phone_already_confirmed"


async def test_a_program_with_welcome_points_credits_them_once_the_phone_is_confirmed(
    make_shop: Any,
) -> None:
    from tests.api.test_promotions_at_till import publish

    shop = await make_shop()
    await publish(
        shop,
        [],
        activities={"welcome": {"points": 150, "limit": 1}, "card_registered": {"points": 50}},
    )
    phone = "+79261234577"
    reg = await shop.post("/customers", {"phone": phone, "first_name": "Ира"})  # virtual card
    cid = reg.json()["customer_id"]
    codes = await sms_codes(shop, phone)

    ok = await shop.post(f"/customers/{cid}/confirm-phone", {"code": codes[0]})
    again = await shop.post(f"/customers/{cid}/confirm-phone", {"code": codes[0]})
    lookup = await shop.get("/customers/lookup", params={"identifier": phone})

    assert ok.status_code == 200, ok.text
    assert again.status_code != 200  # the code was used
    assert lookup.json()["balance"]["available"] == "150.00"


async def test_a_friend_registered_with_an_invite_code_brings_both_points_after_buying(
    make_shop: Any,
) -> None:
    from kopilka.services import referrals
    from tests.api.test_promotions_at_till import publish
    from tests.conftest import receipt

    shop = await make_shop()
    await publish(
        shop,
        [],
        activities={"referral_referrer": {"points": 300}, "referral_friend": {"points": 150}},
    )
    anna = await shop.customer()
    code = await referrals.invite_code_for(shop.rt, anna.customer_id)

    reg = await shop.post(
        "/customers", {"phone": "+79261234588", "first_name": "Вера", "invite_code": code}
    )
    bad = await shop.post("/customers", {"phone": "+79261234589", "invite_code": "NOSUCH22"})
    friend_card = reg.json()["card"]["number"]
    bought = await shop.post("/purchases", receipt("ref1", friend_card, ("a", 1, "100.00")))
    rewarded = await referrals.reward_pending_referrals(shop.rt)

    assert reg.status_code == 201, reg.text
    assert reg.json()["referral"] == {"status": "pending", "reason": None}
    assert bad.status_code == 201  # the registration stands
    assert bad.json()["referral"]["status"] == "rejected"
    assert bought.status_code == 200, bought.text
    assert rewarded == 1
    assert (await shop.balance(anna))["available"] == "300.00"
    friend = await shop.get("/customers/lookup", params={"identifier": friend_card})
    assert friend.json()["balance"]["available"] == "155.00"  # 150 + 5 % of 100


async def test_referrals_from_one_device_are_refused_as_a_farm(make_shop: Any) -> None:
    from kopilka.services import referrals

    shop = await make_shop()
    anna = await shop.customer()
    code = await referrals.invite_code_for(shop.rt, anna.customer_id)

    first = await shop.post(
        "/customers", {"phone": "+79261234591", "invite_code": code, "device_id": "dev-1"}
    )
    second = await shop.post(
        "/customers", {"phone": "+79261234592", "invite_code": code, "device_id": "dev-1"}
    )
    other = await shop.post(
        "/customers", {"phone": "+79261234593", "invite_code": code, "device_id": "dev-2"}
    )

    assert first.json()["referral"]["status"] == "pending"
    assert second.json()["referral"] == {"status": "rejected", "reason": "same_device"}
    assert other.json()["referral"]["status"] == "pending"


async def test_a_plastic_card_registered_at_the_till_earns_its_points_too(make_shop: Any) -> None:
    from kopilka.domain.identifiers import make_card_number
    from tests.api.test_promotions_at_till import publish

    shop = await make_shop()
    await publish(
        shop, [], activities={"welcome": {"points": 100}, "card_registered": {"points": 50}}
    )
    phone = "+79261234599"
    card = make_card_number("27", 990_000 + shop.program_id)
    reg = await shop.post("/customers", {"phone": phone, "card_number": card})
    codes = await sms_codes(shop, phone)

    ok = await shop.post(
        f"/customers/{reg.json()['customer_id']}/confirm-phone", {"code": codes[0]}
    )
    lookup = await shop.get("/customers/lookup", params={"identifier": card})

    assert ok.status_code == 200, ok.text
    assert lookup.json()["balance"]["available"] == "150.00"  # welcome 100 + card 50
