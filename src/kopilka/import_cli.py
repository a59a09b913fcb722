"""``kopilka import receipts FILE.csv``: historical receipts from a chain's old system.

Registered in ``report_cli.IMPORTS``.  Exit codes: 0 all imported (or already there),
1 some receipts rejected (see the rejects file), 2 the file or an option is unusable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any, TextIO

BAR_WIDTH = 30


class ProgressBar:
    """``[#####.....]  45%  90000/200000 lines  31234 lines/s`` on a terminal, redrawn at
    most ten times a second; nothing when the stream is not a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = time.perf_counter()
        self.drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - self.drawn < 0.1:
            return
        self.drawn = now
        share = done / total if total else 1.0
        filled = int(share * BAR_WIDTH)
        rate = done / max(now - self.started, 1e-9)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%}  "
            f"{done}/{total} lines  {rate:,.0f} lines/s"
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def add_receipts_command(isub: Any) -> None:
    p = isub.add_parser(
        "receipts",
        help="historical receipts from a CSV file (one row per receipt line)",
        description="Load historical receipts: header receipt_id, occurred_at, store, "
        "customer, sku, name, category, quantity, price, amount (docs/analytics/import.md).",
    )
    p.add_argument("file", help="the CSV file (UTF-8, comma or semicolon)")
    p.add_argument("--program", default=None, help="program code (default: the only one)")
    p.add_argument(
        "--tz", default=None, help="time zone of times without an offset (default: the program's)"
    )
    p.add_argument(
        "--default-store",
        default="import",
        help="store code for rows with an empty store (default: import)",
    )
    p.add_argument("--rejects", default=None, help="rejects file (default: FILE.rejects.csv)")
    p.add_argument("--batch-lines", type=int, default=20_000, help=argparse.SUPPRESS)
    p.set_defaults(fn=cmd_import_receipts)


def cmd_import_receipts(args: argparse.Namespace) -> int:
    from kopilka.services.errors import ServiceError
    from kopilka.services.receipt_import import ImportFileError, do_import_receipts, scan
    from kopilka.services.runtime import Runtime

    path = Path(args.file)
    try:
        plan = scan(path)
    except ImportFileError as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None

    async def go() -> int:
        rt = Runtime.from_url(args.db)
        try:
            summary = await do_import_receipts(
                rt,
                path,
                program=args.program,
                tz=args.tz,
                default_store=args.default_store,
                rejects=Path(args.rejects) if args.rejects else None,
                batch_lines=max(args.batch_lines, 1),
                progress=bar,
                plan=plan,
            )
        finally:
            await rt.close()
        print(summary.line())
        return 1 if summary.rejected else 0

    try:
        return asyncio.run(go())
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    except ImportFileError as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
