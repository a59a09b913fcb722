"""Races between separate processes (issue 10): P processes, each with its own server
app, its own connection pool and K calls in flight, released together by a barrier
against one database.  The database's locks, not one event loop, decide who wins.

``race(url, calls, processes=P)`` sends ``calls`` (method, path, key, body) spread over
the processes and returns every answer with its latency.  Used by
``tests/services/test_process_races.py`` (the invariants) and ``bench/races.py`` (the
figures: violations, retry rate, p99).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

Call = tuple[str, str, str, Any]  # method, path under /api/pos/v1, terminal key, JSON body


@dataclass(frozen=True)
class Answer:
    status: int
    code: str  # the problem's code, "" for 200
    body: bytes
    latency_s: float


async def _fire(url: str, calls: list[Call], barrier: Any) -> list[Answer]:
    from kopilka.api.app import HotFront, create_app
    from kopilka.services.runtime import Runtime
    from kopilka.store.db import create_engine

    # 4 + 2 connections a process: 8 processes stay well inside max_connections (100)
    rt = Runtime(engine=create_engine(url, pool_size=2), url=url, pool_size=4, cache_ttl_s=0.0)
    app = HotFront(create_app(rt, sweep_every_s=0))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://race") as client:
        # warm up: the terminal keys and the compiled program are cached before the start
        for key in {c[2] for c in calls}:
            await client.get("/api/pos/v1/rewards", headers={"Authorization": f"Bearer {key}"})
        await asyncio.to_thread(barrier.wait)

        async def one(call: Call) -> Answer:
            method, path, key, body = call
            started = time.perf_counter()
            r = await client.request(
                method,
                "/api/pos/v1" + path,
                content=None if body is None else orjson.dumps(body),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            took = time.perf_counter() - started
            code = "" if r.status_code == 200 else str(r.json().get("code", ""))
            return Answer(r.status_code, code, r.content, took)

        answers = await asyncio.gather(*(one(c) for c in calls))
    await rt.close()
    return list(answers)


def _child(url: str, calls: list[Call], barrier: Any, out: Any, index: int) -> None:
    try:
        out.put((index, asyncio.run(_fire(url, calls, barrier))))
    except BaseException as exc:  # the parent reports it
        out.put((index, exc))


def race(url: str, calls: list[Call], *, processes: int = 8) -> list[Answer]:
    """Every call answered, in the order given; raises if a process failed."""
    # Children forked from a server process that has only imported the app: a clean
    # interpreter (no inherited loop or connections) without paying the imports per child.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.races", "kopilka.api.app", "kopilka.store.db"])
    barrier = ctx.Barrier(processes)
    out = ctx.Queue()
    shares = [calls[i::processes] for i in range(processes)]
    procs = [
        ctx.Process(target=_child, args=(url, share, barrier, out, i))
        for i, share in enumerate(shares)
    ]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    for _ in procs:
        index, value = out.get(timeout=300)
        results[index] = value
    for p in procs:
        p.join(timeout=60)
    answers: list[Answer | None] = [None] * len(calls)
    for i in range(processes):
        if isinstance(results[i], BaseException):
            raise RuntimeError(f"race process {i} failed") from results[i]
        for j, answer in enumerate(results[i]):
            answers[i + j * processes] = answer
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def p99(answers: list[Answer]) -> float:
    lat = sorted(a.latency_s for a in answers)
    return lat[min(len(lat) - 1, int(len(lat) * 0.99))]
