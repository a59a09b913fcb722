"""``kopilka report rfm --as-of DATE [--window-days N] [--segments FILE] [--save]`` and
``kopilka report rfm-migration --from DATE --to DATE``.

Bad input is ``error: ...`` naming the option and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any

from kopilka import report_cli
from kopilka.domain import rfm
from kopilka.services.errors import ServiceError

if TYPE_CHECKING:
    from kopilka.services.runtime import Runtime

# the report and the services are imported by the commands: building the parser stays light


def register(sub: Any) -> None:
    p = sub.add_parser(
        "rfm",
        help="RFM: recency, frequency, monetary scores and segments per customer",
        description="One row per customer with a purchase in the window: customer, "
        "last_purchase, recency_days, frequency, monetary, r, f, m, segment.",
    )
    p.add_argument(
        "--as-of", required=True, metavar="DATE", help="the report's date, YYYY-MM-DD (included)"
    )
    _common(p)
    p.add_argument(
        "--save",
        action="store_true",
        help="also write each customer's segment into customers.rfm_segment (audited)",
    )
    p.add_argument(
        "--actor",
        default=None,
        metavar="NAME",
        help="who saves, for the audit log (default: $USER)",
    )
    report_cli.add_output_args(p)
    p.set_defaults(fn=cmd_rfm)

    m = sub.add_parser(
        "rfm-migration",
        help="RFM: how many customers moved from each segment at one date to each at another",
    )
    m.add_argument(
        "--from", dest="date_from", required=True, metavar="DATE", help="first date, YYYY-MM-DD"
    )
    m.add_argument(
        "--to", dest="date_to", required=True, metavar="DATE", help="second date, YYYY-MM-DD"
    )
    _common(m)
    report_cli.add_output_args(m)
    m.set_defaults(fn=cmd_migration)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--window-days",
        default=None,
        metavar="N",
        help=f"days in the window (default {rfm.DEFAULT_WINDOW_DAYS})",
    )
    p.add_argument(
        "--segments",
        default=None,
        metavar="FILE",
        help=f"YAML segment map (default: ${rfm.SEGMENTS_ENV} or the built-in map)",
    )


async def program_of(rt: Runtime, code: str | None) -> int:
    """The program named by ``--program``, or the only one there is."""
    from sqlalchemy import select

    from kopilka.store import tables as t

    p = t.programs
    async with rt.engine.connect() as conn:
        if code is not None:
            pid = (await conn.execute(select(p.c.id).where(p.c.code == code))).scalar_one_or_none()
            if pid is None:
                raise ServiceError("program_not_found", f"no program {code!r}", field="--program")
            return int(pid)
        ids = (await conn.execute(select(p.c.id).limit(2))).scalars().all()
    if len(ids) != 1:
        what = "there is no program" if not ids else "there are several programs"
        raise ServiceError("validation_failed", f"{what}: give --program CODE", field="--program")
    return int(ids[0])


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace, go: Any) -> int:
    from kopilka.analytics import rfm as report
    from kopilka.services.runtime import Runtime

    if args.format == "xlsx" and args.out is None:
        return _fail("--format xlsx needs --out FILE")
    try:
        segments = report.load_segment_map(args.segments)
        window = report.parse_window(args.window_days, field="--window-days")
    except rfm.SegmentConfigError as exc:
        return _fail("--segments: " + "; ".join(f"{p}: {m}" for p, m in exc.problems))
    except ServiceError as exc:
        return _fail(f"{exc.field}: {exc.detail}")

    async def main() -> int:
        rt = Runtime.from_url(args.db)
        try:
            pid = await program_of(rt, args.program)
            return int(await go(rt, pid, window, segments))
        finally:
            await rt.close()

    try:
        return asyncio.run(main())
    except BrokenPipeError:  # `... | head`: the reader has gone, that is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ServiceError as exc:
        return _fail(f"{exc.field}: {exc.detail}" if exc.field else exc.detail)


def cmd_rfm(args: argparse.Namespace) -> int:
    from kopilka.analytics import rfm as report
    from kopilka.services import audit
    from kopilka.services import rfm as service

    try:
        as_of = report.parse_as_of(args.as_of, field="--as-of")
    except ServiceError as exc:
        return _fail(f"{exc.field}: {exc.detail}")

    async def go(rt: Runtime, pid: int, window: int, segments: rfm.SegmentMap) -> int:
        rep = await report.compute(rt, pid, as_of=as_of, window_days=window, segments=segments)
        await report_cli.write_tables(report.tables(rep), fmt=args.format, out=args.out)
        if args.save:
            name = args.actor or os.environ.get("USER") or "cli"
            saved = await service.do_save_segments(
                rt,
                audit.Actor("cli", None, name),
                pid,
                as_of=as_of,
                window_days=window,
                segments=segments,
            )
            print(
                f"saved: {saved.customers} customers with a segment, {saved.changed} changed",
                file=sys.stderr,
            )
        return 0

    return _run(args, go)


def cmd_migration(args: argparse.Namespace) -> int:
    from kopilka.analytics import rfm as report

    try:
        a = report.parse_as_of(args.date_from, field="--from")
        b = report.parse_as_of(args.date_to, field="--to")
    except ServiceError as exc:
        return _fail(f"{exc.field}: {exc.detail}")

    async def go(rt: Runtime, pid: int, window: int, segments: rfm.SegmentMap) -> int:
        mig = await report.migration(rt, pid, a=a, b=b, window_days=window, segments=segments)
        await report_cli.write_tables([report.migration_table(mig)], fmt=args.format, out=args.out)
        return 0

    return _run(args, go)
