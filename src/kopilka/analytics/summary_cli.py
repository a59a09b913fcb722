"""``kopilka report summary|stores|cohorts|rebuild-summary|refresh-summary``.

kopilka report summary --from 2026-01-01 --to 2026-03-31 [--by day|week|month]
    [--store CODE ...] [--city NAME] [--tag GROUP] [--tier TIER] [--series]
    [--format csv|xlsx --out FILE]
kopilka report stores --from ... --to ... [--sort sales|...] [--no-cashiers]
kopilka report cohorts --from 2025-09-01 --to 2026-08-31
kopilka report rebuild-summary      # the summary tables again from scratch
kopilka report refresh-summary      # what the worker does: days touched since the mark
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from typing import TYPE_CHECKING, Any

from kopilka.domain.summary import GRANULARITIES, STORE_SORTS, Period, PeriodError
from kopilka.report_cli import add_output_args, write_tables

if TYPE_CHECKING:
    from kopilka.analytics import summary
    from kopilka.services import exports
    from kopilka.services.runtime import Runtime

# the analytics modules are imported by the commands: building the parser stays light


class Usage(Exception):
    """Bad input: printed as ``error: ...``, exit code 2."""


def _date(field: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Usage(f"--{field}: not a date (YYYY-MM-DD): {text!r}") from None


def _filters_args(p: argparse.ArgumentParser, *, group: bool = True) -> None:
    p.add_argument("--from", dest="start", required=True, help="first local date, YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, help="last local date, included")
    p.add_argument("--store", action="append", default=[], help="store code (repeatable)")
    p.add_argument("--city", default="", help="stores of this city")
    if group:
        p.add_argument("--tag", default="", help="customers of this group (tag)")
        p.add_argument("--tier", default="", help="customers of this tier")
    add_output_args(p)


def register_summary(rs: Any) -> None:
    p = rs.add_parser("summary", help="KPIs of a period against the previous one")
    _filters_args(p)
    p.add_argument("--by", choices=GRANULARITIES, default="day", help="chart bucket")
    p.add_argument("--series", action="store_true", help="CSV: the series, not the KPIs")
    p.set_defaults(fn=lambda a: _run(a, _summary))
    p = rs.add_parser("stores", help="sales, members' share, refunds by store and cashier")
    _filters_args(p, group=False)
    p.add_argument("--sort", choices=STORE_SORTS, default="sales")
    p.add_argument("--no-cashiers", dest="cashiers", action="store_false")
    p.set_defaults(fn=lambda a: _run(a, _stores))
    p = rs.add_parser("cohorts", help="retention by month of the first purchase")
    _filters_args(p)
    p.set_defaults(fn=lambda a: _run(a, _cohorts))
    p = rs.add_parser("rebuild-summary", help="make the summary tables again from scratch")
    p.set_defaults(fn=lambda a: _run(a, _rebuild))
    p = rs.add_parser("refresh-summary", help="bring the summary tables up to date")
    p.set_defaults(fn=lambda a: _run(a, _refresh))


def _run(args: argparse.Namespace, fn: Any) -> int:
    from kopilka.services.runtime import Runtime

    async def main() -> int:
        rt = Runtime.from_url(args.db)
        try:
            return int(await fn(rt, args))
        finally:
            await rt.close()

    try:
        return asyncio.run(main())
    except (Usage, PeriodError) as exc:
        name = f"--{exc.field}: " if isinstance(exc, PeriodError) else ""
        print(f"error: {name}{exc}", file=sys.stderr)
        return 2


async def program_id(rt: Runtime, code: str | None) -> int:
    """The program of ``--program CODE``, or the only one there is."""
    from sqlalchemy import select

    from kopilka.store import tables as t

    pr = t.programs
    async with rt.engine.connect() as conn:
        q = select(pr.c.id, pr.c.code)
        rows = (await conn.execute(q if code is None else q.where(pr.c.code == code))).all()
    if code is not None and not rows:
        raise Usage(f"--program: no program {code!r}")
    if len(rows) != 1:
        raise Usage("--program: there are several programs, name one")
    return int(rows[0][0])


async def _common(rt: Runtime, args: argparse.Namespace) -> tuple[int, Period, summary.Filters]:
    from sqlalchemy import select

    from kopilka.analytics import summary
    from kopilka.store import tables as t

    pid = await program_id(rt, args.program)
    period = Period(_date("from", args.start), _date("to", args.end))
    ids: list[int] = []
    for code in args.store:
        async with rt.engine.connect() as conn:
            found = (
                await conn.execute(
                    select(t.stores.c.id).where(
                        t.stores.c.program_id == pid, t.stores.c.code == code
                    )
                )
            ).scalar_one_or_none()
        if found is None:
            raise Usage(f"--store: no store {code!r}")
        ids.append(int(found))
    f = summary.Filters(tuple(ids), args.city, getattr(args, "tag", ""), getattr(args, "tier", ""))
    return pid, period, f


async def _out(tables: list[exports.Table], args: argparse.Namespace) -> int:
    await write_tables(tables, fmt=args.format, out=args.out)
    return 0


async def _summary(rt: Runtime, args: argparse.Namespace) -> int:
    from kopilka.analytics import summary

    pid, period, f = await _common(rt, args)
    rep = await summary.summary_report(
        rt, program_id=pid, period=period, granularity=args.by, filters=f
    )
    tables = summary.tables(rep)
    if args.series and args.format == "csv":
        tables = tables[1:]
    _freshness(rep.as_of, rep.source)
    return await _out(tables, args)


def _freshness(as_of: Any, source: str) -> None:
    if source == "receipts":
        print("figures: from the receipts (a customer-group filter)", file=sys.stderr)
    elif as_of is None:
        print("warning: the summary tables were never built: run "
              "`kopilka report rebuild-summary`", file=sys.stderr)  # fmt: skip
    else:
        print(f"figures: summary tables complete until {as_of:%Y-%m-%d %H:%M} UTC",
              file=sys.stderr)  # fmt: skip


async def _stores(rt: Runtime, args: argparse.Namespace) -> int:
    from kopilka.analytics import facts, stores

    pid, period, f = await _common(rt, args)
    rows = await stores.store_rows(
        rt, program_id=pid, period=period, filters=f, sort=args.sort, cashiers=args.cashiers
    )
    _freshness(await facts.watermark(rt), "summary tables")
    return await _out(stores.tables(rows), args)


async def _cohorts(rt: Runtime, args: argparse.Namespace) -> int:
    from kopilka.analytics import cohorts, facts
    from kopilka.analytics.facts import local_date

    pid, period, f = await _common(rt, args)
    settings = await rt.program(pid)
    rows = await cohorts.cohort_rows(
        rt, program_id=pid, period=period, filters=f, as_of=local_date(rt.now(), settings.timezone)
    )
    _freshness(await facts.watermark(rt), "summary tables")
    return await _out(cohorts.tables(rows), args)


async def _rebuild(rt: Runtime, args: argparse.Namespace) -> int:
    from kopilka.analytics import facts

    done = await facts.rebuild(rt)
    print(f"rebuilt {done.days} days of {len(done.programs)} programs: {done.fact_rows} "
          f"sales rows; complete until {done.mark:%Y-%m-%d %H:%M:%S} UTC")  # fmt: skip
    return 0


async def _refresh(rt: Runtime, args: argparse.Namespace) -> int:
    from kopilka.analytics import facts

    done = await facts.refresh(rt)
    what = "rebuilt" if done.rebuilt else "refreshed"
    print(f"{what} {done.days} days of {len(done.programs)} programs: {done.fact_rows} "
          f"sales rows; complete until {done.mark:%Y-%m-%d %H:%M:%S} UTC")  # fmt: skip
    return 0
