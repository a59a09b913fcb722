"""The restore drill (issue 10), small: a loaded database backed up the documented way
(PostgreSQL: ``pg_dump -Fc`` → ``createdb`` → ``pg_restore``; SQLite: the online backup
API while the server's connection is open) comes back with ``kopilka ledger verify``
green, every account's balance equal and the ledger still append-only.
``bench/restore_drill.py`` runs it on a bigger load with figures."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from kopilka.services.runtime import Runtime
from tests.conftest import _pg_admin
from tests.drills import (
    append_only_survives,
    ledger_verify,
    load_sample,
    restore_pg,
    restore_sqlite,
)


async def test_a_restored_backup_verifies_and_has_the_same_balances(
    rt: Runtime, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    shop = await load_sample(rt, client, members=6)
    # The session's database also holds other tests' deliberate corruptions (a wrong funder
    # written on purpose can never be taken back from an append-only ledger): the copy
    # must verify exactly as the original does, and the original is clean or says why.
    original = await asyncio.to_thread(ledger_verify, rt.url)
    target = f"kopilka_restored_{secrets.token_hex(4)}"

    if rt.sqlite:
        got = await restore_sqlite(rt, Path(make_url(rt.url).database or ""), tmp_path)
        copy = f"sqlite:///{tmp_path}/backup.db"
    else:
        try:
            got = await restore_pg(rt.url, target, tmp_path)
        except Exception:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
            raise
        copy = rt.url.rsplit("/", 1)[0] + "/" + target

    try:
        assert (got.verify_exit, got.verify_said) == original
        assert got.same_balances and got.same_entries
        assert got.accounts >= 6 and shop.program_id > 0
        assert await append_only_survives(copy)
    finally:
        if not rt.sqlite:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')


pytestmark = pytest.mark.slow
