"""The summary report's arithmetic (issue 8): periods, KPIs from additive sums, the
comparison with the previous period, chart buckets and cohort retention.

Pure: the numbers come in as sums read from the summary tables (or straight from the
receipts), the definitions below turn them into what the report shows.  Money and points
stay ``Decimal`` and are rounded once, here, half up to the kopeck; shares are percents
with one decimal.

Definitions (docs/analytics/summary.md says the same for users):

- sales = money paid (``to_pay``) of the receipts confirmed for a sale on a day of the
  period, minus the money refunded on a day of the period;
- members' sales = the same over receipts with a customer; members' share = members'
  sales / sales;
- average receipt = sales / receipts; items per receipt = receipt lines / receipts;
  units per receipt = sum of quantities (a kilogram of a weighed good is 1) / receipts;
- points earned = earned minus earned points taken back by refunds; points burned =
  burned minus burned points returned by refunds; points expired = expired;
- liability = every ledger movement up to the end of the period's last day (available
  plus pending points, held points included) times the program's point value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal("0")
KOPECK = Decimal("0.01")
TENTH = Decimal("0.1")
GRANULARITIES = ("day", "week", "month")
# the stores report's orders (analytics/stores.py)
STORE_SORTS = ("sales", "receipts", "members_share", "points_per_receipt", "refunds",
               "refund_amount", "store")  # fmt: skip
MAX_DAYS = 3700  # ten years and a bit: a period longer is a typo


class PeriodError(ValueError):
    """A bad period or granularity; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Period:
    """Local dates of the program, both ends included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise PeriodError("to", "the period ends before it starts")
        if self.days > MAX_DAYS:
            raise PeriodError("from", f"the period is longer than {MAX_DAYS} days")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


def bucket(day: date, granularity: str) -> date:
    """The first day of the chart's bar that ``day`` falls in (weeks start on Monday)."""
    if granularity == "day":
        return day
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    raise PeriodError("granularity", f"granularity must be one of {', '.join(GRANULARITIES)}")


def buckets(period: Period, granularity: str) -> list[date]:
    """Every bucket of the period in order, the empty ones included."""
    out: list[date] = []
    day = period.start
    while day <= period.end:
        b = bucket(day, granularity)
        if not out or out[-1] != b:
            out.append(b)
        day += timedelta(days=1)
    return out


@dataclass(frozen=True, slots=True)
class Sums:
    """Additive figures of a set of receipts and refunds (a row of ``sales_daily``)."""

    receipts: int = 0
    lines: int = 0
    quantity: Decimal = ZERO
    amount: Decimal = ZERO
    discount: Decimal = ZERO
    redeemed_value: Decimal = ZERO
    to_pay: Decimal = ZERO
    points_earned: Decimal = ZERO
    refunds: int = 0
    refund_amount: Decimal = ZERO
    refund_points: Decimal = ZERO

    def __add__(self, other: Sums) -> Sums:
        return Sums(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Sums)))

    @property
    def sales(self) -> Decimal:
        return self.to_pay - self.refund_amount


def total(items: Iterable[Sums]) -> Sums:
    out = Sums()
    for s in items:
        out = out + s
    return out


@dataclass(frozen=True, slots=True)
class Points:
    """Ledger movements of a period by kind (``points_daily``), signed as in the ledger."""

    by_kind: Mapping[str, Decimal]

    def _k(self, kind: str) -> Decimal:
        return self.by_kind.get(kind, ZERO)

    @property
    def earned(self) -> Decimal:
        return self._k("earn") + self._k("refund_out")

    @property
    def burned(self) -> Decimal:
        return -self._k("burn") - self._k("refund_in")

    @property
    def expired(self) -> Decimal:
        return -self._k("expire")


def money(x: Decimal) -> Decimal:
    return x.quantize(KOPECK, rounding=ROUND_HALF_UP)


def ratio(num: Decimal | int, den: Decimal | int, unit: Decimal = KOPECK) -> Decimal | None:
    """``num / den`` rounded half up to ``unit``; None when there is nothing to divide by."""
    if not den:
        return None
    return (Decimal(num) / Decimal(den)).quantize(unit, rounding=ROUND_HALF_UP)


def percent(num: Decimal | int, den: Decimal | int) -> Decimal | None:
    if not den:
        return None
    return (Decimal(num) * 100 / Decimal(den)).quantize(TENTH, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Counts:
    """What is not a sum of receipts: people and cards in the period."""

    members: int = 0  # distinct customers with a confirmed receipt in the period
    members_total: int = 0  # customers registered up to the end of the period
    cards_issued: int = 0
    registered: int = 0
    phones_confirmed: int = 0


# (key, kind) of every KPI in the order the report shows them; kind: count | money |
# points | ratio | percent.
KPI_KINDS: tuple[tuple[str, str], ...] = (
    ("sales", "money"),
    ("receipts", "count"),
    ("average_receipt", "money"),
    ("items_per_receipt", "ratio"),
    ("units_per_receipt", "ratio"),
    ("member_sales", "money"),
    ("members_share", "percent"),
    ("members", "count"),
    ("members_total", "count"),
    ("cards_issued", "count"),
    ("registered", "count"),
    ("phones_confirmed", "count"),
    ("discount", "money"),
    ("refunds", "count"),
    ("refund_amount", "money"),
    ("points_earned", "points"),
    ("points_burned", "points"),
    ("points_expired", "points"),
    ("liability", "money"),
)


def kpis(
    everyone: Sums,
    members: Sums,
    counts: Counts,
    points: Points,
    liability_points: Decimal | None,
    point_value: Decimal,
) -> dict[str, Decimal | int | None]:
    """The summary's figures for one period.  ``liability_points`` None: not known for
    this selection (a store filter: the ledger's balance belongs to no store)."""
    return {
        "sales": everyone.sales,
        "receipts": everyone.receipts,
        "average_receipt": ratio(everyone.sales, everyone.receipts),
        "items_per_receipt": ratio(everyone.lines, everyone.receipts),
        "units_per_receipt": ratio(everyone.quantity, everyone.receipts),
        "member_sales": members.sales,
        "members_share": percent(members.sales, everyone.sales),
        "members": counts.members,
        "members_total": counts.members_total,
        "cards_issued": counts.cards_issued,
        "registered": counts.registered,
        "phones_confirmed": counts.phones_confirmed,
        "discount": everyone.discount,
        "refunds": everyone.refunds,
        "refund_amount": everyone.refund_amount,
        "points_earned": points.earned,
        "points_burned": points.burned,
        "points_expired": points.expired,
        "liability": None if liability_points is None else money(liability_points * point_value),
    }


@dataclass(frozen=True, slots=True)
class Change:
    value: Decimal | int | None
    previous: Decimal | int | None
    change: Decimal | int | None
    change_pct: Decimal | None  # None: no previous value to compare with


def compare(value: Decimal | int | None, previous: Decimal | int | None) -> Change:
    """The value against the previous period's: the difference and the relative change in
    percent (one decimal, half up), None where either side is unknown or previous is 0."""
    if value is None or previous is None:
        return Change(value, previous, None, None)
    diff: Decimal | int
    if isinstance(value, int) and isinstance(previous, int):
        diff = value - previous
    else:
        diff = Decimal(value) - Decimal(previous)
    base = Decimal(previous).copy_abs()
    return Change(value, previous, diff, percent(diff, base) if previous else None)


@dataclass(frozen=True, slots=True)
class Cohort:
    month: date  # the month of the customers' first purchase ever
    size: int
    active: tuple[int, ...]  # customers buying in month k after (k = 0, 1, ...)

    def retention(self, k: int) -> Decimal | None:
        return percent(self.active[k], self.size) if k < len(self.active) else None


def months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def add_months(d: date, k: int) -> date:
    m = d.month - 1 + k
    return date(d.year + m // 12, m % 12 + 1, 1)


def cohorts(
    active: Iterable[tuple[date, date, int]], *, first: date, last: date, horizon: int, as_of: date
) -> list[Cohort]:
    """Cohorts of first-purchase months ``first``..``last`` from rows (cohort month, month
    of activity, distinct customers active).  Month k of a cohort is reported only when it
    has begun by ``as_of`` (so a young cohort's row stops, rather than showing 0 %)."""
    counts: dict[tuple[date, int], int] = {}
    for cohort_month, month, n in active:
        k = months_between(cohort_month, month)
        if 0 <= k < horizon:
            counts[(cohort_month, k)] = counts.get((cohort_month, k), 0) + n
    out = []
    month = first.replace(day=1)
    while month <= last:
        seen = min(horizon, months_between(month, as_of) + 1)
        row = tuple(counts.get((month, k), 0) for k in range(max(0, seen)))
        out.append(Cohort(month, counts.get((month, 0), 0), row))
        month = add_months(month, 1)
    return out
