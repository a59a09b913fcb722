"""A small shop with hand-made receipts for the report tests (both databases).

Receipts are written straight into the tables, as ``kopilka import receipts`` does, so
that each one's instant, store, cashier and lines are exactly what a test computes by
hand.  Amounts are strings in roubles; a line is (sku, category, quantity, to_pay,
discount, points_earned, points_redeemed).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update

from kopilka.domain.money import q2
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from tests.conftest import Member, Shop

Line = tuple[str, str | None, str, str, str, str, str]


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
