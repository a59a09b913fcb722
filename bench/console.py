#!/usr/bin/env python3
"""Console page timings on the demo data: every page the owner's menu reaches.

Loads the demo into a fresh SQLite file (or uses ``--db``), starts ``kopilka serve``,
signs in as the demo owner and crawls the console from the home page two links deep
(only GET links under /admin and /cashier; no buttons are pressed).  Each page is then
fetched ``--repeat`` times in turn over one keep-alive connection; it prints the
server-side wall time per page (time to the last byte, p50 and p99) and, as the baseline
measured in the same run, the same figures for ``/health`` (the app's cheapest route) and
the login page (no session).

    .venv/bin/python bench/console.py                 # demo on a temporary SQLite
    .venv/bin/python bench/console.py --db postgresql://postgres@127.0.0.1/kopilka_demo

This is a benchmark, not a test: it prints and saves figures, and never fails on one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
KOPILKA = str(Path(sys.executable).with_name("kopilka"))
RESULTS = ROOT / "bench" / "results"
LINK = re.compile(r'href="(/(?:admin|cashier)[^"#]*)"')
SKIP = ("/admin/logout", "export", ".csv", ".xlsx", "/admin/login")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def crawl(client: httpx.Client, starts: list[str], depth: int, limit: int) -> list[str]:
    seen: dict[str, None] = dict.fromkeys(starts)
    frontier = list(starts)
    for _ in range(depth):
        nxt: list[str] = []
        for path in frontier:
            r = client.get(path)
            if r.status_code != 200 or "text/html" not in r.headers.get("content-type", ""):
                continue
            for link in LINK.findall(r.text):
                link = link.replace("&amp;", "&")
                if any(s in link for s in SKIP) or link in seen:
                    continue
                # One example of each page kind: /admin/customers/123 and /124 are alike.
                kind = re.sub(r"\d+", "N", link.split("?")[0])
                if any(re.sub(r"\d+", "N", p.split("?")[0]) == kind for p in seen):
                    continue
                seen[link] = None
                nxt.append(link)
                if len(seen) >= limit:
                    return list(seen)
        frontier = nxt
    return list(seen)


def timed(client: httpx.Client, path: str, repeat: int) -> dict[str, float | int]:
    samples = []
    status = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(path)
        samples.append((time.perf_counter() - t0) * 1000)
        status = r.status_code
    samples.sort()
    return {
        "status": status,
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2),
        "max_ms": round(samples[-1], 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", default=None, help="database URL (default: demo on a temp SQLite)")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--limit", type=int, default=60, help="at most this many pages")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kopilka-console-bench-")
    db = args.db or f"sqlite:///{tmp}/demo.db"
    load = subprocess.run(
        [KOPILKA, "--db", db, "demo", "--no-serve"], capture_output=True, text=True
    )
    if load.returncode != 0:
        print(load.stdout, load.stderr, file=sys.stderr)
        return 1
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [KOPILKA, "--db", db, "serve", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(200):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            baseline = {
                "/health": timed(client, "/health", args.repeat),
                "/admin/login": timed(client, "/admin/login", args.repeat),
            }
            form = client.get("/admin/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None
            r = client.post(
                "/admin/login",
                data={"login": "owner", "password": "kopilka-owner", "csrf": csrf[1]},
            )
            if r.status_code != 303:
                print("login failed:", r.status_code, r.text[:300], file=sys.stderr)
                return 1
            # The customer search lists nobody until asked: seed it with a name prefix.
            starts = ["/admin/", "/admin/customers?q=%D0%98%D0%B2"]  # "Ив"
            pages = crawl(client, starts, depth=2, limit=args.limit)
            results = {p: timed(client, p, args.repeat) for p in pages}
    finally:
        server.terminate()
        server.wait(timeout=20)
    width = max(len(p) for p in [*results, *baseline])
    print(f"{'page':<{width}}  status  p50 ms  p99 ms  max ms")
    for name, figures in [*baseline.items(), *results.items()]:
        print(
            f"{name:<{width}}  {figures['status']:>6}  {figures['p50_ms']:>6}  "
            f"{figures['p99_ms']:>6}  {figures['max_ms']:>6}"
        )
    worst = max(results.values(), key=lambda f: f["p99_ms"])
    print(f"pages: {len(results)}; slowest p99: {worst['p99_ms']} ms")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        out = RESULTS / f"console-{stamp}.json"
        out.write_text(
            json.dumps(
                {
                    "commit": commit,
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "database": "sqlite (demo)" if args.db is None else "given",
                    "repeat": args.repeat,
                    "baseline": baseline,
                    "pages": results,
                },
                indent=2,
            )
        )
        print(f"saved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
