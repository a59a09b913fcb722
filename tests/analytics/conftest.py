"""A small shop with hand-made receipts for the report tests (both databases).

Receipts are written straight into the tables, as ``kopilka import receipts`` does, so
that each one's instant, store, cashier and lines are exactly what a test computes by
hand.  Amounts are strings in roubles; a line is (sku, category, quantity, to_pay,
discount, points_earned, points_redeemed).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from kopilka.domain.money import q2
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from tests.conftest import Member, Shop

Line = tuple[str, str | None, str, str, str, str, str]
NOV = {"from": "2026-11-01", "to": "2026-11-30"}


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


@dataclass
class Till:
    shop: Shop
    terminal_id: int
    stores: dict[str, int] = field(default_factory=dict)  # code -> id

    @property
    def rt(self) -> Runtime:
        return self.shop.rt

    async def store(self, code: str, *, name: str, city: str, region: str) -> int:
        async with self.rt.engine.begin() as conn:
            sid = await insert_id(
                conn,
                t.stores,
                {
                    "program_id": self.shop.program_id,
                    "partner_id": self.shop.partner_id,
                    "code": code,
                    "name": name,
                    "city": city,
                    "region": region,
                },
            )
        self.stores[code] = sid
        return sid

    async def receipt(
        self,
        store: str,
        at: datetime,
        lines: list[Line],
        *,
        member: Member | None = None,
        cashier: str | None = None,
        state: str = "confirmed",
    ) -> int:
        def total(i: int) -> Decimal:
            return sum((Decimal(ln[i]) for ln in lines), Decimal(0))

        to_pay, discount = total(3), total(4)
        async with self.rt.engine.begin() as conn:
            rid = await insert_id(
                conn,
                t.receipts,
                {
                    "program_id": self.shop.program_id,
                    "partner_id": self.shop.partner_id,
                    "store_id": self.stores[store],
                    "terminal_id": self.terminal_id,
                    "pos_receipt_id": secrets.token_hex(6),
                    "account_id": member.account_id if member else None,
                    "customer_id": member.customer_id if member else None,
                    "state": state,
                    "occurred_at": at,
                    "created_at": at,
                    "confirmed_at": at if state == "confirmed" else None,
                    "cashier_id": cashier,
                    "amount": to_pay + discount,
                    "discount": discount,
                    "points_redeemed": total(6),
                    "redeemed_value": total(6),
                    "to_pay": to_pay,
                    "points_earned": total(5),
                    "request_hash": "test",
                    "source": "import",
                },
            )
            rows: list[dict[str, Any]] = []
            for i, (sku, cat, qty, pay, disc, earned, burned) in enumerate(lines):
                q = Decimal(qty)
                rows.append(
                    {
                        "receipt_pk": rid,
                        "idx": i,
                        "program_id": self.shop.program_id,
                        "sku": sku,
                        "name": sku,
                        "category": cat,
                        "quantity": q,
                        "price": q2((Decimal(pay) + Decimal(disc)) / q),
                        "amount": Decimal(pay) + Decimal(disc),
                        "discount": Decimal(disc),
                        "points_redeemed": Decimal(burned),
                        "redeemed_value": Decimal(burned),
                        "to_pay": Decimal(pay),
                        "points_earned": Decimal(earned),
                    }
                )
            await conn.execute(insert(t.receipt_lines), rows)
        return rid

    async def member_with(self, *, tier: str | None = None, segment: str | None = None) -> Member:
        m = await self.shop.customer()
        async with self.rt.engine.begin() as conn:
            await conn.execute(
                update(t.accounts).where(t.accounts.c.id == m.account_id).values(tier=tier)
            )
            await conn.execute(
                update(t.customers)
                .where(t.customers.c.id == m.customer_id)
                .values(rfm_segment=segment)
            )
        return m


async def till_for(shop: Shop) -> Till:
    async with shop.rt.engine.connect() as conn:
        tid = (
            await conn.execute(
                select(t.terminals.c.id).where(t.terminals.c.program_id == shop.program_id)
            )
        ).scalar_one()
    return Till(shop, tid)


@pytest.fixture
async def november(make_shop: Any) -> Till:
    return await make_november(make_shop)


async def make_november(make_shop: Any) -> Till:
    """Program time zone Europe/Moscow (UTC+3).  Stores A (Москва) and B (Казань).

    R1  A  m1 (gold, champions)  UTC 11-02 22:30 = local 11-03  cashier c1  to_pay 150.50
        milk dairy 2 -> 100.00 (disc 10, earned 10.00); bread bakery 1 -> 50.50 (earned 5.05)
    R2  A  non-member            UTC 11-03 10:00 = local 11-03  c2  to_pay 49.99
        milk dairy 1 -> 49.99
    R3  B  m2 (no tier)          UTC 11-10 12:00 = local 11-10  c1  to_pay 551.00
        milk dairy 3 -> 150.00 (disc 5, earned 15, burned 30);
        cheese dairy 0.5 -> 300.00 (disc 10, earned 30, burned 50);
        bread bakery 2 -> 101.00 (disc 5, earned 10.10, burned 20)
    R4  A  m1  UTC 11-03 12:00   cancelled: never counted
    R5  B  m2  UTC 10-31 21:30 = local 11-01  c2  to_pay 40.00: bread bakery 1 -> 40.00
    R6  A  m1  UTC 11-30 21:30 = local 12-01: outside November
    """
    shop = await make_shop(timezone="Europe/Moscow")
    till = await till_for(shop)
    await till.store("A", name="Тверская", city="Москва", region="Москва")
    await till.store("B", name="Баумана", city="Казань", region="Татарстан")
    m1 = await till.member_with(tier="gold", segment="champions")
    m2 = await till.member_with()
    milk = ("milk", "dairy")
    await till.receipt(
        "A",
        utc(2026, 11, 2, 22, 30),
        [
            (*milk, "2", "100.00", "10", "10.00", "0"),
            ("bread", "bakery", "1", "50.50", "0", "5.05", "0"),
        ],
        member=m1,
        cashier="c1",
    )
    await till.receipt(
        "A", utc(2026, 11, 3, 10), [(*milk, "1", "49.99", "0", "0", "0")], cashier="c2"
    )
    await till.receipt(
        "B",
        utc(2026, 11, 10, 12),
        [
            (*milk, "3", "150.00", "5", "15.00", "30"),
            ("cheese", "dairy", "0.5", "300.00", "10", "30.00", "50"),
            ("bread", "bakery", "2", "101.00", "5", "10.10", "20"),
        ],
        member=m2,
        cashier="c1",
    )
    await till.receipt(
        "A",
        utc(2026, 11, 3, 12),
        [(*milk, "1", "999", "0", "0", "0")],
        member=m1,
        state="cancelled",
    )
    await till.receipt(
        "B",
        utc(2026, 10, 31, 21, 30),
        [("bread", "bakery", "1", "40.00", "0", "0", "0")],
        member=m2,
        cashier="c2",
    )
    await till.receipt(
        "A",
        utc(2026, 11, 30, 21, 30),
        [(*milk, "1", "1000", "0", "0", "0")],
        member=m1,
        cashier="c1",
    )
    return till
