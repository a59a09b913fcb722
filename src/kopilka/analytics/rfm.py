"""The RFM report (docs/analytics/rfm.md): one row per customer with a purchase in the
window, scored and segmented by ``domain.rfm``.

Purchases are confirmed receipts (from the till or ``kopilka import receipts``) of
members (``customer_id`` not null), receipts of a merged customer counted for the
customer who absorbed him.  The window is the ``N`` local days ending on the as-of date
inclusive, in the program's time zone: ``(as_of - N days, as_of]``; receipts after the
as-of date, and refunds made after it, are ignored, so a past date's report can be
made again and comes out the same.

The aggregation is one ``GROUP BY customer_id`` over the receipts of the window (the
index ``(program_id, occurred_at)`` selects them; refunds are summed per receipt and
joined); naming, merge-following, scoring and segments then run in Python.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml  # type: ignore[import-untyped]
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain import rfm
from kopilka.services import exports
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

SEGMENTS_ENV = rfm.SEGMENTS_ENV
DEFAULT_WINDOW_DAYS = rfm.DEFAULT_WINDOW_DAYS
MAX_WINDOW_DAYS = 36_500
HEADER = (
    "customer",
    "last_purchase",
    "recency_days",
    "frequency",
    "monetary",
    "r",
    "f",
    "m",
    "segment",
)
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class RfmReport:
    program_id: int
    as_of: date
    window_days: int
    timezone: str
    segments: rfm.SegmentMap
    rows: list[rfm.RfmRow]

    @property
    def totals(self) -> list[rfm.SegmentTotal]:
        return rfm.segment_totals(self.rows, self.segments)

    @property
    def grid(self) -> dict[tuple[int, int], int]:
        return rfm.grid(self.rows)

    @property
    def by_customer(self) -> dict[int, str]:
        return {row.customer_id: row.segment.code for row in self.rows}


# --- the segment map ------------------------------------------------------------------------


def load_segment_map(path: str | None = None) -> rfm.SegmentMap:
    """The segment map of a YAML file (``path``, else the file named by
    ``KOPILKA_RFM_SEGMENTS``), else the default 11-segment map.  Raises
    ``rfm.SegmentConfigError`` naming the file and the path inside it."""
    path = path or os.environ.get(SEGMENTS_ENV) or None
    if path is None:
        return rfm.DEFAULT_MAP
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise rfm.SegmentConfigError([(path, f"cannot read the file: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise rfm.SegmentConfigError([(path, f"not valid YAML: {exc}")]) from None
    try:
        return rfm.parse_segment_map(data)
    except rfm.SegmentConfigError as exc:
        raise rfm.SegmentConfigError([(f"{path}: {p}", m) for p, m in exc.problems]) from None


# --- arguments --------------------------------------------------------------------------------


def parse_as_of(raw: str | None, *, field: str = "as_of") -> date:
    if not raw or not raw.strip():
        raise ServiceError("validation_failed", "give a date as YYYY-MM-DD", field=field)
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ServiceError("validation_failed", "give a date as YYYY-MM-DD", field=field) from None


def parse_window(raw: str | int | None, *, field: str = "window_days") -> int:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return DEFAULT_WINDOW_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise ServiceError(
            "validation_failed", "give a whole number of days", field=field
        ) from None
    if not 1 <= days <= MAX_WINDOW_DAYS:
        raise ServiceError("validation_failed", "give 1 to 36500 days", field=field)
    return days


def window_utc(as_of: date, window_days: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants ``[start, end)`` of the local days ``(as_of - N, as_of]``."""
    first = as_of - timedelta(days=window_days - 1)
    start = datetime.combine(first, day_time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(as_of + timedelta(days=1), day_time(0), tzinfo=tz).astimezone(UTC)
    return start, end


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Agg:
    customer_id: int
    frequency: int
    paid: Decimal
    refunded: Decimal
    last_at: datetime


async def _aggregate(
    conn: AsyncConnection, program_id: int, start: datetime, end: datetime
) -> list[_Agg]:
    r, rf = t.receipts, t.refunds
    refunded = (
        select(rf.c.receipt_pk, func.sum(rf.c.amount).label("amount"))
        .where(rf.c.program_id == program_id, rf.c.created_at < end)
        .group_by(rf.c.receipt_pk)
        .subquery()
    )
    q = (
        select(
            r.c.customer_id,
            func.count().label("n"),
            func.sum(r.c.to_pay).label("paid"),
            func.sum(func.coalesce(refunded.c.amount, ZERO)).label("back"),
            func.max(r.c.occurred_at).label("last"),
        )
        .select_from(r.outerjoin(refunded, refunded.c.receipt_pk == r.c.id))
        .where(
            r.c.program_id == program_id,
            r.c.state == "confirmed",
            r.c.customer_id.is_not(None),
            r.c.occurred_at >= start,
            r.c.occurred_at < end,
        )
        .group_by(r.c.customer_id)
    )
    if conn.dialect.name == "postgresql":
        # a year of a large chain's customers: hash the groups in memory, not on disk
        await conn.execute(text("SET LOCAL work_mem = '64MB'"))
    rows = (await conn.execute(q)).all()
    return [_Agg(int(x[0]), int(x[1]), x[2] or ZERO, x[3] or ZERO, x[4]) for x in rows]


async def _survivors(conn: AsyncConnection, program_id: int) -> dict[int, int]:
    """Merged customer → the customer who finally absorbed him (chains followed)."""
    cu = t.customers
    rows = (
        await conn.execute(
            select(cu.c.id, cu.c.merged_into_id).where(
                cu.c.program_id == program_id, cu.c.merged_into_id.is_not(None)
            )
        )
    ).all()
    into = {int(a): int(b) for a, b in rows}
    out: dict[int, int] = {}
    for cid in into:
        seen = {cid}
        target = into[cid]
        while target in into and target not in seen:  # a cycle would be a bug; stop at it
            seen.add(target)
            target = into[target]
        out[cid] = target
    return out


async def _names(conn: AsyncConnection, program_id: int, ids: set[int]) -> dict[int, str]:
    """``customer``: the external id, else the card number (an active card first, the
    oldest of them), else ``#<id>``."""
    cu, cd = t.customers, t.cards
    names: dict[int, str] = {}
    external = await conn.execute(
        select(cu.c.id, cu.c.external_id).where(
            cu.c.program_id == program_id, cu.c.external_id.is_not(None)
        )
    )
    for cid, ext in external:
        if int(cid) in ids:
            names[int(cid)] = str(ext)
    cards = await conn.execute(
        select(cd.c.customer_id, cd.c.number)
        .where(cd.c.program_id == program_id)
        .order_by(
            cd.c.customer_id,
            (cd.c.status != "active"),
            cd.c.created_at,
            cd.c.id,
        )
    )
    for cid, number in cards:
        key = int(cid)
        if key in ids and key not in names:
            names[key] = str(number)
    for cid in ids:
        names.setdefault(cid, f"#{cid}")
    return names


def _purchases(
    aggs: Iterable[_Agg], survivors: dict[int, int], names: dict[int, str], tz: ZoneInfo
) -> list[rfm.Purchases]:
    merged: dict[int, list[_Agg]] = {}
    for a in aggs:
        merged.setdefault(survivors.get(a.customer_id, a.customer_id), []).append(a)
    out = []
    for cid, parts in merged.items():
        last = max(p.last_at for p in parts)
        out.append(
            rfm.Purchases(
                customer_id=cid,
                customer=names[cid],
                last_purchase=last.astimezone(tz).date(),
                frequency=sum(p.frequency for p in parts),
                monetary=sum((p.paid - p.refunded for p in parts), ZERO),
            )
        )
    return out


async def compute(
    rt: Runtime,
    program_id: int,
    *,
    as_of: date,
    window_days: int = DEFAULT_WINDOW_DAYS,
    segments: rfm.SegmentMap = rfm.DEFAULT_MAP,
) -> RfmReport:
    """The report as of the end of ``as_of`` (local date) over ``window_days`` days."""
    tz_name = (await rt.compiled(program_id)).settings.timezone
    tz = ZoneInfo(tz_name)
    start, end = window_utc(as_of, window_days, tz)
    async with rt.engine.connect() as conn:
        aggs = await _aggregate(conn, program_id, start, end)
        survivors = await _survivors(conn, program_id) if aggs else {}
        ids = {survivors.get(a.customer_id, a.customer_id) for a in aggs}
        names = await _names(conn, program_id, ids) if ids else {}
    rows = rfm.rfm_rows(_purchases(aggs, survivors, names, tz), as_of=as_of, segments=segments)
    return RfmReport(program_id, as_of, window_days, tz_name, segments, rows)


# The console pages through one report: keep the last few for a short while, so that
# the next page of a large program's report is not computed again (the CLI and the API
# always compute afresh).
CACHE_TTL_S = 300.0
_cache: dict[tuple[Any, ...], tuple[float, RfmReport]] = {}


async def compute_cached(
    rt: Runtime,
    program_id: int,
    *,
    as_of: date,
    window_days: int = DEFAULT_WINDOW_DAYS,
    segments: rfm.SegmentMap = rfm.DEFAULT_MAP,
) -> RfmReport:
    """``compute``, remembered for ``CACHE_TTL_S`` seconds per process (the console)."""
    key = (rt.url, program_id, as_of, window_days, segments)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_TTL_S:
        return hit[1]
    rep = await compute(rt, program_id, as_of=as_of, window_days=window_days, segments=segments)
    for old in [k for k, (at, _) in _cache.items() if now - at >= CACHE_TTL_S]:
        del _cache[old]
    if len(_cache) >= 8:
        _cache.pop(next(iter(_cache)))
    _cache[key] = (now, rep)
    return rep


@dataclass(frozen=True)
class Migration:
    """Segment at ``a`` × segment at ``b``: how many customers (``rfm.NONE``: no purchase
    in that window)."""

    a: date
    b: date
    segments: rfm.SegmentMap
    cells: dict[tuple[str, str], int]

    @property
    def codes(self) -> list[str]:
        """Rows and columns: the map's segments, then "none" if anyone is in it."""
        used = {c for pair in self.cells for c in pair}
        return [*self.segments.codes, *([rfm.NONE] if rfm.NONE in used else [])]

    def count(self, a: str, b: str) -> int:
        return self.cells.get((a, b), 0)


async def migration(
    rt: Runtime,
    program_id: int,
    *,
    a: date,
    b: date,
    window_days: int = DEFAULT_WINDOW_DAYS,
    segments: rfm.SegmentMap = rfm.DEFAULT_MAP,
) -> Migration:
    first = await compute(rt, program_id, as_of=a, window_days=window_days, segments=segments)
    second = await compute(rt, program_id, as_of=b, window_days=window_days, segments=segments)
    return Migration(a, b, segments, rfm.migration_matrix(first.by_customer, second.by_customer))


# --- tables for the exports -----------------------------------------------------------------


def row_values(row: rfm.RfmRow) -> tuple[Any, ...]:
    return (
        row.customer,
        row.last_purchase.isoformat(),
        row.recency_days,
        row.frequency,
        row.monetary,
        row.r,
        row.f,
        row.m,
        row.segment.name,
    )


def tables(report: RfmReport, *, lang: str = "en") -> list[exports.Table]:
    """The report's rows (the CSV), then segment sizes and revenue (XLSX's 2nd sheet)."""
    main = exports.Table("RFM", HEADER, exports.rows_of([row_values(r) for r in report.rows]))
    sizes: Sequence[Sequence[Any]] = [
        (s.segment.code, s.segment.label(lang), s.customers, s.revenue) for s in report.totals
    ]
    return [
        main,
        exports.Table(
            "Segments", ("code", "segment", "customers", "revenue"), exports.rows_of(sizes)
        ),
    ]


def migration_table(mig: Migration, *, lang: str = "en") -> exports.Table:
    def label(code: str) -> str:
        seg = mig.segments.by_code(code)
        return seg.label(lang) if seg else ("нет покупок" if lang == "ru" else "no purchase")

    codes = mig.codes
    header = (f"{mig.a.isoformat()} \\ {mig.b.isoformat()}", *(label(c) for c in codes))
    rows = [(label(a), *(mig.count(a, b) for b in codes)) for a in codes]
    return exports.Table("Migration", header, exports.rows_of(rows))
