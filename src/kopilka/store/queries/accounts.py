"""Reading an account with its lots (optionally locked) and writing ledger postings.

Hot-path SQL (store/raw.py): runs on asyncpg, sqlite3, or inside a SQLAlchemy
transaction, with the same statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from kopilka.domain.ledger import ZERO, EntryKind, Lot, Take, has_restricted
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
    # PostgreSQL: the account row's version (xmin) in the snapshot its lots were read in,
    # when read without a lock (``BY_IDENTIFIER_PG``): what an unlocked confirm's write
    # is guarded by (ADR 0037, 0038).  None elsewhere.
    xmin: int | None = None
    # PostgreSQL, read by the till's lookup (``LOOKUP_PG``): the card's and the customer's
    # row versions besides the account's: what a calculate starting from the lookup's
    # read is guarded by (ADR 0040).  None elsewhere.
    card_xmin: int | None = None
    customer_xmin: int | None = None


_ACCOUNT = "a.id, a.program_id, a.balance, a.held, a.debt"
_LOTS = "l.id, l.remaining, l.activates_at, l.expires_at, l.burn_partner_id, l.funding_partner_id"
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
# PostgreSQL: the same and the account row's version, read in the same snapshot as the lots.
BY_IDENTIFIER_PG = (
    f"SELECT {_ACCOUNT}, {_LOTS}, {_CARD}, a.xmin {_BY_IDENTIFIER_FROM}{_LOTS_JOIN} "
    "WHERE i.program_id = ? AND i.value IN (?, ?) ORDER BY i.kind, l.id"
)
BY_ID = f"SELECT {_ACCOUNT}, {_LOTS} FROM accounts a {_LOTS_JOIN} WHERE a.id = ? ORDER BY l.id"
# Locking reads take the account row first and read its lots in a second statement: in
# PostgreSQL's READ COMMITTED a statement that waited for a row lock sees the locked row's
# newest version but the *joined* rows of its old snapshot, i.e. lots another till has
# just burned.  (Found by tests/services/test_concurrency.py.)
LOCK_BY_IDENTIFIER = (
    f"SELECT {_ACCOUNT}, NULL, NULL, NULL, NULL, NULL, NULL, {_CARD} {_BY_IDENTIFIER_FROM}"
    "WHERE i.program_id = ? AND i.value IN (?, ?) ORDER BY i.kind"
)
LOCK_BY_ID = f"SELECT {_ACCOUNT} FROM accounts a WHERE a.id = ?"
LOTS_OF = (
    f"SELECT {_LOTS} FROM lots l "
    "WHERE l.program_id = ? AND l.account_id = ? AND l.remaining > 0 ORDER BY l.id"
)
FOR_UPDATE = " FOR UPDATE OF a"


def _fold(rows: Sequence[Any], *, with_card: bool, with_xmin: bool = False) -> AccountState | None:
    if not rows:
        return None
    r0 = rows[0]
    state = AccountState(r0[0], r0[1], dec2(r0[2]), dec2(r0[3]), dec2(r0[4]))
    if with_card:
        state.card_id, state.card_number, state.card_status = r0[11], r0[12], r0[13]
        state.customer_id, state.first_name, state.last_name = r0[14], r0[15], r0[16]
        state.tier, state.tags, state.rfm_segment = r0[17], r0[19], r0[20]
        state.discount_percent = None if r0[18] is None else dec2(r0[18])
        state.birthday, state.phone = r0[21], r0[22]
        if with_xmin:  # BY_IDENTIFIER_PG
            state.xmin = int(r0[23])
        rows = [r for r in rows if r[11] == state.card_id]
    for r in rows:
        if r[5] is not None:
            state.lots.append(lot_from_row(r[5:11]))
    return state


async def load_by_identifier(
    tx: Tx, *, program_id: int, values: Sequence[str], lock: bool
) -> AccountState | None:
    """One statement: identifier -> card -> customer -> account, with the account's lots."""
    v = list(values)[:2]
    if not lock:
        sql = BY_IDENTIFIER_PG if tx.pg else BY_IDENTIFIER
        rows = await tx.fetch(sql, program_id, v[0], v[-1])
        return _fold(rows, with_card=True, with_xmin=tx.pg)
    sql = LOCK_BY_IDENTIFIER + (FOR_UPDATE if tx.pg else "")
    state = _fold(await tx.fetch(sql, program_id, v[0], v[-1]), with_card=True)
    if state is not None:
        await read_lots(tx, state)
    return state


# The till's lookup: the customer's birthday, whether the phone is confirmed and the last
# five confirmed receipts, besides the account with its lots.  On SQLite two statements; on
# PostgreSQL one (the receipts as an array of records, computed once, not per lot row).
LOOKUP_EXTRA = (
    "SELECT cu.birthday, cu.phone_confirmed_at, r.pos_receipt_id, r.occurred_at, "
    "r.to_pay, r.points_earned, r.points_redeemed, s.name FROM customers cu "
    "LEFT JOIN receipts r ON r.program_id = ? AND r.account_id = ? "
    "AND r.state = 'confirmed' LEFT JOIN stores s ON s.id = r.store_id "
    "WHERE cu.id = ? ORDER BY r.occurred_at DESC LIMIT 5"
)
_X_CARD = (
    "x.card_id, x.number, x.status, x.customer_id, x.first_name, x.last_name, x.tier, "
    "x.discount_percent, x.tags, x.rfm_segment, x.birthday, x.phone"
)
LOOKUP_PG = (
    f"WITH x AS (SELECT {_ACCOUNT}, c.id AS card_id, c.number, c.status, c.customer_id, "
    "cu.first_name, cu.last_name, a.tier, a.discount_percent, cu.tags, cu.rfm_segment, "
    "cu.birthday, cu.phone, cu.phone_confirmed_at, a.xmin AS a_xmin, c.xmin AS c_xmin, "
    f"cu.xmin AS cu_xmin {_BY_IDENTIFIER_FROM}WHERE i.program_id = ? AND i.value IN (?, ?) "
    "ORDER BY i.kind LIMIT 1), "
    "rec AS (SELECT ARRAY(SELECT ROW(r.pos_receipt_id, r.occurred_at, r.to_pay, "
    "r.points_earned, r.points_redeemed, s.name) FROM x JOIN receipts r "
    "ON r.program_id = x.program_id AND r.account_id = x.id AND r.state = 'confirmed' "
    "LEFT JOIN stores s ON s.id = r.store_id ORDER BY r.occurred_at DESC LIMIT 5) AS recent) "
    f"SELECT x.id, x.program_id, x.balance, x.held, x.debt, {_LOTS}, {_X_CARD}, "
    "x.phone_confirmed_at, rec.recent, x.a_xmin, x.c_xmin, x.cu_xmin FROM x CROSS JOIN rec "
    "LEFT JOIN lots l ON l.program_id = x.program_id AND l.account_id = x.id "
    "AND l.remaining > 0 ORDER BY l.id"
)


async def load_for_lookup(
    tx: Tx, *, program_id: int, values: Sequence[str]
) -> tuple[AccountState | None, list[Sequence[Any]]]:
    """The account as ``load_by_identifier`` reads it, and the lookup's extra rows: one
    per recent receipt ``(birthday, phone_confirmed_at, receipt id, occurred_at, to_pay,
    points_earned, points_redeemed, store)``, or one with the receipt's fields None."""
    if not tx.pg:
        acc = await load_by_identifier(tx, program_id=program_id, values=values, lock=False)
        if acc is None:
            return None, []
        extra = await tx.fetch(LOOKUP_EXTRA, program_id, acc.id, acc.customer_id)
        return acc, list(extra)
    v = list(values)[:2]
    rows = await tx.fetch(LOOKUP_PG, program_id, v[0], v[-1])
    acc = _fold(rows, with_card=True)
    if acc is None:
        return None, []
    # after _ACCOUNT (0-4), _LOTS (5-10) and the card's columns (11-22; birthday is 21)
    birthday, confirmed_at, recent = rows[0][21], rows[0][23], rows[0][24]
    # the rows' versions, in the snapshot the lots were read in (ADR 0040)
    acc.xmin, acc.card_xmin, acc.customer_xmin = (int(x) for x in rows[0][25:28])
    if not recent:
        return acc, [(birthday, confirmed_at, None, None, None, None, None, None)]
    return acc, [(birthday, confirmed_at, *r) for r in recent]


async def load_account(tx: Tx, account_id: int, *, lock: bool) -> AccountState:
    """The account with its lots; with ``lock`` the row stays locked until commit."""
    if lock:
        rows = await tx.fetch(LOCK_BY_ID + (" FOR UPDATE" if tx.pg else ""), account_id)
        rows = [(*r, None, None, None, None, None, None) for r in rows]
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
    state.lots = [lot_from_row(r) for r in rows]


def lot_from_row(r: Sequence[Any]) -> Lot:
    """A lot from ``_LOTS`` columns (or a record of them)."""
    return Lot(r[0], dec2(r[1]), parse_ts(r[2]), parse_ts(r[3]), r[4], r[5])  # type: ignore[arg-type]


ACTIVE_HOLDS_AT = (
    "SELECT r.partner_id, h.amount FROM holds h LEFT JOIN receipts r ON r.id = h.receipt_pk "
    "WHERE h.program_id = ? AND h.account_id = ? AND h.state = 'active'"
)


async def held_at(tx: Tx, state: AccountState) -> dict[int | None, Decimal] | None:
    """The account's active holds by the partner where they were made (None: the program,
    e.g. a reward order), when it matters: only an account with lots restricted to one
    partner needs it (ADR 0024).  None otherwise, without a statement, so the common
    account costs nothing more.  Call with the account locked."""
    if state.held <= 0 or not has_restricted(state.lots):
        return None
    out: dict[int | None, Decimal] = {}
    for partner_id, amount in await tx.fetch(ACTIVE_HOLDS_AT, state.program_id, state.id):
        out[partner_id] = out.get(partner_id, ZERO) + dec2(amount)
    return out


INSERT_LOT = (
    "INSERT INTO lots (program_id, account_id, amount, remaining, activates_at, expires_at, "
    "receipt_pk, funding_partner_id, burn_partner_id, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
UPDATE_LOT = "UPDATE lots SET remaining = remaining + ? WHERE id = ?"
INSERT_ENTRIES = (
    "INSERT INTO ledger_entries (program_id, account_id, kind, amount, held_delta, lot_id, "
    "hold_id, receipt_pk, refund_pk, funding_partner_id, partner_id, created_at, note)"
)
UPDATE_ACCOUNT = "UPDATE accounts SET balance = ?, held = ?, debt = ?, updated_at = ? WHERE id = ?"


@dataclass
class Entry:
    kind: EntryKind
    amount: Decimal
    held_delta: Decimal = ZERO
    lot_id: int | None = None
    hold_id: int | None = None
    new_lot: int | None = None  # index into Posting.new_lots
    note: str | None = None
    funder: int | None = None  # funding_partner_id (ADR 0024)


@dataclass(frozen=True, slots=True)
class NewLot:
    amount: Decimal
    activates_at: datetime
    expires_at: datetime | None
    funder: int | None  # lots.funding_partner_id: who issued the points; None the program
    burn_at: int | None  # lots.burn_partner_id: None anywhere, else only at this partner


@dataclass
class Posting:
    """Ledger changes for one account in one transaction, written by ``flush``.

    The caller adds movements; ``flush`` writes the lot updates, the new lots, the entries
    and the account's cached totals, and checks the ledger guarantees on the way.

    ``partner_id`` is where the movements happen (``ledger_entries.partner_id``: the
    receipt's partner, the partner that sent an event; None the program).
    ``funding_partner_id`` funds the points that ``earn``/``credit`` create unless they
    name their own funder.  Every entry that touches a lot carries that lot's funder
    (ADR 0024); hold and release entries (no lot, no amount) and debt entries carry
    None: the program carries a member's negative balance.
    """

    account: AccountState
    now: datetime
    receipt_pk: int | None = None
    refund_pk: int | None = None
    funding_partner_id: int | None = None
    partner_id: int | None = None
    entries: list[Entry] = field(default_factory=list)
    lot_changes: dict[int, Decimal] = field(default_factory=dict)
    new_lots: list[NewLot] = field(default_factory=list)
    # Funders of lots not in the account's snapshot (emptied lots a refund gives back to).
    lot_funders: dict[int, int | None] = field(default_factory=dict)

    def _funder_of(self, lot_id: int) -> int | None:
        if lot_id in self.lot_funders:
            return self.lot_funders[lot_id]
        for x in self.account.lots:
            if x.id == lot_id:
                return x.funding_partner_id
        raise AssertionError(f"the funder of lot {lot_id} is unknown")

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
            self.entries.append(
                Entry(
                    kind,
                    -tk.amount,
                    held_delta,
                    tk.lot_id,
                    from_hold,
                    funder=self._funder_of(tk.lot_id),
                )
            )
            self.lot_changes[tk.lot_id] = self.lot_changes.get(tk.lot_id, ZERO) - tk.amount
            self.account.balance -= tk.amount
            if from_hold is not None:
                self.account.held -= tk.amount

    def give_back(self, takes: Sequence[Take]) -> None:
        """Points return to the lots they came from (refund of redeemed points)."""
        for tk in takes:
            self.entries.append(
                Entry(
                    EntryKind.REFUND, tk.amount, lot_id=tk.lot_id, funder=self._funder_of(tk.lot_id)
                )
            )
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
        funder: int | Literal["posting"] | None = "posting",
        burn_at: int | None = None,
    ) -> None:
        """Credit earned points: first to the debt, the rest as a new lot.

        ``funder`` (default: the posting's ``funding_partner_id``) issues the new lot;
        ``burn_at`` restricts where it burns.  The part paying a debt is an entry of its
        own without a lot, carried by the program like the debt.  Several earns with
        the same funder, restriction and dates share one new lot.
        """
        if amount <= 0:
            return
        who = self.funding_partner_id if funder == "posting" else funder
        self.account.debt -= debt_paid
        self.account.balance += amount
        lot_amount = amount - debt_paid
        if debt_paid > 0:
            self.entries.append(Entry(kind, debt_paid))
        if lot_amount > 0:
            idx = None
            for i, x in enumerate(self.new_lots):
                if (x.funder, x.burn_at, x.activates_at, x.expires_at) == (
                    who,
                    burn_at,
                    activates_at,
                    expires_at,
                ):
                    idx = i
                    self.new_lots[i] = replace(x, amount=x.amount + lot_amount)
            if idx is None:
                idx = len(self.new_lots)
                self.new_lots.append(NewLot(lot_amount, activates_at, expires_at, who, burn_at))
            self.entries.append(Entry(kind, lot_amount, new_lot=idx, funder=who))

    def credit(
        self,
        amount: Decimal,
        *,
        expires_at: datetime | None,
        kind: EntryKind = EntryKind.ADJUST,
        funder: int | Literal["posting"] | None = "posting",
        burn_at: int | None = None,
    ) -> None:
        """Points given outside a purchase (an adjustment, an activity, a prize, a points
        code): usable at once, paying the debt first."""
        self.earn(
            amount,
            debt_paid=min(amount, self.account.debt),
            activates_at=self.now,
            expires_at=expires_at,
            kind=kind,
            funder=funder,
            burn_at=burn_at,
        )

    def lots_after(self) -> list[Lot]:
        """The account's lots as they will be once written (new lots have id 0, -1, ...)."""
        out = [
            replace(x, remaining=x.remaining + self.lot_changes[x.id])
            if x.id in self.lot_changes
            else x
            for x in self.account.lots
        ]
        for i, n in enumerate(self.new_lots):
            out.append(Lot(-i, n.amount, n.activates_at, n.expires_at, n.burn_at, n.funder))
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
            [e.funder for e in es],
        )

    def new_lot_arrays(self) -> tuple[list[Any], ...]:
        """The new lots as column arrays (PostgreSQL); ``ord`` is the index entries name."""
        ns = self.new_lots
        return (
            [cents(n.amount) for n in ns],
            [n.funder for n in ns],
            [n.burn_at for n in ns],
        )

    async def flush(self, tx: Tx, *, note: str | None = None) -> int | None:
        """Write everything; returns the first new lot's id, if one was made.

        Every lot or hold change comes with an entry, and entries always update the
        account's row: the unlocked confirm relies on that row's version (ADR 0037)."""
        acc = self.account
        remaining = {lot.id: lot.remaining for lot in acc.lots}
        for lot_id, delta in self.lot_changes.items():
            # A lot emptied earlier is not in the snapshot; refunds give back into it.
            if lot_id in remaining:
                remaining[lot_id] += delta
                assert remaining[lot_id] >= 0, f"lot {lot_id} would go negative"
        assert acc.held >= 0 and acc.debt >= 0, (acc.held, acc.debt)
        now = ts(tx, self.now)
        new_ids: list[int] = []
        for n in self.new_lots:
            rows = await tx.fetch(
                INSERT_LOT,
                acc.program_id,
                acc.id,
                cents(n.amount),
                cents(n.amount),
                ts(tx, n.activates_at),
                ts(tx, n.expires_at),
                self.receipt_pk,
                n.funder,
                n.burn_at,
                now,
            )
            new_ids.append(int(rows[0][0]))
            acc.lots.append(
                Lot(new_ids[-1], n.amount, n.activates_at, n.expires_at, n.burn_at, n.funder)
            )
        if self.lot_changes:
            await tx.executemany(UPDATE_LOT, [(cents(d), k) for k, d in self.lot_changes.items()])
            acc.lots = [
                replace(x, remaining=remaining[x.id]) if x.id in self.lot_changes else x
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
                        new_ids[e.new_lot] if e.new_lot is not None else e.lot_id,
                        e.hold_id,
                        self.receipt_pk,
                        self.refund_pk,
                        e.funder,
                        self.partner_id,
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
        self.new_lots = []
        return new_ids[0] if new_ids else None
