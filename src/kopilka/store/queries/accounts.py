"""Reading an account with its lots (optionally locked) and writing ledger postings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.ledger import ZERO, EntryKind, Lot, Take
from kopilka.store import tables as t
from kopilka.store.types import Money

a = t.accounts
lt = t.lots
c = t.cards
i = t.identifiers
cu = t.customers


@dataclass
class AccountState:
    """An account as read in a transaction, with its non-empty lots.

    When read with ``lock=True`` the account row is locked (``SELECT ... FOR UPDATE``
    on PostgreSQL; SQLite transactions are serialised by ``BEGIN IMMEDIATE``) until the
    transaction ends, so the balance cannot change under the caller.
    """

    id: int
    program_id: int
    balance: Decimal
    held: Decimal
    debt: Decimal
    lots: list[Lot] = field(default_factory=list)
    customer_id: int = 0
    card_id: int = 0
    card_number: str = ""
    card_status: str = "active"
    first_name: str = ""
    last_name: str = ""


_ACCOUNT_COLS = (a.c.id, a.c.program_id, a.c.balance, a.c.held, a.c.debt)
_LOT_COLS = (lt.c.id.label("lot_id"), lt.c.remaining, lt.c.activates_at, lt.c.expires_at)


def _fold(rows: Sequence[Any]) -> AccountState | None:
    state: AccountState | None = None
    for r in rows:
        if state is None:
            state = AccountState(r.id, r.program_id, r.balance, r.held, r.debt)
            if hasattr(r, "card_id"):
                state.customer_id = r.customer_id
                state.card_id = r.card_id
                state.card_number = r.number
                state.card_status = r.card_status
                state.first_name = r.first_name
                state.last_name = r.last_name
        if r.lot_id is not None:
            state.lots.append(Lot(r.lot_id, r.remaining, r.activates_at, r.expires_at))
    return state


async def load_by_identifier(
    conn: AsyncConnection, *, program_id: int, values: Sequence[str], lock: bool
) -> AccountState | None:
    """One statement: identifier -> card -> customer -> account, with the account's lots."""
    stmt = (
        select(
            *_ACCOUNT_COLS,
            c.c.id.label("card_id"),
            c.c.number,
            c.c.status.label("card_status"),
            c.c.customer_id,
            cu.c.first_name,
            cu.c.last_name,
            *_LOT_COLS,
        )
        .select_from(
            i.join(c, c.c.id == i.c.card_id)
            .join(a, a.c.id == c.c.account_id)
            .join(cu, cu.c.id == c.c.customer_id)
            .outerjoin(
                lt,
                (lt.c.program_id == a.c.program_id)
                & (lt.c.account_id == a.c.id)
                & (lt.c.remaining > 0),
            )
        )
        .where(i.c.program_id == program_id, i.c.value.in_(values))
        .order_by(i.c.kind)
    )
    if lock:
        stmt = stmt.with_for_update(of=a)
    rows = (await conn.execute(stmt)).all()
    if rows:
        first_card = rows[0].card_id
        rows = [r for r in rows if r.card_id == first_card]
    return _fold(rows)


async def load_account(conn: AsyncConnection, account_id: int, *, lock: bool) -> AccountState:
    stmt = (
        select(*_ACCOUNT_COLS, *_LOT_COLS)
        .select_from(
            a.outerjoin(
                lt,
                (lt.c.program_id == a.c.program_id)
                & (lt.c.account_id == a.c.id)
                & (lt.c.remaining > 0),
            )
        )
        .where(a.c.id == account_id)
    )
    if lock:
        stmt = stmt.with_for_update(of=a)
    state = _fold((await conn.execute(stmt)).all())
    assert state is not None, f"account {account_id} vanished"
    return state


@dataclass
class Posting:
    """Ledger changes for one account in one transaction, written by ``flush``.

    The caller adds movements; ``flush`` writes the lot updates, the new lot, the entries
    and the account's cached totals, and checks the ledger guarantees on the way.
    """

    account: AccountState
    now: datetime
    receipt_pk: int | None = None
    refund_pk: int | None = None
    funding_partner_id: int | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)
    lot_changes: dict[int, Decimal] = field(default_factory=dict)
    new_lot: dict[str, Any] | None = None

    def _entry(
        self,
        kind: EntryKind,
        amount: Decimal,
        held_delta: Decimal = ZERO,
        lot_id: int | None = None,
        hold_id: int | None = None,
    ) -> None:
        self.entries.append(
            {
                "program_id": self.account.program_id,
                "account_id": self.account.id,
                "kind": kind.value,
                "amount": amount,
                "held_delta": held_delta,
                "lot_id": lot_id,
                "hold_id": hold_id,
                "receipt_pk": self.receipt_pk,
                "refund_pk": self.refund_pk,
                "funding_partner_id": self.funding_partner_id,
                "created_at": self.now,
            }
        )

    def hold(self, amount: Decimal, hold_id: int) -> None:
        self._entry(EntryKind.HOLD, ZERO, amount, hold_id=hold_id)
        self.account.held += amount

    def release(
        self, amount: Decimal, hold_id: int, *, kind: EntryKind = EntryKind.RELEASE
    ) -> None:
        self._entry(kind, ZERO, -amount, hold_id=hold_id)
        self.account.held -= amount

    def take(self, takes: Sequence[Take], kind: EntryKind, *, from_hold: int | None = None) -> None:
        """Points leave lots (burn, take-back on refund, expiry)."""
        for tk in takes:
            held_delta = -tk.amount if from_hold is not None else ZERO
            self._entry(kind, -tk.amount, held_delta, lot_id=tk.lot_id, hold_id=from_hold)
            self.lot_changes[tk.lot_id] = self.lot_changes.get(tk.lot_id, ZERO) - tk.amount
            self.account.balance -= tk.amount
            if from_hold is not None:
                self.account.held -= tk.amount

    def give_back(self, takes: Sequence[Take]) -> None:
        """Points return to the lots they came from (refund of redeemed points)."""
        for tk in takes:
            self._entry(EntryKind.REFUND, tk.amount, lot_id=tk.lot_id)
            self.lot_changes[tk.lot_id] = self.lot_changes.get(tk.lot_id, ZERO) + tk.amount
            self.account.balance += tk.amount

    def add_debt(self, amount: Decimal, kind: EntryKind) -> None:
        if amount:
            self._entry(kind, -amount)
            self.account.debt += amount
            self.account.balance -= amount

    def earn(
        self,
        amount: Decimal,
        *,
        debt_paid: Decimal,
        activates_at: datetime,
        expires_at: datetime | None,
    ) -> None:
        """Credit earned points: first to the debt, the rest as a new lot."""
        if amount <= 0:
            return
        self.account.debt -= debt_paid
        self.account.balance += amount
        lot_amount = amount - debt_paid
        if lot_amount > 0:
            self.new_lot = {
                "program_id": self.account.program_id,
                "account_id": self.account.id,
                "amount": lot_amount,
                "remaining": lot_amount,
                "activates_at": activates_at,
                "expires_at": expires_at,
                "receipt_pk": self.receipt_pk,
                "funding_partner_id": self.funding_partner_id,
                "created_at": self.now,
            }
        self._entry(EntryKind.EARN, amount)  # lot_id filled in by flush
        self.entries[-1]["_new_lot"] = lot_amount > 0

    async def flush(self, conn: AsyncConnection) -> int | None:
        """Write everything; returns the new lot's id, if one was made."""
        acc = self.account
        remaining = {lot.id: lot.remaining for lot in acc.lots}
        for lot_id, delta in self.lot_changes.items():
            # A lot emptied earlier is not in the snapshot; refunds give back into it.
            if lot_id in remaining:
                remaining[lot_id] += delta
                assert remaining[lot_id] >= 0, f"lot {lot_id} would go negative"
        assert acc.held >= 0 and acc.debt >= 0, (acc.held, acc.debt)
        new_lot_id: int | None = None
        if self.new_lot is not None:
            new_lot_id = (
                await conn.execute(insert(lt).returning(lt.c.id), self.new_lot)
            ).scalar_one()
            acc.lots.append(
                Lot(
                    new_lot_id,
                    self.new_lot["remaining"],
                    self.new_lot["activates_at"],
                    self.new_lot["expires_at"],
                )
            )
        for e in self.entries:
            if e.pop("_new_lot", False):
                e["lot_id"] = new_lot_id
        if self.lot_changes:
            await conn.execute(
                update(lt)
                .where(lt.c.id == bindparam("b_id"))
                .values(remaining=lt.c.remaining + bindparam("b_delta", type_=Money())),
                [{"b_id": k, "b_delta": d} for k, d in self.lot_changes.items()],
            )
            acc.lots = [
                Lot(x.id, remaining[x.id], x.activates_at, x.expires_at)
                if x.id in self.lot_changes
                else x
                for x in acc.lots
            ]
        if self.entries:
            await conn.execute(insert(t.ledger_entries), self.entries)
            await conn.execute(
                update(a)
                .where(a.c.id == acc.id)
                .values(balance=acc.balance, held=acc.held, debt=acc.debt, updated_at=self.now)
            )
        self.entries = []
        self.lot_changes = {}
        self.new_lot = None
        return new_lot_id
