"""Cohorts (issue 8): members by the month of their first purchase ever, and the share of
each cohort that bought again in month k after it (k = 0 .. 11; month 0 is 100 % by
definition).  From ``customer_days``: one SQL statement over the members' active days.

With a store, city or partner scope, "purchase" means a purchase at those stores (the
first one there, and the returns there); with a customer group, the group's members.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics.summary import NO_FILTERS, Filters, customer_group, store_ids
from kopilka.domain import summary as dm
from kopilka.domain.summary import Cohort, Period
from kopilka.services import exports
from kopilka.services.audit import Actor
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

HORIZON = 12


async def cohort_rows(
    rt: Runtime, *, program_id: int, period: Period, as_of: date,
    filters: Filters = NO_FILTERS, actor: Actor | None = None, horizon: int = HORIZON,
) -> list[Cohort]:  # fmt: skip
    """Cohorts whose first month lies in the period (by month), month k counted up to
    ``as_of`` (today in the program's zone)."""
    cd = t.customer_days
    first_m, last_m = period.start.replace(day=1), period.end.replace(day=1)
    async with rt.engine.connect() as conn:
        ids = await store_ids(conn, program_id, filters, actor)
        group = customer_group(program_id, filters)
        where: list[Any] = [cd.c.program_id == program_id]
        if ids is not None:
            where.append(cd.c.store_id.in_(ids))
        if group is not None:
            where.append(cd.c.customer_id.in_(group))
        # each customer's active months once, then his first: the counts are plain
        # count(*) over (customer, month) pairs (a count(distinct) over the days is
        # several times slower on PostgreSQL)
        last_active = dm.add_months(last_m, horizon)
        if rt.sqlite:
            rows = await _pairs_counted_here(conn, where, first_m, last_m, last_active)
        else:
            rows = await _pairs_counted_in_sql(conn, where, first_m, last_m, last_active)
    return dm.cohorts(rows, first=first_m, last=last_m, horizon=horizon, as_of=as_of)


Rows = list[tuple[date, date, int]]


async def _pairs_counted_in_sql(
    conn: AsyncConnection, where: list[Any], first_m: date, last_m: date, last_active: date
) -> Rows:
    """(cohort month, month, customers) by one statement: each customer's active months
    once, then his first (plain counts over pairs: a count(distinct) over the days is
    three times slower on PostgreSQL)."""
    cd = t.customer_days
    active = select(cd.c.customer_id, cd.c.month).where(*where).distinct().cte("active")
    m0 = func.min(active.c.month)
    first = (
        select(active.c.customer_id, m0.label("m0"))
        .group_by(active.c.customer_id)
        .having(m0 >= first_m, m0 <= last_m)
        .cte("first")
    )
    q = (
        select(first.c.m0, active.c.month, func.count())
        .select_from(active.join(first, first.c.customer_id == active.c.customer_id))
        .where(active.c.month < last_active)
        .group_by(first.c.m0, active.c.month)
    )
    return [(a, b, int(n)) for a, b, n in await conn.execute(q)]


async def _pairs_counted_here(
    conn: AsyncConnection, where: list[Any], first_m: date, last_m: date, last_active: date
) -> Rows:
    """The same on SQLite, whose planner joins the two CTEs by scanning (minutes on a
    million receipts): the distinct pairs in customer order, counted here."""
    cd = t.customer_days
    q = (
        select(cd.c.customer_id, cd.c.month)
        .where(*where)
        .distinct()
        .order_by(cd.c.customer_id, cd.c.month)
    )
    counts: dict[tuple[date, date], int] = {}
    current, m0 = None, date.min
    for customer, month in await conn.execute(q):
        if customer != current:
            current, m0 = customer, month  # months come in order: the first is the first
        if first_m <= m0 <= last_m and month < last_active:
            counts[(m0, month)] = counts.get((m0, month), 0) + 1
    return [(a, b, n) for (a, b), n in counts.items()]


def header(horizon: int = HORIZON) -> tuple[str, ...]:
    return ("cohort", "customers", *(f"m{k}" for k in range(horizon)))


def tables(cohorts: list[Cohort], horizon: int = HORIZON) -> list[exports.Table]:
    """Retention in percent (CSV's table) and the customer counts (a second XLSX sheet)."""
    pct = [
        (c.month.strftime("%Y-%m"), c.size, *(c.retention(k) for k in range(horizon)))
        for c in cohorts
    ]
    counts = [
        (c.month.strftime("%Y-%m"), c.size,
         *(c.active[k] if k < len(c.active) else None for k in range(horizon)))
        for c in cohorts
    ]  # fmt: skip
    return [
        exports.Table("retention %", header(horizon), exports.rows_of(pct)),
        exports.Table("customers", header(horizon), exports.rows_of(counts)),
    ]
