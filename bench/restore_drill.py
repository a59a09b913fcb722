"""The restore drill (issue 10), with figures: load a fresh database through the app
(members with points, purchases that burn and earn, partial refunds), back it up the way
docs/operations.md says (PostgreSQL: ``pg_dump -Fc`` → ``createdb`` → ``pg_restore``;
SQLite: the online backup API), run ``kopilka ledger verify`` on the copy (a new process,
as an operator would), compare every account's balance, held and debt with the original
and check that the copy's ledger is still append-only.  Writes
bench/results/restore-<UTC>.json.

    .venv/bin/python bench/restore_drill.py [--members 2000] [--backend sqlite|pg|both]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.drills import (  # noqa: E402
    append_only_survives,
    ledger_verify,
    load_sample,
    restore_pg,
    restore_sqlite,
)

from kopilka.api.app import HotFront, create_app  # noqa: E402
from kopilka.services.runtime import Runtime  # noqa: E402
from kopilka.store.migrate import upgrade  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def drill(kind: str, members: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"kopilka-restore-{kind}-"))
    names: list[str] = []
    if kind == "sqlite":
        url = f"sqlite:///{workdir}/live.db"
    else:
        names = [
            f"kopilka_restore_{secrets.token_hex(4)}",
            f"kopilka_restored_{secrets.token_hex(4)}",
        ]
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{names[0]}"')
        await admin.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + names[0]
    try:
        await asyncio.to_thread(upgrade, url)
        rt = Runtime.from_url(url, cache_ttl_s=5.0)
        app = HotFront(create_app(rt, sweep_every_s=0))
        started = time.monotonic()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://d"
        ) as c:
            await load_sample(rt, c, members=members)
        load_s = time.monotonic() - started
        if kind == "sqlite":
            got = await restore_sqlite(rt, workdir / "live.db", workdir)
            copy = f"sqlite:///{workdir}/backup.db"
        else:
            got = await restore_pg(url, names[1], workdir)
            copy = url.rsplit("/", 1)[0] + "/" + names[1]
        await rt.close()
        # the operator's own command, in a new process, on the copy
        code, said = await asyncio.to_thread(ledger_verify, copy, in_process=False)
        return {
            "backend": kind,
            "members": members,
            "load_s": round(load_s, 1),
            **dataclasses.asdict(got),
            "kopilka_ledger_verify_process": {"exit": code, "said": said},
            "append_only_after_restore": await append_only_survives(copy),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if names:
            admin = await asyncpg.connect(PG_ADMIN)
            for n in names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
            await admin.close()


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=2000)
    ap.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    rows = []
    for kind in ("sqlite", "pg") if args.backend == "both" else (args.backend,):
        row = await drill(kind, args.members)
        print(json.dumps(row, ensure_ascii=False), flush=True)
        rows.append(row)
    ok = all(
        r["verify_exit"] == 0
        and r["same_balances"]
        and r["same_entries"]
        and r["kopilka_ledger_verify_process"]["exit"] == 0
        and r["append_only_after_restore"]
        for r in rows
    )
    print("restore drill: " + ("green" if ok else "RED"))
    if not args.no_save:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = ROOT / "bench" / "results" / f"restore-{stamp}.json"
        path.write_text(json.dumps({"rows": rows, "green": ok}, indent=2))
        print(f"written {path.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
