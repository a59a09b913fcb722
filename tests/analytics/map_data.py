"""A small shop for the territorial map, with figures worked out by hand.

Stores (besides the shop's own "Store": city Москва, no coordinates, partner main):
  A "Тверская"  region "г. Москва", 55.765 N 37.605 E                 partner main
  B "Невский"   region "Санкт-Петербург", 59.932 N 30.355 E           partner main
  C "Баумана"   region "Республика Татарстан", 55.790 N 49.115 E      partner "east"
  D "Уралмаш"   no region or city; its point lies in Sverdlovsk Oblast partner main
  E "Марс-1"    region "Марс", no coordinates (recognised nowhere)    partner main

Members (active unless told; registered on 2026-03-15 unless told), period March 2026:
  a1, a2, a3  home A; cities Тверь, Химки, none
  b1          home B; city Выборг
  x           no home; confirmed receipts C (2026-02-10, 500.50), C (03-10, 1000.00),
              B (03-11, 10.00) -> placed at C (2 purchases there); city Тверь
  y           no home; B (03-12, 20.00), C (03-13, 30.00) -> a tie: placed at B (lower id);
              city "Атлантида" (no such town)
  z           no home, no purchases -> not placed
  blocked     home A, status blocked -> not counted
  late        home A, registered 2026-04-02 -> not counted (after the period)
Other receipts: A anonymous 100.10 (03-20); A cancelled 999.00 (03-21); A 77.00 at
2026-04-01 00:00 UTC (the first moment after the period).

So: A 3 members, sales 100.10 (1 receipt); B 2 members, 30.00 (2); C 1 member, 1030.00 (2);
Moscow 2 stores, 3 members, 1.5 per store; St Petersburg 1, 2, 2.0; Tatarstan 1, 1, 1.0;
Sverdlovsk Oblast 1 store, 0 members.  Unplaced: 1 (z).
Members with a city: a1, a2, b1, x, y = 5; unknown town: 1 (y).  Farther than 30 km from
every store: Тверь (a1, x: 2 members, nearest A), Выборг (b1: 1, nearest B); Химки is
about 18 km from A.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select

from kopilka.analytics.map import Period
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Shop

PERIOD = Period(date(2026, 3, 1), date(2026, 3, 31))
TVER = (35.90057, 56.85836)  # GeoNames
VYBORG = (28.75283, 60.70763)
KHIMKI = (37.445, 55.89704)


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@dataclass
class MapShop:
    shop: Shop
    east_partner: int
    stores: dict[str, int]  # "S" (the shop's own), "A".."E" -> id


async def _store(conn: Any, shop: Shop, partner: int, code: str, **kw: Any) -> int:
    row = {"program_id": shop.program_id, "partner_id": partner, "code": code, **kw}
    return int((await conn.execute(insert(t.stores).returning(t.stores.c.id), row)).scalar_one())


async def make_map_shop(rt: Runtime, shop: Shop) -> MapShop:
    async with rt.engine.begin() as conn:
        s0 = (
            await conn.execute(
                select(t.stores.c.id).where(
                    t.stores.c.program_id == shop.program_id, t.stores.c.code == shop.store_code
                )
            )
        ).scalar_one()
        east = int(
            (
                await conn.execute(
                    insert(t.partners).returning(t.partners.c.id),
                    {"program_id": shop.program_id, "code": "east", "name": "East"},
                )
            ).scalar_one()
        )
        main = shop.partner_id
        stores = {"S": s0}
        stores["A"] = await _store(
            conn, shop, main, "A", name="Тверская", city="Москва", region="г. Москва",
            latitude=55.765, longitude=37.605,
        )  # fmt: skip
        stores["B"] = await _store(
            conn, shop, main, "B", name="Невский", city="Санкт-Петербург",
            region="Санкт-Петербург", latitude=59.932, longitude=30.355,
        )  # fmt: skip
        stores["C"] = await _store(
            conn, shop, east, "C", name="Баумана", city="Казань",
            region="Республика Татарстан", latitude=55.79, longitude=49.115,
        )  # fmt: skip
        stores["D"] = await _store(
            conn, shop, main, "D", name="Уралмаш", latitude=56.887, longitude=60.612
        )
        stores["E"] = await _store(conn, shop, main, "E", name="Марс-1", region="Марс")
        terminal = (
            await conn.execute(select(t.terminals.c.id).where(t.terminals.c.store_id == s0))
        ).scalar_one()
        people = await _customers(conn, shop, stores)
        await _receipts(conn, shop, stores, people, terminal, {"C": east})
    return MapShop(shop, east, stores)


async def _customers(conn: Any, shop: Shop, stores: dict[str, int]) -> dict[str, int]:
    rows = {
        "a1": (stores["A"], "Тверь", "active", at(3, 15)),
        "a2": (stores["A"], "г. Химки", "active", at(3, 15)),
        "a3": (stores["A"], None, "active", at(3, 15)),
        "b1": (stores["B"], "Выборг", "active", at(3, 15)),
        "x": (None, "Тверь", "active", at(3, 15)),
        "y": (None, "Атлантида", "active", at(3, 15)),
        "z": (None, None, "active", at(3, 15)),
        "blocked": (stores["A"], "Тверь", "blocked", at(3, 15)),
        "late": (stores["A"], "Тверь", "active", at(4, 2)),
    }
    out = {}
    for name, (home, city, status, registered) in rows.items():
        out[name] = int(
            (
                await conn.execute(
                    insert(t.customers).returning(t.customers.c.id),
                    {
                        "program_id": shop.program_id,
                        "first_name": name,
                        "home_store_id": home,
                        "city": city,
                        "status": status,
                        "registered_at": registered,
                    },
                )
            ).scalar_one()
        )
    return out


async def _receipts(
    conn: Any,
    shop: Shop,
    stores: dict[str, int],
    people: dict[str, int],
    terminal: int,
    partners: dict[str, int],
) -> None:
    rows = [
        ("C", "x", at(2, 10), "500.50", "confirmed"),
        ("C", "x", at(3, 10), "1000.00", "confirmed"),
        ("B", "x", at(3, 11), "10.00", "confirmed"),
        ("B", "y", at(3, 12), "20.00", "confirmed"),
        ("C", "y", at(3, 13), "30.00", "confirmed"),
        ("A", None, at(3, 20), "100.10", "confirmed"),
        ("A", None, at(3, 21), "999.00", "cancelled"),
        ("A", None, at(4, 1, 0), "77.00", "confirmed"),
    ]
    zero = Decimal("0.00")
    for store, who, when, amount, state in rows:
        await conn.execute(
            insert(t.receipts),
            {
                "program_id": shop.program_id,
                "partner_id": partners.get(store, shop.partner_id),
                "store_id": stores[store],
                "terminal_id": terminal,
                "pos_receipt_id": secrets.token_hex(8),
                "customer_id": people[who] if who else None,
                "state": state,
                "occurred_at": when,
                "created_at": when,
                "amount": Decimal(amount),
                "discount": zero,
                "points_redeemed": zero,
                "redeemed_value": zero,
                "to_pay": Decimal(amount),
                "points_earned": zero,
                "request_hash": "0" * 64,
            },
        )
