"""``kopilka settlement ...`` as an operator runs it (``cli.main`` on the test database, in
a thread: the command runs its own event loop, as in a process of its own)."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from kopilka import cli
from kopilka.services import audit, settlement
from kopilka.services.errors import ServiceError
from tests.conftest import Clock
from tests.settlement.conftest import Coalition


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def kopilka(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    async def run(c: Coalition, *args: str) -> Done:
        argv = ["--db", c.a.rt.url, "settlement", *args, "--program", c.a.code]
        code = await asyncio.to_thread(cli.main, argv)
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


async def test_an_operator_closes_a_month_and_hands_out_the_files(
    coalition: Coalition, tmp_path: Path, kopilka: Any
) -> None:
    c = coalition

    future = await kopilka(c, "close", "--period", "2099-01")
    terms = await kopilka(c, "terms", "--rate", "0.50", "--fee", "2")
    closed = await kopilka(c, "close", "--period", "2026-11")
    again = await kopilka(c, "close", "--period", "2026-11")
    report = await kopilka(c, "report", "--period", "2026-11")
    book = tmp_path / "nov.xlsx"
    await kopilka(c, "report", "--period", "2026-11", "--format", "xlsx", "--out", str(book))
    check = await kopilka(c, "check", "--period", "2026-11")
    pdf = tmp_path / "coffee.pdf"
    got = await kopilka(
        c, "statement", "--period", "2026-11", "--partner", "coffee", "--out", str(pdf)
    )

    assert (future.returncode, future.stderr) == (
        3,
        "error: period: 2099-01 is not over yet (it ends 2099-01-31T21:00:00+00:00); "
        "only a finished month can be closed\n",
    )
    assert terms.stdout == "rate 0.50 RUB per point, operator's fee 2 %\n"
    assert closed.returncode == 0, closed.stderr
    assert again.returncode == 4 and "2026-11 is already closed" in again.stderr
    rows = {r["party"]: r for r in csv.DictReader(io.StringIO(report.stdout))}
    assert (rows["apteka"]["net_rub"], rows["coffee"]["net_rub"], rows["operator"]["net_rub"]) == (
        "-15.40",
        "38.80",
        "-23.40",
    )
    sheets = load_workbook(book, read_only=True)
    assert sheets.sheetnames == ["Positions", "Obligations", "Between partners"]
    obligations = [list(r) for r in sheets["Obligations"].iter_rows(values_only=True)]
    assert obligations[1:] == [
        ["operator", "coffee", 50, 25, 0.5, 24.5],
        ["apteka", "coffee", 70, 35, 0.7, 34.3],
        ["coffee", "apteka", 40, 20, 0.4, 19.6],
    ]
    assert (check.returncode, check.stdout) == (0, f"OK: {c.a.code} 2026-11 matches the ledger\n")
    program = await settlement.find_program(c.a.rt, c.a.code)
    assert got.returncode == 0, got.stderr
    assert pdf.read_bytes() == await settlement.stored_statement(
        c.a.rt, program, "2026-11", c.b_partner
    )


async def test_two_closes_at_once_close_once(coalition: Coalition, clock: Clock) -> None:
    c = coalition
    program = await settlement.find_program(c.a.rt, c.a.code)
    clock.set(clock().replace(month=12, day=2))

    results = await asyncio.gather(
        *(settlement.do_close(c.a.rt, program, "2026-11", actor=audit.CLI) for _ in range(2)),
        return_exceptions=True,
    )

    codes = sorted(r.code if isinstance(r, ServiceError) else "closed" for r in results)
    assert codes == ["closed", "period_closed"], results
    assert [p["period"] for p in await settlement.list_periods(c.a.rt, program.id)] == ["2026-11"]


async def test_bad_terms_are_refused_naming_the_field(coalition: Coalition, kopilka: Any) -> None:
    c = coalition

    rate = await kopilka(c, "terms", "--rate", "-1")
    fee = await kopilka(c, "terms", "--fee", "abc")
    inn = await kopilka(c, "partner", "--partner", "coffee", "--inn", "12345")

    assert (rate.returncode, rate.stderr) == (2, "error: rate: must be > 0 and <= 1000000\n")
    assert (fee.returncode, fee.stderr) == (2, "error: fee_percent: a number\n")
    assert (inn.returncode, inn.stderr) == (2, "error: inn: 10 or 12 digits\n")
    program = await settlement.find_program(c.a.rt, c.a.code)
    async with c.a.rt.engine.connect() as conn:
        terms = await settlement.current_terms(conn, program)
    assert (terms.rate, terms.fee_percent) == (Decimal("1"), Decimal("0"))
