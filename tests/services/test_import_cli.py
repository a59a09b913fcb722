"""``kopilka import receipts`` as an operator runs it, on a fresh database of each kind:
exit codes, the summary line, the rejects file, and ``kopilka ledger verify`` after it.

Each test runs the command in a process of its own once or more; the other invocations run
``cli.main`` in this process (``tests.inprocess``): the same exit codes and output without
the interpreter's start-up each time."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kopilka.services.runtime import Runtime
from tests.conftest import PG_ADMIN, _pg_admin
from tests.inprocess import kopilka_sync

GOOD_AND_BAD = (
    "receipt_id,occurred_at,store,customer,sku,name,category,quantity,price,amount\n"
    "1001,2025-05-01T09:00:00,msk-01,C-17,4601,Молоко,dairy,2,89.90,\n"
    "1002,2025-05-01,msk-01,,4602,Хлеб,bakery,1,45.00,40.00\n"
    "1003,2025-05-02,msk-01,C-18,4603,Кефир,dairy,-1,60.00,\n"
)


def kopilka(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kopilka.cli", "--db", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def fresh_url(rt: Runtime, tmp_path: Path) -> Iterator[str]:
    """A new empty database of the same kind as the session's."""
    if rt.sqlite:
        yield f"sqlite:///{tmp_path / 'cli.db'}"
        return
    name = f"kopilka_import_cli_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_import_from_the_command_line(
    fresh_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kopilka(fresh_url, "migrate").returncode == 0
    file = tmp_path / "history.csv"
    file.write_text(GOOD_AND_BAD, encoding="utf-8")

    no_program = kopilka(fresh_url, "import", "receipts", str(file))

    assert (no_program.returncode, no_program.stderr) == (
        2,
        "error: give --program CODE (there is no program)\n",
    )
    created = kopilka_sync(
        capsys, fresh_url, "program", "create", "--code", "shop", "--name", "Shop"
    )
    assert created.returncode == 0, created.stderr

    first = kopilka(fresh_url, "import", "receipts", str(file))
    again = kopilka_sync(capsys, fresh_url, "import", "receipts", str(file), "--program", "shop")
    verify = kopilka_sync(capsys, fresh_url, "ledger", "verify")

    rejects = tmp_path / "history.rejects.csv"
    assert (first.returncode, first.stdout) == (
        1,
        "imported 2 receipts (2 lines), skipped 0 already imported, "
        f"rejected 1 receipts (1 lines) -> {rejects}\n",
    )
    assert first.stderr == ""  # not a terminal: no progress bar
    assert rejects.read_text(encoding="utf-8").splitlines() == [
        "line,receipt_id,reason,receipt_id,occurred_at,store,customer,sku,name,category,"
        "quantity,price,amount",
        "4,1003,quantity must be > 0 (returns are not imported),"
        "1003,2025-05-02,msk-01,C-18,4603,Кефир,dairy,-1,60.00,",
    ]
    assert (again.returncode, again.stdout) == (
        1,
        "imported 0 receipts (0 lines), skipped 2 already imported, "
        f"rejected 1 receipts (1 lines) -> {rejects}\n",
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_clean_file_exits_0_and_a_broken_one_2(
    fresh_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kopilka_sync(capsys, fresh_url, "migrate").returncode == 0
    kopilka_sync(capsys, fresh_url, "program", "create", "--code", "shop", "--name", "Shop")
    clean = tmp_path / "clean.csv"
    clean.write_text(GOOD_AND_BAD.rsplit("\n", 2)[0] + "\n", encoding="utf-8")
    broken = tmp_path / "broken.csv"
    broken.write_text("receipt_id;occurred_at;store;customer;quantity;amount\n", encoding="utf-8")

    ok = kopilka(fresh_url, "import", "receipts", str(clean), "--rejects", str(tmp_path / "r.csv"))
    bad = kopilka_sync(capsys, fresh_url, "import", "receipts", str(broken))
    missing = kopilka_sync(capsys, fresh_url, "import", "receipts", str(tmp_path / "nope.csv"))
    zone = kopilka_sync(
        capsys, fresh_url, "import", "receipts", str(clean), "--tz", "Europe/Nowhere"
    )

    assert (ok.returncode, ok.stdout) == (
        0,
        "imported 2 receipts (2 lines), skipped 0 already imported, "
        "rejected 0 receipts (0 lines)\n",
    )
    assert not (tmp_path / "r.csv").exists()
    assert (bad.returncode, bad.stderr) == (2, f"error: {broken}: missing column: sku\n")
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"error: {tmp_path / 'nope.csv'}: cannot read")
    assert (zone.returncode, zone.stderr) == (
        2,
        "error: unknown time zone 'Europe/Nowhere' (e.g. Europe/Moscow)\n",
    )
