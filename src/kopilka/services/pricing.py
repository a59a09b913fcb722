"""What the rules engine is told about a customer, read in the caller's transaction.

The card read of the hot path already brings the account's tier and discount level and
the customer's groups, RFM segment, birthday and phone.  Anything more costs a statement,
so it is read only when the program uses it:

- usage of promotions with per-customer limits (one statement) when it has such;
- the customer's purchase history (count and last date, one statement on an index)
  when a promotion asks about a first purchase or days since the last one;
- personal offers (one statement) when it has personal promotions.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from kopilka.domain.rules import model as m
from kopilka.domain.rules.compiler import CompiledProgram
from kopilka.domain.rules.facts import BudgetLeft, CustomerContext
from kopilka.store.queries.accounts import AccountState
from kopilka.store.raw import Tx, dec2, parse_ts, ts


def needs(compiled: CompiledProgram) -> tuple[bool, bool, bool]:
    """(usage, history, offers): which extra reads this program's promotions need."""
    usage = history = offers = False
    for p in compiled.promotions:
        usage = usage or bool(p.limits)
        offers = offers or p.personal or _uses(p.source, "personal_offer")
        history = history or _uses(p.source, "first_purchase")
        history = history or _uses(p.source, "days_since_last_purchase")
    for seg in compiled.doc.segments.values():
        history = history or seg.days_since_last_purchase is not None
    return (usage, history, offers)


_NEEDS: dict[int, tuple[CompiledProgram, tuple[bool, bool, bool]]] = {}


def _needs_cached(compiled: CompiledProgram) -> tuple[bool, bool, bool]:
    hit = _NEEDS.get(id(compiled))
    if hit is not None and hit[0] is compiled:
        return hit[1]
    if len(_NEEDS) > 64:
        _NEEDS.clear()
    result = needs(compiled)
    _NEEDS[id(compiled)] = (compiled, result)
    return result


def _uses(p: m.Promotion, key: str) -> bool:
    conds = [c for c in (p.when, p.lines) if c is not None]
    while conds:
        c = conds.pop()
        if getattr(c, key, None) is not None:
            return True
        conds.extend(c.all or ())
        conds.extend(c.any or ())
        if c.not_ is not None:
            conds.append(c.not_)
        if c.basket is not None and c.basket.lines is not None:
            conds.append(c.basket.lines)
    return False


def period_keys(local: datetime) -> dict[str, str]:
    """The calendar periods a receipt at ``local`` (store time) counts in."""
    iso = local.isocalendar()
    return {
        "day": f"day:{local:%Y-%m-%d}",
        "week": f"week:{iso.year}-W{iso.week:02d}",
        "month": f"month:{local:%Y-%m}",
        "year": f"year:{local:%Y}",
        "ever": "ever",
    }


async def customer_context(
    tx: Tx,
    compiled: CompiledProgram,
    account: AccountState,
    *,
    available: Decimal,
    local: datetime,
) -> CustomerContext:
    """The customer as promotions see him, at store time ``local``."""
    usage_needed, history_needed, offers_needed = _needs_cached(compiled)
    usage: dict[str, dict[str, int]] = {}
    if usage_needed:
        keys = period_keys(local)
        by_key = {v: k for k, v in keys.items()}
        rows = await tx.fetch(
            "SELECT promotion_id, period, uses FROM promotion_usage "
            "WHERE program_id = ? AND account_id = ?",
            account.program_id,
            account.id,
        )
        for pid, period, uses in rows:
            kind = by_key.get(period)
            if kind is not None:
                usage.setdefault(pid, {})[kind] = int(uses)
    purchases = 0
    last_on: date | None = None
    if history_needed:
        rows = await tx.fetch(
            "SELECT count(*), max(occurred_at) FROM receipts "
            "WHERE program_id = ? AND account_id = ? AND state = 'confirmed'",
            account.program_id,
            account.id,
        )
        if rows:
            purchases = int(rows[0][0] or 0)
            last = parse_ts(rows[0][1]) if rows[0][1] is not None else None
            last_on = last.astimezone(local.tzinfo).date() if last is not None else None
    offers: frozenset[str] = frozenset()
    if offers_needed:
        rows = await tx.fetch(
            "SELECT promotion_id FROM personal_offers WHERE program_id = ? AND customer_id = ? "
            "AND (valid_until IS NULL OR valid_until > ?)",
            account.program_id,
            account.customer_id,
            ts(tx, local),
        )
        offers = frozenset(r[0] for r in rows)
    names = {str(account.customer_id), account.card_number}
    if account.phone:
        names.add(account.phone)
    return CustomerContext(
        account_id=account.id,
        available=available,
        customer_id=account.customer_id,
        keys=frozenset(k for k in names if k),
        tier=account.tier or _lowest_tier(compiled),
        discount_percent=account.discount_percent,
        tags=_tags(account.tags),
        rfm=account.rfm_segment,
        last_purchase_on=last_on,
        purchases=purchases,
        birthday=_date(account.birthday),
        offers=offers,
        usage=usage,
    )


def _lowest_tier(compiled: CompiledProgram) -> str | None:
    tiers = compiled.doc.tiers
    return tiers.levels[0].code if tiers else None


def _tags(raw: str | None) -> frozenset[str]:
    if not raw:
        return frozenset()
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return frozenset()
    return frozenset(str(x) for x in data) if isinstance(data, list) else frozenset()


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


async def budgets_left(tx: Tx, compiled: CompiledProgram, program_id: int) -> dict[str, BudgetLeft]:
    """What each promotion with a budget may still give (one statement, only if any)."""
    budgeted = {p.id: p.budget for p in compiled.promotions if p.budget is not None}
    if not budgeted:
        return {}
    rows = await tx.fetch(
        "SELECT promotion_id, spent_money, spent_points FROM promotion_budgets "
        "WHERE program_id = ?",
        program_id,
    )
    spent = {r[0]: (dec2(r[1]), dec2(r[2])) for r in rows}
    out = {}
    for pid, b in budgeted.items():
        money, points = spent.get(pid, (Decimal(0), Decimal(0)))
        out[pid] = BudgetLeft(
            None if b.money is None else b.money - money,
            None if b.points is None else b.points - points,
        )
    return out
