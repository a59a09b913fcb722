#!/usr/bin/env python3
"""RFM report benchmark: how long ``kopilka report rfm`` takes on a large program.

It creates a scratch PostgreSQL database, migrates it, generates a program with
``--customers`` customers (each with an account and a card, 5 % named by an external
id) and ``--receipts`` receipts over two years (85 % of members, 1 % refunded in part,
a few calculated or cancelled), loads them with COPY, runs ANALYZE, and then times the
report the way the CLI and the console compute it (``analytics.rfm.compute``), several
times, printing seconds; with ``--explain`` it prints the aggregate query's plan.

    .venv/bin/python bench/rfm.py                              # 200,000 / 2,000,000
    .venv/bin/python bench/rfm.py --customers 3000 --receipts 40000 --runs 5
    .venv/bin/python bench/rfm.py --db sqlite:///var/demo.db   # time an existing database

The scratch database is dropped at the end unless ``--keep``.  A benchmark, not a test:
it never fails because a figure is high.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import asyncpg

from kopilka.analytics import rfm as report
from kopilka.domain.program import ProgramSettings
from kopilka.services.runtime import Runtime, settings_to_json
from kopilka.store.migrate import upgrade

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
AS_OF = date(2026, 11, 30)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _one(conn: asyncpg.Connection, sql: str, *args: object) -> int:
    return int(await conn.fetchval(sql, *args))


async def generate(url: str, customers: int, receipts: int, seed: int) -> str:
    """Fill the database; returns the program's code."""
    rnd = random.Random(seed)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
    try:
        pid = await _one(
            conn,
            "INSERT INTO programs (code, name, settings, created_at) VALUES ($1, $2, $3, $4) "
            "RETURNING id",
            "bench",
            "Bench",
            settings_to_json(ProgramSettings()),
            now,
        )
        partner = await _one(
            conn,
            "INSERT INTO partners (program_id, code, name) VALUES ($1, 'main', 'Shop') "
            "RETURNING id",
            pid,
        )
        store = await _one(
            conn,
            "INSERT INTO stores (program_id, partner_id, code, name) "
            "VALUES ($1, $2, 'S1', 'Store') RETURNING id",
            pid,
            partner,
        )
        term = await _one(
            conn,
            "INSERT INTO terminals (program_id, store_id, name, key_hash, key_prefix, "
            "created_at) VALUES ($1, $2, 'till', $3, 'kp_bench', $4) RETURNING id",
            pid,
            store,
            secrets.token_hex(32),
            now,
        )
        t0 = time.perf_counter()
        first = 1 + await _one(conn, "SELECT coalesce(max(id), 0) FROM customers")
        ids = range(first, first + customers)
        await conn.copy_records_to_table(
            "customers",
            columns=["id", "program_id", "registered_at", "external_id"],
            records=[(i, pid, now, f"CRM{i}" if i % 20 == 0 else None) for i in ids],
        )
        await conn.copy_records_to_table(
            "accounts",
            columns=["id", "program_id", "customer_id", "created_at", "updated_at"],
            records=[(i, pid, i, now, now) for i in ids],
        )
        await conn.copy_records_to_table(
            "cards",
            columns=["id", "program_id", "account_id", "customer_id", "number", "created_at"],
            records=[(i, pid, i, i, f"27{i:011d}", now) for i in ids],
        )
        for seq in ("customers", "accounts", "cards"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{seq}', 'id'), (SELECT max(id) FROM {seq}))"
            )
        span_s = 730 * 86400
        # A few heavy buyers, many occasional ones: a customer's weight is Pareto-like.
        weights = [rnd.paretovariate(1.3) for _ in ids]
        who = rnd.choices(list(ids), weights=weights, k=receipts)
        cols = [
            "program_id", "partner_id", "store_id", "terminal_id", "pos_receipt_id",
            "account_id", "customer_id", "state", "occurred_at", "created_at", "amount",
            "discount", "points_redeemed", "redeemed_value", "to_pay", "points_earned",
            "request_hash", "source",
        ]  # fmt: skip
        chunk = 100_000
        for first_n in range(0, receipts, chunk):
            rows = []
            for n in range(first_n, min(first_n + chunk, receipts)):
                cid = who[n]
                member = rnd.random() < 0.85
                at = now - timedelta(seconds=rnd.randrange(span_s))
                paid = rnd.randrange(5_000, 800_000)  # kopecks
                ok = rnd.random() < 0.98
                state = "confirmed" if ok else rnd.choice(("calculated", "cancelled"))
                mid = cid if member else None
                rows.append(
                    (pid, partner, store, term, f"b{n}", mid, mid, state, at, at, paid,
                     0, 0, 0, paid, 0, "x", "import")
                )  # fmt: skip
            await conn.copy_records_to_table("receipts", columns=cols, records=rows)
        await conn.execute(
            "INSERT INTO refunds (program_id, receipt_pk, pos_refund_id, terminal_id, "
            "request_hash, response, amount, points_taken_back, points_returned, "
            "points_uncollected, created_at) "
            "SELECT program_id, id, 'r1', terminal_id, 'x', '\\x7b7d'::bytea, to_pay / 3, 0, 0, 0, "
            "occurred_at + interval '3 days' FROM receipts "
            "WHERE program_id = $1 AND state = 'confirmed' AND id % 100 = 7",
            pid,
        )
        await conn.execute("ANALYZE")
        print(f"generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    finally:
        await conn.close()
    return "bench"


async def measure(url: str, code: str | None, runs: int, explain: bool) -> None:
    rt = Runtime.from_url(url)
    try:
        from kopilka.analytics.rfm_cli import program_of

        pid = await program_of(rt, code)
        times, cpu, sql = [], [], []
        tz = ZoneInfo((await rt.compiled(pid)).settings.timezone)
        start, end = report.window_utc(AS_OF, 365, tz)
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            rep = await report.compute(rt, pid, as_of=AS_OF)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            t0 = time.perf_counter()
            async with rt.engine.connect() as conn:
                await report._aggregate(conn, pid, start, end)
            sql.append(time.perf_counter() - t0)
        print(
            f"rfm as of {AS_OF}, 365 days: {len(rep.rows)} customers; "
            f"seconds: first {times[0]:.2f}, median {statistics.median(times):.2f}, "
            f"min {min(times):.2f} ({runs} runs); of which the GROUP BY query alone "
            f"(median) {statistics.median(sql):.2f}; this process's CPU (median) "
            f"{statistics.median(cpu):.2f}"
        )
        if explain and not rt.sqlite:
            start, end = report.window_utc(
                AS_OF, 365, __import__("zoneinfo").ZoneInfo(rep.timezone)
            )
            conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
            try:
                plan = await conn.fetch(
                    "EXPLAIN (ANALYZE, BUFFERS) SELECT r.customer_id, count(*), sum(r.to_pay), "
                    "max(r.occurred_at) FROM receipts r WHERE r.program_id = $1 AND "
                    "r.state = 'confirmed' AND r.customer_id IS NOT NULL AND "
                    "r.occurred_at >= $2 AND r.occurred_at < $3 GROUP BY r.customer_id",
                    pid,
                    start,
                    end,
                )
            finally:
                await conn.close()
            print("\n".join(r[0] for r in plan))
    finally:
        await rt.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--receipts", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--db", default=None, help="time this existing database instead")
    ap.add_argument("--program", default=None, help="program code in --db")
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args()
    if args.db:
        asyncio.run(measure(args.db, args.program, args.runs, args.explain))
        return 0
    name = f"kopilka_bench_rfm_{secrets.token_hex(3)}"
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(url)
        code = asyncio.run(generate(url, args.customers, args.receipts, args.seed))
        print(f"{args.customers} customers, {args.receipts} receipts in {name}", file=sys.stderr)
        asyncio.run(measure(url, code, args.runs, args.explain))
    finally:
        if args.keep:
            print(f"kept: {url}", file=sys.stderr)
        else:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
