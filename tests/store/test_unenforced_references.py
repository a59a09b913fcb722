"""The references PostgreSQL does not enforce on the POS hot path (ADR 0036, migration 0033):
rows the services never write without their parent are still found by
`kopilka ledger verify` when something else (a manual fix, a restore gone wrong) leaves
them behind, and the migration takes the constraints off and puts them back."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import pytest
from alembic import command

from kopilka.store.migrate import alembic_config, upgrade
from tests.conftest import PG_ADMIN, _pg_admin, pg_available
from tests.services.test_ledger_verify_cli import verify


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    if not pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}; the test command starts it")
    name = f"kopilka_refs_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _sql(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for s in statements:
            await conn.execute(s)
    finally:
        await conn.close()


ORPHAN_LINE = (
    "INSERT INTO receipt_lines (receipt_pk, idx, program_id, sku, name, quantity, price, "
    "amount, discount, points_redeemed, redeemed_value, to_pay, points_earned) "
    "VALUES (987654, 0, 1, 'sku', 'x', 1000, 100, 100, 0, 0, 0, 100, 0)"
)
ORPHAN_LOT = (
    "INSERT INTO lots (program_id, account_id, amount, remaining, activates_at, created_at) "
    "VALUES (1, 424242, 500, 500, now(), now())"
)


def test_verify_reports_rows_whose_parent_is_missing(fresh_pg: str) -> None:
    upgrade(fresh_pg)
    subprocess.run(
        [sys.executable, "-m", "kopilka.cli", "--db", fresh_pg, "demo", "--no-serve"],
        capture_output=True,
        check=True,
        timeout=300,
    )
    clean = verify(fresh_pg)
    asyncio.run(_sql(fresh_pg, ORPHAN_LINE, ORPHAN_LOT))
    broken = verify(fresh_pg)

    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "receipt_lines.receipt_pk names receipts 987654, which does not exist" in (broken.stdout)
    assert "account 424242: lots.account_id names accounts 424242, which does not exist" in (
        broken.stdout
    )
    # the orphan lot also breaks no real account's sums: only the two references are named
    assert broken.stderr.strip().endswith("2 discrepancies"), broken.stdout + broken.stderr


def test_the_migration_takes_the_constraints_off_and_back(fresh_pg: str) -> None:
    upgrade(fresh_pg, "0032")
    asyncio.run(_sql(fresh_pg, "INSERT INTO programs (code, name, settings, created_at) "
                     "VALUES ('p', 'P', '{}', now())"))  # fmt: skip
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        asyncio.run(_sql(fresh_pg, ORPHAN_LINE))

    upgrade(fresh_pg, "0033")
    asyncio.run(_sql(fresh_pg, ORPHAN_LINE))  # taken: the database no longer checks it

    asyncio.run(_sql(fresh_pg, "DELETE FROM receipt_lines"))
    command.downgrade(alembic_config(fresh_pg), "0032")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        asyncio.run(_sql(fresh_pg, ORPHAN_LOT))
