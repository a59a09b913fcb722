"""Manual adjustments of an account by an operator (entry kind ``adjust``)."""

from __future__ import annotations

from decimal import Decimal

from kopilka.domain.ledger import EntryKind, InsufficientPoints, balance_of, plan_burn
from kopilka.services.errors import ServiceError
from kopilka.services.purchases import lot_dates
from kopilka.services.runtime import Runtime
from kopilka.store.queries.accounts import Posting, load_account


async def do_adjust(
    rt: Runtime, account_id: int, amount: Decimal, *, program_id: int, note: str = ""
) -> None:
    """Credit (a new lot, with the program's expiry) or debit (soonest expiry first)."""
    program = await rt.program(program_id)
    now = rt.now()
    async with rt.hot.tx() as tx:
        acc = await load_account(tx, account_id, lock=True)
        posting = Posting(acc, now)
        if amount > 0:
            posting.credit(amount, expires_at=lot_dates(now, program)[1])
        elif amount < 0:
            available = balance_of(acc.lots, held=acc.held, debt=acc.debt, now=now).available
            if -amount > available:
                raise ServiceError(
                    "insufficient_points",
                    f"{-amount} points to debit, {available} available (held points stay)",
                    field="amount",
                )
            try:
                takes = plan_burn(acc.lots, -amount, now=now)
            except InsufficientPoints as exc:
                raise ServiceError("insufficient_points", str(exc), field="amount") from None
            posting.take(takes, EntryKind.ADJUST)
        await posting.flush(tx, note=note[:200] or None)
