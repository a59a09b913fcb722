"""Tiers and cumulative-discount levels: which level an account holds, decided from what
its confirmed receipts add up to.  Pure: the caller reads the receipts and passes ``now``.

Tiers (``ProgramDoc.tiers``)
    The *qualified* tier is the highest level whose threshold is at most the measure:
    the money paid (``spend``) or the number of receipts (``visits``) over the last
    ``period_days``.  An upgrade to the qualified tier happens at once, at the till or in
    the job; a downgrade only in the job and only when the current tier's period has
    ended (``now >= tier_since + period_days``), and then straight to the qualified tier.
    Qualifying again for the current tier at that moment renews ``tier_since``.
    ``tier = None`` stands for the lowest tier, which has no period: nothing is below it.
    A code the program no longer has ranks below every tier, so it is replaced at once.

Cumulative discount (``ProgramDoc.cumulative``)
    The *level percent* is that of the highest level whose ``from`` is at most the
    amount paid (over all time, or the last ``window_days``).  The decay then lowers it
    by ``drop`` points, never below 0, when either holds:

    - ``inactive_days``: at least that many calendar days since the last purchase;
    - ``min_month_amount``: the last calendar month's purchases were below it (only for a
      customer who had already bought before that month began: a new customer is not
      punished for the month before he joined).

    The decay is applied **once per evaluation, to the level the amount earns now**: it is
    not subtracted from the percent the account holds, and it does not compound day after
    day.  So the percent is a function of the receipts and the date alone; the job can run
    every hour, or twice, and the till can recompute it, and all agree.  It comes back as
    soon as the reason ends (a purchase; a new month whose predecessor was good enough).
    A customer without purchases has the first level's percent, undecayed.
    (docs/decisions/0009-tiers-and-cumulative-levels.md)

The percent is rounded down to hundredths, the precision ``accounts.discount_percent``
keeps (a 7.125 % level gives 7.12 %): never more than the rules say.

At the till (``till=True`` in ``decide_levels``) both only go up: a tier upgrade, a
higher percent.  Lowering is the job's work (``kopilka worker``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from kopilka.domain.rules.model import CumulativeRules, TierRules

PERCENT_STEP = Decimal("0.01")
ZERO = Decimal(0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

DecayReason = Literal["inactive", "low_month"]


# --- tiers ---------------------------------------------------------------------------------


def tier_for(rules: TierRules, spend: Decimal, visits: int) -> str:
    """The highest tier whose threshold is at most the program's measure (spend or
    visits over the period); the first tier (threshold 0) at least."""
    measure = spend if rules.qualify_by == "spend" else Decimal(visits)
    code = rules.levels[0].code
    for level in rules.levels:
        if level.threshold <= measure:
            code = level.code
    return code


def tier_rank(rules: TierRules, code: str | None) -> int:
    """0 for the lowest tier (and for ``None``), -1 for a code the program does not have."""
    if code is None:
        return 0
    for i, level in enumerate(rules.levels):
        if level.code == code:
            return i
    return -1


def next_tier(
    rules: TierRules,
    current: str | None,
    qualified: str,
    tier_since: datetime | None,
    now: datetime,
) -> tuple[str | None, datetime | None]:
    """(tier, since) after a review at ``now``.

    - qualified above current: the qualified tier, since ``now`` (upgrade at once);
    - current's period not over (``now < tier_since + period_days``): unchanged;
    - period over, qualified for the current tier again: the current tier, since ``now``;
    - period over, qualified lower: the qualified tier, since ``now``.

    The lowest tier never renews (nothing is below it), so an account there with no
    change keeps ``(current, tier_since)`` as given, ``None`` included.  A missing
    ``tier_since`` above the lowest tier counts as a period that has ended.
    """
    cur = tier_rank(rules, current)
    new = tier_rank(rules, qualified)
    if new > cur:
        return qualified, now
    if cur == 0:
        return current, tier_since
    ended = tier_since is None or now >= tier_since + timedelta(days=rules.period_days)
    if not ended:
        return current, tier_since
    return (current if new == cur else qualified), now


def upgraded_tier(
    rules: TierRules,
    current: str | None,
    qualified: str,
    tier_since: datetime | None,
    now: datetime,
) -> tuple[str | None, datetime | None]:
    """The till's review: only an upgrade, at once; everything else stays."""
    if tier_rank(rules, qualified) > tier_rank(rules, current):
        return qualified, now
    return current, tier_since


# --- cumulative discount -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiscountLevel:
    """The percent a customer gets, the level's own percent, and why they differ."""

    percent: Decimal
    level_percent: Decimal
    decay: DecayReason | None = None


def level_percent(rules: CumulativeRules, amount: Decimal) -> Decimal:
    """The percent of the highest level whose ``from`` is at most ``amount``."""
    percent = rules.levels[0].percent
    for level in rules.levels:
        if level.from_amount <= amount:
            percent = level.percent
    return percent


def decay_reason(
    rules: CumulativeRules,
    *,
    last_purchase_on: date | None,
    first_purchase_on: date | None,
    month_amount: Decimal,
    today: date,
) -> DecayReason | None:
    """Why the decay applies today, or None.  Inactivity is checked first."""
    decay = rules.decay
    if decay is None or last_purchase_on is None:
        return None
    if decay.inactive_days is not None and (today - last_purchase_on).days >= decay.inactive_days:
        return "inactive"
    if decay.min_month_amount is not None and month_amount < decay.min_month_amount:
        customer_all_month = first_purchase_on is None or first_purchase_on <= last_month(today)[0]
        if customer_all_month:
            return "low_month"
    return None


def cumulative_percent(
    rules: CumulativeRules,
    amount: Decimal,
    *,
    last_purchase_on: date | None,
    month_amount: Decimal,
    today: date,
    first_purchase_on: date | None = None,
) -> DiscountLevel:
    """The cumulative discount for ``amount`` paid (over the rules' basis) on ``today``
    (the program's time zone): the level's percent, lowered once by the decay.

    ``month_amount`` is what was paid in the calendar month before ``today``'s;
    ``first_purchase_on`` (None: unknown, treated as "long ago") exempts a customer who
    joined during that month from the month rule.
    """
    base = level_percent(rules, amount)
    reason = decay_reason(
        rules,
        last_purchase_on=last_purchase_on,
        first_purchase_on=first_purchase_on,
        month_amount=month_amount,
        today=today,
    )
    percent = base
    if reason is not None:
        assert rules.decay is not None
        percent = max(ZERO, base - rules.decay.drop)
    return DiscountLevel(percent.quantize(PERCENT_STEP, rounding=ROUND_DOWN), base, reason)


def last_month(today: date) -> tuple[date, date]:
    """(first day of the previous calendar month, first day of ``today``'s month)."""
    this_month = today.replace(day=1)
    prev = (this_month - timedelta(days=1)).replace(day=1)
    return prev, this_month


# --- what to read, and the decision --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Windows:
    """The instants (UTC) bounding what the receipts are summed over, at ``now``.

    ``tier_from``: start of the tier period; ``cumulative_from``: of the cumulative basis
    (the epoch for all time); ``month_from``/``month_to``: the last calendar month in the
    program's time zone; ``scan_from``: the earliest of them (what must be read).
    """

    tier_from: datetime
    cumulative_from: datetime
    month_from: datetime
    month_to: datetime
    scan_from: datetime


def windows(
    tiers: TierRules | None, cumulative: CumulativeRules | None, *, now: datetime, tz: ZoneInfo
) -> Windows:
    """Windows of rules that are absent start at ``now`` (they sum nothing)."""
    tier_from = now - timedelta(days=tiers.period_days) if tiers else now
    cum_from = now
    month_from = month_to = now
    if cumulative is not None:
        rolling = cumulative.basis == "rolling"
        cum_from = now - timedelta(days=cumulative.window_days) if rolling else EPOCH
        if cumulative.decay is not None and cumulative.decay.min_month_amount is not None:
            first, this = last_month(now.astimezone(tz).date())
            month_from = datetime.combine(first, time(), tz).astimezone(UTC)
            month_to = datetime.combine(this, time(), tz).astimezone(UTC)
    return Windows(tier_from, cum_from, month_from, month_to, min(tier_from, cum_from, month_from))


@dataclass(frozen=True, slots=True)
class Measures:
    """What an account's confirmed receipts add up to, net of refunds, over ``Windows``."""

    tier_spend: Decimal = ZERO
    tier_visits: int = 0
    cumulative_amount: Decimal = ZERO
    month_amount: Decimal = ZERO
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Levels:
    """What an account holds: ``accounts.tier``, ``tier_since``, ``discount_percent``."""

    tier: str | None = None
    tier_since: datetime | None = None
    discount_percent: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The levels after a review; ``decay`` says why the percent is below its level."""

    levels: Levels
    decay: DecayReason | None = None


def decide_levels(
    tiers: TierRules | None,
    cumulative: CumulativeRules | None,
    current: Levels,
    measures: Measures,
    *,
    now: datetime,
    tz: ZoneInfo,
    till: bool,
) -> Decision:
    """The account's levels at ``now``.  With ``till`` only raises (tier, percent).

    A program without tiers leaves ``tier``/``tier_since`` as they are; one without
    cumulative rules leaves ``discount_percent``.
    """
    tier, since = current.tier, current.tier_since
    if tiers is not None:
        qualified = tier_for(tiers, measures.tier_spend, measures.tier_visits)
        review = upgraded_tier if till else next_tier
        tier, since = review(tiers, tier, qualified, since, now)
    percent = current.discount_percent
    decay: DecayReason | None = None
    if cumulative is not None:
        level = cumulative_percent(
            cumulative,
            measures.cumulative_amount,
            last_purchase_on=_local_day(measures.last_purchase_at, tz),
            month_amount=measures.month_amount,
            today=now.astimezone(tz).date(),
            first_purchase_on=_local_day(measures.first_purchase_at, tz),
        )
        if not till or percent is None or level.percent > percent:
            percent, decay = level.percent, level.decay
    return Decision(Levels(tier, since, percent), decay)


def _local_day(at: datetime | None, tz: ZoneInfo) -> date | None:
    return None if at is None else at.astimezone(tz).date()
