"""`kopilka fraud scan | alerts | settings` and `kopilka report fraud-alerts`, run as the
operator runs them, on the session's database (both engines).

Each test runs each command family in a process of its own once; the other invocations
run ``cli.main`` in this process (``tests.inprocess``): the same exit codes and output
without the interpreter's start-up each time."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.conftest import Shop, receipt
from tests.inprocess import kopilka_async

KOPILKA = str(Path(sys.executable).with_name("kopilka"))


async def kopilka(shop: Shop, *args: str) -> subprocess.CompletedProcess[str]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KOPILKA, "--db", shop.rt.url, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    return await asyncio.to_thread(run)


async def _cashier_swipes(shop: Shop) -> str:
    card = await shop.customer()
    for i in range(5):
        r = await shop.post(
            "/purchases", receipt(f"c{i}", card.card, ("a", 1, "100.00"), cashier_id="k-12")
        )
        assert r.status_code == 200, r.text
    return card.card


async def test_scan_then_list_then_export(
    make_shop: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = await make_shop()
    card = await _cashier_swipes(shop)

    scan = await kopilka(shop, "fraud", "scan", "--program", shop.code)
    again = await kopilka_async(capsys, shop.rt.url, "fraud", "scan", "--program", shop.code)
    listed = await kopilka_async(capsys, shop.rt.url, "fraud", "alerts", "--program", shop.code)
    report = await kopilka(shop, "report", "fraud-alerts", "--program", shop.code)
    xlsx = tmp_path / "alerts.xlsx"
    book = await kopilka_async(
        capsys,
        shop.rt.url,
        "report",
        "fraud-alerts",
        "--program",
        shop.code,
        "--format",
        "xlsx",
        "--out",
        str(xlsx),
    )

    assert scan.returncode == 0, scan.stderr
    assert scan.stdout == "fraud scan: 1 new alerts, 0 updated (1 programs)\n"
    assert again.stdout == "fraud scan: 0 new alerts, 0 updated (1 programs)\n"
    [line] = listed.stdout.splitlines()
    assert line.split("\t")[2:5] == ["cashier_card", "medium", "open"]
    assert f"card {card}" in line
    rows = list(csv.reader(io.StringIO(report.stdout)))
    assert rows[0][:5] == ["id", "created_at", "rule", "severity", "state"]
    assert [(r[2], r[6], r[8], r[10]) for r in rows[1:]] == [("cashier_card", card, card, "5")]
    assert book.returncode == 0, book.stderr
    ws = load_workbook(xlsx).active
    assert ws is not None and ws.cell(2, 3).value == "cashier_card"


async def test_settings_are_shown_changed_and_bad_values_refused(
    make_shop: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = await make_shop()

    changed = await kopilka(
        shop, "fraud", "settings", "--program", shop.code, "--set", "adjust_limit=5000",
        "--disable", "terminal_burst",
    )  # fmt: skip
    settings = ("fraud", "settings", "--program", shop.code)
    bad = await kopilka_async(capsys, shop.rt.url, *settings, "--set", "refund_days=0")
    unknown = await kopilka_async(capsys, shop.rt.url, *settings, "--set", "x=1")
    bad_state = await kopilka_async(
        capsys, shop.rt.url, "report", "fraud-alerts", "--program", shop.code, "--state", "z"
    )

    assert changed.returncode == 0, changed.stderr
    assert "adjust_limit=5000\n" in changed.stdout
    assert "disabled=terminal_burst\n" in changed.stdout
    assert (bad.returncode, bad.stderr) == (
        2,
        "error: a whole number of days, 1 to 365 (refund_days)\n",
    )
    assert (unknown.returncode, unknown.stderr) == (2, "error: no setting 'x' (x)\n")
    assert (bad_state.returncode, bad_state.stderr) == (2, "error: no state 'z' (state)\n")
