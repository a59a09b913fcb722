"""Separate processes released by a barrier against one database (issue 10): 4
processes, each with its own app and connection pool, 16 calls in flight each.  Exactly
one effect where one is allowed, never an overdraft, the ledger whole afterwards.
The figures (retry rate, p99) come from ``bench/races.py``; here only the invariants."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import pytest

from kopilka.services.runtime import Runtime
from tests.api.test_coupons import coffee, coffee_shop
from tests.conftest import receipt
from tests.races import race
from tests.services.conftest import MakeShop, add_tills, discrepancies
from tests.services.test_concurrency import entries_of

pytestmark = pytest.mark.slow


async def run_race(rt: Runtime, calls: list[tuple[str, str, str, object]]) -> list[object]:
    return await asyncio.to_thread(race, rt.url, calls, processes=4)


async def test_64_confirms_of_one_receipt_apply_once_and_answer_alike(
    make_shop: MakeShop,
) -> None:
    shop = await make_shop(burn_max_percent="100", earn_percent="10")
    member = await shop.customer(points=1000)
    body = receipt("once", member.card, ("a", 1, "500.00"), redeem_points="100")
    assert (await shop.post("/purchases/calculate", body)).status_code == 200

    answers = await run_race(shop.rt, [("POST", "/purchases/once/confirm", shop.key, None)] * 64)

    assert Counter(a.status for a in answers) == {200: 64}  # type: ignore[attr-defined]
    assert len({a.body for a in answers}) == 1  # type: ignore[attr-defined]
    assert await entries_of(shop, "once") == [
        ("hold", Decimal("0.00")),
        ("burn", Decimal("-100.00")),
        ("earn", Decimal("40.00")),
    ]
    assert (await shop.balance(member))["available"] == "940.00"
    assert await discrepancies(shop) == []


async def test_50_burns_of_100_on_a_balance_of_1000_exactly_10_win(make_shop: MakeShop) -> None:
    shop = await make_shop(burn_max_percent="100", earn_percent="0")
    member = await shop.customer(points=1000)
    tills = await add_tills(shop, 5)
    calls = [
        (
            "POST",
            "/purchases",
            tills[i % 5].key,
            receipt(f"b{i}", member.card, ("a", 1, "100.00"), redeem_points="100"),
        )
        for i in range(50)
    ]

    answers = await run_race(shop.rt, calls)

    outcomes = Counter((a.status, a.code) for a in answers)  # type: ignore[attr-defined]
    assert outcomes == {(200, ""): 10, (422, "insufficient_points"): 40}
    assert (await shop.balance(member))["available"] == "0.00"
    assert await discrepancies(shop) == []


async def test_64_uses_of_one_single_use_coupon_one_wins(make_shop: MakeShop) -> None:
    shop, codes = await coffee_shop(make_shop, count=1)
    calls = [("POST", "/purchases", shop.key, coffee(f"c{i}", codes[0])) for i in range(64)]

    answers = await run_race(shop.rt, calls)

    outcomes = Counter((a.status, a.code) for a in answers)  # type: ignore[attr-defined]
    assert outcomes == {(200, ""): 1, (422, "coupon_used"): 63}
