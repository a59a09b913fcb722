#!/usr/bin/env python3
"""Import benchmark: ``kopilka import receipts`` on a realistic file, SQLite and PostgreSQL.

It generates a CSV of N receipt lines (receipts of 1-30 lines, 70 % of them members',
a few hundred stores and SKUs, three years of dates; customers named by external id, by
phone or by card), imports it with the real command into a fresh SQLite file and a fresh
PostgreSQL database, imports it again (everything skipped), checks the ledger, and then
measures the baseline: the very rows the import wrote, read back and written again into
another fresh database by the driver alone (COPY on PostgreSQL, ``executemany`` in one
transaction per batch on SQLite), no parsing, no lookups.  Figures go to
``bench/results/import-<UTC time>.json``.

    .venv/bin/python bench/import_receipts.py                 # 200,000 lines, both
    .venv/bin/python bench/import_receipts.py -n 50000 --backend sqlite

A benchmark, not a test: it fails only when the setup breaks, never on slow figures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import resource
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_ADMIN_DEFAULT = os.environ.get(
    "KOPILKA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
HEADER = [
    "receipt_id", "occurred_at", "store", "customer", "sku", "name", "category",
    "quantity", "price", "amount",
]  # fmt: skip
CATEGORIES = [
    ("dairy", False), ("bakery", False), ("fruit_veg", True), ("meat", True),
    ("cheese", True), ("grocery", False), ("drinks", False), ("coffee", False),
    ("household", False), ("sweets", False),
]  # fmt: skip
# The tables an import writes, in the order the baseline writes them back.
TABLES = (
    "partners", "stores", "terminals", "customers", "accounts", "cards", "identifiers",
    "receipts", "receipt_lines", "imported_receipts",
)  # fmt: skip


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def kopilka_bin() -> str:
    here = Path(sys.executable).parent / "kopilka"
    return str(here if here.exists() else ROOT / ".venv" / "bin" / "kopilka")


# --- the file ---------------------------------------------------------------------------------


def generate(path: Path, n_lines: int, *, seed: int, stores: int, skus: int) -> dict[str, int]:
    """A realistic export: receipts of 1-30 lines in time order, 70 % members."""
    rng = random.Random(seed)
    catalogue = []
    for k in range(skus):
        cat, weighed = CATEGORIES[k % len(CATEGORIES)]
        price = rng.randint(2990, 99990)
        catalogue.append((f"{100000 + k}", f"Товар {k}, {cat}", cat, weighed, price))
    customers = max(n_lines // 40, 10)
    start = datetime(2023, 1, 1, 9, tzinfo=UTC)
    span_s = int(timedelta(days=3 * 365).total_seconds())
    receipts = lines = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        while lines < n_lines:
            receipts += 1
            when = start + timedelta(seconds=span_s * lines // n_lines + rng.randint(0, 3600))
            at = when.strftime("%Y-%m-%dT%H:%M:%S")
            store = f"S{rng.randrange(stores):03d}"
            who = _customer(rng, customers) if rng.random() < 0.7 else ""
            for _ in range(min(rng.randint(1, 30), n_lines - lines)):
                sku, name, cat, weighed, price = rng.choice(catalogue)
                if weighed:
                    qty = f"{rng.randint(100, 2500) / 1000:.3f}"
                    paid = (int(float(qty) * 1000) * price + 500) // 1000
                else:
                    q = rng.choice((1, 1, 1, 2, 3))
                    qty, paid = str(q), q * price
                if rng.random() < 0.1:  # a discount: paid less than the shelf price
                    paid = paid * 9 // 10
                w.writerow(
                    [f"R{receipts:08d}", at, store, who, sku, name, cat, qty,
                     f"{price // 100}.{price % 100:02d}", f"{paid // 100}.{paid % 100:02d}"]
                )  # fmt: skip
                lines += 1
    return {"lines": lines, "receipts": receipts, "customers": customers}


def _customer(rng: random.Random, n: int) -> str:
    """Most by the old system's id, some by phone."""
    k = rng.randrange(n)
    if k % 5 == 0:
        return f"+7 9{k % 100:02d} {k // 100 % 1000:03d}-{k % 97:02d}-{k % 89:02d}"
    return f"C{k:07d}"


# --- the runs --------------------------------------------------------------------------------


def run(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the command's process, its standard output).  The
    CPU time says what the import costs whatever else the machine is doing."""
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t0
    if out.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return took, _children_cpu() - cpu0, out.stdout.strip()


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def prepare(url: str) -> None:
    k = kopilka_bin()
    subprocess.run([k, "--db", url, "migrate"], check=True, capture_output=True)
    subprocess.run(
        [k, "--db", url, "program", "create", "--code", "bench", "--name", "Bench"],
        check=True,
        capture_output=True,
    )


def import_twice(url: str, csv_path: Path, lines: int) -> dict[str, Any]:
    k = kopilka_bin()
    first, cpu, summary = run([k, "--db", url, "import", "receipts", str(csv_path)])
    say(
        f"  import: {first:.2f} s, {lines / first:,.0f} lines/s "
        f"(process CPU {cpu:.2f} s: {lines / cpu:,.0f} lines per CPU-second): {summary}"
    )
    again, _, summary2 = run([k, "--db", url, "import", "receipts", str(csv_path)])
    say(f"  re-run: {again:.2f} s: {summary2}")
    verify = subprocess.run(
        [k, "--db", url, "ledger", "verify"], capture_output=True, text=True, check=False
    )
    return {
        "import_s": round(first, 3),
        "lines_per_s": round(lines / first),
        "import_cpu_s": round(cpu, 3),
        "lines_per_cpu_s": round(lines / cpu),
        "summary": summary,
        "rerun_s": round(again, 3),
        "rerun_summary": summary2,
        "ledger_verify_exit": verify.returncode,
    }


# --- the baseline: the same rows by the driver alone ------------------------------------------


def sqlite_rows(path: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    conn = sqlite3.connect(path)
    out = {}
    for table in TABLES:
        cur = conn.execute(f"SELECT * FROM {table}")
        out[table] = ([d[0] for d in cur.description], cur.fetchall())
    conn.close()
    return out


def sqlite_baseline(src: str, dst: str, batch_lines: int) -> float:
    rows = sqlite_rows(src)
    conn = sqlite3.connect(dst, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")  # as the import's connection has them
    t0 = time.perf_counter()
    for table in TABLES:
        cols, data = rows[table]
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        for i in range(0, len(data), batch_lines):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, data[i : i + batch_lines])
            conn.execute("COMMIT")
    took = time.perf_counter() - t0
    conn.close()
    return took


async def pg_baseline(src: str, dst: str, batch_lines: int) -> float:
    import asyncpg

    a = await asyncpg.connect(src)
    data = {}
    for table in TABLES:
        recs = await a.fetch(f"SELECT * FROM {table}")
        cols = list(recs[0].keys()) if recs else []
        data[table] = (cols, [tuple(r) for r in recs])
    await a.close()
    b = await asyncpg.connect(dst)
    t0 = time.perf_counter()
    for table in TABLES:
        cols, recs = data[table]
        for i in range(0, len(recs), batch_lines):
            async with b.transaction():
                await b.copy_records_to_table(
                    table, records=recs[i : i + batch_lines], columns=cols
                )
    took = time.perf_counter() - t0
    await b.close()
    return took


async def pg_admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# --- main ---------------------------------------------------------------------------------


def bench_sqlite(tmp: Path, csv_path: Path, lines: int, batch: int) -> dict[str, Any]:
    say("SQLite")
    db, base = tmp / "import.db", tmp / "baseline.db"
    prepare(f"sqlite:///{db}")
    out = import_twice(f"sqlite:///{db}", csv_path, lines)
    prepare(f"sqlite:///{base}")
    took = sqlite_baseline(str(db), str(base), batch)
    out |= {"baseline_s": round(took, 3), "baseline_lines_per_s": round(lines / took)}
    say(f"  baseline (executemany of the same rows): {took:.2f} s, {lines / took:,.0f} lines/s")
    return out


def bench_pg(admin: str, csv_path: Path, lines: int, batch: int) -> dict[str, Any]:
    say("PostgreSQL")
    names = [f"kopilka_bench_import_{secrets.token_hex(3)}" for _ in range(2)]
    urls = [admin.rsplit("/", 1)[0] + "/" + n for n in names]
    for n in names:
        asyncio.run(pg_admin(admin, f'CREATE DATABASE "{n}"'))
    try:
        for u in urls:
            prepare(u)
        out = import_twice(urls[0], csv_path, lines)
        took = asyncio.run(pg_baseline(urls[0], urls[1], batch))
        out |= {"baseline_s": round(took, 3), "baseline_lines_per_s": round(lines / took)}
        say(f"  baseline (COPY of the same rows): {took:.2f} s, {lines / took:,.0f} lines/s")
        return out
    finally:
        for n in names:
            asyncio.run(pg_admin(admin, f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--lines", type=int, default=200_000)
    ap.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    ap.add_argument("--stores", type=int, default=300)
    ap.add_argument("--skus", type=int, default=500)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--batch-lines", type=int, default=20_000, help="baseline's batch size")
    ap.add_argument("--pg-admin", default=PG_ADMIN_DEFAULT)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_avg_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="kopilka-import-bench-") as d:
        tmp = Path(d)
        csv_path = tmp / "receipts.csv"
        t0 = time.perf_counter()
        results["file"] = generate(
            csv_path, args.lines, seed=args.seed, stores=args.stores, skus=args.skus
        )
        results["file"]["bytes"] = csv_path.stat().st_size
        say(f"file: {results['file']} in {time.perf_counter() - t0:.1f} s")
        lines = results["file"]["lines"]
        if args.backend in ("sqlite", "both"):
            results["sqlite"] = bench_sqlite(tmp, csv_path, lines, args.batch_lines)
        if args.backend in ("pg", "both"):
            results["pg"] = bench_pg(args.pg_admin, csv_path, lines, args.batch_lines)
    results["load_avg_after"] = os.getloadavg()[0]
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        (RESULTS / f"import-{stamp}.json").write_bytes(
            orjson.dumps(results, option=orjson.OPT_INDENT_2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
