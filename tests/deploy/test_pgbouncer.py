"""The app through PgBouncer in session mode (deploy/pgbouncer.ini.tmpl, ADR 0032): the
hot path's asyncpg pool with its prepared statements and SQLAlchemy's connections both
work through it, many tills at once.  In session mode a pooled client connection holds
its server connection, so PgBouncer's pool must be at least the sum of the app pools
(here 10 + 20 = 30 against 117)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from kopilka.api.app import HotFront, create_app
from kopilka.services.ledger_jobs import verify_ledger
from kopilka.services.runtime import Runtime
from tests.conftest import new_shop, receipt

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tools")]

from cluster import Cluster  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("pgbouncer") is None, reason="needs pgbouncer")


@pytest.fixture(scope="module")
def bouncer(pg_url: str) -> Iterator[str]:
    u = make_url(pg_url)
    c = Cluster(Path(tempfile.mkdtemp(prefix="kopilka-test-bouncer-")), apps=4)
    c.dir.chmod(0o755)
    c.logs.mkdir()
    c.logs.chmod(0o777)
    c.primary_port, c.dbname = u.port or 5432, str(u.database)
    c.start_pgbouncer()  # default_pool_size: 4 x 13 + 2 x 30 + 5 = 117
    yield str(u.set(port=c.bouncer_port))
    c.stop()
    shutil.rmtree(c.dir, ignore_errors=True)


async def test_tills_through_pgbouncer_session_pooling(bouncer: str) -> None:
    rt = Runtime.from_url(bouncer, cache_ttl_s=0.0, pool_size=10)
    app = HotFront(create_app(rt, sweep_every_s=0))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            shop = await new_shop(rt, client, earn_percent="10")
            members = [await shop.customer(points=100) for _ in range(6)]

            async def sell(i: int) -> tuple[int, str]:
                m = members[i % len(members)]
                rid = f"pgb-{i}"
                calc = await shop.post(
                    "/purchases/calculate", receipt(rid, m.card, ("a", 1, "100.00"))
                )
                assert calc.status_code == 200, calc.text
                conf = await shop.post(f"/purchases/{rid}/confirm")
                look = await shop.get("/customers/lookup", params={"identifier": m.card})
                return conf.status_code, str(conf.json()["points_earned"]) + look.text[:0]

            results = await asyncio.gather(*(sell(i) for i in range(36)))
            balances = [await shop.balance(m) for m in members]
        discrepancies = await verify_ledger(rt)
    finally:
        await rt.close()

    assert results == [(200, "10.00")] * 36  # 10 % of 100.00, every one
    assert [b["available"] for b in balances] == ["160.00"] * 6  # 100 + 6 receipts x 10
    # (other tests' deliberate corruptions of the session database are not ours to judge)
    mine = {m.account_id for m in members}
    assert [d for d in discrepancies if d.account_id in mine] == []
    # the app really talked to PgBouncer: its admin console has a pool for our database
    u = make_url(bouncer)
    done = await asyncio.to_thread(
        subprocess.run,
        ["psql", "-h", "127.0.0.1", "-p", str(u.port), "-U", "postgres", "-d", "pgbouncer",
         "-Atc", "SHOW POOLS"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    pools = done.stdout
    assert any(line.split("|")[0] == u.database for line in pools.splitlines())
