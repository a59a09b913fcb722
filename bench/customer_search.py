#!/usr/bin/env python3
"""Console customer search on a million customers (SQLite): how long each kind of query
takes through ``services.customer_admin.search``, and the plan SQLite chooses for it.

A seeded generator fills a fresh SQLite database (the real schema, by the migrations)
with N customers of one program (plus a second program of N/10, so program scoping is
exercised), each with an account, a plastic card and the card's and the phone's
identifiers.  Then it times, after a warm-up, the search by phone (typed as people type
it), by card number, by e-mail, by a last-name prefix (2, 4 letters and the full name
with the first name) and by a name that matches nothing, and prints the query plans.

    .venv/bin/python bench/customer_search.py                 # 1,000,000 customers
    .venv/bin/python bench/customer_search.py -n 100000 --keep

A benchmark, not a test: it prints figures and never fails because one is high.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from kopilka.domain.identifiers import make_card_number
from kopilka.domain.program import ProgramSettings
from kopilka.services import customer_admin
from kopilka.services.runtime import Runtime, settings_to_json
from kopilka.store.migrate import upgrade

LAST = [
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
    "Захаров",
    "Зайцев",
    "Соловьёв",
    "Борисов",
    "Яковлев",
    "Григорьев",
    "Романов",
    "Воробьёв",
    "Сергеев",
    "Кузьмин",
    "Фролов",
    "Александров",
    "Дмитриев",
    "Королёв",
    "Гусев",
    "Киселёв",
    "Ильин",
    "Максимов",
    "Поляков",
    "Сорокин",
    "Виноградов",
    "Ковалёв",
    "Белов",
    "Медведев",
    "Антонов",
    "Тарасов",
    "Жуков",
    "Баранов",
]
FIRST = [
    "Анна",
    "Мария",
    "Елена",
    "Ольга",
    "Ирина",
    "Иван",
    "Пётр",
    "Алексей",
    "Сергей",
    "Дмитрий",
    "Андрей",
    "Наталья",
]


def fill(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    now = datetime(2026, 1, 1, tzinfo=UTC).isoformat(sep=" ")
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    settings = settings_to_json(ProgramSettings())
    for pid, code in ((1, "big"), (2, "other")):
        db.execute(
            "INSERT INTO programs (id, code, name, settings, created_at) VALUES (?, ?, ?, ?, ?)",
            (pid, code, code, settings, now),
        )
    serials = rng.sample(range(10**9, 10**10), n + n // 10)
    rows_c, rows_a, rows_k, rows_i = [], [], [], []
    for i in range(n + n // 10):
        pid = 1 if i < n else 2
        cid = i + 1
        suffix = "а" if rng.random() < 0.5 else ""
        last = rng.choice(LAST) + suffix
        first = rng.choice(FIRST)
        phone = f"+79{100000000 + i:09d}"
        email = f"user{i}@example.org" if rng.random() < 0.6 else None
        card = make_card_number("27", serials[i])
        rows_c.append((cid, pid, first, last, phone, email, now))
        rows_a.append((cid, pid, cid, rng.randint(0, 500000), now, now))
        rows_k.append((cid, pid, cid, cid, card, now))
        rows_i.append((pid, card, "card", cid))
        rows_i.append((pid, phone, "phone", cid))
        if len(rows_c) == 50_000:
            _flush(db, rows_c, rows_a, rows_k, rows_i)
    _flush(db, rows_c, rows_a, rows_k, rows_i)
    db.execute("ANALYZE")
    db.commit()
    db.close()


def _flush(db: sqlite3.Connection, c: list, a: list, k: list, i: list) -> None:  # type: ignore[type-arg]
    db.executemany(
        "INSERT INTO customers (id, program_id, first_name, last_name, phone, email, "
        "registered_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        c,
    )
    db.executemany(
        "INSERT INTO accounts (id, program_id, customer_id, balance, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        a,
    )
    db.executemany(
        "INSERT INTO cards (id, program_id, account_id, customer_id, number, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        k,
    )
    db.executemany(
        "INSERT INTO identifiers (program_id, value, kind, card_id) VALUES (?, ?, ?, ?)", i
    )
    db.commit()
    for x in (c, a, k, i):
        x.clear()


async def measure(url: str, path: Path, n: int, repeat: int) -> None:
    rt = Runtime.from_url(url)
    db = sqlite3.connect(path)
    card = db.execute("SELECT number FROM cards WHERE customer_id = ?", (n // 2,)).fetchone()[0]
    email = db.execute(
        "SELECT email FROM customers WHERE email IS NOT NULL AND id > ? LIMIT 1", (n // 3,)
    ).fetchone()[0]
    phone = db.execute("SELECT phone FROM customers WHERE id = ?", (n // 4,)).fetchone()[0]
    typed_phone = f"8 ({phone[2:5]}) {phone[5:8]}-{phone[8:10]}-{phone[10:]}"
    cases = [
        ("phone, typed 8 (9xx) ...", typed_phone, "name"),
        ("card number", card, "name"),
        ("e-mail", email, "name"),
        ("last name, 2 letters, page 1", "ку", "name"),
        ("last name, 2 letters, sorted by balance", "ку", "balance"),
        ("last name, 4 letters", "Кузн", "name"),
        ("last + first name", "Кузнецова Анна", "name"),
        ("a name nobody has", "Щщщ", "name"),
    ]
    print(f"\n{n:,} customers in program 1 (+{n // 10:,} in program 2); {repeat} runs each\n")
    print(f"{'query':42} {'matches':>9} {'median ms':>10} {'p95 ms':>8}")
    for label, q, sort in cases:
        found = await customer_admin.search(rt, 1, q, limit=25, sort=sort)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await customer_admin.search(rt, 1, q, limit=25, sort=sort)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        print(f"{label:42} {found.total:>9,} {statistics.median(times):>10.1f} {p95:>8.1f}")
    await rt.close()
    print("\nQuery plans (SQLite EXPLAIN QUERY PLAN of the count):")
    for label, q in (("phone", typed_phone), ("card", card), ("e-mail", email), ("name", "Кузн")):
        _, conds = customer_admin.classify(q, 1)
        from sqlalchemy import and_, func, select
        from sqlalchemy.dialects import sqlite

        stmt = (
            select(func.count())
            .select_from(customer_admin.cu)
            .where(and_(customer_admin.cu.c.program_id == 1, *conds))
        )
        sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        plan = db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        print(f"  {label}:")
        for row in plan:
            print(f"    {row[-1]}")
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--customers", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--keep", action="store_true", help="keep the database (path printed)")
    ap.add_argument("--db", type=Path, help="a database an earlier --keep run filled")
    args = ap.parse_args()
    if args.db is not None:
        asyncio.run(measure(f"sqlite:///{args.db}", args.db, args.customers, args.repeat))
        return
    tmp = Path(tempfile.mkdtemp(prefix="kopilka-search-"))
    path = tmp / "search.db"
    url = f"sqlite:///{path}"
    t0 = time.perf_counter()
    upgrade(url)
    fill(path, args.customers, args.seed)
    print(f"filled {path} in {time.perf_counter() - t0:.0f} s")
    asyncio.run(measure(url, path, args.customers, args.repeat))
    if args.keep:
        print(f"\nkept {path}")
    else:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
