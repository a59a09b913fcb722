"""The report builder: a ``Definition`` compiled into ONE SQL query (GROUP BY) over
receipts and their lines, run, and shaped as a table and an ECharts option.

Every SQL expression comes from the whitelists below (``_dimension``, ``_measure``,
``_filters``); user text only ever reaches the query as a bound parameter.

Definitions (docs/analytics/builder.md):

- only **confirmed** receipts count (refunds later are not subtracted), in the period's
  local days in the program's time zone;
- at **receipt level** (no line dimension, no category filter): ``sales`` = sum of the
  receipts' ``to_pay``; ``discount``, ``points_earned``, ``points_burned`` = sums of the
  receipts' columns; ``items`` = the quantities of their lines, summed per receipt
  first (a pre-aggregated subquery, so no receipt amount is repeated per line);
- at **line level** (a ``category``/``sku`` dimension or a category filter) every money
  measure is the sum over the matching lines (a line's ``to_pay``, ``discount``,
  ``points_earned``, ``points_redeemed``), ``items`` their quantity;
- ``receipts`` = distinct receipts, ``members`` = distinct customers (non-members are
  not counted), ``avg_receipt`` = sales / receipts rounded half-up to the kopeck.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    Float,
    Select,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from kopilka.domain import report_builder as rb
from kopilka.domain.money import q2
from kopilka.services import exports
from kopilka.store import tables as t
from kopilka.store.types import Money, Quantity

r, ln, s = t.receipts, t.receipt_lines, t.stores
acc, cu = t.accounts, t.customers

DIMENSION_LABELS = {
    "day": "Day",
    "week": "Week (from Monday)",
    "month": "Month",
    "store": "Store",
    "city": "City",
    "region": "Region",
    "category": "Category",
    "sku": "SKU",
    "tier": "Tier",
    "segment": "Segment",
    "member": "Member",
    "cashier": "Cashier",
}
MEASURE_LABELS = {
    "sales": "Sales",
    "receipts": "Receipts",
    "avg_receipt": "Average receipt",
    "items": "Items",
    "members": "Members",
    "points_earned": "Points earned",
    "points_burned": "Points burned",
    "discount": "Discount",
}
CHART_LABELS = {
    "table": "Table only",
    "line": "Line",
    "bar": "Bar",
    "stacked_bar": "Stacked bar",
    "pie": "Pie",
    "heatmap": "Heat map",
}
# Russian for the labels above: exports and scheduled e-mails are made outside the console
# (the console registers the same words with its dictionary).
RU = {
    "Day": "День",
    "Week (from Monday)": "Неделя (с понедельника)",
    "Month": "Месяц",
    "Store": "Магазин",
    "City": "Город",
    "Region": "Регион",
    "Category": "Категория",
    "SKU": "Артикул",
    "Tier": "Уровень",
    "Segment": "Сегмент",
    "Member": "Участник",
    "Cashier": "Кассир",
    "Sales": "Продажи",
    "Receipts": "Чеки",
    "Average receipt": "Средний чек",
    "Items": "Товаров, шт.",
    "Members": "Участники",
    "Points earned": "Начислено баллов",
    "Points burned": "Списано баллов",
    "Discount": "Скидка",
    "Table only": "Только таблица",
    "Line": "Линии",
    "Bar": "Столбцы",
    "Stacked bar": "Столбцы с накоплением",
    "Pie": "Круговая",
    "Heat map": "Тепловая карта",
    "member": "участник",
    "non-member": "не участник",
}


def translator(lang: str) -> Callable[[str], str]:
    """The labels in ``lang`` (``ru`` or English)."""
    if lang != "ru":
        return str
    return lambda text: RU.get(text, text)


MONEY_MEASURES = frozenset({"sales", "avg_receipt", "points_earned", "points_burned", "discount"})
NONE_LABEL = "—"


@dataclass(frozen=True)
class Scope:
    """What the viewer may see: a program, and a partner's or one store's receipts."""

    program_id: int
    timezone: str
    partner_id: int | None = None
    store_id: int | None = None


@dataclass(frozen=True)
class Result:
    definition: rb.Definition
    first: date
    last: date
    keys: list[str]  # dimension then measure keys, the columns' order
    rows: list[tuple[Any, ...]]
    truncated: bool  # more groups than ``limit``

    def header(self, tr: Callable[[str], str] = str) -> list[str]:
        return [tr(DIMENSION_LABELS.get(k) or MEASURE_LABELS[k]) for k in self.keys]

    def table(self, title: str, tr: Callable[[str], str] = str) -> exports.Table:
        return exports.Table(title, self.header(tr), exports.rows_of(self.rows))


# --- compiling ------------------------------------------------------------------------------


@dataclass
class _Ctx:
    d: rb.Definition
    dialect: str
    tz: str
    start: datetime
    end: datetime
    line: bool
    joins: set[str]
    program_id: int = 0
    quantities: Any = None


def _local_time(ctx: _Ctx) -> ColumnElement[Any]:
    """The receipt's local wall-clock time in the program's zone."""
    if ctx.dialect == "postgresql":
        return func.timezone(ctx.tz, r.c.occurred_at)
    # SQLite has no zone database: shift by the offset in force at the receipt's instant
    spans = rb.offsets(ctx.start, ctx.end, rb.zone(ctx.tz))
    shift: ColumnElement[Any]
    if len(spans) == 1:
        shift = literal(f"{spans[0][1]:+d} seconds")
    else:
        shift = case(
            *[
                (r.c.occurred_at < nxt[0], f"{o:+d} seconds")
                for (_, o), nxt in itertools.pairwise(spans)
            ],
            else_=f"{spans[-1][1]:+d} seconds",
        )
    return func.datetime(r.c.occurred_at, shift)


def _bucket(ctx: _Ctx, unit: str) -> ColumnElement[Any]:
    local = _local_time(ctx)
    if ctx.dialect == "postgresql":
        return cast(func.date_trunc(unit, local), Date)
    modifiers = {"day": (), "week": ("-6 days", "weekday 1"), "month": ("start of month",)}
    return func.date(local, *modifiers[unit])


def _dimension(ctx: _Ctx, key: str) -> ColumnElement[Any]:
    if key in rb.TIME_DIMENSIONS:
        return _bucket(ctx, key)
    if key == "tier":
        ctx.joins.add("accounts")
        return acc.c.tier
    if key == "segment":
        ctx.joins.add("customers")
        return cu.c.rfm_segment
    if key == "member":
        return case((r.c.customer_id.is_not(None), "member"), else_="non-member")
    column = {
        "store": s.c.name,
        "city": s.c.city,
        "region": s.c.region,
        "category": ln.c.category,
        "sku": ln.c.sku,
        "cashier": r.c.cashier_id,
    }[key]
    return column


def _measure(ctx: _Ctx, key: str) -> ColumnElement[Any]:
    src = ln if ctx.line else r
    if key == "receipts":
        return func.count(r.c.id.distinct())
    if key == "members":
        return func.count(r.c.customer_id.distinct())
    if key == "items":
        if ctx.line:
            return type_coerce(func.coalesce(func.sum(ln.c.quantity), 0), Quantity)
        ctx.joins.add("quantities")
        return type_coerce(func.coalesce(func.sum(_quantities(ctx).c.qty), 0), Quantity)
    column = {
        "sales": src.c.to_pay,
        "points_earned": src.c.points_earned,
        "points_burned": src.c.points_redeemed,
        "discount": src.c.discount,
    }[key]
    return type_coerce(func.coalesce(func.sum(column), 0), Money)


def _quantities(ctx: _Ctx) -> Any:
    """Each receipt's total quantity (its lines summed first), for receipt-level items."""
    if ctx.quantities is None:
        r2 = r.alias("r2")
        ctx.quantities = (
            select(ln.c.receipt_pk, func.sum(ln.c.quantity).label("qty"))
            .join(r2, r2.c.id == ln.c.receipt_pk)
            .where(
                r2.c.program_id == ctx.program_id,
                r2.c.occurred_at >= ctx.start,
                r2.c.occurred_at < ctx.end,
            )
            .group_by(ln.c.receipt_pk)
            .subquery("quantities")
        )
    return ctx.quantities


def _filters(ctx: _Ctx, scope: Scope) -> list[ColumnElement[bool]]:
    f = ctx.d.filters
    where: list[ColumnElement[bool]] = [
        r.c.program_id == scope.program_id,
        r.c.state == "confirmed",
        r.c.occurred_at >= ctx.start,
        r.c.occurred_at < ctx.end,
    ]
    if scope.partner_id is not None:
        where.append(r.c.partner_id == scope.partner_id)
    if scope.store_id is not None:
        where.append(r.c.store_id == scope.store_id)
    pairs: list[tuple[list[str], Any]] = [
        (f.stores, s.c.code),
        (f.cities, s.c.city),
        (f.regions, s.c.region),
        (f.categories, ln.c.category),
        (f.cashiers, r.c.cashier_id),
    ]
    if f.tiers:
        ctx.joins.add("accounts")
        pairs.append((f.tiers, acc.c.tier))
    if f.segments:
        ctx.joins.add("customers")
        pairs.append((f.segments, cu.c.rfm_segment))
    where += [column.in_(values) for values, column in pairs if values]
    if f.member is not None:
        where.append(r.c.customer_id.is_not(None) if f.member else r.c.customer_id.is_(None))
    return where


def compile_query(
    d: rb.Definition, scope: Scope, *, today: date, dialect: str
) -> tuple[Select[Any], date, date]:
    """The one query of a definition, and the period's first and last local day."""
    first, last = d.period.dates(today)
    start, end = rb.local_bounds(first, last, rb.zone(scope.timezone))
    ctx = _Ctx(d, dialect, scope.timezone, start, end, d.line_level, set(), scope.program_id)
    dims = [_dimension(ctx, k).label(f"d{i}") for i, k in enumerate(d.dimensions)]
    base = {k: _measure(ctx, k) for k in ("sales", "receipts")}
    extra = [k for k in d.measures if k not in ("sales", "receipts", "avg_receipt")]
    q = select(
        *dims,
        base["sales"].label("m_sales"),
        base["receipts"].label("m_receipts"),
        *[_measure(ctx, k).label(f"m_{k}") for k in extra],
    )
    where = _filters(ctx, scope)  # first: a filter may need a join
    q = q.select_from(_from(ctx)).where(*where)
    if dims:
        # by the output names: PostgreSQL would see the zone and unit parameters of a
        # repeated expression as different values and refuse the GROUP BY
        q = q.group_by(*[literal_column(f"d{i}") for i in range(len(dims))])
    q = q.order_by(*_order(ctx, base)).limit(d.limit + 1)
    return q, first, last


def _from(ctx: _Ctx) -> Any:
    src: Any = r.join(s, s.c.id == r.c.store_id)
    if ctx.line:
        src = src.join(ln, ln.c.receipt_pk == r.c.id)
    if "accounts" in ctx.joins:
        src = src.outerjoin(acc, acc.c.id == r.c.account_id)
    if "customers" in ctx.joins:
        src = src.outerjoin(cu, cu.c.id == r.c.customer_id)
    if "quantities" in ctx.joins:
        qty = _quantities(ctx)
        src = src.outerjoin(qty, qty.c.receipt_pk == r.c.id)
    return src


def _order(ctx: _Ctx, base: dict[str, Any]) -> list[Any]:
    d = ctx.d
    keys = d.dimensions
    dims: list[Any] = [literal_column(f"d{i}") for i in range(len(keys))]
    out: list[Any] = []
    e: Any
    if d.sort is not None:
        if d.sort.by in keys:
            e = dims[list(keys).index(d.sort.by)]
        elif d.sort.by == "avg_receipt":
            e = cast(base["sales"], Float) / func.nullif(base["receipts"], 0)
        else:
            e = literal_column_for(d.sort.by)
        out.append((e.desc() if d.sort.desc else e.asc()).nulls_last())
    elif any(k in rb.TIME_DIMENSIONS for k in keys):
        out.append(dims[next(i for i, k in enumerate(keys) if k in rb.TIME_DIMENSIONS)].asc())
    elif dims:
        out.append(literal_column_for(d.measures[0]).desc().nulls_last())
    out += [c.asc().nulls_last() for c in dims]  # ties: a stable order on both databases
    return out


def literal_column_for(measure: str) -> Any:
    """A measure's output column by its label (ORDER BY may name a SELECT label)."""
    return literal_column("m_sales" if measure == "avg_receipt" else f"m_{measure}")


# --- running --------------------------------------------------------------------------------


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _shape(d: rb.Definition, row: Any) -> tuple[Any, ...]:
    out: list[Any] = []
    for i, k in enumerate(d.dimensions):
        v = row[f"d{i}"]
        if k in rb.TIME_DIMENSIONS:
            v = _as_date(v)
        out.append(NONE_LABEL if v is None or v == "" else v)
    for m in d.measures:
        if m == "avg_receipt":
            n = int(row["m_receipts"])
            out.append(q2(row["m_sales"] / n) if n else Decimal("0.00"))
        elif m in ("receipts", "members"):
            out.append(int(row[f"m_{m}"]))
        else:
            out.append(row[f"m_{m}"])
    return tuple(out)


async def run(conn: AsyncConnection, d: rb.Definition, scope: Scope, *, now: datetime) -> Result:
    """The report's rows (at most ``limit``; ``truncated`` says there were more)."""
    today = now.astimezone(rb.zone(scope.timezone)).date()
    q, first, last = compile_query(d, scope, today=today, dialect=conn.dialect.name)
    rows = (await conn.execute(q)).mappings().all()
    shaped = [_shape(d, row) for row in rows[: d.limit]]
    return Result(d, first, last, [*d.dimensions, *d.measures], shaped, len(rows) > d.limit)


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- the chart ------------------------------------------------------------------------------


def _num(v: Any) -> Any:
    # ECharts draws numbers: a statistic on screen, the table keeps the exact Decimal
    return float(v) if isinstance(v, Decimal) else v


def _label(v: Any, tr: Callable[[str], str]) -> str:
    if isinstance(v, date):
        return v.isoformat()
    return tr(str(v)) if v in ("member", "non-member", NONE_LABEL) else str(v)


def chart_option(res: Result, tr: Callable[[str], str] = str) -> dict[str, Any] | None:
    """An ECharts option for the result, or None for ``table`` / nothing to draw."""
    d = res.definition
    if d.chart == "table" or not res.rows or not d.dimensions:
        return None
    nd = len(d.dimensions)
    names = [tr(MEASURE_LABELS[m]) for m in d.measures]
    fmt = "fmt:money" if d.measures[0] in MONEY_MEASURES else "fmt:number"
    base: dict[str, Any] = {
        "tooltip": {"trigger": "item" if d.chart in ("pie", "heatmap") else "axis"},
        "animation": False,
    }
    if d.chart == "pie":
        return base | {
            "series": [
                {
                    "type": "pie",
                    "radius": "65%",
                    "name": names[0],
                    "data": [
                        {"name": _label(row[0], tr), "value": _num(row[nd])} for row in res.rows
                    ],
                }
            ]
        }
    if d.chart in ("stacked_bar", "heatmap"):
        return _two_dimensions(res, base, names[0], fmt, tr)
    cats = _categories([row[0] for row in res.rows], tr)
    series = []
    for j, name in enumerate(names):
        by = {_label(row[0], tr): _num(row[nd + j]) for row in res.rows}
        series.append({"type": d.chart, "name": name, "data": [by.get(c) for c in cats]})
    return base | {
        "legend": {"top": 0},
        "grid": {"left": 80, "right": 20, "top": 40, "bottom": 60},
        "xAxis": {"type": "category", "data": cats, "axisLabel": {"rotate": 30}},
        "yAxis": {"type": "value", "axisLabel": {"formatter": fmt}},
        "series": series,
    }


def _categories(values: Sequence[Any], tr: Callable[[str], str]) -> list[str]:
    seen: dict[str, None] = {}
    ordered = sorted(values, key=str) if values and isinstance(values[0], date) else values
    for v in ordered:
        seen.setdefault(_label(v, tr), None)
    return list(seen)


def _two_dimensions(
    res: Result, base: dict[str, Any], name: str, fmt: str, tr: Callable[[str], str]
) -> dict[str, Any]:
    """Stacked bars (x: first dimension, a series per value of the second) or a heat map
    (x: first, y: second), of the first measure."""
    nd = len(res.definition.dimensions)
    xs = _categories([row[0] for row in res.rows], tr)
    ys = _categories([row[1] for row in res.rows], tr)
    cell = {(_label(row[0], tr), _label(row[1], tr)): _num(row[nd]) for row in res.rows}
    axis = {"type": "category", "data": xs, "axisLabel": {"rotate": 30}}
    if res.definition.chart == "stacked_bar":
        series = [
            {
                "type": "bar",
                "stack": "total",
                "name": y,
                "data": [cell.get((x, y)) for x in xs],
            }
            for y in ys
        ]
        return base | {
            "legend": {"top": 0, "type": "scroll"},
            "grid": {"left": 80, "right": 20, "top": 40, "bottom": 60},
            "xAxis": axis,
            "yAxis": {"type": "value", "axisLabel": {"formatter": fmt}},
            "series": series,
        }
    values = [v for v in cell.values() if v is not None]
    return base | {
        "grid": {"left": 120, "right": 20, "top": 20, "bottom": 90},
        "xAxis": axis,
        "yAxis": {"type": "category", "data": ys},
        "visualMap": {
            "min": min(values, default=0),
            "max": max(values, default=0),
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
        },
        "series": [
            {
                "type": "heatmap",
                "name": name,
                "data": [[xs.index(x), ys.index(y), v] for (x, y), v in cell.items()],
            }
        ],
    }
