"""The coalition of the worked example in docs/coalition.md: partner A (the shop's own,
"Аптека") and partner B ("Кофейня"), each with a store and a till, 10 % earned on what is
paid in money, points may pay the whole receipt.

November 2026 (Moscow time):

- Anna gets 50 welcome points from the operator (a manual credit);
- Anna buys at A for 1000 ₽ and earns 100 points (A's);
- Boris buys at B for 500 ₽ and earns 50 points (B's);
- Anna pays 120 of 300 ₽ at B with points: the 50 operator's points (they expire first)
  and 70 of A's; she earns 18 on the 180 ₽ paid;
- Boris pays 40 of 200 ₽ at A with B's points and earns 16.

December 2026: Anna returns the whole receipt at B (120 points back to her, 18 taken).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from kopilka.services.terminals import do_add_terminal
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from tests.conftest import Clock, Member, Shop, receipt


@dataclasses.dataclass
class Coalition:
    a: Shop
    b: Shop  # the same program, partner B's till
    b_partner: int
    anna: Member
    boris: Member


def at(day: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, 9, 0, tzinfo=UTC)  # 12:00 in Moscow


async def make_coalition(make_shop: Any, clock: Clock) -> Coalition:
    clock.set(at(1))
    a = await make_shop(earn_percent="10", burn_max_percent="100")
    rt = a.rt
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.partners)
            .where(t.partners.c.id == a.partner_id)
            .values(
                code="apteka",
                name="Аптека",
                legal_name='ООО "Аптека"',
                inn="7701234567",
                kpp="770101001",
                ogrn="1027700000001",
                legal_address="Москва, ул. Тверская, 1",
                bank_name="ПАО Сбербанк",
                bank_account="40702810900000000001",
                bank_bik="044525225",
                contact_email="buh@apteka.example",
            )
        )
        b_partner = await insert_id(
            conn,
            t.partners,
            {
                "program_id": a.program_id,
                "code": "coffee",
                "name": "Кофейня",
                "legal_name": 'ООО "Кофейня"',
                "inn": "7702345678",
            },
        )
        await insert_id(
            conn,
            t.stores,
            {
                "program_id": a.program_id,
                "partner_id": b_partner,
                "code": f"B{a.store_code}",
                "name": "Coffee",
            },
        )
    key = await do_add_terminal(rt, store_code=f"B{a.store_code}", name="B1", program_code=a.code)
    b = dataclasses.replace(a, key=key, partner_id=b_partner, store_code=f"B{a.store_code}")
    clock.set(at(2))
    anna = await a.customer(50)
    boris = await a.customer(first_name="Борис")
    return Coalition(a, b, b_partner, anna, boris)


async def november(c: Coalition, clock: Clock) -> None:
    clock.set(at(3))
    r = await c.a.post("/purchases", receipt("a1", c.anna.card, ("x", 1, "1000.00")))
    assert r.status_code == 200 and r.json()["points_earned"] == "100.00", r.text
    clock.set(at(5))
    r = await c.b.post("/purchases", receipt("b1", c.boris.card, ("y", 1, "500.00")))
    assert r.json()["points_earned"] == "50.00", r.text
    clock.set(at(10))
    r = await c.b.post(
        "/purchases", receipt("b2", c.anna.card, ("y", 1, "300.00"), redeem_points="120")
    )
    assert (r.json()["points_redeemed"], r.json()["points_earned"]) == ("120.00", "18.00"), r.text
    clock.set(at(12))
    r = await c.a.post(
        "/purchases", receipt("a2", c.boris.card, ("x", 1, "200.00"), redeem_points="40")
    )
    assert (r.json()["points_redeemed"], r.json()["points_earned"]) == ("40.00", "16.00"), r.text


async def december(c: Coalition, clock: Clock) -> None:
    clock.set(at(4, 12))
    r = await c.b.post("/purchases/b2/refunds", {"refund_id": "back"})
    assert r.status_code == 200, r.text
    assert (r.json()["points_returned"], r.json()["points_taken_back"]) == ("120.00", "18.00")


@pytest.fixture
async def coalition(make_shop: Any, clock: Clock) -> Coalition:
    c = await make_coalition(make_shop, clock)
    await november(c, clock)
    return c
