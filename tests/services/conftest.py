"""Fixtures for service tests: more tills per store, a real served app, ledger checks.

``served`` runs ``kopilka serve`` with two worker processes on a fresh PostgreSQL
database, so concurrent calls really land in different processes and connections.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from kopilka.services.ledger_jobs import Discrepancy, verify_ledger
from kopilka.services.runtime import Runtime
from kopilka.services.terminals import do_add_terminal
from kopilka.store import tables as t
from kopilka.store.migrate import upgrade
from tests.conftest import PG_ADMIN, Clock, Shop, _pg_admin, new_shop, pg_available
from tests.processes import stop

KOPILKA = str(Path(sys.executable).with_name("kopilka"))


async def add_tills(shop: Shop, n: int) -> list[Shop]:
    """``n`` tills of the shop's store: the shop's own terminal and ``n - 1`` new ones."""
    async with shop.rt.engine.connect() as conn:
        program_code = (
            await conn.execute(select(t.programs.c.code).where(t.programs.c.id == shop.program_id))
        ).scalar_one()
    tills = [shop]
    for i in range(2, n + 1):
        key = await do_add_terminal(
            shop.rt, store_code=shop.store_code, name=f"till {i}", program_code=program_code
        )
        tills.append(dataclasses.replace(shop, key=key))
    return tills


async def discrepancies(shop: Shop) -> list[Discrepancy]:
    """``verify_ledger`` over the shop's program.

    The session database is shared by every test; a test that breaks the ledger must not
    make every later test fail too, so each test judges the accounts it made.
    """
    async with shop.rt.engine.connect() as conn:
        mine = set(
            (
                await conn.execute(
                    select(t.accounts.c.id).where(t.accounts.c.program_id == shop.program_id)
                )
            )
            .scalars()
            .all()
        )
    return [d for d in await verify_ledger(shop.rt) if d.account_id in mine]


async def receipt_pk(shop: Shop, receipt_id: str) -> int:
    term = await shop.rt.terminal_by_key(shop.key)
    assert term is not None
    async with shop.rt.engine.connect() as conn:
        pk: int = (
            await conn.execute(
                select(t.receipts.c.id).where(
                    t.receipts.c.terminal_id == term.id,
                    t.receipts.c.pos_receipt_id == receipt_id,
                )
            )
        ).scalar_one()
    return pk


async def count_rows(shop: Shop, table: Any, *where: Any) -> int:
    async with shop.rt.engine.connect() as conn:
        n: int = (
            await conn.execute(select(func.count()).select_from(table).where(*where))
        ).scalar_one()
    return n


# --- a served app: `kopilka serve --workers 2` on a fresh PostgreSQL database ------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"kopilka serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"kopilka serve did not become healthy in 60 s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def served_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(database URL, base URL) of a `kopilka serve` with two workers on its own database."""
    if not pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}; the test command starts it")
    name = f"kopilka_served_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    proc: subprocess.Popen[bytes] | None = None
    try:
        upgrade(url)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmp_path_factory.mktemp("served") / "server.log"
        env = {**os.environ, "KOPILKA_DB_POOL": "10"}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [KOPILKA, "--db", url, "serve", "--port", str(port), "--workers", "2"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        _wait_healthy(base, proc, log)
        yield url, base
    finally:
        if proc is not None:
            stop(proc)
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
async def served(
    served_url: tuple[str, str],
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """A runtime on the served database (to set up and verify) and a client of the server."""
    url, base = served_url
    rt = Runtime.from_url(url, clock=Clock(), cache_ttl_s=0.0)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        yield rt, client
    await rt.close()


MakeShop = Callable[..., Awaitable[Shop]]


@pytest.fixture
def make_served_shop(served: tuple[Runtime, httpx.AsyncClient]) -> MakeShop:
    rt, client = served

    async def make(**settings: Any) -> Shop:
        return await new_shop(rt, client, **settings)

    return make
