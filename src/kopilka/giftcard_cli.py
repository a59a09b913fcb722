"""``kopilka giftcard ...``: series of gift cards, breakage report, verification.

Mounted by ``kopilka.cli``: ``giftcard_cli.add_parser(sub)`` in ``build_parser``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from kopilka.services.errors import ServiceError

if TYPE_CHECKING:
    from kopilka.services.runtime import Runtime


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None


def _date(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text} (YYYY-MM-DD)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _go(args: argparse.Namespace, rt: Runtime) -> int:
    from kopilka.services import giftcards

    if args.what == "series":
        cards = await giftcards.do_create_series(
            rt,
            args.program,
            code=args.code,
            name=args.name,
            nominal=args.nominal,
            count=args.count,
            valid_days=args.valid_days or None,
        )
        text = giftcards.cards_csv(cards)
        if args.out == "-":
            sys.stdout.write(text)
        else:
            await asyncio.to_thread(Path(args.out).write_text, text)
        print(
            f"{len(cards)} cards of {args.nominal} in series {args.code}; numbers and PINs "
            f"written to {args.out} (the PINs are not stored: keep this file safe)",
            file=sys.stderr,
        )
        return 0
    if args.what == "breakage":
        rows = await giftcards.breakage_report(rt, args.program, start=args.start, end=args.end)
        print("series\tcards_expired\tbreakage\tactivated\tredeemed\toutstanding")
        for r in rows:
            print(
                f"{r.series}\t{r.cards_expired}\t{r.breakage:.2f}\t{r.activated:.2f}\t"
                f"{r.redeemed:.2f}\t{r.outstanding:.2f}"
            )
        return 0
    if args.what == "block":
        view = await giftcards.do_block(rt, args.program, args.number)
        print(f"gift card {view['number']} blocked; balance {view['balance']} frozen")
        return 0
    if args.what == "expire":
        n, amount = await giftcards.expire_cards(rt)
        released = await giftcards.expire_tender_holds(rt)
        print(f"{n} cards expired, breakage {amount:.2f}; {released} receipts' holds released")
        return 0
    bad = await giftcards.verify_cards(rt)
    for d in bad:
        print(f"gift card {d.card_id}: {d.what}: cached {d.cached}, recomputed {d.recomputed}")
    print(f"{len(bad)} discrepancies", file=sys.stderr)
    return 1 if bad else 0


def cmd_giftcard(args: argparse.Namespace) -> int:
    from kopilka.services.runtime import Runtime

    async def main() -> int:
        rt = Runtime.from_url(args.db)
        try:
            return await _go(args, rt)
        finally:
            await rt.close()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``giftcard series create | breakage | expire | verify`` under ``sub``."""
    g = sub.add_parser("giftcard", help="gift cards: series, breakage, expiry, verification")
    gs = g.add_subparsers(dest="what", required=True)
    se = gs.add_parser("series", help="series of gift cards")
    ses = se.add_subparsers(dest="action", required=True)
    sc = ses.add_parser("create", help="issue a series; writes numbers and PINs to a CSV")
    sc.add_argument("--program", required=True)
    sc.add_argument("--code", required=True)
    sc.add_argument("--name", required=True)
    sc.add_argument("--nominal", required=True, type=_decimal)
    sc.add_argument("--count", required=True, type=int)
    sc.add_argument("--valid-days", type=int, default=365, help="from activation; 0: no expiry")
    sc.add_argument("--out", required=True, help="CSV file for numbers and PINs ('-': stdout)")
    br = gs.add_parser("breakage", help="expired unspent value per series, for a period")
    br.add_argument("--program", required=True)
    br.add_argument("--from", dest="start", type=_date, default=None)
    br.add_argument("--to", dest="end", type=_date, default=None, help="exclusive")
    bl = gs.add_parser("block", help="block a lost or stolen card (its balance is frozen)")
    bl.add_argument("--program", required=True)
    bl.add_argument("number")
    gs.add_parser("expire", help="expire cards whose time came; release stale holds")
    gs.add_parser("verify", help="recompute cards from their entries; exit 1 on a mismatch")
    g.set_defaults(fn=cmd_giftcard)
