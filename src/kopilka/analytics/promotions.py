"""The promotion-effect report: what each promotion gave and cost, and what it changed.

Read from what the till already writes: ``receipt_promotions`` (one row per promotion a
receipt got: its discount and points, written with the receipt) joined to confirmed
``receipts``; members from ``customers``.  Nothing is written; no table of its own.

Per promotion, over the report's period (``docs/analytics/promotion-effect.md``):

- participants (distinct members who got it), receipts, sales of those receipts
  (``amount - discount``: after every discount, before points burned), discount, points
  given, their cost at the program's ``point_value``, cost = discount + points cost;
- the incremental effect on sales per member, by one of two methods:
  ``holdout`` (the promotion holds out members: treatment vs control over the promotion's
  days in the period; eligible are the members registered before their end and anyone
  who bought in them, or for a personal promotion those offered it; zeros included)
  or ``pre_period`` (difference in differences: participants' change from a pre-period of
  equal length minus the change among members who bought in either period without it);
- incremental revenue = effect x members it applies to, and the ROI (``domain.effect``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, distinct, func, select

from kopilka.domain.effect import Estimate, diff_in_diff, roi, welch
from kopilka.domain.holdout import is_held_out
from kopilka.domain.money import ZERO, q2
from kopilka.domain.rules.compiler import CompiledProgram, CompiledPromotion
from kopilka.services import exports
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

HOLDOUT = "holdout"
PRE_PERIOD = "pre_period"
MAX_DAYS = 3660
r_ = t.receipts.c
rp_ = t.receipt_promotions.c


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open span of time ``[start, end)``, UTC-aware."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def before(self) -> Window:
        """The pre-period: the same length, ending where this one starts."""
        return Window(self.start - self.length, self.start)


@dataclass(frozen=True, slots=True)
class Effect:
    """The incremental effect and what it is worth."""

    method: str  # HOLDOUT | PRE_PERIOD
    window: Window
    sales: Estimate  # sales per member (roubles): treatment - control, or the DiD
    rate: Estimate | None  # purchase rate (share of members who bought): holdout only
    members: int  # treatment members (holdout) or participants: what the effect scales by
    incremental: Decimal  # effect x members, to the kopeck (an estimate)
    incremental_low: Decimal | None
    incremental_high: Decimal | None
    roi: float | None
    roi_low: float | None
    roi_high: float | None


@dataclass(frozen=True, slots=True)
class PromotionFigures:
    promotion_id: str
    name: str
    holdout_percent: Decimal
    participants: int
    receipts: int
    sales: Decimal
    discount: Decimal
    points: Decimal
    points_cost: Decimal
    effect: Effect | None
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @property
    def cost(self) -> Decimal:
        return self.discount + self.points_cost


@dataclass(frozen=True)
class EffectReport:
    program_id: int
    day_from: date
    day_to: date  # inclusive
    window: Window
    margin: Decimal | None  # a fraction: 0.25
    point_value: Decimal
    rows: list[PromotionFigures] = field(default_factory=list)


# --- parameters -------------------------------------------------------------------------------


def parse_day(text: str | None, *, field: str) -> date:
    """``2026-11-01`` -> a date; a clear error naming ``field`` otherwise."""
    if not text:
        raise ServiceError("validation_failed", f"{field}: give a date", field=field)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ServiceError(
            "validation_failed", f"{field}: expected a date like 2026-11-01", field=field
        ) from None


def parse_margin(text: str | None) -> Decimal | None:
    """A margin in percent (``25``, ``25%``, ``12.5``) -> a fraction; empty -> None."""
    if text is None or not text.strip():
        return None
    raw = text.strip().removesuffix("%").strip().replace(",", ".")
    try:
        value = Decimal(raw)
    except ArithmeticError:
        value = Decimal(-1)
    if not value.is_finite() or not ZERO <= value <= 100:
        raise ServiceError(
            "validation_failed", "margin: a percent from 0 to 100, e.g. 25", field="margin"
        )
    return value / 100


def report_window(day_from: date, day_to: date, tz: ZoneInfo) -> Window:
    """Whole days ``day_from``..``day_to`` (both included) in the program's time zone."""
    check_days(day_from, day_to)
    start = datetime.combine(day_from, time(0), tz).astimezone(UTC)
    end = datetime.combine(day_to + timedelta(days=1), time(0), tz).astimezone(UTC)
    return Window(start, end)


def check_days(day_from: date, day_to: date) -> None:
    if day_to < day_from:
        raise ServiceError("validation_failed", "to: must not be before from", field="to")
    if (day_to - day_from).days >= MAX_DAYS:
        raise ServiceError(
            "validation_failed", f"to: at most {MAX_DAYS} days in a report", field="to"
        )


def promotion_window(report: Window, p: CompiledPromotion | None) -> Window | None:
    """The report's period cut to the promotion's own dates; None when they do not meet."""
    start, end = report.start, report.end
    if p is not None and p.starts_at is not None:
        start = max(start, p.starts_at.astimezone(UTC))
    if p is not None and p.ends_at is not None:
        end = min(end, p.ends_at.astimezone(UTC))
    return Window(start, end) if start < end else None


async def find_program(rt: Runtime, code: str | None) -> tuple[int, str]:
    """(id, code) of the program with this code, or of the only program there is."""
    p = t.programs.c
    async with rt.engine.connect() as conn:
        q = select(p.id, p.code)
        rows = (await conn.execute(q if code is None else q.where(p.code == code))).all()
    if code is not None and not rows:
        raise ServiceError("program_not_found", f"program: no program {code!r}", field="program")
    if len(rows) != 1:
        raise ServiceError(
            "validation_failed",
            f"program: there are {len(rows)} programs; name one (program code)",
            field="program",
        )
    return int(rows[0][0]), str(rows[0][1])


# --- reads -----------------------------------------------------------------------------------


def _confirmed(program_id: int, w: Window) -> Any:
    return and_(
        r_.program_id == program_id,
        r_.state == "confirmed",
        r_.occurred_at >= w.start,
        r_.occurred_at < w.end,
    )


async def _given(conn: Any, program_id: int, w: Window) -> list[Any]:
    """Per promotion: receipts, participants, sales, discount, points."""
    q = (
        select(
            rp_.promotion_id,
            func.count(),
            func.count(distinct(r_.customer_id)),
            func.sum(r_.amount),
            func.sum(r_.discount),
            func.sum(rp_.discount),
            func.sum(rp_.points),
        )
        .select_from(t.receipt_promotions.join(t.receipts, r_.id == rp_.receipt_pk))
        .where(_confirmed(program_id, w))
        .group_by(rp_.promotion_id)
    )
    return list((await conn.execute(q)).all())


async def sales_by_customer(
    conn: Any, program_id: int, w: Window
) -> dict[int, tuple[Decimal, int]]:
    """Each member's sales (``amount - discount``) and receipts in the window."""
    q = (
        select(r_.customer_id, func.sum(r_.amount), func.sum(r_.discount), func.count())
        .where(_confirmed(program_id, w), r_.customer_id.is_not(None))
        .group_by(r_.customer_id)
    )
    rows = (await conn.execute(q)).all()
    return {int(c): (Decimal(a) - Decimal(d), int(n)) for c, a, d, n in rows}


async def members(conn: Any, program_id: int, p: CompiledPromotion, before: datetime) -> list[int]:
    """Members who could get the promotion: registered before ``before`` (not merged
    away); for a personal promotion, those it was offered to."""
    c = t.customers.c
    q = select(c.id).where(
        c.program_id == program_id, c.registered_at < before, c.status != "merged"
    )
    if p.personal:
        po = t.personal_offers.c
        q = q.where(
            c.id.in_(
                select(po.customer_id).where(po.program_id == program_id, po.promotion_id == p.id)
            )
        )
    return [int(x) for x in (await conn.execute(q)).scalars()]


async def eligible(
    conn: Any,
    program_id: int,
    p: CompiledPromotion,
    w: Window,
    sales: dict[int, tuple[Decimal, int]],
) -> list[int]:
    """``members`` registered before the window's end, and (for a promotion open to all)
    everyone who bought in the window: a member imported after his purchases counts."""
    who = set(await members(conn, program_id, p, w.end))
    if not p.personal:
        who |= set(sales)
    return sorted(who)


async def participants(conn: Any, program_id: int, promotion_id: str, w: Window) -> set[int]:
    q = (
        select(r_.customer_id)
        .select_from(t.receipt_promotions.join(t.receipts, r_.id == rp_.receipt_pk))
        .where(
            _confirmed(program_id, w),
            rp_.promotion_id == promotion_id,
            r_.customer_id.is_not(None),
        )
        .distinct()
    )
    return {int(x) for x in (await conn.execute(q)).scalars()}


# --- the report ------------------------------------------------------------------------------


async def promotion_effects(
    rt: Runtime,
    *,
    program_id: int,
    day_from: date,
    day_to: date,
    margin: Decimal | None = None,
) -> EffectReport:
    """The report for whole days ``day_from``..``day_to`` in the program's time zone."""
    compiled = await rt.compiled(program_id)
    window = report_window(day_from, day_to, compiled.tz)
    point_value = compiled.settings.point_value
    report = EffectReport(program_id, day_from, day_to, window, margin, point_value)
    async with rt.engine.connect() as conn:
        given = {row[0]: row for row in await _given(conn, program_id, window)}
        ids = [p.id for p in compiled.promotions if p.id in given or p.holdout_cut]
        ids += sorted(set(given) - set(ids))  # promotions since removed from the document
        cache: dict[Window, dict[int, tuple[Decimal, int]]] = {}
        for pid in ids:
            p = compiled.by_id.get(pid)
            row = given.get(pid)
            figures = _figures(pid, p, row, point_value)
            effect = await _effect(
                conn, program_id, compiled, p, pid, window, figures, margin, cache
            )
            report.rows.append(_with_effect(figures, effect))
    return report


def _figures(
    pid: str, p: CompiledPromotion | None, row: Any, point_value: Decimal
) -> PromotionFigures:
    if row is None:
        n = rc = 0
        sales = discount = points = ZERO
    else:
        _, rc, n, amount, receipt_discount, discount, points = row
        sales = Decimal(amount) - Decimal(receipt_discount)
        discount, points = Decimal(discount), Decimal(points)
    return PromotionFigures(
        promotion_id=pid,
        name=p.name if p is not None else pid,
        holdout_percent=(p.source.holdout_percent or ZERO) if p is not None else ZERO,
        participants=int(n),
        receipts=int(rc),
        sales=sales,
        discount=discount,
        points=points,
        points_cost=q2(points * point_value),
        effect=None,
        starts_at=p.starts_at if p is not None else None,
        ends_at=p.ends_at if p is not None else None,
    )


def _with_effect(f: PromotionFigures, effect: Effect | None) -> PromotionFigures:
    return replace(f, effect=effect)


async def _sales(
    conn: Any, program_id: int, w: Window, cache: dict[Window, dict[int, tuple[Decimal, int]]]
) -> dict[int, tuple[Decimal, int]]:
    if w not in cache:
        cache[w] = await sales_by_customer(conn, program_id, w)
    return cache[w]


async def _effect(
    conn: Any,
    program_id: int,
    compiled: CompiledProgram,
    p: CompiledPromotion | None,
    pid: str,
    report: Window,
    f: PromotionFigures,
    margin: Decimal | None,
    cache: dict[Window, dict[int, tuple[Decimal, int]]],
) -> Effect | None:
    w = promotion_window(report, p)
    if w is None:
        return None
    if p is not None and p.holdout_cut:
        sales = await _sales(conn, program_id, w, cache)
        who = await eligible(conn, program_id, p, w, sales)
        groups = split_holdout(compiled.doc.salt, p, who)
        return holdout_effect(w, groups, sales, f.cost, margin)
    if f.participants == 0:
        return None
    got = await participants(conn, program_id, pid, w)
    post = await _sales(conn, program_id, w, cache)
    pre = await _sales(conn, program_id, w.before(), cache)
    return pre_period_effect(w, got, post, pre, f.cost, margin)


def split_holdout(
    salt: str, p: CompiledPromotion, who: Iterable[int]
) -> tuple[list[int], list[int]]:
    """(treatment, control) members of a promotion with a holdout."""
    treatment: list[int] = []
    control: list[int] = []
    for cid in who:
        (control if is_held_out(salt, p.id, cid, p.holdout_cut) else treatment).append(cid)
    return treatment, control


def holdout_effect(
    w: Window,
    groups: tuple[Sequence[int], Sequence[int]],
    sales: dict[int, tuple[Decimal, int]],
    cost: Decimal,
    margin: Decimal | None,
) -> Effect | None:
    treatment, control = groups
    none = (ZERO, 0)
    a = [float(sales.get(c, none)[0]) for c in treatment]
    b = [float(sales.get(c, none)[0]) for c in control]
    est = welch(a, b)
    if est is None:
        return None
    rate = welch(
        [1.0 if c in sales else 0.0 for c in treatment],
        [1.0 if c in sales else 0.0 for c in control],
    )
    return _valued(HOLDOUT, w, est, rate, len(treatment), cost, margin)


def pre_period_effect(
    w: Window,
    got: set[int],
    post: dict[int, tuple[Decimal, int]],
    pre: dict[int, tuple[Decimal, int]],
    cost: Decimal,
    margin: Decimal | None,
) -> Effect | None:
    none = (ZERO, 0)

    def pair(c: int) -> tuple[float, float]:
        return float(post.get(c, none)[0]), float(pre.get(c, none)[0])

    others = (set(post) | set(pre)) - got
    est = diff_in_diff([pair(c) for c in sorted(got)], [pair(c) for c in sorted(others)])
    if est is None:
        return None
    return _valued(PRE_PERIOD, w, est, None, len(got), cost, margin)


def _money(x: float | None, n: int) -> Decimal | None:
    return None if x is None else q2(Decimal(repr(x)) * n)


def _valued(
    method: str,
    w: Window,
    est: Estimate,
    rate: Estimate | None,
    n: int,
    cost: Decimal,
    margin: Decimal | None,
) -> Effect:
    inc = _money(est.estimate, n) or ZERO
    low, high = _money(est.low, n), _money(est.high, n)
    return Effect(
        method=method,
        window=w,
        sales=est,
        rate=rate,
        members=n,
        incremental=inc,
        incremental_low=low,
        incremental_high=high,
        roi=roi(inc, cost, margin),
        roi_low=None if low is None else roi(low, cost, margin),
        roi_high=None if high is None else roi(high, cost, margin),
    )


# --- the daily chart of one promotion --------------------------------------------------------


@dataclass(frozen=True)
class Daily:
    """Sales per member per day of two groups (treatment/control, or participants/
    comparables over the pre-period and the promotion period)."""

    method: str
    days: list[date]
    a: list[Decimal]  # treatment / participants
    b: list[Decimal]  # control / comparables
    n_a: int
    n_b: int
    period_start: date | None = None  # the first day of the promotion period (pre_period)


async def promotion_daily(
    rt: Runtime, *, program_id: int, promotion_id: str, day_from: date, day_to: date
) -> Daily | None:
    """The detail chart's series; None when the promotion has no effect to show."""
    compiled = await rt.compiled(program_id)
    tz = compiled.tz
    p = compiled.by_id.get(promotion_id)
    w = promotion_window(report_window(day_from, day_to, tz), p)
    if w is None:
        return None
    async with rt.engine.connect() as conn:
        if p is not None and p.holdout_cut:
            sales = await sales_by_customer(conn, program_id, w)
            who = await eligible(conn, program_id, p, w, sales)
            a, b = split_holdout(compiled.doc.salt, p, who)
            span = w
            method = HOLDOUT
        else:
            a = sorted(await participants(conn, program_id, promotion_id, w))
            if not a:
                return None
            span = Window(w.before().start, w.end)
            post = await sales_by_customer(conn, program_id, w)
            pre = await sales_by_customer(conn, program_id, w.before())
            b = sorted((set(post) | set(pre)) - set(a))
            method = PRE_PERIOD
        rows = await _receipt_days(conn, program_id, span)
    return _daily(method, rows, a, b, span, tz, w.start.astimezone(tz).date())


async def _receipt_days(conn: Any, program_id: int, w: Window) -> list[Any]:
    q = select(r_.customer_id, r_.occurred_at, r_.amount, r_.discount).where(
        _confirmed(program_id, w), r_.customer_id.is_not(None)
    )
    return list((await conn.execute(q)).all())


def _daily(
    method: str,
    rows: Sequence[Any],
    a: Sequence[int],
    b: Sequence[int],
    span: Window,
    tz: ZoneInfo,
    period_start: date,
) -> Daily:
    first = span.start.astimezone(tz).date()
    last = (span.end - timedelta(microseconds=1)).astimezone(tz).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    group = {c: 0 for c in a} | {c: 1 for c in b}
    sums: dict[date, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for cid, at, amount, discount in rows:
        g = group.get(int(cid))
        if g is not None:
            sums[at.astimezone(tz).date()][g] += amount - discount
    na, nb = len(a), len(b)
    return Daily(
        method,
        days,
        [q2(sums[d][0] / na) if na else ZERO for d in days],
        [q2(sums[d][1] / nb) if nb else ZERO for d in days],
        na,
        nb,
        period_start if method == PRE_PERIOD else None,
    )


# --- tables for exports ----------------------------------------------------------------------

HEADER = (
    "promotion_id",
    "name",
    "method",
    "holdout_percent",
    "participants",
    "receipts",
    "sales",
    "discount",
    "points",
    "points_cost",
    "cost",
    "effect_from",
    "effect_to",
    "group_a",
    "group_b",
    "mean_sales_a",
    "mean_sales_b",
    "effect_per_member",
    "effect_low",
    "effect_high",
    "purchase_rate_a",
    "purchase_rate_b",
    "purchase_rate_diff",
    "purchase_rate_low",
    "purchase_rate_high",
    "incremental_revenue",
    "incremental_low",
    "incremental_high",
    "roi",
    "roi_low",
    "roi_high",
)


def money_est(x: float | None) -> Decimal | None:
    """A per-member estimate in roubles, shown to the kopeck."""
    return None if x is None else q2(Decimal(repr(x)))


def ratio(x: float | None, places: int = 4) -> float | None:
    return None if x is None else round(x, places)


def row_of(f: PromotionFigures) -> list[Any]:
    e = f.effect
    head: list[Any] = [
        f.promotion_id,
        f.name,
        e.method if e else "",
        f.holdout_percent,
        f.participants,
        f.receipts,
        f.sales,
        f.discount,
        f.points,
        f.points_cost,
        f.cost,
    ]
    if e is None:
        return head + [None] * (len(HEADER) - len(head))
    s, r = e.sales, e.rate
    return [
        *head,
        e.window.start,
        e.window.end,
        s.n_a,
        s.n_b,
        money_est(s.mean_a),
        money_est(s.mean_b),
        money_est(s.estimate),
        money_est(s.low),
        money_est(s.high),
        ratio(r.mean_a) if r else None,
        ratio(r.mean_b) if r else None,
        ratio(r.estimate) if r else None,
        ratio(r.low) if r else None,
        ratio(r.high) if r else None,
        e.incremental,
        e.incremental_low,
        e.incremental_high,
        ratio(e.roi),
        ratio(e.roi_low),
        ratio(e.roi_high),
    ]


def tables(report: EffectReport) -> list[exports.Table]:
    """The report's rows, then its parameters (a second sheet in XLSX)."""
    params = [
        ("from", report.day_from.isoformat()),
        ("to", report.day_to.isoformat()),
        ("margin_percent", None if report.margin is None else report.margin * 100),
        ("point_value", report.point_value),
        ("confidence", "95% (Welch's t)"),
    ]
    return [
        exports.Table("promotions", HEADER, exports.rows_of([row_of(f) for f in report.rows])),
        exports.Table("parameters", ("parameter", "value"), exports.rows_of(params)),
    ]


# --- JSON (the admin API) --------------------------------------------------------------------


def _interval(x: float | None, low: float | None, high: float | None) -> dict[str, Any]:
    return {"estimate": ratio(x), "low": ratio(low), "high": ratio(high)}


def _money_interval(x: Decimal | None, low: Decimal | None, high: Decimal | None) -> Any:
    def s(v: Decimal | None) -> str | None:
        return None if v is None else format(v, "f")

    return {"estimate": s(x), "low": s(low), "high": s(high)}


def effect_json(e: Effect) -> dict[str, Any]:
    s, r = e.sales, e.rate
    per = [money_est(v) for v in (s.estimate, s.low, s.high)]
    return {
        "method": e.method,
        "from": e.window.start.isoformat(),
        "to": e.window.end.isoformat(),
        "group_a": {"members": s.n_a, "mean_sales": format(money_est(s.mean_a), "f")},
        "group_b": {"members": s.n_b, "mean_sales": format(money_est(s.mean_b), "f")},
        "per_member": _money_interval(*per),
        "purchase_rate": None
        if r is None
        else {"a": ratio(r.mean_a), "b": ratio(r.mean_b), **_interval(r.estimate, r.low, r.high)},
        "incremental_revenue": _money_interval(
            e.incremental, e.incremental_low, e.incremental_high
        ),
        "roi": _interval(e.roi, e.roi_low, e.roi_high),
        "confidence": LEVEL_TEXT,
    }


LEVEL_TEXT = "95% Welch t"


def report_json(rep: EffectReport, code: str) -> dict[str, Any]:
    return {
        "program": code,
        "from": rep.day_from.isoformat(),
        "to": rep.day_to.isoformat(),
        "margin_percent": None if rep.margin is None else format(rep.margin * 100, "f"),
        "point_value": format(rep.point_value, "f"),
        "promotions": [
            {
                "id": f.promotion_id,
                "name": f.name,
                "holdout_percent": format(f.holdout_percent, "f"),
                "participants": f.participants,
                "receipts": f.receipts,
                "sales": format(f.sales, "f"),
                "discount": format(f.discount, "f"),
                "points": format(f.points, "f"),
                "points_cost": format(f.points_cost, "f"),
                "cost": format(f.cost, "f"),
                "effect": None if f.effect is None else effect_json(f.effect),
            }
            for f in rep.rows
        ],
    }
