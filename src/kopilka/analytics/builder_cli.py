"""``kopilka report custom --id N`` (a saved report) or ``--definition FILE.yaml`` (a
definition in YAML or JSON, docs/analytics/builder.md), with the common output options:
``--format csv|xlsx|pdf --out FILE``.  Runs as the operator (every receipt of the
program, or the saved report's author's scope)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kopilka import report_cli
from kopilka.services.errors import ServiceError

if TYPE_CHECKING:
    from kopilka.services.runtime import Runtime


def register(sub: Any) -> None:
    p = sub.add_parser(
        "custom",
        help="a report of the report builder: saved (--id) or from a file (--definition)",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, help="a saved report's id")
    which.add_argument("--definition", help="a report definition, YAML or JSON")
    p.add_argument("--name", default=None, help="the title of a --definition report")
    p.add_argument("--lang", choices=("ru", "en"), default="en", help="column names' language")
    report_cli.add_output_args(p)
    p.set_defaults(fn=cmd_custom)


def _read_definition(path: str) -> Any:
    import yaml  # type: ignore[import-untyped]

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ServiceError("validation_failed", f"--definition: {exc.strerror}: {path}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ServiceError("validation_failed", f"--definition: not YAML: {exc}") from None


async def _program_id(rt: Runtime, code: str | None) -> int:
    from kopilka.services import programs

    rows = await programs.list_programs(rt, code=code)
    if code is not None and not rows:
        raise programs.not_found(code)
    if len(rows) != 1:
        raise ServiceError("validation_failed", "--program: name the program (there are several)")
    return rows[0].id


async def run(rt: Runtime, args: argparse.Namespace) -> int:
    from kopilka.analytics import builder
    from kopilka.services import saved_reports
    from kopilka.services.audit import CLI

    tr = builder.translator(args.lang)
    if args.id is not None:
        rep, res = await saved_reports.run_saved(rt, CLI, args.id)
        name = rep.name
    else:
        data = _read_definition(args.definition)
        try:
            d = saved_reports.parse_definition(data)
        except ServiceError as exc:
            raise ServiceError("validation_failed", f"--definition: {exc.detail}") from None
        pid = await _program_id(rt, args.program)
        res = await saved_reports.run_definition(rt, CLI, pid, d)
        name = args.name or Path(args.definition).stem
    table = res.table(name, tr)
    await report_cli.write_tables(
        [table], fmt=args.format, out=args.out, subtitle=saved_reports.period_text(res)
    )
    if res.truncated:
        print(f"note: more than {res.definition.limit} rows; raise limit", file=sys.stderr)
    return 0


def cmd_custom(args: argparse.Namespace) -> int:
    from kopilka.cli import _run

    return _run(lambda rt: run(rt, args), args.db)
