"""``kopilka``: the operator's command line.

Every command takes the database from ``--db URL`` or ``KOPILKA_DATABASE_URL``
(``sqlite:///path.db`` or ``postgresql://user@host/db``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from kopilka.notify.states import STATES as OUTBOX_STATES
from kopilka.services.errors import ServiceError

if TYPE_CHECKING:
    from kopilka.services.runtime import Runtime

# Building the parser imports only argparse definitions: each command imports the
# services it needs when it runs, so `kopilka --help` and every command start without
# loading fpdf, numpy, openpyxl and the other commands' services
# (tests/test_cli_startup.py).


def _run(coro_fn: Callable[[Runtime], Awaitable[int]], url: str) -> int:
    from kopilka.services.runtime import Runtime

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
    if getattr(args, "partitioned", False):
        return _partition(args.db, args.partitions)
    return 0


def _partition(url: str, partitions: int) -> int:
    from kopilka.store.db import is_sqlite
    from kopilka.store.partition import PartitionError, partition_hot_tables

    async def run(rt: Runtime) -> int:
        async with rt.engine.begin() as conn:
            report = await partition_hot_tables(conn, partitions=partitions)
        print(f"partitioned by program_id ({partitions} partitions): "
              f"{', '.join(report.partitioned)}", file=sys.stderr)  # fmt: skip
        for fk in report.dropped_foreign_keys:
            print(f"dropped foreign key {fk}", file=sys.stderr)
        return 0

    if is_sqlite(url):
        print("error: --partitioned is for PostgreSQL", file=sys.stderr)
        return 2
    try:
        return _run(run, url)
    except PartitionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def default_workers(url: str) -> int:
    """One per core on both databases: the CPU is what limits a worker. On SQLite the
    processes take turns at the write lock through the write gate (ADR 0035); their
    reads, parsing and pricing run side by side."""
    del url
    return max(os.cpu_count() or 1, 1)


def prometheus_dir(workers: int) -> None:
    """Several server processes: each writes its metrics to files in one directory, and
    /metrics, answered by any of them, sums them (prometheus_client's multiprocess mode).
    The directory must be empty at start; set PROMETHEUS_MULTIPROC_DIR to choose it."""
    import shutil
    import tempfile

    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if chosen:
        shutil.rmtree(chosen, ignore_errors=True)
        Path(chosen).mkdir(parents=True, exist_ok=True)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kopilka-metrics-")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    os.environ["KOPILKA_DATABASE_URL"] = args.db
    os.environ.setdefault("KOPILKA_LOG_LEVEL", args.log_level)
    workers = args.workers or default_workers(args.db)
    if workers > 1:
        prometheus_dir(workers)
    settings: dict[str, Any] = {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "workers": workers,
        "log_level": args.log_level,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
    }
    from kopilka.api.listen import reuseport_supported, serve_workers

    if workers > 1 and reuseport_supported():
        serve_workers(uvicorn.Config("kopilka.api.asgi:make_app", **settings))
    else:
        uvicorn.run("kopilka.api.asgi:make_app", **settings)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from kopilka.demo.loader import load_demo
    from kopilka.store.db import is_sqlite
    from kopilka.store.migrate import upgrade

    upgrade(args.db)
    info: Any = None

    async def load(rt: Runtime) -> int:
        nonlocal info
        info = await load_demo(rt, seed=args.seed)
        # the report pages, campaign audiences and the cashier's suggestions have their
        # figures at once, not after the worker's first round
        from kopilka.jobs import worker

        if not info.already_loaded:
            for job in (worker.refresh_summary, worker.refresh_rfm, worker.refresh_basket_rules):
                await job(rt)
        return 0

    _run(load, args.db)
    base = f"http://{args.host}:{args.port}"
    print("Kopilka demo" + (" (data already loaded)" if info.already_loaded else ""))
    print(f"  database:          {_safe(args.db)}")
    for k, v in info.counts.items():
        print(f"  {k + ':':<18} {v}")
    print(f"  API docs:          {base}/docs")
    print(f"  POS API:           {base}/api/pos/v1")
    print(f"  admin API:         {base}/api/admin/v1")
    print(f"POS terminal key: {info.terminal_key}")
    print(f"Admin API token: {info.admin_token}")
    print(f"Admin console: {base}/admin/   cashier screen: {base}/cashier")
    print("Console logins (login / password / role):")
    for login, password, role in info.users:
        print(f"  {login:<9} {password:<18} {role}")
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
        if args.action == "verify" and getattr(args, "alert", False):
            from kopilka.services import ledger_watch

            run = await ledger_watch.verify_and_alert(rt, recipients=args.alert_email or ())
            print(f"{run.discrepancies} discrepancies (recorded)", file=sys.stderr)
            return 1 if run.discrepancies else 0
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
    from kopilka.services.audit import CLI

    async def go(rt: Runtime) -> int:
        if args.action == "block":
            await cards.do_block_card(rt, args.number, reason=args.reason, actor=CLI)
            print(f"card {args.number} blocked", file=sys.stderr)
        elif args.action == "link":
            await cards.do_link_identifier(
                rt, args.number, kind=args.kind, value=args.value, actor=CLI
            )
            print(f"{args.kind} {args.value} now identifies card {args.number}", file=sys.stderr)
        else:
            await cards.do_replace_card(rt, args.old, args.new, actor=CLI)
            print(f"card {args.old} replaced by {args.new}", file=sys.stderr)
        return 0

    return _run(go, args.db)


def cmd_customer(args: argparse.Namespace) -> int:
    """customer erase: personal data replaced by a pseudonym, irreversibly (issue 10)."""
    from kopilka.services import customer_admin, erasure, programs
    from kopilka.services.audit import CLI

    async def go(rt: Runtime) -> int:
        if args.confirm != args.id:
            print("give --confirm with the customer's id again: this cannot be undone")
            return 2
        code = await customer_admin.program_code_of(rt, args.id)
        [program] = await programs.list_programs(rt, code=code)
        pseudonym = await erasure.do_erase_customer(
            rt, CLI, program.id, args.id, reason=args.reason
        )
        print(f"customer {args.id} erased; now {pseudonym}")
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
            await setup.do_set_program(
                rt, code=args.code, changes=pairs(args.set), author=_author(None)
            )
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


def _author(given: str | None) -> str:
    return given or os.environ.get("USER") or os.environ.get("USERNAME") or "cli"


def _yaml() -> Any:
    import yaml  # type: ignore[import-untyped]

    return yaml


def _yaml_loader() -> Any:
    """``yaml.SafeLoader`` reading floats as exact decimals (``0.1`` stays ``0.1``)."""
    yaml = _yaml()

    loader: Any = type("Loader", (yaml.SafeLoader,), {})

    def decimal(loader: Any, node: Any) -> Any:
        text = loader.construct_scalar(node).replace("_", "")
        try:
            return Decimal(text)
        except InvalidOperation:
            return loader.construct_yaml_float(node)

    loader.add_constructor("tag:yaml.org,2002:float", decimal)
    return loader


def _yaml_dumper() -> Any:
    """``yaml.SafeDumper`` writing decimals as plain numbers (``10.50``, not ``'10.50'``)."""
    yaml = _yaml()

    dumper: Any = type("Dumper", (yaml.SafeDumper,), {})

    def decimal(d: Any, value: Decimal) -> Any:
        text = format(value, "f")
        tag = "float" if "." in text else "int"
        return d.represent_scalar(f"tag:yaml.org,2002:{tag}", text)

    dumper.add_representer(Decimal, decimal)
    return dumper


class BadFile(Exception):
    pass


def load_document(path: str) -> Any:
    """A YAML or JSON file (``-``: standard input): JSON by the extension ``.json`` or by
    a first character ``{``, YAML otherwise."""
    import json

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadFile(f"{path}: cannot read: {exc}") from None
    if path.endswith(".json") or text.lstrip().startswith("{"):
        try:
            return json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            raise BadFile(f"{path}: not valid JSON: {exc}") from None
    yaml = _yaml()
    try:
        return yaml.load(text, Loader=_yaml_loader())
    except yaml.YAMLError as exc:
        raise BadFile(f"{path}: not valid YAML: {exc}") from None


def dump_document(doc: dict[str, Any], fmt: str) -> str:
    """The document as YAML (decimals as numbers, dates as dates) or JSON (as stored)."""
    from kopilka.domain.rules.model import ProgramDoc

    if fmt == "json":
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
    data = ProgramDoc.model_validate(doc).model_dump(
        mode="python", by_alias=True, exclude_none=True
    )
    text: str = _yaml().dump(
        data, Dumper=_yaml_dumper(), allow_unicode=True, sort_keys=False, width=100
    )
    return text


def _problems(exc: ServiceError) -> int:
    for e in exc.extra.get("errors", []):
        print(f"{e['field']}: {e['detail']}")
    return 1


def cmd_program(args: argparse.Namespace) -> int:
    """program validate|apply|export|versions|diff|rollback."""
    from kopilka.services import programs

    if args.action in ("validate", "apply"):
        try:
            data = load_document(args.file)
        except BadFile as exc:
            print(exc, file=sys.stderr)
            return 1
        try:
            doc = programs.check_document(data)
        except programs.ProgramError as exc:
            return _problems(exc)
        if args.action == "validate":
            print(f"ok: {len(doc.promotions)} promotions")
            return 0

    async def go(rt: Runtime) -> int:
        if args.action == "apply":
            v = await programs.do_apply(rt, doc, author=_author(args.author), note=args.note)
            print(v)
        elif args.action == "export":
            code = args.code or await _only_program(rt)
            exported.append(
                dump_document(await programs.export(rt, code, args.version), args.format)
            )
        elif args.action == "versions":
            code = args.code or await _only_program(rt)
            for x in await programs.versions(rt, code):
                print(
                    f"{x.version}\t{x.created_at:%Y-%m-%d %H:%M:%S}\t{x.author}\t"
                    f"{x.promotions} promotions\t{x.note}"
                )
        elif args.action == "diff":
            changes = await programs.diff(rt, args.code, args.a, args.b)
            for c in changes:
                print(c)
            print(f"{len(changes)} changes", file=sys.stderr)
        else:
            v = await programs.do_rollback(rt, args.code, args.version, author=_author(args.author))
            print(v)
        return 0

    exported: list[str] = []
    status = _run(go, args.db)
    for text in exported:
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    return status


async def _only_program(rt: Runtime) -> str:
    from kopilka.services import programs

    codes = [p.code for p in await programs.list_programs(rt)]
    if len(codes) != 1:
        raise ServiceError(
            "validation_failed",
            f"give the program code (there are {len(codes)} programs)",
            field="code",
        )
    return codes[0]


def cmd_simulate(args: argparse.Namespace) -> int:
    """What a basket would get, without writing anything (the admin API's simulator)."""
    import json

    from pydantic import ValidationError

    from kopilka.api.admin.schemas import SimulateIn, to_simulation
    from kopilka.api.problems import validation_errors
    from kopilka.services import programs

    try:
        body = load_document(args.file)
    except BadFile as exc:
        print(exc, file=sys.stderr)
        return 1
    if not isinstance(body, dict):
        print(f"{args.file}: expected a JSON object with lines", file=sys.stderr)
        return 1
    body["program"] = args.program
    body["store"] = args.store
    for name in ("identifier", "at"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    try:
        req = SimulateIn.model_validate_json(json.dumps(body, default=str))
    except ValidationError as exc:
        for e in validation_errors(exc):
            print(f"{e['field']}: {e['detail']}")
        return 1

    async def go(rt: Runtime) -> int:
        answer = await programs.simulate(rt, to_simulation(req))
        print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return 0

    return _run(go, args.db)


def cmd_admin(args: argparse.Namespace) -> int:
    """admin token add|list|disable."""
    from kopilka.services import admin

    async def go(rt: Runtime) -> int:
        if args.action == "add":
            print(
                await admin.do_add_token(
                    rt,
                    name=args.name,
                    program_code=args.program,
                    role=args.role,
                    partner_code=args.partner,
                    store_code=args.store,
                )
            )
        elif args.action == "list":
            for x in await admin.list_tokens(rt):
                state = "active" if x.disabled_at is None else "disabled"
                print(
                    f"{x.id}\t{x.name}\t{x.program_code or '*'}\t{x.key_prefix}…\t{state}\t"
                    f"{x.created_at:%Y-%m-%d %H:%M}"
                )
        else:
            await admin.do_disable_token(rt, args.id)
            print(f"admin token {args.id} disabled", file=sys.stderr)
        return 0

    return _run(go, args.db)


def cmd_user(args: argparse.Namespace) -> int:
    """user add|list|disable|enable|password: the console's people."""
    import getpass

    from kopilka.services import users
    from kopilka.services.audit import CLI
    from kopilka.services.setup import program_id
    from kopilka.store import tables as t

    def password() -> str:
        if not sys.stdin.isatty():
            return sys.stdin.readline().rstrip("\n")
        return getpass.getpass("password: ")

    async def scope(rt: Runtime) -> dict[str, int | None]:
        out: dict[str, int | None] = {"program_id": None, "partner_id": None, "store_id": None}
        if not args.program:
            return out
        async with rt.engine.connect() as conn:
            pid = await program_id(conn, args.program)
            out["program_id"] = pid
            if args.partner:
                out["partner_id"] = await _scalar(
                    conn, t.partners, pid, args.partner, field="partner"
                )
            if args.store:
                out["store_id"] = await _scalar(conn, t.stores, pid, args.store, field="store")
        return out

    async def go(rt: Runtime) -> int:
        if args.action == "add":
            if (args.partner or args.store) and not args.program:
                raise ServiceError("validation_failed", "--program is needed", field="program")
            uid = await users.do_create_user(
                rt,
                CLI,
                login=args.login,
                name=args.name,
                password=password(),
                role=args.role,
                email=args.email,
                locale=args.locale,
                **await scope(rt),
            )
            print(uid)
        elif args.action == "list":
            for x in await users.list_users(rt):
                state = "active" if x.active else "disabled"
                print(f"{x.id}\t{x.login}\t{x.name}\t{x.role}\t{state}")
        else:
            found = [x for x in await users.list_users(rt) if x.login == args.login.lower()]
            if not found:
                raise ServiceError("not_found", f"no user {args.login!r}", field="login")
            uid = found[0].id
            if args.action == "password":
                await users.do_update_user(rt, CLI, uid, password=password())
            else:
                await users.do_update_user(rt, CLI, uid, active=args.action == "enable")
            print(f"user {args.login} updated", file=sys.stderr)
        return 0

    return _run(go, args.db)


async def _scalar(conn: Any, table: Any, pid: int, code: str, *, field: str) -> int:
    from sqlalchemy import select

    found = (
        await conn.execute(
            select(table.c.id).where(table.c.program_id == pid, table.c.code == code)
        )
    ).scalar_one_or_none()
    if found is None:
        raise ServiceError("not_found", f"no {field} {code!r}", field=field)
    return int(found)


def cmd_worker(args: argparse.Namespace) -> int:
    """The scheduled work in one long-running process (``kopilka.jobs.worker``)."""
    from kopilka.jobs import worker
    from kopilka.notify import config as notify_config
    from kopilka.notify import outbox

    try:
        notify = notify_config.load() if args.notify else None
    except notify_config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    notifier = None if notify is None else outbox.Notifier(notify.channels, notify.policy)
    try:
        jobs = worker.table(
            args,
            notifier=notifier,
            expiring_days=None if notify is None else notify.expiring_days,
            worker_id=f"{socket.gethostname()}:{os.getpid()}",
        )
    except ValueError as exc:  # --only names a job that does not exist
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def go(rt: Runtime) -> int:
        return await worker.run(rt, jobs, every_s=args.every_s, once=args.once)

    return _run(go, args.db)


def outbox_states() -> tuple[str, ...]:
    return OUTBOX_STATES


def cmd_outbox(args: argparse.Namespace) -> int:
    """Look at deliveries and put dead letters back in the queue (audited)."""
    from kopilka.notify import outbox
    from kopilka.services import audit

    async def go(rt: Runtime) -> int:
        if args.outbox_cmd == "stats":
            for state, n in (await outbox.counts(rt)).items():
                print(f"deliveries\t{state}\t{n}")
            for state, n in (await outbox.event_counts(rt)).items():
                print(f"events\t{state}\t{n}")
            return 0
        if args.outbox_cmd == "retry":
            ids = args.ids or None
            if args.events:
                n = await outbox.retry_events(rt, program_id=args.program)
            else:
                n = await outbox.retry(rt, ids=ids, program_id=args.program)
            async with rt.engine.begin() as conn:
                await audit.record(
                    conn,
                    audit.CLI,
                    "outbox.retry",
                    "event" if args.events else "delivery",
                    ",".join(map(str, ids or [])) or "*",
                    at=rt.now(),
                    program_id=args.program,
                    after={"requeued": n},
                )
            what_ = "events" if args.events else "deliveries"
            print(f"queued {n} {what_} again", file=sys.stderr)
            return 0
        states = (
            ["failed", "dead"]
            if args.outbox_cmd == "dead"
            else ([args.state] if args.state else None)
        )
        items, total = await outbox.list_deliveries(
            rt, states=states, program_id=args.program, limit=args.limit
        )
        for x in items:
            print(
                f"{x.id}\t{x.created_at.isoformat()}\t{x.program_id}\t{x.topic}\t{x.channel}\t"
                f"{mask_recipient(x.recipient)}\t{x.state}\t{x.attempts}\t{x.last_error or ''}"
            )
        print(f"{len(items)} of {total}", file=sys.stderr)
        return 0

    return _run(go, args.db)


def mask_recipient(value: str) -> str:
    """Personal data stays out of terminals and logs: +7903*****67, a***@example.org."""
    from kopilka.domain.roles import mask_phone

    if value.startswith(("http://", "https://")):
        return value
    if "@" in value:
        user, _, domain = value.partition("@")
        return f"{user[:1]}***@{domain}"
    return mask_phone(value)


def cmd_levels(args: argparse.Namespace) -> int:
    from kopilka.services.levels import run_levels_cli

    return run_levels_cli(args)


def build_parser() -> argparse.ArgumentParser:
    from kopilka import fraud_cli, giftcard_cli, offline_cli, report_cli
    from kopilka.coupon_cli import add_coupon_commands
    from kopilka.draw_cli import add_draw_commands
    from kopilka.settlement_cli import add_settlement_commands

    p = argparse.ArgumentParser(
        prog="kopilka", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--db",
        default=None,
        help="database URL (default: $KOPILKA_DATABASE_URL or sqlite:///kopilka.db)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    mg = sub.add_parser("migrate", help="create or upgrade the schema")
    mg.add_argument(
        "--partitioned",
        action="store_true",
        help="PostgreSQL, new database: hash-partition the hot tables by program_id "
        "(docs/scaling.md)",
    )
    mg.add_argument("--partitions", type=int, default=8, help="with --partitioned")
    mg.set_defaults(fn=cmd_migrate)

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
    lv = lsub.add_parser("verify", help="recompute balances from the ledger; exit 1 on a mismatch")
    lv.add_argument(
        "--alert",
        action="store_true",
        help="record the run and raise the alarms on a difference, as the nightly run does",
    )
    lv.add_argument("--alert-email", action="append", default=None, metavar="ADDR")
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

    cu = sub.add_parser("customer", help="customers' personal data")
    cusub = cu.add_subparsers(dest="action", required=True)
    ce = cusub.add_parser(
        "erase",
        help="erase a customer's personal data (irreversible; points and receipts stay)",
    )
    ce.add_argument("id", type=int)
    ce.add_argument("--confirm", type=int, required=True, help="the id again")
    ce.add_argument("--reason", required=True, help="why (kept in the audit log)")
    cu.set_defaults(fn=cmd_customer)

    pr = sub.add_parser("program", help="program documents, versions, settings")
    prs = pr.add_subparsers(dest="action", required=True)
    pv = prs.add_parser("validate", help="check a program document (YAML or JSON)")
    pv.add_argument("file")
    pap = prs.add_parser("apply", help="make a document the program's new version")
    pap.add_argument("file")
    pap.add_argument("--author", default=None, help="default: $USER")
    pap.add_argument("--note", default="")
    pe = prs.add_parser("export", help="print a version's document")
    pe.add_argument("code", nargs="?", default=None, help="default: the only program")
    pe.add_argument("--version", type=int, default=None, help="default: the current one")
    pe.add_argument("--format", choices=["yaml", "json"], default="yaml")
    pe.add_argument("--out", default=None, help="write to this file")
    pvs = prs.add_parser("versions", help="list versions: time, author, promotions, note")
    pvs.add_argument("code", nargs="?", default=None, help="default: the only program")
    pdf = prs.add_parser("diff", help="what changed from version A to version B")
    pdf.add_argument("code")
    pdf.add_argument("a", type=int)
    pdf.add_argument("b", type=int)
    prb = prs.add_parser("rollback", help="apply an old version's document as a new version")
    prb.add_argument("code")
    prb.add_argument("version", type=int)
    prb.add_argument("--author", default=None, help="default: $USER")
    for sp in (pv, pap, pe, pvs, pdf, prb):
        sp.set_defaults(fn=cmd_program)
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
    for sp in (pc, ps, psh):
        sp.set_defaults(fn=cmd_setup)

    sm = sub.add_parser(
        "simulate", help="what would a basket get (prints JSON with explanations; writes nothing)"
    )
    sm.add_argument("--program", required=True)
    sm.add_argument("--store", required=True)
    sm.add_argument("--identifier", default=None, help="a real customer: card, phone, QR")
    sm.add_argument("--at", default=None, help="receipt time, ISO with offset (default: now)")
    sm.add_argument("file", help="basket JSON like the POS calculate body ('-': stdin)")
    sm.set_defaults(fn=cmd_simulate)

    ad = sub.add_parser("admin", help="admin API tokens")
    ads = ad.add_subparsers(dest="what", required=True)
    adt = ads.add_parser("token", help="admin API tokens")
    adts = adt.add_subparsers(dest="action", required=True)
    ata = adts.add_parser("add", help="create a token; prints only its key")
    ata.add_argument("--name", required=True, help="who uses it (the author of changes)")
    ata.add_argument("--program", default=None, help="limit the token to this program")
    ata.add_argument(
        "--role", default="owner", help="the token's permissions are this role's (default owner)"
    )
    ata.add_argument(
        "--partner", default=None, help="the partner role: the partner (code) it acts for"
    )
    ata.add_argument(
        "--store", default=None, help="store manager or cashier: the store (code) it acts for"
    )
    adts.add_parser("list", help="list tokens")
    atd = adts.add_parser("disable", help="disable a token (at once)")
    atd.add_argument("id", type=int)
    ad.set_defaults(fn=cmd_admin)

    us = sub.add_parser("user", help="console users (roles, passwords)")
    uss = us.add_subparsers(dest="action", required=True)
    usa = uss.add_parser("add", help="create a user; the password is read from stdin")
    usa.add_argument("--login", required=True)
    usa.add_argument("--name", required=True)
    usa.add_argument(
        "--role",
        required=True,
        help="owner|marketer|analyst|support|security|store_manager|partner|cashier",
    )
    usa.add_argument("--email", default=None)
    usa.add_argument("--locale", default="ru", choices=("ru", "en"))
    usa.add_argument("--program", default=None, help="limit the user to this program")
    usa.add_argument("--partner", default=None, help="the partner role's partner code")
    usa.add_argument("--store", default=None, help="the store manager's or cashier's store code")
    uss.add_parser("list", help="list users")
    for action, text in (
        ("disable", "disable a user (its sessions end at once)"),
        ("enable", "enable a user again (and lift a lockout)"),
        ("password", "set a new password, read from stdin"),
    ):
        uss.add_parser(action, help=text).add_argument("login")
    us.set_defaults(fn=cmd_user)

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
    w.add_argument("--levels-every-s", type=float, default=3600.0, help="tiers/discounts period")
    w.add_argument("--rfm-every-s", type=float, default=86400.0, help="RFM segments refresh period")
    w.add_argument(
        "--fraud-pins-every-s",
        type=float,
        default=60.0,
        help="gift-card PIN guessing check period (the other fraud rules run every round)",
    )
    w.add_argument(
        "--summary-every-s", type=float, default=60.0, help="analytics summary tables period"
    )
    w.add_argument(
        "--basket-every-s",
        type=float,
        default=86400.0,
        help="refresh the cashier's basket rules (docs/analytics/basket.md); 0: never",
    )
    w.add_argument(
        "--no-notify",
        dest="notify",
        action="store_false",
        help="do not deliver the outbox (SMS, e-mail, webhooks) in this process",
    )
    w.add_argument(
        "--notify-program",
        type=int,
        action="append",
        default=None,
        metavar="ID",
        help="deliver only these programs' outbox (repeatable; default: all)",
    )
    w.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="JOB[,JOB]",
        help="run only these jobs (repeatable): campaigns, reports, outbox, fraud, holds, "
        "expiry, hourly, rfm, summary-tables, basket-rules, ledger-verify; e.g. analytics on "
        "one node only",
    )
    w.add_argument(
        "--verify-hour",
        type=int,
        default=3,
        help="verify the ledger once a night at this hour (local time); -1: never",
    )
    w.add_argument(
        "--verify-tz", default=None, help="time zone of --verify-hour (default: the program's)"
    )
    w.add_argument(
        "--alert-email",
        action="append",
        default=[x for x in os.environ.get("KOPILKA_OPS_EMAIL", "").split(",") if x.strip()],
        metavar="ADDR",
        help="operators' e-mail for a ledger difference (repeatable; KOPILKA_OPS_EMAIL)",
    )
    w.set_defaults(fn=cmd_worker)

    ob = sub.add_parser("outbox", help="notification deliveries: list, dead letters, retry")
    obs = ob.add_subparsers(dest="outbox_cmd", required=True)
    obl = obs.add_parser("list", help="latest deliveries (all states)")
    obd = obs.add_parser("dead", help="deliveries that failed for good or ran out of attempts")
    for p_ in (obl, obd):
        p_.add_argument("--program", type=int, default=None, help="program id")
        p_.add_argument("--limit", type=int, default=50)
    obl.add_argument("--state", choices=outbox_states(), default=None)
    obr = obs.add_parser("retry", help="queue dead and failed deliveries again")
    obr.add_argument("ids", nargs="*", type=int, help="delivery ids (default: all dead/failed)")
    obr.add_argument("--program", type=int, default=None, help="program id")
    obr.add_argument(
        "--events", action="store_true", help="dispatch dead events again (templates fixed)"
    )
    obs.add_parser("stats", help="deliveries by state")
    ob.set_defaults(fn=cmd_outbox)

    lv = sub.add_parser("levels", help="tiers and cumulative discounts")
    lvs = lv.add_subparsers(dest="action", required=True)
    lvr = lvs.add_parser("recompute", help="review every account now (downgrades, decay)")
    lvr.add_argument("--program", default=None, help="program code (default: every program)")
    lv.set_defaults(fn=cmd_levels)
    add_draw_commands(sub)
    add_settlement_commands(sub)
    add_coupon_commands(sub)
    giftcard_cli.add_parser(sub)
    fraud_cli.add_parser(sub)
    offline_cli.add_parser(sub)
    report_cli.add_report_commands(sub)
    report_cli.add_import_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from kopilka.store.db import resolve_url

    args = build_parser().parse_args(argv)
    args.db = resolve_url(args.db)
    code: int = args.fn(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
