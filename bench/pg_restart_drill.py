"""PostgreSQL restarts under load (issue 10), with figures: a private cluster (initdb +
pg_ctl on a free port, never the shared server), tills selling through the app in a loop
(a retry reuses the receipt id), the cluster stopped (``-m fast``: connections cut) and
started again, several rounds.  Reports per round the longest time no till got an
acknowledgement, the failed attempts by status, /readyz's red/green transitions, and the
acknowledged receipts missing afterwards (must be 0).  Writes
bench/results/pg-restart-<UTC>.json.

    .venv/bin/python bench/pg_restart_drill.py [--rounds 3] [--tills 8] [--down-s 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.drills import PrivateCluster, restart_under_load  # noqa: E402

from kopilka.store.migrate import upgrade  # noqa: E402


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tills", type=int, default=8)
    ap.add_argument("--down-s", type=float, default=3.0)
    ap.add_argument("--run-s", type=float, default=15.0)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    cluster = PrivateCluster().init()
    cluster.start()
    rows = []
    try:
        await asyncio.to_thread(upgrade, cluster.admin_url)
        for n in range(args.rounds):
            got = await restart_under_load(
                cluster, cluster.admin_url, tills=args.tills, down_s=args.down_s, run_s=args.run_s
            )
            row = {"round": n + 1, "down_s": args.down_s, **dataclasses.asdict(got)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        cluster.destroy()
    lost = sum(r["lost"] for r in rows) + sum(r["verify_discrepancies"] for r in rows)
    print(f"lost acknowledged receipts and ledger discrepancies in all: {lost}")
    if not args.no_save:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = ROOT / "bench" / "results" / f"pg-restart-{stamp}.json"
        path.write_text(json.dumps({"rows": rows, "lost": lost}, indent=2))
        print(f"written {path.relative_to(ROOT)}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
