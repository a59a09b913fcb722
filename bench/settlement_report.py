#!/usr/bin/env python3
"""Settlement benchmark: what the clearing report and closing a month cost on a large
ledger (docs/coalition.md).

Builds one program with ``--partners`` partners (a store and a till each) and
``--receipts`` confirmed receipts spread over November 2026, written straight into the
tables: each earns a lot funded by its partner, ``--burn-share`` of them also burn points
from an earlier lot of any partner.  Then times:

- the clearing report of the open month (one grouped query over the month's entries),
- closing the month (the report again, frozen; every party's statement signed),
- ``check`` (the closed month recomputed from the ledger and compared).

    .venv/bin/python bench/settlement_report.py                       # SQLite in a temp file
    .venv/bin/python bench/settlement_report.py --db postgresql://postgres@127.0.0.1/settle_bench

The PostgreSQL database must exist and be empty (it is migrated here).  A benchmark, not
a test: it prints figures (and writes them to bench/results/) and never fails because
one is slow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from kopilka.domain.program import ProgramSettings
from kopilka.services import audit, settlement, settlement_files
from kopilka.services.runtime import Runtime, settings_to_json
from kopilka.store import tables as t
from kopilka.store.migrate import upgrade

START = datetime(2026, 10, 31, 21, tzinfo=UTC)  # 1 November 00:00 in Moscow
CHUNK = 5000
RESULTS = Path(__file__).resolve().parent / "results"


async def _bulk(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), CHUNK):
        await conn.execute(insert(table), rows[i : i + CHUNK])


async def _load(rt: Runtime, args: argparse.Namespace) -> int:
    rng = random.Random(7)
    n_part = args.partners
    async with rt.engine.begin() as conn:
        await conn.execute(
            insert(t.programs),
            {
                "id": 1,
                "code": "bench",
                "name": "Bench",
                "settings": settings_to_json(ProgramSettings()),
                "created_at": START,
            },
        )
        for p in range(1, n_part + 1):
            await conn.execute(
                insert(t.partners), {"id": p, "program_id": 1, "code": f"p{p}", "name": f"P{p}"}
            )
            await conn.execute(
                insert(t.stores),
                {"id": p, "program_id": 1, "partner_id": p, "code": f"s{p}", "name": f"S{p}"},
            )
            await conn.execute(
                insert(t.terminals),
                {
                    "id": p,
                    "program_id": 1,
                    "store_id": p,
                    "name": "till",
                    "key_hash": f"{p:064d}",
                    "key_prefix": "kp",
                    "created_at": START,
                },
            )
        await conn.execute(insert(t.customers), {"id": 1, "program_id": 1, "registered_at": START})
        await conn.execute(
            insert(t.accounts),
            {"id": 1, "program_id": 1, "customer_id": 1, "created_at": START, "updated_at": START},
        )
        step = timedelta(days=30) / args.receipts
        receipts, lots, entries = [], [], []
        for i in range(1, args.receipts + 1):
            at = START + step * (i - 1)
            partner = rng.randrange(n_part) + 1
            receipts.append(
                {
                    "id": i,
                    "program_id": 1,
                    "partner_id": partner,
                    "store_id": partner,
                    "terminal_id": partner,
                    "pos_receipt_id": f"r{i}",
                    "account_id": 1,
                    "customer_id": 1,
                    "state": "confirmed",
                    "occurred_at": at,
                    "created_at": at,
                    "confirmed_at": at,
                    "amount": Decimal("500.00"),
                    "discount": Decimal("0"),
                    "points_redeemed": Decimal("0"),
                    "redeemed_value": Decimal("0"),
                    "to_pay": Decimal("500.00"),
                    "points_earned": Decimal("25"),
                    "request_hash": "x",
                }
            )
            lots.append(
                {
                    "id": i,
                    "program_id": 1,
                    "account_id": 1,
                    "amount": Decimal("25"),
                    "remaining": Decimal("25"),
                    "activates_at": at,
                    "receipt_pk": i,
                    "funding_partner_id": partner,
                    "created_at": at,
                }
            )
            common = {"program_id": 1, "account_id": 1, "receipt_pk": i, "created_at": at}
            entries.append(
                {
                    **common,
                    "kind": "earn",
                    "amount": Decimal("25"),
                    "lot_id": i,
                    "funding_partner_id": partner,
                }
            )
            if i > 1 and rng.random() < args.burn_share:
                entries.append(
                    {
                        **common,
                        "kind": "burn",
                        "amount": Decimal("-10"),
                        "lot_id": rng.randrange(1, i),
                        "funding_partner_id": partner,
                    }
                )
        await _bulk(conn, t.receipts, receipts)
        await _bulk(conn, t.lots, lots)
        await _bulk(conn, t.ledger_entries, entries)
    if not rt.sqlite:
        async with rt.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    return len(entries)


async def _median_ms(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    rt = Runtime.from_url(args.db, clock=lambda: datetime(2026, 12, 7, 12, tzinfo=UTC))
    try:
        n = await _load(rt, args)
        program = await settlement.find_program(rt, "bench")
        # pyHanko's import and the key's creation happen once per process: not the close's
        await settlement_files.signed_statement(
            rt, await settlement.period_report(rt, program, "2026-10"), None
        )
        report_ms = await _median_ms(
            lambda: settlement.period_report(rt, program, "2026-11"), args.repeat
        )
        t0 = time.perf_counter()
        await settlement.do_close(
            rt,
            program,
            "2026-11",
            actor=audit.CLI,
            statements=settlement_files.statement_maker(rt),
        )
        close_ms = (time.perf_counter() - t0) * 1000
        check_ms = await _median_ms(
            lambda: settlement.check_period(rt, program, "2026-11"), args.repeat
        )
        frozen_ms = await _median_ms(
            lambda: settlement.period_report(rt, program, "2026-11"), args.repeat
        )
    finally:
        await rt.close()
    out = {
        "backend": "sqlite" if args.db.startswith("sqlite") else "pg",
        "ledger_entries": n,
        "receipts": args.receipts,
        "partners": args.partners,
        "open_report_ms_median": round(report_ms, 1),
        "close_ms_with_statements": round(close_ms, 1),  # partners + 1 signed PDFs
        "check_ms_median": round(check_ms, 1),
        "closed_report_ms_median": round(frozen_ms, 1),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", default=None)
    p.add_argument("--receipts", type=int, default=200_000)
    p.add_argument("--partners", type=int, default=5)
    p.add_argument("--burn-share", type=float, default=0.3)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-save", action="store_true")
    a = p.parse_args()
    if a.db is None:
        a.db = f"sqlite:///{Path(tempfile.mkdtemp()) / 'settlement-bench.db'}"
    upgrade(a.db)
    figures = asyncio.run(main(a))
    print(json.dumps(figures, indent=2))
    if not a.no_save:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"settlement-{figures['backend']}-{stamp}.json"
        path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"written to {path}")
