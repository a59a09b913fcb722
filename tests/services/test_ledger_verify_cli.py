"""`kopilka ledger verify` finds an account whose cached balance disagrees with its ledger."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, update

from kopilka.services import setup
from kopilka.services.accounts import do_adjust
from kopilka.services.customers import create_account_and_card
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.migrate import upgrade


async def _member_with_points(url: str) -> int:
    rt = Runtime.from_url(url)
    await setup.do_create_program(rt, code="v", name="V", changes={})
    async with rt.engine.begin() as conn:
        cid = (
            await conn.execute(
                insert(t.customers).returning(t.customers.c.id),
                {"program_id": 1, "registered_at": rt.now()},
            )
        ).scalar_one()
        await create_account_and_card(
            conn,
            program_id=1,
            customer_id=cid,
            now=rt.now(),
            card_number="2000000000015",
            phone=None,
        )
    await do_adjust(rt, 1, Decimal("40"), program_id=1)
    await rt.close()
    return 1


async def _tamper(url: str, account_id: int) -> None:
    rt = Runtime.from_url(url)
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.accounts)
            .where(t.accounts.c.id == account_id)
            .values(balance=t.accounts.c.balance + Decimal("0.01"))
        )
    await rt.close()


def verify(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kopilka.cli", "--db", url, "ledger", "verify"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_verify_names_a_tampered_account_and_exits_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    upgrade(url)
    account = asyncio.run(_member_with_points(url))

    clean = verify(url)
    asyncio.run(_tamper(url, account))
    tampered = verify(url)

    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert tampered.returncode == 1
    assert "account 1: balance vs entries: cached 40.01, recomputed 40.00" in tampered.stdout
