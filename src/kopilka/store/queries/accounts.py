"""Reading an account with its lots (optionally locked) and writing ledger postings.

Hot-path SQL (store/raw.py): runs on asyncpg, sqlite3, or inside a SQLAlchemy
transaction, with the same statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from kopilka.domain.ledger import ZERO, EntryKind, Lot, Take
from kopilka.store.raw import Tx, cents, dec2, insert_rows, parse_ts, ts


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
    # What promotions see of the customer (read with the card, no extra statement).
    tier: str | None = None
    discount_percent: Decimal | None = None
    tags: str | None = None  # JSON list
    rfm_segment: str | None = None
    birthday: Any = None  # date (or ISO text on SQLite)
    phone: str | None = None


_ACCOUNT = "a.id, a.program_id, a.balance, a.held, a.debt"
_LOTS = "l.id, l.remaining, l.activates_at, l.expires_at"
_LOTS_JOIN = (
    "LEFT JOIN lots l ON l.program_id = a.program_id AND l.account_id = a.id AND l.remaining > 0"
)

_CARD = (
    "c.id, c.number, c.status, c.customer_id, cu.first_name, cu.last_name, "
    "a.tier, a.discount_percent, cu.tags, cu.rfm_segment, cu.birthday, cu.phone"
)
_BY_IDENTIFIER_FROM = (
    "FROM identifiers i JOIN cards c ON c.id = i.card_id "
    "JOIN accounts a ON a.id = c.account_id JOIN customers cu ON cu.id = c.customer_id "
)
BY_IDENTIFIER = (
    f"SELECT {_ACCOUNT}, {_LOTS}, {_CARD} {_BY_IDENTIFIER_FROM}{_LOTS_JOIN} "
    "WHERE i.program_id = ? AND i.value IN (?, ?) ORDER BY i.kind, l.id"
)
BY_ID = f"SELECT {_ACCOUNT}, {_LOTS} FROM accounts a {_LOTS_JOIN} WHERE a.id = ? ORDER BY l.id"
# Locking reads take the account row first and read its lots in a second statement: in
# PostgreSQL's READ COMMITTED a statement that waited for a row lock sees the locked row's
# newest version but the *joined* rows of its old snapshot, i.e. lots another till has
# just burned.  (Found by tests/services/test_concurrency.py.)
LOCK_BY_IDENTIFIER = (
    f"SELECT {_ACCOUNT}, NULL, NULL, NULL, NULL, {_CARD} {_BY_IDENTIFIER_FROM}"
    "WHERE i.program_id = ? AND i.value IN (?, ?) ORDER BY i.kind"
)
LOCK_BY_ID = f"SELECT {_ACCOUNT} FROM accounts a WHERE a.id = ?"
LOTS_OF = (
    "SELECT l.id, l.remaining, l.activates_at, l.expires_at FROM lots l "
    "WHERE l.program_id = ? AND l.account_id = ? AND l.remaining > 0 ORDER BY l.id"
)
FOR_UPDATE = " FOR UPDATE OF a"


def _fold(rows: Sequence[Any], *, with_card: bool) -> AccountState | None:
    if not rows:
        return None
    r0 = rows[0]
    state = AccountState(r0[0], r0[1], dec2(r0[2]), dec2(r0[3]), dec2(r0[4]))
    if with_card:
        state.card_id, state.card_number, state.card_status = r0[9], r0[10], r0[11]
        state.customer_id, state.first_name, state.last_name = r0[12], r0[13], r0[14]
        state.tier, state.tags, state.rfm_segment = r0[15], r0[17], r0[18]
        state.discount_percent = None if r0[16] is None else dec2(r0[16])
        state.birthday, state.phone = r0[19], r0[20]
        rows = [r for r in rows if r[9] == state.card_id]
    for r in rows:
        if r[5] is not None:
            state.lots.append(Lot(r[5], dec2(r[6]), parse_ts(r[7]), parse_ts(r[8])))  # type: ignore[arg-type]
    return state


async def load_by_identifier(
    tx: Tx, *, program_id: int, values: Sequence[str], lock: bool
) -> AccountState | None:
    """One statement: identifier -> card -> customer -> account, with the account's lots."""
    v = list(values)[:2]
    if not lock:
        return _fold(await tx.fetch(BY_IDENTIFIER, program_id, v[0], v[-1]), with_card=True)
    sql = LOCK_BY_IDENTIFIER + (FOR_UPDATE if tx.pg else "")
    state = _fold(await tx.fetch(sql, program_id, v[0], v[-1]), with_card=True)
    if state is not None:
        await read_lots(tx, state)
    return state


async def load_account(tx: Tx, account_id: int, *, lock: bool) -> AccountState:
    """The account with its lots; with ``lock`` the row stays locked until commit."""
    if lock:
        rows = await tx.fetch(LOCK_BY_ID + (" FOR UPDATE" if tx.pg else ""), account_id)
        rows = [(*r, None, None, None, None) for r in rows]
    else:
        rows = await tx.fetch(BY_ID, account_id)
    state = _fold(rows, with_card=False)
    assert state is not None, f"account {account_id} vanished"
    if lock:
        await read_lots(tx, state)
    return state


async def read_lots(tx: Tx, state: AccountState) -> None:
    """Lots read after the account lock: a fresh snapshot on PostgreSQL."""
    rows = await tx.fetch(LOTS_OF, state.program_id, state.id)
    state.lots = [Lot(r[0], dec2(r[1]), parse_ts(r[2]), parse_ts(r[3])) for r in rows]  # type: ignore[arg-type]


INSERT_LOT = (
    "INSERT INTO lots (program_id, account_id, amount, remaining, activates_at, expires_at, "
    "receipt_pk, funding_partner_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
UPDATE_LOT = "UPDATE lots SET remaining = remaining + ? WHERE id = ?"
INSERT_ENTRIES = (
    "INSERT INTO ledger_entries (program_id, account_id, kind, amount, held_delta, lot_id, "
    "hold_id, receipt_pk, refund_pk, funding_partner_id, created_at, note)"
)
UPDATE_ACCOUNT = "UPDATE accounts SET balance = ?, held = ?, debt = ?, updated_at = ? WHERE id = ?"


@dataclass
class Entry:
    kind: EntryKind
    amount: Decimal
    held_delta: Decimal = ZERO
    lot_id: int | None = None
    hold_id: int | None = None
    new_lot: bool = False
    note: str | None = None


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
    entries: list[Entry] = field(default_factory=list)
    lot_changes: dict[int, Decimal] = field(default_factory=dict)
    new_lot: tuple[Decimal, datetime, datetime | None] | None = None

    def hold(self, amount: Decimal, hold_id: int) -> None:
        self.entries.append(Entry(EntryKind.HOLD, ZERO, amount, hold_id=hold_id))
        self.account.held += amount

    def release(self, amount: Decimal, hold_id: int) -> None:
        self.entries.append(Entry(EntryKind.RELEASE, ZERO, -amount, hold_id=hold_id))
        self.account.held -= amount

    def take(self, takes: Sequence[Take], kind: EntryKind, *, from_hold: int | None = None) -> None:
        """Points leave lots (burn, take-back on refund, expiry, debit adjustment)."""
        for tk in takes:
            held_delta = -tk.amount if from_hold is not None else ZERO
            self.entries.append(Entry(kind, -tk.amount, held_delta, tk.lot_id, from_hold))
            self.lot_changes[tk.lot_id] = self.lot_changes.get(tk.lot_id, ZERO) - tk.amount
            self.account.balance -= tk.amount
            if from_hold is not None:
                self.account.held -= tk.amount

    def give_back(self, takes: Sequence[Take]) -> None:
        """Points return to the lots they came from (refund of redeemed points)."""
        for tk in takes:
            self.entries.append(Entry(EntryKind.REFUND, tk.amount, lot_id=tk.lot_id))
            self.lot_changes[tk.lot_id] = self.lot_changes.get(tk.lot_id, ZERO) + tk.amount
            self.account.balance += tk.amount

    def add_debt(self, amount: Decimal, kind: EntryKind) -> None:
        if amount:
            self.entries.append(Entry(kind, -amount))
            self.account.debt += amount
            self.account.balance -= amount

    def earn(
        self,
        amount: Decimal,
        *,
        debt_paid: Decimal,
        activates_at: datetime,
        expires_at: datetime | None,
        kind: EntryKind = EntryKind.EARN,
    ) -> None:
        """Credit earned points: first to the debt, the rest as a new lot."""
        if amount <= 0:
            return
        self.account.debt -= debt_paid
        self.account.balance += amount
        lot_amount = amount - debt_paid
        if lot_amount > 0:
            self.new_lot = (lot_amount, activates_at, expires_at)
        self.entries.append(Entry(kind, amount, new_lot=lot_amount > 0))

    def credit(
        self, amount: Decimal, *, expires_at: datetime | None, kind: EntryKind = EntryKind.ADJUST
    ) -> None:
        """Points given outside a purchase (an adjustment, an activity, a prize, a points
        code): usable at once, paying the debt first."""
        self.earn(
            amount,
            debt_paid=min(amount, self.account.debt),
            activates_at=self.now,
            expires_at=expires_at,
            kind=kind,
        )

    def lots_after(self) -> list[Lot]:
        """The account's lots as they will be once written (a new lot has id 0)."""
        out = [
            Lot(x.id, x.remaining + self.lot_changes[x.id], x.activates_at, x.expires_at)
            if x.id in self.lot_changes
            else x
            for x in self.account.lots
        ]
        if self.new_lot is not None:
            amount, act, exp = self.new_lot
            out.append(Lot(0, amount, act, exp))
        return out

    def entry_arrays(self) -> tuple[list[Any], ...]:
        """The entries as column arrays, for one ``unnest`` insert (PostgreSQL)."""
        es = self.entries
        return (
            [e.kind.value for e in es],
            [cents(e.amount) for e in es],
            [cents(e.held_delta) for e in es],
            [e.lot_id for e in es],
            [e.hold_id for e in es],
            [e.new_lot for e in es],
        )

    async def flush(self, tx: Tx, *, note: str | None = None) -> int | None:
        """Write everything; returns the new lot's id, if one was made."""
        acc = self.account
        remaining = {lot.id: lot.remaining for lot in acc.lots}
        for lot_id, delta in self.lot_changes.items():
            # A lot emptied earlier is not in the snapshot; refunds give back into it.
            if lot_id in remaining:
                remaining[lot_id] += delta
                assert remaining[lot_id] >= 0, f"lot {lot_id} would go negative"
        assert acc.held >= 0 and acc.debt >= 0, (acc.held, acc.debt)
        now = ts(tx, self.now)
        new_lot_id: int | None = None
        if self.new_lot is not None:
            amount, act, exp = self.new_lot
            rows = await tx.fetch(
                INSERT_LOT,
                acc.program_id,
                acc.id,
                cents(amount),
                cents(amount),
                ts(tx, act),
                ts(tx, exp),
                self.receipt_pk,
                self.funding_partner_id,
                now,
            )
            new_lot_id = int(rows[0][0])
            acc.lots.append(Lot(new_lot_id, amount, act, exp))
        if self.lot_changes:
            await tx.executemany(UPDATE_LOT, [(cents(d), k) for k, d in self.lot_changes.items()])
            acc.lots = [
                Lot(x.id, remaining[x.id], x.activates_at, x.expires_at)
                if x.id in self.lot_changes
                else x
                for x in acc.lots
            ]
        if self.entries:
            await insert_rows(
                tx,
                INSERT_ENTRIES,
                [
                    (
                        acc.program_id,
                        acc.id,
                        e.kind.value,
                        cents(e.amount),
                        cents(e.held_delta),
                        new_lot_id if e.new_lot else e.lot_id,
                        e.hold_id,
                        self.receipt_pk,
                        self.refund_pk,
                        self.funding_partner_id,
                        now,
                        e.note or note,
                    )
                    for e in self.entries
                ],
            )
            await tx.execute(
                UPDATE_ACCOUNT, cents(acc.balance), cents(acc.held), cents(acc.debt), now, acc.id
            )
        self.entries = []
        self.lot_changes = {}
        self.new_lot = None
        return new_lot_id
