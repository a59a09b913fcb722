"""Hostile input (issue 10): schemathesis against the published OpenAPI of the POS and
admin APIs, served by a real server process (``kopilka serve``) on a free port.

``served(url)`` starts the server on a migrated database holding one shop (program,
partner, store, terminal) and an admin token, and yields a ``Target``; ``fuzz(target,
api, ...)`` runs the schemathesis CLI (coverage, fuzzing and stateful phases; the
stateful phase follows the OpenAPI links calculate → confirm → refund and register →
confirm-phone) with the four checks of the issue and returns what it counted.

Used by ``tests/api/test_hostile_input.py`` (a small budget, in the suite) and
``bench/hostile_input.py`` (10,000 requests and more, figures in ``bench/results/``).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.processes import stop

CHECKS = (
    "not_a_server_error,response_schema_conformance,"
    "status_code_conformance,content_type_conformance"
)
PATHS = {"pos": "^/api/pos/v1/", "admin": "^/api/admin/v1/"}


@dataclass(frozen=True)
class Target:
    base_url: str
    pos_key: str
    admin_key: str
    log_path: Path  # the server's stdout and stderr


@dataclass(frozen=True)
class FuzzResult:
    api: str
    test_cases: int
    failures: list[dict[str, Any]]
    errors: list[Any]
    operations: int
    seconds: float
    exit_code: int
    output: str

    def summary(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "test_cases": self.test_cases,
            "operations": self.operations,
            "failures": self.failures,
            "errors": self.errors,
            "seconds": round(self.seconds, 1),
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _prepare(url: str) -> tuple[str, str]:
    from kopilka.services import admin
    from kopilka.services.runtime import Runtime
    from tests.conftest import new_shop

    rt = Runtime.from_url(url)
    try:
        async with httpx.AsyncClient() as unused:
            shop = await new_shop(rt, unused)
        for _ in range(3):  # customers the lookups can find
            await shop.customer(100)
        admin_key = await admin.do_add_token(rt, name=f"fuzz-{secrets.token_hex(3)}")
    finally:
        await rt.close()
    return shop.key, admin_key


@contextmanager
def served(url: str, workdir: Path, *, log_level: str = "info") -> Iterator[Target]:
    """A real ``kopilka serve`` on a free port against ``url`` (already migrated)."""
    pos_key, admin_key = asyncio.run(_prepare(url))
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    env = {**os.environ, "KOPILKA_LOG_FORMAT": "json"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from kopilka.cli import main; sys.exit(main())",
                "--db",
                url,
                "serve",
                "--port",
                str(port),
                "--workers",
                "1",
                "--log-level",
                log_level,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start: " + log_path.read_text())
                time.sleep(0.2)
            from tests.logscan import watch_file

            watch_file(log_path)  # the server's log lines are scanned for personal data
            yield Target(base, pos_key, admin_key, log_path)
        finally:
            stop(proc)


def fuzz(
    target: Target,
    api: str,
    workdir: Path,
    *,
    max_examples: int,
    seed: int = 1,
    max_time_s: int | None = None,
    phases: str = "coverage,fuzzing,stateful",
    workers: int = 1,
) -> FuzzResult:
    """Run schemathesis over one API; the report's counts as a ``FuzzResult``."""
    key = target.pos_key if api == "pos" else target.admin_key
    report = workdir / f"schemathesis-{api}-{secrets.token_hex(3)}.json"
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [
        str(exe),
        "run",
        target.base_url + "/openapi.json",
        "--include-path-regex",
        PATHS[api],
        "-H",
        f"Authorization: Bearer {key}",
        "-c",
        CHECKS,
        "-n",
        str(max_examples),
        "--seed",
        str(seed),
        "--phases",
        phases,
        "-w",
        str(workers),
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    if max_time_s is not None:
        cmd += ["--max-time", str(max_time_s)]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, check=False)
    seconds = time.monotonic() - started
    (workdir / f"schemathesis-{api}.out").write_text(done.stdout + done.stderr)
    data = json.loads(report.read_text())
    return FuzzResult(
        api=api,
        test_cases=int(data["test_cases"]["generated"]),
        failures=list(data["failures"]),
        errors=list(data["errors"]),
        operations=int((data.get("operations") or {}).get("tested", 0)),
        seconds=seconds,
        exit_code=done.returncode,
        output=done.stdout + done.stderr,
    )
