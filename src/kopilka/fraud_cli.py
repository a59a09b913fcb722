"""``kopilka fraud scan | alerts | settings`` and ``kopilka report fraud-alerts``
(docs/fraud.md).

``fraud scan`` runs by hand what ``kopilka worker`` runs every round; the others act as
the operator (``audit.CLI``), which may read and change every program.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from kopilka.domain import fraud as df
from kopilka.services.errors import ServiceError

if TYPE_CHECKING:
    from kopilka.services import audit
    from kopilka.services.runtime import Runtime

# the services are imported by the commands, not here: building the parser stays light


def _operator() -> audit.Actor:
    from kopilka.services import audit

    return audit.Actor("cli", None, "cli", role="owner")


def _run(args: argparse.Namespace, go: Any) -> int:
    from kopilka.services.runtime import Runtime

    async def main() -> int:
        rt = Runtime.from_url(args.db)
        try:
            code: int = await go(rt)
            return code
        finally:
            await rt.close()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"error: {exc.detail}{where}", file=sys.stderr)
        return 2


async def _program(rt: Runtime, code: str | None) -> int:
    from kopilka.services import programs
    from kopilka.services.setup import program_id

    if code is None:
        codes = [p.code for p in await programs.list_programs(rt)]
        if len(codes) != 1:
            raise ServiceError(
                "validation_failed",
                f"give --program (there are {len(codes)} programs)",
                field="program",
            )
        code = codes[0]
    async with rt.engine.connect() as conn:
        return await program_id(conn, code)


def _pairs(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ServiceError("validation_failed", f"NAME=VALUE, got {item!r}", field="set")
        out[name.strip()] = value.strip()
    return out


def cmd_fraud(args: argparse.Namespace) -> int:
    from kopilka.services import fraud

    async def go(rt: Runtime) -> int:
        if args.action == "scan":
            pid = None if args.program is None else await _program(rt, args.program)
            got = await fraud.scan(rt, program_id=pid)
            print(
                f"fraud scan: {got.created} new alerts, {got.updated} updated "
                f"({got.programs} programs)"
            )
            return 0
        pid = await _program(rt, args.program)
        if args.action == "alerts":
            flt = fraud.parse_filter(args.rule or "", args.state or "", "")
            rows, total = await fraud.list_alerts(rt, _operator(), pid, flt, limit=args.limit)
            for r in rows:
                print(
                    f"{r.id}\t{r.created_at:%Y-%m-%d %H:%M}\t{r.rule}\t{r.severity}\t{r.state}\t"
                    f"{r.subject_type} {r.subject_label}\t{r.summary}"
                )
            print(f"{total} alerts", file=sys.stderr)
            return 0
        if args.set or args.disable is not None:
            unknown = set(_pairs(args.set)) - set(df.LIMITS) - {"adjust_limit"}
            if unknown:
                name = sorted(unknown)[0]
                raise ServiceError("validation_failed", f"no setting {name!r}", field=name)
            s = await fraud.do_save_settings(
                rt, _operator(), pid, _pairs(args.set), disabled=_disabled(args)
            )
        else:
            s = await fraud.load_settings(rt, pid)
        for name, value in df.settings_to_dict(s).items():
            print(f"{name}={','.join(value) if isinstance(value, list) else value}")
        return 0

    return _run(args, go)


def _disabled(args: argparse.Namespace) -> list[str] | None:
    if args.disable is None:
        return None  # keep the rules that are off as they are
    return [x for x in args.disable.split(",") if x.strip()]


def add_parser(sub: Any) -> None:
    """``fraud scan | alerts | settings`` under ``sub``."""
    f = sub.add_parser("fraud", help="fraud alerts: scan now, list alerts, thresholds")
    fs = f.add_subparsers(dest="action", required=True)
    sc = fs.add_parser("scan", help="run the fraud rules now (the worker does it every round)")
    sc.add_argument("--program", default=None, help="program code (default: every program)")
    al = fs.add_parser("alerts", help="list alerts, newest first")
    al.add_argument("--program", default=None, help="program code (default: the only one)")
    al.add_argument("--state", default="active", help="open|assigned|resolved|dismissed|active")
    al.add_argument("--rule", default=None, help=", ".join(df.RULES))
    al.add_argument("--limit", type=int, default=50)
    st = fs.add_parser("settings", help="show or change a program's thresholds")
    st.add_argument("--program", default=None, help="program code (default: the only one)")
    st.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    st.add_argument(
        "--disable", default=None, help="rules to turn off, comma-separated ('' turns all on)"
    )
    f.set_defaults(fn=cmd_fraud)


# --- kopilka report fraud-alerts -------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from kopilka import report_cli
    from kopilka.services import fraud

    async def go(rt: Runtime) -> int:
        pid = await _program(rt, args.program)
        flt = fraud.parse_filter(args.rule or "", args.state or "", args.store or "")
        table = fraud.alerts_table(rt, _operator(), pid, flt)
        await report_cli.write_tables([table], fmt=args.format, out=args.out)
        return 0

    return _run(args, go)


def register_report(rs: Any) -> None:
    from kopilka import report_cli

    p = rs.add_parser("fraud-alerts", help="fraud alerts with their rule, subject and state")
    report_cli.add_output_args(p)
    p.add_argument("--state", default="", help="open|assigned|resolved|dismissed|active")
    p.add_argument("--rule", default="", help=", ".join(df.RULES))
    p.add_argument("--store", default="", help="store id")
    p.set_defaults(fn=cmd_report)
