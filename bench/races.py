"""Races between processes, with figures (issue 10): 8 processes released by a barrier,
each with its own app and connection pool, against a fresh SQLite file and a fresh
PostgreSQL database.

Scenarios (the same as tests/services/test_process_races.py, which asserts them):
  confirm64  64 confirms of one calculated receipt: one effect, 64 identical answers
  burn50     50 one-shot purchases burning 100 points each on a balance of 1,000: 10 win
  coupon64   64 purchases with one single-use coupon: 1 wins

Prints per scenario and database: violations (answers or balances other than the one
correct outcome; must be 0), the retry rate (answers asking the till to try again:
409/429/503 busy codes), p50/p99 latency of the calls, and the ledger check; writes
bench/results/races-<UTC>.json.  A benchmark, not a test: run it on an idle machine.

    .venv/bin/python bench/races.py [--backend sqlite|pg|both] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.api.test_coupons import coffee, coffee_shop  # noqa: E402
from tests.conftest import new_shop, receipt  # noqa: E402
from tests.races import Answer, race  # noqa: E402
from tests.services.conftest import add_tills, discrepancies  # noqa: E402

from kopilka.api.app import HotFront, create_app  # noqa: E402
from kopilka.services.runtime import Runtime  # noqa: E402
from kopilka.store.migrate import upgrade  # noqa: E402

RETRY_CODES = {409, 429, 503}


async def scenario(name: str, rt: Runtime, client: httpx.AsyncClient) -> dict[str, Any]:
    async def make(**settings: Any) -> Any:
        return await new_shop(rt, client, **settings)

    if name == "coupon64":
        shop, codes = await coffee_shop(make, count=1)
        calls = [("POST", "/purchases", shop.key, coffee(f"c{i}", codes[0])) for i in range(64)]
        expected: Counter[tuple[int, str]] = Counter({(200, ""): 1, (422, "coupon_used"): 63})
        balance = None
    elif name == "burn50":
        shop = await make(burn_max_percent="100", earn_percent="0")
        member = await shop.customer(points=1000)
        tills = await add_tills(shop, 5)
        calls = [
            (
                "POST",
                "/purchases",
                tills[i % 5].key,
                receipt(f"b{i}", member.card, ("a", 1, "100.00"), redeem_points="100"),
            )
            for i in range(50)
        ]
        expected = Counter({(200, ""): 10, (422, "insufficient_points"): 40})
        balance = (member, "0.00")
    else:
        shop = await make(burn_max_percent="100", earn_percent="10")
        member = await shop.customer(points=1000)
        body = receipt("once", member.card, ("a", 1, "500.00"), redeem_points="100")
        await shop.post("/purchases/calculate", body)
        calls = [("POST", "/purchases/once/confirm", shop.key, None)] * 64
        expected = Counter({(200, ""): 64})
        balance = (member, "940.00")

    answers: list[Answer] = await asyncio.to_thread(race, rt.url, calls, processes=8)
    got = Counter((a.status, a.code) for a in answers)
    violations = sum((got - expected).values()) + sum((expected - got).values())
    if name == "confirm64" and len({a.body for a in answers}) != 1:
        violations += 1
    if balance is not None and (await shop.balance(balance[0]))["available"] != balance[1]:
        violations += 1
    lat = sorted(a.latency_s * 1000 for a in answers)
    return {
        "scenario": name,
        "calls": len(answers),
        "outcomes": {f"{s} {c}".strip(): n for (s, c), n in sorted(got.items())},
        "violations": violations,
        "retry_rate": sum(1 for a in answers if a.status in RETRY_CODES) / len(answers),
        "p50_ms": round(statistics.median(lat), 2),
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2),
        "ledger_discrepancies": len(await discrepancies(shop)),
    }


async def backend(kind: str, rounds: int, pg_admin: str) -> list[dict[str, Any]]:
    if kind == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='kopilka-races-')}/races.db"
        name = None
    else:
        name = f"kopilka_races_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(pg_admin)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = pg_admin.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(upgrade, url)
    rt = Runtime.from_url(url, cache_ttl_s=0.0)
    app = HotFront(create_app(rt, sweep_every_s=0))
    out = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as c:
        for _ in range(rounds):
            for sc in ("confirm64", "burn50", "coupon64"):
                row = await scenario(sc, rt, c) | {"backend": kind}
                print(json.dumps(row, ensure_ascii=False), flush=True)
                out.append(row)
    await rt.close()
    if name:
        admin = await asyncpg.connect(pg_admin)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
    return out


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args()
    rows = []
    for kind in ("sqlite", "pg") if args.backend == "both" else (args.backend,):
        rows += await backend(kind, args.rounds, args.pg_admin)
    total = sum(r["violations"] + r["ledger_discrepancies"] for r in rows)
    print(f"violations in all: {total}")
    if not args.no_save:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = ROOT / "bench" / "results" / f"races-{stamp}.json"
        path.write_text(json.dumps({"rows": rows, "violations": total}, indent=2))
        print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
