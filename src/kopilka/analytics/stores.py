"""Stores and cashiers (issue 8): per store, and per cashier within a store, the receipts,
sales, members' share, points earned per receipt and refunds of a period, from
``sales_daily``.  A partner sees its own stores only (``summary.store_ids``).

- sales = money paid of the receipts of the period minus money refunded in the period
  (a refund counts at the store and cashier of its receipt, on the day of the refund);
- members' share = members' sales / sales, in percent;
- points per receipt = points earned by the receipts of the period (as confirmed, before
  refunds) / receipts.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from kopilka.analytics.facts import SUMS_COLUMNS
from kopilka.analytics.summary import NO_FILTERS, Filters, store_ids
from kopilka.domain import summary as dm
from kopilka.domain.summary import Period, Sums
from kopilka.services import exports
from kopilka.services.audit import Actor
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

SORTS = dm.STORE_SORTS
HEADER = ("store_code", "store", "city", "cashier", "receipts", "sales", "member_sales",
          "members_share", "points_earned", "points_per_receipt", "refunds",
          "refund_amount")  # fmt: skip


@dataclass(frozen=True)
class StoreRow:
    store_id: int
    code: str
    name: str
    city: str
    cashier: str | None  # None: the store's total
    everyone: Sums
    members: Sums

    def values(self) -> dict[str, Any]:
        e = self.everyone
        return {
            "store_code": self.code,
            "store": self.name,
            "city": self.city,
            "cashier": "" if self.cashier is None else (self.cashier or "—"),
            "receipts": e.receipts,
            "sales": e.sales,
            "member_sales": self.members.sales,
            "members_share": dm.percent(self.members.sales, e.sales),
            "points_earned": e.points_earned,
            "points_per_receipt": dm.ratio(e.points_earned, e.receipts),
            "refunds": e.refunds,
            "refund_amount": e.refund_amount,
        }


def _sort_key(sort: str) -> Any:
    def key(row: StoreRow) -> Any:
        if sort == "store":
            return row.code
        v = row.values()[sort]
        return Decimal(-1) if v is None else v

    return key


async def store_rows(
    rt: Runtime, *, program_id: int, period: Period, filters: Filters = NO_FILTERS,
    actor: Actor | None = None, sort: str = "sales", cashiers: bool = True,
) -> list[StoreRow]:  # fmt: skip
    """Each store's total row followed by its cashiers' rows (``cashiers``); stores in
    ``sort`` order (descending, but by code ascending), cashiers likewise."""
    if sort not in SORTS:
        raise dm.PeriodError("sort", f"sort must be one of {', '.join(SORTS)}")
    sd, st = t.sales_daily, t.stores
    async with rt.engine.connect() as conn:
        ids = await store_ids(conn, program_id, filters, actor)
        where = [sd.c.program_id == program_id, sd.c.day >= period.start, sd.c.day <= period.end]
        if ids is not None:
            where.append(sd.c.store_id.in_(ids))
        q = (
            select(sd.c.store_id, sd.c.cashier_id, sd.c.member,
                   *[func.sum(sd.c[c]) for c in SUMS_COLUMNS])
            .where(*where)
            .group_by(sd.c.store_id, sd.c.cashier_id, sd.c.member)
        )  # fmt: skip
        sums = (await conn.execute(q)).all()
        names = {
            x.id: x
            for x in await conn.execute(
                select(st.c.id, st.c.code, st.c.name, st.c.city).where(
                    st.c.program_id == program_id
                )
            )
        }
    per: dict[tuple[int, str], tuple[Sums, Sums]] = {}
    for store, cashier, member, *vals in sums:
        s = Sums(*vals)
        e, m = per.get((store, cashier), (Sums(), Sums()))
        per[(store, cashier)] = (e + s, m + s if member else m)
    return _arrange(per, names, sort, cashiers)


def _arrange(
    per: dict[tuple[int, str], tuple[Sums, Sums]], names: dict[int, Any], sort: str, cashiers: bool
) -> list[StoreRow]:
    by_store: dict[int, list[StoreRow]] = {}
    for (store, cashier), (e, m) in per.items():
        n = names[store]
        by_store.setdefault(store, []).append(
            StoreRow(store, n.code, n.name, n.city, cashier, e, m)
        )
    totals = []
    for store, rows in by_store.items():
        n = names[store]
        e = dm.total(r.everyone for r in rows)
        m = dm.total(r.members for r in rows)
        totals.append(StoreRow(store, n.code, n.name, n.city, None, e, m))
    reverse = sort != "store"
    totals.sort(key=_sort_key(sort), reverse=reverse)
    out: list[StoreRow] = []
    for total in totals:
        out.append(total)
        if cashiers:
            rows = by_store[total.store_id]
            key = (lambda r: r.cashier) if sort == "store" else _sort_key(sort)
            out.extend(sorted(rows, key=key, reverse=reverse))
    return out


def tables(rows: list[StoreRow]) -> list[exports.Table]:
    data = [tuple(r.values()[h] for h in HEADER) for r in rows]
    return [exports.Table("stores", HEADER, exports.rows_of(data))]
