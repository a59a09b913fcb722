"""ASGI entry point for uvicorn workers: ``kopilka.api.asgi:make_app`` (a factory)."""

from __future__ import annotations

import gc
import os
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from kopilka import crash
from kopilka.api.app import HotFront, create_app
from kopilka.api.observe import Observed, configure_logging
from kopilka.services.runtime import Runtime
from kopilka.store.db import create_engine, replica_url_from_env, resolve_url


class CrashBeforeAnswer:
    """The crash drills' ``http.answer`` site: the answer is ready (anything it depends
    on committed) and the process may die before sending it (ADR 0031)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                crash.point("http.answer")
            await send(message)

        await self.app(scope, receive, sending if scope["type"] == "http" else send)


def make_app() -> Any:
    """One app per worker process.  ``KOPILKA_DB_POOL`` (default 10) connections serve the
    till's hot path on PostgreSQL; SQLAlchemy keeps 5 more for everything else.
    ``KOPILKA_DATABASE_REPLICA_URL``: a hot standby for lookups, used while it lags less
    than ``KOPILKA_REPLICA_MAX_LAG_S`` (default 5) seconds (ADR 0032)."""
    url = resolve_url(None)
    pool = int(os.environ.get("KOPILKA_DB_POOL", "10"))
    rt = Runtime(
        engine=create_engine(url, pool_size=5),
        url=url,
        pool_size=pool,
        replica_url=replica_url_from_env(),
        replica_max_lag_s=float(os.environ.get("KOPILKA_REPLICA_MAX_LAG_S", "5")),
    )
    app = create_app(rt)
    configure_logging(os.environ.get("KOPILKA_LOG_LEVEL", "warning"))
    front: Observed | HotFront = HotFront(app)
    if os.environ.get("KOPILKA_REQUEST_METRICS", "on") != "off":
        front = Observed(front)  # "off": no per-call counters or request ids (to measure them)
    _settle_garbage_collector()
    if crash.ARMED:
        return CrashBeforeAnswer(front)
    return front


def _settle_garbage_collector() -> None:
    """The objects made at start-up (modules, the app, its schemas) live as long as the
    process: frozen, the collector never walks them again.  A full collection otherwise
    walked a few hundred thousand of them every few hundred requests (a latency spike
    each time).  Collections of young objects run a tenth as often: a call allocates a
    few thousand short-lived containers, freed by reference counting anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 20, 50)
