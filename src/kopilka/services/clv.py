"""Customer lifetime value (issue 8, docs/analytics/clv.md): BG/NBD and Gamma-Gamma on a
program's confirmed member receipts up to the as-of date.

One report for the console page, the admin API and ``kopilka report clv``.  Receipts
are read with their store's time zone so that each purchase falls on its local date;
the fit (``domain.clv``) runs in a worker thread, so the server keeps answering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from kopilka.domain import basket as b
from kopilka.domain import clv as d
from kopilka.domain.roles import Perm
from kopilka.services import exports
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

HEADER = (
    "customer",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "expected_value",
    "clv",
)
KOPECK = Decimal("0.01")
STREAM_ROWS = 20_000


@dataclass(frozen=True)
class ClvReport:
    settings: d.Settings
    fitted: d.Fitted
    purchases: int
    load_s: float
    fit_s: float


def _bad(field: str, detail: str) -> ServiceError:
    return ServiceError("validation_failed", detail, field=field)


def _number(values: Mapping[str, str | None], field: str, default: float) -> float:
    text = (values.get(field) or "").strip().replace(",", ".")
    if not text:
        return default
    try:
        x = float(text)
    except ValueError:
        raise _bad(field, f"expected a number, got {text!r}") from None
    if not 0 <= x < 1e6:
        raise _bad(field, "expected a number of zero or more")
    return x


def _whole(values: Mapping[str, str | None], field: str, default: int, top: int) -> int:
    text = (values.get(field) or "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= top:
        raise _bad(field, f"expected a whole number from 1 to {top}")
    return int(text)


def parse_query(values: Mapping[str, str | None]) -> d.Settings:
    """The report's options as text: ``as_of`` (YYYY-MM-DD, required), ``time_unit``
    (day|week), ``horizon``, ``penalizer``, ``discount_rate``, ``clv_months``."""
    text = (values.get("as_of") or "").strip()
    if not text:
        raise _bad("as_of", "give the as-of date, YYYY-MM-DD")
    try:
        as_of = date.fromisoformat(text)
    except ValueError:
        raise _bad("as_of", f"expected a date as YYYY-MM-DD, got {text!r}") from None
    unit = (values.get("time_unit") or "week").strip()
    if unit not in d.UNITS:
        raise _bad("time_unit", "expected day or week")
    horizon = _whole(values, "horizon", d.HORIZON_DEFAULT[unit], 3650 if unit == "day" else 520)
    penalizer = _number(values, "penalizer", 0.0)
    rate = _number(values, "discount_rate", 0.01)
    if rate >= 1:
        raise _bad("discount_rate", "expected a monthly rate below 1, e.g. 0.01")
    months = _whole(values, "clv_months", 12, 120)
    return d.Settings(as_of, unit, horizon, penalizer, rate, months)


async def customer_names(conn: Any, program_id: int) -> dict[int, str]:
    """How the report names a customer: the chain's external id, else the oldest active
    card's number, else ``#`` and the customer's id."""
    cu, ca = t.customers, t.cards
    names: dict[int, str] = {}
    rows = await conn.execute(
        select(ca.c.customer_id, ca.c.number)
        .where(ca.c.program_id == program_id, ca.c.status == "active")
        .order_by(ca.c.customer_id, ca.c.created_at.desc(), ca.c.id.desc())
    )
    for cid, number in rows:
        names[int(cid)] = str(number)  # the last one written per customer is the oldest
    rows = await conn.execute(
        select(cu.c.id, cu.c.external_id).where(
            cu.c.program_id == program_id, cu.c.external_id.is_not(None)
        )
    )
    for cid, ext in rows:
        names[int(cid)] = str(ext)
    return names


async def load_purchases(
    rt: Runtime, actor: Actor, program_id: int, as_of: date
) -> list[d.Purchase]:
    """Confirmed member receipts on local dates up to ``as_of``, the value paid each."""
    r, s = t.receipts, t.stores
    # a day's end anywhere on Earth; the exact local date is checked per receipt below
    end = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) + timedelta(days=2)
    stmt = (
        select(r.c.customer_id, r.c.occurred_at, r.c.to_pay, s.c.timezone)
        .join(s, s.c.id == r.c.store_id)
        .where(
            r.c.program_id == program_id,
            r.c.state == "confirmed",
            r.c.customer_id.is_not(None),
            r.c.occurred_at < end,
        )
    )
    if actor.store_id is not None:
        stmt = stmt.where(r.c.store_id == actor.store_id)
    if actor.partner_id is not None:
        stmt = stmt.where(r.c.partner_id == actor.partner_id)
    zones: dict[str, ZoneInfo] = {}
    out: list[d.Purchase] = []
    async with rt.engine.connect() as conn:
        names = await customer_names(conn, program_id)
        result = await conn.stream(stmt.execution_options(yield_per=STREAM_ROWS))
        async for part in result.partitions(STREAM_ROWS):
            for cid, at, paid, tz in part:
                zone = zones.get(tz) or zones.setdefault(tz, ZoneInfo(tz or "Europe/Moscow"))
                on = at.astimezone(zone).date()
                if on <= as_of:
                    name = names.get(int(cid)) or f"#{cid}"
                    out.append(d.Purchase(name, on, Decimal(paid)))
    return out


async def run_report(rt: Runtime, actor: Actor, program_id: int, s: d.Settings) -> ClvReport:
    """Fit and predict; ``validation_failed`` (field ``as_of``) when there is too little
    data or a model does not converge."""
    actor.require(Perm.REPORTS_READ)
    t0 = time.perf_counter()
    purchases = await load_purchases(rt, actor, program_id, s.as_of)
    t1 = time.perf_counter()
    try:
        fitted = await asyncio.to_thread(d.fit, purchases, s)
    except d.Unfit as exc:
        raise ServiceError("validation_failed", exc.detail, field="as_of") from None
    return ClvReport(s, fitted, len(purchases), t1 - t0, time.perf_counter() - t1)


def money(value: float) -> Decimal:
    """A model's amount to the kopeck (half up)."""
    return Decimal(repr(value)).quantize(KOPECK, rounding=ROUND_HALF_UP)


def row(c: d.CustomerValue, numeric: bool = False) -> tuple[Any, ...]:
    """A customer as the files write it: statistics as decimal text (CSV) or numbers
    (``numeric``, XLSX); money to the kopeck."""
    text = (lambda x: x) if numeric else b.number_text
    return (
        c.customer,
        c.frequency,
        c.recency,
        c.T,
        money(c.monetary_value),
        text(c.p_alive),
        text(c.expected_purchases),
        money(c.expected_value),
        money(c.clv),
    )


def param_lines(rep: ClvReport) -> list[str]:
    """``name=value`` in the order r, alpha, a, b, p, q, v, at full float precision."""
    return [f"{k}={rep.fitted.params[k]!r}" for k in d.PARAM_NAMES]


def tables(rep: ClvReport, *, fmt: str = "csv") -> list[exports.Table]:
    """The customers, then the parameters (a second XLSX sheet)."""
    rows = [row(c, fmt == "xlsx") for c in rep.fitted.customers]
    customers = exports.Table("Customers", HEADER, exports.rows_of(rows))
    s = rep.settings
    facts: list[tuple[str, Any]] = [(k, rep.fitted.params[k]) for k in d.PARAM_NAMES]
    facts += [
        ("as_of", s.as_of.isoformat()),
        ("time_unit", s.unit),
        ("horizon", s.horizon),
        ("penalizer", s.penalizer),
        ("discount_rate", s.discount_rate),
        ("clv_months", s.clv_months),
        ("customers", len(rep.fitted.customers)),
        ("repeat_customers", rep.fitted.repeaters),
        ("purchases", rep.purchases),
    ]
    params = exports.Table("Parameters", ("name", "value"), exports.rows_of(facts))
    return [customers, params]
