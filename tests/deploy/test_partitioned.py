"""The schema with the hot tables hash-partitioned by ``program_id`` (``kopilka migrate
--partitioned``, docs/scaling.md): the POS flow, idempotency, the ledger check and the
summary report work on it as on the plain schema.  PostgreSQL only."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from kopilka.analytics import summary
from kopilka.api.app import HotFront, create_app
from kopilka.domain.summary import Period
from kopilka.services.ledger_jobs import verify_ledger
from kopilka.services.runtime import Runtime
from kopilka.store.migrate import upgrade
from kopilka.store.partition import HOT_TABLES, partition_hot_tables
from tests.conftest import PG_ADMIN, _pg_admin, new_shop, pg_available, receipt

pytestmark = pytest.mark.skipif(not pg_available(), reason="PostgreSQL only")


@pytest.fixture(scope="module")
async def prt() -> AsyncIterator[Runtime]:
    name = f"kopilka_part_{secrets.token_hex(4)}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(upgrade, url)
    rt = Runtime.from_url(url, cache_ttl_s=0.0)
    async with rt.engine.begin() as conn:
        await partition_hot_tables(conn, partitions=4)
    yield rt
    await rt.close()
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_pos_flow_ledger_and_report_on_partitioned_tables(prt: Runtime) -> None:
    app = HotFront(create_app(prt, sweep_every_s=0))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        shop = await new_shop(prt, client, earn_percent="10", burn_max_percent="50")
        other_program = await new_shop(prt, client, earn_percent="10")
        member = await shop.customer(points=300)
        body = receipt("r1", member.card, ("a", 1, "1000.00"), redeem_points=200)

        calc = await shop.post("/purchases/calculate", body)
        again = await shop.post("/purchases/calculate", body)
        clash = await shop.post("/purchases/calculate", {**body, "redeem_points": 100})
        confirms = await asyncio.gather(
            shop.post("/purchases/r1/confirm"), shop.post("/purchases/r1/confirm")
        )
        after = await shop.balance(member)
        stranger = await other_program.customer(points=40)
        elsewhere = await other_program.post(
            "/purchases/calculate", receipt("r1", stranger.card, ("b", 2, "50.00"))
        )
        elsewhere_ok = await other_program.post("/purchases/r1/confirm")

    assert calc.status_code == 200, calc.text
    assert calc.json()["to_pay"] == "800.00"
    assert again.content == calc.content
    assert clash.status_code == 409 and clash.json()["code"] == "idempotency_conflict"
    assert [c.status_code for c in confirms] == [200, 200]
    assert confirms[0].content == confirms[1].content
    assert confirms[0].json()["points_earned"] == "80.00"  # 10 % of 800.00 paid
    assert after["available"] == "180.00" and after["held"] == "0.00"  # 300 - 200 + 80
    # the same receipt id at another program's till is another receipt
    assert elsewhere.status_code == 200 and elsewhere_ok.json()["points_earned"] == "10.00"

    assert await verify_ledger(prt) == []

    today = prt.now().date()
    figures = await summary.figures(
        prt,
        program_id=shop.program_id,
        period=Period(today - timedelta(days=1), today + timedelta(days=1)),
        filters=summary.NO_FILTERS,
        actor=None,
        use_tables=False,
    )
    assert figures.counts.members == 1

    async with prt.engine.connect() as conn:
        parted = set(
            (await conn.execute(text("SELECT partrelid::regclass::text FROM pg_partitioned_table")))
            .scalars()
            .all()
        )
        homes = (
            (
                await conn.execute(
                    text(
                        "SELECT DISTINCT tableoid::regclass::text FROM receipts "
                        "WHERE program_id = :p"
                    ),
                    {"p": shop.program_id},
                )
            )
            .scalars()
            .all()
        )
    assert parted == set(HOT_TABLES)
    assert len(homes) == 1 and homes[0].startswith("receipts_p")  # one program, one partition
