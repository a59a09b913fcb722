"""Migration 0024 on a database with history, on both engines: the new ``partner_id`` of
old entries is filled from their receipt, the mark records the last old entry, and the
ledger is still append-only afterwards."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError

from kopilka.store import tables as t
from kopilka.store.db import create_engine
from kopilka.store.migrate import upgrade
from kopilka.store.queries import insert_id
from tests.conftest import PG_ADMIN, _pg_admin, pg_available

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "pg"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}")
    name = f"kopilka_m24_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _history(url: str) -> tuple[int, int, int]:
    """A 0023 database with a receipt's earn entry and an operator's adjustment."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            pid = await insert_id(
                conn,
                t.programs,
                {"code": "old", "name": "Old", "settings": "{}", "created_at": NOW},
            )
            partner = await insert_id(
                conn, t.partners, {"program_id": pid, "code": "a", "name": "A"}
            )
            store = await insert_id(
                conn,
                t.stores,
                {"program_id": pid, "partner_id": partner, "code": "S", "name": "S"},
            )
            term = await insert_id(
                conn,
                t.terminals,
                {
                    "program_id": pid,
                    "store_id": store,
                    "name": "t",
                    "key_hash": "h" * 64,
                    "key_prefix": "kp",
                    "created_at": NOW,
                },
            )
            cust = await insert_id(conn, t.customers, {"program_id": pid, "registered_at": NOW})
            acc = await insert_id(
                conn,
                t.accounts,
                {"program_id": pid, "customer_id": cust, "created_at": NOW, "updated_at": NOW},
            )
            z = Decimal(0)
            rec = await insert_id(
                conn,
                t.receipts,
                {
                    "program_id": pid,
                    "partner_id": partner,
                    "store_id": store,
                    "terminal_id": term,
                    "pos_receipt_id": "r1",
                    "account_id": acc,
                    "state": "confirmed",
                    "occurred_at": NOW,
                    "created_at": NOW,
                    "amount": z,
                    "discount": z,
                    "points_redeemed": z,
                    "redeemed_value": z,
                    "to_pay": z,
                    "points_earned": z,
                    "request_hash": "x",
                },
            )
            base = {"program_id": pid, "account_id": acc, "created_at": NOW}
            await conn.execute(
                insert(t.ledger_entries),
                [
                    {**base, "kind": "earn", "amount": Decimal(5), "receipt_pk": rec},
                    {**base, "kind": "adjust", "amount": Decimal(3), "receipt_pk": None},
                ],
            )
        return pid, partner, acc
    finally:
        await engine.dispose()


async def _after(url: str, acc: int) -> tuple[list[object], int, bool]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            le = t.ledger_entries
            where = (
                await conn.execute(
                    select(le.c.partner_id).where(le.c.account_id == acc).order_by(le.c.id)
                )
            ).scalars()
            mark = (await conn.execute(select(t.ledger_marks.c.entry_id))).scalar_one()
            last = (await conn.execute(select(le.c.id).order_by(le.c.id.desc()))).scalar()
        refused = False
        try:
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE ledger_entries SET amount = 0"))
        except DBAPIError as exc:
            refused = "append-only" in str(exc)
        return list(where), int(mark) - int(last or 0), refused
    finally:
        await engine.dispose()


def test_0024_fills_where_old_entries_happened_and_keeps_the_ledger_append_only(
    empty_url: str,
) -> None:
    upgrade(empty_url, "0023")
    _, partner, acc = asyncio.run(_history(empty_url))

    upgrade(empty_url, "head")
    where, mark_gap, refused = asyncio.run(_after(empty_url, acc))

    assert where == [partner, None]  # the receipt's partner; the operator's: none
    assert mark_gap == 0  # the mark is the last entry written before the migration
    assert refused
