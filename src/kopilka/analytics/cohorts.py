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
        active = select(cd.c.customer_id, cd.c.month).where(*where).distinct().cte("active")
        first = (
            select(active.c.customer_id, func.min(active.c.month).label("m0"))
            .group_by(active.c.customer_id)
            .cte("first")
        )
        last_active = dm.add_months(last_m, horizon)
        q = (
            select(first.c.m0, active.c.month, func.count())
            .select_from(active.join(first, first.c.customer_id == active.c.customer_id))
            .where(first.c.m0 >= first_m, first.c.m0 <= last_m, active.c.month < last_active)
            .group_by(first.c.m0, active.c.month)
        )
        rows = [(a, b, int(n)) for a, b, n in await conn.execute(q)]
    return dm.cohorts(rows, first=first_m, last=last_m, horizon=horizon, as_of=as_of)


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
