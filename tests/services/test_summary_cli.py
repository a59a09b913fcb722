"""``kopilka report summary|stores|cohorts|rebuild-summary`` from the command line: the
files it writes, and bad input answered with ``error: ...`` and exit code 2."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kopilka import cli
from tests.conftest import Clock
from tests.services.test_summary_report import hand_shop


async def _kopilka(db_url: str, *args: str) -> int:
    return await asyncio.to_thread(cli.main, ["--db", db_url, *args])


async def test_summary_and_stores_to_csv_files(
    make_shop: Any, clock: Clock, db_url: str, tmp_path: Path
) -> None:
    shop, _, _ = await hand_shop(make_shop, clock)
    period = ["--program", shop.code, "--from", "2026-03-10", "--to", "2026-03-12"]

    rc1 = await _kopilka(db_url, "report", "summary", *period, "--out", str(tmp_path / "s.csv"))
    rc2 = await _kopilka(db_url, "report", "stores", *period, "--no-cashiers",
                         "--out", str(tmp_path / "t.csv"))  # fmt: skip

    assert (rc1, rc2) == (0, 0)
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[:3] == [
        "metric,value,previous,change,change_pct",
        "sales,700.00,400.00,300.00,75.0",
        "receipts,3,1,2,200.0",
    ]
    stores = (tmp_path / "t.csv").read_text().splitlines()
    assert stores[1].endswith(",,3,700.00,250.00,35.7,62.00,20.67,1,1000.00")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-03-12", "--to", "2026-03-10"], "error: --to: the period ends before"),
        (["--from", "12.03.2026", "--to", "2026-03-10"], "error: --from: not a date"),
        (["--from", "2026-03-10", "--to", "2026-03-12", "--store", "NOPE"], "error: --store: no"),
    ],
)
async def test_bad_input_is_an_error_with_exit_code_2(
    make_shop: Any, db_url: str, capsys: pytest.CaptureFixture[str], args: list[str],
    message: str,
) -> None:  # fmt: skip
    shop = await make_shop()

    rc = await _kopilka(db_url, "report", "summary", "--program", shop.code, *args)

    assert rc == 2
    assert capsys.readouterr().err.startswith(message)
