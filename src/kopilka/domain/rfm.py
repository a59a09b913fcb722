"""RFM: recency, frequency and monetary value of each customer, scored 1-5, and segments.

Pure: the caller reads the purchases (services / analytics) and passes the as-of date in.

Scores (the tie rule).  With ``n`` customers, a customer's score on one measure is
``1 + floor(5 * w / n)`` where ``w`` is the number of customers strictly *worse* on that
measure: for recency, worse = more days since the last purchase; for frequency and
monetary, worse = a smaller value.  So

- equal values always get equal scores (ties never split across quintiles);
- the best value(s) get ``1 + floor(5 * (n - k) / n)`` where ``k`` is how many share it;
  the worst get 1 (``w = 0``);
- ``n = 10`` distinct values score ``1 1 2 2 3 3 4 4 5 5``;
- a measure where 60 % of customers share the worst value (bought once) gives all of
  them 1; the next value up then scores ``1 + floor(5 * 0.6) = 4``: scores 2 and 3 stay
  empty rather than split equal customers.

Worked examples (values → scores, "higher is better"):

=====================================  ===========================
values                                 scores
=====================================  ===========================
10 20 30 40 50 60 70 80 90 100         1 1 2 2 3 3 4 4 5 5
1 1 1 1 1 1 2 2 3 4                    1 1 1 1 1 1 4 4 5 5
7 7 7                                  1 1 1
5                                      1
1 2                                    1 3
=====================================  ===========================

Segments: an ordered list of rules over r/f/m ranges; the first rule that matches
names the segment.  The default map is the widely used 11-segment grid on recency and
frequency (docs/analytics/rfm.md, ADR 0015).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

SCORES = (1, 2, 3, 4, 5)
SEGMENTS_ENV = "KOPILKA_RFM_SEGMENTS"  # a YAML file with the installation's segment map
DEFAULT_WINDOW_DAYS = 365
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,31}$")
RANGE_RE = re.compile(r"^\s*([1-5])\s*(?:-\s*([1-5])\s*)?$")


def scores(values: Sequence[Any], *, higher_is_better: bool = True) -> list[int]:
    """The 1-5 score of each value, in the input's order (the tie rule above).

    ``values`` must be mutually comparable (ints, Decimals); ``n = len(values)``."""
    n = len(values)
    ordered = sorted(values)
    out: list[int] = []
    for v in values:
        if higher_is_better:
            worse = bisect.bisect_left(ordered, v)
        else:
            worse = n - bisect.bisect_right(ordered, v)
        out.append(1 + (5 * worse) // n)
    return out


# --- segments -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """Scores ``lo..hi`` inclusive."""

    lo: int = 1
    hi: int = 5

    def __contains__(self, score: object) -> bool:
        return isinstance(score, int) and self.lo <= score <= self.hi

    def __str__(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"


ANY = Span()


@dataclass(frozen=True, slots=True)
class Segment:
    """A named rule: a customer whose scores are in all three spans belongs to it."""

    code: str  # stored in customers.rfm_segment; what campaigns and promotions name
    name: str  # English
    name_ru: str
    r: Span = ANY
    f: Span = ANY
    m: Span = ANY

    def matches(self, r: int, f: int, m: int) -> bool:
        return r in self.r and f in self.f and m in self.m

    def label(self, lang: str) -> str:
        return self.name_ru if lang == "ru" and self.name_ru else self.name


@dataclass(frozen=True, slots=True)
class SegmentMap:
    """Ordered rules; the first that matches wins.  Every (r, f, m) matches one."""

    segments: tuple[Segment, ...]

    def segment_of(self, r: int, f: int, m: int) -> Segment:
        for seg in self.segments:
            if seg.matches(r, f, m):
                return seg
        raise AssertionError(f"no segment for {r}{f}{m}: the map was not validated")

    def by_code(self, code: str) -> Segment | None:
        return next((s for s in self.segments if s.code == code), None)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(s.code for s in self.segments)


def _seg(code: str, name: str, ru: str, r: tuple[int, int], f: tuple[int, int]) -> Segment:
    return Segment(code, name, ru, Span(*r), Span(*f))


# The 11-segment grid on (r, f): each of the 25 cells belongs to exactly one segment,
# so the order does not matter; m is shown but does not move a customer.
DEFAULT_MAP = SegmentMap(
    (
        _seg("champions", "Champions", "Чемпионы", (5, 5), (4, 5)),
        _seg("loyal", "Loyal", "Лояльные", (3, 4), (4, 5)),
        _seg("potential_loyalist", "Potential loyalist", "Потенциально лояльные", (4, 5), (2, 3)),
        _seg("new_customers", "New customers", "Новые", (5, 5), (1, 1)),
        _seg("promising", "Promising", "Перспективные", (4, 4), (1, 1)),
        _seg("need_attention", "Need attention", "Требуют внимания", (3, 3), (3, 3)),
        _seg("about_to_sleep", "About to sleep", "Засыпающие", (3, 3), (1, 2)),
        _seg("at_risk", "At risk", "В зоне риска", (1, 2), (3, 4)),
        _seg("cant_lose", "Can't lose them", "Нельзя потерять", (1, 2), (5, 5)),
        _seg("hibernating", "Hibernating", "Спящие", (2, 2), (1, 2)),
        _seg("lost", "Lost", "Потерянные", (1, 1), (1, 2)),
    )
)


class SegmentConfigError(ValueError):
    """A segment file that cannot be used; ``problems`` are (path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))


_KEYS = {"code", "name", "name_ru", "r", "f", "m"}


def _span(raw: Any, path: str, problems: list[tuple[str, str]]) -> Span:
    if raw is None:
        return ANY
    if isinstance(raw, bool):
        problems.append((path, "give a score 1-5 or a range such as 4-5"))
        return ANY
    if isinstance(raw, int):
        raw = str(raw)
    if isinstance(raw, list) and len(raw) == 2 and all(type(x) is int for x in raw):
        raw = f"{raw[0]}-{raw[1]}"
    match = RANGE_RE.match(raw) if isinstance(raw, str) else None
    if match is None:
        problems.append((path, "give a score 1-5 or a range such as 4-5"))
        return ANY
    lo = int(match.group(1))
    hi = int(match.group(2) or lo)
    if lo > hi:
        problems.append((path, f"the range {lo}-{hi} is empty: write the smaller score first"))
        return ANY
    return Span(lo, hi)


def _text(raw: Any, path: str, problems: list[tuple[str, str]], *, need: bool) -> str:
    if raw is None and not need:
        return ""
    if not isinstance(raw, str) or not raw.strip():
        problems.append((path, "give a non-empty text"))
        return ""
    if len(raw) > 100:
        problems.append((path, "at most 100 characters"))
    return raw.strip()


def _segment(raw: Any, path: str, problems: list[tuple[str, str]]) -> Segment | None:
    if not isinstance(raw, Mapping):
        problems.append((path, "each segment is a mapping: code, name, name_ru, r, f, m"))
        return None
    for key in sorted(set(map(str, raw)) - _KEYS):
        problems.append((f"{path}.{key}", "unknown key (use code, name, name_ru, r, f, m)"))
    code = raw.get("code")
    if not isinstance(code, str) or not CODE_RE.match(code):
        problems.append((f"{path}.code", "give a code of 1-32 lower-case letters, digits, _ or -"))
        code = ""
    name = _text(raw.get("name"), f"{path}.name", problems, need=True)
    name_ru = _text(raw.get("name_ru"), f"{path}.name_ru", problems, need=False)
    spans = [_span(raw.get(k), f"{path}.{k}", problems) for k in ("r", "f", "m")]
    return Segment(code, name, name_ru, *spans)


def parse_segment_map(data: Any, *, where: str = "segments") -> SegmentMap:
    """A segment map from parsed YAML/JSON: a list of segments, or ``{segments: [...]}``.

    Raises ``SegmentConfigError`` naming every problem by its path (``segments[2].r``):
    a bad range, a duplicate or malformed code, a missing name, an unknown key, or a
    combination of scores no segment matches (add a last rule without ranges)."""
    if isinstance(data, Mapping) and set(map(str, data)) == {"segments"}:
        data = data["segments"]
    if not isinstance(data, list) or not data:
        raise SegmentConfigError([(where, "give a non-empty list of segments")])
    problems: list[tuple[str, str]] = []
    parsed: list[Segment] = []
    for i, raw in enumerate(data):
        seg = _segment(raw, f"{where}[{i}]", problems)
        if seg is not None:
            parsed.append(seg)
    seen = Counter(s.code for s in parsed if s.code)
    for code, count in seen.items():
        if count > 1:
            problems.append((where, f"the code {code!r} is used {count} times"))
    if not problems:
        gap = _uncovered(parsed)
        if gap is not None:
            r, f, m = gap
            problems.append(
                (
                    where,
                    f"no segment matches r={r}, f={f}, m={m}: add a last segment "
                    "without r, f and m to catch the rest",
                )
            )
    if problems:
        raise SegmentConfigError(problems)
    return SegmentMap(tuple(parsed))


def _uncovered(segments: Sequence[Segment]) -> tuple[int, int, int] | None:
    for r in SCORES:
        for f in SCORES:
            for m in SCORES:
                if not any(s.matches(r, f, m) for s in segments):
                    return r, f, m
    return None


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Purchases:
    """One customer's confirmed purchases in the window (after following merges)."""

    customer_id: int
    customer: str  # external id, else card number, else "#<id>"
    last_purchase: date  # local date in the program's time zone
    frequency: int  # receipts
    monetary: Decimal  # money paid minus money refunded on those receipts


@dataclass(frozen=True, slots=True)
class RfmRow:
    customer_id: int
    customer: str
    last_purchase: date
    recency_days: int
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int
    segment: Segment


def rfm_rows(
    purchases: Iterable[Purchases], *, as_of: date, segments: SegmentMap = DEFAULT_MAP
) -> list[RfmRow]:
    """Score every customer against the others and name his segment; ordered by
    ``customer`` (text, by code point) and then by id, so the output is stable.

    Precondition: every ``last_purchase <= as_of`` (the caller's window ends there)."""
    items = list(purchases)
    if not items:
        return []
    recency = [(as_of - p.last_purchase).days for p in items]
    r = scores(recency, higher_is_better=False)
    f = scores([p.frequency for p in items])
    m = scores([p.monetary for p in items])
    # 125 combinations: match the rules once, not once per customer
    lookup = {
        (a, b, c): segments.segment_of(a, b, c) for a in SCORES for b in SCORES for c in SCORES
    }
    rows = [
        RfmRow(
            p.customer_id,
            p.customer,
            p.last_purchase,
            recency[i],
            p.frequency,
            p.monetary,
            r[i],
            f[i],
            m[i],
            lookup[r[i], f[i], m[i]],
        )
        for i, p in enumerate(items)
    ]
    rows.sort(key=lambda row: (row.customer, row.customer_id))
    return rows


@dataclass(frozen=True, slots=True)
class SegmentTotal:
    segment: Segment
    customers: int
    revenue: Decimal  # sum of monetary


def segment_totals(rows: Iterable[RfmRow], segments: SegmentMap) -> list[SegmentTotal]:
    """Customers and revenue per segment, in the map's order (empty segments too)."""
    count: Counter[str] = Counter()
    revenue: dict[str, Decimal] = {}
    for row in rows:
        code = row.segment.code
        count[code] += 1
        revenue[code] = revenue.get(code, Decimal("0.00")) + row.monetary
    return [
        SegmentTotal(s, count[s.code], revenue.get(s.code, Decimal("0.00")))
        for s in segments.segments
    ]


def grid(rows: Iterable[RfmRow]) -> dict[tuple[int, int], int]:
    """Customers per (r, f) cell; all 25 cells present."""
    cells = {(r, f): 0 for r in SCORES for f in SCORES}
    for row in rows:
        cells[row.r, row.f] += 1
    return cells


NONE = ""  # "no purchase in the window" in the migration matrix


def migration_matrix(
    before: Mapping[int, str], after: Mapping[int, str]
) -> dict[tuple[str, str], int]:
    """How many customers moved from each segment at A to each at B (customer id →
    segment code at each date).  A customer with no purchase in one window counts under
    ``NONE`` there; pairs with no customers are left out."""
    out: Counter[tuple[str, str]] = Counter()
    for cid in before.keys() | after.keys():
        out[before.get(cid, NONE), after.get(cid, NONE)] += 1
    return dict(out)
