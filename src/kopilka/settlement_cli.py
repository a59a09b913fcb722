"""``kopilka settlement close|report|statement|check|terms|partner|keygen``: coalition
settlement from the command line (docs/coalition.md).

Exit codes: 0 done; 1 ``check`` found differences; 2 bad input (unknown program or
partner, a malformed period); 3 the period is not over yet; 4 the period is already
closed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kopilka.domain.settlement import LEGAL_FIELDS
from kopilka.services.errors import ServiceError

if TYPE_CHECKING:
    from kopilka.services import settlement
    from kopilka.services.runtime import Runtime

# settlement (the database) is imported by the commands, settlement_files (openpyxl,
# fpdf2) and signing (cryptography, pyHanko) by those that write files or sign: building
# the parser, and every other ``kopilka`` command, goes without them.

EXIT = {"period_not_finished": 3, "period_closed": 4}


def add_settlement_commands(sub: Any) -> None:
    from kopilka import report_cli

    sp = sub.add_parser("settlement", help="coalition settlement: clearing, close, statements")
    ss = sp.add_subparsers(dest="action", required=True)

    c = ss.add_parser("close", help="close a finished month: freeze its figures, sign statements")
    c.add_argument("--period", required=True, help="the month, YYYY-MM")
    c.add_argument("--program", default=None, help="program code (default: the only one)")
    c.add_argument("--lang", choices=("ru", "en"), default="ru", help="statements' language")

    r = ss.add_parser(
        "report", help="the clearing report of a month (frozen if closed) or of any days"
    )
    r.add_argument("--period", default=None, help="the month, YYYY-MM")
    r.add_argument("--from", dest="day_from", default=None, help="first day (open view)")
    r.add_argument("--to", dest="day_to", default=None, help="last day, included")
    r.add_argument("--partner", default=None, help="only what this partner sees (its code)")
    report_cli.add_output_args(r)

    st = ss.add_parser("statement", help="a partner's signed PDF statement of a month")
    st.add_argument("--period", required=True, help="the month, YYYY-MM")
    st.add_argument("--partner", required=True, help="partner code, or 'operator'")
    st.add_argument("--out", required=True, help="PDF file to write")
    st.add_argument("--program", default=None)
    st.add_argument("--lang", choices=("ru", "en"), default="ru")

    ck = ss.add_parser("check", help="recompute a closed month from the ledger and compare")
    ck.add_argument("--period", required=True)
    ck.add_argument("--program", default=None)

    tm = ss.add_parser("terms", help="show or set the rate and the operator's fee")
    tm.add_argument("--rate", default=None, help="roubles per point, or 'default' (point_value)")
    tm.add_argument("--fee", default=None, help="operator's fee, percent of each obligation")
    tm.add_argument("--program", default=None)

    pa = ss.add_parser("partner", help="show or set a partner's legal details")
    pa.add_argument("--partner", required=True, help="partner code")
    pa.add_argument("--program", default=None)
    for f in LEGAL_FIELDS:
        pa.add_argument("--" + f.replace("_", "-"), dest=f, default=None)

    kg = ss.add_parser("keygen", help="make a new signing key and print its certificate")
    kg.add_argument("--subject", default=None, help="certificate subject (default: Kopilka …)")
    kg.add_argument("--show", action="store_true", help="print the current certificate only")
    kg.add_argument("--out", default=None, help="write the certificate (PEM) to this file")

    for p in (c, r, st, ck, tm, pa, kg):
        p.set_defaults(fn=cmd_settlement)


def cmd_settlement(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return EXIT.get(exc.code, 2)


async def _run(args: argparse.Namespace) -> int:
    from kopilka.services import settlement
    from kopilka.services.runtime import Runtime

    rt = Runtime.from_url(args.db)
    try:
        if args.action == "keygen":
            return await _keygen(rt, args)
        program = await settlement.find_program(rt, args.program)
        action = {
            "close": _close,
            "report": _report,
            "statement": _statement,
            "check": _check,
            "terms": _terms,
            "partner": _partner,
        }[args.action]
        return await action(rt, program, args)
    finally:
        await rt.close()


async def _close(rt: Runtime, program: settlement.Program, args: argparse.Namespace) -> int:
    from kopilka.services import audit, settlement, settlement_files

    period = settlement.parse_period(args.period)
    rep = await settlement.do_close(
        rt,
        program,
        period,
        actor=audit.CLI,
        statements=settlement_files.statement_maker(rt, args.lang),
    )
    print(f"closed {program.code} {period}: figures SHA-256 {rep.figures_sha256}")
    for p in rep.clearing.positions:
        print(f"  {rep.code(p.party):<20} net {p.net:>14} RUB")
    return 0


async def _report(rt: Runtime, program: settlement.Program, args: argparse.Namespace) -> int:
    from kopilka import report_cli
    from kopilka.services import settlement, settlement_files

    if args.period is not None:
        rep = await settlement.period_report(rt, program, settlement.parse_period(args.period))
    elif args.day_from and args.day_to:
        first = settlement.parse_day(args.day_from, field="from")
        last = settlement.parse_day(args.day_to, field="to")
        rep = await settlement.range_report(rt, program, first, last)
    else:
        raise ServiceError("validation_failed", "period: give --period or --from and --to")
    party: int | None = -1
    if args.partner is not None:
        party = await _party(rt, program, args.partner)
    if args.format == "pdf":
        if args.out is None:
            raise SystemExit("error: --format pdf needs --out FILE")
        data = settlement_files.report_pdf(rep, party=party, lang="en")
        await asyncio.to_thread(Path(args.out).write_bytes, data)
        return 0
    tables = settlement_files.report_tables(rep, party=party)
    await report_cli.write_tables(tables, fmt=args.format, out=args.out)
    return 0


async def _party(rt: Runtime, program: settlement.Program, code: str) -> int | None:
    from kopilka.services import settlement

    if code == "operator":
        return None
    async with rt.engine.connect() as conn:
        partners = await settlement.load_partners(conn, program.id)
    for p in partners.values():
        if p.code == code:
            return p.id
    raise ServiceError("not_found", f"partner: no partner {code!r} in {program.code}")


async def _statement(rt: Runtime, program: settlement.Program, args: argparse.Namespace) -> int:
    from kopilka.services import settlement, settlement_files

    period = settlement.parse_period(args.period)
    party = await _party(rt, program, args.partner)
    data = await settlement.stored_statement(rt, program, period, party)
    if data is None:
        rep = await settlement.period_report(rt, program, period)
        data = await settlement_files.signed_statement(rt, rep, party, args.lang)
        print(f"{period} is open: a preliminary statement", file=sys.stderr)
    await asyncio.to_thread(Path(args.out).write_bytes, data)
    return 0


async def _check(rt: Runtime, program: settlement.Program, args: argparse.Namespace) -> int:
    from kopilka.services import settlement

    period = settlement.parse_period(args.period)
    diffs = await settlement.check_period(rt, program, period)
    for d in diffs:
        print(d)
    if diffs:
        print(f"FAILED: {program.code} {period} differs from the ledger", file=sys.stderr)
        return 1
    print(f"OK: {program.code} {period} matches the ledger")
    return 0


async def _terms(rt: Runtime, program: settlement.Program, args: argparse.Namespace) -> int:
    from kopilka.services import audit, settlement

    async with rt.engine.connect() as conn:
        terms = await settlement.current_terms(conn, program)
    if args.rate is not None or args.fee is not None:
        rate: Decimal | None = terms.rate
        if args.rate == "default":
            rate = None
        elif args.rate is not None:
            rate = settlement.parse_rate(args.rate)
        fee = terms.fee_percent if args.fee is None else settlement.parse_fee(args.fee)
        terms = await settlement.do_set_terms(
            rt, program, rate=rate, fee_percent=fee, actor=audit.CLI
        )
    print(f"rate {terms.rate} RUB per point, operator's fee {terms.fee_percent} %")
    return 0


async def _partner(rt: Runtime, program: settlement.Program, args: argparse.Namespace) -> int:
    from kopilka.services import audit, settlement

    party = await _party(rt, program, args.partner)
    if party is None:
        raise ServiceError("validation_failed", "partner: the operator has no partner record")
    changes = {f: getattr(args, f) for f in LEGAL_FIELDS if getattr(args, f) is not None}
    if changes:
        await settlement.do_set_legal(rt, program, party, changes, actor=audit.CLI)
    async with rt.engine.connect() as conn:
        p = (await settlement.load_partners(conn, program.id))[party]
    for f in LEGAL_FIELDS:
        print(f"{f}: {p.legal[f]}")
    return 0


async def _keygen(rt: Runtime, args: argparse.Namespace) -> int:
    from kopilka.services import signing

    if args.show:
        key = await signing.current_key(rt, create=False)
        if key is None:
            print("no signing key yet: run kopilka settlement keygen", file=sys.stderr)
            return 2
    else:
        key = await signing.do_keygen(rt, subject=args.subject or signing.DEFAULT_SUBJECT)
    if args.out:
        await asyncio.to_thread(Path(args.out).write_bytes, key.cert_pem)
    print(f"subject: {key.subject}\nSHA-256 fingerprint: {key.fingerprint}", file=sys.stderr)
    if not args.out:
        sys.stdout.write(key.cert_pem.decode())
    return 0
