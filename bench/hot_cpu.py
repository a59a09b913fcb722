"""The server's own cost of a receipt, without the machine's noise.

``bench/pos_load.py`` measures throughput on two shared cores whose speed moves by up to
1.5x between runs minutes apart (docs/performance.md), so a change worth 2 % of a
receipt's CPU cannot be seen there. This drives the same app in one process, the same
workload as ``pos_load`` (its ``Load``: lookup -> calculate -> confirm, members and
guests, some burning points), one till at a time, straight through ASGI (no sockets),
against a SQLite file (or, with ``--backend pg``, a PostgreSQL database) seeded
beforehand, and reports:

- ``--mode cpu`` (default): process CPU time per receipt (quick, still noisy);
- ``--mode instructions``: instructions per receipt counted by valgrind's callgrind,
  which are the same from run to run whatever else the machine is doing: two runs of
  ``--receipts`` and ``2 x --receipts`` receipts after the same warm-up, subtracted, so
  start-up (imports, the app, the warm-up) cancels out. Slow (the interpreter under
  valgrind): about two minutes for 2 x 60 receipts.

It counts our code, the framework, the driver and (SQLite) the database, in the server's
process; with ``--backend pg`` the database's own work is in its backend, not counted:
that is the server's side of a PostgreSQL receipt (asyncpg's encoding included). The
output is
printed and written to ``bench/results/hot_cpu-<backend>-<mode>-<time>.json``.

    .venv/bin/python bench/hot_cpu.py                       # CPU ms per receipt
    .venv/bin/python bench/hot_cpu.py --mode instructions   # instructions per receipt
    .venv/bin/python bench/hot_cpu.py --backend pg --mode instructions
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

from pos_load import Fixture, Load, Till, git_info, make_catalogue, pg_url, seed  # noqa: E402


class AsgiConn:
    """``pos_load.Conn``'s interface, answered by the app in this process through ASGI."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.headers = [(b"host", b"bench"), (b"authorization", f"Bearer {key}".encode())]

    async def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def request(self, method: bytes, path: str, body: bytes = b"") -> tuple[int, bytes]:
        route, _, query = path.partition("?")
        headers = list(self.headers)
        if method == b"POST":
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method.decode(),
            "scheme": "http",
            "path": route,
            "raw_path": route.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("bench", 80),
            "state": {},
        }
        sent = False
        status = 0
        parts: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(parts)


async def _seeded(url: str, customers: int) -> Fixture:
    return await seed(url, customers=customers, terminals=1, rng=random.Random(1), history=2000)


async def _pg(admin: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _drive(url: str, fx: Fixture, warmup: int, receipts: int) -> dict[str, Any]:
    from kopilka.api.app import HotFront, create_app
    from kopilka.api.observe import Observed
    from kopilka.services.runtime import Runtime

    rt = Runtime.from_url(url)
    app = Observed(HotFront(create_app(rt, sweep_every_s=0)))
    rng = random.Random(7)
    load = Load(
        host="bench",
        port=0,
        fx=fx,
        catalogue=make_catalogue(rng),
        member_share=0.7,
        redeem_share=0.2,
        tag="hot",
        avail=[float(p) for p in fx.points],
    )
    till = Till(0, AsgiConn(app, fx.keys[0]), list(range(len(fx.cards))), random.Random(11))
    try:
        for _ in range(warmup):
            await load.receipt(till)  # type: ignore[arg-type]
        before = load.receipts
        t0 = time.process_time()
        for _ in range(receipts):
            await load.receipt(till)  # type: ignore[arg-type]
        cpu = time.process_time() - t0
    finally:
        await rt.close()
    done = load.receipts - before
    return {
        "receipts": done,
        "errors": dict(load.errors),
        "first_errors": load.first_errors,
        "cpu_s": cpu,
        "kinds": dict(load.kinds),
    }


def _run(args: argparse.Namespace) -> int:
    """One measured run on a copy of the seeded file (the ``--inner`` process)."""
    fx = Fixture(**json.loads(Path(args.fixture).read_text()))
    if args.db.startswith("postgresql"):  # a copy of the seeded database
        name = f"kopilka_hot_{secrets.token_hex(4)}"
        _loop_run(_pg(args.pg_admin, f'CREATE DATABASE "{name}" TEMPLATE "{_dbname(args.db)}"'))
        try:
            out = _loop_run(_drive(pg_url(args.pg_admin, name), fx, args.warmup, args.receipts))
        finally:
            _loop_run(_pg(args.pg_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        work = Path(tempfile.mkdtemp(prefix="kopilka-hot-"))
        try:
            db = work / "bench.db"
            shutil.copy(args.db.removeprefix("sqlite:///"), db)
            out = _loop_run(_drive(f"sqlite:///{db}", fx, args.warmup, args.receipts))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))
    return 0 if not out["errors"] else 1


def _loop_run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _dbname(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _callgrind_total(out_file: Path) -> int:
    for line in out_file.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no total in {out_file}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mode", choices=("cpu", "instructions"), default="cpu")
    p.add_argument("--receipts", type=int, default=None, help="measured receipts")
    p.add_argument("--warmup", type=int, default=20, help="receipts before measuring (20)")
    p.add_argument("--customers", type=int, default=200)
    p.add_argument("--backend", choices=("sqlite", "pg"), default="sqlite")
    p.add_argument(
        "--pg-admin",
        default=os.environ.get("KOPILKA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="where to create the PostgreSQL databases (--backend pg)",
    )
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--fixture", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.inner:
        return _run(args)
    receipts = args.receipts or (400 if args.mode == "cpu" else 60)

    work = Path(tempfile.mkdtemp(prefix="kopilka-hot-seed-"))
    seed_name = f"kopilka_hot_seed_{secrets.token_hex(4)}"
    if args.backend == "pg":
        _loop_run(_pg(args.pg_admin, f'CREATE DATABASE "{seed_name}"'))
        db = pg_url(args.pg_admin, seed_name)
    else:
        db = f"sqlite:///{work / 'seed.db'}"
    try:
        from kopilka.store.migrate import upgrade

        upgrade(db)
        fx = _loop_run(_seeded(db, args.customers))
        if args.backend == "pg":
            _loop_run(_pg(db, "ANALYZE"))
        fixture = work / "fixture.json"
        fixture.write_text(json.dumps(fx.__dict__))
        base = [sys.executable, __file__, "--inner", "--db", db, "--fixture", str(fixture)]
        base += ["--warmup", str(args.warmup), "--pg-admin", args.pg_admin]

        def inner(n: int, prefix: list[str]) -> dict[str, Any]:
            done = subprocess.run(
                [*prefix, *base, "--receipts", str(n)], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise SystemExit(f"the measured run failed:\n{done.stdout}\n{done.stderr[-3000:]}")
            out: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
            return out

        result: dict[str, Any] = {
            "bench": "hot_cpu",
            "mode": args.mode,
            "backend": args.backend,
            "git": git_info(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "warmup": args.warmup,
        }
        if args.mode == "cpu":
            runs = [inner(receipts, []) for _ in range(3)]
            per = sorted(r["cpu_s"] / r["receipts"] * 1000 for r in runs)
            result.update(receipts=receipts, cpu_ms_per_receipt=per, kinds=runs[0]["kinds"])
            print(
                f"CPU per receipt (one process, {args.backend}, {receipts} receipts, 3 runs): "
                + ", ".join(f"{x:.3f}" for x in per)
                + " ms"
            )
        else:
            if not shutil.which("valgrind"):
                raise SystemExit("valgrind is not installed (apt-get install valgrind)")
            totals = {}
            for n in (receipts, 2 * receipts):
                cg = work / f"callgrind.{n}.out"
                prefix = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}"]
                run = inner(n, prefix)
                totals[n] = (_callgrind_total(cg), run["receipts"])
            (i1, r1), (i2, r2) = totals[receipts], totals[2 * receipts]
            per_receipt = (i2 - i1) / max(r2 - r1, 1)
            result.update(
                receipts=[r1, r2],
                instructions=[i1, i2],
                instructions_per_receipt=round(per_receipt),
            )
            print(
                f"instructions per receipt (callgrind, {args.backend}, runs of {r1} and {r2} "
                f"receipts after {args.warmup} of warm-up): {per_receipt:,.0f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.backend == "pg":
            _loop_run(_pg(args.pg_admin, f'DROP DATABASE IF EXISTS "{seed_name}" WITH (FORCE)'))
    if not args.no_save:
        out_dir = BENCH / "results"
        out_dir.mkdir(exist_ok=True)
        stamp = re.sub(r"[-:]", "", result["when"][:19])
        path = out_dir / f"hot_cpu-{args.backend}-{args.mode}-{stamp}Z.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written {path.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
