"""Generate a large, realistic analytics data set: receipts, receipt lines, refunds and
ledger entries of one program, written straight into a migrated Kopilka database.

    .venv/bin/python bench/analytics_data.py --pg postgresql://postgres@127.0.0.1:5432/kopilka_bench
    .venv/bin/python bench/analytics_data.py --sqlite /tmp/bench.db --lines 200000

PostgreSQL gets the rows through COPY (asyncpg's binary ``copy_records_to_table``),
SQLite through ``executemany`` in one transaction.  The database is created and migrated
first (it must not exist yet, or pass ``--reuse`` to add to an empty migrated one).

The model (deterministic for a given ``--seed``):

- ``--customers`` members join over the period (more in the first months: the
  installation's start), each with a monthly purchase rate (log-normal, mean ~1.1 a
  month) and a monthly churn probability (mean ~12 %): retention curves that decay.
- Non-member receipts make up ``--guest-share`` of all receipts, spread over the days.
- Weekly rhythm (Friday/Saturday busier) and a December peak weigh the days.
- About 10 lines a receipt (1-25), prices 30-2,000 roubles in kopecks, a tenth of the
  lines weighed goods (quantity in grams), 0-15 % discount a line.
- Members earn 5 % of what they pay as points; a fifth of member receipts burn points
  (up to 30 % of the receipt); 2 % of receipts get a refund 1-10 days later.
- Lots expire: one ``expire`` entry per customer a year after joining for a share of
  his points.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import math
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

CATEGORIES = ["dairy", "bakery", "meat", "fish", "vegetables", "fruit", "drinks", "sweets",
              "household", "frozen", "grocery", "snacks"]  # fmt: skip
CITIES = ["Москва", "Санкт-Петербург", "Казань", "Екатеринбург", "Новосибирск",
          "Нижний Новгород", "Самара", "Краснодар", "Воронеж", "Пермь"]  # fmt: skip
MSK = timedelta(hours=3)


def args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pg", help="PostgreSQL URL of the database to create and fill")
    p.add_argument("--sqlite", help="SQLite file to create and fill")
    p.add_argument("--lines", type=int, default=10_000_000, help="receipt lines (about)")
    p.add_argument("--customers", type=int, default=None, help="default: lines / 100")
    p.add_argument("--stores", type=int, default=60)
    p.add_argument("--from", dest="start", default="2025-09-01")
    p.add_argument("--months", type=int, default=15)
    p.add_argument("--guest-share", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=8)
    p.add_argument("--reuse", action="store_true", help="the database exists and is migrated")
    return p


class World:
    """The fixed part: program, partners, stores, terminals, customers and their plans."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.rnd = random.Random(a.seed)
        self.start = datetime.combine(date.fromisoformat(a.start), datetime.min.time(), UTC) - MSK
        self.days = int(a.months * 30.4)
        self.lines_target = a.lines
        self.n_customers = a.customers or max(100, a.lines // 100)
        self.n_stores = a.stores
        self.guest_share = a.guest_share
        self.day_weights = self._day_weights()
        self.cum = list(_cumsum(self.day_weights))

    def _day_weights(self) -> list[float]:
        out = []
        for d in range(self.days):
            day = (self.start + MSK + timedelta(days=d)).date()
            w = [1.0, 0.95, 0.95, 1.0, 1.15, 1.3, 1.1][day.weekday()]
            if day.month == 12:
                w *= 1.0 + 0.5 * day.day / 31
            out.append(w * (1 + 0.3 * d / self.days))  # the chain grows
        return out

    def random_day(self, lo: int = 0) -> int:
        total = self.cum[-1]
        base = self.cum[lo - 1] if lo else 0.0
        return bisect.bisect_left(self.cum, base + self.rnd.random() * (total - base))

    def plans(self) -> list[tuple[int, int]]:
        """(customer number, day) of every member receipt; customers join early more often."""
        rnd = self.rnd
        mean_lines = 10.0
        member_receipts = self.lines_target / mean_lines * (1 - self.guest_share)
        # the expected receipts per customer with rate r and churn c over the remaining
        # months is about r / c; the rates are scaled to meet the target
        out: list[tuple[int, int]] = []
        raw: list[tuple[int, float, float]] = []
        for _c in range(1, self.n_customers + 1):
            join = min(self.days - 1, int(self.days * rnd.random() ** 1.6))
            rate = rnd.lognormvariate(0, 0.8)
            churn = min(0.9, max(0.02, rnd.gauss(0.12, 0.06)))
            raw.append((join, rate, churn))
        expected = sum(r * min(1 / ch, (self.days - j) / 30.4) for j, r, ch in raw)
        # the estimate above ignores the first month's forced purchase and the churn draw
        # before the first full month; measured: it comes out 12 % low (8.83 M of 10 M)
        scale = member_receipts / expected * 1.13
        for c, (join, rate, churn) in enumerate(raw, start=1):
            month = 0
            while True:
                lo = join + int(month * 30.4)
                if lo >= self.days:
                    break
                hi = min(self.days, lo + 30)
                n = _poisson(rnd, rate * scale)
                if month == 0:
                    n = max(1, n)
                    out.append((c, join))
                    n -= 1
                for _ in range(n):
                    out.append((c, rnd.randrange(lo, hi)))
                if rnd.random() < churn:
                    break
                month += 1
        guests = int(len(out) * self.guest_share / (1 - self.guest_share))
        out.extend((0, self.random_day()) for _ in range(guests))
        out.sort(key=lambda x: x[1])
        return out


def _cumsum(xs: list[float]) -> Iterator[float]:
    s = 0.0
    for x in xs:
        s += x
        yield s


def _poisson(rnd: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rnd.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rnd.random()
        if p <= threshold:
            return k
        k += 1


def fixed_rows(w: World, now: datetime) -> dict[str, list[tuple[Any, ...]]]:
    rnd = w.rnd
    settings = '{"earn_percent": "5", "point_value": "1", "timezone": "Europe/Moscow"}'
    rows: dict[str, list[tuple[Any, ...]]] = {
        "programs": [(1, "bench", "Bench program", "RUB", settings, 1, now)],
        "partners": [
            (1, 1, "main", "Main chain"),
            (2, 1, "pharma", "Pharmacy"),
            (3, 1, "fuel", "Fuel stations"),
        ],
        "stores": [],
        "terminals": [],
    }
    for s in range(1, w.n_stores + 1):
        partner = 1 if s % 5 else 2 + s % 2
        city = CITIES[min(len(CITIES) - 1, int(len(CITIES) * rnd.random() ** 2))]
        rows["stores"].append((s, 1, partner, f"S{s:03d}", f"Store {s:03d}", city, city))
        rows["terminals"].append((s, 1, s, "till", f"benchkey{s:056d}", "kp_bench", now))
    return rows


def customer_rows(w: World, joins: dict[int, int]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    rnd = w.rnd
    for c in range(1, w.n_customers + 1):
        day = joins.get(c, w.days - 1)
        reg = w.start + timedelta(days=day, seconds=rnd.randrange(8 * 3600, 21 * 3600))
        tags = '["staff"]' if c % 97 == 0 else ('["wholesale"]' if c % 41 == 0 else None)
        yield "customers", (c, 1, f"+79{c:09d}", reg, tags, reg if rnd.random() < 0.8 else None)
        tier = "gold" if c % 10 == 0 else ("silver" if c % 3 == 0 else "base")
        yield "accounts", (c, 1, c, reg, reg, tier)
        yield "cards", (c, 1, c, c, f"27{c:011d}", reg)


class Receipts:
    """Receipts with their lines, ledger entries and refunds, generated in id order."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.rnd = w.rnd
        self.ledger_id = 0
        self.refund_id = 0
        self.points: dict[int, int] = {}  # customer -> hundredths of a point

    def make(self, rid: int, customer: int, day: int) -> dict[str, list[tuple[Any, ...]]]:
        rnd, w = self.rnd, self.w
        out: dict[str, list[tuple[Any, ...]]] = {"receipts": [], "receipt_lines": [],
                                                 "ledger_entries": [], "refunds": []}  # fmt: skip
        store = 1 + int(w.n_stores * rnd.random() ** 1.3) if customer == 0 else (
            1 + (customer * 7 + (rid % 3 == 0) * rid) % w.n_stores)  # fmt: skip
        at = w.start + timedelta(days=day, seconds=rnd.randrange(8 * 3600, 22 * 3600))
        n = max(1, min(25, round(rnd.gammavariate(2.5, 4.0))))
        tot_amount = tot_disc = tot_pay = 0
        for i in range(n):
            weighed = rnd.random() < 0.1
            qty = rnd.randrange(150, 2500) if weighed else 1000 * (1 + (rnd.random() < 0.2))
            price = int(rnd.lognormvariate(5.0, 0.9) * 100)
            amount = price * qty // 1000
            disc = amount * rnd.choice((0, 0, 0, 5, 10, 15)) // 100
            pay = amount - disc
            cat = CATEGORIES[(rid + i * 7) % len(CATEGORIES)]
            sku = f"{cat[:3].upper()}{(rid * 31 + i * 17) % 2000:05d}"
            out["receipt_lines"].append(
                (rid, i, 1, sku, f"Item {sku}", cat, qty, price, amount, disc, 0, 0, pay, 0, 0)
            )
            tot_amount += amount
            tot_disc += disc
            tot_pay += pay
        burned = 0
        if customer and self.points.get(customer, 0) > 10000 and rnd.random() < 0.2:
            burned = min(self.points[customer], tot_pay * 30 // 100) // 100 * 100
        to_pay = tot_pay - burned
        earned = (to_pay * 5 // 100) // 100 * 100 if customer else 0
        confirmed = at + timedelta(seconds=rnd.randrange(5, 120))
        account = customer or None
        out["receipts"].append(
            (rid, 1, 1 + (store % 5 == 0) * (1 + store % 2), store, store, f"R{rid}", account,
             account, account, "confirmed", at, at, confirmed, f"c{store}-{rid % 4}", tot_amount,
             tot_disc, burned, burned, to_pay, earned, 1, f"{rid:064x}", "pos")
        )  # fmt: skip
        if customer:
            if burned:
                self._entry(out, customer, "burn", -burned, rid, None, confirmed)
            if earned:
                self._entry(out, customer, "earn", earned, rid, None, confirmed)
        if rnd.random() < 0.02:
            self._refund(out, rid, customer, store, to_pay, earned, confirmed)
        return out

    def _entry(self, out: Any, cust: int, kind: str, amt: int, rid: int | None,
               refund: int | None, at: datetime) -> None:  # fmt: skip
        self.ledger_id += 1
        self.points[cust] = self.points.get(cust, 0) + amt
        out["ledger_entries"].append((self.ledger_id, 1, cust, kind, amt, 0, rid, refund, 1, at))

    def _refund(self, out: Any, rid: int, cust: int, store: int, to_pay: int, earned: int,
                confirmed: datetime) -> None:  # fmt: skip
        self.refund_id += 1
        share = self.rnd.choice((1.0, 0.5, 0.25))
        at = confirmed + timedelta(days=self.rnd.randrange(1, 11), hours=self.rnd.randrange(0, 8))
        amount = int(to_pay * share)
        taken = int(earned * share) // 100 * 100
        out["refunds"].append(
            (self.refund_id, 1, rid, f"F{rid}", store, "0" * 64, b"{}", amount, taken, 0, 0, at)
        )
        if cust and taken:
            self._entry(out, cust, "refund", -taken, rid, self.refund_id, at)


COLUMNS = {
    "programs": ["id", "code", "name", "currency", "settings", "version", "created_at"],
    "partners": ["id", "program_id", "code", "name"],
    "stores": ["id", "program_id", "partner_id", "code", "name", "city", "region"],
    "terminals": ["id", "program_id", "store_id", "name", "key_hash", "key_prefix", "created_at"],
    "customers": ["id", "program_id", "phone", "registered_at", "tags", "phone_confirmed_at"],
    "accounts": ["id", "program_id", "customer_id", "created_at", "updated_at", "tier"],
    "cards": ["id", "program_id", "account_id", "customer_id", "number", "created_at"],
    "receipts": [
        "id",
        "program_id",
        "partner_id",
        "store_id",
        "terminal_id",
        "pos_receipt_id",
        "account_id",
        "customer_id",
        "card_id",
        "state",
        "occurred_at",
        "created_at",
        "confirmed_at",
        "cashier_id",
        "amount",
        "discount",
        "points_redeemed",
        "redeemed_value",
        "to_pay",
        "points_earned",
        "program_version",
        "request_hash",
        "source",
    ],
    "receipt_lines": [
        "receipt_pk",
        "idx",
        "program_id",
        "sku",
        "name",
        "category",
        "quantity",
        "price",
        "amount",
        "discount",
        "points_redeemed",
        "redeemed_value",
        "to_pay",
        "points_earned",
        "refunded_quantity",
    ],
    "ledger_entries": [
        "id",
        "program_id",
        "account_id",
        "kind",
        "amount",
        "held_delta",
        "receipt_pk",
        "refund_pk",
        "funding_partner_id",
        "created_at",
    ],
    "refunds": [
        "id",
        "program_id",
        "receipt_pk",
        "pos_refund_id",
        "terminal_id",
        "request_hash",
        "response",
        "amount",
        "points_taken_back",
        "points_returned",
        "points_uncollected",
        "created_at",
    ],
}


class PgSink:
    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+asyncpg://", "postgresql://")

    async def open(self) -> None:
        import asyncpg

        self.conn = await asyncpg.connect(self.url)

    async def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            await self.conn.copy_records_to_table(table, records=rows, columns=COLUMNS[table])

    async def close(self) -> None:
        for table in ("receipts", "ledger_entries", "refunds", "customers", "accounts", "cards",
                      "stores", "terminals", "partners", "programs"):  # fmt: skip
            await self.conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        await self.conn.execute("ANALYZE")
        await self.conn.close()


class SqliteSink:
    def __init__(self, path: str) -> None:
        self.path = path

    async def open(self) -> None:
        self.conn = sqlite3.connect(self.path)
        self.conn.execute("PRAGMA synchronous=OFF")

    async def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cols = COLUMNS[table]
        conv = [tuple(_sqlite_value(v) for v in r) for r in rows]
        marks = ",".join("?" * len(cols))
        self.conn.executemany(f"INSERT INTO {table} ({','.join(cols)}) VALUES ({marks})", conv)

    async def close(self) -> None:
        self.conn.commit()
        self.conn.execute("ANALYZE")
        self.conn.close()


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return v


async def fill(sink: PgSink | SqliteSink, w: World) -> dict[str, int]:
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    plans = w.plans()
    joins: dict[int, int] = {}
    for c, day in plans:
        if c and c not in joins:
            joins[c] = day
    print(f"planned {len(plans):,} receipts in {time.perf_counter() - t0:.1f} s", flush=True)
    await sink.open()
    for table, rows in fixed_rows(w, now).items():
        await sink.write(table, rows)
    batch: dict[str, list[tuple[Any, ...]]] = {"customers": [], "accounts": [], "cards": []}
    for table, row in customer_rows(w, joins):
        batch[table].append(row)
    for table in ("customers", "accounts", "cards"):
        await sink.write(table, batch[table])
    gen = Receipts(w)
    counts = {"receipts": 0, "receipt_lines": 0, "ledger_entries": 0, "refunds": 0}
    chunk: dict[str, list[tuple[Any, ...]]] = {k: [] for k in counts}
    pending_refunds: list[tuple[Any, ...]] = []
    for rid, (customer, day) in enumerate(plans, start=1):
        for table, rows in gen.make(rid, customer, day).items():
            (pending_refunds if table == "refunds" else chunk[table]).extend(rows)
        if rid % 20_000 == 0 or rid == len(plans):
            chunk["refunds"] = pending_refunds
            pending_refunds = []
            for table in ("receipts", "receipt_lines", "ledger_entries", "refunds"):
                await sink.write(table, chunk[table])
                counts[table] += len(chunk[table])
                chunk[table] = []
            rate = counts["receipt_lines"] / (time.perf_counter() - t0)
            print(f"{rid:,} receipts, {counts['receipt_lines']:,} lines ({rate:,.0f}/s)",
                  flush=True)  # fmt: skip
    await _expiries(sink, w, gen, joins)
    await sink.close()
    counts["customers"] = w.n_customers
    counts["seconds"] = round(time.perf_counter() - t0)
    return counts


async def _expiries(
    sink: PgSink | SqliteSink, w: World, gen: Receipts, joins: dict[int, int]
) -> None:
    out: dict[str, list[tuple[Any, ...]]] = {"ledger_entries": []}
    for c, day in joins.items():
        left = gen.points.get(c, 0)
        if day + 365 < w.days and left > 1000:
            at = w.start + timedelta(days=day + 365, hours=1)
            gen._entry(out, c, "expire", -(left // 300 * 100), None, None, at)
    await sink.write("ledger_entries", out["ledger_entries"])


def main(argv: list[str] | None = None) -> int:
    a = args_parser().parse_args(argv)
    if bool(a.pg) == bool(a.sqlite):
        print("error: give exactly one of --pg URL or --sqlite FILE", file=sys.stderr)
        return 2
    from kopilka.store.migrate import upgrade

    if a.pg:
        if not a.reuse:
            _create_pg(a.pg)
        upgrade(a.pg)
        sink: PgSink | SqliteSink = PgSink(a.pg)
    else:
        upgrade(f"sqlite:///{a.sqlite}")
        sink = SqliteSink(a.sqlite)
    counts = asyncio.run(fill(sink, World(a)))
    print(counts)
    return 0


def _create_pg(url: str) -> None:
    import asyncpg

    admin, name = url.rsplit("/", 1)

    async def go() -> None:
        conn = await asyncpg.connect(admin + "/postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())


if __name__ == "__main__":
    raise SystemExit(main())
