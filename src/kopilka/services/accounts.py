"""Manual adjustments of an account by an operator (entry kind ``adjust``).

With an ``actor`` (the console, the admin API) the adjustment needs a reason and writes
an audit row (balance before and after) in the same transaction as the ledger posting.
Without one (tests, internal callers) it is a bare posting, as before.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kopilka.domain.ledger import (
    EntryKind,
    InsufficientPoints,
    balance_at,
    burn_cap,
    has_restricted,
    plan_burn,
)
from kopilka.domain.money import fmt2
from kopilka.domain.program import ProgramSettings
from kopilka.domain.roles import Perm
from kopilka.services import audit
from kopilka.services.errors import ServiceError
from kopilka.services.purchases import lot_dates
from kopilka.services.runtime import Runtime
from kopilka.store.queries.accounts import Posting, held_at, load_account
from kopilka.store.raw import SATx, Tx

MAX_ADJUST = Decimal("10000000")


async def do_adjust(
    rt: Runtime,
    account_id: int,
    amount: Decimal,
    *,
    program_id: int,
    note: str = "",
    actor: audit.Actor | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Credit (a new lot, with the program's expiry) or debit (soonest expiry first).

    Returns the balance before and after (available, pending, held).
    """
    program = await rt.program(program_id)  # before the transaction: it may read the database
    if actor is None:
        async with rt.hot.tx() as tx:
            return await _adjust(
                rt, tx, account_id, amount, program, program_id=program_id, note=note, checked=False
            )
    actor.require(Perm.CUSTOMERS_WRITE)
    check_amount(amount)
    why = audit.require_reason(reason)
    async with rt.engine.begin() as conn:
        out = await _adjust(
            rt, SATx(conn), account_id, amount, program, program_id=program_id, note=note or why
        )
        await audit.record(
            conn,
            actor,
            "points.adjust",
            "account",
            account_id,
            at=rt.now(),
            program_id=program_id,
            reason=why,
            before={"amount": fmt2(amount), **out["before"]},
            after=out["after"],
        )
    return out


def check_amount(amount: Decimal) -> None:
    """An operator's adjustment: non-zero, at most ``MAX_ADJUST``, two decimals."""
    if not amount.is_finite() or amount == 0:
        raise ServiceError("validation_failed", "give a non-zero number of points", field="amount")
    if abs(amount) > MAX_ADJUST or amount != amount.quantize(Decimal("0.01")):
        raise ServiceError(
            "validation_failed", f"at most {MAX_ADJUST} points, two decimals", field="amount"
        )


async def _adjust(
    rt: Runtime,
    tx: Tx,
    account_id: int,
    amount: Decimal,
    program: ProgramSettings,
    *,
    program_id: int,
    note: str,
    checked: bool = True,
) -> dict[str, Any]:
    now = rt.now()
    acc = await load_account(tx, account_id, lock=True)
    if checked and acc.program_id != program_id:
        raise ServiceError("not_found", f"no account {account_id}", field="account_id")
    # The operator's own movements: credits are the program's points, debits take only
    # points burnable anywhere, never what holds need (ADR 0024).
    holds = await held_at(tx, acc)
    before = balance_at(acc.lots, at=None, held=acc.held, held_at=holds, debt=acc.debt, now=now)
    posting = Posting(acc, now)
    if amount > 0:
        posting.credit(amount, expires_at=lot_dates(now, program)[1])
    elif amount < 0:
        available = before.available
        if -amount > available:
            raise ServiceError(
                "insufficient_points",
                f"{-amount} points to debit, {available} available (held points stay)",
                field="amount",
                available=fmt2(available),
            )
        try:
            cap = None
            if has_restricted(acc.lots):
                cap = burn_cap(acc.lots, at=None, held_at=holds or {}, now=now)
            takes = plan_burn(acc.lots, -amount, now=now, at=None, unrestricted_cap=cap)
        except InsufficientPoints as exc:
            raise ServiceError("insufficient_points", str(exc), field="amount") from None
        posting.take(takes, EntryKind.ADJUST)
    await posting.flush(tx, note=note[:200] or None)
    after = balance_at(acc.lots, at=None, held=acc.held, held_at=holds, debt=acc.debt, now=now)
    return {
        "before": {"available": fmt2(before.available), "balance": fmt2(acc.balance - amount)},
        "after": {"available": fmt2(after.available), "balance": fmt2(acc.balance)},
    }
