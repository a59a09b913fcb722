"""The summary tables (``sales_daily``, ``points_daily``, ``customer_days``): how they are
computed from receipts, refunds and the ledger, rebuilt from scratch, and kept up to date
by the worker from a stored watermark.

Every fact belongs to one local day of the program (Europe/Moscow by default): a sale to
the day it occurred, a refund and a ledger entry to the day they were written.  A day's
facts are a pure function of the source rows of that day, so maintenance never adds to a
fact: it deletes the facts of every day touched since the watermark and aggregates those
days again, whole.  That is idempotent, and a receipt confirmed late, a refund of last
month's receipt or a rerun after a crash all come out the same as a rebuild
(docs/decisions/0017-analytics-summary-tables.md).

What "touched" means: a receipt created or confirmed, a refund or a ledger entry written
at or after ``watermark - OVERLAP``.  The overlap covers transactions that took their
timestamp before the previous run began but committed after it read: a transaction
longer than ``OVERLAP`` could be missed (the POS transactions take milliseconds; an
import of historical receipts should be followed by ``kopilka report rebuild-summary``).

The same aggregation queries, run over a whole period and restricted to a customer group,
are the reports' path for what the summary tables cannot answer (customer groups) and the
benchmark's baseline.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, case, cast, delete, func, insert, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, Select

from kopilka.domain.summary import Sums
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

JOB = "summary"
OVERLAP = timedelta(minutes=10)
CHUNK_DAYS = 31  # a rebuild aggregates this many days per statement

r, rl, rf, le = t.receipts, t.receipt_lines, t.refunds, t.ledger_entries
SalesKey = tuple[date, int, str, bool]  # day, store, cashier, member


@dataclass(frozen=True)
class Scope:
    """What to aggregate: one program, its time zone, an optional set of stores and an
    optional customer group (a select of customer ids)."""

    program_id: int
    tz: str
    sqlite: bool
    stores: Sequence[int] | None = None
    customers: Select[Any] | None = None


def day_start(day: date, tz: str) -> datetime:
    """The UTC instant the program's local ``day`` begins."""
    return datetime.combine(day, time(), ZoneInfo(tz)).astimezone(UTC)


def local_date(at: datetime, tz: str) -> date:
    return at.astimezone(ZoneInfo(tz)).date()


def local_day(col: Any, sc: Scope, at: datetime) -> ColumnElement[Any]:
    """The local date of a timestamp column.  PostgreSQL converts each value exactly;
    SQLite shifts by the zone's UTC offset at ``at`` (exact for zones without daylight
    saving, such as all of Russia's; the aggregation ranges are at most a month)."""
    if sc.sqlite:
        offset = ZoneInfo(sc.tz).utcoffset(at.replace(tzinfo=None))
        minutes = int(offset.total_seconds() // 60) if offset else 0
        return type_coerce(func.date(col, f"{minutes:+d} minutes"), Date)
    return cast(func.timezone(sc.tz, col), Date)


def _receipt_filter(sc: Scope, start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    out = [
        r.c.program_id == sc.program_id,
        r.c.state == "confirmed",
        r.c.occurred_at >= start,
        r.c.occurred_at < end,
    ]
    if sc.stores is not None:
        out.append(r.c.store_id.in_(sc.stores))
    if sc.customers is not None:
        # by account: the receipts' (program_id, account_id, occurred_at) index finds a
        # small group's receipts without reading the period's (accounts are 1:1 customers)
        out.append(r.c.account_id.in_(group_accounts(sc)))
    return out


def group_accounts(sc: Scope) -> Select[Any]:
    """The accounts of the customer group (``sc.customers``)."""
    acc = t.accounts
    assert sc.customers is not None
    return select(acc.c.id).where(
        acc.c.program_id == sc.program_id, acc.c.customer_id.in_(sc.customers)
    )


def _keys(sc: Scope, col: Any, start: datetime) -> list[Any]:
    return [
        local_day(col, sc, start).label("day"),
        r.c.store_id,
        func.coalesce(r.c.cashier_id, "").label("cashier"),
        (r.c.customer_id.is_not(None)).label("member"),
    ]


async def sales_facts(
    conn: AsyncConnection, sc: Scope, start: datetime, end: datetime
) -> dict[SalesKey, Sums]:
    """Sales by (day, store, cashier, member) of receipts that occurred in [start, end)
    and refunds written in [start, end)."""
    keys = _keys(sc, r.c.occurred_at, start)
    groups = [k.name for k in keys]
    q_rec = (
        select(
            *keys,
            func.count(),
            func.sum(r.c.amount),
            func.sum(r.c.discount),
            func.sum(r.c.redeemed_value),
            func.sum(r.c.to_pay),
            func.sum(r.c.points_earned),
        )
        .where(*_receipt_filter(sc, start, end))
        .group_by(*groups)
    )
    q_lines = (
        select(*keys, func.count(), func.sum(rl.c.quantity))
        .select_from(rl.join(r, r.c.id == rl.c.receipt_pk))
        .where(*_receipt_filter(sc, start, end))
        .group_by(*groups)
    )
    rkeys = _keys(sc, rf.c.created_at, start)
    where = [rf.c.program_id == sc.program_id, rf.c.created_at >= start, rf.c.created_at < end]
    if sc.stores is not None:
        where.append(r.c.store_id.in_(sc.stores))
    if sc.customers is not None:
        where.append(r.c.account_id.in_(group_accounts(sc)))
    q_ref = (
        select(*rkeys, func.count(), func.sum(rf.c.amount), func.sum(rf.c.points_taken_back))
        .select_from(rf.join(r, r.c.id == rf.c.receipt_pk))
        .where(*where)
        .group_by(*[k.name for k in rkeys])
    )
    out: dict[SalesKey, Sums] = defaultdict(Sums)
    for row in await conn.execute(q_rec):
        k = _key(row)
        out[k] = out[k] + Sums(
            receipts=row[4],
            amount=row[5],
            discount=row[6],
            redeemed_value=row[7],
            to_pay=row[8],
            points_earned=row[9],
        )
    for row in await conn.execute(q_lines):
        k = _key(row)
        out[k] = out[k] + Sums(lines=row[4], quantity=row[5])
    for row in await conn.execute(q_ref):
        k = _key(row)
        out[k] = out[k] + Sums(refunds=row[4], refund_amount=row[5], refund_points=row[6])
    return dict(out)


def _key(row: Any) -> SalesKey:
    return (row[0], int(row[1]), str(row[2]), bool(row[3]))


def _ledger_kind() -> ColumnElement[str]:
    return case(
        (and_(le.c.kind == "refund", le.c.amount < 0), "refund_out"),
        (le.c.kind == "refund", "refund_in"),
        else_=le.c.kind,
    )


async def points_facts(
    conn: AsyncConnection, sc: Scope, start: datetime, end: datetime
) -> dict[tuple[date, int, str], tuple[int, Decimal]]:
    """Ledger movements written in [start, end) by (day, store of the receipt or 0, kind):
    (entries, amount).  Holds and releases move no points and are left out."""
    kind = _ledger_kind().label("k")
    store = func.coalesce(r.c.store_id, 0).label("store")
    day = local_day(le.c.created_at, sc, start).label("day")
    where = [
        le.c.program_id == sc.program_id,
        le.c.created_at >= start,
        le.c.created_at < end,
        le.c.kind.not_in(("hold", "release")),
    ]
    if sc.stores is not None:
        where.append(r.c.store_id.in_(sc.stores))
    if sc.customers is not None:
        where.append(le.c.account_id.in_(group_accounts(sc)))
    q = (
        select(day, store, kind, func.count(), func.sum(le.c.amount))
        .select_from(le.outerjoin(r, r.c.id == le.c.receipt_pk))
        .where(*where)
        .group_by("day", "store", "k")
    )
    return {(x[0], int(x[1]), str(x[2])): (int(x[3]), x[4]) for x in await conn.execute(q)}


async def customer_facts(
    conn: AsyncConnection, sc: Scope, start: datetime, end: datetime
) -> dict[tuple[date, int, int], tuple[int, Decimal]]:
    """Members' confirmed receipts of [start, end) by (day, customer, store)."""
    day = local_day(r.c.occurred_at, sc, start).label("day")
    q = (
        select(day, r.c.customer_id, r.c.store_id, func.count(), func.sum(r.c.to_pay))
        .where(*_receipt_filter(sc, start, end), r.c.customer_id.is_not(None))
        .group_by("day", r.c.customer_id, r.c.store_id)
    )
    return {(x[0], int(x[1]), int(x[2])): (int(x[3]), x[4]) for x in await conn.execute(q)}


async def _write_days(conn: AsyncConnection, sc: Scope, first: date, last: date) -> int:
    """Aggregate the local days ``first``..``last`` again and replace their facts."""
    start, end = day_start(first, sc.tz), day_start(last + timedelta(days=1), sc.tz)
    sales = await sales_facts(conn, sc, start, end)
    points = await points_facts(conn, sc, start, end)
    people = await customer_facts(conn, sc, start, end)
    for table in (t.sales_daily, t.points_daily, t.customer_days):
        await conn.execute(
            delete(table).where(
                table.c.program_id == sc.program_id, table.c.day >= first, table.c.day <= last
            )
        )
    pid = sc.program_id
    rows: list[dict[str, Any]] = [
        {"program_id": pid, "day": k[0], "store_id": k[1], "cashier_id": k[2], "member": k[3]}
        | {f: getattr(s, f) for f in SUMS_COLUMNS}
        for k, s in sales.items()
    ]
    await _insert(conn, t.sales_daily, rows)
    await _insert(
        conn,
        t.points_daily,
        [
            {"program_id": pid, "day": d, "store_id": s, "kind": k, "entries": n, "amount": a}
            for (d, s, k), (n, a) in points.items()
        ],
    )
    await _insert(
        conn,
        t.customer_days,
        [
            {"program_id": pid, "day": d, "customer_id": c, "store_id": s}
            | {"month": d.replace(day=1), "receipts": n, "to_pay": a}
            for (d, c, s), (n, a) in people.items()
        ],
    )
    return len(rows)


SUMS_COLUMNS = (
    "receipts",
    "lines",
    "quantity",
    "amount",
    "discount",
    "redeemed_value",
    "to_pay",
    "points_earned",
    "refunds",
    "refund_amount",
    "refund_points",
)


async def _insert(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), 5000):
        await conn.execute(insert(table), rows[i : i + 5000])


def runs(days: Iterable[date], *, longest: int = CHUNK_DAYS) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) ranges, none longer than ``longest`` days."""
    out: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if out and d == out[-1][1] + timedelta(days=1) and (d - out[-1][0]).days < longest:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


@dataclass
class Refreshed:
    """What a maintenance run did."""

    days: int = 0
    fact_rows: int = 0
    rebuilt: bool = False
    mark: datetime | None = None
    programs: list[int] = field(default_factory=list)


async def _scope(rt: Runtime, program_id: int) -> Scope:
    settings = await rt.program(program_id)
    return Scope(program_id, settings.timezone, rt.sqlite)


async def _source_span(conn: AsyncConnection, program_id: int) -> tuple[datetime, datetime] | None:
    """The earliest and latest timestamps any fact of the program comes from."""
    qs = [
        select(func.min(r.c.occurred_at), func.max(r.c.occurred_at)).where(
            r.c.program_id == program_id
        ),
        select(func.min(rf.c.created_at), func.max(rf.c.created_at)).where(
            rf.c.program_id == program_id
        ),
        select(func.min(le.c.created_at), func.max(le.c.created_at)).where(
            le.c.program_id == program_id
        ),
    ]
    lo: datetime | None = None
    hi: datetime | None = None
    for q in qs:
        a, b = (await conn.execute(q)).one()
        if a is not None:
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
    return None if lo is None or hi is None else (lo, hi)


async def rebuild(rt: Runtime, *, program_ids: Sequence[int] | None = None) -> Refreshed:
    """Make the summary tables again from scratch, a month of days per transaction (each
    month is replaced at once: reports read whole months meanwhile), drop facts outside
    the sources' span, and set the watermark to the moment the rebuild began."""
    began = rt.now()
    done = Refreshed(rebuilt=True, mark=began)
    async with rt.engine.connect() as conn:
        ids = program_ids or [x[0] for x in await conn.execute(select(t.programs.c.id))]
    for pid in ids:
        sc = await _scope(rt, pid)
        async with rt.engine.connect() as conn:
            span = await _source_span(conn, pid)
        first, last = (date.max, date.min) if span is None else (
            local_date(span[0], sc.tz), local_date(span[1], sc.tz))  # fmt: skip
        async with rt.engine.begin() as conn:
            for table in (t.sales_daily, t.points_daily, t.customer_days):
                await conn.execute(
                    delete(table).where(
                        table.c.program_id == pid, or_(table.c.day < first, table.c.day > last)
                    )
                )
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        for a, b in runs(days):
            async with rt.engine.begin() as conn:
                done.fact_rows += await _write_days(conn, sc, a, b)
        done.days += len(days)
        if days:
            done.programs.append(pid)
    if program_ids is None:
        async with rt.engine.begin() as conn:
            await _set_mark(conn, began)
    return done


async def _set_mark(conn: AsyncConnection, mark: datetime) -> None:
    wm = t.analytics_watermarks
    updated = await conn.execute(
        wm.update().where(wm.c.job == JOB).values(mark=mark, updated_at=mark)
    )
    if not updated.rowcount:
        await conn.execute(insert(wm).values(job=JOB, mark=mark, updated_at=mark))


async def set_watermark(rt: Runtime, mark: datetime) -> None:
    """Declare the summary tables complete until ``mark`` (after a rebuild by hand, or a
    test that starts its clock somewhere)."""
    async with rt.engine.begin() as conn:
        await _set_mark(conn, mark)


async def watermark(rt: Runtime) -> datetime | None:
    """Until when the summary tables are complete (None: never built)."""
    wm = t.analytics_watermarks
    async with rt.engine.connect() as conn:
        mark: datetime | None = (
            await conn.execute(select(wm.c.mark).where(wm.c.job == JOB))
        ).scalar_one_or_none()
    return mark


async def _touched(conn: AsyncConnection, since: datetime) -> list[tuple[int, datetime]]:
    """(program, timestamp that places the fact on a day) of every source row changed at
    or after ``since``."""
    qs = [
        select(r.c.program_id, r.c.occurred_at).where(r.c.confirmed_at >= since),
        select(r.c.program_id, r.c.occurred_at).where(r.c.created_at >= since),
        select(rf.c.program_id, rf.c.created_at).where(rf.c.created_at >= since),
        select(le.c.program_id, le.c.created_at).where(le.c.created_at >= since),
    ]
    out: list[tuple[int, datetime]] = []
    for q in qs:
        out.extend((int(p), at) for p, at in await conn.execute(q))
    return out


async def refresh_days(rt: Runtime, program_id: int, instants: Iterable[datetime]) -> int:
    """Re-aggregate the local days of ``instants`` for one program now: for rows written
    with their own past times (``kopilka import receipts``), which the watermark, a time
    of writing, cannot find.  Nothing to do before the first refresh (it rebuilds all).
    Returns the number of days."""
    wm = t.analytics_watermarks
    async with rt.engine.connect() as conn:
        mark = (await conn.execute(select(wm.c.mark).where(wm.c.job == JOB))).scalar()
    if mark is None:
        return 0
    sc = await _scope(rt, program_id)
    days = {local_date(at, sc.tz) for at in instants}
    async with rt.engine.begin() as conn:
        for a, b in runs(days):
            await _write_days(conn, sc, a, b)
    return len(days)


async def refresh(rt: Runtime) -> Refreshed:
    """Bring the summary tables up to date: re-aggregate every local day touched since the
    watermark (minus ``OVERLAP``), then move the watermark to when this run began.  The
    first run (no watermark) is a rebuild.  The watermark row is locked for the run, so
    two workers do not interleave (SQLite has one writer anyway)."""
    began = rt.now()
    wm = t.analytics_watermarks
    async with rt.engine.begin() as conn:
        q = select(wm.c.mark).where(wm.c.job == JOB)
        mark = (await conn.execute(q if rt.sqlite else q.with_for_update())).scalar_one_or_none()
        if mark is None:
            await _set_mark(conn, began)
    if mark is None:
        return await rebuild(rt)
    done = Refreshed(mark=began)
    async with rt.engine.connect() as conn:
        ids = [x[0] for x in await conn.execute(select(t.programs.c.id))]
    scopes = {pid: await _scope(rt, pid) for pid in ids}  # before the transaction: SQLite
    async with rt.engine.begin() as conn:  # has one connection
        mark = (await conn.execute(q if rt.sqlite else q.with_for_update())).scalar_one()
        touched = await _touched(conn, mark - OVERLAP)
        by_program: dict[int, set[date]] = defaultdict(set)
        for pid, at in touched:
            if pid in scopes:
                by_program[pid].add(local_date(at, scopes[pid].tz))
        for pid, days in sorted(by_program.items()):
            for a, b in runs(days):
                done.fact_rows += await _write_days(conn, scopes[pid], a, b)
            done.days += len(days)
            done.programs.append(pid)
        await _set_mark(conn, began)
    return done
