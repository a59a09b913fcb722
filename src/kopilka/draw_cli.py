"""``kopilka draw create|commit|run|show|verify``: prize draws from the command line.

``cli.build_parser`` calls ``add_draw_commands(sub)``; each subcommand runs ``cmd_draw``.
``verify`` needs no database: it reruns the draw from a published record file.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from kopilka.domain import draws as d
from kopilka.services.errors import ServiceError


def parse_prize(text: str) -> dict[str, Any]:
    """``COUNT:points:AMOUNT`` or ``COUNT:goods:NAME``: ``1:points:5000``, ``3:goods:Кружка``."""
    parts = text.split(":", 2)
    if len(parts) != 3 or parts[1] not in ("points", "goods"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected COUNT:points:AMOUNT or COUNT:goods:NAME"
        )
    count, kind, value = parts
    if not count.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: COUNT must be a whole number")
    return {"count": int(count), kind: value}


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ISO 8601 time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a UTC offset, e.g. +03:00")
    return value


def add_draw_commands(sub: Any) -> None:
    """The ``draw`` command group on ``build_parser``'s subparsers."""
    dr = sub.add_parser("draw", help="prize draws: create, commit a seed, run, verify")
    ds = dr.add_subparsers(dest="action", required=True)
    dc = ds.add_parser("create", help="create a draw (state open)")
    dc.add_argument("--program", required=True, help="program code")
    dc.add_argument("--code", required=True)
    dc.add_argument("--name", required=True)
    dc.add_argument("--from", dest="period_start", type=_when, required=True, help="ISO time")
    dc.add_argument("--to", dest="period_end", type=_when, required=True, help="ISO, exclusive")
    dc.add_argument("--per-purchase", type=int, default=None, help="tickets per receipt")
    dc.add_argument("--per-amount", default=None, help="one ticket per this many roubles paid")
    dc.add_argument("--min-purchase", default="0", help="receipts below this give no ticket")
    dc.add_argument(
        "--prize",
        dest="prizes",
        type=parse_prize,
        action="append",
        required=True,
        help="COUNT:points:AMOUNT or COUNT:goods:NAME, in drawing order (first: main prize)",
    )
    dc.add_argument(
        "--many-prizes-per-member",
        action="store_true",
        help="a member may win more than one prize (default: one prize per member)",
    )
    for name, text in (
        ("commit", "store a random seed and print its hash (before the period ends)"),
        ("run", "draw the winners after the period (idempotent); prints the record"),
        ("show", "print the public record (the seed only once drawn)"),
    ):
        sp = ds.add_parser(name, help=text)
        sp.add_argument("code")
        sp.add_argument("--program", default=None, help="program code, if draw codes repeat")
        if name == "show":
            sp.add_argument("--json", action="store_true", help="the record as JSON")
    dv = ds.add_parser("verify", help="rerun a draw from its published record; exit 1 if not OK")
    dv.add_argument("file", help="the record JSON ('-': stdin)")
    dr.set_defaults(fn=cmd_draw)


def cmd_draw(args: argparse.Namespace) -> int:
    if args.action == "verify":
        return _verify(args.file)
    try:
        return asyncio.run(_with_runtime(args))
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2


def _verify(file: str) -> int:
    raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        print(f"FAILED: not JSON: {exc}")
        return 1
    ok, reason = d.verify_record(record)
    if ok:
        print(f"OK: {len(record['winners'])} winners of {record.get('draw')} reproduced")
        return 0
    print(f"FAILED: {reason}")
    return 1


async def _with_runtime(args: argparse.Namespace) -> int:
    from kopilka.services import draws
    from kopilka.services.runtime import Runtime

    rt = Runtime.from_url(args.db)
    try:
        if args.action == "create":
            await draws.do_create_draw(
                rt,
                program_code=args.program,
                code=args.code,
                name=args.name,
                period_start=args.period_start,
                period_end=args.period_end,
                rules=_rules(args),
            )
            print(f"draw {args.code} created (open); commit it before {args.period_end}")
        elif args.action == "commit":
            seed_hash = await draws.do_commit(rt, args.code, program_code=args.program)
            print(f"seed hash: {seed_hash}")
        elif args.action == "run":
            record = await draws.do_run(rt, args.code, program_code=args.program)
            print(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())
        else:
            record = await draws.publish(rt, args.code, program_code=args.program)
            print(_show(record, as_json=args.json))
    finally:
        await rt.close()
    return 0


def _rules(args: argparse.Namespace) -> dict[str, Any]:
    per_purchase = args.per_purchase
    if per_purchase is None:
        per_purchase = 0 if args.per_amount is not None else 1
    return {
        "tickets_per_purchase": per_purchase,
        "tickets_per_amount": args.per_amount,
        "min_purchase": args.min_purchase,
        "one_prize_per_member": not args.many_prizes_per_member,
        "prizes": args.prizes,
    }


def _show(record: dict[str, Any], *, as_json: bool) -> str:
    if as_json:
        return orjson.dumps(record, option=orjson.OPT_INDENT_2).decode()
    lines = [
        f"{record['draw']}: {record['name']} [{record['state']}]",
        f"period: {record['period_start']} .. {record['period_end']}",
        f"seed hash: {record['seed_hash'] or '(not committed)'}",
    ]
    if record["state"] == "drawn":
        lines += [
            f"seed: {record['seed']}",
            f"tickets: {sum(e['tickets'] for e in record['tickets'])} "
            f"of {len(record['tickets'])} members, digest {record['tickets_digest']}",
        ]
        lines += [
            f"  {w['place']}. account {w['account_id']}: {w['prize']}" for w in record["winners"]
        ]
    return "\n".join(lines)
