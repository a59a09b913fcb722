"""``kopilka report promotions --from DATE --to DATE [--margin PERCENT]``: the
promotion-effect report (``analytics.promotions``) as CSV or XLSX."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from kopilka.services.errors import ServiceError


def register(rs: Any) -> None:
    from kopilka import report_cli

    p = rs.add_parser(
        "promotions",
        help="promotion effect: participants, cost, incremental sales with 95%% intervals, ROI",
        description=(
            "Per promotion: participants, receipts, sales, discount, points and their cost, "
            "and the incremental effect on sales per member (held-out control group, or a "
            "pre-period of equal length minus the change among non-participants) with a "
            "95% Welch interval; ROI = (incremental revenue x margin - cost) / cost."
        ),
    )
    p.add_argument(
        "--from", dest="day_from", required=True, metavar="DATE", help="first day, 2026-10-01"
    )
    p.add_argument("--to", dest="day_to", required=True, metavar="DATE", help="last day (included)")
    p.add_argument(
        "--margin",
        default=None,
        metavar="PERCENT",
        help="gross margin in percent, e.g. 25 (default: none; ROI is then revenue / cost)",
    )
    report_cli.add_output_args(p)
    p.set_defaults(fn=cmd_promotions)


def cmd_promotions(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace) -> int:
    from kopilka import report_cli
    from kopilka.analytics import promotions
    from kopilka.services.runtime import Runtime

    if args.format == "xlsx" and args.out is None:
        raise ServiceError("validation_failed", "out: --format xlsx needs --out FILE", field="out")
    day_from = promotions.parse_day(args.day_from, field="from")
    day_to = promotions.parse_day(args.day_to, field="to")
    margin = promotions.parse_margin(args.margin)
    promotions.check_days(day_from, day_to)
    rt = Runtime.from_url(args.db)
    try:
        pid, _ = await promotions.find_program(rt, args.program)
        rep = await promotions.promotion_effects(
            rt, program_id=pid, day_from=day_from, day_to=day_to, margin=margin
        )
        await report_cli.write_tables(promotions.tables(rep), fmt=args.format, out=args.out)
    finally:
        await rt.close()
    return 0
