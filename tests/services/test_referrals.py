"""Referrals (both databases): invite codes, registering a friend and each refusal, the
reward for both after the friend's first confirmed purchase, given once."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from kopilka.services.referrals import (
    ALPHABET,
    ReferralError,
    do_register_referral,
    do_reward_after_purchase,
    invite_code_for,
    referral_of,
    reward_pending_referrals,
)
from kopilka.store import tables as t
from tests.conftest import Clock, Member, Shop, receipt
from tests.services.conftest import discrepancies

MSK = ZoneInfo("Europe/Moscow")


async def register(shop: Shop, friend: Member, code: str, **kw: Any) -> Any:
    return await do_register_referral(
        shop.rt,
        program_id=shop.program_id,
        friend_customer_id=friend.customer_id,
        invite_code=code,
        **kw,
    )


async def outcome(coro: Any) -> str:
    try:
        r = await coro
    except ReferralError as exc:
        return exc.code
    return str(r.state)


async def buy(shop: Shop, member: Member, rid: str) -> None:
    r = await shop.post("/purchases", receipt(rid, member.card, ("a", 1, "100.00")))
    assert r.status_code == 200, r.text


async def activity_points(shop: Shop, member: Member) -> dict[str, Decimal]:
    ae = t.activity_events
    async with shop.rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(ae.c.idempotency_key, ae.c.points).where(
                    ae.c.account_id == member.account_id
                )
            )
        ).all()
    return {r.idempotency_key.rsplit(":", 1)[1]: Decimal(r.points) for r in rows}


async def test_invite_code_is_readable_and_made_once(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer()

    codes = await asyncio.gather(*(invite_code_for(shop.rt, member.customer_id) for _ in range(4)))
    later = await invite_code_for(shop.rt, member.customer_id)

    assert len(set(codes)) == 1 and later == codes[0]
    assert len(later) == 8
    assert set(later) <= set(ALPHABET)
    assert not set("01OIL") & set(ALPHABET)


async def test_both_get_points_once_after_the_friends_first_purchase(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    anna, boris = await shop.customer(), await shop.customer()
    code = await invite_code_for(shop.rt, anna.customer_id)
    typed = f"{code[:4].lower()}-{code[4:].lower()}"

    pending = await register(shop, boris, typed)
    before = await do_reward_after_purchase(
        shop.rt, program_id=shop.program_id, friend_customer_id=boris.customer_id
    )
    await buy(shop, boris, "r1")
    rewarded = await do_reward_after_purchase(
        shop.rt, program_id=shop.program_id, friend_customer_id=boris.customer_id
    )
    again = await do_reward_after_purchase(
        shop.rt, program_id=shop.program_id, friend_customer_id=boris.customer_id
    )

    assert (pending.state, pending.referrer_customer_id) == ("pending", anna.customer_id)
    assert before is None  # no purchase yet
    assert rewarded is not None and rewarded.id == pending.id
    assert again is None
    assert await activity_points(shop, anna) == {"referrer": Decimal("200.00")}
    assert await activity_points(shop, boris) == {"friend": Decimal("100.00")}
    referral = await referral_of(shop.rt, boris.customer_id)
    assert referral is not None and referral.state == "rewarded"
    assert (await shop.balance(anna))["available"] == "200.00"
    assert await discrepancies(shop) == []


async def test_the_job_rewards_friends_who_bought(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    anna, boris, vera = await shop.customer(), await shop.customer(), await shop.customer()
    code = await invite_code_for(shop.rt, anna.customer_id)
    await register(shop, boris, code)
    await register(shop, vera, code)
    await buy(shop, boris, "r1")

    first = await reward_pending_referrals(shop.rt)
    second = await reward_pending_referrals(shop.rt)

    assert (first >= 1, second) == (True, 0)
    assert await activity_points(shop, anna) == {"referrer": Decimal("200.00")}
    vera_ref = await referral_of(shop.rt, vera.customer_id)
    assert vera_ref is not None and vera_ref.state == "pending"
    assert await discrepancies(shop) == []


async def test_concurrent_rewards_give_once(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    anna, boris = await shop.customer(), await shop.customer()
    await register(shop, boris, await invite_code_for(shop.rt, anna.customer_id))
    await buy(shop, boris, "r1")

    results = await asyncio.gather(
        *(
            do_reward_after_purchase(
                shop.rt, program_id=shop.program_id, friend_customer_id=boris.customer_id
            )
            for _ in range(4)
        )
    )

    assert sum(r is not None for r in results) == 1
    assert await activity_points(shop, anna) == {"referrer": Decimal("200.00")}
    assert await discrepancies(shop) == []


@pytest.mark.parametrize(
    "case",
    [
        "unknown_invite_code",
        "self_referral",
        "circular",
        "same_phone",
        "already_referred",
        "not_a_new_member",
    ],
)
async def test_refusals(make_shop: Any, case: str) -> None:
    shop: Shop = await make_shop()
    anna, boris, vera = await shop.customer(), await shop.customer(), await shop.customer()
    code = await invite_code_for(shop.rt, anna.customer_id)
    friend, expected = boris, case
    if case == "unknown_invite_code":
        code = "ZZZZ2222"
    elif case == "self_referral":
        friend = anna
    elif case == "circular":
        await register(shop, anna, await invite_code_for(shop.rt, boris.customer_id))
        expected = "self_referral"
    elif case == "same_phone":
        async with shop.rt.engine.begin() as conn:  # the same number written another way
            await conn.execute(
                update(t.customers)
                .where(t.customers.c.id == boris.customer_id)
                .values(phone="8" + anna.phone[2:])
            )
    elif case == "already_referred":
        await register(shop, boris, await invite_code_for(shop.rt, vera.customer_id))
    elif case == "not_a_new_member":
        await buy(shop, boris, "r1")

    got = await outcome(register(shop, friend, code))

    assert got == expected


async def test_referrer_cap_per_calendar_month(make_shop: Any, clock: Clock) -> None:
    shop: Shop = await make_shop()
    anna = await shop.customer()
    friends = [await shop.customer() for _ in range(4)]
    code = await invite_code_for(shop.rt, anna.customer_id)
    clock.set(datetime(2026, 3, 31, 20, 0, tzinfo=MSK))

    march = [await outcome(register(shop, f, code, cap_per_month=2)) for f in friends[:3]]
    clock.set(datetime(2026, 4, 1, 0, 0, tzinfo=MSK))
    april = await outcome(register(shop, friends[3], code, cap_per_month=2))

    assert march == ["pending", "pending", "referral_limit_reached"]
    assert april == "pending"


async def test_concurrent_registrations_respect_the_cap_exactly(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    anna = await shop.customer()
    friends = [await shop.customer() for _ in range(5)]
    code = await invite_code_for(shop.rt, anna.customer_id)

    results = await asyncio.gather(
        *(outcome(register(shop, f, code, cap_per_month=2)) for f in friends)
    )

    assert sorted(results) == ["pending"] * 2 + ["referral_limit_reached"] * 3


async def test_one_friend_registering_twice_at_once_is_referred_once(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    anna, vera, boris = await shop.customer(), await shop.customer(), await shop.customer()
    codes = [
        await invite_code_for(shop.rt, anna.customer_id),
        await invite_code_for(shop.rt, vera.customer_id),
    ]

    results = await asyncio.gather(*(outcome(register(shop, boris, c)) for c in codes))

    assert sorted(results) == ["already_referred", "pending"]
