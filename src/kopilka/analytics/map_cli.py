"""``kopilka report map``: the territorial map's tables as CSV (regions) or XLSX (the map
picture, regions, stores, far members)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC
from typing import Any

from kopilka.services.errors import ServiceError


def register(rs: Any) -> None:
    from kopilka.report_cli import add_output_args

    p = rs.add_parser(
        "map",
        help="territorial map: members and sales per region and store, members far from stores",
    )
    p.add_argument("--from", dest="date_from", default=None, help="YYYY-MM-DD (default: 90 days)")
    p.add_argument("--to", dest="date_to", default=None, help="YYYY-MM-DD inclusive (today)")
    p.add_argument("--far-km", default=None, help="far from every store: more than N km (30)")
    p.add_argument(
        "--measure",
        choices=("members", "sales", "members_per_store"),
        default="members",
        help="what colours the regions in the XLSX picture",
    )
    p.add_argument("--lang", choices=("ru", "en"), default="en")
    add_output_args(p)
    p.set_defaults(fn=cmd_map)


def cmd_map(args: argparse.Namespace) -> int:
    try:
        asyncio.run(_run(args))
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    return 0


async def _run(args: argparse.Namespace) -> None:
    from kopilka.analytics import map as amap
    from kopilka.analytics import map_files, map_out
    from kopilka.report_cli import write_tables
    from kopilka.services import programs
    from kopilka.services.audit import Actor
    from kopilka.services.runtime import Runtime

    rt = Runtime.from_url(args.db)
    try:
        rows = await programs.list_programs(rt, code=args.program)
        if args.program is not None and not rows:
            raise programs.not_found(args.program)
        if len(rows) != 1:
            raise ServiceError("program_required", "--program: several programs; name one")
        period = amap.parse_period(
            args.date_from, args.date_to, today=rt.now().astimezone(UTC).date()
        )
        km = amap.parse_far_km(args.far_km)
        actor = Actor("cli", None, "cli")
        report = await amap.compute(rt, actor, rows[0].id, period=period, far_km=km)
        images = []
        if args.format == "xlsx":
            png = await map_files.png_bytes(report, measure=args.measure, lang=args.lang)
            images.append((map_out.tr(args.lang, "Map"), png))
        await write_tables(
            map_out.tables(report, args.lang), fmt=args.format, out=args.out, images=images
        )
    finally:
        await rt.close()
