"""``kopilka coupon``: create coupon series, send a holiday surprise."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone offset, e.g. +03:00")
    return value


def _points(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def add_coupon_commands(sub: Any) -> None:
    c = sub.add_parser("coupon", help="coupon series and holiday surprises")
    cs = c.add_subparsers(dest="action", required=True)
    s = cs.add_parser("series", help="create a series: generated codes, or imported ones")
    s.add_argument("--program", required=True)
    s.add_argument("--code", required=True, help="the series code promotions name")
    s.add_argument("--name", required=True)
    s.add_argument("--count", type=int, default=0, help="codes to generate")
    s.add_argument("--import", dest="import_file", help="a file with one code per line")
    s.add_argument("--seed", help="generate reproducibly (the seed is recorded)")
    s.add_argument("--max-uses", type=int, default=1, help="per code; 0: unlimited")
    s.add_argument("--valid-from", type=_when)
    s.add_argument("--valid-until", type=_when)
    s.add_argument("--points", type=_points, help="a points code: redeemed for these points")
    s.add_argument("--no-return-on-refund", action="store_true")
    s.add_argument("--out", help="write the codes to this CSV file (default: stdout)")
    s.set_defaults(fn=cmd_coupon)
    h = cs.add_parser("surprise", help="one coupon each for a random sample of members")
    h.add_argument("--program", required=True)
    h.add_argument("--code", required=True)
    h.add_argument("--name", required=True)
    h.add_argument("--count", type=int, required=True)
    h.add_argument("--seed", required=True, help="recorded: the sample can be drawn again")
    h.add_argument("--valid-until", type=_when)
    h.add_argument("--out", help="CSV of customer id and code (default: stdout)")
    h.set_defaults(fn=cmd_coupon)


def cmd_coupon(args: argparse.Namespace) -> int:
    from kopilka.cli import _run
    from kopilka.services import coupons
    from kopilka.services.runtime import Runtime

    imported = None
    if args.action == "series" and args.import_file:
        text = Path(args.import_file).read_text(encoding="utf-8")
        imported = [line.strip() for line in text.splitlines() if line.strip()]
    buf = io.StringIO()

    async def go(rt: Runtime) -> int:
        rows: list[tuple[Any, ...]]
        if args.action == "series":
            codes = await coupons.do_create_series(
                rt,
                program_code=args.program,
                code=args.code,
                name=args.name,
                count=args.count,
                codes=imported,
                max_uses=args.max_uses or None,
                valid_from=args.valid_from,
                valid_until=args.valid_until,
                return_on_refund=not args.no_return_on_refund,
                seed=args.seed,
                points=args.points,
            )
            rows = [(c,) for c in codes]
            head: tuple[str, ...] = ("code",)
        else:
            pairs = await coupons.do_surprise(
                rt,
                program_code=args.program,
                code=args.code,
                name=args.name,
                count=args.count,
                seed=args.seed,
                valid_until=args.valid_until,
            )
            rows = list(pairs)
            head = ("customer_id", "code")
        w = csv.writer(buf)
        w.writerow(head)
        w.writerows(rows)
        print(f"{len(rows)} coupons in series {args.code.upper()}", file=sys.stderr)
        return 0

    code = _run(go, args.db)
    if code == 0:
        if args.out:
            Path(args.out).write_text(buf.getvalue(), encoding="utf-8")
        else:
            sys.stdout.write(buf.getvalue())
    return code
