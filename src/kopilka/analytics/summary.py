"""The summary report (issue 8): the program's KPIs for a period next to the previous
period of the same length, and their course over time by day, week or month.

Figures come from the summary tables (``analytics.facts``), which the worker keeps up to
date; the report says until when they are complete (``as_of``).  A customer-group filter
(tag, tier) cannot be answered from them, so it aggregates the receipts and the ledger
directly, restricted to the group (``source == "receipts"``): exact, slower on years of
data.  The definitions are in ``domain.summary``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from kopilka.analytics import facts
from kopilka.analytics.facts import Scope, day_start
from kopilka.domain import summary as dm
from kopilka.domain.summary import Change, Counts, Period, Points, Sums
from kopilka.services import exports
from kopilka.services.audit import Actor
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

sd, pd, cd = t.sales_daily, t.points_daily, t.customer_days
DaySums = dict[date, tuple[Sums, Sums]]  # day -> (everyone, members)


@dataclass(frozen=True)
class Filters:
    """What the viewer narrowed the report to; empty means everything he may see."""

    stores: tuple[int, ...] = ()
    city: str = ""
    tag: str = ""
    tier: str = ""

    @property
    def by_group(self) -> bool:
        return bool(self.tag or self.tier)


NO_FILTERS = Filters()


async def store_ids(
    conn: AsyncConnection, program_id: int, filters: Filters, actor: Actor | None
) -> list[int] | None:
    """The stores the report covers: None for every store of the program (no filter and no
    partner or store scope), else the ids (possibly none)."""
    st = t.stores
    scoped = actor is not None and (actor.partner_id is not None or actor.store_id is not None)
    if not (filters.stores or filters.city or scoped):
        return None
    q = select(st.c.id).where(st.c.program_id == program_id)
    if filters.stores:
        q = q.where(st.c.id.in_(filters.stores))
    if filters.city:
        q = q.where(st.c.city == filters.city)
    if actor is not None and actor.partner_id is not None:
        q = q.where(st.c.partner_id == actor.partner_id)
    if actor is not None and actor.store_id is not None:
        q = q.where(st.c.id == actor.store_id)
    return [int(x) for x in (await conn.execute(q.order_by(st.c.id))).scalars()]


def customer_group(program_id: int, filters: Filters) -> Select[Any] | None:
    """Ids of the customers in the group asked for (a tag and/or a tier), or None."""
    if not filters.by_group:
        return None
    cu, acc = t.customers, t.accounts
    q = select(cu.c.id).where(cu.c.program_id == program_id)
    if filters.tag:
        tag = filters.tag.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where(cu.c.tags.like(f'%"{tag}"%', escape="\\"))
    if filters.tier:
        q = q.where(
            cu.c.id.in_(select(acc.c.customer_id).where(acc.c.program_id == program_id,
                                                        acc.c.tier == filters.tier))
        )  # fmt: skip
    return q


@dataclass
class Figures:
    """A period's raw material: sums per day, ledger movements per day, people, liability."""

    by_day: DaySums = field(default_factory=dict)
    points_by_day: dict[date, dict[str, Decimal]] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    liability_points: Decimal | None = None

    def totals(self) -> tuple[Sums, Sums]:
        return (
            dm.total(v[0] for v in self.by_day.values()),
            dm.total(v[1] for v in self.by_day.values()),
        )

    def points(self) -> Points:
        out: dict[str, Decimal] = defaultdict(Decimal)
        for kinds in self.points_by_day.values():
            for k, v in kinds.items():
                out[k] += v
        return Points(dict(out))


def _add(by_day: DaySums, day: date, member: bool, s: Sums) -> None:
    everyone, members = by_day.get(day, (Sums(), Sums()))
    by_day[day] = (everyone + s, members + s if member else members)


async def _from_tables(conn: AsyncConnection, sc: Scope, period: Period) -> Figures:
    where = [sd.c.program_id == sc.program_id, sd.c.day >= period.start, sd.c.day <= period.end]
    if sc.stores is not None:
        where.append(sd.c.store_id.in_(sc.stores))
    cols = [func.sum(sd.c[name]) for name in facts.SUMS_COLUMNS]
    q = select(sd.c.day, sd.c.member, *cols).where(*where).group_by(sd.c.day, sd.c.member)
    out = Figures()
    for row in await conn.execute(q):
        _add(out.by_day, row[0], bool(row[1]), Sums(*row[2:]))
    pwhere = [pd.c.program_id == sc.program_id, pd.c.day >= period.start, pd.c.day <= period.end]
    if sc.stores is not None:
        pwhere.append(pd.c.store_id.in_(sc.stores))
    q2 = select(pd.c.day, pd.c.kind, func.sum(pd.c.amount)).where(*pwhere)
    for day, kind, amount in await conn.execute(q2.group_by(pd.c.day, pd.c.kind)):
        out.points_by_day.setdefault(day, {})[kind] = amount
    cwhere = [cd.c.program_id == sc.program_id, cd.c.day >= period.start, cd.c.day <= period.end]
    if sc.stores is not None:
        cwhere.append(cd.c.store_id.in_(sc.stores))
    members = (
        await conn.execute(select(func.count(func.distinct(cd.c.customer_id))).where(*cwhere))
    ).scalar_one()
    out.counts = Counts(members=int(members or 0))
    if sc.stores is None:
        q3 = select(func.sum(pd.c.amount)).where(
            pd.c.program_id == sc.program_id, pd.c.day <= period.end
        )
        out.liability_points = (await conn.execute(q3)).scalar_one() or Decimal(0)
    return out


async def _from_receipts(conn: AsyncConnection, sc: Scope, period: Period) -> Figures:
    start, end = day_start(period.start, sc.tz), day_start(period.end + timedelta(1), sc.tz)
    out = Figures()
    for (day, _store, _cashier, member), s in (
        await facts.sales_facts(conn, sc, start, end)
    ).items():
        _add(out.by_day, day, member, s)
    for (day, _store, kind), (_n, amount) in (
        await facts.points_facts(conn, sc, start, end)
    ).items():
        kinds = out.points_by_day.setdefault(day, {})
        kinds[kind] = kinds.get(kind, Decimal(0)) + amount
    people = await facts.customer_facts(conn, sc, start, end)
    out.counts = Counts(members=len({c for (_d, c, _s) in people}))
    if sc.stores is None:
        le = t.ledger_entries
        q = select(func.sum(le.c.amount)).where(le.c.program_id == sc.program_id,
                                                le.c.created_at < end)  # fmt: skip
        if sc.customers is not None:
            q = q.where(le.c.account_id.in_(facts.group_accounts(sc)))
        out.liability_points = (await conn.execute(q)).scalar_one() or Decimal(0)
    return out


async def _counts(conn: AsyncConnection, sc: Scope, period: Period, members: int) -> Counts:
    """Cards issued, customers registered and phones confirmed in the period, members in
    all by its end.  A store or city filter counts customers whose home store it is."""
    cu, ca = t.customers, t.cards
    start, end = day_start(period.start, sc.tz), day_start(period.end + timedelta(1), sc.tz)
    who = [cu.c.program_id == sc.program_id]
    if sc.stores is not None:
        who.append(cu.c.home_store_id.in_(sc.stores))
    if sc.customers is not None:
        who.append(cu.c.id.in_(sc.customers))

    async def count(q: Any) -> int:
        return int((await conn.execute(q)).scalar_one() or 0)

    n = select(func.count())
    issued = await count(
        n.select_from(ca.join(cu, cu.c.id == ca.c.customer_id)).where(
            *who, ca.c.created_at >= start, ca.c.created_at < end
        )
    )
    registered = await count(
        n.select_from(cu).where(*who, cu.c.registered_at >= start, cu.c.registered_at < end)
    )
    confirmed = await count(
        n.select_from(cu).where(
            *who, cu.c.phone_confirmed_at >= start, cu.c.phone_confirmed_at < end
        )
    )
    total = await count(
        n.select_from(cu).where(*who, cu.c.registered_at < end, cu.c.status != "merged")
    )
    return Counts(members, total, issued, registered, confirmed)


async def figures(
    rt: Runtime, *, program_id: int, period: Period, filters: Filters, actor: Actor | None,
    use_tables: bool = True,
) -> Figures:  # fmt: skip
    """Everything the report needs of one period.  ``use_tables=False`` aggregates the
    receipts even without a group filter (the benchmark's baseline; tests compare)."""
    settings = await rt.program(program_id)
    async with rt.report_conn() as conn:  # the replica, when there is one (ADR 0032)
        stores = await store_ids(conn, program_id, filters, actor)
        sc = Scope(program_id, settings.timezone, rt.sqlite, stores,
                   customer_group(program_id, filters))  # fmt: skip
        if use_tables and sc.customers is None:
            out = await _from_tables(conn, sc, period)
        else:
            out = await _from_receipts(conn, sc, period)
        out.counts = await _counts(conn, sc, period, out.counts.members)
    return out


@dataclass
class SummaryReport:
    period: Period
    previous: Period
    granularity: str
    kpis: dict[str, Change]
    series: list[dict[str, Any]]
    as_of: datetime | None  # the summary tables are complete until then
    source: str  # "summary tables" | "receipts"


def _kpis(f: Figures, point_value: Decimal) -> dict[str, Decimal | int | None]:
    everyone, members = f.totals()
    return dm.kpis(everyone, members, f.counts, f.points(), f.liability_points, point_value)


def series(f: Figures, period: Period, granularity: str) -> list[dict[str, Any]]:
    """One row per bucket (day, week or month) of the period, empty buckets included."""
    sums: dict[date, tuple[Sums, Sums]] = {}
    pts: dict[date, dict[str, Decimal]] = defaultdict(dict)
    for day, (e, m) in f.by_day.items():
        b = dm.bucket(day, granularity)
        pe, pm = sums.get(b, (Sums(), Sums()))
        sums[b] = (pe + e, pm + m)
    for day, kinds in f.points_by_day.items():
        into = pts[dm.bucket(day, granularity)]
        for k, v in kinds.items():
            into[k] = into.get(k, Decimal(0)) + v
    out = []
    for b in dm.buckets(period, granularity):
        e, m = sums.get(b, (Sums(), Sums()))
        p = Points(pts.get(b, {}))
        out.append(
            {
                "bucket": b,
                "receipts": e.receipts,
                "sales": e.sales,
                "member_sales": m.sales,
                "members_share": dm.percent(m.sales, e.sales),
                "average_receipt": dm.ratio(e.sales, e.receipts),
                "points_earned": p.earned,
                "points_burned": p.burned,
            }
        )
    return out


async def summary_report(
    rt: Runtime, *, program_id: int, period: Period, granularity: str = "day",
    filters: Filters = NO_FILTERS, actor: Actor | None = None, use_tables: bool = True,
) -> SummaryReport:  # fmt: skip
    dm.bucket(period.start, granularity)  # refuses an unknown granularity
    settings = await rt.program(program_id)
    kw: dict[str, Any] = {"program_id": program_id, "filters": filters, "actor": actor,
                          "use_tables": use_tables}  # fmt: skip
    if rt.sqlite:  # one connection
        cur = await figures(rt, period=period, **kw)
        prev = await figures(rt, period=period.previous(), **kw)
    else:  # the two periods on two connections at once
        cur, prev = await asyncio.gather(
            figures(rt, period=period, **kw), figures(rt, period=period.previous(), **kw)
        )
    a, b = _kpis(cur, settings.point_value), _kpis(prev, settings.point_value)
    return SummaryReport(
        period,
        period.previous(),
        granularity,
        {k: dm.compare(a[k], b[k]) for k, _ in dm.KPI_KINDS},
        series(cur, period, granularity),
        await facts.watermark(rt),
        "summary tables" if use_tables and not filters.by_group else "receipts",
    )


KPI_HEADER = ("metric", "value", "previous", "change", "change_pct")
SERIES_HEADER = ("bucket", "receipts", "sales", "member_sales", "members_share",
                 "average_receipt", "points_earned", "points_burned")  # fmt: skip


def tables(rep: SummaryReport) -> list[exports.Table]:
    """The KPIs (CSV's table) and the series (a second XLSX sheet)."""
    kpi_rows = [
        (k, c.value, c.previous, c.change, c.change_pct)
        for k, c in rep.kpis.items()
    ]  # fmt: skip
    series_rows = [tuple(row[h] for h in SERIES_HEADER) for row in rep.series]
    return [
        exports.Table("summary", KPI_HEADER, exports.rows_of(kpi_rows)),
        exports.Table("over time", SERIES_HEADER, exports.rows_of(series_rows)),
    ]
