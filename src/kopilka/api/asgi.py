"""ASGI entry point for uvicorn workers: ``kopilka.api.asgi:make_app`` (a factory)."""

from __future__ import annotations

import os

from kopilka.api.app import HotFront, create_app
from kopilka.api.observe import Observed, configure_logging
from kopilka.services.runtime import Runtime
from kopilka.store.db import create_engine, replica_url_from_env, resolve_url


def make_app() -> Observed | HotFront:
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
    if os.environ.get("KOPILKA_REQUEST_METRICS", "on") == "off":
        return HotFront(app)  # no per-call counters or request ids (e.g. to measure them)
    return Observed(HotFront(app))
