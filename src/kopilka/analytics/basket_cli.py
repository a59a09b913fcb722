"""``kopilka report basket``: frequently bought together (docs/analytics/basket.md).

    kopilka report basket --min-support 0.01 --min-confidence 0.2 --max-len 3 \\
        [--from 2026-01-01 --to 2026-06-30] [--store CODE] [--what rules|itemsets] \\
        [--save] [--format csv|xlsx] [--out FILE] [--program CODE]

CSV on standard output (or ``--out``): ``antecedents,consequents,support,confidence,lift``
or, with ``--what itemsets``, ``itemset,support,length``; XLSX carries both sheets.  A
summary line goes to standard error.  Bad input: ``error: ...`` and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kopilka import report_cli
from kopilka.domain import basket as b
from kopilka.services.errors import ServiceError

if TYPE_CHECKING:
    from kopilka.services.runtime import Runtime


def run(db: str, go: Callable[[Runtime], Awaitable[int]]) -> int:
    """Run a report's coroutine; a refusal is ``error: FIELD: detail`` and exit code 2."""
    from kopilka.services.runtime import Runtime

    async def main() -> int:
        rt = Runtime.from_url(db)
        try:
            return await go(rt)
        finally:
            await rt.close()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        where = f"{exc.field}: " if exc.field else ""
        print(f"error: {where}{exc.detail}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # write_tables' "--format xlsx needs --out FILE"
        print(exc, file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def cmd_basket(args: argparse.Namespace) -> int:
    from kopilka.services import audit, basket

    values = {
        "min_support": args.min_support,
        "min_confidence": args.min_confidence,
        "max_len": args.max_len,
        "from": args.date_from,
        "to": args.date_to,
        "store": args.store,
    }

    async def go(rt: Runtime) -> int:
        q = basket.parse_query(values)
        if args.format == "xlsx" and args.out is None:
            raise ServiceError("validation_failed", "--format xlsx needs --out FILE", field="out")
        pid = await basket.program_of(rt, args.program)
        rep = await basket.run_report(rt, audit.CLI, pid, q)
        await report_cli.write_tables(
            basket.tables(rep, args.what, fmt=args.format), fmt=args.format, out=args.out
        )
        m = rep.mined
        print(
            f"basket: {m.receipts} receipts, {len(m.itemsets)} itemsets, {len(m.rules)} rules "
            f"(read {rep.load_s:.2f} s, counted {rep.mine_s:.2f} s)",
            file=sys.stderr,
        )
        if args.save:
            saved = await basket.do_save_rules(rt, pid, rep)
            print(f"basket: {saved} rules saved for the cashier screen", file=sys.stderr)
        return 0

    return run(args.db, go)


def register(rs: Any) -> None:
    p = rs.add_parser(
        "basket",
        help="frequently bought together: itemsets and association rules",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--min-support", required=True, help="a fraction, 0 < S <= 1 (e.g. 0.01)")
    p.add_argument(
        "--min-confidence", default="0", help="a fraction, 0 <= C <= 1 (default 0: every rule)"
    )
    p.add_argument(
        "--max-len",
        default=str(b.MAX_LEN_DEFAULT),
        help=f"most SKUs in an itemset or rule, 2..{b.MAX_LEN_LIMIT} (default {b.MAX_LEN_DEFAULT})",
    )
    p.add_argument("--from", dest="date_from", default=None, help="first local date, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", default=None, help="last local date (inclusive)")
    p.add_argument("--store", default=None, help="only this store's receipts (store code)")
    p.add_argument("--what", choices=("rules", "itemsets"), default="rules", help="the CSV table")
    p.add_argument(
        "--save", action="store_true", help="store the rules for the cashier screen's suggestions"
    )
    report_cli.add_output_args(p)
    p.set_defaults(fn=cmd_basket)
