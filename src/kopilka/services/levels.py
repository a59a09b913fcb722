"""Keeping ``accounts.tier``, ``tier_since`` and ``discount_percent`` up to date.

The decision is ``domain.levels.decide_levels``; this module reads what it needs from the
account's confirmed receipts and writes the result with its notifications:

- ``refresh_after_purchase``: at the till, in the confirm's transaction; only raises.
  One statement when nothing changes; on a change PostgreSQL writes the account and the
  outbox in one more (two in all), SQLite in two more (three statements in process).
  No statement at all for a program without tiers or cumulative rules.
- ``recompute_levels``: the job (``kopilka worker``, ``kopilka levels recompute``); the
  only place where a tier or a percent goes down.  Reads a batch of accounts' measures
  in one statement, and takes a short transaction, with the account locked, only for the
  accounts whose levels change.
- ``refresh_account``: one account, from any transaction (``Tx``; jobs wrap their
  SQLAlchemy connection in ``SATx``).

What the receipts add up to (``domain.levels.Measures``): confirmed receipts only,
``to_pay`` (what the customer paid in money) net of what refunds gave back, each receipt
counted at its ``occurred_at``; a visit is a confirmed receipt (a refund does not take a
visit back).  Every change of tier or percent writes one outbox row in the same
transaction, topic ``tier.changed`` or ``discount.changed`` (payloads in ``_notices``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select

from kopilka.domain.levels import (
    DecayReason,
    Levels,
    Measures,
    Windows,
    decide_levels,
    tier_rank,
    windows,
)
from kopilka.domain.money import fmt2
from kopilka.domain.rules.compiler import CompiledProgram
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.raw import SATx, Tx, cents, dec2, insert_rows, multi_values, parse_ts, ts

# --- SQL -----------------------------------------------------------------------------------

_NET = "r.to_pay - coalesce((SELECT sum(f.amount) FROM refunds f WHERE f.receipt_pk = r.id), 0)"


def _measures_sql(accounts: str) -> str:
    """One row per account: its levels and its ``Measures``.  ``accounts`` selects them
    (``= ?`` or ``BETWEEN ? AND ?``); the receipts are read on their
    (program_id, account_id, occurred_at) index from ``Windows.scan_from`` on."""
    return (
        "SELECT a.id, a.customer_id, a.tier, a.tier_since, a.discount_percent, "
        "(SELECT min(r1.occurred_at) FROM receipts r1 WHERE r1.program_id = a.program_id "
        "AND r1.account_id = a.id AND r1.state = 'confirmed'), "
        "(SELECT max(r2.occurred_at) FROM receipts r2 WHERE r2.program_id = a.program_id "
        "AND r2.account_id = a.id AND r2.state = 'confirmed'), "
        "coalesce(sum(CASE WHEN x.occurred_at >= ? THEN x.net END), 0), "
        "count(CASE WHEN x.occurred_at >= ? THEN 1 END), "
        "coalesce(sum(CASE WHEN x.occurred_at >= ? THEN x.net END), 0), "
        "coalesce(sum(CASE WHEN x.occurred_at >= ? AND x.occurred_at < ? THEN x.net END), 0) "
        f"FROM accounts a LEFT JOIN (SELECT r.account_id, r.occurred_at, {_NET} AS net "
        "FROM receipts r WHERE r.program_id = ? AND r.state = 'confirmed' "
        f"AND r.occurred_at >= ? AND r.account_id {accounts}) x ON x.account_id = a.id "
        f"WHERE a.program_id = ? AND a.id {accounts} "
        "GROUP BY a.id, a.program_id, a.customer_id, a.tier, a.tier_since, a.discount_percent "
        "ORDER BY a.id"
    )


MEASURES_ONE = _measures_sql("= ?")
MEASURES_RANGE = _measures_sql("BETWEEN ? AND ?")
LOCK_ACCOUNT_PG = "SELECT id FROM accounts WHERE id = ? FOR UPDATE"
UPDATE_LEVELS = (
    "UPDATE accounts SET tier = ?, tier_since = ?, discount_percent = ?, updated_at = ? "
    "WHERE id = ?"
)
INSERT_OUTBOX = "INSERT INTO outbox (program_id, topic, payload, created_at, attempts)"

# --- reading and deciding ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountLevels:
    """An account's levels and measures as read (``_read``)."""

    account_id: int
    customer_id: int
    levels: Levels
    measures: Measures


@dataclass(frozen=True, slots=True)
class Change:
    """What a review changed on one account (also a renewal of ``tier_since`` alone)."""

    program_id: int
    account_id: int
    customer_id: int
    before: Levels
    after: Levels
    decay: DecayReason | None = None

    @property
    def tier_changed(self) -> bool:
        return self.before.tier != self.after.tier

    @property
    def discount_changed(self) -> bool:
        """Whether the customer's percent changed (``None`` and 0 both give nothing)."""
        return (self.before.discount_percent or 0) != (self.after.discount_percent or 0)


def has_levels(compiled: CompiledProgram) -> bool:
    return compiled.doc.tiers is not None or compiled.doc.cumulative is not None


async def _read(
    tx: Tx, compiled: CompiledProgram, program_id: int, w: Windows, accounts: Sequence[int]
) -> list[AccountLevels]:
    """``accounts``: one id, or the (first, last) ids of a range."""
    sql = MEASURES_ONE if len(accounts) == 1 else MEASURES_RANGE
    rows = await tx.fetch(
        sql,
        ts(tx, w.tier_from),
        ts(tx, w.tier_from),
        ts(tx, w.cumulative_from),
        ts(tx, w.month_from),
        ts(tx, w.month_to),
        program_id,
        ts(tx, w.scan_from),
        *accounts,
        program_id,
        *accounts,
    )
    return [_fold(r) for r in rows]


def _fold(r: Any) -> AccountLevels:
    levels = Levels(r[2], parse_ts(r[3]), None if r[4] is None else dec2(int(r[4])))
    measures = Measures(
        tier_spend=dec2(int(r[7])),
        tier_visits=int(r[8]),
        cumulative_amount=dec2(int(r[9])),
        month_amount=dec2(int(r[10])),
        first_purchase_at=parse_ts(r[5]),
        last_purchase_at=parse_ts(r[6]),
    )
    return AccountLevels(r[0], r[1], levels, measures)


def _decide(
    compiled: CompiledProgram, acc: AccountLevels, now: datetime, *, till: bool
) -> tuple[Levels, DecayReason | None]:
    doc = compiled.doc
    d = decide_levels(
        doc.tiers, doc.cumulative, acc.levels, acc.measures, now=now, tz=compiled.tz, till=till
    )
    return d.levels, d.decay


# --- writing -------------------------------------------------------------------------------


def _notices(compiled: CompiledProgram, change: Change) -> list[tuple[str, str]]:
    """(topic, payload JSON) for each change the customer is told of.

    ``tier.changed``: account_id, customer_id, old and new tier codes (``None`` stored is
    reported as the lowest tier's code), the new tier's name, direction (up/down), since.
    ``discount.changed``: account_id, customer_id, old (``None`` if never set) and new
    percent as strings with two decimals, direction, and ``reason`` (inactive, low_month)
    when the decay holds the percent below its level.
    """
    out: list[tuple[str, str]] = []
    ids = {"account_id": change.account_id, "customer_id": change.customer_id}
    tiers = compiled.doc.tiers
    if change.tier_changed and tiers is not None:
        lowest = tiers.levels[0].code
        new = change.after.tier or lowest
        up = tier_rank(tiers, change.after.tier) > tier_rank(tiers, change.before.tier)
        since = change.after.tier_since
        body = {
            **ids,
            "old": change.before.tier or lowest,
            "new": new,
            "new_name": compiled.tiers[new].name if new in compiled.tiers else new,
            "direction": "up" if up else "down",
            "since": None if since is None else since.isoformat(),
        }
        out.append(("tier.changed", orjson.dumps(body).decode()))
    if change.discount_changed:
        old, new_pct = change.before.discount_percent, change.after.discount_percent
        body = {
            **ids,
            "old": None if old is None else fmt2(old),
            "new": None if new_pct is None else fmt2(new_pct),
            "direction": "up" if (new_pct or 0) > (old or 0) else "down",
            "reason": change.decay,
        }
        out.append(("discount.changed", orjson.dumps(body).decode()))
    return out


async def _write(tx: Tx, compiled: CompiledProgram, change: Change, now: datetime) -> None:
    """The account's new levels and their outbox rows.  PostgreSQL: one statement."""
    after = change.after
    update_args = (
        after.tier,
        ts(tx, after.tier_since),
        None if after.discount_percent is None else cents(after.discount_percent),
        ts(tx, now),
        change.account_id,
    )
    rows = [
        (change.program_id, topic, payload, ts(tx, now), 0)
        for topic, payload in _notices(compiled, change)
    ]
    if tx.pg and rows:
        head = f"WITH u AS ({UPDATE_LEVELS}) {INSERT_OUTBOX}"
        flat = [v for row in rows for v in row]
        await tx.execute(multi_values(head, 5, len(rows)), *update_args, *flat)
        return
    await tx.execute(UPDATE_LEVELS, *update_args)
    if rows:
        await insert_rows(tx, INSERT_OUTBOX, rows)


async def refresh_account(
    tx: Tx,
    compiled: CompiledProgram,
    *,
    program_id: int,
    account_id: int,
    now: datetime,
    till: bool = False,
    locked: bool = False,
) -> Change | None:
    """Review one account's tier and cumulative percent at ``now`` and write any change
    with its outbox rows, in the caller's transaction.  None when nothing changed.

    With ``till`` only raises (``decide_levels``).  Unless ``locked`` (the caller holds
    the account's row lock, as the confirm does), the account row is locked first
    (PostgreSQL; SQLite transactions are serialised by ``BEGIN IMMEDIATE``) and the
    receipts read afterwards, in a snapshot that includes every purchase committed before
    the lock was granted.
    """
    if not locked and tx.pg:
        await tx.execute(LOCK_ACCOUNT_PG, account_id)
    w = windows(compiled.doc.tiers, compiled.doc.cumulative, now=now, tz=compiled.tz)
    found = await _read(tx, compiled, program_id, w, [account_id])
    if not found:
        return None
    acc = found[0]
    after, decay = _decide(compiled, acc, now, till=till)
    if after == acc.levels:
        return None
    change = Change(program_id, account_id, acc.customer_id, acc.levels, after, decay)
    await _write(tx, compiled, change, now)
    return change


async def refresh_after_purchase(
    tx: Tx, compiled: CompiledProgram, *, program_id: int, account_id: int, now: datetime
) -> Change | None:
    """The till's review, inside the confirm's transaction after the receipt is written
    as confirmed; the caller holds the account's row lock.  Only raises the tier (at once)
    and the percent.  No statement for a program without tiers or cumulative rules; one
    when nothing changes; two on PostgreSQL (three on SQLite) when something does."""
    if not has_levels(compiled):
        return None
    return await refresh_account(
        tx, compiled, program_id=program_id, account_id=account_id, now=now, till=True, locked=True
    )


# --- the job -------------------------------------------------------------------------------


async def recompute_levels(rt: Runtime, *, program_id: int | None = None, batch: int = 500) -> int:
    """Review every account of every program with tiers or cumulative rules (or of
    ``program_id``); here tiers go down at their period's end and percents decay.
    Returns how many accounts had their tier or percent changed."""
    p = t.programs
    query = select(p.c.id).order_by(p.c.id)
    if program_id is not None:
        query = query.where(p.c.id == program_id)
    async with rt.engine.connect() as conn:
        program_ids = (await conn.execute(query)).scalars().all()
    changed = 0
    for pid in program_ids:
        compiled = await rt.compiled(pid)
        if has_levels(compiled):
            changed += await _recompute_program(rt, compiled, pid, batch=batch)
    return changed


async def _recompute_program(
    rt: Runtime, compiled: CompiledProgram, program_id: int, *, batch: int
) -> int:
    """Batches of ``batch`` accounts: one read of their measures, then one short
    transaction per account whose levels change (which reads again, under the lock, so a
    purchase confirmed in between is counted)."""
    a = t.accounts
    after_id = 0
    changed = 0
    while True:
        now = rt.now()
        w = windows(compiled.doc.tiers, compiled.doc.cumulative, now=now, tz=compiled.tz)
        async with rt.engine.connect() as conn:
            ids = (
                (
                    await conn.execute(
                        select(a.c.id)
                        .where(a.c.program_id == program_id, a.c.id > after_id)
                        .order_by(a.c.id)
                        .limit(batch)
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                return changed
            found = await _read(SATx(conn), compiled, program_id, w, [ids[0], ids[-1]])
        due = [x.account_id for x in found if _decide(compiled, x, now, till=False)[0] != x.levels]
        for account_id in due:
            async with rt.engine.begin() as conn:
                change = await refresh_account(
                    SATx(conn), compiled, program_id=program_id, account_id=account_id, now=now
                )
            if change is not None and (change.tier_changed or change.discount_changed):
                changed += 1
        if len(ids) < batch:
            return changed
        after_id = ids[-1]


# --- command line --------------------------------------------------------------------------


def run_levels_cli(args: argparse.Namespace) -> int:
    """``kopilka levels recompute [--program CODE]``: ``args.db`` and ``args.program``."""

    async def main() -> int:
        rt = Runtime.from_url(args.db)
        try:
            program_id = None
            if args.program is not None:
                async with rt.engine.connect() as conn:
                    program_id = (
                        await conn.execute(
                            select(t.programs.c.id).where(t.programs.c.code == args.program)
                        )
                    ).scalar_one_or_none()
                if program_id is None:
                    print(f"error: no program {args.program!r}", file=sys.stderr)
                    return 2
            n = await recompute_levels(rt, program_id=program_id)
        finally:
            await rt.close()
        print(f"{n} accounts changed tier or discount")
        return 0

    return asyncio.run(main())
