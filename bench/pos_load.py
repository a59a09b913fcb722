#!/usr/bin/env python3
"""POS load benchmark: many concurrent tills doing lookup -> calculate -> confirm.

For each backend (SQLite, PostgreSQL) it prepares a fresh database, migrates it, seeds a
bench fixture, starts the real server (``kopilka serve``) as a subprocess and drives it
with N tills, each a coroutine on its own keep-alive HTTP/1.1 connection.  Then it
measures the confirm endpoint alone, stops the server, checks the ledger
(``kopilka ledger verify``) and measures the database's own ceiling for the confirm's
writes (pgbench with ``bench/pgbench_confirm.sql`` on PostgreSQL; the same statements in
one Python sqlite3 writer loop on SQLite).  Figures go to ``bench/results/``.

    ./dev bench                          # both backends, 16 tills, 20 s after a 3 s warm-up
    ./dev bench --backend pg -d 60       # PostgreSQL only, one minute
    .venv/bin/python bench/pos_load.py --help

This is a benchmark, not a test: it never fails on slow figures, only on broken setups.
See bench/README.md for what every figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import orjson

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PGBENCH_SQL = BENCH / "pgbench_confirm.sql"
API = "/api/pos/v1"
CALLS = ("lookup", "calculate", "confirm")
PG_ADMIN_DEFAULT = os.environ.get(
    "KOPILKA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def kopilka_bin() -> str:
    here = Path(sys.executable).parent / "kopilka"
    return str(here if here.exists() else ROOT / ".venv" / "bin" / "kopilka")


# --- the product catalogue and baskets ----------------------------------------------------

# (category, sold by weight, price range in kopecks, product names)
CATEGORIES: list[tuple[str, bool, tuple[int, int], list[str]]] = [
    ("dairy", False, (4990, 39990), ["Молоко 3,2% 1 л", "Кефир 1%", "Творог 5%", "Сметана"]),
    ("bakery", False, (2990, 19990), ["Хлеб бородинский", "Батон нарезной", "Круассан"]),
    ("fruit_veg", True, (4990, 59990), ["Яблоки Гала", "Бананы", "Томаты", "Огурцы"]),
    ("meat", True, (29990, 129990), ["Куриное филе", "Свинина шея", "Говядина вырезка"]),
    ("cheese", True, (59990, 199990), ["Сыр Российский", "Сыр Гауда", "Пармезан"]),
    ("fish", True, (39990, 249990), ["Сёмга охлаждённая", "Треска", "Скумбрия"]),
    ("grocery", False, (5990, 49990), ["Гречка 900 г", "Рис басмати", "Макароны", "Мука"]),
    ("drinks", False, (3990, 29990), ["Вода минеральная 1,5 л", "Сок апельсиновый", "Квас"]),
    ("coffee", False, (29990, 249990), ["Кофе в зёрнах 1 кг", "Чай чёрный", "Какао"]),
    ("sweets", False, (3990, 39990), ["Шоколад тёмный", "Печенье овсяное", "Зефир"]),
    ("household", False, (9990, 99990), ["Средство для посуды", "Бумага туалетная"]),
    ("baby", False, (9990, 159990), ["Подгузники", "Пюре яблочное", "Смесь молочная"]),
]


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    category: str
    weight: bool
    price: int  # kopecks
    price_text: str


def make_catalogue(rng: random.Random, size: int = 3000) -> list[Product]:
    out = []
    for n in range(size):
        cat, weight, (lo, hi), names = CATEGORIES[n % len(CATEGORIES)]
        rub = rng.randint(lo, hi) // 100
        kop = rng.choice((90, 99, 0, 50, rng.randint(0, 99)))
        price = rub * 100 + kop
        sku = f"46{rng.randrange(10**10, 10**11)}"
        name = f"{rng.choice(names)}{', кг' if weight else ''} №{n}"
        out.append(Product(sku, name, cat, weight, price, f"{rub}.{kop:02d}"))
    return out


def basket(rng: random.Random, catalogue: list[Product]) -> tuple[list[dict[str, Any]], int]:
    """10-30 lines; weight goods with 3-decimal quantities; returns (lines, total kopecks)."""
    lines = []
    total = 0
    for p in rng.sample(catalogue, rng.randint(10, 30)):
        qty: int | float
        if p.weight:
            milli = rng.randint(150, 2500)
            qty = milli / 1000
        else:
            milli = 1000 * rng.choices((1, 2, 3, 6), (70, 20, 8, 2))[0]
            qty = milli // 1000
        total += (milli * p.price + 500) // 1000
        lines.append(
            {
                "sku": p.sku,
                "name": p.name,
                "category": p.category,
                "quantity": qty,
                "price": p.price_text,
            }
        )
    return lines, total


# --- the fixture ----------------------------------------------------------------------------

FIRST = ["Анна", "Мария", "Елена", "Ольга", "Иван", "Сергей", "Алексей", "Дмитрий", "Наталья"]
LAST = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Новиков"]


@dataclass
class Fixture:
    program_id: int
    partner_id: int
    store_id: int
    terminal_ids: list[int]
    keys: list[str]
    account_ids: list[int]
    cards: list[str]
    phones: list[str]
    points: list[int]


async def seed(
    url: str, *, customers: int, terminals: int, rng: random.Random, history: int = 50_000
) -> Fixture:
    """A program (default settings), a partner, a store, terminals with known keys, and
    member customers with a card, a phone and starting points.  Bulk inserts; the points are
    written as ``do_adjust`` would write them: a lot, an ``adjust`` entry, the balance."""
    from sqlalchemy import insert

    from kopilka.domain.identifiers import make_card_number
    from kopilka.domain.program import ProgramSettings
    from kopilka.services.purchases import lot_dates
    from kopilka.services.runtime import Runtime, hash_key, settings_to_json
    from kopilka.store import tables as t

    rt = Runtime.from_url(url)
    program = ProgramSettings()
    now = rt.now()
    _, expires = lot_dates(now, program)

    def ids(stmt: Any) -> Any:
        return stmt.returning(stmt.table.c.id, sort_by_parameter_order=True)

    try:
        async with rt.engine.begin() as conn:

            async def one(table: Any, row: dict[str, Any]) -> int:
                res = await conn.execute(insert(table).returning(table.c.id), row)
                return int(res.scalar_one())

            async def many(table: Any, rows: list[dict[str, Any]]) -> list[int]:
                res = await conn.execute(ids(insert(table)), rows)
                return [int(x) for x in res.scalars().all()]

            pid = await one(
                t.programs,
                {
                    "code": "bench",  # one bench program per (throwaway) database
                    "name": "Bench program",
                    "settings": settings_to_json(program),
                    "created_at": now,
                },
            )
            partner = await one(t.partners, {"program_id": pid, "code": "bench", "name": "Bench"})
            store = await one(
                t.stores,
                {
                    "program_id": pid,
                    "partner_id": partner,
                    "code": "BENCH1",
                    "name": "Bench store",
                    "city": "Москва",
                    "region": "Москва",
                    "latitude": 55.7558,
                    "longitude": 37.6173,
                },
            )
            keys = [f"kp_bench_{i:03d}_{secrets.token_hex(12)}" for i in range(terminals)]
            term_ids = await many(
                t.terminals,
                [
                    {
                        "program_id": pid,
                        "store_id": store,
                        "name": f"till {i + 1}",
                        "key_hash": hash_key(k),
                        "key_prefix": k[:10],
                        "created_at": now,
                    }
                    for i, k in enumerate(keys)
                ],
            )
            phones = [f"+7916{i:07d}" for i in range(customers)]
            cards = [make_card_number("29", i + 1) for i in range(customers)]
            points = [rng.randint(1000, 10000) for _ in range(customers)]
            cust_ids = await many(
                t.customers,
                [
                    {
                        "program_id": pid,
                        "first_name": rng.choice(FIRST),
                        "last_name": rng.choice(LAST),
                        "phone": phones[i],
                        "birthday": datetime(1960 + i % 45, 1 + i % 12, 1 + i % 28).date(),
                        "gender": "f" if i % 2 else "m",
                        "consent_sms": True,
                        "home_store_id": store,
                        "registered_at": now,
                        "phone_confirmed_at": now,
                    }
                    for i in range(customers)
                ],
            )
            acc_ids = await many(
                t.accounts,
                [
                    {
                        "program_id": pid,
                        "customer_id": c,
                        "balance": Decimal(points[i]),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, c in enumerate(cust_ids)
                ],
            )
            card_ids = await many(
                t.cards,
                [
                    {
                        "program_id": pid,
                        "account_id": acc_ids[i],
                        "customer_id": cust_ids[i],
                        "number": cards[i],
                        "created_at": now,
                    }
                    for i in range(customers)
                ],
            )
            idents = []
            for i, card_id in enumerate(card_ids):
                idents.append(
                    {"program_id": pid, "value": cards[i], "kind": "card", "card_id": card_id}
                )
                idents.append(
                    {"program_id": pid, "value": phones[i], "kind": "phone", "card_id": card_id}
                )
            await conn.execute(insert(t.identifiers), idents)
            lot_ids = await many(
                t.lots,
                [
                    {
                        "program_id": pid,
                        "account_id": acc_ids[i],
                        "amount": Decimal(points[i]),
                        "remaining": Decimal(points[i]),
                        "activates_at": now,
                        "expires_at": expires,
                        "created_at": now,
                    }
                    for i in range(customers)
                ],
            )
            await conn.execute(
                insert(t.ledger_entries),
                [
                    {
                        "program_id": pid,
                        "account_id": acc_ids[i],
                        "kind": "adjust",
                        "amount": Decimal(points[i]),
                        "held_delta": Decimal(0),
                        "lot_id": lot_ids[i],
                        "created_at": now,
                        "note": "bench seed",
                    }
                    for i in range(customers)
                ],
            )
            # A production database has history.  Without it PostgreSQL plans the
            # foreign-key checks of receipt_lines -> receipts against an empty table
            # (a sequential scan, cached per connection), and every line inserted
            # later scans the whole growing table: a fixture artefact, not our cost.
            day = timedelta(days=1)
            for start in range(0, history, 5000):
                await conn.execute(
                    insert(t.receipts),
                    [
                        {
                            "program_id": pid,
                            "partner_id": partner,
                            "store_id": store,
                            "terminal_id": term_ids[i % len(term_ids)],
                            "pos_receipt_id": f"hist-{i}",
                            "state": "confirmed",
                            "occurred_at": now - day * (1 + i % 365),
                            "created_at": now - day * (1 + i % 365),
                            "confirmed_at": now - day * (1 + i % 365),
                            "amount": Decimal(100 + i % 900),
                            "discount": Decimal(0),
                            "points_redeemed": Decimal(0),
                            "redeemed_value": Decimal(0),
                            "to_pay": Decimal(100 + i % 900),
                            "points_earned": Decimal(0),
                            "request_hash": "history",
                        }
                        for i in range(start, min(history, start + 5000))
                    ],
                )
        if not rt.sqlite:  # a production database has statistics; a fresh one does not
            async with rt.engine.connect() as conn:
                ac = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await ac.exec_driver_sql("ANALYZE")
    finally:
        await rt.close()
    return Fixture(pid, partner, store, term_ids, keys, acc_ids, cards, phones, points)


# --- a minimal HTTP/1.1 client ---------------------------------------------------------------


class HttpError(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection on asyncio streams: request bytes out, status line
    + headers + Content-Length (or chunked) body in.  Cheap on CPU, unlike a full client."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host = host
        self.port = port
        self.prefix = f"Host: {host}:{port}\r\nAuthorization: Bearer {key}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: bytes, path: str, body: bytes = b"") -> tuple[int, bytes]:
        reused = self.writer is not None
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        head = b"%s %s HTTP/1.1\r\n%s" % (method, path.encode(), self.prefix)
        if method == b"POST":
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.writer.write(head + b"\r\n" + body)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as e:
            # The server closed a keep-alive connection that sat idle between phases: open
            # a new one and send again (every POS call is idempotent by its receipt_id).
            partial = getattr(e, "partial", b"")
            if not reused or partial:
                raise
            self.close()
            return await self.request(method, path, body)
        status = int(raw[9:12])
        length = -1
        chunked = close = False
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            data = b"".join(p[:-2] for p in parts)
        elif length >= 0:
            data = await self.reader.readexactly(length)
        else:
            data = await self.reader.read()
            close = True
        if close:
            self.close()
        return status, data


# --- the load ---------------------------------------------------------------------------------


@dataclass
class Till:
    no: int
    conn: Conn
    customers: list[int]
    rng: random.Random
    seq: int = 0


@dataclass
class Load:
    host: str
    port: int
    fx: Fixture
    catalogue: list[Product]
    member_share: float
    redeem_share: float
    tag: str
    avail: list[float]  # points known available per customer (lower bound)
    window: tuple[float, float] = (0.0, float("inf"))
    lat: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)
    receipts: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    async def call(
        self, till: Till, name: str, method: bytes, path: str, body: bytes = b""
    ) -> bytes | None:
        t0 = time.perf_counter()
        try:
            status, data = await till.conn.request(method, path, body)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            till.conn.close()
            status, data = 0, repr(e).encode()
        t1 = time.perf_counter()
        if not 200 <= status < 300:
            code = ""
            with contextlib.suppress(Exception):
                code = orjson.loads(data).get("code", "")
            self.errors[f"{name} {status} {code}".strip()] += 1
            if len(self.first_errors) < 5:
                self.first_errors.append(
                    f"{name} {method.decode()} {path} -> {status}: "
                    f"{data[:600].decode(errors='replace')}"
                )
            return None
        if self.window[0] <= t0 and t1 <= self.window[1]:
            self.lat.setdefault(name, []).append(t1 - t0)
        return data

    def next_id(self, till: Till, kind: str) -> str:
        till.seq += 1
        return f"{self.tag}-{kind}{till.no:02d}-{till.seq:06d}"

    async def receipt(self, till: Till) -> None:
        """One customer at the till: lookup (members), calculate, confirm."""
        rng = till.rng
        lines, total = basket(rng, self.catalogue)
        rid = self.next_id(till, "r")
        body: dict[str, Any] = {"receipt_id": rid, "cashier_id": str(rng.randint(1, 40))}
        ci = -1
        kind = "non_member"
        if rng.random() < self.member_share:
            kind = "member"
            ci = rng.choice(till.customers)
            ident = self.fx.cards[ci] if rng.random() < 0.85 else self.fx.phones[ci]
            found = await self.call(
                till, "lookup", b"GET", f"{API}/customers/lookup?identifier={quote(ident, safe='')}"
            )
            if found is None:
                return
            avail = float(orjson.loads(found)["balance"]["available"])
            self.avail[ci] = avail
            body["identifier"] = ident
            if rng.random() < self.redeem_share and avail >= 1:
                if rng.random() < 0.5:
                    body["redeem_points"] = "max"
                    kind = "member_redeem_max"
                else:
                    pts = min(rng.randint(10, 500), int(avail), total * 30 // 10000 - 1)
                    if pts >= 1:
                        body["redeem_points"] = pts if rng.random() < 0.5 else str(pts)
                        kind = "member_redeem_points"
        body["lines"] = lines
        calc = await self.call(
            till, "calculate", b"POST", f"{API}/purchases/calculate", orjson.dumps(body)
        )
        if calc is None:
            return
        if "redeem_points" in body:
            redeemed = float(orjson.loads(calc)["points_redeemed"])
            self.avail[ci] = max(self.avail[ci] - redeemed, 0.0)
        t0 = time.perf_counter()
        done = await self.call(till, "confirm", b"POST", f"{API}/purchases/{rid}/confirm")
        t1 = time.perf_counter()
        if done is not None and self.window[0] <= t0 and t1 <= self.window[1]:
            self.receipts += 1
            self.kinds[kind] += 1

    async def run_mixed(
        self, tills: list[Till], warmup: float, duration: float, on_window: Any = None
    ) -> None:
        start = time.perf_counter()
        self.window = (start + warmup, start + warmup + duration)

        async def window_start() -> None:
            await asyncio.sleep(warmup)
            if on_window is not None:
                on_window()

        async def loop(till: Till) -> None:
            while time.perf_counter() < self.window[1]:
                await self.receipt(till)

        await asyncio.gather(window_start(), *(loop(x) for x in tills))

    async def precalculate(self, till: Till, count: int) -> list[str]:
        """Member receipts that each hold a few points, for the confirm-only measurement."""
        rng = till.rng
        out = []
        for i in range(count):
            ci = till.customers[i % len(till.customers)]
            lines, total = basket(rng, self.catalogue)
            rid = self.next_id(till, "c")
            body: dict[str, Any] = {
                "receipt_id": rid,
                "identifier": self.fx.cards[ci],
                "lines": lines,
            }
            pts = min(rng.randint(10, 100), int(self.avail[ci]) - 1, total * 30 // 10000 - 1)
            if pts >= 1:
                body["redeem_points"] = pts
                self.avail[ci] -= pts
            if (
                await self.call(
                    till, "prepare", b"POST", f"{API}/purchases/calculate", orjson.dumps(body)
                )
                is not None
            ):
                out.append(rid)
        return out

    async def confirm_only(self, tills: list[Till], per_till: int) -> dict[str, Any]:
        prepared = await asyncio.gather(*(self.precalculate(x, per_till) for x in tills))
        self.window = (0.0, float("inf"))
        ok = 0

        async def confirm_all(till: Till, rids: list[str]) -> None:
            nonlocal ok
            for rid in rids:
                if (
                    await self.call(till, "confirm_only", b"POST", f"{API}/purchases/{rid}/confirm")
                    is not None
                ):
                    ok += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(confirm_all(x, r) for x, r in zip(tills, prepared, strict=True)))
        wall = time.perf_counter() - t0
        return {
            "prepared": sum(len(r) for r in prepared),
            "confirmed": ok,
            "seconds": round(wall, 3),
            "req_per_s": round(ok / wall, 1) if wall else 0.0,
            **summary(self.lat.get("confirm_only", []), wall),
        }


def summary(values: list[float], seconds: float) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    v = sorted(values)

    def pct(p: float) -> float:
        return round(v[min(len(v) - 1, int(p / 100 * len(v)))] * 1000, 2)

    return {
        "n": len(v),
        "per_s": round(len(v) / seconds, 1),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "mean_ms": round(sum(v) / len(v) * 1000, 2),
        "max_ms": round(v[-1] * 1000, 2),
    }


def cpu_ticks_of_tree(root: int) -> float:
    """CPU seconds (user + system) of a process and its descendants, from /proc."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        parents[int(d)] = int(rest[1])
        ticks[int(d)] = int(rest[11]) + int(rest[12])
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(ticks.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


def db_cpu_seconds(db_name: str | None) -> float:
    """CPU seconds of the PostgreSQL processes serving ``db_name`` (their backends, whose
    titles name the database) and of the WAL writer, when PostgreSQL runs on this
    machine; 0 for SQLite (the database is inside the server process)."""
    if not db_name:
        return 0.0
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            title = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ")
            if not title.startswith(b"postgres: "):
                continue
            if db_name.encode() not in title and b"walwriter" not in title:
                continue
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        total += int(rest[11]) + int(rest[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


async def drive(host: str, port: int, server_pid: int, fx: Fixture, args: Any) -> dict[str, Any]:
    rng = random.Random(args.seed)
    load = Load(
        host=host,
        port=port,
        fx=fx,
        catalogue=make_catalogue(rng),
        member_share=args.member_share,
        redeem_share=args.redeem_share,
        tag=secrets.token_hex(3),
        avail=[float(p) for p in fx.points],
    )
    n = args.tills
    tills = [
        Till(
            i,
            Conn(host, port, fx.keys[i % len(fx.keys)]),
            list(range(i, len(fx.cards), n)),  # a customer stands at one till at a time
            random.Random(args.seed * 1000 + i),
        )
        for i in range(n)
    ]
    for till in tills:
        await till.conn.open()
    db_name = getattr(args, "db_name", None)
    marks: list[tuple[float, tuple[int, int], float, float]] = []

    def mark() -> None:  # CPU figures cover the measured window only
        marks.append(
            (cpu_ticks_of_tree(server_pid), machine_ticks(), time.process_time(),
             db_cpu_seconds(db_name))
        )  # fmt: skip

    await load.run_mixed(tills, args.warmup, args.duration, on_window=mark)
    mark()
    (cpu0, mach0, own0, db0), (cpu1, mach1, own1, db1) = marks[0], marks[-1]
    elapsed = args.duration
    calls = {c: summary(load.lat.get(c, []), args.duration) for c in CALLS}
    mixed = {
        "receipts": load.receipts,
        "receipts_per_s": round(load.receipts / args.duration, 1),
        "receipt_kinds": dict(load.kinds),
        "calls": calls,
        "cpu": {
            "server_s_per_receipt_ms": round((cpu1 - cpu0) / max(load.receipts, 1) * 1000, 3),
            "server_cores": round((cpu1 - cpu0) / elapsed, 2),
            "loadgen_cores": round((own1 - own0) / elapsed, 2),
            "db_cores": round((db1 - db0) / elapsed, 2),
            "db_s_per_receipt_ms": round((db1 - db0) / max(load.receipts, 1) * 1000, 3),
            "machine_busy_cores": round(
                (mach1[0] - mach0[0]) / max(mach1[1] - mach0[1], 1) * (os.cpu_count() or 1), 2
            ),
        },
    }
    confirm = None
    if args.confirm_n > 0:
        confirm = await load.confirm_only(tills, max(args.confirm_n // n, 1))
    for till in tills:
        till.conn.close()
    return {
        "mixed": mixed,
        "confirm_only": confirm,
        "errors": {"count": sum(load.errors.values()), "by_kind": dict(load.errors)},
        "first_errors": load.first_errors,
    }


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(
    url: str, port: int, workers: int, log: Path, profile: Path | None = None
) -> subprocess.Popen[bytes]:
    cmd = [kopilka_bin(), "--db", url, "serve", "--port", str(port), "--workers", str(workers)]
    if profile is not None:  # one process, so that cProfile sees the requests
        cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), *cmd]
    say(" ".join(cmd))
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_health(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer /health in {timeout} s:\n{log.read_text()}")


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` (Linux: /proc/net/tcp*, state 0A)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for row in f.readlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def wait_listeners(port: int, workers: int, timeout: float = 60) -> None:
    """Every worker listens on a socket of its own (SO_REUSEPORT, kopilka/api/listen.py),
    and a connection goes only to a socket already listening: a till that connected
    while the second worker was still starting would stay on the first for the whole
    run. So the tills wait for all the workers (where /proc/net/tcp tells)."""
    if workers < 2 or not os.path.exists("/proc/net/tcp"):
        return
    deadline = time.monotonic() + timeout
    while listening_sockets(port) < workers and time.monotonic() < deadline:
        time.sleep(0.1)


def stop_server(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop our server's own session (uvicorn and its workers).  uvicorn re-raises the
    signal after a graceful shutdown; SIGINT then ends in KeyboardInterrupt, which lets
    cProfile write its file, where SIGTERM would kill the process first."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def print_profile(path: Path, top: int = 30) -> None:
    import pstats

    if not path.exists():
        say(f"no profile written to {path}")
        return
    say(f"server profile: {path} (open with python -m pstats or snakeviz)")
    st = pstats.Stats(str(path), stream=sys.stderr)
    st.sort_stats("tottime").print_stats(top)
    st.sort_stats("cumulative").print_stats(top)


def server_log_problems(log: Path) -> list[str]:
    text = log.read_text(errors="replace")
    blocks = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "Traceback" in line or line.startswith(("ERROR", "CRITICAL")):
            blocks.append("\n".join(lines[i : i + 40]))
            if len(blocks) >= 3:
                break
    return blocks


# --- the database's own ceiling ---------------------------------------------------------------


def pg_url(admin_url: str, db_name: str) -> str:
    """The admin URL with another database (a ``?host=/socket/dir`` query is kept)."""
    u = urlsplit(admin_url)
    return urlunsplit(u._replace(path=f"/{db_name}"))


async def pg_exec(url: str, sql: str, *params: Any) -> Any:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *params)
    finally:
        await conn.close()


async def pgbench_pool(url: str, fx: Fixture, pool: int) -> None:
    """Calculated receipts with active holds that the pgbench script confirms."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        calc = await conn.fetchval(
            "SELECT calc_response FROM receipts WHERE program_id = $1 AND account_id IS NOT NULL"
            " AND calc_response IS NOT NULL ORDER BY points_redeemed DESC, id DESC LIMIT 1",
            fx.program_id,
        )
        await conn.execute(
            """
            INSERT INTO receipts (program_id, partner_id, store_id, terminal_id, pos_receipt_id,
                account_id, customer_id, card_id, state, occurred_at, created_at, amount,
                discount, points_redeemed, redeemed_value, to_pay, points_earned, request_hash,
                calc_response, source)
            SELECT a.program_id, $2, $3, $4, 'pgbench-' || g, a.id, a.customer_id, c.id,
                'calculated', now(), now(), 318000, 0, 100, 100, 317900, 15900,
                md5(g::text) || md5(g::text), $5, 'calculate'
            FROM generate_series(1, $6) AS g
            JOIN (SELECT id, program_id, customer_id,
                         row_number() OVER (ORDER BY id) - 1 AS rn
                  FROM accounts WHERE program_id = $1) AS a ON a.rn = g % $7
            JOIN cards c ON c.account_id = a.id
            """,
            fx.program_id,
            fx.partner_id,
            fx.store_id,
            fx.terminal_ids[0],
            calc or b"{}",
            pool,
            len(fx.account_ids),
        )
        await conn.execute(
            """
            INSERT INTO holds (program_id, account_id, receipt_pk, amount, state, created_at,
                expires_at)
            SELECT program_id, account_id, id, 100, 'active', now(), now() + interval '1 hour'
            FROM receipts WHERE terminal_id = $1 AND pos_receipt_id LIKE 'pgbench-%'
            """,
            fx.terminal_ids[0],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def pgbench_bin() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(cand)
    raise SystemExit("pgbench not found (Debian: apt-get install postgresql-client)")


def pg_baseline(url: str, fx: Fixture, args: Any) -> dict[str, Any]:
    pool = 5000
    run_async(pgbench_pool(url, fx, pool))
    u = urlsplit(url)
    cmd = [pgbench_bin(), "-n", "-c", str(args.tills), "-j", "2", "-T", str(args.baseline_s)]
    cmd += ["-D", f"term={fx.terminal_ids[0]}", "-D", f"pool={pool}", "-D", "n=0"]
    host = u.hostname or dict(parse_qsl(u.query)).get("host") or "127.0.0.1"
    cmd += ["-f", str(PGBENCH_SQL), "-h", host, "-p", str(u.port or 5432)]
    cmd += ["-U", u.username or "postgres", u.path.lstrip("/")]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    shown = " ".join(cmd)
    say(shown)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    out = res.stdout + res.stderr
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    lat = re.search(r"latency average = ([\d.]+) ms", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    done = re.search(r"number of transactions actually processed: (\d+)", out)
    if res.returncode != 0 or tps is None:
        say(f"pgbench failed ({res.returncode}):\n{out}")
    return {
        "tool": "pgbench",
        "command": shown,
        "tx_per_s": round(float(tps.group(1)), 1) if tps else None,
        "latency_avg_ms": float(lat.group(1)) if lat else None,
        "transactions": int(done.group(1)) if done else None,
        "failed": int(failed.group(1)) if failed else None,
        "exit_code": res.returncode,
        "output_tail": out.strip().splitlines()[-12:],
    }


SQLITE_LINE_COLS = (
    "receipt_pk, idx, program_id, sku, name, category, quantity, price, amount, discount, "
    "points_redeemed, redeemed_value, to_pay, points_earned"
)


def sqlite_baseline(path: Path, fx: Fixture, seconds: float, rng: random.Random) -> dict[str, Any]:
    """The confirm's statements (as in pgbench_confirm.sql) in one Python sqlite3 writer
    loop, WAL, synchronous=NORMAL, BEGIN IMMEDIATE per transaction like the app."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")

    def ts(d: datetime) -> str:
        return d.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

    now = datetime.now(UTC)
    term = fx.terminal_ids[0]
    row = db.execute(
        "SELECT calc_response FROM receipts WHERE program_id = ? AND account_id IS NOT NULL "
        "AND calc_response IS NOT NULL ORDER BY points_redeemed DESC, id DESC LIMIT 1",
        (fx.program_id,),
    ).fetchone()
    calc = row[0] if row else b"{}"
    pool = 2000
    db.execute("BEGIN IMMEDIATE")
    for g in range(1, pool + 1):
        acc = fx.account_ids[g % len(fx.account_ids)]
        rid = db.execute(
            "INSERT INTO receipts (program_id, partner_id, store_id, terminal_id, pos_receipt_id,"
            " account_id, state, occurred_at, created_at, amount, discount, points_redeemed,"
            " redeemed_value, to_pay, points_earned, request_hash, calc_response, source)"
            " VALUES (?, ?, ?, ?, ?, ?, 'calculated', ?, ?, 318000, 0, 100, 100, 317900, 15900,"
            " ?, ?, 'calculate') RETURNING id",
            (
                fx.program_id,
                fx.partner_id,
                fx.store_id,
                term,
                f"sqlitebench-{g}",
                acc,
                ts(now),
                ts(now),
                f"{g:064d}",
                calc,
            ),
        ).fetchone()[0]
        db.execute(
            "INSERT INTO holds (program_id, account_id, receipt_pk, amount, state, created_at,"
            " expires_at) VALUES (?, ?, ?, 100, 'active', ?, ?)",
            (fx.program_id, acc, rid, ts(now), ts(now + timedelta(hours=1))),
        )
    db.execute("COMMIT")
    lines = [
        (
            f"46{rng.randrange(10**10, 10**11)}",
            f"Товар {k}",
            CATEGORIES[k % 12][0],
            1000 + 250 * (k % 3),
            8990 + 1000 * k,
            9000 + 1200 * k,
            0,
            5,
            5,
            8995 + 1200 * k,
            400,
        )
        for k in range(20)
    ]
    ins_lines = f"INSERT INTO receipt_lines ({SQLITE_LINE_COLS}) VALUES " + ", ".join(
        ["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(lines)
    )
    n = 0
    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < deadline:
        n += 1
        stamp = ts(datetime.now(UTC))
        g = rng.randint(1, pool)
        db.execute("BEGIN IMMEDIATE")
        r = db.execute(
            "SELECT id, state, account_id, occurred_at, calc_response, confirm_response,"
            " earned_lot_id, partner_id FROM receipts WHERE terminal_id = ? AND pos_receipt_id = ?",
            (term, f"sqlitebench-{g}"),
        ).fetchone()
        r_id, acc, partner = r[0], r[2], r[7]
        a = db.execute(
            "SELECT accounts.id, accounts.program_id, accounts.balance, accounts.held,"
            " accounts.debt, lots.id, lots.remaining, lots.activates_at, lots.expires_at"
            " FROM accounts LEFT OUTER JOIN lots ON lots.program_id = accounts.program_id"
            " AND lots.account_id = accounts.id AND lots.remaining > 0 WHERE accounts.id = ?",
            (acc,),
        ).fetchall()
        prog, bal, held, debt, burn_lot = a[0][1], a[0][2], a[0][3], a[0][4], a[-1][5]
        hold = db.execute(
            "UPDATE holds SET state = 'confirmed', resolved_at = ? WHERE receipt_pk = ?"
            " RETURNING id",
            (stamp, r_id),
        ).fetchone()[0]
        lot = db.execute(
            "INSERT INTO lots (program_id, account_id, amount, remaining, activates_at,"
            " expires_at, receipt_pk, funding_partner_id, created_at)"
            " VALUES (?, ?, 15900, 15900, ?, ?, ?, ?, ?) RETURNING id",
            (prog, acc, stamp, stamp, r_id, partner, stamp),
        ).fetchone()[0]
        db.execute("UPDATE lots SET remaining = remaining + ? WHERE id = ?", (-100, burn_lot))
        db.execute(
            "INSERT INTO ledger_entries (program_id, account_id, kind, amount, held_delta,"
            " lot_id, hold_id, receipt_pk, refund_pk, funding_partner_id, created_at)"
            " VALUES (?, ?, 'burn', -100, -100, ?, ?, ?, NULL, ?, ?),"
            " (?, ?, 'earn', 15900, 0, ?, NULL, ?, NULL, ?, ?)",
            (prog, acc, burn_lot, hold, r_id, partner, stamp, prog, acc, lot, r_id, partner, stamp),
        )
        db.execute(
            "UPDATE accounts SET balance = ?, held = ?, debt = ?, updated_at = ? WHERE id = ?",
            (bal + 15800, held, debt, stamp, acc),
        )
        params: list[Any] = []
        for k, ln in enumerate(lines):
            params += (r_id, 1000 + n * 32 + k, prog, *ln)
        db.execute(ins_lines, params)
        db.execute("UPDATE receipts SET earned_lot_id = ? WHERE id = ?", (lot, r_id))
        db.execute(
            "INSERT INTO outbox (program_id, topic, payload, created_at) VALUES (?, ?, ?, ?)",
            (prog, "purchase.confirmed", orjson.dumps({"receipt_pk": r_id}).decode(), stamp),
        )
        db.execute(
            "UPDATE receipts SET state = 'confirmed', confirmed_at = ?, confirm_response = ?"
            " WHERE id = ?",
            (stamp, r[4], r_id),
        )
        db.execute("COMMIT")
    wall = time.perf_counter() - t0
    db.close()
    return {
        "tool": "python sqlite3, one writer, WAL, synchronous=NORMAL",
        "tx_per_s": round(n / wall, 1),
        "transactions": n,
        "seconds": round(wall, 2),
    }


# --- one backend --------------------------------------------------------------------------------


def git_info() -> dict[str, Any]:
    def git(*a: str) -> str:
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        return r.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_dirty": bool(git("status", "--porcelain", "--", "src")),
    }


def run_backend(backend: str, args: Any) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="kopilka-bench-"))
    db_name = None
    server = None
    log = tmp / "server.log"
    try:
        if backend == "sqlite":
            db_path = tmp / "bench.db"
            url = f"sqlite:///{db_path}"
        else:
            db_name = f"kopilka_bench_{secrets.token_hex(4)}"
            run_async(pg_exec(args.pg_admin, f'CREATE DATABASE "{db_name}"'))
            url = pg_url(args.pg_admin, db_name)
        say(f"{backend}: database {url}")
        subprocess.run([kopilka_bin(), "--db", url, "migrate"], check=True)
        t0 = time.perf_counter()
        terminals = max(args.terminals, args.tills)
        fx = run_async(
            seed(
                url,
                customers=args.customers,
                terminals=terminals,
                rng=random.Random(args.seed),
                history=args.history,
            )
        )
        if args.program is not None:
            apply_program(url, args.program, tmp)
        seed_s = time.perf_counter() - t0
        if backend == "pg":  # every run starts right after a checkpoint, not at a random
            # point of PostgreSQL's checkpoint cycle (full-page writes follow a checkpoint)
            run_async(pg_exec(url, "CHECKPOINT"))
        say(
            f"{backend}: seeded {args.customers} customers, {terminals} terminals in {seed_s:.1f} s"
        )
        workers = args.workers or max(os.cpu_count() or 1, 1)  # the server's default
        profile = None
        if args.profile:
            workers = 1
            args.out.mkdir(parents=True, exist_ok=True)
            profile = args.out / f"profile-{backend}.pstats"
        port = free_port()
        server = start_server(url, port, workers, log, profile)
        wait_health(server, port, log)
        wait_listeners(port, 1 if args.profile else workers)
        say(
            f"{backend}: {args.tills} tills, {args.warmup:g} s warm-up + {args.duration:g} s, "
            f"then {args.confirm_n} confirms alone"
        )
        args.db_name = db_name
        load = run_async(drive("127.0.0.1", port, server.pid, fx, args))
        stop_server(server, signal.SIGINT if profile else signal.SIGTERM)
        problems = [] if profile else server_log_problems(log)
        if profile is not None:
            print_profile(profile)
        verify = subprocess.run(
            [kopilka_bin(), "--db", url, "ledger", "verify"],
            capture_output=True,
            text=True,
            check=False,
        )
        baseline = None
        if not args.no_baseline:
            say(f"{backend}: the database's own ceiling for the confirm's writes")
            if backend == "pg":
                baseline = pg_baseline(url, fx, args)
            else:
                baseline = sqlite_baseline(db_path, fx, args.baseline_s, random.Random(args.seed))
        base_tps = baseline.get("tx_per_s") if baseline else None
        confirm = load["confirm_only"]
        ratios = {}
        if base_tps:
            ratios["receipts_per_s_vs_baseline"] = round(
                load["mixed"]["receipts_per_s"] / base_tps, 3
            )
            if confirm:
                ratios["confirm_only_vs_baseline"] = round(confirm["req_per_s"] / base_tps, 3)
        return {
            "backend": backend,
            "utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "git": git_info(),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "params": {
                "tills": args.tills,
                "warmup_s": args.warmup,
                "duration_s": args.duration,
                "customers": args.customers,
                "terminals": terminals,
                "workers": workers,
                "program": str(args.program) if args.program else None,
                "member_share": args.member_share,
                "redeem_share": args.redeem_share,
                "confirm_n": args.confirm_n,
                "baseline_s": args.baseline_s,
                "seed": args.seed,
            },
            "seed_s": round(seed_s, 2),
            **load,
            "baseline": baseline,
            "ratios": ratios,
            "ledger_verify": {
                "exit_code": verify.returncode,
                "output": (verify.stdout + verify.stderr).strip().splitlines()[-10:],
            },
            "server_log_problems": problems,
        }
    finally:
        if server is not None:
            stop_server(server)
        if db_name and not args.keep:
            with contextlib.suppress(Exception):
                run_async(
                    pg_exec(args.pg_admin, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
                )
        if args.keep:
            say(f"kept: {tmp}" + (f" and database {db_name}" if db_name else ""))
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# --- output ------------------------------------------------------------------------------------


def fmt_call(s: dict[str, Any]) -> str:
    return f"{s['p50_ms']:.1f}/{s['p99_ms']:.1f}" if s.get("n") else "-"


def report(r: dict[str, Any]) -> str:
    m = r["mixed"]
    c = r["confirm_only"] or {}
    b = r["baseline"] or {}
    out = [
        f"== {r['backend']}  ({r['params']['tills']} tills, {r['params']['duration_s']:g} s, "
        f"{r['params']['workers']} server worker(s), commit {r['git']['commit']}"
        f"{' + uncommitted src' if r['git']['src_dirty'] else ''})",
        f"receipts/s (calculate+confirm):  {m['receipts_per_s']}  ({m['receipts']} receipts: "
        + ", ".join(f"{k} {v}" for k, v in sorted(m["receipt_kinds"].items()))
        + ")",
    ]
    for call in CALLS:
        s = m["calls"][call]
        if s.get("n"):
            out.append(
                f"  {call:<10} {s['per_s']:>7}/s  p50 {s['p50_ms']:>6} ms  p99 {s['p99_ms']:>6} ms"
                f"  max {s['max_ms']} ms"
            )
    out.append(
        f"CPU: server {m['cpu']['server_cores']} cores ({m['cpu']['server_s_per_receipt_ms']} ms "
        f"per receipt), database {m['cpu'].get('db_cores', 0)} cores "
        f"({m['cpu'].get('db_s_per_receipt_ms', 0)} ms per receipt), "
        f"load generator {m['cpu']['loadgen_cores']}, machine busy "
        f"{m['cpu']['machine_busy_cores']} of {r['machine']['cpus']}"
    )
    if c:
        out.append(
            f"confirm alone: {c['req_per_s']} req/s ({c['confirmed']} of {c['prepared']} "
            f"in {c['seconds']} s), p50 {c.get('p50_ms')} ms, p99 {c.get('p99_ms')} ms"
        )
    if b:
        out.append(f"baseline ({b['tool']}): {b.get('tx_per_s')} tx/s")
    for k, v in r["ratios"].items():
        out.append(f"  {k}: {v}")
    e = r["errors"]
    out.append(f"errors: {e['count']}" + (f"  {e['by_kind']}" if e["count"] else ""))
    out += [f"  {x}" for x in r["first_errors"]]
    lv = r["ledger_verify"]
    out.append(f"ledger verify: exit {lv['exit_code']}: {' | '.join(lv['output'][-3:])}")
    if r["server_log_problems"]:
        out.append(f"server log: {len(r['server_log_problems'])} problem(s); first:")
        out.append(r["server_log_problems"][0])
    return "\n".join(out)


SUMMARY_HEAD = """# Benchmark results

One line per run of `bench/pos_load.py` (the JSON file next to it has everything).
Latencies are p50/p99 in ms; "confirm alone" is the confirm endpoint without the rest of
the flow; "ceiling" is pgbench (PostgreSQL) or one sqlite3 writer (SQLite) doing the
confirm's statements; "ratio" is confirm alone / ceiling.  See ../README.md.

"""
SUMMARY_COLS = [
    "UTC",
    "backend",
    "commit",
    "tills×s",
    "receipts/s",
    "lookup",
    "calculate",
    "confirm",
    "confirm_alone/s",
    "ceiling_tx/s",
    "ratio",
    "errors",
    "file",
]
SUMMARY_HEAD += "| " + " | ".join(SUMMARY_COLS) + " |\n" + "|---" * len(SUMMARY_COLS) + "|\n"


def save(r: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = r["utc"].replace("-", "").replace(":", "")
    path = out_dir / f"pos_load-{r['backend']}-{stamp}.json"
    path.write_bytes(orjson.dumps(r, option=orjson.OPT_INDENT_2) + b"\n")
    summary_path = out_dir / "README.md"
    if not summary_path.exists():
        summary_path.write_text(SUMMARY_HEAD)
    m = r["mixed"]
    c = r["confirm_only"] or {}
    b = r["baseline"] or {}
    calls = [fmt_call(m["calls"][x]) for x in CALLS]
    row = [
        r["utc"],
        r["backend"],
        r["git"]["commit"] + ("+" if r["git"]["src_dirty"] else ""),
        f"{r['params']['tills']} × {r['params']['duration_s']:g}"
        + (" +promotions" if r["params"].get("program") else ""),
        str(m["receipts_per_s"]),
        *calls,
        str(c.get("req_per_s", "-")),
        str(b.get("tx_per_s", "-")),
        str(r["ratios"].get("confirm_only_vs_baseline", "-")),
        str(r["errors"]["count"]),
        f"[json]({path.name})",
    ]
    with summary_path.open("a") as f:
        f.write("| " + " | ".join(row) + " |\n")
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    p.add_argument("-c", "--tills", type=int, default=16, help="concurrent tills (16)")
    p.add_argument("-d", "--duration", type=float, default=20, help="measured seconds (20)")
    p.add_argument("--warmup", type=float, default=3, help="seconds before measuring (3)")
    p.add_argument("--customers", type=int, default=2000, help="member customers (2000)")
    p.add_argument(
        "--program",
        type=Path,
        default=None,
        help="a program document (YAML/JSON) to publish before the run, e.g. "
        "bench/programs/grocery-promotions.yaml (default: the base rule only)",
    )
    p.add_argument(
        "--history",
        type=int,
        default=50_000,
        help="past receipts in the fixture, as a production database has (50000)",
    )
    p.add_argument("--terminals", type=int, default=16, help="terminals (at least --tills)")
    p.add_argument(
        "--workers", type=int, default=None, help="server workers (default: one per core)"
    )
    p.add_argument("--member-share", type=float, default=0.7, help="member receipts (0.7)")
    p.add_argument(
        "--redeem-share", type=float, default=0.2, help="member receipts burning points (0.2)"
    )
    p.add_argument(
        "--confirm-n",
        type=int,
        default=3200,
        help="receipts pre-calculated, then confirmed alone (3200; 0: skip)",
    )
    p.add_argument(
        "--baseline-s", type=int, default=10, help="seconds of the database ceiling run (10)"
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the database ceiling")
    p.add_argument("--pg-admin", default=PG_ADMIN_DEFAULT, help="PostgreSQL admin URL")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--repeat", type=int, default=1, help="runs per backend; prints median, min, max (1)"
    )
    p.add_argument("--keep", action="store_true", help="keep the databases and the server log")
    p.add_argument("--out", type=Path, default=BENCH / "results", help="results directory")
    p.add_argument("--no-save", action="store_true", help="print only, write no results")
    p.add_argument(
        "--profile",
        action="store_true",
        help="run the server in one process under cProfile; write "
        "<out>/profile-<backend>.pstats and print the top functions",
    )
    return p.parse_args(argv)


def apply_program(url: str, path: Path, tmp: Path) -> None:
    """Publish a program document (YAML or JSON) as the bench program's next version."""
    import yaml

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["code"] = "bench"
    out = tmp / "program.json"
    out.write_text(orjson.dumps(doc).decode(), encoding="utf-8")
    subprocess.run(
        [kopilka_bin(), "--db", url, "program", "apply", str(out), "--author", "bench"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    say(f"program: {path} ({len(doc.get('promotions', []))} promotions)")


def spread(backend: str, runs: list[dict[str, Any]]) -> str:
    """Median, min and max over repeated runs: on a shared machine one run can be 1.5x
    another with the same code, so single figures mislead."""

    def line(name: str, values: list[float]) -> str:
        values = sorted(values)
        median = values[len(values) // 2]
        return f"  {name:<34} median {median:g}  (min {values[0]:g}, max {values[-1]:g})"

    m = [r["mixed"] for r in runs]
    return "\n".join(
        [
            f"== {backend}: {len(runs)} runs",
            line("receipts/s", [x["receipts_per_s"] for x in m]),
            line("calculate p99, ms", [x["calls"]["calculate"]["p99_ms"] for x in m]),
            line("confirm p99, ms", [x["calls"]["confirm"]["p99_ms"] for x in m]),
            line("server CPU per receipt, ms", [x["cpu"]["server_s_per_receipt_ms"] for x in m]),
            line("database CPU per receipt, ms", [x["cpu"]["db_s_per_receipt_ms"] for x in m]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["sqlite", "pg"] if args.backend == "both" else [args.backend]
    printed: list[str] = []
    for backend in backends:
        runs = []
        for _ in range(args.repeat):
            r = run_backend(backend, args)
            text = report(r)
            print(text, flush=True)
            printed.append(text)
            runs.append(r)
            if not args.no_save:
                say(f"wrote {save(r, args.out).relative_to(ROOT)}")
        if len(runs) > 1:
            text = spread(backend, runs)
            print(text, flush=True)
            printed.append(text)
    if len(printed) > 1:
        print("\n" + "\n\n".join(printed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
