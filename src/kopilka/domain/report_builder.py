"""The report builder's definitions, the pure parts (docs/analytics/builder.md).

A report definition is data: up to three dimensions, one or more measures, filters, a
period (fixed dates or a relative one such as ``last_7_days``), a sort, a limit and a
chart type.  It is validated here with errors naming the field; ``analytics.builder``
compiles it into one SQL query from a whitelist of expressions, never from user text.

Also here: the period's local dates and UTC bounds, the time zone's UTC offsets over a
range (SQLite has no time zone database: the query shifts each receipt by the offset
in force at its instant), and the next run of a schedule.  Nothing reads the clock:
``today`` and ``now`` are passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TIME_DIMENSIONS = ("day", "week", "month")
LINE_DIMENSIONS = ("category", "sku")
DIMENSIONS = (
    *TIME_DIMENSIONS,
    "store",
    "city",
    "region",
    "category",
    "sku",
    "tier",
    "segment",
    "member",
    "cashier",
)
MEASURES = (
    "sales",
    "receipts",
    "avg_receipt",
    "items",
    "members",
    "points_earned",
    "points_burned",
    "discount",
)
CHARTS = ("table", "line", "bar", "stacked_bar", "pie", "heatmap")
RELATIVE = (
    "today",
    "yesterday",
    "this_week",
    "previous_week",
    "this_month",
    "previous_month",
    "this_year",
    "previous_year",
)
LAST_N_DAYS = re.compile(r"^last_(\d{1,3})_days$")
MAX_SPAN_DAYS = 3700  # about ten years: the bounded range the time zone offsets cover
MAX_LIMIT = 10_000
FREQUENCIES = ("daily", "weekly", "monthly")
FORMATS = ("xlsx", "pdf")

Dimension = Literal[
    "day",
    "week",
    "month",
    "store",
    "city",
    "region",
    "category",
    "sku",
    "tier",
    "segment",
    "member",
    "cashier",
]
Measure = Literal[
    "sales",
    "receipts",
    "avg_receipt",
    "items",
    "members",
    "points_earned",
    "points_burned",
    "discount",
]
Chart = Literal["table", "line", "bar", "stacked_bar", "pie", "heatmap"]
Word = Annotated[str, Field(min_length=1, max_length=100)]
Words = Annotated[list[Word], Field(max_length=500)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def normalise_relative(value: str) -> str:
    """``"Last 7 days"`` -> ``last_7_days``: the spelling people type, as stored."""
    return re.sub(r"[\s\-]+", "_", value.strip().lower())


class Period(_Model):
    """Either fixed local dates (``from``/``to``, both included) or ``relative``."""

    from_: date | None = Field(None, alias="from")
    to: date | None = None
    relative: str | None = None

    @field_validator("relative")
    @classmethod
    def _relative(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = normalise_relative(v)
        m = LAST_N_DAYS.match(v)
        if v not in RELATIVE and not (m and 1 <= int(m.group(1)) <= 366):
            raise ValueError(
                "unknown period: use last_N_days (N up to 366) or one of " + ", ".join(RELATIVE)
            )
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> Period:
        fixed = self.from_ is not None or self.to is not None
        if self.relative is not None and fixed:
            raise ValueError("give either from/to or relative, not both")
        if self.relative is None and (self.from_ is None or self.to is None):
            raise ValueError("give both from and to, or relative")
        if self.from_ is not None and self.to is not None:
            if self.from_ > self.to:
                raise ValueError("from is after to")
            if (self.to - self.from_).days > MAX_SPAN_DAYS:
                raise ValueError(f"the period is longer than {MAX_SPAN_DAYS} days")
        return self

    def dates(self, today: date) -> tuple[date, date]:
        """The first and last local day (both included) as of ``today``."""
        if self.relative is None:
            assert self.from_ is not None and self.to is not None
            return self.from_, self.to
        return relative_dates(self.relative, today)

    def describe(self) -> str:
        if self.relative is not None:
            return self.relative
        return f"{self.from_}..{self.to}"


def relative_dates(name: str, today: date) -> tuple[date, date]:
    """A relative period's days.  ``last_N_days`` are the N whole days before today
    (today is not over yet); ``this_*`` run from the period's start to today."""
    m = LAST_N_DAYS.match(name)
    if m:
        n = int(m.group(1))
        return today - timedelta(days=n), today - timedelta(days=1)
    monday = today - timedelta(days=today.weekday())
    first = today.replace(day=1)
    prev_last = first - timedelta(days=1)
    table = {
        "today": (today, today),
        "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
        "this_week": (monday, today),
        "previous_week": (monday - timedelta(days=7), monday - timedelta(days=1)),
        "this_month": (first, today),
        "previous_month": (prev_last.replace(day=1), prev_last),
        "this_year": (today.replace(month=1, day=1), today),
        "previous_year": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
    }
    return table[name]


class Filters(_Model):
    """Every given filter must hold; an empty list is no filter.  ``member``: True only
    members' receipts, False only non-members'."""

    stores: Words = Field(default_factory=list, description="store codes")
    cities: Words = Field(default_factory=list)
    regions: Words = Field(default_factory=list)
    categories: Words = Field(default_factory=list)
    tiers: Words = Field(default_factory=list)
    segments: Words = Field(default_factory=list, description="RFM segments")
    member: bool | None = None
    cashiers: Words = Field(default_factory=list)


class Sort(_Model):
    by: str
    desc: bool = True


class Definition(_Model):
    """What a built report shows (docs/analytics/builder.md has every definition)."""

    dimensions: Annotated[list[Dimension], Field(max_length=3)] = Field(default_factory=list)
    measures: Annotated[list[Measure], Field(min_length=1, max_length=len(MEASURES))]
    period: Period = Field(default_factory=lambda: Period(relative="last_30_days"))
    filters: Filters = Field(default_factory=Filters)
    sort: Sort | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 1000
    chart: Chart = "table"

    @field_validator("dimensions", "measures")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each may be chosen once")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> Definition:
        if sum(d in TIME_DIMENSIONS for d in self.dimensions) > 1:
            raise ValueError("dimensions: choose one of day, week and month")
        if self.sort is not None and self.sort.by not in (*self.dimensions, *self.measures):
            raise ValueError("sort: sort by one of the report's dimensions or measures")
        need = {"line": 1, "bar": 1, "pie": 1, "stacked_bar": 2, "heatmap": 2}.get(self.chart)
        if need == 1 and not self.dimensions:
            raise ValueError("chart: a line, bar or pie chart needs a dimension")
        if need == 2 and len(self.dimensions) < 2:
            raise ValueError("chart: a stacked bar chart or a heat map needs two dimensions")
        if self.chart == "heatmap" and len(self.measures) != 1:
            raise ValueError("chart: a heat map shows exactly one measure")
        return self

    @property
    def line_level(self) -> bool:
        """Read line by line: a line dimension, or a category filter, is about lines."""
        return bool(self.filters.categories) or any(d in LINE_DIMENSIONS for d in self.dimensions)


# --- time zones ----------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    """The zone, or ValueError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone: {name}") from None


def local_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants of local midnight at ``first`` and after ``last`` ([start, end))."""
    start = datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def offsets(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, int]]:
    """The zone's UTC offset (seconds) over [start, end): (from, offset) pairs, the first
    from ``start``, each next one where the offset changes (found hour by hour, then
    minute by minute; zones change on whole minutes)."""
    out: list[tuple[datetime, int]] = []

    def off(at: datetime) -> int:
        delta = at.astimezone(tz).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    at = start
    current = off(at)
    out.append((start, current))
    while at < end:
        nxt = at + timedelta(hours=1)
        if off(nxt) != current:
            probe = at
            while off(probe) == current:
                probe += timedelta(minutes=1)
            current = off(probe)
            out.append((probe, current))
        at = nxt
    return out


# --- schedules --------------------------------------------------------------------------


@dataclass(frozen=True)
class Cadence:
    """When a schedule runs: ``daily``, ``weekly`` (``weekday`` 1 = Monday ... 7) or
    ``monthly`` (``day`` 1..28) at local ``at`` in ``timezone``."""

    frequency: str
    at: time
    timezone: str
    weekday: int | None = None
    day: int | None = None


def check_cadence(c: Cadence) -> None:
    """ValueError naming the field when the cadence cannot run."""
    if c.frequency not in FREQUENCIES:
        raise ValueError("frequency: one of daily, weekly, monthly")
    if c.frequency == "weekly" and (c.weekday is None or not 1 <= c.weekday <= 7):
        raise ValueError("weekday: 1 (Monday) to 7 (Sunday) for a weekly schedule")
    if c.frequency == "monthly" and (c.day is None or not 1 <= c.day <= 28):
        raise ValueError("day: 1 to 28 for a monthly schedule")
    zone(c.timezone)


def next_run(c: Cadence, after: datetime) -> datetime:
    """The first run strictly after ``after`` (UTC)."""
    tz = zone(c.timezone)
    local_day = after.astimezone(tz).date() - timedelta(days=1)
    for _ in range(400):
        if _runs_on(c, local_day):
            at = datetime.combine(local_day, c.at, tzinfo=tz).astimezone(UTC)
            if at > after:
                return at
        local_day += timedelta(days=1)
    raise AssertionError("a valid cadence runs within 400 days")  # pragma: no cover


def _runs_on(c: Cadence, day: date) -> bool:
    if c.frequency == "daily":
        return True
    if c.frequency == "weekly":
        return day.isoweekday() == c.weekday
    return day.day == c.day


def parse_time(value: str) -> time:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError("at: a time as HH:MM")
    return time(int(m.group(1)), int(m.group(2)))


def parse_addresses(value: str) -> list[str]:
    """E-mail addresses separated by commas, semicolons or whitespace."""
    out = [a for a in re.split(r"[\s,;]+", value.strip()) if a]
    if not out:
        raise ValueError("recipients: at least one e-mail address")
    if len(out) > 50:
        raise ValueError("recipients: at most 50 addresses")
    for a in out:
        if not re.fullmatch(r"[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+", a) or len(a) > 254:
            raise ValueError(f"recipients: not an e-mail address: {a}")
    return out
