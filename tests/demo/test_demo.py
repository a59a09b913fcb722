"""The demo data set: deterministic, consistent with the ledger, shaped like a real chain.

Each load goes into its own fresh database with a frozen clock, so the same seed must
give the same rows.  Sizes are small (a few hundred customers) to keep this quick.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Select, func, insert, select

from kopilka.demo.loader import PROGRAM_CODE, DemoInfo, demo_terminal_key, load_demo
from kopilka.domain.identifiers import is_valid_card_number
from kopilka.services.ledger_jobs import verify_ledger
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.migrate import upgrade
from tests.conftest import PG_ADMIN, _pg_admin, pg_available

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
SEED = 7
CUSTOMERS = 200


def frozen() -> datetime:
    return NOW


NewUrl = Callable[[str], Awaitable[str]]


@pytest.fixture(scope="module")
def new_url(tmp_path_factory: pytest.TempPathFactory) -> NewUrl:
    """A fresh migrated SQLite database (Alembic runs its own loop: in a thread)."""

    async def make(name: str) -> str:
        path: Path = tmp_path_factory.mktemp("demo") / f"{name}.db"
        url = f"sqlite:///{path}"
        await asyncio.to_thread(upgrade, url)
        return url

    return make


async def _load(url: str, **kw: int) -> tuple[Runtime, DemoInfo]:
    rt = Runtime.from_url(url, clock=frozen)
    info = await load_demo(rt, **{"seed": SEED, "customers": CUSTOMERS, **kw})
    return rt, info


@pytest.fixture(scope="module")
async def loaded(new_url: NewUrl) -> AsyncIterator[tuple[Runtime, DemoInfo]]:
    rt, info = await _load(await new_url("a"))
    yield rt, info
    await rt.close()


async def _scalar(rt: Runtime, stmt: Select[Any]) -> Any:
    async with rt.engine.connect() as conn:
        return (await conn.execute(stmt)).scalar_one()


async def _fingerprint(rt: Runtime) -> tuple[Any, ...]:
    return (
        await _scalar(rt, select(func.sum(t.accounts.c.balance))),
        await _scalar(rt, select(func.count()).select_from(t.receipts)),
        await _scalar(rt, select(func.sum(t.receipts.c.to_pay))),
        await _scalar(rt, select(func.count()).select_from(t.receipt_lines)),
        await _scalar(rt, select(func.count()).select_from(t.ledger_entries)),
        await _scalar(rt, select(func.max(t.customers.c.last_name))),
    )


async def test_the_same_seed_gives_the_same_data(
    loaded: tuple[Runtime, DemoInfo], new_url: NewUrl
) -> None:
    rt, info = loaded
    rt2, info2 = await _load(await new_url("b"))
    try:
        assert info2.card_numbers == info.card_numbers
        assert info2.terminal_key == info.terminal_key == demo_terminal_key(SEED)
        assert info2.counts == info.counts
        assert await _fingerprint(rt2) == await _fingerprint(rt)
    finally:
        await rt2.close()


async def test_the_ledger_verifies_and_balances_add_up(loaded: tuple[Runtime, DemoInfo]) -> None:
    rt, _ = loaded

    assert await verify_ledger(rt) == []
    balance = await _scalar(rt, select(func.sum(t.accounts.c.balance)))
    earned = await _scalar(rt, select(func.sum(t.receipts.c.points_earned)))
    burned = await _scalar(rt, select(func.sum(t.receipts.c.points_redeemed)))
    entries = await _scalar(rt, select(func.sum(t.ledger_entries.c.amount)))
    assert isinstance(balance, Decimal) and balance > 0
    assert balance == entries == earned - burned
    assert burned > 0


async def test_demo_cards_are_members_with_balance_and_history(
    loaded: tuple[Runtime, DemoInfo],
) -> None:
    rt, info = loaded
    assert len(info.card_numbers) == 3
    c, a, r = t.cards, t.accounts, t.receipts
    async with rt.engine.connect() as conn:
        for number in info.card_numbers:
            assert is_valid_card_number(number) and number.startswith("20")
            acc = (
                await conn.execute(
                    select(a.c.id, a.c.balance)
                    .join(c, c.c.account_id == a.c.id)
                    .where(c.c.number == number)
                )
            ).one()
            visits = (
                await conn.execute(
                    select(func.count()).select_from(r).where(r.c.account_id == acc.id)
                )
            ).scalar_one()
            assert acc.balance > 0
            assert visits >= 20


async def test_stores_stand_in_russian_cities(loaded: tuple[Runtime, DemoInfo]) -> None:
    rt, _ = loaded
    s = t.stores
    async with rt.engine.connect() as conn:
        stores = (
            await conn.execute(
                select(s.c.code, s.c.city, s.c.latitude, s.c.longitude, s.c.timezone)
            )
        ).all()
    assert len(stores) >= 20
    assert len({x.city for x in stores}) >= 5
    for x in stores:
        assert 41.0 < x.latitude < 82.0 and 19.0 < x.longitude < 180.0, x
        assert ZoneInfo(x.timezone)
    assert {"MSK-001", "SPB-001", "EKB-001", "NSK-001"} <= {x.code for x in stores}


async def test_members_and_shoppers_without_a_card_both_buy(
    loaded: tuple[Runtime, DemoInfo],
) -> None:
    rt, _ = loaded
    r = t.receipts
    members = await _scalar(
        rt, select(func.count()).select_from(r).where(r.c.account_id.is_not(None))
    )
    anonymous = await _scalar(
        rt, select(func.count()).select_from(r).where(r.c.account_id.is_(None))
    )
    earned_anonymously = await _scalar(
        rt,
        select(func.count()).select_from(r).where(r.c.account_id.is_(None), r.c.points_earned > 0),
    )
    assert 0.55 < members / (members + anonymous) < 0.75
    assert earned_anonymously == 0


async def test_december_sells_more_than_july(loaded: tuple[Runtime, DemoInfo]) -> None:
    rt, _ = loaded
    r = t.receipts
    moscow = ZoneInfo("Europe/Moscow")
    revenue = dict.fromkeys(range(1, 13), Decimal(0))
    async with rt.engine.connect() as conn:
        for at, amount in (await conn.execute(select(r.c.occurred_at, r.c.amount))).all():
            revenue[at.astimezone(moscow).month] += amount
    assert revenue[12] > revenue[7] * Decimal("1.2")


async def test_baskets_have_weight_goods_and_sensible_lines(
    loaded: tuple[Runtime, DemoInfo],
) -> None:
    rt, _ = loaded
    rl = t.receipt_lines
    async with rt.engine.connect() as conn:
        lines = (await conn.execute(select(rl.c.receipt_pk, rl.c.sku, rl.c.quantity))).all()
    per_receipt: dict[int, int] = {}
    for x in lines:
        per_receipt[x.receipt_pk] = per_receipt.get(x.receipt_pk, 0) + 1
    assert max(per_receipt.values()) <= 25 and min(per_receipt.values()) >= 1
    assert any(x.quantity != x.quantity.to_integral_value() for x in lines)
    assert all(len(x.sku) == 13 and x.sku.isdigit() for x in lines)


async def test_loading_again_changes_nothing(loaded: tuple[Runtime, DemoInfo]) -> None:
    rt, info = loaded
    before = await _fingerprint(rt)

    again = await load_demo(rt, seed=SEED, customers=CUSTOMERS)

    assert again.already_loaded
    assert again.terminal_key == info.terminal_key
    assert again.card_numbers == info.card_numbers
    assert again.counts["receipts"] == info.counts["receipts"]
    assert await _fingerprint(rt) == before


async def test_points_older_than_a_year_expire(new_url: NewUrl) -> None:
    rt, _ = await _load(await new_url("long"), customers=60, days=500)
    le = t.ledger_entries
    try:
        expired = await _scalar(
            rt, select(func.count()).select_from(le).where(le.c.kind == "expire")
        )
        assert expired > 0
        assert await verify_ledger(rt) == []
    finally:
        await rt.close()


@pytest.mark.pg
async def test_loads_on_postgresql_and_later_inserts_still_get_ids() -> None:
    if not await asyncio.to_thread(pg_available):
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}; the test command starts it")
    name = f"kopilka_demo_{secrets.token_hex(4)}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(upgrade, url)
        rt, info = await _load(url, customers=60)
        try:
            assert await verify_ledger(rt) == []
            async with rt.engine.begin() as conn:  # sequences moved past the explicit ids
                program = (
                    await conn.execute(
                        select(t.programs.c.id).where(t.programs.c.code == PROGRAM_CODE)
                    )
                ).scalar_one()
                customer = (
                    await conn.execute(
                        insert(t.customers).returning(t.customers.c.id),
                        {"program_id": program, "registered_at": NOW},
                    )
                ).scalar_one()
                await conn.execute(
                    insert(t.accounts),
                    {
                        "program_id": program,
                        "customer_id": customer,
                        "created_at": NOW,
                        "updated_at": NOW,
                    },
                )
            assert info.counts["customers"] == 60
        finally:
            await rt.close()
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
