"""SQLite with several server processes (ADR 0035): the write gate the hot path's writers
take turns at, and the reading connection that never waits for a writer.

The invariants under real parallel processes (one effect, no overdraft, the ledger whole)
are proven on SQLite too by tests/services/test_process_races.py, whose four processes
each run their own HotPath, so their writes go through the gate."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from kopilka.api.app import HotFront, create_app
from kopilka.api.observe import Observed
from kopilka.services.runtime import Runtime, WriteGate
from kopilka.store import tables as t
from tests.conftest import new_shop, receipt
from tests.services.conftest import count_rows


async def test_a_second_gate_waits_until_the_first_lets_go(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    first, second = WriteGate(db), WriteGate(db)  # two opens: as two processes
    try:
        await first.acquire()
        waiting = asyncio.create_task(second.acquire())
        await asyncio.sleep(0.1)
        assert not waiting.done()
        first.release()
        await asyncio.wait_for(waiting, 1.0)
        # now the second holds it: the first must wait in its turn
        again = asyncio.create_task(first.acquire())
        await asyncio.sleep(0.05)
        assert not again.done()
        second.release()
        await asyncio.wait_for(again, 1.0)
        first.release()
    finally:
        first.close()
        second.close()


async def test_a_long_wait_moves_to_a_thread_and_a_cancelled_one_leaves_the_gate_free(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "k.db")
    holder, waiter = WriteGate(db), WriteGate(db)
    waiter.patience_poll_s = 0.05  # past this the wait is a blocking flock in a thread
    try:
        await holder.acquire()
        slow = asyncio.create_task(waiter.acquire())
        await asyncio.sleep(0.3)
        assert not slow.done()
        holder.release()
        await asyncio.wait_for(slow, 1.0)
        waiter.release()

        # cancelled while its thread still waits: the thread takes the gate later and
        # hands it straight back, so nobody is locked out
        await holder.acquire()
        doomed = asyncio.create_task(waiter.acquire())
        await asyncio.sleep(0.2)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        holder.release()
        await asyncio.sleep(0.1)  # the thread gets the gate and gives it back
        await asyncio.wait_for(holder.acquire(), 1.0)
        holder.release()
    finally:
        holder.close()
        waiter.close()


async def test_a_lookup_answers_while_a_write_of_the_same_process_waits_for_the_lock(
    sqlite_url: str,
) -> None:
    """Another program (a CLI job, the console) holds SQLite's write lock: a till's
    calculate waits for it, and meanwhile another till's lookup in the same server
    process answers at once; once the lock is free the calculate completes."""
    # the terminal and the program cached, as a server keeps them (5 s by default)
    rt = Runtime.from_url(sqlite_url, cache_ttl_s=60.0)
    app = Observed(HotFront(create_app(rt, sweep_every_s=0)))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            shop = await new_shop(rt, client, earn_percent="5")
            member = await shop.customer(points=300)
            assert (await shop.get(f"/customers/lookup?identifier={member.card}")).is_success
            path = make_url(rt.url).database
            assert path is not None
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            try:
                calc = asyncio.create_task(
                    shop.post(
                        "/purchases/calculate", receipt("gate-1", member.card, ("a", 1, "100"))
                    )
                )
                await asyncio.sleep(0.2)
                assert not calc.done()  # waiting for the write lock

                started = time.monotonic()
                found = await asyncio.wait_for(
                    shop.get(f"/customers/lookup?identifier={member.card}"), 2.0
                )
                assert found.status_code == 200
                assert found.json()["balance"]["available"] == "300.00"
                assert time.monotonic() - started < 1.0
                assert not calc.done()
            finally:
                other.execute("ROLLBACK")
                other.close()
            answer = await asyncio.wait_for(calc, 5.0)
            assert answer.status_code == 200
            assert answer.json()["points_earned"] == "5.00"
            assert await count_rows(shop, t.receipts, t.receipts.c.pos_receipt_id == "gate-1") == 1
    finally:
        await rt.close()
