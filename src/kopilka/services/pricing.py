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

from kopilka.domain.receipt import PricedReceipt
from kopilka.domain.rules.compiler import CompiledProgram
from kopilka.domain.rules.facts import BudgetLeft, CustomerContext
from kopilka.store.queries.accounts import AccountState
from kopilka.store.raw import Tx, cents, dec2, parse_ts, ts


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
    usage_needed, history_needed, offers_needed = compiled.reads
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
        tags=tags_of(account.tags),
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


def tags_of(raw: str | None) -> frozenset[str]:
    """The customer's groups from their JSON column."""
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


# --- promotions with budgets and per-customer limits ----------------------------------------

INSERT_RECEIPT_PROMOTIONS = (
    "INSERT INTO receipt_promotions (receipt_pk, promotion_id, program_id, account_id, "
    "discount, points, counted, periods, tickets)"
)
ENSURE_BUDGET = (
    "INSERT INTO promotion_budgets (program_id, promotion_id, spent_money, spent_points) "
    "VALUES (?, ?, 0, 0) ON CONFLICT DO NOTHING"
)
# The conditional update is the whole guarantee: two tills racing for the last of a budget
# both run it; the row lock makes the second see the first's sum and match no row.
SPEND_BUDGET = (
    "UPDATE promotion_budgets SET spent_money = spent_money + ?, spent_points = spent_points + ? "
    "WHERE program_id = ? AND promotion_id = ? AND spent_money + ? <= ? AND spent_points + ? <= ? "
    "RETURNING 1"
)
USE_LIMIT = (
    "INSERT INTO promotion_usage (program_id, account_id, promotion_id, period, uses) "
    "VALUES (?, ?, ?, ?, 1) ON CONFLICT (program_id, account_id, promotion_id, period) "
    "DO UPDATE SET uses = promotion_usage.uses + 1 WHERE promotion_usage.uses < ? RETURNING uses"
)
UNLIMITED = 10**15  # hundredths: no budget of this kind


def promotion_rows(
    compiled: CompiledProgram,
    priced: PricedReceipt,
    program_id: int,
    account: AccountState | None,
    local: datetime,
) -> list[tuple[Any, ...]]:
    """(promotion_id, program_id, account_id, discount, points, counted, periods) of every
    promotion the receipt got; ``counted`` when it took from a budget or a per-customer
    limit, ``periods`` the usage rows it counted in."""
    out = []
    keys: dict[str, str] | None = None
    for a in priced.applied:
        p = compiled.by_id.get(a.rule)
        if p is None:
            continue
        counted = bool(p.budget is not None or (p.limits and account is not None))
        periods = None
        if p.limits and account is not None:
            keys = keys or period_keys(local)
            periods = ",".join(keys[lim.period] for lim in p.limits)
        out.append(
            (
                a.rule,
                program_id,
                account.id if account else None,
                cents(a.discount),
                cents(a.points),
                counted,
                periods,
                priced.draw_tickets.get(a.rule, 0),
            )
        )
    return out


async def reserve_promotions(
    tx: Tx,
    compiled: CompiledProgram,
    priced: PricedReceipt,
    *,
    program_id: int,
    account: AccountState | None,
    local: datetime,
) -> str | None:
    """Take what the receipt's promotions give from their budgets and count the receipt
    against their per-customer limits, in the caller's transaction.

    Returns None when everything fit.  Otherwise gives back what this call took and
    returns the id of the promotion that no longer fits: the caller prices again
    without it.
    """
    keys: dict[str, str] | None = None
    taken: list[tuple[Any, ...]] = []
    for a in priced.applied:
        p = compiled.by_id.get(a.rule)
        if p is None or (p.budget is None and not p.limits):
            continue
        if p.budget is not None:
            money = UNLIMITED if p.budget.money is None else cents(p.budget.money)
            points = UNLIMITED if p.budget.points is None else cents(p.budget.points)
            d, pts = cents(a.discount), cents(a.points)
            await tx.execute(ENSURE_BUDGET, program_id, p.id)
            rows = await tx.fetch(SPEND_BUDGET, d, pts, program_id, p.id, d, money, pts, points)
            if not rows:
                await _give_back(tx, program_id, taken)
                return p.id
            taken.append(("budget", p.id, d, pts))
        if p.limits and account is not None:
            keys = keys or period_keys(local)
            for lim in p.limits:
                period = keys[lim.period]
                rows = await tx.fetch(USE_LIMIT, program_id, account.id, p.id, period, lim.count)
                if not rows:
                    await _give_back(tx, program_id, taken)
                    return p.id
                taken.append(("usage", p.id, account.id, period))
    return None


RETURN_BUDGET = (
    "UPDATE promotion_budgets SET spent_money = spent_money - ?, "
    "spent_points = spent_points - ? WHERE program_id = ? AND promotion_id = ?"
)
RETURN_USE = (
    "UPDATE promotion_usage SET uses = uses - 1 "
    "WHERE program_id = ? AND account_id = ? AND promotion_id = ? AND period = ? AND uses > 0"
)


async def _give_back(tx: Tx, program_id: int, taken: list[tuple[Any, ...]]) -> None:
    for item in taken:
        if item[0] == "budget":
            await tx.execute(RETURN_BUDGET, item[2], item[3], program_id, item[1])
        else:
            await tx.execute(RETURN_USE, program_id, item[2], item[1], item[3])


async def release_promotions(tx: Tx, *, receipt_pk: int) -> int:
    """A receipt that did not happen (cancelled, or its hold expired) gives back what its
    promotions took from budgets and limits.  Idempotent (``counted`` is cleared)."""
    rows = await tx.fetch(
        "UPDATE receipt_promotions SET counted = ? WHERE receipt_pk = ? AND counted = ? "
        "RETURNING promotion_id, program_id, account_id, discount, points, periods",
        False,
        receipt_pk,
        True,
    )
    for pid, program_id, account_id, discount, points, periods in rows:
        await tx.execute(RETURN_BUDGET, discount, points, program_id, pid)
        if account_id is not None and periods:
            for period in periods.split(","):
                await tx.execute(RETURN_USE, program_id, account_id, pid, period)
    return len(rows)
