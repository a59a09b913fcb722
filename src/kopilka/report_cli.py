"""``kopilka report NAME ... --format csv|xlsx --out FILE`` and ``kopilka import ...``.

Every report module registers its subcommand in ``REPORTS`` (a function that adds a
parser to the ``report`` group and sets ``fn``); every importer in ``IMPORTS``.  The
output options are the same for every report: ``--format csv`` (default) or ``xlsx``,
``--out FILE`` (default: CSV to standard output; XLSX needs ``--out``).  CSV written here
is plain UTF-8 with LF line ends and values exactly as stored, for scripts; the console's
downloads are made for spreadsheets instead (``services.exports``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kopilka.services import exports

Register = Callable[[Any], None]

# One line per report / importer; each module owns its parser and its command.
REPORTS: list[Register] = []
IMPORTS: list[Register] = []


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """``--format``, ``--out`` and ``--program``: the same for every report."""
    parser.add_argument("--format", choices=exports.FORMATS, default="csv")
    parser.add_argument("--out", default=None, help="file to write (default: standard output)")
    parser.add_argument("--program", default=None, help="program code (default: the only one)")


async def write_tables(tables: Sequence[exports.Table], *, fmt: str, out: str | None) -> None:
    """Write a report's first table (CSV) or every table as a sheet (XLSX) to ``out``.

    A report with several tables (rules and itemsets, rows and segment sizes) writes
    its main one to CSV; ``xlsx`` carries them all."""
    if fmt == "xlsx":
        if out is None:
            raise SystemExit("error: --format xlsx needs --out FILE")
        data = await exports.xlsx_book_bytes(tables)
        await asyncio.to_thread(Path(out).write_bytes, data)
        return
    # a CLI process: writing to the terminal or a local file blocks nobody else
    sink = sys.stdout.buffer if out is None else open(out, "wb")  # noqa: ASYNC230, SIM115
    try:
        async for chunk in exports.csv_chunks(tables[0], for_spreadsheet=False):
            sink.write(chunk)
        sink.flush()
    finally:
        if out is not None:
            sink.close()


def add_report_commands(sub: Any) -> None:
    rp = sub.add_parser("report", help="analytics reports as CSV or XLSX")
    rs = rp.add_subparsers(dest="report", required=True)
    for register in REPORTS:
        register(rs)


def add_import_commands(sub: Any) -> None:
    ip = sub.add_parser("import", help="bring data from other systems")
    isub = ip.add_subparsers(dest="what", required=True)
    for register in IMPORTS:
        register(isub)


# The reports register here, after the helpers they use are defined (they import this module).
from kopilka.analytics import basket_cli, clv_cli  # noqa: E402

REPORTS.append(basket_cli.register)
REPORTS.append(clv_cli.register)
