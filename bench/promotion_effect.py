#!/usr/bin/env python3
"""The promotion-effect report on a chain-sized month: how long ``kopilka report
promotions`` (``analytics.promotions.promotion_effects``) and a promotion's daily chart
take on SQLite and PostgreSQL.

A seeded generator fills a fresh database (the real schema, by the migrations) with N
members of one program and their confirmed receipts over two months (the pre-period and
the promotion's month), and the ``receipt_promotions`` rows the till would have written:
"autumn" (fixed points on every receipt, 20 % of members held out) and "coffee" (10 % off
the SKU P, no holdout: the pre-period method).  Rows are inserted directly, in batches:
the point is the report's reads, not the till.

    .venv/bin/python bench/promotion_effect.py                       # SQLite, 20,000 members
    .venv/bin/python bench/promotion_effect.py --backend pg -n 50000 --per-member 8

A benchmark, not a test: it prints figures and never fails because one is high.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from kopilka.analytics import promotions
from kopilka.domain.holdout import holdout_cut, is_held_out
from kopilka.domain.program import ProgramSettings
from kopilka.services import programs
from kopilka.services.runtime import Runtime, settings_to_json
from kopilka.store import tables as t
from kopilka.store.migrate import upgrade
from kopilka.store.queries import insert_id

PG_ADMIN = os.environ.get("KOPILKA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CODE = "bench"
START = datetime(2026, 9, 1, tzinfo=UTC)
DOC = {
    "code": CODE,
    "name": "Bench",
    "promotions": [
        {
            "id": "autumn",
            "name": "Autumn points",
            "starts_at": "2026-10-01T00:00:00+03:00",
            "ends_at": "2026-11-01T00:00:00+03:00",
            "effects": [{"kind": "fixed_points", "points": "10"}],
            "holdout_percent": "20",
        },
        {
            "id": "coffee",
            "name": "Coffee -10%",
            "starts_at": "2026-10-01T00:00:00+03:00",
            "ends_at": "2026-11-01T00:00:00+03:00",
            "lines": {"sku": ["P"]},
            "effects": [{"kind": "line_discount", "percent": "10"}],
        },
    ],
}


async def _shop(rt: Runtime) -> tuple[int, int, int, int]:
    now = datetime.now(UTC)
    await programs.do_apply(rt, programs.check_document(DOC), author="bench")
    async with rt.engine.begin() as conn:
        pid = (await conn.execute(t.programs.select().where(t.programs.c.code == CODE))).one()[0]
        await conn.execute(
            t.programs.update()
            .where(t.programs.c.id == pid)
            .values(settings=settings_to_json(ProgramSettings()))
        )
        partner = await insert_id(conn, t.partners, {"program_id": pid, "code": "m", "name": "M"})
        store = await insert_id(
            conn,
            t.stores,
            {"program_id": pid, "partner_id": partner, "code": "S1", "name": "S"},
        )
        term = await insert_id(
            conn,
            t.terminals,
            {
                "program_id": pid,
                "store_id": store,
                "name": "till",
                "key_hash": secrets.token_hex(32),
                "key_prefix": "kp_bench",
                "created_at": now,
            },
        )
    return pid, partner, store, term


def _receipts(
    n: int, per: int, seed: int, ids: tuple[int, int, int, int], first_customer: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Receipts (with their ids) and receipt_promotions rows, as the till would write."""
    pid, partner, store, term = ids
    rng = random.Random(seed)
    cut = holdout_cut(Decimal(20))
    receipts, given = [], []
    rid = 0
    for k in range(n):
        cid = first_customer + k
        treated = not is_held_out(CODE, "autumn", cid, cut)
        coffee_fan = rng.random() < 0.3
        for _ in range(per):
            rid += 1
            at = START + timedelta(seconds=rng.randrange(61 * 86400))
            october = at >= datetime(2026, 9, 30, 21, tzinfo=UTC)
            amount = Decimal(rng.randrange(20000, 300000)) / 100
            if october and treated:
                amount += Decimal(40)
            coffee = october and coffee_fan and rng.random() < 0.5
            discount = (amount * Decimal("0.1")).quantize(Decimal("0.01")) if coffee else Decimal(0)
            receipts.append(
                {
                    "id": rid,
                    "program_id": pid,
                    "partner_id": partner,
                    "store_id": store,
                    "terminal_id": term,
                    "pos_receipt_id": f"r{rid}",
                    "customer_id": cid,
                    "account_id": None,
                    "state": "confirmed",
                    "occurred_at": at,
                    "created_at": at,
                    "confirmed_at": at,
                    "amount": amount,
                    "discount": discount,
                    "points_redeemed": Decimal(0),
                    "redeemed_value": Decimal(0),
                    "to_pay": amount - discount,
                    "points_earned": Decimal(10) if october and treated else Decimal(0),
                    "request_hash": "x",
                }
            )
            base = {"receipt_pk": rid, "program_id": pid, "account_id": None, "counted": False}
            if october and treated:
                given.append(base | {"promotion_id": "autumn", "discount": 0, "points": 10})
            if coffee:
                given.append(base | {"promotion_id": "coffee", "discount": discount, "points": 0})
    return receipts, given


async def fill(rt: Runtime, n: int, per: int, seed: int) -> int:
    ids = await _shop(rt)
    pid = ids[0]
    people = [
        {"program_id": pid, "first_name": "M", "registered_at": START - timedelta(days=30)}
        for _ in range(n)
    ]
    async with rt.engine.begin() as conn:
        await conn.execute(insert(t.customers), people)
        first = (
            await conn.execute(
                t.customers.select()
                .where(t.customers.c.program_id == pid)
                .order_by(t.customers.c.id)
                .limit(1)
            )
        ).one()[0]
    receipts, given = _receipts(n, per, seed, ids, first)
    for rows, table in ((receipts, t.receipts), (given, t.receipt_promotions)):
        for i in range(0, len(rows), 5000):
            async with rt.engine.begin() as conn:
                await conn.execute(insert(table), rows[i : i + 5000])
    print(f"filled: {n} members, {len(receipts)} receipts, {len(given)} promotion rows")
    return pid


async def measure(rt: Runtime, pid: int, runs: int) -> None:
    def timed(label: str, seconds: list[float]) -> None:
        print(
            f"{label}: best {min(seconds):.2f} s, median {sorted(seconds)[len(seconds) // 2]:.2f} s"
        )

    spent = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rep = await promotions.promotion_effects(
            rt,
            program_id=pid,
            day_from=date(2026, 10, 1),
            day_to=date(2026, 10, 31),
            margin=Decimal("0.25"),
        )
        spent.append(time.perf_counter() - t0)
    timed("report (2 promotions)", spent)
    for f in rep.rows:
        e = f.effect
        if e is not None:
            print(
                f"  {f.promotion_id}: {e.method}, participants {f.participants}, cost {f.cost}, "
                f"effect {e.sales.estimate:.2f} [{e.sales.low:.2f}; {e.sales.high:.2f}]"
            )
    for pid_ in ("autumn", "coffee"):
        spent = []
        for _ in range(runs):
            t0 = time.perf_counter()
            await promotions.promotion_daily(
                rt,
                program_id=pid,
                promotion_id=pid_,
                day_from=date(2026, 10, 1),
                day_to=date(2026, 10, 31),
            )
            spent.append(time.perf_counter() - t0)
        timed(f"daily chart of {pid_}", spent)


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> None:
    if args.backend == "pg":
        name = f"kopilka_bench_{secrets.token_hex(4)}"
        await _pg(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        folder = Path(tempfile.mkdtemp(prefix="kopilka-effect-"))
        url = f"sqlite:///{folder / 'bench.db'}"
    try:
        await asyncio.to_thread(upgrade, url)
        rt = Runtime.from_url(url)
        try:
            pid = await fill(rt, args.members, args.per_member, args.seed)
            await measure(rt, pid, args.runs)
        finally:
            await rt.close()
    finally:
        if args.backend == "pg":
            await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("sqlite", "pg"), default="sqlite")
    ap.add_argument("-n", "--members", type=int, default=20_000)
    ap.add_argument("--per-member", type=int, default=6, help="receipts per member in 2 months")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=8)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
