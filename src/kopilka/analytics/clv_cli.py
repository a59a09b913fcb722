"""``kopilka report clv``: customer lifetime value (docs/analytics/clv.md).

    kopilka report clv --as-of 2026-11-30 [--time-unit day|week] [--horizon N] \\
        [--penalizer 0] [--discount-rate 0.01] [--clv-months 12] \\
        [--format csv|xlsx] [--out FILE] [--program CODE]

Standard output starts with the seven fitted parameters as ``name=value`` lines (r,
alpha, a, b, p, q, v, full float precision); without ``--out`` an empty line and the
CSV table follow; with ``--out`` the table goes to the file (XLSX: a Customers and a
Parameters sheet).  Too little data or a model that does not converge: ``error: ...``
and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from kopilka import report_cli
from kopilka.analytics.basket_cli import run
from kopilka.services.errors import ServiceError

if TYPE_CHECKING:
    from kopilka.services.runtime import Runtime


def cmd_clv(args: argparse.Namespace) -> int:
    from kopilka.services import audit, basket, clv

    values = {
        "as_of": args.as_of,
        "time_unit": args.time_unit,
        "horizon": args.horizon,
        "penalizer": args.penalizer,
        "discount_rate": args.discount_rate,
        "clv_months": args.clv_months,
    }

    async def go(rt: Runtime) -> int:
        s = clv.parse_query(values)
        if args.format == "xlsx" and args.out is None:
            raise ServiceError("validation_failed", "--format xlsx needs --out FILE", field="out")
        pid = await basket.program_of(rt, args.program)
        rep = await clv.run_report(rt, audit.CLI, pid, s)
        out = sys.stdout
        out.write("".join(line + "\n" for line in clv.param_lines(rep)))
        if args.out is None:
            out.write("\n")
        out.flush()
        await report_cli.write_tables(
            clv.tables(rep, fmt=args.format), fmt=args.format, out=args.out
        )
        print(
            f"clv: {len(rep.fitted.customers)} customers ({rep.fitted.repeaters} bought again), "
            f"{rep.purchases} purchases (read {rep.load_s:.2f} s, fitted {rep.fit_s:.2f} s)",
            file=sys.stderr,
        )
        return 0

    return run(args.db, go)


def register(rs: Any) -> None:
    p = rs.add_parser(
        "clv",
        help="customer lifetime value: BG/NBD and Gamma-Gamma",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--as-of", required=True, help="the last local date counted, YYYY-MM-DD")
    p.add_argument("--time-unit", choices=("day", "week"), default="week")
    p.add_argument(
        "--horizon", default=None, help="periods ahead to predict (default 52 weeks or 365 days)"
    )
    p.add_argument("--penalizer", default=None, help="both models' penalizer_coef (default 0)")
    p.add_argument(
        "--discount-rate", default=None, help="monthly discount rate for clv (default 0.01)"
    )
    p.add_argument("--clv-months", default=None, help="months of clv (default 12)")
    report_cli.add_output_args(p)
    p.set_defaults(fn=cmd_clv)
