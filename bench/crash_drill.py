"""Crash drills (issue 10): SIGKILL the server inside calculate/confirm/refund and the
worker inside delivery, over many randomized trials; the till retries with the same key.

Each backend (a fresh SQLite file, a fresh PostgreSQL database) gets one real server
(``kopilka.api.asgi:make_app`` under uvicorn, one process) forked by a small launcher
that holds the listening socket: when the server dies, tills' connections wait in the
socket's backlog and the launcher forks a new server at once (as systemd's socket
activation would).  The server runs with ``KOPILKA_CRASH_POINTS`` (kopilka/crash.py), so
it kills itself at random hook sites: before BEGIN, before each statement, before COMMIT,
after COMMIT, before sending the answer (hot path and SQLAlchemy).  In a share of the
trials the drill also kills it from outside at a random delay.

A trial: a member with 1,000 points; calculate (2 lines, 500.00, redeem 100) → confirm →
partial refund (line 0), each call retried with the same receipt/refund id until it is
answered 200.  Then, from the database: the receipt's ledger entries are exactly those
worked out by hand (hold 0, burn −100, earn +40, return +60, take back −24), one refund
row, one ``purchase.confirmed`` outbox event, balance 976.00, and ``verify_ledger`` finds
nothing.  Any other state is a lost acknowledged operation, a duplicate or an invariant
violation, and is counted (all must be 0).

Then the worker: ``kopilka worker`` delivers the trials' webhooks to a receiver in this
process, with the ``delivery.sent`` site armed (dies after the HTTP POST, before marking
the rows delivered); it is restarted until every delivery is delivered.  Reported: POSTs
the naive receiver saw twice (at-least-once) and deliveries missing after deduplication
by ``Idempotency-Key`` (must be 0).

Writes bench/results/crash-<UTC>.json.

    .venv/bin/python bench/crash_drill.py [--trials 1000] [--backend sqlite|pg|both]
        [--p 0.02] [--external 0.2] [--worker-deliveries all]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("KOPILKA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# The receipt of every trial and its effects, worked out by hand (program: earn 10 % of
# what is paid, burn up to 100 %).  500.00 = 1 × 300.00 + 2 × 100.00; 100 points redeemed
# → 400.00 paid → 40 earned.  Refund of line 0 (300.00 of 500.00 = 3/5): 3/5 of the 100
# redeemed (60) returned; line 0 paid 300 − 60 = 240, its 10 % (24) taken back.
START = Decimal("1000")
ENTRY_AMOUNTS = sorted(Decimal(x) for x in ("0", "-100", "40", "60", "-24"))
BALANCE_AFTER = Decimal("976.00")  # 1000 − 100 + 40 + 60 − 24
RETRY_STATUSES = {500, 502, 503, 504}


# --- the launcher: holds the socket, forks a server again whenever one dies ------------------


def launcher(port_file: str, pid_file: str) -> None:
    """Runs in its own process (``--launcher``), with the crash points in its environment."""
    import uvicorn

    from kopilka.api.asgi import make_app

    # built once, before any connection is opened: a forked server starts in ~0.1 s
    app = make_app()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    Path(port_file + ".new").write_text(str(sock.getsockname()[1]))
    os.replace(port_file + ".new", port_file)
    stop = False
    child = 0

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    starts = 0
    while not stop:
        pid = child = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            config = uvicorn.Config(
                app,
                loop="uvloop",
                http="httptools",
                log_level="critical",
                access_log=False,
            )
            uvicorn.Server(config).run(sockets=[sock])
            os._exit(0)
        starts += 1
        Path(pid_file + ".new").write_text(str(pid))
        os.replace(pid_file + ".new", pid_file)  # atomic: the drill never reads it half-written
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue
    print(f"server starts: {starts}", file=sys.stderr)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    pid_file: Path

    def pid(self) -> int:
        return int(self.pid_file.read_text())

    def stop(self) -> None:
        """The launcher and any server it forked (its own process group)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


def start_server(url: str, env: dict[str, str], workdir: Path) -> Server:
    port_file, pid_file = workdir / "port", workdir / "pid"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--launcher", str(port_file), str(pid_file)],
        env={**os.environ, **env, "KOPILKA_DATABASE_URL": url, "KOPILKA_DB_POOL": "4"},
        start_new_session=True,  # stop() ends the launcher and its servers together
    )
    for _ in range(600):
        if port_file.exists() and port_file.read_text():
            return Server(proc, int(port_file.read_text()), pid_file)
        time.sleep(0.05)
    raise RuntimeError("the launcher did not start")


# --- the till ----------------------------------------------------------------------------------


@dataclass
class Figures:
    trials: int = 0
    calls: int = 0
    retries: int = 0
    external_kills: int = 0
    server_errors: int = 0  # 5xx answers (then retried)
    unexpected: Counter[str] = field(default_factory=Counter)  # 4xx answers: violations
    lost_acks: int = 0
    duplicates: int = 0
    violations: Counter[str] = field(default_factory=Counter)
    longest_outage_s: float = 0.0


async def until_acked(
    client: Any, fig: Figures, method: str, path: str, key: str, body: Any
) -> dict[str, Any] | None:
    """Send with the same idempotency key until the server answers 200 (None: a 4xx)."""
    import httpx

    first_failure: float | None = None
    for _ in range(2000):
        fig.calls += 1
        try:
            r = await client.request(
                method, "/api/pos/v1" + path, json=body, headers={"Authorization": f"Bearer {key}"}
            )
        except httpx.HTTPError:
            r = None
        if r is not None and r.status_code == 200:
            if first_failure is not None:
                fig.longest_outage_s = max(fig.longest_outage_s, time.monotonic() - first_failure)
            out: dict[str, Any] = r.json()
            return out
        if r is not None and r.status_code not in RETRY_STATUSES:
            fig.unexpected[f"{path.split('/')[-1]} {r.status_code} {r.text[:80]}"] += 1
            return None
        if r is not None:
            fig.server_errors += 1
        first_failure = first_failure or time.monotonic()
        fig.retries += 1
        await asyncio.sleep(0.01)
    raise RuntimeError(f"{path}: never answered")


async def check_trial(rt: Any, shop: Any, member: Any, rid: str, fig: Figures) -> None:
    from sqlalchemy import func, select

    from kopilka.services.ledger_jobs import verify_ledger
    from kopilka.store import tables as t

    le, rc = t.ledger_entries, t.receipts
    async with rt.engine.connect() as conn:
        pk, state = (
            await conn.execute(
                select(rc.c.id, rc.c.state).where(
                    rc.c.program_id == shop.program_id, rc.c.pos_receipt_id == rid
                )
            )
        ).one()
        amounts = sorted(
            Decimal(a)
            for a in (
                await conn.execute(select(le.c.amount).where(le.c.receipt_pk == pk))
            ).scalars()
        )
        refunds = (
            await conn.execute(
                select(func.count()).select_from(t.refunds).where(t.refunds.c.receipt_pk == pk)
            )
        ).scalar_one()
        events = (
            await conn.execute(
                select(func.count())
                .select_from(t.outbox)
                .where(
                    t.outbox.c.topic == "purchase.confirmed",
                    t.outbox.c.payload.like(f'%"receipt_pk":{pk},%'),
                )
            )
        ).scalar_one()
        balance = Decimal(
            (
                await conn.execute(
                    select(t.accounts.c.balance).where(t.accounts.c.id == member.account_id)
                )
            ).scalar_one()
        )
    if amounts != ENTRY_AMOUNTS:
        missing = Counter(ENTRY_AMOUNTS) - Counter(amounts)
        extra = Counter(amounts) - Counter(ENTRY_AMOUNTS)
        fig.lost_acks += sum(missing.values())
        fig.duplicates += sum(extra.values())
        fig.violations[f"entries {amounts}"] += 1
    if refunds != 1 or events != 1:
        fig.duplicates += max(0, refunds - 1) + max(0, events - 1)
        fig.lost_acks += (refunds == 0) + (events == 0)
        fig.violations[f"refunds {refunds} events {events}"] += 1
    if state != "confirmed" and state != "refunded" and state != "partially_refunded":
        fig.violations[f"receipt state {state}"] += 1
    if balance != BALANCE_AFTER:
        fig.violations[f"balance {balance}"] += 1
    # the trial's account (a shared database may hold other tests' broken accounts)
    bad = [d for d in await verify_ledger(rt) if d.account_id == member.account_id]
    if bad:
        fig.violations[f"ledger verify: {len(bad)} discrepancies"] += 1


async def trials(
    url: str, n: int, *, p: float, external: float, seed: int, workdir: Path, worker: bool = True
) -> dict[str, Any]:
    from tests.conftest import new_shop

    from kopilka.services.runtime import Runtime

    rng = random.Random(seed)
    rt = Runtime.from_url(url, cache_ttl_s=0.0)
    shop = await new_shop(rt, None, burn_max_percent="100", earn_percent="10")  # type: ignore[arg-type]
    receiver = Receiver()
    await _webhook(rt, shop.program_id, receiver.url)
    crash_log = workdir / "crash.log"
    env = {
        "KOPILKA_CRASH_POINTS": ",".join(
            f"{s}={p}"
            for s in (
                "tx.begin",
                "tx.statement",
                "tx.commit",
                "tx.committed",
                "sa.begin",
                "sa.statement",
                "sa.commit",
                "http.answer",
            )
        ),
        "KOPILKA_CRASH_LOG": str(crash_log),
        "KOPILKA_CRASH_SEED": str(seed),
    }
    server = start_server(url, env, workdir)
    try:
        fig, server_s = await _serve_trials(rt, shop, server, n, rng, crash_log, external)
    finally:
        server.stop()
    print(f"  server trials done in {server_s:.0f} s; the worker now", flush=True)
    kills = Counter(crash_log.read_text().split()) if crash_log.exists() else Counter()
    delivered = (
        await worker_drill(rt, url, receiver, seed=seed, workdir=workdir)
        if worker
        else {"states": {}, "missing_after_dedup": 0, "skipped": True}
    )
    await rt.close()
    receiver.close()
    return {
        "trials": fig.trials,
        "calls": fig.calls,
        "retried_calls": fig.retries,
        "kills_per_site": dict(sorted(kills.items())),
        "hook_kills": sum(kills.values()),
        "external_kills": fig.external_kills,
        "server_errors_5xx": fig.server_errors,
        "unexpected_answers": dict(fig.unexpected),
        "lost_acknowledged": fig.lost_acks,
        "duplicates": fig.duplicates,
        "invariant_violations": dict(fig.violations),
        "longest_wait_for_an_answer_s": round(fig.longest_outage_s, 3),
        "time_s": round(server_s, 1),
        "worker": delivered,
    }


async def _serve_trials(
    rt: Any,
    shop: Any,
    server: Server,
    n: int,
    rng: random.Random,
    crash_log: Path,
    external: float,
) -> tuple[Figures, float]:
    import httpx
    from tests.conftest import receipt

    fig = Figures()
    started = time.monotonic()
    limits = httpx.Limits(max_keepalive_connections=1)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}", timeout=30.0, limits=limits
    ) as client:
        for i in range(n):
            member = await shop.customer(points=START)
            rid = f"crash-{i}"
            killer = None
            if rng.random() < external:
                delay = rng.uniform(0.0, 0.06)

                async def kill_later(delay: float = delay) -> None:
                    await asyncio.sleep(delay)
                    try:
                        os.kill(server.pid(), signal.SIGKILL)
                        fig.external_kills += 1
                    except ProcessLookupError:
                        pass

                killer = asyncio.create_task(kill_later())
            body = receipt(
                rid, member.card, ("a", 1, "300.00"), ("b", 2, "100.00"), redeem_points="100"
            )
            await until_acked(client, fig, "POST", "/purchases/calculate", shop.key, body)
            await until_acked(client, fig, "POST", f"/purchases/{rid}/confirm", shop.key, None)
            refund = {"refund_id": f"r-{i}", "lines": [{"index": 0, "quantity": 1}]}
            await until_acked(client, fig, "POST", f"/purchases/{rid}/refunds", shop.key, refund)
            if killer is not None:
                await killer
            await check_trial(rt, shop, member, rid, fig)
            fig.trials += 1
            if (i + 1) % 100 == 0:
                print(
                    f"  {i + 1} trials, {_kills(crash_log)} hook kills, "
                    f"{fig.external_kills} external, {sum(fig.violations.values())} violations",
                    flush=True,
                )
    return fig, time.monotonic() - started


def _kills(log: Path) -> int:
    return len(log.read_text().split()) if log.exists() else 0


# --- the worker inside delivery ------------------------------------------------------------


class Receiver:
    """A partner's webhook endpoint: counts every POST by its ``Idempotency-Key``."""

    def __init__(self) -> None:
        seen: Counter[str] = Counter()
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    seen[self.headers.get("Idempotency-Key", "")] += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.seen = seen
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


async def _webhook(rt: Any, program_id: int, url: str) -> None:
    from kopilka.notify import outbox

    await outbox.add_webhook(
        rt, program_id=program_id, url=url, secret=secrets.token_hex(16), topics="*"
    )


async def _delivery_states(rt: Any) -> Counter[str]:
    from sqlalchemy import func, select

    from kopilka.store import tables as t

    d = t.deliveries
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(select(d.c.state, func.count()).group_by(d.c.state))).all()
        pending = (
            await conn.execute(
                select(func.count()).select_from(t.outbox).where(t.outbox.c.state == "pending")
            )
        ).scalar_one()
    out = Counter({r[0]: int(r[1]) for r in rows})
    out["events pending"] = int(pending)
    return out


async def worker_drill(
    rt: Any, url: str, receiver: Receiver, *, seed: int, workdir: Path
) -> dict[str, Any]:
    """``kopilka worker`` delivering every trial's webhook, killed after sending a batch
    with probability 0.3, restarted until nothing is left to deliver."""
    log = workdir / "worker-crash.log"
    env = {
        **os.environ,
        "KOPILKA_DATABASE_URL": url,
        "KOPILKA_CRASH_POINTS": "delivery.sent=0.3",
        "KOPILKA_CRASH_LOG": str(log),
        "KOPILKA_CRASH_SEED": str(seed),
        "KOPILKA_NOTIFY_LEASE_S": "1",
        "KOPILKA_NOTIFY_BATCH": "10",
    }
    cmd = [
        str(Path(sys.executable).parent / "kopilka"),
        "worker",
        "--every-s",
        "0.2",
        "--expiry-every-s",
        "0",
        "--levels-every-s",
        "0",
        "--rfm-every-s",
        "0",
        "--summary-every-s",
        "0",
        "--basket-every-s",
        "0",
    ]
    started = time.monotonic()
    starts = 0
    while True:
        states = await _delivery_states(rt)
        busy = states["events pending"] + states["pending"] + states["sending"]
        if not busy or time.monotonic() - started > 900:
            break
        starts += 1
        # a new seed each start: with the same one, each would die at the same place
        env["KOPILKA_CRASH_SEED"] = f"{seed}-{starts}"
        proc = await asyncio.create_subprocess_exec(
            *cmd, env=env, stderr=asyncio.subprocess.DEVNULL
        )
        while proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), 1.0)
            except TimeoutError:
                states = await _delivery_states(rt)
                if not (states["events pending"] + states["pending"] + states["sending"]):
                    proc.terminate()
                    await proc.wait()
    states = await _delivery_states(rt)
    delivered_keys = await _delivered_keys(rt)
    kills = Counter(log.read_text().split()) if log.exists() else Counter()
    return {
        "deliveries": sum(v for k, v in states.items() if k != "events pending"),
        "states": dict(states),
        "worker_starts": starts,
        "kills_after_sending": kills["delivery.sent"],
        "posts_received": sum(receiver.seen.values()),
        "naive_duplicates": sum(n - 1 for n in receiver.seen.values() if n > 1),
        "missing_after_dedup": len(delivered_keys - set(receiver.seen)),
        "duplicates_after_dedup": 0 if len(set(receiver.seen)) <= len(delivered_keys) else -1,
        "time_s": round(time.monotonic() - started, 1),
    }


async def _delivered_keys(rt: Any) -> set[str]:
    from sqlalchemy import select

    from kopilka.store import tables as t

    async with rt.engine.connect() as conn:
        keys = (await conn.execute(select(t.deliveries.c.delivery_key))).scalars().all()
    return set(keys)


# --- databases --------------------------------------------------------------------------------


async def fresh_db(kind: str, workdir: Path) -> tuple[str, str | None]:
    from kopilka.store.migrate import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{workdir}/crash.db"
        name = None
    else:
        import asyncpg

        name = f"kopilka_crash_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(upgrade, url)
    return url, name


async def drop_db(name: str | None) -> None:
    if name:
        import asyncpg

        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(
    kind: str, n: int, *, p: float, external: float, seed: int, worker: bool = True
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"kopilka-crash-{kind}-"))
    url, name = await fresh_db(kind, workdir)
    try:
        out = await trials(
            url, n, p=p, external=external, seed=seed, workdir=workdir, worker=worker
        )
    finally:
        await drop_db(name)
        shutil.rmtree(workdir, ignore_errors=True)
    return {"backend": kind, **out}


def bad_total(row: dict[str, Any]) -> int:
    w = row["worker"]
    return (
        row["lost_acknowledged"]
        + row["duplicates"]
        + sum(row["invariant_violations"].values())
        + sum(row["unexpected_answers"].values())
        + w["missing_after_dedup"]
        + w["states"].get("pending", 0)
        + w["states"].get("sending", 0)
        + w["states"].get("dead", 0)
    )


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    ap.add_argument("--p", type=float, default=0.02, help="kill probability at each hook")
    ap.add_argument("--external", type=float, default=0.2, help="share of trials killed outside")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rows = []
    for kind in ("sqlite", "pg") if args.backend == "both" else (args.backend,):
        print(f"{kind}: {args.trials} trials (seed {seed})", flush=True)
        row = await run(kind, args.trials, p=args.p, external=args.external, seed=seed)
        print(json.dumps(row, ensure_ascii=False, indent=1), flush=True)
        rows.append(row)
    total = sum(bad_total(r) for r in rows)
    print(f"lost, duplicated or inconsistent in all: {total}")
    if not args.no_save:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = ROOT / "bench" / "results" / f"crash-{stamp}.json"
        path.write_text(
            json.dumps({"seed": seed, "p": args.p, "rows": rows, "bad": total}, indent=2)
        )
        print(f"written {path.relative_to(ROOT)}")
    return 1 if total else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--launcher":
        launcher(sys.argv[2], sys.argv[3])
    else:
        sys.exit(asyncio.run(main()))
