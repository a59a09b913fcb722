"""Time the analytics reports on a large data set (``bench/analytics_data.py``): each
report read from the summary tables, and the baseline that aggregates the receipts,
lines, refunds and ledger directly; plus the maintenance (a rebuild is timed by
``kopilka report rebuild-summary``; here one day of incremental refresh).

    .venv/bin/python bench/reports.py --db postgresql://postgres@127.0.0.1:5432/kopilka_bench
    .venv/bin/python bench/reports.py --db sqlite:////tmp/bench.db --repeat 1

Prints a table and writes ``bench/results/reports-<UTC>.json``.  The summary tables must
have been built (``kopilka --db URL report rebuild-summary``).  RFM is timed when its
module (``kopilka.analytics.rfm``) exists in this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from kopilka.analytics import cohorts, facts, stores, summary
from kopilka.domain.summary import Period
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

RESULTS = Path(__file__).parent / "results"


async def _time(fn: Callable[[], Awaitable[Any]], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3)}


async def _counts(rt: Runtime) -> dict[str, int]:
    out = {}
    async with rt.engine.connect() as conn:
        for table in (t.receipts, t.receipt_lines, t.refunds, t.ledger_entries, t.customers,
                      t.sales_daily, t.points_daily, t.customer_days):  # fmt: skip
            out[table.name] = int(
                (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            )
    return out


async def _cohorts_baseline(rt: Runtime, program_id: int, tz: str) -> Any:
    """The cohorts straight from the receipts (PostgreSQL only: month arithmetic in SQL)."""
    sql = text(
        "WITH m AS (SELECT DISTINCT customer_id, "
        "date_trunc('month', occurred_at AT TIME ZONE :tz)::date AS month FROM receipts "
        "WHERE program_id = :p AND state = 'confirmed' AND customer_id IS NOT NULL), "
        "f AS (SELECT customer_id, min(month) AS m0 FROM m GROUP BY customer_id) "
        "SELECT f.m0, m.month, count(*) FROM m JOIN f USING (customer_id) GROUP BY 1, 2"
    )
    async with rt.engine.connect() as conn:
        return (await conn.execute(sql, {"tz": tz, "p": program_id})).all()


async def run(a: argparse.Namespace) -> dict[str, Any]:
    rt = Runtime.from_url(a.db)
    try:
        pid = a.program
        settings = await rt.program(pid)
        end = date.fromisoformat(a.end)
        year = Period(end - timedelta(days=364), end)
        month = Period(end - timedelta(days=29), end)
        everything = Period(date.fromisoformat(a.start), end)
        cases: list[tuple[str, str, Callable[[], Awaitable[Any]]]] = []
        for label, period, by in (("year", year, "month"), ("30 days", month, "day")):
            for source, use in (("summary tables", True), ("receipts (baseline)", False)):
                report = summary.summary_report
                cases.append((f"summary, {label} by {by}", source,
                              lambda p=period, b=by, u=use, f=report: f(
                                  rt, program_id=pid, period=p, granularity=b,
                                  use_tables=u)))  # fmt: skip
        cases.append(("summary, year, tag 'staff'", "receipts (group filter)",
                      lambda: summary.summary_report(rt, program_id=pid, period=year,
                                                     granularity="month",
                                                     filters=summary.Filters(tag="staff")),
                      ))  # fmt: skip
        cases.append(("stores & cashiers, year", "summary tables",
                      lambda: stores.store_rows(rt, program_id=pid, period=year)))  # fmt: skip
        sc = facts.Scope(pid, settings.timezone, rt.sqlite)

        async def stores_baseline() -> Any:
            async with rt.engine.connect() as conn:
                start = facts.day_start(year.start, sc.tz)
                stop = facts.day_start(year.end + timedelta(1), sc.tz)
                return await facts.sales_facts(conn, sc, start, stop)

        cases.append(("stores & cashiers, year", "receipts (baseline)", stores_baseline))
        cases.append(("cohorts, all months", "summary tables",
                      lambda: cohorts.cohort_rows(rt, program_id=pid, period=everything,
                                                  as_of=end)))  # fmt: skip
        if not rt.sqlite:
            cases.append(("cohorts, all months", "receipts (baseline)",
                          lambda: _cohorts_baseline(rt, pid, settings.timezone)))  # fmt: skip
        if importlib.util.find_spec("kopilka.analytics.rfm") is None:
            print("RFM: kopilka.analytics.rfm is not in this checkout; not timed")
        results = []
        for name, source, fn in cases:
            if a.only and not any(o in name for o in a.only):
                continue
            r = await _time(fn, a.repeat)
            results.append({"report": name, "source": source, **r})
            print(
                f"{name:34} {source:26} {r['median_s']:9.3f} s (min {r['min_s']:.3f})", flush=True
            )
        mark = await facts.watermark(rt)
        newest = await _newest(rt, pid)
        await facts.set_watermark(rt, newest - timedelta(days=1))
        t0 = time.perf_counter()
        done = await facts.refresh(rt)
        refresh_s = round(time.perf_counter() - t0, 3)
        if mark is not None:
            await facts.set_watermark(rt, mark)
        print(f"refresh of the last day's changes: {done.days} days re-aggregated in {refresh_s} s")
        results.append({"report": "refresh (the last day's changes)", "source": "maintenance",
                        "median_s": refresh_s, "min_s": refresh_s, "days": done.days})  # fmt: skip
        return {"db": "sqlite" if rt.sqlite else "postgresql", "rows": await _counts(rt),
                "results": results}  # fmt: skip
    finally:
        await rt.close()


async def _newest(rt: Runtime, pid: int) -> datetime:
    async with rt.engine.connect() as conn:
        q = select(func.max(t.ledger_entries.c.created_at)).where(
            t.ledger_entries.c.program_id == pid
        )
        newest: datetime = (await conn.execute(q)).scalar_one()
    return newest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", required=True)
    p.add_argument("--program", type=int, default=1)
    p.add_argument("--from", dest="start", default="2025-09-01")
    p.add_argument("--to", dest="end", default="2026-11-30")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--only", action="append", default=[], help="reports whose name has this")
    a = p.parse_args()
    t0 = time.time()
    out = asyncio.run(run(a))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    out |= {"utc": stamp, "commit": commit, "repeat": a.repeat, "cpus": os.cpu_count(),
            "load_before": os.getloadavg(), "wall_s": round(time.time() - t0, 1)}  # fmt: skip
    if not a.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"reports-{out['db']}-{stamp}.json"
        path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
