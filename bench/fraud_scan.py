#!/usr/bin/env python3
"""Fraud scan benchmark: what one worker round costs (docs/fraud.md, "Cost").

Builds one program with ``--customers`` members (a card each), ``--terminals`` tills and
``--days`` days of confirmed card receipts (``--receipts`` in all, evenly spread, 30% of
them paying with points), written straight into the tables; then, with the clock frozen
at the end of the history, times:

- the first scan (no watermark yet: it reads the last 24 hours),
- an idle round (nothing new),
- a round after ``--batch`` new receipts (the worker's normal case: what arrived since
  the last round, ~10 s of a busy chain).

    .venv/bin/python bench/fraud_scan.py                          # SQLite in a temp file
    .venv/bin/python bench/fraud_scan.py --db postgresql://postgres@127.0.0.1/fraud_bench

The PostgreSQL database must exist and be empty (it is migrated here).  A benchmark, not
a test: it prints figures and never fails because one is slow.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from kopilka.domain.identifiers import make_card_number
from kopilka.domain.program import ProgramSettings
from kopilka.services import fraud
from kopilka.services.runtime import Runtime, settings_to_json
from kopilka.store import tables as t
from kopilka.store.migrate import upgrade

END = datetime(2026, 12, 7, 12, tzinfo=UTC)
CHUNK = 5000


async def _bulk(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), CHUNK):
        await conn.execute(insert(table), rows[i : i + CHUNK])


def _receipt(i: int, at: datetime, rng: random.Random, n_cust: int, n_term: int) -> dict[str, Any]:
    cust = rng.randrange(n_cust) + 1
    burn = rng.random() < 0.3
    return {
        "id": i,
        "program_id": 1,
        "partner_id": 1,
        "store_id": 1,
        "terminal_id": rng.randrange(n_term) + 1,
        "pos_receipt_id": f"r{i}",
        "account_id": cust,
        "customer_id": cust,
        "card_id": cust,
        "state": "confirmed",
        "occurred_at": at,
        "created_at": at,
        "confirmed_at": at,
        "cashier_id": f"k{rng.randrange(200)}",
        "amount": Decimal("850.00"),
        "discount": Decimal("0"),
        "points_redeemed": Decimal("100") if burn else Decimal("0"),
        "redeemed_value": Decimal("100") if burn else Decimal("0"),
        "to_pay": Decimal("750.00") if burn else Decimal("850.00"),
        "points_earned": Decimal("37"),
        "request_hash": "x",
    }


async def _load(rt: Runtime, args: argparse.Namespace) -> int:
    rng = random.Random(7)
    start = END - timedelta(days=args.days)
    async with rt.engine.begin() as conn:
        await conn.execute(
            insert(t.programs),
            {
                "id": 1,
                "code": "bench",
                "name": "Bench",
                "settings": settings_to_json(ProgramSettings()),
                "created_at": start,
            },
        )
        await conn.execute(insert(t.partners), {"id": 1, "program_id": 1, "code": "p", "name": "P"})
        await conn.execute(
            insert(t.stores),
            {"id": 1, "program_id": 1, "partner_id": 1, "code": "s", "name": "S"},
        )
        await _bulk(
            conn,
            t.terminals,
            [
                {
                    "id": i,
                    "program_id": 1,
                    "store_id": 1,
                    "name": f"till {i}",
                    "key_hash": f"{i:064d}",
                    "key_prefix": "kp",
                    "created_at": start,
                }
                for i in range(1, args.terminals + 1)
            ],
        )
        ids = range(1, args.customers + 1)
        when = start - timedelta(days=30)
        await _bulk(
            conn,
            t.customers,
            [
                {"id": i, "program_id": 1, "phone": f"+7900{i:07d}", "registered_at": when}
                for i in ids
            ],
        )
        await _bulk(
            conn,
            t.accounts,
            [
                {"id": i, "program_id": 1, "customer_id": i, "created_at": when, "updated_at": when}
                for i in ids
            ],
        )
        await _bulk(
            conn,
            t.cards,
            [
                {
                    "id": i,
                    "program_id": 1,
                    "account_id": i,
                    "customer_id": i,
                    "number": make_card_number("27", i),
                    "created_at": when,
                }
                for i in ids
            ],
        )
        step = (END - start) / args.receipts
        rows = [
            _receipt(i + 1, start + step * i, rng, args.customers, args.terminals)
            for i in range(args.receipts)
        ]
        await _bulk(conn, t.receipts, rows)
    if not rt.sqlite:  # what autovacuum would have done on a live database
        async with rt.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    return args.receipts


async def _timed(rt: Runtime, label: str) -> None:
    t0 = time.perf_counter()
    got = await fraud.scan(rt, program_id=1)
    ms = (time.perf_counter() - t0) * 1000
    print(f"{label:<40} {ms:9.1f} ms   {got.created} new alerts, {got.updated} updated")


async def main(args: argparse.Namespace) -> None:
    clock = {"now": END}
    rt = Runtime.from_url(args.db, clock=lambda: clock["now"])
    try:
        n = await _load(rt, args)
        print(f"{args.db.split(':')[0]}: {n} receipts over {args.days} days, "
              f"{args.customers} cards, {args.terminals} terminals")  # fmt: skip
        await _timed(rt, "first scan (last 24 h)")
        clock["now"] = END + timedelta(seconds=10)
        await _timed(rt, "idle round (nothing new)")
        rng = random.Random(8)
        batch_start = END + timedelta(seconds=10)
        sizes = (args.customers, args.terminals)
        rows = [
            _receipt(n + 1 + i, batch_start + timedelta(milliseconds=10 * i), rng, *sizes)
            for i in range(args.batch)
        ]
        async with rt.engine.begin() as conn:
            await _bulk(conn, t.receipts, rows)
        clock["now"] = batch_start + timedelta(seconds=10)
        await _timed(rt, f"round after {args.batch} new receipts")
    finally:
        await rt.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", default=None)
    p.add_argument("--receipts", type=int, default=100_000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--terminals", type=int, default=500)
    p.add_argument("--batch", type=int, default=1000)
    a = p.parse_args()
    if a.db is None:
        a.db = f"sqlite:///{Path(tempfile.mkdtemp()) / 'fraud-bench.db'}"
    upgrade(a.db)
    asyncio.run(main(a))
