"""A local multi-node Kopilka deployment, for tests, drills and demos (docs/deployment.md).

    tools/cluster.py start [--dir DIR] [--apps 2] [--workers 2] [--pgbouncer] [--no-replica]
    tools/cluster.py status --dir DIR
    tools/cluster.py failover --dir DIR     # stop the primary (immediate), promote the standby
    tools/cluster.py stop --dir DIR

What ``start`` builds, every part on free ports of 127.0.0.1 and under one directory:

- a PostgreSQL primary (``initdb``; ``wal_level=replica``; synchronous replication with
  ``synchronous_commit=remote_apply``, deploy/postgresql.primary.conf), database
  ``kopilka`` migrated with ``kopilka migrate``;
- a streaming hot standby (``pg_basebackup -R``);
- optionally PgBouncer in front of the primary (session pooling, deploy/pgbouncer.ini.tmpl);
- N ``kopilka serve`` processes, one uvicorn process each.  Their database URL lists both
  servers with ``target_session_attrs=read-write``, so after a failover they reconnect to
  whichever accepts writes; ``KOPILKA_DATABASE_REPLICA_URL`` names the standby for lookups;
- HAProxy in front of them, checking ``/readyz`` (deploy/haproxy.cfg.tmpl);
- two ``kopilka worker`` processes on the same outbox (``FOR UPDATE SKIP LOCKED`` and
  leases keep them from sending a message twice); extra worker options are passed through.

The state (ports, process ids, URLs) is written to ``DIR/cluster.json``; ``stop`` reads it.
PostgreSQL refuses to run as root: when run as root, its commands run as ``postgres``.
Nothing here needs the network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PG_BIN = Path(os.environ.get("KOPILKA_PG_BIN", "/usr/lib/postgresql/15/bin"))
DBNAME = "kopilka"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def kopilka_bin() -> str:
    here = Path(sys.executable).parent / "kopilka"
    return str(here if here.exists() else ROOT / ".venv" / "bin" / "kopilka")


def as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL and PgBouncer refuse root: run them as ``postgres`` when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def run(cmd: list[str], *, log: Path | None = None, timeout: float = 120) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if log is not None:
        with log.open("a") as f:
            f.write(f"$ {' '.join(cmd)}\n{out.stdout}{out.stderr}")
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}{out.stderr}")


def pg_url(port: int, db: str = DBNAME) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{db}"


def multi_host_url(ports: list[int], db: str = DBNAME) -> str:
    """One URL for a primary and its standbys: the driver picks the one accepting writes."""
    hosts = "&".join(f"host=127.0.0.1:{p}" for p in ports)
    return f"postgresql://postgres@/{db}?{hosts}&target_session_attrs=read-write"


def primary_settings() -> list[tuple[str, str]]:
    """deploy/postgresql.primary.conf as (name, value) pairs."""
    out = []
    for line in (DEPLOY / "postgresql.primary.conf").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, value = line.partition("=")
            out.append((name.strip(), value.strip().strip("'")))
    return out


def primary_options() -> list[str]:
    """The settings a primary starts with, as ``-c`` options (the standby's copy made by
    pg_basebackup does not inherit them).  The synchronous ones are set once the standby
    streams (``ALTER SYSTEM``): before, every commit would wait for it."""
    opts = []
    for name, value in primary_settings():
        if not name.startswith("synchronous"):
            opts += ["-c", f"{name}={value}"]
    return opts


@dataclass
class Proc:
    name: str
    pid: int
    port: int | None = None
    log: str = ""


@dataclass
class Cluster:
    dir: Path
    apps: int = 2
    workers: int = 2
    pgbouncer: bool = False
    replica: bool = True
    fsync: bool = True  # tests turn it off: faster, and an immediate stop loses nothing
    worker_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    primary_port: int = 0
    standby_port: int = 0
    bouncer_port: int = 0
    lb_port: int = 0
    procs: list[Proc] = field(default_factory=list)
    promoted: bool = False
    dbname: str = DBNAME

    # --- paths and URLs -------------------------------------------------------------------

    @property
    def primary_dir(self) -> Path:
        return self.dir / "pg-primary"

    @property
    def standby_dir(self) -> Path:
        return self.dir / "pg-standby"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def primary_url(self) -> str:
        """The server that accepts writes now (the standby after ``fail_over``)."""
        return pg_url(self.standby_port if self.promoted else self.primary_port)

    @property
    def replica_url(self) -> str:
        return pg_url(self.standby_port)

    @property
    def app_db_url(self) -> str:
        if self.pgbouncer:
            return pg_url(self.bouncer_port, self.dbname)
        return multi_host_url([self.primary_port, self.standby_port])

    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    def app_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p.port}" for p in self.procs if p.name.startswith("app")]

    # --- start ------------------------------------------------------------------------------

    def start(self) -> Cluster:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)  # postgres must reach its data directories
        self.logs.mkdir(exist_ok=True)
        self.logs.chmod(0o777)
        try:
            self.start_databases()
            if self.pgbouncer:
                self.start_pgbouncer()
            self.start_apps()
            self.start_balancer()
            self.start_workers()
            self.wait_ready()
        except BaseException:
            self.save()
            self.stop()
            raise
        self.save()
        return self

    def start_databases(self) -> None:
        log = self.logs / "postgres-setup.log"
        self.primary_port, self.standby_port = free_port(), free_port()
        self.primary_dir.mkdir(mode=0o700)
        chown_postgres(self.primary_dir)
        run(
            as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.primary_dir),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ]
            ),
            log=log,
        )
        hba = self.primary_dir / "pg_hba.conf"
        with hba.open("a") as f:  # pg_basebackup and the standby's stream
            f.write("host replication postgres 127.0.0.1/32 trust\n")
        self.pg_start(self.primary_dir, self.primary_port, primary_options())
        run(
            as_postgres(
                [
                    str(PG_BIN / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.primary_port),
                    "-U",
                    "postgres",
                    DBNAME,
                ]
            ),
            log=log,
        )
        if self.replica:
            self.standby_dir.mkdir(mode=0o700)
            chown_postgres(self.standby_dir)
            run(
                as_postgres(
                    [
                        str(PG_BIN / "pg_basebackup"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(self.primary_port),
                        "-U",
                        "postgres",
                        "-D",
                        str(self.standby_dir),
                        "-R",
                        "-X",
                        "stream",
                        "--checkpoint=fast",
                        "--no-sync",
                    ]
                ),
                log=log,
            )
            self.pg_start(self.standby_dir, self.standby_port, [])
            self.wait_streaming()
            for name, value in primary_settings():
                if name.startswith("synchronous"):
                    self.psql(self.primary_port, f"ALTER SYSTEM SET {name} = '{value}'")
            self.psql(self.primary_port, "SELECT pg_reload_conf()")
        run([kopilka_bin(), "--db", pg_url(self.primary_port), "migrate"], log=log, timeout=300)

    def pg_start(self, data: Path, port: int, options: list[str]) -> None:
        opts = " ".join(
            [
                "-p",
                str(port),
                "-k",
                str(data),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
                "-c",
                f"fsync={'on' if self.fsync else 'off'}",
                *(f"'{o}'" if o != "-c" else o for o in options),
            ]
        )
        run(
            as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    opts,
                    "-l",
                    str(self.logs / f"{data.name}.log"),
                    "-w",
                    "start",
                ]
            )
        )

    def psql(self, port: int, sql: str, db: str = "postgres") -> str:
        out = subprocess.run(
            as_postgres(
                [
                    str(PG_BIN / "psql"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    "-d",
                    db,
                    "-Atc",
                    sql,
                ]
            ),
            capture_output=True,
            text=True,
            timeout=30,
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return out.stdout.strip()

    def wait_streaming(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
            if self.psql(self.primary_port, sql) == "1":
                return
            time.sleep(0.2)
        raise RuntimeError("the standby did not start streaming")

    def connections_needed(self) -> int:
        """Session pooling: every pooled client connection holds a server connection, so
        the server pool covers all pools: per app process 8 (KOPILKA_DB_POOL here) + 5,
        per worker 10 + 20 (their defaults), and a few for us."""
        return self.apps * 13 + self.workers * 30 + 5

    def start_pgbouncer(self) -> None:
        bdir = self.dir / "pgbouncer"
        bdir.mkdir(exist_ok=True)
        self.bouncer_port = free_port()
        (bdir / "userlist.txt").write_text('"postgres" ""\n')
        text = string.Template((DEPLOY / "pgbouncer.ini.tmpl").read_text()).substitute(
            dbname=self.dbname,
            pg_host="127.0.0.1",
            pg_port=self.primary_port,
            port=self.bouncer_port,
            dir=bdir,
            pool_size=self.connections_needed(),
        )
        ini = bdir / "pgbouncer.ini"
        ini.write_text(text)
        for p in (bdir, ini, bdir / "userlist.txt"):
            chown_postgres(p)
        self.spawn("pgbouncer", as_postgres(["pgbouncer", str(ini)]), port=self.bouncer_port)
        self.wait_port(self.bouncer_port)

    def app_env(self) -> dict[str, str]:
        env = {**os.environ, "KOPILKA_DB_POOL": "8", "KOPILKA_LOG_LEVEL": "warning", **self.env}
        env.pop("KOPILKA_DATABASE_REPLICA_URL", None)
        if self.replica:
            env["KOPILKA_DATABASE_REPLICA_URL"] = self.env.get(
                "KOPILKA_DATABASE_REPLICA_URL", self.replica_url
            )
        return env

    def start_apps(self) -> None:
        for i in range(self.apps):
            port = free_port()
            cmd = [
                kopilka_bin(),
                "--db",
                self.app_db_url,
                "serve",
                "--port",
                str(port),
                "--workers",
                "1",
            ]
            self.spawn(f"app{i + 1}", cmd, port=port, env=self.app_env())
        for p in self.procs:
            if p.name.startswith("app"):
                self.wait_http(f"http://127.0.0.1:{p.port}/readyz")

    def start_balancer(self) -> None:
        self.lb_port = free_port()
        servers = "\n".join(
            f"    server {p.name} 127.0.0.1:{p.port} check"
            for p in self.procs
            if p.name.startswith("app")
        )
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(
            string.Template((DEPLOY / "haproxy.cfg.tmpl").read_text()).substitute(
                pidfile=self.dir / "haproxy.pid", bind=f"127.0.0.1:{self.lb_port}", servers=servers
            )
        )
        self.spawn("haproxy", ["haproxy", "-db", "-f", str(cfg)], port=self.lb_port)
        self.wait_http(f"{self.lb_url}/readyz")

    def start_workers(self) -> None:
        for i in range(self.workers):
            cmd = [kopilka_bin(), "--db", self.app_db_url, "worker", *self.worker_args]
            self.spawn(f"worker{i + 1}", cmd, env=self.app_env())

    def spawn(
        self,
        name: str,
        cmd: list[str],
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> Proc:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                cwd=self.dir,
            )
        p = Proc(name, proc.pid, port, str(log))
        self.procs.append(p)
        self.save()
        return p

    def wait_port(self, port: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            time.sleep(0.1)
        raise RuntimeError(f"nothing listens on {port}")

    def wait_http(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"{url} did not answer 200 in {timeout} s: {last}\n{self.tail_logs()}")

    def wait_ready(self) -> None:
        for url in self.app_urls():
            self.wait_http(url + "/readyz")

    def tail_logs(self, lines: int = 20) -> str:
        out = []
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    # --- failover ---------------------------------------------------------------------------

    def fail_over(self) -> dict[str, float]:
        """Stop the primary at once (as a crash would) and promote the standby.  Returns
        when each step finished, in ``time.monotonic()`` seconds."""
        t0 = time.monotonic()
        run(
            as_postgres(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.primary_dir), "-m", "immediate", "stop"]
            )
        )
        t1 = time.monotonic()
        run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.standby_dir), "-w", "promote"]))
        t2 = time.monotonic()
        self.promoted = True
        if self.pgbouncer:  # PgBouncer follows the new primary on RELOAD
            ini = self.dir / "pgbouncer" / "pgbouncer.ini"
            ini.write_text(
                ini.read_text().replace(f"port={self.primary_port}", f"port={self.standby_port}")
            )
            # its admin console: a signal would reach runuser, not PgBouncer
            self.psql(self.bouncer_port, "RELOAD", db="pgbouncer")
        self.save()
        return {"stop_began": t0, "primary_stopped": t1, "standby_promoted": t2}

    # --- state and stop ---------------------------------------------------------------------

    def save(self) -> None:
        data = asdict(self)
        data["dir"] = str(self.dir)
        data["urls"] = {
            "balancer": self.lb_url,
            "app_db": self.app_db_url,
            "primary": self.primary_url,
            "replica": self.replica_url,
        }
        (self.dir / "cluster.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, dir: Path) -> Cluster:
        data = json.loads((dir / "cluster.json").read_text())
        data.pop("urls", None)
        procs = [Proc(**p) for p in data.pop("procs")]
        return cls(**{**data, "dir": Path(data["dir"]), "procs": procs})

    def stop_proc(self, p: Proc, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive(p.pid):
            time.sleep(0.1)
        if alive(p.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Everything at once: TERM to every process, KILL what is left after 10 s, then
        both PostgreSQL servers (fast shutdown) side by side."""
        for p in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p.pid) for p in self.procs):
            time.sleep(0.1)
        for p in self.procs:
            if alive(p.pid):
                self.stop_proc(p, signal.SIGKILL, timeout=2)
        stops = [
            subprocess.Popen(
                as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for data in (self.primary_dir, self.standby_dir)
            if (data / "postmaster.pid").exists()
        ]
        for proc in stops:
            proc.wait(timeout=60)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {p.name: alive(p.pid) for p in self.procs}
        for name, data in (("primary", self.primary_dir), ("standby", self.standby_dir)):
            out[name] = (data / "postmaster.pid").exists()
        return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):  # reap our own children
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="tools/cluster.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--dir", type=Path, default=None, help="default: a new /tmp/kopilka-cluster-*")
    s.add_argument("--apps", type=int, default=2)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--pgbouncer", action="store_true")
    s.add_argument("--no-fsync", dest="fsync", action="store_false", help="faster, for tests")
    s.add_argument("--no-replica", dest="replica", action="store_false")
    s.add_argument(
        "--worker-arg",
        action="append",
        default=[],
        help="passed to every `kopilka worker` (repeatable)",
    )
    for name in ("status", "failover", "stop"):
        c = sub.add_parser(name)
        c.add_argument("--dir", type=Path, required=True)
    args = p.parse_args(argv)
    if args.cmd == "start":
        d = args.dir or Path(tempfile.mkdtemp(prefix="kopilka-cluster-"))
        c = Cluster(
            d,
            apps=args.apps,
            workers=args.workers,
            pgbouncer=args.pgbouncer,
            replica=args.replica,
            fsync=args.fsync,
            worker_args=args.worker_arg,
        ).start()
        print(
            json.dumps(
                {
                    "dir": str(d),
                    "balancer": c.lb_url,
                    "app_db": c.app_db_url,
                    "primary": c.primary_url,
                    "replica": c.replica_url,
                },
                indent=2,
            )
        )
        return 0
    c = Cluster.load(args.dir)
    if args.cmd == "status":
        print(json.dumps(c.status(), indent=2))
    elif args.cmd == "failover":
        t = c.fail_over()
        print(
            f"primary stopped in {t['primary_stopped'] - t['stop_began']:.2f} s, "
            f"standby promoted {t['standby_promoted'] - t['primary_stopped']:.2f} s later"
        )
    else:
        c.stop()
        print(f"stopped; files are in {c.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
