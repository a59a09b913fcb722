"""Operations drills shared by the suite (small) and ``bench/`` (with figures), issue 10:

- ``restore_pg`` / ``restore_sqlite``: back a loaded database up the documented way
  (``pg_dump -Fc`` + ``pg_restore`` into a new database; SQLite's online backup API while
  the server holds the file), then ``kopilka ledger verify`` on the copy and compare every
  account's balance with the original;
- ``PrivateCluster``: a PostgreSQL cluster of our own (``initdb``/``pg_ctl`` as the
  ``postgres`` user, a free port), so that a drill can restart PostgreSQL without touching
  the shared server;
- ``restart_under_load``: tills keep selling through the app while that cluster restarts;
  how long nothing was acknowledged, whether ``/readyz`` went red and green again, and
  whether every acknowledged receipt is in the database afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from kopilka.api.app import HotFront, create_app
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.db import create_engine
from tests.conftest import Shop, new_shop, receipt

KOPILKA = str(Path(sys.executable).parent / "kopilka")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


# --- a sample to back up -------------------------------------------------------------------


async def load_sample(rt: Runtime, client: httpx.AsyncClient, *, members: int) -> Shop:
    """A program whose members each have points, a purchase that burns and earns, and a
    partial refund: every kind of ledger entry the till makes."""
    shop = await new_shop(rt, client, burn_max_percent="100", earn_percent="10")
    for i in range(members):
        m = await shop.customer(points=500 + i)
        body = receipt(f"s{i}", m.card, ("a", 1, "300.00"), ("b", 1, "200.00"), redeem_points="50")
        r = await shop.post("/purchases", body)
        assert r.status_code == 200, r.text
        if i % 2 == 0:
            r = await shop.post(
                f"/purchases/s{i}/refunds",
                {"refund_id": f"r{i}", "lines": [{"index": 1, "quantity": 1}]},
            )
            assert r.status_code == 200, r.text
    return shop


async def accounts_and_entries(url: str) -> tuple[list[tuple[Any, ...]], int]:
    """Every account's (id, balance, held, debt) and the number of ledger entries."""
    engine = create_engine(url)
    a = t.accounts
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(select(a.c.id, a.c.balance, a.c.held, a.c.debt).order_by(a.c.id))
            ).all()
            n = (
                await conn.execute(select(func.count()).select_from(t.ledger_entries))
            ).scalar_one()
    finally:
        await engine.dispose()
    return [tuple(Decimal(x) if not isinstance(x, int) else x for x in r) for r in rows], int(n)


def ledger_verify(url: str, *, in_process: bool = True) -> tuple[int, str]:
    """``kopilka ledger verify`` on ``url``, as an operator runs it: (exit code, what it
    said on stderr).  ``in_process``: the same ``main`` without a new interpreter (run it
    in a thread: it starts its own event loop)."""
    if in_process:
        import io

        from kopilka import cli

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main(["--db", url, "ledger", "verify"])
        return code, err.getvalue().strip()
    done = subprocess.run(
        [KOPILKA, "--db", url, "ledger", "verify"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.returncode, done.stderr.strip()


@dataclass
class Restored:
    backup_bytes: int
    backup_s: float
    restore_s: float
    verify_exit: int
    verify_said: str
    accounts: int
    entries: int
    same_balances: bool
    same_entries: bool
    extra: dict[str, Any] = field(default_factory=dict)


def _libpq_env(url: str) -> tuple[dict[str, str], str]:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    env = {
        **os.environ,
        "PGHOST": u.host or "127.0.0.1",
        "PGPORT": str(u.port or 5432),
        "PGUSER": u.username or "postgres",
    }
    if u.password:
        env["PGPASSWORD"] = u.password
    return env, str(u.database)


def _dump_and_restore(url: str, target: str, workdir: Path) -> tuple[Path, float, float]:
    env, name = _libpq_env(url)
    dump = workdir / f"{name}.dump"
    started = time.monotonic()
    subprocess.run(["pg_dump", "-Fc", "-f", str(dump), name], env=env, check=True, timeout=600)
    backup_s = time.monotonic() - started
    started = time.monotonic()
    subprocess.run(["createdb", target], env=env, check=True, timeout=60)
    subprocess.run(
        ["pg_restore", "--exit-on-error", "-d", target, str(dump)], env=env, check=True, timeout=600
    )
    return dump, backup_s, time.monotonic() - started


async def restore_pg(url: str, target: str, workdir: Path) -> Restored:
    """``pg_dump -Fc`` of ``url``, ``createdb target``, ``pg_restore`` into it, then verify
    and compare.  ``target`` is dropped by the caller."""
    dump, backup_s, restore_s = await asyncio.to_thread(_dump_and_restore, url, target, workdir)
    copy = url.rsplit("/", 1)[0] + "/" + target
    return await _compare(url, copy, dump.stat().st_size, backup_s, restore_s)


async def restore_sqlite(rt: Runtime, path: Path, workdir: Path) -> Restored:
    """SQLite's online backup while the app's own connection is open and has just written
    (the documented ``.backup``), then verify and compare."""
    copy = workdir / "backup.db"
    started = time.monotonic()
    src = sqlite3.connect(path)
    dst = sqlite3.connect(copy)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    backup_s = time.monotonic() - started
    return await _compare(rt.url, f"sqlite:///{copy}", copy.stat().st_size, backup_s, 0.0)


async def _compare(url: str, copy: str, size: int, backup_s: float, restore_s: float) -> Restored:
    code, said = await asyncio.to_thread(ledger_verify, copy)
    (orig, n_orig), (back, n_back) = await asyncio.gather(
        accounts_and_entries(url), accounts_and_entries(copy)
    )
    return Restored(
        size,
        round(backup_s, 3),
        round(restore_s, 3),
        code,
        said,
        len(back),
        n_back,
        orig == back,
        n_orig == n_back,
    )


async def append_only_survives(url: str) -> bool:
    """The restored database still refuses to rewrite the ledger (migration 0023's
    triggers came back with the dump)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(t.ledger_entries.update().values(amount=0))
    except Exception:
        return True
    finally:
        await engine.dispose()
    return False


# --- a PostgreSQL cluster of our own ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateCluster:
    """``initdb`` + ``pg_ctl`` in a temporary directory, owned by and run as ``postgres``
    (PostgreSQL refuses to run as root), on a free port, trust authentication."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kopilka-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, timeout=timeout, capture_output=True)

    def init(self) -> PrivateCluster:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=50 -c shared_buffers=32MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# --- tills selling while PostgreSQL restarts ------------------------------------------------


@dataclass
class RestartFigures:
    acknowledged: int = 0
    acknowledged_after_restart: int = 0
    lost: int = 0  # acknowledged receipts not in the database afterwards
    failed_attempts: int = 0  # answers other than 200 (then retried with the same id)
    statuses: dict[str, int] = field(default_factory=dict)
    unavailable_s: float = 0.0  # longest time no till got an acknowledgement
    readyz: list[str] = field(default_factory=list)  # red/green transitions seen
    verify_discrepancies: int = -1


async def restart_under_load(
    cluster: PrivateCluster, url: str, *, tills: int, down_s: float, run_s: float
) -> RestartFigures:
    """``tills`` tills each selling receipts in a loop (a retry reuses the receipt id)
    through one app; after a while the cluster stops (fast: connections are cut), stays
    down ``down_s`` and starts again; the drill runs ``run_s`` in all."""
    from kopilka.services.ledger_jobs import verify_ledger

    rt = Runtime(engine=create_engine(url, pool_size=5), url=url, pool_size=tills, cache_ttl_s=0.0)
    app = HotFront(create_app(rt, sweep_every_s=0))
    fig = RestartFigures()
    acked: list[str] = []
    last_ack = [time.monotonic()]
    restarted = [False]
    stop = asyncio.Event()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://drill",
        timeout=30.0,
    ) as client:
        shop = await new_shop(rt, client, burn_max_percent="100", earn_percent="10")
        members = [await shop.customer(points=10_000) for _ in range(tills)]

        async def till(n: int) -> None:
            i = 0
            while not stop.is_set():
                rid = f"t{n}-{i}"
                body = receipt(rid, members[n].card, ("a", 1, "100.00"), redeem_points="1")
                while True:
                    try:
                        r = await shop.post("/purchases", body)
                        status = str(r.status_code)
                    except Exception as exc:  # the app raised: counted, retried
                        status = type(exc).__name__
                    if status == "200":
                        break
                    fig.failed_attempts += 1
                    fig.statuses[status] = fig.statuses.get(status, 0) + 1
                    await asyncio.sleep(0.05)
                now = time.monotonic()
                fig.unavailable_s = max(fig.unavailable_s, now - last_ack[0])
                last_ack[0] = now
                acked.append(rid)
                if restarted[0]:
                    fig.acknowledged_after_restart += 1
                i += 1

        async def watch_ready() -> None:
            state = ""
            while not stop.is_set():
                try:
                    r = await client.get("/readyz")
                    now = "green" if r.status_code == 200 else "red"
                except Exception:  # the app raised instead of answering: red too
                    now = "red"
                if now != state:
                    fig.readyz.append(now)
                    state = now
                await asyncio.sleep(0.1)

        tasks = [asyncio.create_task(till(n)) for n in range(tills)]
        tasks.append(asyncio.create_task(watch_ready()))
        started = time.monotonic()
        await asyncio.sleep(min(2.0, run_s / 4))
        # a busy machine: make sure the tills sell and /readyz has said green before the stop
        for _ in range(600):
            if "green" in fig.readyz and len(acked) >= tills:
                break
            await asyncio.sleep(0.1)
        await asyncio.to_thread(cluster.stop, "fast")
        await asyncio.sleep(down_s)
        await asyncio.to_thread(cluster.start)
        restarted[0] = True
        await asyncio.sleep(max(0.0, run_s - (time.monotonic() - started)))
        stop.set()
        await asyncio.gather(*tasks)
        fig.acknowledged = len(acked)
        async with rt.engine.connect() as conn:
            stored = set(
                (
                    await conn.execute(
                        select(t.receipts.c.pos_receipt_id).where(
                            t.receipts.c.program_id == shop.program_id,
                            t.receipts.c.state == "confirmed",
                        )
                    )
                ).scalars()
            )
        fig.lost = len(set(acked) - stored)
        fig.verify_discrepancies = len(await verify_ledger(rt))
    await rt.close()
    return fig
