"""``kopilka offline keys rotate | list`` and ``kopilka offline burns`` (ADR 0030).

``keys rotate`` makes a program's new Ed25519 signing key; the old one retires and its
public key stays published to tills until every token it signed has expired.  A program's
first token makes its first key, so rotating is needed only on a schedule or after a
suspected leak.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from kopilka.fraud_cli import _program, _run

if TYPE_CHECKING:
    from kopilka.services.runtime import Runtime


def cmd_offline(args: argparse.Namespace) -> int:
    from kopilka.services import offline

    async def go(rt: Runtime) -> int:
        pid = await _program(rt, args.program)
        if args.action == "keys" and args.keys_action == "rotate":
            key = await offline.do_rotate_keys(rt, program_id=pid)
            print(f"key {key.key_id}: {key.public_key}")
            return 0
        if args.action == "keys":
            for k in await offline.public_keys(rt, program_id=pid):
                state = (
                    "signing" if k.valid_until is None else f"until {k.valid_until:%Y-%m-%d %H:%M}"
                )
                print(f"{k.key_id}\t{k.public_key}\t{k.created_at:%Y-%m-%d %H:%M}\t{state}")
            return 0
        for b in await offline.burns(rt, program_id=pid, limit=args.limit):
            print(
                f"{b.created_at:%Y-%m-%d %H:%M}\t{b.token_id}\tuse {b.use_no}\t"
                f"account {b.account_id}\tterminal {b.terminal_id}\t{b.points:.2f}\t"
                f"debt {b.debt:.2f}\tcap {b.cap:.2f}"
            )
        return 0

    return _run(args, go)


def add_parser(sub: Any) -> None:
    """``offline keys rotate|list`` and ``offline burns`` under ``sub``."""
    o = sub.add_parser("offline", help="offline burn: signing keys, burns applied")
    os_ = o.add_subparsers(dest="action", required=True)
    k = os_.add_parser("keys", help="the program's Ed25519 signing keys")
    ks = k.add_subparsers(dest="keys_action", required=True)
    for name, text in (
        ("rotate", "make a new signing key; the old one retires"),
        ("list", "the published keys: id, public key, created, state"),
    ):
        sp = ks.add_parser(name, help=text)
        sp.add_argument("--program", default=None, help="program code (default: the only one)")
    b = os_.add_parser("burns", help="the latest offline burns applied, newest first")
    b.add_argument("--program", default=None, help="program code (default: the only one)")
    b.add_argument("--limit", type=int, default=50)
    o.set_defaults(fn=cmd_offline)
