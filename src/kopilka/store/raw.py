"""The hot path's database access: hand-written SQL run on the driver itself.

SQLAlchemy Core defines the schema, runs migrations and serves the rest of the code;
on the till's hot path its per-statement overhead (statement construction, cache keys,
type processors, the greenlet bridge) cost several times the database's own time
(docs/performance.md).  Here each statement is written once with ``?`` placeholders,
rewritten to ``$1, $2, ...`` for asyncpg, and run directly:

- PostgreSQL: an asyncpg pool, one transaction per call (``PgTx``);
- SQLite: one synchronous ``sqlite3`` connection per process, used while holding the
  engine's single pooled connection, so it never competes with SQLAlchemy's
  connection in the same process (``SqliteTx``); a SQLite statement takes microseconds,
  so running it on the event loop is cheaper than a thread hop;
- inside a SQLAlchemy transaction (refunds, jobs): ``SATx`` runs the same SQL through
  ``exec_driver_sql`` so that it shares that transaction.

Values cross this boundary as the database stores them: money and points as integer
hundredths, quantities as thousandths (ADR 0004), timestamps as aware UTC datetimes
(PostgreSQL) or SQLAlchemy's text format (SQLite).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka import crash
from kopilka.domain.money import KOPECK, MILLI

Row = Sequence[Any]


# Observers of every hot-path statement (tests pin the statement count per call).
statement_listeners: list[Callable[[str], None]] = []
if crash.ARMED:  # the crash drills (KOPILKA_CRASH_POINTS): maybe die before a statement
    statement_listeners.append(crash.on_statement)


def observe(sql: str) -> None:
    """Tell the statement listeners (tests, crash drills) of a statement."""
    for listener in statement_listeners:
        listener(sql)


class Changed(Exception):
    """A statement guarded by ``kopilka_confirm_check`` found the rows it was computed
    from changed, and wrote nothing (migration 0034)."""


class UniqueViolation(Exception):
    """A unique key refused the row (an idempotency key seen before)."""


class Tx(Protocol):
    pg: bool

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


@lru_cache(maxsize=256)
def to_dollar(sql: str) -> str:
    """``?`` placeholders to asyncpg's ``$n`` (our SQL has no ``?`` in literals)."""
    n = 0

    def repl(_: re.Match[str]) -> str:
        nonlocal n
        n += 1
        return f"${n}"

    return re.sub(r"\?", repl, sql)


@lru_cache(maxsize=512)
def multi_values(insert_head: str, width: int, rows: int) -> str:
    """``INSERT ... VALUES (?, ...), (?, ...)`` for ``rows`` rows: one statement, one
    plan, instead of one execution per row."""
    one = "(" + ", ".join(["?"] * width) + ")"
    return insert_head + " VALUES " + ", ".join([one] * rows)


async def insert_rows(tx: Tx, insert_head: str, rows: Sequence[Sequence[Any]]) -> None:
    """Insert many rows in one statement (chunks of 500 rows)."""
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        flat = [v for row in chunk for v in row]
        await tx.execute(multi_values(insert_head, len(chunk[0]), len(chunk)), *flat)


class PgTx:
    pg = True

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if statement_listeners:
            observe(sql)
        try:
            rows: list[Row] = await self.conn.fetch(to_dollar(sql), *args)
        except Exception as exc:
            _reraise(exc)
            raise
        return rows

    async def execute(self, sql: str, *args: Any) -> None:
        if statement_listeners:
            observe(sql)
        try:
            await self.conn.execute(to_dollar(sql), *args)
        except Exception as exc:
            _reraise(exc)
            raise

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            if statement_listeners:
                observe(sql)
            await self.conn.executemany(to_dollar(sql), rows)


class SqliteTx:
    pg = False

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if statement_listeners:
            observe(sql)
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise UniqueViolation(str(exc)) from exc
            raise

    async def execute(self, sql: str, *args: Any) -> None:
        await self.fetch(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            if statement_listeners:
                observe(sql)
            self.conn.executemany(sql, rows)


class SqliteSingle(SqliteTx):
    """SQLite for work whose only write is one statement (``HotPath.single``): reads run
    on ``conn`` in autocommit, each seeing what is committed (as on PostgreSQL without a
    transaction); the write runs in a write transaction of its own, opened by ``write``
    (``HotPath.tx``: the write gate and ``BEGIN IMMEDIATE``), so the write lock is held
    for that statement only, not for the reads and the computing between them."""

    def __init__(
        self, conn: sqlite3.Connection, write: Callable[[], AbstractAsyncContextManager[Tx]]
    ) -> None:
        super().__init__(conn)
        self._write = write

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if sql.lstrip()[:6].upper() == "SELECT":
            return await super().fetch(sql, *args)
        async with self._write() as tx:
            return await tx.fetch(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._write() as tx:
            await tx.executemany(sql, rows)


class SATx:
    """The same SQL inside a SQLAlchemy transaction (non-hot paths that post to the ledger)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"

    def _sql(self, sql: str) -> str:
        return to_dollar(sql) if self.pg else sql

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            res = await self.conn.exec_driver_sql(self._sql(sql), tuple(args))
        except IntegrityError as exc:
            raise UniqueViolation(str(exc)) from exc
        return list(res.all()) if res.returns_rows else []

    async def execute(self, sql: str, *args: Any) -> None:
        await self.fetch(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self.conn.exec_driver_sql(self._sql(sql), [tuple(r) for r in rows])


def _reraise(exc: Exception) -> None:
    if type(exc).__name__ == "UniqueViolationError":
        raise UniqueViolation(str(exc)) from exc
    if getattr(exc, "sqlstate", None) == "KP001":
        raise Changed(str(exc)) from exc


# --- values -----------------------------------------------------------------------------


def cents(value: Decimal) -> int:
    """Roubles or points to integer hundredths (exact: the edge allows two decimals)."""
    scaled = value.scaleb(2)
    as_int = int(scaled)
    if as_int != scaled:
        raise ValueError(f"{value} has more than two decimals")
    return as_int


def milli(value: Decimal) -> int:
    scaled = value.scaleb(3)
    as_int = int(scaled)
    if as_int != scaled:
        raise ValueError(f"{value} has more than three decimals")
    return as_int


def dec2(value: int) -> Decimal:
    return Decimal(value).scaleb(-2).quantize(KOPECK)


def dec3(value: int) -> Decimal:
    return Decimal(value).scaleb(-3).quantize(MILLI)


def ts(tx: Tx, value: datetime | None) -> Any:
    """A timestamp as the engine stores it (SQLite: SQLAlchemy's naive-UTC text)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    if tx.pg:
        return value
    return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def parse_ts(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def sqlite_connect(path: str) -> sqlite3.Connection:
    """The hot path's connection: no busy timeout (HotPath retries BEGIN without
    blocking the event loop); statements after BEGIN IMMEDIATE never wait in WAL mode."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=0")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
