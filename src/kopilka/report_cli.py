"""``kopilka report NAME ... --format csv|xlsx --out FILE`` and ``kopilka import ...``.

Every report module registers its subcommand in ``REPORTS`` (a function that adds a
parser to the ``report`` group and sets ``fn``); every importer in ``IMPORTS``.  The
output options are the same for every report: ``--format csv`` (default), ``xlsx`` or ``pdf``,
``--out FILE`` (default: CSV to standard output; XLSX and PDF need ``--out``).  CSV written here
is plain UTF-8 with LF line ends and values exactly as stored, for scripts; the console's
downloads are made for spreadsheets instead (``services.exports``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kopilka import import_cli
from kopilka.services import exports

Register = Callable[[Any], None]


def lazy(module: str, name: str = "register") -> Register:
    """A report module's ``register``, imported when the parser is built: report modules
    import this one, so a top-level import here would be a cycle."""

    def register(rs: Any) -> None:
        getattr(importlib.import_module(module), name)(rs)

    return register


# One line per report / importer, in the order `kopilka report --help` lists them; each
# module owns its parser and its command.
REPORTS: list[Register] = [
    lazy("kopilka.analytics.summary_cli", "register_summary"),
    lazy("kopilka.analytics.rfm_cli"),
    lazy("kopilka.analytics.map_cli"),
    lazy("kopilka.analytics.promotions_cli"),
    lazy("kopilka.analytics.basket_cli"),
    lazy("kopilka.analytics.clv_cli"),
    lazy("kopilka.analytics.builder_cli"),
    lazy("kopilka.fraud_cli", "register_report"),
]
IMPORTS: list[Register] = [import_cli.add_receipts_command]


OUTPUT_FORMATS = (*exports.FORMATS, "pdf")


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """``--format``, ``--out`` and ``--program``: the same for every report."""
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="csv")
    parser.add_argument("--out", default=None, help="file to write (default: standard output)")
    parser.add_argument("--program", default=None, help="program code (default: the only one)")


async def write_tables(
    tables: Sequence[exports.Table],
    *,
    fmt: str,
    out: str | None,
    subtitle: str = "",
    images: Sequence[tuple[str, bytes]] = (),
) -> None:
    """Write a report's first table (CSV) or every table as a sheet (XLSX) or one after
    another (PDF: titled by the first table, ``subtitle`` under it) to ``out``.

    A report with several tables (rules and itemsets, rows and segment sizes) writes
    its main one to CSV; ``xlsx`` and ``pdf`` carry them all, after the ``images``
    (sheet title, PNG) if any."""
    if fmt in ("xlsx", "pdf"):
        if out is None:
            raise SystemExit(f"error: --format {fmt} needs --out FILE")
        if fmt == "xlsx":
            data = await exports.xlsx_book_bytes(tables, images=images)
        else:
            from kopilka.services import pdf  # fpdf2 loads its fonts: only when asked

            data = await pdf.tables_pdf(
                tables, subtitle=subtitle, images=[png for _, png in images]
            )
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
