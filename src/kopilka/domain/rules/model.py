"""The program document: one typed model of a program, its tiers and its promotions.

Marketers write it as YAML or JSON (``kopilka program validate|apply|export`` and the admin
API); it is validated when it is written, versioned, and compiled once per version
(``rules.compiler``).  Nothing in it is ever evaluated as code.

Shape (every field is documented in ``docs/programs.md``)::

    code, name, type (bonus | discount | cumulative | mixed), timezone
    points       the earn/burn rule (bonus and mixed programs)
    discount     a fixed percent per card, or per customer group (discount and mixed)
    cumulative   a percent that grows with accumulated purchases and can fall again
    tiers        levels that change earn rates, burn limits and the discount
    earn_on      what points are earned on when a discount applies too
    categories   the category tree; sku_lists, brands; segments
    price_floors, max_discount_percent, stacking
    promotions   each: when (a condition tree), lines (which lines it touches),
                 effects, priority, group, exclusive, limits, budget, schedule

Money, points and percents are ``Decimal``; a JSON number and a string are both accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

CODE_RE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
Code = Annotated[str, Field(pattern=CODE_RE)]
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=4)]
Amount = Annotated[Decimal, Field(ge=0, decimal_places=2, max_digits=14)]
Points = Annotated[Decimal, Field(ge=0, decimal_places=2, max_digits=14)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS_RE = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _hours(value: str) -> str:
    m = HOURS_RE.match(value)
    if not m:
        raise ValueError("must look like 10:00-14:00")
    start = int(m[1]) * 60 + int(m[2])
    end = int(m[3]) * 60 + int(m[4])
    if start > 24 * 60 or end > 24 * 60:
        raise ValueError("hours go up to 24:00")
    if start == end:
        raise ValueError("an empty range of hours")
    return value


HourRange = Annotated[str, AfterValidator(_hours)]


class Range(Model):
    """``min <= x`` and ``x <= max``; either may be absent."""

    min: Decimal | None = Field(None, ge=0)
    max: Decimal | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class DateRange(Model):
    """Inclusive calendar dates in the store's time zone."""

    from_: date | None = Field(None, alias="from")
    to: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.from_ is None and self.to is None:
            raise ValueError("give from, to or both")
        if self.from_ and self.to and self.from_ > self.to:
            raise ValueError("from is after to")
        return self


class BirthdayWindow(Model):
    days_before: int = Field(0, ge=0, le=60)
    days_after: int = Field(0, ge=0, le=60)


class BasketCondition(Model):
    """Thresholds over the basket, or over its lines that match ``lines``."""

    amount: Range | None = None
    quantity: Range | None = None
    lines: Condition | None = None

    @model_validator(mode="after")
    def _something(self) -> BasketCondition:
        if self.amount is None and self.quantity is None:
            raise ValueError("give amount, quantity or both")
        return self


LINE_FIELDS = ("sku", "sku_list", "category", "brand")
RECEIPT_FIELDS = (
    "store",
    "partner",
    "city",
    "region",
    "dates",
    "weekday",
    "hours",
    "tier",
    "segment",
    "tag",
    "days_since_last_purchase",
    "personal_offer",
    "birthday",
    "first_purchase",
    "basket",
    "coupon",
    "gift_card_payment",
    "member",
)


class Condition(Model):
    """A condition tree.  Several keys in one mapping must all hold (AND).

    Combinators: ``all`` (every one), ``any`` (at least one), ``not``.
    Line keys (``sku``, ``sku_list``, ``category``, ``brand``) match a line; used in a
    promotion's ``when`` they hold when at least one line of the basket matches.
    The other keys are about the receipt: where, when, who, what was paid with.
    """

    all: list[Condition] | None = Field(None, min_length=1)
    any: list[Condition] | None = Field(None, min_length=1)
    not_: Condition | None = Field(None, alias="not")
    # lines
    sku: list[str] | None = Field(None, min_length=1)
    sku_list: list[Code] | None = Field(None, min_length=1)
    category: list[str] | None = Field(None, min_length=1)
    brand: list[Code] | None = Field(None, min_length=1)
    # where
    store: list[str] | None = Field(None, min_length=1)
    partner: list[str] | None = Field(None, min_length=1)
    city: list[str] | None = Field(None, min_length=1)
    region: list[str] | None = Field(None, min_length=1)
    # when (in the store's time zone)
    dates: DateRange | None = None
    weekday: list[Weekday] | None = Field(None, min_length=1)
    hours: list[HourRange] | None = Field(None, min_length=1)
    # who
    tier: list[Code] | None = Field(None, min_length=1)
    segment: list[Code] | None = Field(None, min_length=1)
    tag: list[str] | None = Field(None, min_length=1)
    days_since_last_purchase: Range | None = None
    personal_offer: bool | None = None
    birthday: BirthdayWindow | None = None
    first_purchase: bool | None = None
    member: bool | None = None
    # what
    basket: BasketCondition | None = None
    coupon: list[str] | bool | None = None
    gift_card_payment: bool | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        # Keys given as null count as absent: ``{sku: null}`` would otherwise be a
        # condition that always holds.
        if not self.keys_set():
            raise ValueError("an empty condition; give at least one key")
        return self

    def keys_set(self) -> list[str]:
        return [k for k in type(self).model_fields if getattr(self, k) is not None]

    def is_line_only(self) -> bool:
        """True when every key in the tree is about a line (usable as a line filter)."""
        for key in self.keys_set():
            if key in ("all", "any"):
                if not all(c.is_line_only() for c in getattr(self, key)):
                    return False
            elif key == "not_":
                assert self.not_ is not None
                if not self.not_.is_line_only():
                    return False
            elif key not in LINE_FIELDS:
                return False
        return True


def _names_partner(c: Condition | None) -> bool:
    """The condition holds only at named partners: a ``partner`` key in it or in one of
    its ``all`` parts (an ``any`` or ``not`` does not restrict)."""
    if c is None:
        return False
    return c.partner is not None or any(_names_partner(x) for x in c.all or ())


def walk(c: Condition | None) -> Iterator[Condition]:
    """Every condition of a tree: itself, its all/any/not parts, its basket's lines."""
    stack = [c] if c is not None else []
    while stack:
        x = stack.pop()
        yield x
        stack.extend(x.all or ())
        stack.extend(x.any or ())
        if x.not_ is not None:
            stack.append(x.not_)
        if x.basket is not None and x.basket.lines is not None:
            stack.append(x.basket.lines)


# --- effects -------------------------------------------------------------------------------


class EarnPercent(Model):
    """Points on the target lines at this percent instead of the base rate."""

    kind: Literal["earn_percent"]
    percent: Percent


class EarnMultiplier(Model):
    """The base (or tier) earn rate on the target lines times ``factor``."""

    kind: Literal["earn_multiplier"]
    factor: Decimal = Field(gt=0, le=100, decimal_places=4)


class FixedPoints(Model):
    """A fixed number of points for the receipt (spread over the target lines)."""

    kind: Literal["fixed_points"]
    points: Points


class PointsPerUnit(Model):
    """Points per unit (piece or kilogram) of each target line."""

    kind: Literal["points_per_unit"]
    points: Points


class LineDiscount(Model):
    """Each target line: ``percent`` off, or ``amount`` roubles off per unit."""

    kind: Literal["line_discount"]
    percent: Percent | None = None
    amount: Amount | None = None

    @model_validator(mode="after")
    def _one(self) -> LineDiscount:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("give either percent or amount")
        return self


class BasketDiscount(Model):
    """``percent`` off the target lines together, or ``amount`` roubles spread over them."""

    kind: Literal["basket_discount"]
    percent: Percent | None = None
    amount: Amount | None = None

    @model_validator(mode="after")
    def _one(self) -> BasketDiscount:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("give either percent or amount")
        return self


class PriceOverride(Model):
    """The target lines cost ``price`` per unit (a group price); never raises a price."""

    kind: Literal["price_override"]
    price: Amount


class CheapestFree(Model):
    """Of every ``every`` units of the target lines the ``free`` cheapest are free
    ("3 for 2": every 3, free 1; "2+1" is the same; "N+1": every N+1)."""

    kind: Literal["cheapest_free"]
    every: int = Field(ge=2, le=100)
    free: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _less(self) -> CheapestFree:
        if self.free >= self.every:
            raise ValueError("free must be less than every")
        return self


class BundleItem(Model):
    sku: list[str] | None = Field(None, min_length=1)
    category: list[str] | None = Field(None, min_length=1)
    quantity: int = Field(1, ge=1, le=100)

    @model_validator(mode="after")
    def _one(self) -> BundleItem:
        if (self.sku is None) == (self.category is None):
            raise ValueError("give either sku or category")
        return self


class BundlePrice(Model):
    """Each complete set of ``items`` costs ``price`` together (as many sets as fit)."""

    kind: Literal["bundle_price"]
    items: list[BundleItem] = Field(min_length=1, max_length=20)
    price: Amount


class Gift(Model):
    """A gift item the cashier hands over (added to the answer, not to the lines)."""

    kind: Literal["gift"]
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(1, ge=1, le=100)


class ReceiptMessage(Model):
    kind: Literal["receipt_message"]
    text: str = Field(min_length=1, max_length=500)


class DrawTickets(Model):
    """Bonus tickets in the prize draws whose period the receipt falls in."""

    kind: Literal["draw_tickets"]
    tickets: int = Field(ge=1, le=1000)


class CashierMessage(Model):
    kind: Literal["cashier_message"]
    text: str = Field(min_length=1, max_length=500)


Effect = Annotated[
    EarnPercent
    | EarnMultiplier
    | FixedPoints
    | PointsPerUnit
    | LineDiscount
    | BasketDiscount
    | PriceOverride
    | CheapestFree
    | BundlePrice
    | Gift
    | ReceiptMessage
    | CashierMessage
    | DrawTickets,
    Field(discriminator="kind"),
]
DISCOUNT_EFFECTS = (LineDiscount, BasketDiscount, PriceOverride, CheapestFree, BundlePrice)
POINT_EFFECTS = (EarnPercent, EarnMultiplier, FixedPoints, PointsPerUnit)


class UsageLimit(Model):
    """At most ``count`` receipts per customer per ``period`` (calendar, store time zone)."""

    count: int = Field(ge=1, le=1_000_000)
    period: Literal["day", "week", "month", "year", "ever"]


class Budget(Model):
    """The promotion stops when it has given this much; exact under concurrent tills."""

    money: Amount | None = None
    points: Points | None = None

    @model_validator(mode="after")
    def _something(self) -> Budget:
        if self.money is None and self.points is None:
            raise ValueError("give money, points or both")
        return self


class Promotion(Model):
    id: Code
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    enabled: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    when: Condition | None = None
    lines: Condition | None = None
    effects: list[Effect] = Field(min_length=1, max_length=20)
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)
    group: Code | None = None
    exclusive: bool = False
    personal: bool = False
    max_discount: Amount | None = None
    limits: list[UsageLimit] = Field(default_factory=list, max_length=5)
    budget: Budget | None = None
    # The share of members held out as a control group for the promotion-effect report:
    # they never get it (``domain.holdout``); None or 0 holds out nobody.
    holdout_percent: Decimal | None = Field(None, ge=0, le=50, decimal_places=2)
    # Coalition (ADR 0024): who pays for the points this promotion gives.  ``partner``:
    # the partner of the store where it applies (its own promotion, at its own cost);
    # then ``when`` must name the partner(s) with a ``partner`` condition.  ``burn_at``:
    # where such points may be burned: anywhere in the program or only at that partner.
    funded_by: Literal["program", "partner"] = "program"
    burn_at: Literal["anywhere", "partner"] = "anywhere"

    @field_validator("funded_by")
    @classmethod
    def _funder_restricted(cls, v: str, info: ValidationInfo) -> str:
        if v == "partner" and not _names_partner(info.data.get("when")):
            raise ValueError(
                "a promotion funded by a partner applies only at that partner's stores: "
                "give when.partner (or a partner condition in when.all)"
            )
        return v

    @field_validator("burn_at")
    @classmethod
    def _burn_at_partner(cls, v: str, info: ValidationInfo) -> str:
        if v == "partner" and info.data.get("funded_by") != "partner":
            raise ValueError("only points funded by a partner (funded_by: partner) burn there")
        return v

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("give a time zone offset, e.g. 2026-12-01T00:00:00+03:00")
        return v

    # Field validators, not a model validator, so that the problem's path names the field
    # to fix (``promotions[3].ends_at``), not the whole promotion.
    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("starts_at")
        if v is not None and start is not None and start >= v:
            raise ValueError("must be after starts_at")
        return v

    @field_validator("lines")
    @classmethod
    def _line_keys(cls, v: Condition | None) -> Condition | None:
        if v is not None and not v.is_line_only():
            raise ValueError("only sku, sku_list, category, brand (with all/any/not) select lines")
        return v


# --- program-level rules -------------------------------------------------------------------


class PointsRules(Model):
    """The base earn/burn rule (see ``domain.program.ProgramSettings``)."""

    earn_percent: Percent = Decimal("5")
    burn_max_percent: Percent = Decimal("30")
    point_value: Decimal = Field(Decimal("1"), gt=0, le=1000, decimal_places=4)
    points_step: Literal["1", "0.01"] = "1"
    earn_rounding: Literal["floor", "half_up"] = "floor"
    min_payment: Amount = Decimal("0")
    activation_delay_days: int = Field(0, ge=0, le=365)
    expiry_days: int | None = Field(365, ge=1, le=3650)
    hold_ttl_s: int = Field(900, ge=30, le=86400)
    negative_balance_limit: Points = Decimal("0")
    # Offline burn (ADR 0030): the most points a signed token lets a till burn without
    # the center (0: no tokens), and how long a token lives.
    offline_cap_max: Points = Decimal("0")
    offline_token_ttl_s: int = Field(900, ge=60, le=86400)
    # Points on the part of a receipt paid by gift card (false: only on what is paid in
    # money; the gift card was bought, and perhaps earned on, already).
    earn_on_gift_card: bool = True
    # Coalition (ADR 0024): who funds the base points earned at a partner's store: the
    # partner (the coalition default) or the program (the operator).
    base_funded_by: Literal["partner", "program"] = "partner"


class DiscountRules(Model):
    """A fixed discount: ``percent`` for every card, or by customer group (a tag)."""

    percent: Percent = Decimal("0")
    groups: dict[str, Percent] = Field(default_factory=dict)
    exclude: Condition | None = None

    @field_validator("exclude")
    @classmethod
    def _lines(cls, v: Condition | None) -> Condition | None:
        if v is not None and not v.is_line_only():
            raise ValueError("only sku, sku_list, category, brand select lines")
        return v


class CumulativeLevel(Model):
    from_amount: Amount = Field(alias="from")
    percent: Percent


class CumulativeDecay(Model):
    """The percent falls by ``drop`` points when the customer was inactive for
    ``inactive_days`` or bought less than ``min_month_amount`` in the last calendar month."""

    drop: Percent
    inactive_days: int | None = Field(None, ge=1, le=3650)
    min_month_amount: Amount | None = None


class CumulativeRules(Model):
    basis: Literal["all_time", "rolling"] = "all_time"
    window_days: int = Field(365, ge=1, le=3650)
    levels: list[CumulativeLevel] = Field(min_length=1, max_length=50)
    decay: CumulativeDecay | None = None
    exclude: Condition | None = None

    @model_validator(mode="after")
    def _ascending(self) -> CumulativeRules:
        amounts = [lv.from_amount for lv in self.levels]
        if amounts != sorted(amounts) or len(set(amounts)) != len(amounts):
            raise ValueError("levels must go up by from, without repeats")
        if amounts[0] != 0:
            raise ValueError("the first level must start from 0")
        if self.exclude is not None and not self.exclude.is_line_only():
            raise ValueError("exclude: only sku, sku_list, category, brand select lines")
        return self


class Tier(Model):
    code: Code
    name: str = Field(min_length=1, max_length=100)
    threshold: Decimal = Field(ge=0, decimal_places=2)
    earn_percent: Percent | None = None
    burn_max_percent: Percent | None = None
    discount_percent: Percent | None = None


class TierRules(Model):
    """Qualification by ``spend`` (roubles paid) or ``visits`` (receipts) over the last
    ``period_days``; an upgrade happens at once, a downgrade only at the period's end
    (the job run after ``review_every_days`` since the tier was reached)."""

    qualify_by: Literal["spend", "visits"] = "spend"
    period_days: int = Field(365, ge=1, le=3650)
    levels: list[Tier] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _ascending(self) -> TierRules:
        th = [lv.threshold for lv in self.levels]
        if th != sorted(th) or len(set(th)) != len(th):
            raise ValueError("tiers must go up by threshold, without repeats")
        if th[0] != 0:
            raise ValueError("the first tier must have threshold 0")
        codes = [lv.code for lv in self.levels]
        if len(set(codes)) != len(codes):
            raise ValueError("tier codes repeat")
        return self


class CategoryNode(Model):
    code: str = Field(min_length=1, max_length=64)
    name: str | None = Field(None, max_length=200)
    parent: str | None = None


class Segment(Model):
    """A named list of customers (by customer id, phone or card) or a filter."""

    customers: list[str] | None = None
    rfm: list[str] | None = None
    tag: list[str] | None = None
    days_since_last_purchase: Range | None = None

    @model_validator(mode="after")
    def _something(self) -> Segment:
        # Null keys count as absent: a segment of nothing but nulls would hold everyone.
        if all(getattr(self, k) is None for k in type(self).model_fields):
            raise ValueError("give customers or a filter (rfm, tag, days_since_last_purchase)")
        return self


class PriceFloor(Model):
    """Never sell below ``min_price`` per unit (lines matching sku or category)."""

    sku: list[str] | None = Field(None, min_length=1)
    category: list[str] | None = Field(None, min_length=1)
    min_price: Amount

    @model_validator(mode="after")
    def _one(self) -> PriceFloor:
        if (self.sku is None) == (self.category is None):
            raise ValueError("give either sku or category")
        return self


class GroupRule(Model):
    mode: Literal["best", "first", "stack"] = "best"


class Stacking(Model):
    """How promotions combine.  In a ``group``, ``best`` keeps the one worth most to the
    customer, ``first`` the highest priority, ``stack`` all.  Exclusive promotions are
    weighed against everything else together by ``exclusive`` (best or first)."""

    groups: dict[str, GroupRule] = Field(default_factory=dict)
    default_group_mode: Literal["best", "first", "stack"] = "best"
    exclusive: Literal["best", "first"] = "best"


class ActivityRuleDoc(Model):
    """Points for something other than a purchase (``activities`` of the document):
    ``points`` per award, at most ``limit`` awards per ``per`` (calendar, the program's
    time zone); ``points_max``: a partner system may name the points, up to this."""

    points: Points = Field(gt=0)
    limit: int | None = Field(None, ge=1)
    per: Literal["day", "week", "month", "year", "ever"] = "ever"
    points_max: Points | None = None


class ProgramDoc(Model):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    type: Literal["bonus", "discount", "cumulative", "mixed"] = "bonus"
    timezone: str = "Europe/Moscow"
    points: PointsRules = Field(default_factory=PointsRules)
    discount: DiscountRules | None = None
    cumulative: CumulativeRules | None = None
    tiers: TierRules | None = None
    earn_on: Literal["paid", "before_discount"] = "paid"
    categories: list[CategoryNode] = Field(default_factory=list, max_length=10_000)
    sku_lists: dict[str, list[str]] = Field(default_factory=dict)
    brands: dict[str, list[str]] = Field(default_factory=dict)
    segments: dict[str, Segment] = Field(default_factory=dict)
    price_floors: list[PriceFloor] = Field(default_factory=list)
    max_discount_percent: Percent | None = None
    stacking: Stacking = Field(default_factory=Stacking)
    # welcome, card_registered, birthday, survey, review, partner_event, referral_referrer,
    # referral_friend, ... (none: activities are not awarded automatically)
    activities: dict[Code, ActivityRuleDoc] = Field(default_factory=dict)
    promotions: list[Promotion] = Field(default_factory=list, max_length=20_000)
    # What the held-out groups are drawn with (``domain.holdout``); None: the program code.
    # Changing it draws every promotion's control group anew.
    holdout_salt: str | None = Field(None, min_length=1, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    def points_enabled(self) -> bool:
        return self.type in ("bonus", "mixed")

    @property
    def salt(self) -> str:
        """The salt of the held-out groups."""
        return self.holdout_salt or self.code


def reference_problems(doc: ProgramDoc) -> list[tuple[str, str]]:
    """Names that point nowhere: an unknown sku_list, brand, segment, tier or category
    parent; repeated promotion ids; a cycle in the category tree; a type without its rule."""
    out: list[tuple[str, str]] = []
    if doc.type == "discount" and doc.discount is None:
        out.append(("discount", "a discount program needs its discount rule"))
    if doc.type == "cumulative" and doc.cumulative is None:
        out.append(("cumulative", "a cumulative program needs its levels"))
    cats = {c.code for c in doc.categories}
    if len(cats) != len(doc.categories):
        out.append(("categories", "a category code repeats"))
    parent = {c.code: c.parent for c in doc.categories}
    for i, c in enumerate(doc.categories):
        if c.parent is not None and c.parent not in cats:
            out.append((f"categories[{i}].parent", f"unknown category {c.parent!r}"))
    for i, c in enumerate(doc.categories):
        # Only the categories on a cycle are reported: one whose parents merely lead
        # into a cycle is not its own ancestor.
        seen: set[str] = set()
        cur: str | None = c.parent
        while cur is not None and cur not in seen and cur != c.code:
            seen.add(cur)
            cur = parent.get(cur)
        if cur == c.code:
            out.append((f"categories[{i}].parent", f"{c.code!r} is its own ancestor"))
    tiers = {t.code for t in doc.tiers.levels} if doc.tiers else set()
    # The program's own exclusions name lists and brands too; an unknown name there
    # would silently exclude nothing.
    for key, rule in (("discount", doc.discount), ("cumulative", doc.cumulative)):
        if rule is not None and rule.exclude is not None:
            out.extend(_condition_refs(f"{key}.exclude", rule.exclude, doc, tiers))
    ids: set[str] = set()
    for i, p in enumerate(doc.promotions):
        if p.id in ids:
            out.append((f"promotions[{i}].id", f"{p.id!r} repeats"))
        ids.add(p.id)
        for path, cond in _conditions(f"promotions[{i}]", p):
            out.extend(_condition_refs(path, cond, doc, tiers))
    return out


def _conditions(prefix: str, p: Promotion) -> list[tuple[str, Condition]]:
    out = []
    if p.when is not None:
        out.append((f"{prefix}.when", p.when))
    if p.lines is not None:
        out.append((f"{prefix}.lines", p.lines))
    return out


def _condition_refs(
    path: str, c: Condition, doc: ProgramDoc, tiers: set[str]
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name in c.sku_list or ():
        if name not in doc.sku_lists:
            out.append((f"{path}.sku_list", f"unknown list {name!r}"))
    for name in c.brand or ():
        if name not in doc.brands:
            out.append((f"{path}.brand", f"unknown brand {name!r}"))
    for name in c.segment or ():
        if name not in doc.segments:
            out.append((f"{path}.segment", f"unknown segment {name!r}"))
    for name in c.tier or ():
        if name not in tiers:
            out.append((f"{path}.tier", f"unknown tier {name!r}"))
    for key in ("all", "any"):
        for j, sub in enumerate(getattr(c, key) or ()):
            out.extend(_condition_refs(f"{path}.{key}[{j}]", sub, doc, tiers))
    if c.not_ is not None:
        out.extend(_condition_refs(f"{path}.not", c.not_, doc, tiers))
    if c.basket is not None and c.basket.lines is not None:
        out.extend(_condition_refs(f"{path}.basket.lines", c.basket.lines, doc, tiers))
    return out


class DocumentInvalid(ValueError):
    """A program document that does not validate; ``problems`` are (path, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in problems))
        self.problems = problems


PERCENT_FIELDS = {"percent", "earn_percent", "burn_max_percent", "discount_percent"}
PERCENT_FIELDS |= {"max_discount_percent", "drop"}
EFFECT_KINDS = {
    "earn_percent",
    "earn_multiplier",
    "fixed_points",
    "points_per_unit",
    "line_discount",
    "basket_discount",
    "price_override",
    "cheapest_free",
    "bundle_price",
    "gift",
    "receipt_message",
    "cashier_message",
    "draw_tickets",
}


def error_path(loc: tuple[int | str, ...]) -> str:
    """``('promotions', 3, 'effects', 0, 'line_discount', 'percent')`` ->
    ``promotions[3].effects[0].percent`` (the union's tag is not part of the path)."""
    out = ""
    prev: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (isinstance(prev, int) and part in EFFECT_KINDS) or part in ("list[str]", "bool"):
            pass  # a union member's tag or type name
        else:
            out += f".{part}" if out else str(part)
        prev = part
    return out


def _message(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    field = next((x for x in reversed(err["loc"]) if isinstance(x, str)), "")
    if kind in ("less_than_equal", "greater_than_equal") and field in PERCENT_FIELDS:
        return "must be between 0 and 100"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt')}"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required"
    if kind == "decimal_max_places":
        return f"at most {ctx.get('decimal_places')} decimals"
    if kind == "too_short":
        return "must not be empty"
    if kind == "union_tag_invalid":
        return f"unknown kind {ctx.get('tag')!r}; one of {ctx.get('expected_tags')}"
    if kind == "string_pattern_mismatch":
        return "letters, digits, '_', '.', '-' only (up to 64)"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def validate_document(data: Any) -> ProgramDoc:
    """Validate a loaded document (a dict from YAML or JSON); raises ``DocumentInvalid``
    whose problems name the path inside the document."""
    from pydantic import ValidationError

    try:
        doc = ProgramDoc.model_validate(data)
    except ValidationError as exc:
        seen: set[tuple[str, str]] = set()
        problems = []
        for err in exc.errors():
            item = (error_path(tuple(err["loc"])), _message(err))
            if item not in seen:
                seen.add(item)
                problems.append(item)
        raise DocumentInvalid(problems) from None
    problems = reference_problems(doc)
    if problems:
        raise DocumentInvalid(problems)
    return doc


BasketCondition.model_rebuild()
Condition.model_rebuild()
