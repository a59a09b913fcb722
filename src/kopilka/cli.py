"""``kopilka``: the operator's command line.

Every command takes the database from ``--db URL`` or ``KOPILKA_DATABASE_URL``
(``sqlite:///path.db`` or ``postgresql://user@host/db``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store.db import is_sqlite, resolve_url


def _run(coro_fn: Callable[[Runtime], Awaitable[int]], url: str) -> int:
    async def main() -> int:
        rt = Runtime.from_url(url)
        try:
            return await coro_fn(rt)
        finally:
            await rt.close()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2


def cmd_migrate(args: argparse.Namespace) -> int:
    from kopilka.store.migrate import upgrade

    upgrade(args.db)
    print(f"schema is up to date ({_safe(args.db)})", file=sys.stderr)
    return 0


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def default_workers(url: str) -> int:
    """SQLite: one process (one writer; more would fight over the file lock).
    PostgreSQL: one per core, the CPU being what limits a worker."""
    return 1 if is_sqlite(url) else max(os.cpu_count() or 1, 1)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    os.environ["KOPILKA_DATABASE_URL"] = args.db
    workers = args.workers or default_workers(args.db)
    uvicorn.run(
        "kopilka.api.asgi:make_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        log_level=args.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from kopilka.demo.loader import load_demo
    from kopilka.store.migrate import upgrade

    upgrade(args.db)
    info: Any = None

    async def load(rt: Runtime) -> int:
        nonlocal info
        info = await load_demo(rt, seed=args.seed)
        return 0

    _run(load, args.db)
    base = f"http://{args.host}:{args.port}"
    print("Kopilka demo" + (" (data already loaded)" if info.already_loaded else ""))
    print(f"  database:          {_safe(args.db)}")
    for k, v in info.counts.items():
        print(f"  {k + ':':<18} {v}")
    print(f"  API docs:          {base}/docs")
    print(f"  POS API:           {base}/api/pos/v1")
    print(f"POS terminal key: {info.terminal_key}")
    print("Demo cards: " + ", ".join(info.card_numbers))
    print(
        f"Try: curl -H 'Authorization: Bearer {info.terminal_key}' "
        f"'{base}/api/pos/v1/customers/lookup?identifier={info.card_numbers[0]}'"
    )
    sys.stdout.flush()
    if args.no_serve:
        return 0
    args.workers = 1 if is_sqlite(args.db) else None
    return cmd_serve(args)


def cmd_terminal(args: argparse.Namespace) -> int:
    from kopilka.services import terminals

    async def go(rt: Runtime) -> int:
        if args.action == "add":
            print(
                await terminals.do_add_terminal(
                    rt, store_code=args.store, name=args.name, program_code=args.program
                )
            )
        elif args.action == "list":
            for x in await terminals.list_terminals(rt):
                print(
                    f"{x.id}\t{x.store_code}\t{x.name}\t{x.key_prefix}…\t{x.status}\t"
                    f"{x.created_at:%Y-%m-%d %H:%M}"
                )
        else:
            await terminals.do_disable_terminal(rt, args.id)
            print(f"terminal {args.id} disabled", file=sys.stderr)
        return 0

    return _run(go, args.db)


def cmd_ledger(args: argparse.Namespace) -> int:
    from kopilka.services import ledger_jobs

    async def go(rt: Runtime) -> int:
        if args.action == "verify":
            bad = await ledger_jobs.verify_ledger(rt)
            for d in bad:
                print(
                    f"account {d.account_id}: {d.what}: cached {d.cached}, "
                    f"recomputed {d.recomputed}"
                )
            print(f"{len(bad)} discrepancies", file=sys.stderr)
            return 1 if bad else 0
        if args.action == "expire-holds":
            print(f"{await ledger_jobs.expire_holds(rt)} holds released")
            return 0
        n, pts = await ledger_jobs.expire_points(rt)
        print(f"{n} lots expired, {pts} points")
        return 0

    return _run(go, args.db)


def cmd_card(args: argparse.Namespace) -> int:
    from kopilka.services import cards

    async def go(rt: Runtime) -> int:
        if args.action == "block":
            await cards.do_block_card(rt, args.number, reason=args.reason)
            print(f"card {args.number} blocked", file=sys.stderr)
        elif args.action == "link":
            await cards.do_link_identifier(rt, args.number, kind=args.kind, value=args.value)
            print(f"{args.kind} {args.value} now identifies card {args.number}", file=sys.stderr)
        else:
            await cards.do_replace_card(rt, args.old, args.new)
            print(f"card {args.old} replaced by {args.new}", file=sys.stderr)
        return 0

    return _run(go, args.db)


def cmd_setup(args: argparse.Namespace) -> int:
    """program create|set|show, partner add, store add."""
    from kopilka.services import setup
    from kopilka.services.runtime import settings_to_json

    def pairs(items: list[str]) -> dict[str, str]:
        out = {}
        for item in items:
            name, sep, value = item.partition("=")
            if not sep:
                raise ServiceError("validation_failed", f"expected name=value, got {item!r}")
            out[name.strip()] = value.strip()
        return out

    async def go(rt: Runtime) -> int:
        what = (args.command, args.action)
        if what == ("program", "create"):
            await setup.do_create_program(
                rt, code=args.code, name=args.name, changes=pairs(args.set)
            )
        elif what == ("program", "set"):
            await setup.do_set_program(rt, code=args.code, changes=pairs(args.set))
        elif what == ("program", "show"):
            print(settings_to_json(await setup.show_program(rt, args.code)))
        elif what == ("partner", "add"):
            await setup.do_add_partner(rt, program=args.program, code=args.code, name=args.name)
        else:
            await setup.do_add_store(
                rt,
                program=args.program,
                partner=args.partner,
                code=args.code,
                name=args.name,
                city=args.city,
                region=args.region,
                address=args.address,
                latitude=args.lat,
                longitude=args.lon,
                timezone=args.timezone,
            )
        return 0

    return _run(go, args.db)


def cmd_worker(args: argparse.Namespace) -> int:
    """Scheduled ledger work in one long-running process."""
    from kopilka.services import ledger_jobs

    async def go(rt: Runtime) -> int:
        last_expiry = 0.0
        loop = asyncio.get_running_loop()
        while True:
            released = await ledger_jobs.expire_holds(rt)
            if loop.time() - last_expiry >= args.expiry_every_s:
                lots, pts = await ledger_jobs.expire_points(rt)
                last_expiry = loop.time()
                if lots:
                    print(f"expired {lots} lots, {pts} points", file=sys.stderr)
            if released:
                print(f"released {released} expired holds", file=sys.stderr)
            if args.once:
                return 0
            await asyncio.sleep(args.every_s)

    return _run(go, args.db)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kopilka", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--db",
        default=None,
        help="database URL (default: $KOPILKA_DATABASE_URL or sqlite:///kopilka.db)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="create or upgrade the schema").set_defaults(fn=cmd_migrate)

    def serve_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--host", default="127.0.0.1")
        sp.add_argument("--port", type=int, default=8000)
        sp.add_argument(
            "--workers",
            type=int,
            default=None,
            help="worker processes (default: 1 on SQLite, one per core on PostgreSQL)",
        )
        sp.add_argument("--log-level", default="warning")

    s = sub.add_parser("serve", help="run the HTTP server")
    serve_args(s)
    s.set_defaults(fn=cmd_serve)

    d = sub.add_parser("demo", help="migrate, load demo data and serve")
    serve_args(d)
    d.add_argument("--no-serve", action="store_true", help="only load the demo data")
    d.add_argument("--seed", type=int, default=42)
    d.set_defaults(fn=cmd_demo)

    t = sub.add_parser("terminal", help="POS terminals and their keys")
    tsub = t.add_subparsers(dest="action", required=True)
    ta = tsub.add_parser("add", help="create a terminal; prints only its key")
    ta.add_argument("--store", required=True, help="store code")
    ta.add_argument("--name", required=True)
    ta.add_argument("--program", default=None, help="program code, if store codes repeat")
    tsub.add_parser("list", help="list terminals")
    td = tsub.add_parser("disable", help="disable a terminal (takes effect within seconds)")
    td.add_argument("id", type=int)
    t.set_defaults(fn=cmd_terminal)

    lg = sub.add_parser("ledger", help="ledger checks and jobs")
    lsub = lg.add_subparsers(dest="action", required=True)
    lsub.add_parser("verify", help="recompute balances from the ledger; exit 1 on a mismatch")
    lsub.add_parser("expire-holds", help="release holds whose time ran out")
    lsub.add_parser("expire-points", help="expire points whose expiry day has come")
    lg.set_defaults(fn=cmd_ledger)

    c = sub.add_parser("card", help="block or replace a customer's card")
    csub = c.add_subparsers(dest="action", required=True)
    cb = csub.add_parser("block", help="block a card (lost, stolen, fraud)")
    cb.add_argument("number")
    cb.add_argument("--reason", default="")
    cl = csub.add_parser("link", help="attach a QR token or an RFID UID to a card")
    cl.add_argument("number")
    cl.add_argument("--kind", choices=["qr", "rfid"], required=True)
    cl.add_argument("--value", required=True)
    cr = csub.add_parser("replace", help="move the customer to a new card, same account")
    cr.add_argument("old")
    cr.add_argument("new")
    c.set_defaults(fn=cmd_card)

    pr = sub.add_parser("program", help="create a program, show or change its settings")
    prs = pr.add_subparsers(dest="action", required=True)
    pc = prs.add_parser("create", help="create a bonus program")
    pc.add_argument("--code", required=True)
    pc.add_argument("--name", required=True)
    pc.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="settings, e.g. earn_percent=5 burn_max_percent=30 expiry_days=365",
    )
    ps = prs.add_parser("set", help="change settings (a new program version)")
    ps.add_argument("--code", required=True)
    ps.add_argument("--set", nargs="+", required=True, metavar="NAME=VALUE")
    psh = prs.add_parser("show", help="print the settings as JSON")
    psh.add_argument("--code", required=True)
    pr.set_defaults(fn=cmd_setup)

    pa = sub.add_parser("partner", help="partners of a program")
    pas = pa.add_subparsers(dest="action", required=True)
    paa = pas.add_parser("add")
    paa.add_argument("--program", required=True)
    paa.add_argument("--code", required=True)
    paa.add_argument("--name", required=True)
    pa.set_defaults(fn=cmd_setup)

    st = sub.add_parser("store", help="stores (points of sale)")
    sts = st.add_subparsers(dest="action", required=True)
    sta = sts.add_parser("add")
    sta.add_argument("--program", required=True)
    sta.add_argument("--partner", required=True)
    sta.add_argument("--code", required=True)
    sta.add_argument("--name", required=True)
    sta.add_argument("--city", default="")
    sta.add_argument("--region", default="")
    sta.add_argument("--address", default="")
    sta.add_argument("--lat", type=float, default=None)
    sta.add_argument("--lon", type=float, default=None)
    sta.add_argument("--timezone", default="Europe/Moscow")
    st.set_defaults(fn=cmd_setup)

    w = sub.add_parser("worker", help="run scheduled jobs: hold expiry, points expiry")
    w.add_argument("--every-s", type=float, default=10.0, help="hold sweep period")
    w.add_argument("--expiry-every-s", type=float, default=3600.0, help="points expiry period")
    w.add_argument("--once", action="store_true", help="run each job once and exit")
    w.set_defaults(fn=cmd_worker)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.db = resolve_url(args.db)
    code: int = args.fn(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
