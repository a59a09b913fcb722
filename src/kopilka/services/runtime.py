"""What every service needs: the engine, the clock, and small in-memory caches.

Terminal keys and program settings are cached per process for a few seconds, so the hot
path does not read them on every call, and a disabled terminal or a changed program
takes effect on every server process within ``cache_ttl_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka import crash
from kopilka.crash import ARMED as CRASH_ARMED
from kopilka.domain.program import (
    DEFAULT_PROFILE,
    ProgramProfile,
    ProgramSettings,
    profile_from_json,
)
from kopilka.domain.rules.compiler import CompiledProgram, compile_program, program_from_settings
from kopilka.domain.rules.facts import StoreContext
from kopilka.domain.rules.model import ProgramDoc
from kopilka.services.sms_caps import SmsCaps
from kopilka.store import tables as t
from kopilka.store.db import asyncpg_dsn, create_engine, is_sqlite
from kopilka.store.raw import (
    PgTx,
    SqliteSingle,
    SqliteTx,
    Tx,
    observe,
    sqlite_connect,
    statement_listeners,
)

NO_STORE = StoreContext()


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Terminal:
    id: int
    program_id: int
    store_id: int
    partner_id: int
    name: str
    active: bool
    store_timezone: str
    store: StoreContext = NO_STORE  # what promotions see of the store


_DEFAULTS = ProgramSettings()


def settings_from_json(raw: str) -> ProgramSettings:
    """Program settings from their JSON column; decimals travel as strings."""
    data: dict[str, Any] = orjson.loads(raw)
    kwargs: dict[str, Any] = {}
    for f in fields(ProgramSettings):
        if f.name in data:
            value = data[f.name]
            is_dec = isinstance(getattr(_DEFAULTS, f.name), Decimal)
            kwargs[f.name] = Decimal(str(value)) if is_dec and value is not None else value
    return ProgramSettings(**kwargs)


def settings_to_json(settings: ProgramSettings) -> str:
    out: dict[str, Any] = {}
    for name in ProgramSettings.__dataclass_fields__:
        value = getattr(settings, name)
        out[name] = str(value) if isinstance(value, Decimal) else value
    return orjson.dumps(out).decode()


@dataclass
class Runtime:
    engine: AsyncEngine
    url: str
    clock: Callable[[], datetime] = utcnow
    cache_ttl_s: float = 5.0
    _terminals: dict[str, tuple[float, Terminal | None]] = field(default_factory=dict)
    _programs: dict[int, tuple[float, CompiledProgram]] = field(default_factory=dict)
    # program id -> (its profile's JSON as stored, parsed); refreshed with the version check
    _profiles: dict[int, tuple[str | None, ProgramProfile]] = field(default_factory=dict)
    pool_size: int = 10
    _hot: HotPath | None = None
    # Terminal id -> when its key was last used; written to terminals.last_seen_at by
    # ``flush_last_seen`` (the server's sweeper), never by the till's own calls.
    _seen: dict[int, datetime] = field(default_factory=dict)
    last_seen_every_s: float = 30.0
    _seen_flushed: float = 0.0
    # caps on one-time codes sent by SMS (services/sms_caps.py; KOPILKA_SMS_PER_*)
    sms_caps: SmsCaps = field(default_factory=SmsCaps.from_env)
    # A hot standby for lookups (ADR 0032); None: everything reads the primary.
    replica_url: str | None = None
    replica_max_lag_s: float = 5.0
    _report_engine: AsyncEngine | None = None
    # (terminal id, receipt id) -> (when, what this process's calculate read and wrote),
    # for the confirm that follows it (ADR 0038); the oldest dropped first, none used
    # after ``calculated_ttl_s``.
    _calculated: dict[tuple[int, str], tuple[float, Any]] = field(default_factory=dict)
    calculated_max: int = 2000
    calculated_ttl_s: float = 600.0
    # (program id, identifier values) -> (when, the account a lookup read), for the
    # calculate that follows it at the same till (ADR 0040); the same bounds.
    _looked_up: dict[tuple[int, tuple[str, ...]], tuple[float, Any]] = field(default_factory=dict)

    def remember_calculated(self, terminal_id: int, receipt_id: str, entry: Any) -> None:
        """Keep a calculate's read for its confirm (bounded: the oldest entry goes)."""
        self._remember(self._calculated, (terminal_id, receipt_id), entry)

    def take_calculated(self, terminal_id: int, receipt_id: str) -> Any:
        """The calculate's read for this confirm, once (None: not calculated here, or too
        long ago)."""
        return self._take(self._calculated, (terminal_id, receipt_id))

    def remember_looked_up(self, program_id: int, values: tuple[str, ...], entry: Any) -> None:
        """Keep a lookup's read of an account for the calculate that follows it."""
        self._remember(self._looked_up, (program_id, values), entry)

    def take_looked_up(self, program_id: int, values: tuple[str, ...]) -> Any:
        """The lookup's read for this identifier, once (None: not looked up here lately)."""
        return self._take(self._looked_up, (program_id, values))

    def _remember(self, memo: dict[Any, tuple[float, Any]], key: Any, entry: Any) -> None:
        memo.pop(key, None)  # a key kept again is the newest
        memo[key] = (time.monotonic(), entry)
        while len(memo) > self.calculated_max:
            del memo[next(iter(memo))]

    def _take(self, memo: dict[Any, tuple[float, Any]], key: Any) -> Any:
        kept = memo.pop(key, None)
        if kept is None or time.monotonic() - kept[0] > self.calculated_ttl_s:
            return None
        return kept[1]

    @property
    def hot(self) -> HotPath:
        if self._hot is None:
            self._hot = HotPath(self, pool_size=self.pool_size)
        return self._hot

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Runtime:
        return cls(engine=create_engine(url), url=url, **kwargs)

    @functools.cached_property
    def sqlite(self) -> bool:
        return is_sqlite(self.url)

    def now(self) -> datetime:
        return self.clock()

    async def close(self) -> None:
        if self._hot is not None:
            await self._hot.close()
        if self._report_engine is not None:
            await self._report_engine.dispose()
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def report_conn(self) -> AsyncIterator[AsyncConnection]:
        """A connection for read-only reports: on the replica while it answers and lags
        less than ``replica_max_lag_s`` (ADR 0032), on the primary otherwise."""
        if self.replica_url is not None and await self.hot.replica_usable():
            if self._report_engine is None:
                self._report_engine = create_engine(
                    self.replica_url, pool_size=3, name="kopilka-reports"
                )
            conn: AsyncConnection | None = None
            try:
                conn = await self._report_engine.connect()
            except Exception as exc:  # the standby went away since the check
                self.hot.replica_failed(exc)
            if conn is not None:
                try:
                    yield conn
                finally:
                    await conn.close()
                return
        async with self.engine.connect() as conn:
            yield conn

    async def terminal_by_key(self, key: str) -> Terminal | None:
        """The terminal this key belongs to, cached for ``cache_ttl_s`` (also when unknown)."""
        digest = hash_key(key)
        hit = self._terminals.get(digest)
        mono = time.monotonic()
        if hit is not None and mono - hit[0] < self.cache_ttl_s:
            if hit[1] is not None:
                self._seen[hit[1].id] = self.now()
            return hit[1]
        term = await self._load_terminal(t.terminals.c.key_hash == digest)
        if len(self._terminals) > 10_000:
            self._terminals.clear()
        self._terminals[digest] = (mono, term)
        if term is not None:
            self._seen[term.id] = self.now()
        return term

    async def terminal_by_id(self, terminal_id: int) -> Terminal | None:
        """A terminal by its id, read now (no cache): for callers that hold no key, such
        as the console's cashier screen, which acts as its store's terminal."""
        return await self._load_terminal(t.terminals.c.id == terminal_id)

    async def _load_terminal(self, where: Any) -> Terminal | None:
        stmt = (
            select(
                t.terminals.c.id,
                t.terminals.c.program_id,
                t.terminals.c.store_id,
                t.stores.c.partner_id,
                t.terminals.c.name,
                t.terminals.c.status,
                t.stores.c.timezone,
                t.stores.c.code,
                t.stores.c.city,
                t.stores.c.region,
                t.partners.c.code.label("partner_code"),
            )
            .join(t.stores, t.stores.c.id == t.terminals.c.store_id)
            .join(t.partners, t.partners.c.id == t.stores.c.partner_id)
            .where(where)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        return Terminal(
            row.id,
            row.program_id,
            row.store_id,
            row.partner_id,
            row.name,
            row.status == "active",
            row.timezone,
            StoreContext(
                code=row.code,
                partner=row.partner_code,
                city=row.city or None,
                region=row.region or None,
                timezone=row.timezone or None,
            ),
        )

    def forget_terminal(self, key_hash: str) -> None:
        """Drop a key from this process's cache (a terminal just disabled here)."""
        self._terminals.pop(key_hash, None)

    async def flush_last_seen(self, *, force: bool = False) -> int:
        """Write the terminals seen since the last flush to ``terminals.last_seen_at`` in one
        UPDATE (executed for each of them), at most every ``last_seen_every_s`` unless
        ``force``.  Returns how many terminals were written.  A time never moves back (other
        processes flush too)."""
        mono = time.monotonic()
        if not self._seen or (not force and mono - self._seen_flushed < self.last_seen_every_s):
            return 0
        seen, self._seen = self._seen, {}
        self._seen_flushed = mono
        tt = t.terminals
        stmt = (
            update(tt)
            .where(
                tt.c.id == bindparam("tid"),
                or_(tt.c.last_seen_at.is_(None), tt.c.last_seen_at < bindparam("seen")),
            )
            .values(last_seen_at=bindparam("seen"))
        )
        try:
            async with self.engine.begin() as conn:
                await conn.execute(stmt, [{"tid": k, "seen": v} for k, v in seen.items()])
        except Exception:
            for k, v in seen.items():  # try again next time
                self._seen.setdefault(k, v)
            raise
        return len(seen)

    async def program(self, program_id: int) -> ProgramSettings:
        """The program's base settings (of its current version)."""
        return (await self.compiled(program_id)).settings

    async def compiled(self, program_id: int) -> CompiledProgram:
        """The program's current version, compiled; cached per process.

        Every ``cache_ttl_s`` one cheap read checks the version number; a new version
        (``kopilka program apply``, the admin API) is loaded and compiled once, so a
        change reaches every server process within seconds, without a restart.
        """
        hit = self._programs.get(program_id)
        mono = time.monotonic()
        if hit is not None and mono - hit[0] < self.cache_ttl_s:
            return hit[1]
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.programs.c.version, t.programs.c.code, t.programs.c.profile).where(
                        t.programs.c.id == program_id
                    )
                )
            ).one()
            if hit is not None and hit[1].version == row.version:
                compiled = hit[1]
            else:
                compiled = await load_compiled(conn, program_id, row.version)
        known = self._profiles.get(program_id)
        if known is None or known[0] != row.profile:
            raw = orjson.loads(row.profile) if row.profile else None
            self._profiles[program_id] = (row.profile, profile_from_json(raw))
        self._programs[program_id] = (mono, compiled)
        return compiled

    async def profile(self, program_id: int) -> ProgramProfile:
        """The program's presentation settings (points' name, language, SMS sender,
        branding), cached with the compiled program: no statement of its own."""
        await self.compiled(program_id)
        return self._profiles[program_id][1]

    def profile_cached(self, program_id: int) -> ProgramProfile:
        """The profile read by the last ``compiled(program_id)``, with no I/O: for the
        till, which has just called ``compiled``."""
        known = self._profiles.get(program_id)
        return DEFAULT_PROFILE if known is None else known[1]

    def forget_program(self, program_id: int) -> None:
        """Read the program again on its next use in this process (after a change)."""
        self._programs.pop(program_id, None)


async def load_compiled(conn: Any, program_id: int, version: int) -> CompiledProgram:
    """Compile a program version: its document, or (a program set up only with
    ``kopilka program create|set``) a bonus program of its settings."""
    doc_raw = (
        await conn.execute(
            select(t.program_versions.c.document).where(
                t.program_versions.c.program_id == program_id,
                t.program_versions.c.version == version,
            )
        )
    ).scalar_one_or_none()
    if doc_raw is not None:
        doc = ProgramDoc.model_validate(orjson.loads(doc_raw))
    else:
        prog = (
            await conn.execute(
                select(t.programs.c.code, t.programs.c.settings).where(
                    t.programs.c.id == program_id
                )
            )
        ).one()
        doc = program_from_settings(settings_from_json(prog.settings), code=prog.code)
    return compile_program(doc, version=version)


async def _begin_immediate(conn: sqlite3.Connection, *, patience_s: float = 30.0) -> None:
    """Take SQLite's write lock without blocking the event loop.

    The hot connection has no busy timeout: when another connection (SQLAlchemy's, in
    this process or another) holds the lock, we yield to the loop and try again, so that
    connection's transaction can finish instead of deadlocking behind a blocked loop.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    delay = 0.0005
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if loop.time() > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.02)


class WriteGate:
    """The server processes' turn at SQLite's write lock, taken before ``BEGIN IMMEDIATE``.

    SQLite lets one connection write at a time, and a connection that finds the lock
    taken can only try again later. With several server processes on one file (one per
    core, as on PostgreSQL) the hot path's writers take turns at an exclusive ``flock``
    on a file beside the database instead: trying it is one system call (trying
    ``BEGIN IMMEDIATE`` is a statement and an exception), and it is held only around
    the transaction itself, which never waits for anything but the database (ADR 0035).

    A process that finds the gate taken yields to its event loop and tries again: at
    every turn of the loop for ``spin_s`` (a hold lasts about half a millisecond; the
    loop meanwhile goes on parsing, pricing and answering its other tills), then once a
    millisecond (uvloop's timers have millisecond steps: a shorter sleep is a turn of the
    loop). Measured on SQLite with two workers (ADR 0035): waiting in the kernel, in a
    thread, left the gate taken until the busy loop got round to the coroutine it was
    for (477-519 receipts/s); turns of the loop for 5 ms then 1 ms timers: 569-572, the
    same as turning for the whole wait (559-612) with less CPU. Past ``patience_poll_s``
    the wait moves to a thread, which wakes when the gate is let go: a long hold means a
    writer of ours waiting for a connection that does not take the gate (the console's,
    the jobs') to finish with SQLite's own lock. The kernel lets go of a dead process's
    gate with its file.
    """

    patience_poll_s = 1.0
    spin_s = 0.005
    poll_s = 0.001

    def __init__(self, db_path: str) -> None:
        self._fd = os.open(db_path + "-writegate", os.O_RDWR | os.O_CREAT, 0o600)
        self._waiter: Any = None

    def _try(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    async def acquire(self) -> None:
        if self._try():
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        spin_until = now + self.spin_s
        deadline = now + self.patience_poll_s
        while (now := loop.time()) < deadline:
            await asyncio.sleep(0 if now < spin_until else self.poll_s)
            if self._try():
                return
        if self._waiter is None:
            import concurrent.futures

            self._waiter = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="kopilka-writegate"
            )
        waiting = loop.run_in_executor(self._waiter, fcntl.flock, self._fd, fcntl.LOCK_EX)
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # the thread takes the gate whatever happens to us: hand it back at once
            waiting.add_done_callback(self._hand_back)
            raise

    def _hand_back(self, taken: asyncio.Future[None]) -> None:
        if not taken.cancelled() and taken.exception() is None:
            self.release()

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.shutdown(wait=False)
        os.close(self._fd)


async def _keep_session(conn: Any) -> None:
    """asyncpg's default pool reset sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` on every release: a round trip per till call.  The hot path
    never sets session state (no SET, LISTEN, advisory locks or cursors), so nothing needs
    resetting."""


async def _hot_session(conn: Any) -> None:
    """A new hot-path connection plans each prepared statement once.

    Every hot statement finds its rows by key, so the generic plan is the custom one; in
    the default mode PostgreSQL re-planned the statements whose custom plans it estimated
    cheaper (the confirm's write statement, the identifier lookups): ~10 % of the
    database's CPU under the POS benchmark (docs/performance.md).  A ``SET`` rather than
    a startup parameter, so that PgBouncer (which refuses unknown ones) carries it."""
    await conn.execute("SET plan_cache_mode = force_generic_plan")


# How far behind the primary a standby is, in seconds: 0 when it has replayed all it has
# received (an idle primary sends nothing, so the replay timestamp alone would grow).
_LAG_SQL = (
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0::float8 "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8, "
    "1e9::float8) END"
)


class Replica:
    """A read-only pool on a hot standby, with its health: the lag is measured at most
    once every ``check_every_s`` (one statement, off the till's statement count); after
    a failure the standby is left alone for ``retry_after_s`` and reads go to the primary.
    """

    check_every_s = 1.0
    retry_after_s = 5.0

    def __init__(self, url: str, max_lag_s: float) -> None:
        self.url = url
        self.max_lag_s = max_lag_s
        self._pool: Any = None
        self._checked = -1e9
        self._down_until = 0.0
        self._usable = False
        self._checking = False
        self.lag_s: float | None = None
        self.reason = "not checked yet"

    def failed(self, exc: BaseException) -> None:
        self._usable = False
        self.reason = f"failed: {type(exc).__name__}"
        self._down_until = time.monotonic() + self.retry_after_s

    async def acquire(self) -> Any:
        """A connection to the standby, or None: read the primary."""
        now = time.monotonic()
        if now < self._down_until:
            return None
        try:
            if self._pool is None:
                import asyncpg

                self._pool = await asyncpg.create_pool(
                    asyncpg_dsn(self.url),
                    reset=_keep_session,
                    min_size=0,
                    max_size=5,
                    timeout=2.0,
                    server_settings={"application_name": "kopilka-replica"},
                )
            conn = await self._pool.acquire(timeout=2.0)
        except Exception as exc:  # any failure to reach the standby: read the primary
            self.failed(exc)
            return None
        if now - self._checked >= self.check_every_s and not self._checking:
            self._checking = True
            try:
                self.lag_s = float(await conn.fetchval(_LAG_SQL, timeout=2.0))
                self._usable = self.lag_s <= self.max_lag_s
                self.reason = "" if self._usable else f"lagging {self.lag_s:.1f} s"
            except Exception as exc:
                self.failed(exc)
            finally:
                self._checked = now
                self._checking = False
        if not self._usable:
            await self.release(conn)
            return None
        return conn

    async def release(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            await self._pool.release(conn)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class HotPath:
    """Transactions for the till's hot path on the driver itself (store/raw.py)."""

    def __init__(self, rt: Runtime, *, pool_size: int = 10) -> None:
        self.rt = rt
        self.pool_size = pool_size
        self._pool: Any = None
        self._sqlite: sqlite3.Connection | None = None
        self._gate: WriteGate | None = None
        self._lock = asyncio.Lock()
        self._reader: sqlite3.Connection | None = None
        self._replica = Replica(rt.replica_url, rt.replica_max_lag_s) if rt.replica_url else None

    @contextlib.asynccontextmanager
    async def tx(self) -> AsyncIterator[Tx]:
        # CRASH_ARMED: the crash drills' kill points (kopilka.crash), a constant False
        # in a normal process
        if self.rt.sqlite:
            async with self._lock:
                conn = self._sqlite_conn()
                if CRASH_ARMED:
                    crash.point("tx.begin")
                gate = self._gate
                if gate is not None:
                    await gate.acquire()
                try:
                    if statement_listeners:
                        observe("BEGIN")
                    await _begin_immediate(conn)
                    try:
                        yield SqliteTx(conn)
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    if CRASH_ARMED:
                        crash.point("tx.commit")
                    if statement_listeners:
                        observe("COMMIT")
                    conn.execute("COMMIT")
                finally:
                    if gate is not None:
                        gate.release()
            if CRASH_ARMED:
                crash.point("tx.committed")
            return
        pool = await self._pg_pool()
        async with pool.acquire() as conn:
            if CRASH_ARMED:
                crash.point("tx.begin")
            if statement_listeners:  # the round trips a test counts (BEGIN, COMMIT)
                observe("BEGIN")
            async with conn.transaction():
                yield PgTx(conn)
                if CRASH_ARMED:
                    crash.point("tx.commit")
                if statement_listeners:
                    observe("COMMIT")
            if CRASH_ARMED:
                crash.point("tx.committed")

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """Reads without a transaction (each statement sees committed data): no BEGIN and
        COMMIT round trips on PostgreSQL, no write lock on SQLite.  For answers that are
        shown, not acted on (the lookup)."""
        if self.rt.sqlite:
            # a connection of its own: a read never waits behind a writer of this process
            # waiting for its turn at the write gate (WAL readers do not block writers).
            # No lock: each statement runs and is fetched whole without yielding, so
            # coroutines cannot interleave on it.
            yield SqliteTx(self._sqlite_reader())
            return
        pool = await self._pg_pool()
        async with pool.acquire() as conn:
            yield PgTx(conn)

    async def replica_usable(self) -> bool:
        """The replica answers and does not lag too far (checked at most once a second)."""
        if self._replica is None:
            return False
        conn = await self._replica.acquire()
        if conn is None:
            return False
        await self._replica.release(conn)
        return True

    def replica_failed(self, exc: BaseException) -> None:
        if self._replica is not None:
            self._replica.failed(exc)

    @contextlib.asynccontextmanager
    async def lookup(self) -> AsyncIterator[Tx]:
        """Like ``read``, from the replica when one is configured, answers and is not
        lagging more than ``replica_max_lag_s`` behind; from the primary otherwise."""
        conn = await self._replica.acquire() if self._replica is not None else None
        if conn is None:
            async with self.read() as tx:
                yield tx
            return
        assert self._replica is not None
        try:
            yield PgTx(conn)
        except (TimeoutError, OSError) as exc:
            self._replica.failed(exc)
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("asyncpg") and conn.is_closed():
                self._replica.failed(exc)
            raise
        finally:
            await self._replica.release(conn)

    @contextlib.asynccontextmanager
    async def single(self) -> AsyncIterator[Tx]:
        """For work whose only write is one statement: no transaction on PostgreSQL (the
        statement is atomic by itself); on SQLite the reads run on the reading connection
        and the write in a transaction of its own (``SqliteSingle``)."""
        if self.rt.sqlite:
            # reads outside any write lock, the one write in a transaction of its own:
            # other writers (this process's or another's) are not held up by the reads
            # and the pricing between them
            yield SqliteSingle(self._sqlite_reader(), self.tx)
            return
        async with self.read() as tx:
            yield tx

    def _sqlite_path(self) -> tuple[str, bool]:
        """The database's path, and whether it is a plain file: an in-memory database
        (one per connection) gets no second connection and no gate."""
        path = make_url(self.rt.url).database or ":memory:"
        return path, not (path == ":memory:" or path.startswith("file:"))

    def _sqlite_conn(self) -> sqlite3.Connection:
        if self._sqlite is None:
            path, plain = self._sqlite_path()
            self._sqlite = sqlite_connect(path)
            if plain:
                self._gate = WriteGate(path)
        return self._sqlite

    def _sqlite_reader(self) -> sqlite3.Connection:
        if self._reader is None:
            path, plain = self._sqlite_path()
            if not plain:
                return self._sqlite_conn()
            self._reader = sqlite_connect(path)
        return self._reader

    async def _pg_pool(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    import asyncpg

                    self._pool = await asyncpg.create_pool(
                        asyncpg_dsn(self.rt.url),
                        reset=_keep_session,
                        init=_hot_session,
                        min_size=1,
                        max_size=self.pool_size,
                        server_settings={"application_name": "kopilka-hot"},
                    )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._replica is not None:
            await self._replica.close()
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._gate is not None:
            self._gate.close()
            self._gate = None
