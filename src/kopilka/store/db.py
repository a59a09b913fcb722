"""Engines for SQLite (embedded default) and PostgreSQL (production).

``sqlite:///path.db`` and ``postgresql://...`` URLs are accepted as the operator writes
them and mapped to the async drivers (aiosqlite, asyncpg).

SQLite runs in WAL mode with ``synchronous=NORMAL``. SQLite has one writer anyway: the
till's hot path (services/runtime.py ``HotPath``) writes through one connection per
process, its server processes taking turns at a write gate (ADR 0035), and reads through
another. Every transaction starts with ``BEGIN IMMEDIATE`` so that a transaction that
reads and then writes never deadlocks against another process (CLI jobs).

Several PostgreSQL hosts (a primary and its standbys, docs/deployment.md) are written the
way SQLAlchemy documents it for asyncpg, the hosts as repeated ``host`` parameters::

    postgresql://kopilka@/kopilka?host=db1:5432&host=db2:5432&target_session_attrs=read-write

The driver then connects to whichever of them accepts writes (after a failover, the
promoted standby).  ``KOPILKA_DATABASE_REPLICA_URL`` names a hot standby that serves
lookups and reports (ADR 0032).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kopilka import crash

ENV_URL = "KOPILKA_DATABASE_URL"
ENV_REPLICA_URL = "KOPILKA_DATABASE_REPLICA_URL"
DEFAULT_URL = "sqlite:///kopilka.db"


def resolve_url(url: str | None) -> str:
    return url or os.environ.get(ENV_URL) or DEFAULT_URL


def async_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


def replica_url_from_env() -> str | None:
    return os.environ.get(ENV_REPLICA_URL) or None


def asyncpg_dsn(url: str) -> str:
    """The URL as asyncpg's own ``connect``/``create_pool`` read it: a libpq DSN whose
    several hosts are one comma-separated ``host`` parameter (asyncpg keeps only the last
    of repeated parameters, SQLAlchemy's form)."""
    u = make_url(url).set(drivername="postgresql")
    hosts = u.query.get("host")
    if isinstance(hosts, tuple):
        u = u.update_query_dict({"host": ",".join(hosts)})
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 20, name: str = "kopilka") -> AsyncEngine:
    """``name``: the ``application_name`` PostgreSQL shows for these connections."""
    url = async_url(url)
    if is_sqlite(url):
        engine = create_async_engine(
            url, pool_size=1, max_overflow=0, pool_timeout=60, hide_parameters=True
        )
        _sqlite_pragmas(engine)
    else:
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_pre_ping=False,
            # an error's text carries no bound values (phones, codes) into a log line (issue 10)
            hide_parameters=True,
            connect_args={"server_settings": {"application_name": name}},
        )
    if crash.ARMED:  # the crash drills only (KOPILKA_CRASH_POINTS)
        crash.arm_engine(engine.sync_engine)
    return engine


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
