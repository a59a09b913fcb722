"""Hostile input, the full run (issue 10): schemathesis against the OpenAPI of the POS
and admin APIs of a real ``kopilka serve``, all phases (coverage: every boundary value
of every parameter; fuzzing; stateful, following the OpenAPI links calculate → confirm →
refund and register → confirm-phone), checks not_a_server_error,
response_schema_conformance, status_code_conformance, content_type_conformance.

Prints per database and API the generated test cases and the failures (must be none);
writes bench/results/hostile-<UTC>.json.  ``--min-requests`` (default 10,000) repeats
rounds with new seeds until that many test cases were generated per database.  The suite
runs a small version (tests/api/test_hostile_input.py).

    .venv/bin/python bench/hostile_input.py [--backend sqlite|pg|both] [--examples 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import PG_ADMIN  # noqa: E402
from tests.hostile import fuzz, served  # noqa: E402

from kopilka.store.migrate import upgrade  # noqa: E402


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_backend(backend: str, work: Path, examples: int, min_requests: int) -> dict[str, Any]:
    name = f"kopilka_hostile_{secrets.token_hex(4)}"
    if backend == "pg":
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{work / (name + '.db')}"
    try:
        upgrade(url)
        rounds: list[dict[str, Any]] = []
        total = 0
        with served(url, work, log_level="warning") as target:
            seed = 1
            while total < min_requests:
                for api in ("pos", "admin"):
                    r = fuzz(target, api, work, max_examples=examples, seed=seed, workers=2)
                    rounds.append({**r.summary(), "seed": seed})
                    total += r.test_cases
                    print(
                        f"{backend:6} {api:5} seed {seed}: {r.test_cases:6} test cases, "
                        f"{len(r.failures)} failures, {len(r.errors)} errors, {r.seconds:.0f} s",
                        flush=True,
                    )
                    for f in r.failures:
                        print("   ", f["code"], f["title"], f["operations"], flush=True)
                seed += 1
        return {
            "backend": backend,
            "test_cases": total,
            "failures": sum(len(r["failures"]) for r in rounds),
            "errors": sum(len(r["errors"]) for r in rounds),
            "rounds": rounds,
        }
    finally:
        if backend == "pg":
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["sqlite", "pg", "both"], default="both")
    ap.add_argument("--examples", type=int, default=20, help="per operation and phase")
    ap.add_argument("--min-requests", type=int, default=10_000)
    args = ap.parse_args()
    backends = ["sqlite", "pg"] if args.backend == "both" else [args.backend]
    out: dict[str, Any] = {"at": datetime.now(UTC).isoformat(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            out["runs"].append(run_backend(backend, Path(tmp), args.examples, args.min_requests))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = ROOT / "bench" / "results" / f"hostile-{stamp}.json"
    path.write_text(json.dumps(out, indent=1))
    for run in out["runs"]:
        print(
            f"{run['backend']}: {run['test_cases']} test cases, "
            f"{run['failures']} failures, {run['errors']} errors"
        )
    print(f"written {path.relative_to(ROOT)}")
    bad = any(run["failures"] or run["errors"] for run in out["runs"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
