"""Test infrastructure: real SQLite and real PostgreSQL, the real app in-process.

Each backend gets one database per session, migrated with Alembic; tests isolate
themselves by creating their own program, store, terminal and customers (``Factory``).
PostgreSQL tests create and drop their own database on the server at
``KOPILKA_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from kopilka.api.app import HotFront, create_app
from kopilka.api.observe import Observed
from kopilka.domain.identifiers import make_card_number
from kopilka.domain.program import ProgramSettings
from kopilka.services.accounts import do_adjust
from kopilka.services.customers import create_account_and_card
from kopilka.services.runtime import Runtime, hash_key, settings_to_json
from kopilka.store import tables as t
from kopilka.store.migrate import upgrade
from kopilka.store.queries import insert_id

# issue 10: the session fails if a log line holds a phone number, a one-time code or a PIN
from tests.logscan import pytest_configure, pytest_sessionfinish  # noqa: F401

PG_ADMIN = os.environ.get("KOPILKA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_available() -> bool:
    import asyncpg

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(
                PG_ADMIN.replace("postgresql://", "postgres://"), timeout=3
            )
        except Exception:
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session, dropped at the end."""
    if not pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}; the test command starts it")
    name = f"kopilka_test_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("db") / "kopilka.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session", params=["sqlite", "pg"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_url" if request.param == "pg" else "sqlite_url"
    url: str = request.getfixturevalue(name)
    return url


class Clock:
    """A clock tests can move; real time unless frozen."""

    def __init__(self) -> None:
        self.frozen: datetime | None = None

    def __call__(self) -> datetime:
        return self.frozen or datetime.now(UTC)

    def set(self, when: datetime) -> None:
        self.frozen = when

    def advance(self, **kw: float) -> None:
        self.frozen = self() + timedelta(**kw)


@pytest.fixture(scope="session")
async def rt(db_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime.from_url(db_url, clock=Clock(), cache_ttl_s=0.0)
    yield runtime
    await runtime.close()


@pytest.fixture
def clock(rt: Runtime) -> Iterator[Clock]:
    c = rt.clock
    assert isinstance(c, Clock)
    yield c
    c.frozen = None


@pytest.fixture(scope="session")
async def client(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    # As the server runs it: the hot routes in front of the FastAPI app.
    app = Observed(HotFront(create_app(rt, sweep_every_s=0)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


_serial = itertools.count(1)


@dataclass
class Shop:
    """A program with one partner, store and terminal, made for one test."""

    rt: Runtime
    client: httpx.AsyncClient
    program_id: int
    partner_id: int
    store_code: str
    key: str
    code: str = ""  # the program's code

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.post("/api/pos/v1" + path, json=body, headers=self.headers, **kw)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get("/api/pos/v1" + path, headers=self.headers, **kw)

    async def customer(
        self,
        points: Decimal | str | int = 0,
        *,
        first_name: str = "Анна",
        last_name: str = "Смирнова",
    ) -> Member:
        """A member with a card (and a phone), optionally with points credited now."""
        n = next(_serial)
        number = make_card_number("27", self.program_id * 100_000 + n)
        phone = f"+7903{self.program_id % 1000:03d}{n % 10000:04d}"
        async with self.rt.engine.begin() as conn:
            cid = (
                await conn.execute(
                    insert(t.customers).returning(t.customers.c.id),
                    {
                        "program_id": self.program_id,
                        "first_name": first_name,
                        "last_name": last_name,
                        "phone": phone,
                        "registered_at": self.rt.now(),
                    },
                )
            ).scalar_one()
            _, card_id = await create_account_and_card(
                conn,
                program_id=self.program_id,
                customer_id=cid,
                now=self.rt.now(),
                card_number=number,
                phone=phone,
            )
            acc = (
                await conn.execute(select(t.cards.c.account_id).where(t.cards.c.id == card_id))
            ).scalar_one()
        if Decimal(points):
            await do_adjust(self.rt, acc, Decimal(points), program_id=self.program_id)
        return Member(number, phone, acc, cid)

    async def balance(self, member: Member) -> dict[str, str]:
        r = await self.get("/customers/lookup", params={"identifier": member.card})
        assert r.status_code == 200, r.text
        out: dict[str, str] = r.json()["balance"]
        return out


@dataclass
class Member:
    card: str
    phone: str
    account_id: int
    customer_id: int


async def new_shop(rt: Runtime, client: httpx.AsyncClient, **settings: Any) -> Shop:
    """A program with one partner, store and terminal, on any runtime and client (the
    in-process app or a served one)."""
    n = next(_serial)
    now = rt.now()
    tag = f"{n}-{secrets.token_hex(3)}"
    async with rt.engine.begin() as conn:
        pid = await insert_id(
            conn,
            t.programs,
            {
                "code": f"p{tag}",
                "name": f"Program {n}",
                "settings": settings_to_json(ProgramSettings(**settings)),
                "created_at": now,
            },
        )
        partner = await insert_id(
            conn, t.partners, {"program_id": pid, "code": "main", "name": "Shop"}
        )
        code = f"S{tag}"
        store = await insert_id(
            conn,
            t.stores,
            {
                "program_id": pid,
                "partner_id": partner,
                "code": code,
                "name": "Store",
                "city": "Москва",
            },
        )
        key = f"kp_test_{secrets.token_hex(12)}"
        await conn.execute(
            insert(t.terminals),
            {
                "program_id": pid,
                "store_id": store,
                "name": "till 1",
                "key_hash": hash_key(key),
                "key_prefix": key[:10],
                "created_at": now,
            },
        )
    return Shop(rt, client, pid, partner, code, key, f"p{tag}")


@pytest.fixture
async def make_shop(rt: Runtime, client: httpx.AsyncClient) -> Any:
    async def make(**settings: Any) -> Shop:
        return await new_shop(rt, client, **settings)

    return make


def receipt(
    rid: str, identifier: str | None, *lines: tuple[str, Any, Any], **extra: Any
) -> dict[str, Any]:
    """A calculate body: lines as (sku, quantity, price)."""
    body: dict[str, Any] = {
        "receipt_id": rid,
        "lines": [{"sku": s, "name": f"item {s}", "quantity": q, "price": p} for s, q, p in lines],
        **extra,
    }
    if identifier is not None:
        body["identifier"] = identifier
    return body
