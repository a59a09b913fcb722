"""The failover drill (docs/deployment.md): tills selling through the load balancer while
the primary is stopped at once and the standby promoted.

    tools/failover_drill.py [--tills 6] [--before 20] [--after 40] [--apps 2] [--keep]

It starts a private cluster (tools/cluster.py), seeds a program with members, runs the
tills (each: lookup for members, calculate, confirm; a failed call is retried with the same
receipt id, as a till does), stops the primary with ``pg_ctl -m immediate`` after
``--before`` seconds, promotes the standby, keeps selling for ``--after`` seconds, then
checks on the new primary that every receipt whose confirm was acknowledged is there,
confirmed, and that ``kopilka ledger verify`` passes.  It prints the figures and writes
them to ``bench/results/failover-<time>.json``.  The test suite runs a short version
(tests/deploy/test_failover.py).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "bench")]

from cluster import Cluster, kopilka_bin  # noqa: E402
from pos_load import API, Conn, Fixture, basket, make_catalogue, seed  # noqa: E402


@dataclass
class Drill:
    """What the tills saw.  Times are ``time.monotonic()`` seconds."""

    tag: str = ""  # every receipt id starts with it

    acked: dict[str, float] = field(default_factory=dict)  # receipt id -> when confirmed
    ok: list[tuple[float, float]] = field(default_factory=list)  # (started, ended) of writes
    failed: list[tuple[float, str]] = field(default_factory=list)
    lookups_ok: int = 0


async def till_loop(
    no: int, host: str, port: int, fx: Fixture, stop_at: float, drill: Drill, tag: str
) -> None:
    rng = random.Random(no)
    catalogue = make_catalogue(random.Random(7), size=300)
    conn = Conn(host, port, fx.keys[no % len(fx.keys)])
    customers = list(range(no, len(fx.cards), 64))
    seq = 0

    async def call(method: bytes, path: str, body: bytes = b"", write: bool = True) -> bytes:
        """Retry until the call succeeds: a till repeats a call with the same receipt id."""
        while True:
            t0 = time.monotonic()
            try:
                status, data = await asyncio.wait_for(conn.request(method, path, body), 10)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                conn.close()
                status, data = 0, repr(e).encode()
            t1 = time.monotonic()
            if 200 <= status < 300:
                if write:
                    drill.ok.append((t0, t1))
                return data
            drill.failed.append((t1, f"{status} {data[:120]!r}"))
            if t1 > stop_at + 30:  # the deployment did not come back: say so, do not hang
                raise RuntimeError(f"{method.decode()} {path} still failing: {status}")
            if status == 0 or status >= 500:
                await asyncio.sleep(0.1)
                continue
            raise RuntimeError(f"{method.decode()} {path} -> {status}: {data[:400]!r}")

    while time.monotonic() < stop_at:
        seq += 1
        rid = f"{tag}-{no:02d}-{seq:05d}"
        lines, _ = basket(rng, catalogue)
        body: dict[str, Any] = {"receipt_id": rid, "lines": lines}
        if customers and rng.random() < 0.7:
            card = fx.cards[rng.choice(customers)]
            await call(b"GET", f"{API}/customers/lookup?identifier={quote(card)}", write=False)
            drill.lookups_ok += 1
            body["identifier"] = card
        await call(b"POST", f"{API}/purchases/calculate", orjson.dumps(body))
        await call(b"POST", f"{API}/purchases/{rid}/confirm")
        drill.acked[rid] = time.monotonic()
    conn.close()


async def confirmed_on(url: str, tag: str) -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pos_receipt_id FROM receipts WHERE state = 'confirmed' "
            "AND pos_receipt_id LIKE $1",
            tag + "-%",
        )
    finally:
        await conn.close()
    return {r[0] for r in rows}


def seed_cluster(cluster: Cluster, *, tills: int, customers: int) -> Fixture:
    """A program, a store, ``tills`` terminals and members (bench/pos_load.py's fixture)."""
    fixture: Fixture = asyncio.run(
        seed(
            cluster.primary_url,
            customers=customers,
            terminals=tills,
            rng=random.Random(1),
            history=0,
        )
    )
    return fixture


def run_load(
    cluster: Cluster,
    fx: Fixture,
    *,
    tills: int,
    seconds: float,
    fail_over_after_s: float | None = None,
    tag: str = "",
) -> tuple[Drill, dict[str, float]]:
    """Tills selling through the balancer for ``seconds``; optionally a failover after
    ``fail_over_after_s``.  Returns what they saw and the failover's timings."""
    tag = tag or f"d{time.time_ns() % 10**9}"
    drill = Drill(tag=tag)
    timings: dict[str, float] = {}

    async def scenario() -> None:
        stop_at = time.monotonic() + seconds
        loops = [
            asyncio.create_task(till_loop(i, "127.0.0.1", cluster.lb_port, fx, stop_at, drill, tag))
            for i in range(tills)
        ]
        if fail_over_after_s is not None:
            await asyncio.sleep(fail_over_after_s)
            timings.update(await asyncio.to_thread(cluster.fail_over))
        await asyncio.gather(*loops)

    asyncio.run(scenario())
    return drill, timings


def run_drill(
    cluster: Cluster,
    *,
    tills: int = 6,
    before_s: float = 5.0,
    after_s: float = 8.0,
    customers: int = 300,
    fx: Fixture | None = None,
) -> dict[str, Any]:
    """Load, fail over in the middle, check.  The cluster must be started."""
    if fx is None:
        fx = seed_cluster(cluster, tills=tills, customers=customers)
    drill, timings = run_load(
        cluster, fx, tills=tills, seconds=before_s + after_s, fail_over_after_s=before_s
    )
    t_stop = timings["stop_began"]
    ends = sorted(end for _, end in drill.ok)
    # Unavailability: the longest time in which no till completed a write (calculate or
    # confirm); outside the failover, successive writes are milliseconds apart.
    gaps = [(b - a, a) for a, b in itertools.pairwise(ends)]
    unavailable_s, gap_began = max(gaps) if gaps else (float("nan"), t_stop)
    after_stop = [end for end in ends if end > timings["primary_stopped"]]
    first_after = after_stop[0] if after_stop else float("nan")
    on_new_primary = asyncio.run(confirmed_on(cluster.primary_url, drill.tag))
    lost = sorted(set(drill.acked) - on_new_primary)
    verify = subprocess.run(
        [kopilka_bin(), "--db", cluster.primary_url, "ledger", "verify"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return {
        "tills": tills,
        "apps": cluster.apps,
        "acknowledged_receipts": len(drill.acked),
        "acknowledged_before_failover": sum(1 for t in drill.acked.values() if t < t_stop),
        "acknowledged_after_promotion": sum(
            1 for t in drill.acked.values() if t > timings["standby_promoted"]
        ),
        "confirmed_on_new_primary": len(on_new_primary),
        "lost": lost,
        "unavailable_s": round(unavailable_s, 2),
        "unavailable_began_s_after_stop": round(gap_began - t_stop, 2),
        "primary_stop_s": round(timings["primary_stopped"] - t_stop, 2),
        "promote_s": round(timings["standby_promoted"] - timings["primary_stopped"], 2),
        "first_write_after_stop_s": round(first_after - t_stop, 2),
        "failed_calls": len(drill.failed),
        "failed_kinds": sorted({k.split(" ")[0] for _, k in drill.failed}),
        "lookups_ok": drill.lookups_ok,
        "ledger_verify_rc": verify.returncode,
        "ledger_verify": (verify.stdout + verify.stderr).strip()[-400:],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--tills", type=int, default=6)
    p.add_argument("--before", type=float, default=20.0, help="seconds of load before")
    p.add_argument("--after", type=float, default=40.0, help="seconds of load after")
    p.add_argument("--apps", type=int, default=2)
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--keep", action="store_true", help="leave the cluster's files")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="kopilka-drill-")), apps=args.apps)
    cluster.start()
    try:
        result = run_drill(
            cluster,
            tills=args.tills,
            before_s=args.before,
            after_s=args.after,
            customers=args.customers,
        )
    finally:
        cluster.stop()
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if not args.no_save:
        out = ROOT / "bench" / "results" / f"failover-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"written to {out}")
    if not args.keep:
        import shutil

        shutil.rmtree(cluster.dir, ignore_errors=True)
    return 0 if not result["lost"] and result["ledger_verify_rc"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
