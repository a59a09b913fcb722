"""The multi-node deployment, for real: a private PostgreSQL primary with a streaming hot
standby, two ``kopilka serve`` processes behind HAProxy, two ``kopilka worker`` processes
on the same outbox (tools/cluster.py).  PostgreSQL only (SQLite is one node by design).

1. two worker processes deliver every webhook exactly once (a real HTTP receiver counts);
2. the failover drill: tills selling, the primary stopped at once, the standby promoted,
   the apps reconnect; no acknowledged receipt is lost and the ledger verifies.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from tests.notify.conftest import HttpReceiver

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "bench")]

from cluster import PG_BIN, Cluster  # noqa: E402
from failover_drill import run_drill, run_load, seed_cluster  # noqa: E402

TILLS = 4

pytestmark = pytest.mark.skipif(
    not (PG_BIN / "initdb").exists() or shutil.which("haproxy") is None,
    reason="needs PostgreSQL binaries and haproxy",
)


@pytest.fixture(scope="module")
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(
        Path(tempfile.mkdtemp(prefix="kopilka-test-cluster-")),
        apps=2,
        workers=2,
        fsync=False,
        worker_args=["--only", "outbox", "--every-s", "0.3"],
    )
    c.start()
    yield c
    c.stop()
    shutil.rmtree(c.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def fixture(cluster: Cluster, receiver: HttpReceiver) -> Any:
    fx = seed_cluster(cluster, tills=TILLS, customers=200)

    async def add_webhook() -> None:
        conn = await asyncpg.connect(cluster.primary_url)
        await conn.execute(
            "INSERT INTO webhook_endpoints (program_id, url, secret, topics, created_at) "
            "VALUES ($1, $2, 'whsec-0123456789abcdef', 'purchase.*', now())",
            fx.program_id,
            receiver.url + "/hook",
        )
        await conn.close()

    asyncio.run(add_webhook())
    return fx


async def _member_receipt_pks(url: str, tag: str) -> set[int]:
    conn = await asyncpg.connect(url)
    rows = await conn.fetch(
        "SELECT id FROM receipts WHERE state = 'confirmed' AND account_id IS NOT NULL "
        "AND pos_receipt_id LIKE $1",
        tag + "-%",
    )
    await conn.close()
    return {r[0] for r in rows}


def test_two_worker_processes_deliver_every_webhook_once(
    cluster: Cluster, fixture: Any, receiver: HttpReceiver
) -> None:
    drill, _ = run_load(cluster, fixture, tills=TILLS, seconds=2.0)
    expected = asyncio.run(_member_receipt_pks(cluster.primary_url, drill.tag))

    def pks() -> list[int]:
        return [orjson.loads(s.body)["data"]["receipt_pk"] for s in list(receiver.seen)]

    deadline = time.monotonic() + 20
    while set(pks()) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # a second sending of anything would arrive by now

    keys = Counter(s.headers["X-Kopilka-Delivery"] for s in receiver.seen)
    assert len(expected) > 20  # the tills sold to members through both app processes
    assert set(pks()) == expected
    assert keys.most_common(1)[0][1] == 1  # no message twice
    assert len(receiver.seen) == len(expected)
    workers = {p.name for p in cluster.procs if p.name.startswith("worker")}
    assert workers == {"worker1", "worker2"}


def test_lookups_read_the_standby_and_see_the_tills_own_confirm(
    cluster: Cluster, fixture: Any
) -> None:
    import httpx

    card = fixture.cards[7]
    api = cluster.lb_url + "/api/pos/v1"
    headers = {"Authorization": f"Bearer {fixture.keys[0]}"}
    with httpx.Client(headers=headers, timeout=10) as http:
        before = http.get(f"{api}/customers/lookup", params={"identifier": card}).json()
        body = {
            "receipt_id": "ryw-1",
            "identifier": card,
            "lines": [{"sku": "A1", "name": "Чай", "quantity": 1, "price": "1000.00"}],
        }
        assert http.post(f"{api}/purchases/calculate", json=body).status_code == 200
        confirmed = http.post(f"{api}/purchases/ryw-1/confirm")
        assert confirmed.status_code == 200
        after = http.get(f"{api}/customers/lookup", params={"identifier": card}).json()

    # the default program earns 5 %: 50.00 points on 1000.00
    assert Decimal(str(confirmed.json()["points_earned"])) == Decimal("50.00")
    mine = [x for x in after["last_purchases"] if x["receipt_id"] == "ryw-1"]
    assert [Decimal(str(x["points_earned"])) for x in mine] == [Decimal("50.00")]
    assert all(x["receipt_id"] != "ryw-1" for x in before["last_purchases"])
    readers = cluster.psql(
        cluster.standby_port,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kopilka-replica'",
    )
    assert int(readers) >= 1  # the lookups were served by the standby


def test_the_summary_report_reads_the_standby(cluster: Cluster, fixture: Any) -> None:
    from datetime import date, timedelta

    from kopilka.analytics import summary
    from kopilka.domain.summary import Period
    from kopilka.services.runtime import Runtime

    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kopilka-reports'"

    async def report() -> tuple[summary.Figures, str, str]:
        rt = Runtime.from_url(cluster.primary_url)
        rt.replica_url = cluster.replica_url
        try:
            today = date.today()
            figures = await summary.figures(
                rt,
                program_id=fixture.program_id,
                period=Period(today - timedelta(days=1), today + timedelta(days=1)),
                filters=summary.NO_FILTERS,
                actor=None,
                use_tables=False,
            )
            # the report's pooled connection is still open: where is it?
            on_standby = await asyncio.to_thread(cluster.psql, cluster.standby_port, sql)
            on_primary = await asyncio.to_thread(cluster.psql, cluster.primary_port, sql)
            return figures, on_standby, on_primary
        finally:
            await rt.close()

    figures, on_standby, on_primary = asyncio.run(report())

    assert figures.counts.members_total == 200  # the fixture's members
    assert (on_standby, on_primary) == ("1", "0")


def test_a_dead_replica_sends_lookups_to_the_primary(cluster: Cluster, fixture: Any) -> None:
    from kopilka.services.customers import check_lookup
    from kopilka.services.runtime import Runtime

    async def lookup() -> tuple[dict[str, Any], str]:
        rt = Runtime.from_url(cluster.primary_url)
        rt.replica_url = "postgresql://postgres@127.0.0.1:1/kopilka"  # nothing listens
        try:
            term = await rt.terminal_by_key(fixture.keys[0])
            assert term is not None
            found = await check_lookup(rt, term, fixture.cards[3])
            assert rt.hot._replica is not None
            return found, rt.hot._replica.reason
        finally:
            await rt.close()

    found, reason = asyncio.run(lookup())

    assert found["balance"]["available"] is not None
    assert reason.startswith("failed: ")


def test_a_lagging_replica_sends_lookups_to_the_primary(cluster: Cluster, fixture: Any) -> None:
    from kopilka.services.customers import check_lookup
    from kopilka.services.runtime import Runtime

    async def lookup() -> tuple[dict[str, Any], str]:
        rt = Runtime.from_url(cluster.primary_url)
        rt.replica_url = cluster.replica_url
        rt.replica_max_lag_s = -1.0  # any lag, even none, is too much
        try:
            term = await rt.terminal_by_key(fixture.keys[0])
            assert term is not None
            found = await check_lookup(rt, term, fixture.cards[3])
            assert rt.hot._replica is not None
            return found, rt.hot._replica.reason
        finally:
            await rt.close()

    found, reason = asyncio.run(lookup())

    assert found["balance"]["available"] is not None
    assert reason == "lagging 0.0 s"


def test_failover_drill_loses_no_acknowledged_receipt(cluster: Cluster, fixture: Any) -> None:
    result = run_drill(cluster, tills=TILLS, before_s=2.5, after_s=4.0, fx=fixture)
    print(result)

    assert result["acknowledged_before_failover"] > 10
    assert result["acknowledged_after_promotion"] > 10  # the apps reconnected
    assert result["lost"] == []
    assert result["ledger_verify_rc"] == 0, result["ledger_verify"]
    assert 0 < result["unavailable_s"] < 10
    assert cluster.status()["primary"] is False  # it really was stopped
