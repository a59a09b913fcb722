"""Compile a program document once per version into plain Python callables.

Nothing of the document's text is ever evaluated: every condition key maps to a small
closure over frozen sets and numbers.  A receipt predicate answers ``None`` when it holds
and a short reason when it does not, so the same code serves the till (which only looks at
``None``) and the simulator's "why not".

Promotions are indexed by what they can match, so that a basket only looks at the
promotions that could apply to it: by SKU and category (with the category tree) when a
promotion needs a matching line, by store when it is limited to stores, and a short
list of the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kopilka.domain.holdout import holdout_cut
from kopilka.domain.program import ProgramSettings
from kopilka.domain.rules import model as m
from kopilka.domain.rules.facts import CustomerContext, StoreContext


@dataclass(slots=True)  # one per line per receipt: not frozen, for speed; never mutated
class LineFacts:
    sku: str
    cats: frozenset[str]  # the line's category and its ancestors
    quantity: Decimal
    amount: Decimal


@dataclass(slots=True)
class Facts:
    """One calculation's facts, built once per receipt."""

    store: StoreContext
    local: datetime  # the receipt's time in the store's time zone
    customer: CustomerContext | None
    lines: Sequence[LineFacts]
    coupons: frozenset[str]
    gift_card_payment: bool
    amount: Decimal
    # The basket's SKUs and categories (with their ancestors) -> its line numbers: a
    # promotion on SKUs or categories finds its lines by set lookups, not a line scan.
    sku_lines: dict[str, list[int]] = field(default_factory=dict)
    cat_lines: dict[str, list[int]] = field(default_factory=dict)

    def index_lines(self) -> None:
        sku_lines: dict[str, list[int]] = {}
        cat_lines: dict[str, list[int]] = {}
        for i, ln in enumerate(self.lines):
            sku_lines.setdefault(ln.sku, []).append(i)
            for c in ln.cats:
                cat_lines.setdefault(c, []).append(i)
        self.sku_lines, self.cat_lines = sku_lines, cat_lines


LinePred = Callable[[LineFacts], bool]
Pred = Callable[[Facts], "str | None"]


@dataclass(frozen=True, slots=True)
class CompiledPromotion:
    id: str
    name: str
    order: int  # position by (-priority, id): lower runs first
    priority: int
    group: str | None
    exclusive: bool
    personal: bool
    enabled: bool
    starts_at: datetime | None
    ends_at: datetime | None
    when: Pred | None
    target: LinePred | None
    # When ``lines`` is one SKU set or one category set: its lines by set lookups.
    target_skus: frozenset[str] | None
    target_cats: frozenset[str] | None
    effects: tuple[m.Effect, ...]
    limits: tuple[m.UsageLimit, ...]
    budget: m.Budget | None
    max_discount: Decimal | None
    source: m.Promotion
    holdout_cut: int = 0  # buckets of members held out (``domain.holdout``); 0: none


@dataclass(slots=True)
class CompiledProgram:
    doc: m.ProgramDoc
    version: int
    settings: ProgramSettings
    points_enabled: bool
    tz: ZoneInfo
    cat_ancestors: dict[str, frozenset[str]]
    promotions: tuple[CompiledPromotion, ...]
    by_id: dict[str, CompiledPromotion]
    by_sku: dict[str, tuple[int, ...]]
    by_cat: dict[str, tuple[int, ...]]
    by_store: dict[str, tuple[int, ...]]
    unindexed: tuple[int, ...]
    floor_sku: dict[str, Decimal]
    floor_cat: dict[str, Decimal]
    tiers: dict[str, m.Tier]
    discount_exclude: LinePred | None
    group_modes: dict[str, str]
    default_group_mode: str
    exclusive_mode: str
    # Which extra reads pricing a customer needs: usage of limited promotions, purchase
    # history (first purchase, days since the last), personal offers.
    reads: tuple[bool, bool, bool] = (False, False, False)
    ancestors_cache: dict[str | None, frozenset[str]] = field(default_factory=dict)
    zones: dict[str, ZoneInfo] = field(default_factory=dict)

    def ancestors(self, category: str | None) -> frozenset[str]:
        hit = self.ancestors_cache.get(category)
        if hit is None:
            hit = self.cat_ancestors.get(category or "", frozenset()) if category else frozenset()
            if category and not hit:
                hit = frozenset((category,))
            self.ancestors_cache[category] = hit
        return hit

    def zone(self, name: str | None) -> ZoneInfo:
        """A store's time zone (cached); the program's when the store has none or an
        unknown one."""
        if not name or name == self.doc.timezone:
            return self.tz
        hit = self.zones.get(name)
        if hit is None:
            try:
                hit = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                hit = self.tz
            self.zones[name] = hit
        return hit

    def floor_of(self, line: LineFacts) -> Decimal:
        """The line's minimum price per unit (0: none)."""
        best = self.floor_sku.get(line.sku, Decimal(0))
        for c in line.cats:
            f = self.floor_cat.get(c)
            if f is not None and f > best:
                best = f
        return best

    def candidates(self, lines: Sequence[LineFacts], store: str) -> list[int]:
        """Promotions that could apply to this basket, in run order."""
        found: set[int] = set(self.unindexed)
        by_sku, by_cat = self.by_sku, self.by_cat
        for ln in lines:
            hit = by_sku.get(ln.sku)
            if hit:
                found.update(hit)
            for c in ln.cats:
                hit = by_cat.get(c)
                if hit:
                    found.update(hit)
        hit = self.by_store.get(store)
        if hit:
            found.update(hit)
        return sorted(found)


def settings_of(doc: m.ProgramDoc) -> ProgramSettings:
    p = doc.points
    return ProgramSettings(
        earn_percent=p.earn_percent if doc.points_enabled() else Decimal(0),
        burn_max_percent=p.burn_max_percent if doc.points_enabled() else Decimal(0),
        point_value=p.point_value,
        points_step=Decimal(p.points_step),
        earn_rounding=p.earn_rounding,
        min_payment=p.min_payment,
        activation_delay_days=p.activation_delay_days,
        expiry_days=p.expiry_days,
        hold_ttl_s=p.hold_ttl_s,
        negative_balance_limit=p.negative_balance_limit,
        timezone=doc.timezone,
        offline_cap_max=p.offline_cap_max,
        offline_token_ttl_s=p.offline_token_ttl_s,
    )


def compile_program(doc: m.ProgramDoc, *, version: int = 1) -> CompiledProgram:
    """Compile a validated document.  Pure; the caller caches the result per version."""
    parent = {c.code: c.parent for c in doc.categories}
    ancestors: dict[str, frozenset[str]] = {}
    for code in parent:
        chain = []
        cur: str | None = code
        while cur is not None and cur not in chain:
            chain.append(cur)
            cur = parent.get(cur)
        ancestors[code] = frozenset(chain)
    ctx = _Ctx(doc, ancestors)
    ordered = sorted(doc.promotions, key=lambda p: (-p.priority, p.id))
    promos = []
    by_sku: dict[str, list[int]] = {}
    by_cat: dict[str, list[int]] = {}
    by_store: dict[str, list[int]] = {}
    unindexed: list[int] = []
    for i, p in enumerate(ordered):
        ctx.promotion_id = p.id
        promos.append(
            CompiledPromotion(
                id=p.id,
                name=p.name,
                order=i,
                priority=p.priority,
                group=p.group,
                exclusive=p.exclusive,
                personal=p.personal,
                enabled=p.enabled,
                starts_at=p.starts_at,
                ends_at=p.ends_at,
                when=ctx.pred(p.when) if p.when is not None else None,
                target=ctx.line_pred(p.lines) if p.lines is not None else None,
                target_skus=ctx.simple_skus(p.lines),
                target_cats=ctx.simple_cats(p.lines),
                effects=tuple(p.effects),
                limits=tuple(p.limits),
                budget=p.budget,
                max_discount=p.max_discount,
                source=p,
                holdout_cut=holdout_cut(p.holdout_percent or Decimal(0)),
            )
        )
        keys = ctx.line_keys(p.lines) if p.lines is not None else None
        if keys is None and p.when is not None:
            keys = ctx.line_keys(p.when)
        if keys is not None:
            for kind, value in keys:
                (by_sku if kind == "sku" else by_cat).setdefault(value, []).append(i)
            continue
        stores = _required_stores(p.when) if p.when is not None else None
        if stores is not None:
            for s in stores:
                by_store.setdefault(s, []).append(i)
            continue
        unindexed.append(i)
    floor_sku: dict[str, Decimal] = {}
    floor_cat: dict[str, Decimal] = {}
    for f in doc.price_floors:
        for sku in f.sku or ():
            floor_sku[sku] = max(floor_sku.get(sku, Decimal(0)), f.min_price)
        for cat in f.category or ():
            floor_cat[cat] = max(floor_cat.get(cat, Decimal(0)), f.min_price)
    exclude = None
    if doc.discount is not None and doc.discount.exclude is not None:
        exclude = ctx.line_pred(doc.discount.exclude)
    if doc.cumulative is not None and doc.cumulative.exclude is not None:
        cum = ctx.line_pred(doc.cumulative.exclude)
        exclude = cum if exclude is None else _or_lines(exclude, cum)
    compiled = tuple(promos)
    return CompiledProgram(
        doc=doc,
        version=version,
        settings=settings_of(doc),
        points_enabled=doc.points_enabled(),
        tz=ZoneInfo(doc.timezone),
        cat_ancestors=ancestors,
        promotions=compiled,
        by_id={p.id: p for p in compiled},
        by_sku={k: tuple(v) for k, v in by_sku.items()},
        by_cat={k: tuple(v) for k, v in by_cat.items()},
        by_store={k: tuple(v) for k, v in by_store.items()},
        unindexed=tuple(unindexed),
        floor_sku=floor_sku,
        floor_cat=floor_cat,
        tiers={t.code: t for t in doc.tiers.levels} if doc.tiers else {},
        discount_exclude=exclude,
        group_modes={k: v.mode for k, v in doc.stacking.groups.items()},
        default_group_mode=doc.stacking.default_group_mode,
        exclusive_mode=doc.stacking.exclusive,
        reads=_reads(doc),
    )


def _reads(doc: m.ProgramDoc) -> tuple[bool, bool, bool]:
    def uses(p: m.Promotion, key: str) -> bool:
        return any(getattr(c, key) is not None for root in (p.when, p.lines) for c in m.walk(root))

    usage = any(p.limits for p in doc.promotions)
    offers = any(p.personal or uses(p, "personal_offer") for p in doc.promotions)
    history = any(
        uses(p, "first_purchase") or uses(p, "days_since_last_purchase") for p in doc.promotions
    ) or any(seg.days_since_last_purchase is not None for seg in doc.segments.values())
    return (usage, history, offers)


def program_from_settings(settings: ProgramSettings, *, code: str = "program") -> m.ProgramDoc:
    """A bonus program document with these base settings and no promotions."""
    return m.ProgramDoc(
        code=code,
        name=code,
        type="bonus",
        timezone=settings.timezone,
        points=m.PointsRules(
            earn_percent=settings.earn_percent,
            burn_max_percent=settings.burn_max_percent,
            point_value=settings.point_value,
            points_step="0.01" if settings.points_step == Decimal("0.01") else "1",
            earn_rounding="half_up" if settings.earn_rounding == "half_up" else "floor",
            min_payment=settings.min_payment,
            activation_delay_days=settings.activation_delay_days,
            expiry_days=settings.expiry_days,
            hold_ttl_s=settings.hold_ttl_s,
            negative_balance_limit=settings.negative_balance_limit,
            offline_cap_max=settings.offline_cap_max,
            offline_token_ttl_s=settings.offline_token_ttl_s,
        ),
    )


def _or_lines(a: LinePred, b: LinePred) -> LinePred:
    return lambda ln: a(ln) or b(ln)


def _required_stores(c: m.Condition) -> frozenset[str] | None:
    if c.store is not None:
        return frozenset(c.store)
    for sub in c.all or ():
        found = _required_stores(sub)
        if found is not None:
            return found
    return None


WEEKDAY_NO: dict[str, int] = {d: i for i, d in enumerate(m.WEEKDAYS)}


class _Ctx:
    """Compilation context: the document's named lists, brands, segments, category tree."""

    def __init__(self, doc: m.ProgramDoc, ancestors: dict[str, frozenset[str]]) -> None:
        self.doc = doc
        self.ancestors = ancestors
        self.promotion_id = ""  # the promotion being compiled (personal offers name it)

    # -- lines ---------------------------------------------------------------------------

    def skus_of(self, c: m.Condition) -> frozenset[str]:
        out: set[str] = set(c.sku or ())
        for name in c.sku_list or ():
            out.update(self.doc.sku_lists.get(name, ()))
        for name in c.brand or ():
            out.update(self.doc.brands.get(name, ()))
        return frozenset(out)

    def simple_skus(self, c: m.Condition | None) -> frozenset[str] | None:
        """The SKU set of a ``lines`` condition made of SKU keys only, else None."""
        if c is None or set(c.keys_set()) - {"sku", "sku_list", "brand"}:
            return None
        return self.skus_of(c)

    def simple_cats(self, c: m.Condition | None) -> frozenset[str] | None:
        """The category set of a ``lines`` condition made of ``category`` only."""
        if c is None or c.keys_set() != ["category"]:
            return None
        assert c.category is not None
        return frozenset(c.category)

    def line_pred(self, c: m.Condition) -> LinePred:
        parts: list[LinePred] = []
        if c.sku is not None or c.sku_list is not None or c.brand is not None:
            skus = self.skus_of(c)
            parts.append(lambda ln: ln.sku in skus)
        if c.category is not None:
            cats = frozenset(c.category)
            parts.append(lambda ln: not cats.isdisjoint(ln.cats))
        if c.all is not None:
            subs = [self.line_pred(x) for x in c.all]
            parts.append(lambda ln: all(f(ln) for f in subs))
        if c.any is not None:
            alts = [self.line_pred(x) for x in c.any]
            parts.append(lambda ln: any(f(ln) for f in alts))
        if c.not_ is not None:
            neg = self.line_pred(c.not_)
            parts.append(lambda ln: not neg(ln))
        if len(parts) == 1:
            return parts[0]
        return lambda ln: all(f(ln) for f in parts)

    def line_keys(self, c: m.Condition) -> frozenset[tuple[str, str]] | None:
        """Index keys of which at least one must be in the basket for ``c`` to hold;
        None when ``c`` can hold without a particular line."""
        own: list[frozenset[tuple[str, str]]] = []
        if c.sku is not None or c.sku_list is not None or c.brand is not None:
            own.append(frozenset(("sku", s) for s in self.skus_of(c)))
        if c.category is not None:
            own.append(frozenset(("cat", x) for x in c.category))
        if c.basket is not None and c.basket.lines is not None:
            needs_line = any(
                r is not None and r.min is not None and r.min > 0
                for r in (c.basket.amount, c.basket.quantity)
            )
            if needs_line:
                sub = self.line_keys(c.basket.lines)
                if sub is not None:
                    own.append(sub)
        for sub_c in c.all or ():
            sub = self.line_keys(sub_c)
            if sub is not None:
                own.append(sub)
        if c.any is not None:
            alts = [self.line_keys(x) for x in c.any]
            if all(a is not None for a in alts):
                own.append(frozenset().union(*[a for a in alts if a is not None]))
        if not own:
            return None
        # Every one of these must hold; the smallest key set is the sharpest index.
        return min(own, key=len)

    # -- receipts ------------------------------------------------------------------------

    def pred(self, c: m.Condition) -> Pred:
        parts: list[Pred] = []
        add = parts.append
        if c.sku is not None or c.sku_list is not None or c.brand is not None:
            skus = self.skus_of(c)
            add(_some_key(skus, "sku_lines", "no line with these SKUs"))
        if c.category is not None:
            cats = frozenset(c.category)
            names = ", ".join(sorted(cats))
            add(_some_key(cats, "cat_lines", f"no line in {names}"))
        if c.store is not None:
            add(_in_set("store", frozenset(c.store), lambda f: f.store.code))
        if c.partner is not None:
            add(_in_set("partner", frozenset(c.partner), lambda f: f.store.partner))
        if c.city is not None:
            add(_in_set("city", frozenset(c.city), lambda f: f.store.city))
        if c.region is not None:
            add(_in_set("region", frozenset(c.region), lambda f: f.store.region))
        if c.dates is not None:
            add(_dates(c.dates))
        if c.weekday is not None:
            add(_weekdays(c.weekday))
        if c.hours is not None:
            add(_hours(c.hours))
        if c.tier is not None:
            add(_member_in("tier", frozenset(c.tier), lambda cu: cu.tier))
        if c.segment is not None:
            add(self._segments(c.segment))
        if c.tag is not None:
            add(_tags(frozenset(c.tag)))
        if c.days_since_last_purchase is not None:
            add(_days_since(c.days_since_last_purchase))
        if c.personal_offer is not None:
            pid = self.promotion_id
            add(
                _flag(
                    "personal offer",
                    c.personal_offer,
                    lambda f: f.customer is not None and pid in f.customer.offers,
                )
            )
        if c.birthday is not None:
            add(_birthday(c.birthday))
        if c.first_purchase is not None:
            add(
                _flag(
                    "first purchase",
                    c.first_purchase,
                    lambda f: f.customer is not None and f.customer.purchases == 0,
                )
            )
        if c.member is not None:
            add(_flag("member", c.member, lambda f: f.customer is not None))
        if c.basket is not None:
            add(self._basket(c.basket))
        if c.coupon is not None:
            add(_coupon(c.coupon))
        if c.gift_card_payment is not None:
            add(_flag("paid by gift card", c.gift_card_payment, lambda f: f.gift_card_payment))
        if c.all is not None:
            add(_all([self.pred(x) for x in c.all]))
        if c.any is not None:
            add(_any([self.pred(x) for x in c.any]))
        if c.not_ is not None:
            add(_not(self.pred(c.not_)))
        if len(parts) == 1:
            return parts[0]
        return _all(parts)

    def _segments(self, names: Sequence[str]) -> Pred:
        tests: list[tuple[str, Callable[[CustomerContext, date], bool]]] = []
        for name in names:
            tests.append((name, _segment_test(self.doc.segments[name])))
        label = ", ".join(names)

        def pred(f: Facts) -> str | None:
            cu = f.customer
            if cu is None:
                return f"segment {label}: not a member"
            today = f.local.date()
            for _, test in tests:
                if test(cu, today):
                    return None
            return f"not in segment {label}"

        return pred

    def _basket(self, b: m.BasketCondition) -> Pred:
        sel = self.line_pred(b.lines) if b.lines is not None else None
        amount, quantity = b.amount, b.quantity

        def pred(f: Facts) -> str | None:
            lines = f.lines if sel is None else [ln for ln in f.lines if sel(ln)]
            if amount is not None:
                total = sum((ln.amount for ln in lines), Decimal(0))
                why = _range_why("basket amount", total, amount)
                if why:
                    return why
            if quantity is not None:
                qty = sum((ln.quantity for ln in lines), Decimal(0))
                why = _range_why("basket quantity", qty, quantity)
                if why:
                    return why
            return None

        return pred


def _segment_test(seg: m.Segment) -> Callable[[CustomerContext, date], bool]:
    listed = frozenset(seg.customers or ())
    rfm = frozenset(seg.rfm or ())
    tags = frozenset(seg.tag or ())
    days = seg.days_since_last_purchase

    def test(cu: CustomerContext, today: date) -> bool:
        if seg.customers is not None and listed.isdisjoint(cu.keys):
            return False
        if seg.rfm is not None and cu.rfm not in rfm:
            return False
        if seg.tag is not None and tags.isdisjoint(cu.tags):
            return False
        if days is not None:
            if cu.last_purchase_on is None:
                return False
            n = Decimal((today - cu.last_purchase_on).days)
            if _range_why("", n, days) is not None:
                return False
        return True

    return test


def _range_why(label: str, value: Decimal, r: m.Range) -> str | None:
    if r.min is not None and value < r.min:
        return f"{label} {value} is below {r.min}"
    if r.max is not None and value > r.max:
        return f"{label} {value} is above {r.max}"
    return None


def _some_key(keys: frozenset[str], index: str, why: str) -> Pred:
    """Some line has one of ``keys`` (a SKU, or a category with its ancestors)."""
    if index == "sku_lines":

        def by_sku(f: Facts) -> str | None:
            return None if not keys.isdisjoint(f.sku_lines) else why

        return by_sku

    def by_cat(f: Facts) -> str | None:
        return None if not keys.isdisjoint(f.cat_lines) else why

    return by_cat


def _some_line(test: LinePred, why: str) -> Pred:
    def pred(f: Facts) -> str | None:
        for ln in f.lines:
            if test(ln):
                return None
        return why

    return pred


def _in_set(label: str, allowed: frozenset[str], get: Callable[[Facts], str | None]) -> Pred:
    def pred(f: Facts) -> str | None:
        value = get(f)
        if value in allowed:
            return None
        return f"{label} is {value}, needs {', '.join(sorted(allowed))}"

    return pred


def _member_in(
    label: str, allowed: frozenset[str], get: Callable[[CustomerContext], str | None]
) -> Pred:
    def pred(f: Facts) -> str | None:
        if f.customer is None:
            return f"{label}: not a member"
        value = get(f.customer)
        if value in allowed:
            return None
        return f"{label} is {value}, needs {', '.join(sorted(allowed))}"

    return pred


def _tags(allowed: frozenset[str]) -> Pred:
    def pred(f: Facts) -> str | None:
        if f.customer is not None and not allowed.isdisjoint(f.customer.tags):
            return None
        return f"customer has no tag {', '.join(sorted(allowed))}"

    return pred


def _flag(label: str, want: bool, test: Callable[[Facts], bool]) -> Pred:
    def pred(f: Facts) -> str | None:
        if test(f) == want:
            return None
        return f"{label}: {'no' if want else 'yes'}"

    return pred


def _dates(d: m.DateRange) -> Pred:
    lo, hi = d.from_, d.to

    def pred(f: Facts) -> str | None:
        day = f.local.date()
        if lo is not None and day < lo:
            return f"date {day} is before {lo}"
        if hi is not None and day > hi:
            return f"date {day} is after {hi}"
        return None

    return pred


def _weekdays(days: Sequence[str]) -> Pred:
    allowed = frozenset(WEEKDAY_NO[d] for d in days)
    label = ", ".join(days)

    def pred(f: Facts) -> str | None:
        wd = f.local.weekday()
        if wd in allowed:
            return None
        return f"weekday is {m.WEEKDAYS[wd]}, needs {label}"

    return pred


def _hours(ranges: Sequence[str]) -> Pred:
    spans = []
    for r in ranges:
        a, b = r.split("-")
        start = int(a[:2]) * 60 + int(a[3:])
        end = int(b[:2]) * 60 + int(b[3:])
        spans.append((start, end))
    label = ", ".join(ranges)

    def pred(f: Facts) -> str | None:
        minute = f.local.hour * 60 + f.local.minute
        for start, end in spans:
            inside = start <= minute < end if start < end else minute >= start or minute < end
            if inside:
                return None
        return f"time {f.local:%H:%M} is outside {label}"

    return pred


def _days_since(r: m.Range) -> Pred:
    def pred(f: Facts) -> str | None:
        cu = f.customer
        if cu is None:
            return "days since last purchase: not a member"
        if cu.last_purchase_on is None:
            return "no purchase yet"
        days = Decimal((f.local.date() - cu.last_purchase_on).days)
        return _range_why("days since last purchase", days, r)

    return pred


def _birthday(w: m.BirthdayWindow) -> Pred:
    def pred(f: Facts) -> str | None:
        cu = f.customer
        if cu is None or cu.birthday is None:
            return "birthday unknown"
        today = f.local.date()
        for year in (today.year - 1, today.year, today.year + 1):
            bday = _birthday_in(cu.birthday, year)
            if bday - timedelta(days=w.days_before) <= today <= bday + timedelta(days=w.days_after):
                return None
        return f"birthday {cu.birthday:%d.%m} is not within the window"

    return pred


def _birthday_in(born: date, year: int) -> date:
    try:
        return born.replace(year=year)
    except ValueError:  # 29 February in a common year: the 28th
        return date(year, 2, 28)


def _coupon(want: list[str] | bool) -> Pred:
    if isinstance(want, bool):
        return _flag("coupon", want, lambda f: bool(f.coupons))
    codes = frozenset(c.upper() for c in want)

    def pred(f: Facts) -> str | None:
        if not codes.isdisjoint(f.coupons):
            return None
        return "no matching coupon"

    return pred


def _all(preds: Sequence[Pred]) -> Pred:
    def pred(f: Facts) -> str | None:
        for p in preds:
            why = p(f)
            if why is not None:
                return why
        return None

    return pred


def _any(preds: Sequence[Pred]) -> Pred:
    def pred(f: Facts) -> str | None:
        reasons = []
        for p in preds:
            why = p(f)
            if why is None:
                return None
            reasons.append(why)
        return "none of: " + "; ".join(reasons)

    return pred


def _not(inner: Pred) -> Pred:
    def pred(f: Facts) -> str | None:
        if inner(f) is None:
            return "an excluded condition holds"
        return None

    return pred
