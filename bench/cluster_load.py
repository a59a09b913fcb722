"""The POS load benchmark against the multi-node deployment (tools/cluster.py).

    .venv/bin/python bench/cluster_load.py --apps 1,2,4 -d 20     # receipts/s, p50/p99
    .venv/bin/python bench/cluster_load.py --apps 2 --soak 600     # per-minute soak

For each number of app processes it starts a private cluster (primary + streaming
standby with synchronous ``remote_apply`` replication, HAProxy, N ``kopilka serve``
processes of one uvicorn process each, one worker), seeds bench/pos_load.py's fixture and
drives bench/pos_load.py's mixed load (lookup, calculate, confirm) through HAProxy.  With
``--compare-replica`` the largest N runs twice more: lookups on the standby, and lookups
on the primary (``KOPILKA_DATABASE_REPLICA_URL`` unset).

``--soak S`` runs one cluster for S seconds and prints, each minute, the receipts/s, the
confirm p50/p99 and the resident memory of the app processes, so that a leak or a slow
drift shows.  Results go to ``bench/results/cluster-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "bench")]

from cluster import Cluster  # noqa: E402
from pos_load import drive, seed  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return round(total / 1024, 1)


def load_args(args: argparse.Namespace, **over: Any) -> argparse.Namespace:
    base = dict(
        seed=7,
        member_share=0.7,
        redeem_share=args.redeem_share,
        tills=args.tills,
        warmup=args.warmup,
        duration=args.duration,
        confirm_n=0,
    )
    return argparse.Namespace(**{**base, **over})


def start(apps: int, *, replica_lookups: bool = True) -> Cluster:
    env = {} if replica_lookups else {"KOPILKA_DATABASE_REPLICA_URL": ""}
    return Cluster(
        Path(tempfile.mkdtemp(prefix="kopilka-bench-cluster-")), apps=apps, workers=1, env=env
    ).start()


def figures(r: dict[str, Any]) -> dict[str, Any]:
    calls = r["mixed"]["calls"]
    return {
        "receipts_per_s": r["mixed"]["receipts_per_s"],
        **{
            f"{c}_p50_p99_ms": [calls[c].get("p50_ms"), calls[c].get("p99_ms")]
            for c in ("lookup", "calculate", "confirm")
            if c in calls
        },
        "errors": r["errors"]["count"],
    }


def one_run(apps: int, args: argparse.Namespace, *, replica_lookups: bool) -> dict[str, Any]:
    c = start(apps, replica_lookups=replica_lookups)
    try:
        fx = asyncio.run(
            seed(
                c.primary_url,
                customers=args.customers,
                terminals=args.tills,
                rng=random.Random(1),
                history=0,
            )
        )
        app_pid = next(p.pid for p in c.procs if p.name == "app1")
        r = asyncio.run(drive("127.0.0.1", c.lb_port, app_pid, fx, load_args(args)))
    finally:
        c.stop()
        shutil.rmtree(c.dir, ignore_errors=True)
    out = {"apps": apps, "replica_lookups": replica_lookups, **figures(r)}
    print(json.dumps(out), flush=True)
    return out


def soak(args: argparse.Namespace) -> dict[str, Any]:
    apps = int(args.apps.split(",")[0])
    c = start(apps)
    minutes: list[dict[str, Any]] = []
    try:
        fx = asyncio.run(
            seed(
                c.primary_url,
                customers=args.customers,
                terminals=args.tills,
                rng=random.Random(1),
                history=0,
            )
        )
        app_pids = [p.pid for p in c.procs if p.name.startswith("app")]
        t_end = time.monotonic() + args.soak
        n = 0
        while time.monotonic() < t_end:
            n += 1
            seconds = min(60.0, t_end - time.monotonic())
            # redemptions by number would use balances known at the start of the minute
            la = load_args(args, warmup=0.0, duration=seconds, seed=7 + n, redeem_share=0.0)
            r = asyncio.run(drive("127.0.0.1", c.lb_port, app_pids[0], fx, la))
            row = {"minute": n, **figures(r), "apps_rss_mb": sum(rss_mb(p) for p in app_pids)}
            minutes.append(row)
            print(json.dumps(row), flush=True)
    finally:
        c.stop()
        shutil.rmtree(c.dir, ignore_errors=True)
    return {"apps": apps, "seconds": args.soak, "minutes": minutes}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--apps", default="1,2,4", help="app process counts, comma-separated")
    p.add_argument("-c", "--tills", type=int, default=16)
    p.add_argument("-d", "--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--redeem-share", type=float, default=0.2)
    p.add_argument(
        "--compare-replica", action="store_true", help="the largest N again, lookups on the primary"
    )
    p.add_argument("--soak", type=float, default=0.0, help="seconds of soak (0: none)")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    result: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds")}
    if args.soak:
        result["soak"] = soak(args)
    else:
        counts = [int(x) for x in args.apps.split(",")]
        result["runs"] = [one_run(n, args, replica_lookups=True) for n in counts]
        if args.compare_replica:
            result["runs"].append(one_run(max(counts), args, replica_lookups=False))
    if not args.no_save:
        out = ROOT / "bench" / "results" / f"cluster-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
