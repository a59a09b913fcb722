"""Gift cards: series, activation at the till, tender holds inside a receipt, refunds,
expiry and breakage, verification (docs/gift-cards.md; the rules: domain/giftcards.py).

Locking: every function that changes a card locks its row first (``FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers), then decides with the
domain, then writes the entry and the card's cached totals.  The hold's UPDATE is also
guarded (``balance - held >= amount``), so two tills holding the last money of a card
at once can never take it twice: exactly one wins.

PIN checks (``check_tenders``) run in transactions of their own *before* the receipt's
transaction: a wrong PIN must be counted even though the purchase is refused and its
transaction rolled back, and the hash (PBKDF2, ~4 ms) is computed outside any lock.

The receipt's sums are read with ``WHERE receipt_pk = ?`` on ``gift_card_entries``:
that column needs an index (a migration, not in this module) before receipts without
gift cards call ``refund_tenders`` or the hold sweep runs on a large table.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import random
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, or_, select

from kopilka.domain import giftcards as gd
from kopilka.domain.giftcards import Card, CardState, GiftCardRefused, GiftEntry
from kopilka.domain.identifiers import mask_card
from kopilka.domain.money import fmt2
from kopilka.domain.roles import Perm
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime, Terminal
from kopilka.services.setup import program_id
from kopilka.store import tables as t
from kopilka.store.raw import SATx, Tx, cents, dec2, parse_ts, ts

ZERO = Decimal("0")
NUMBER_PREFIX = "70"
PIN_DIGITS = 4
PIN_ITERATIONS = 10_000  # PBKDF2-HMAC-SHA256; stored with the hash, so it can be raised
# Brute-force limits: wrong PINs (and unknown numbers) per fixed one-hour window.
CARD_FAILURES_MAX = 5
TERMINAL_FAILURES_MAX = 20
WINDOW_S = 3600

# code -> HTTP status for the refusals of this module (the rest: services/errors.py).
STATUS: dict[str, int] = {
    "gift_card_not_found": 404,
    "gift_card_wrong_pin": 422,
    "gift_card_pin_required": 422,
    "gift_card_locked": 429,
    "gift_card_not_active": 422,
    "gift_card_expired": 422,
    "gift_card_blocked": 422,
    "gift_card_insufficient": 422,
    "gift_card_already_active": 409,
    "gift_cards_exceed_total": 422,
    "gift_card_series_exists": 409,
    "program_not_found": 404,
    "hold_expired": 409,
}


class GiftCardError(ServiceError):
    """A gift-card refusal; its HTTP status comes from this module's table."""

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 422)


def _refusal(exc: GiftCardRefused, *, field: str | None) -> GiftCardError:
    extra: dict[str, Any] = {}
    if exc.available is not None:
        extra["available"] = fmt2(exc.available)
    return GiftCardError(exc.code, exc.detail, field=field, **extra)


# --- PINs --------------------------------------------------------------------------------


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = PIN_ITERATIONS) -> str:
    """``pbkdf2_sha256$iterations$salt_hex$hash_hex`` with a per-card random salt."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def pin_matches(pin: str, stored: str) -> bool:
    """Constant-time comparison of a PIN with its stored hash."""
    try:
        algo, iterations, salt, want = stored.split("$")
    except ValueError:
        return False
    if algo != "pbkdf2_sha256":
        return False
    got = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(got.hex(), want)


# --- series ------------------------------------------------------------------------------


async def do_create_series(
    rt: Runtime,
    program_code: str,
    *,
    code: str,
    name: str,
    nominal: Decimal,
    count: int,
    valid_days: int | None = 365,
    seed: int | None = None,
    actor: Actor | None = None,
) -> list[tuple[str, str]]:
    """Create a series of ``count`` issued cards; returns (number, PIN) pairs.

    This is the only time the PINs are seen (print them; only hashes are stored).
    Numbers are random (not sequential: a number does not tell the next one), 13 digits
    with a Luhn check digit; ``seed`` makes the numbers reproducible (tests), never the
    PINs.
    """
    if nominal <= 0 or nominal != nominal.quantize(Decimal("0.01")):
        raise ServiceError("validation_failed", "nominal must be positive, in kopecks")
    if count <= 0 or count > 1_000_000:
        raise ServiceError("validation_failed", "count must be 1..1000000")
    if valid_days is not None and valid_days <= 0:
        raise ServiceError("validation_failed", "valid days must be positive")
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    now = rt.now()
    async with rt.engine.begin() as conn:
        pid = await program_id(conn, program_code)
        exists = (
            await conn.execute(
                select(t.gift_card_series.c.id).where(
                    t.gift_card_series.c.program_id == pid, t.gift_card_series.c.code == code
                )
            )
        ).first()
        if exists is not None:
            raise GiftCardError("gift_card_series_exists", f"series {code!r} already exists")
        sid = (
            await conn.execute(
                insert(t.gift_card_series).returning(t.gift_card_series.c.id),
                {
                    "program_id": pid,
                    "code": code,
                    "name": name,
                    "nominal": nominal,
                    "valid_days": valid_days,
                    "created_at": now,
                },
            )
        ).scalar_one()
        numbers = await _fresh_numbers(conn, pid, count, rng)
        out = [(n, gd.new_pin(PIN_DIGITS)) for n in numbers]
        rows = [
            {
                "program_id": pid,
                "series_id": sid,
                "number": n,
                "pin_hash": hash_pin(pin),
                "nominal": nominal,
                "balance": ZERO,
                "held": ZERO,
                "state": CardState.ISSUED.value,
                "created_at": now,
            }
            for n, pin in out
        ]
        for start in range(0, len(rows), 1000):
            await conn.execute(insert(t.gift_cards), rows[start : start + 1000])
        if actor is not None:
            await audit.record(
                conn,
                actor,
                "gift_card_series.create",
                "gift_card_series",
                code,
                at=now,
                program_id=pid,
                after={"name": name, "nominal": nominal, "count": count, "valid_days": valid_days},
            )
    return out


async def _fresh_numbers(conn: Any, program_id: int, count: int, rng: random.Random) -> list[str]:
    """``count`` distinct numbers not yet used in the program."""
    width = 13 - 1 - len(NUMBER_PREFIX)
    chosen: set[str] = set()
    while len(chosen) < count:
        want = count - len(chosen)
        batch = {
            gd.make_gift_card_number(NUMBER_PREFIX, rng.randrange(10**width)) for _ in range(want)
        }
        batch -= chosen
        taken = set(
            (
                await conn.execute(
                    select(t.gift_cards.c.number).where(
                        t.gift_cards.c.program_id == program_id,
                        t.gift_cards.c.number.in_(sorted(batch)),
                    )
                )
            )
            .scalars()
            .all()
        )
        chosen |= batch - taken
    return sorted(chosen)


def cards_csv(cards: list[tuple[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["number", "pin"])
    w.writerows(cards)
    return buf.getvalue()


# --- loading and writing one card (inside a transaction) ----------------------------------


@dataclass(frozen=True, slots=True)
class CardRow:
    id: int
    program_id: int
    number: str
    pin_hash: str
    card: Card
    valid_days: int | None
    activated_at: datetime | None


LOAD_CARD = (
    "SELECT c.id, c.program_id, c.number, c.pin_hash, c.nominal, c.balance, c.held, c.state, "
    "c.expires_at, s.valid_days, c.activated_at "
    "FROM gift_cards c JOIN gift_card_series s ON s.id = c.series_id "
)


def _card_row(x: Any) -> CardRow:
    card = Card(dec2(x[4]), dec2(x[5]), dec2(x[6]), CardState(x[7]), parse_ts(x[8]))
    return CardRow(x[0], x[1], x[2], x[3], card, x[9], parse_ts(x[10]))


async def load_card(tx: Tx, *, program_id: int, number: str, lock: bool) -> CardRow | None:
    """The card by number; with ``lock`` its row is locked until the transaction ends."""
    sql = LOAD_CARD + "WHERE c.program_id = ? AND c.number = ?"
    rows = await tx.fetch(sql + (" FOR UPDATE OF c" if lock and tx.pg else ""), program_id, number)
    return _card_row(rows[0]) if rows else None


async def _load_by_id(tx: Tx, card_id: int) -> CardRow:
    rows = await tx.fetch(
        LOAD_CARD + "WHERE c.id = ?" + (" FOR UPDATE OF c" if tx.pg else ""), card_id
    )
    return _card_row(rows[0])


INSERT_ENTRY = (
    "INSERT INTO gift_card_entries (program_id, card_id, kind, amount, held_delta, receipt_pk, "
    "refund_pk, terminal_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def _write(
    tx: Tx,
    row: CardRow,
    after: Card,
    entry: GiftEntry,
    now: datetime,
    *,
    receipt_pk: int | None = None,
    refund_pk: int | None = None,
    terminal_id: int | None = None,
    activated: bool = False,
) -> None:
    """The entry and the card's cached totals; the caller holds the row lock."""
    assert row.card.balance + entry.amount == after.balance, (row.card, entry, after)
    assert row.card.held + entry.held_delta == after.held, (row.card, entry, after)
    assert ZERO <= after.held <= after.balance <= after.nominal, after
    await tx.execute(
        INSERT_ENTRY,
        row.program_id,
        row.id,
        entry.kind.value,
        cents(entry.amount),
        cents(entry.held_delta),
        receipt_pk,
        refund_pk,
        terminal_id,
        ts(tx, now),
    )
    if activated:
        await tx.execute(
            "UPDATE gift_cards SET balance = ?, held = ?, state = ?, activated_at = ?, "
            "expires_at = ? WHERE id = ?",
            cents(after.balance),
            cents(after.held),
            after.state.value,
            ts(tx, now),
            ts(tx, after.expires_at),
            row.id,
        )
        return
    await tx.execute(
        "UPDATE gift_cards SET balance = ?, held = ?, state = ? WHERE id = ?",
        cents(after.balance),
        cents(after.held),
        after.state.value,
        row.id,
    )


def card_view(row: CardRow, now: datetime) -> dict[str, Any]:
    c = row.card
    state = CardState.EXPIRED if c.is_expired(now) and c.state is not CardState.BLOCKED else c.state
    return {
        "number": mask_card(row.number),
        "state": state.value,
        "nominal": fmt2(c.nominal),
        "balance": fmt2(c.balance),
        "held": fmt2(c.held),
        "available": fmt2(c.available if state in (CardState.ACTIVE, CardState.USED) else ZERO),
        "activated_at": _iso(row.activated_at),
        "expires_at": _iso(c.expires_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# --- brute-force limits ------------------------------------------------------------------
#
# Every attempt first takes a slot in its fixed one-hour window (per terminal, then per
# card), atomically (``count = count + 1 ... RETURNING count``), and gives it back when
# the PIN was right: only failures stay counted, and however many attempts run at once
# no more than the limit can be checked against the PIN.  The PIN's hash is computed
# outside any transaction.


def _window(now: datetime) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % WINDOW_S, tz=now.tzinfo)


def _retry_after_s(now: datetime) -> int:
    return WINDOW_S - int(now.timestamp()) % WINDOW_S


def _card_key(program_id: int, number: str) -> str:
    return f"giftcard:pin:{program_id}:{number}"


def _terminal_key(terminal_id: int) -> str:
    return f"giftcard:terminal:{terminal_id}"


async def _take_slot(tx: Tx, key: str, window: datetime) -> int:
    """Count one more attempt; returns the window's count including it."""
    rows = await tx.fetch(
        "INSERT INTO rate_counters (key, window_start, count) VALUES (?, ?, 1) "
        "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + 1 "
        "RETURNING count",
        key,
        ts(tx, window),
    )
    return int(rows[0][0])


async def _give_back(tx: Tx, keys: list[str], window: datetime) -> None:
    for key in keys:
        await tx.execute(
            "UPDATE rate_counters SET count = count - 1 WHERE key = ? AND window_start = ? "
            "AND count > 0",
            key,
            ts(tx, window),
        )


# --- PIN checks (their own transactions) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tender:
    """What the till sent: a card, its PIN and the amount to pay with it."""

    number: str
    pin: str | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class VerifiedTender:
    """A tender whose PIN was checked (made only by ``check_tenders``)."""

    card_id: int
    number: str
    amount: Decimal


async def check_card(
    rt: Runtime, *, program_id: int, number: str, pin: str | None, terminal_id: int, now: datetime
) -> CardRow:
    """The card if the number and PIN are right.  Failures are counted per terminal and
    per card in the hour's window (committed, whatever the caller's fate); once a limit
    is reached every attempt is refused, even with the right PIN (``gift_card_locked``).
    Order: terminal locked > not found > PIN missing > card locked > wrong PIN."""
    window = _window(now)
    term_key = _terminal_key(terminal_id)
    card_key = _card_key(program_id, number)
    refusal: GiftCardError | None = None
    row = None
    used = 0
    async with rt.hot.tx() as tx:
        if gd.is_valid_gift_card_number(number):
            row = await load_card(tx, program_id=program_id, number=number, lock=False)
        if row is not None and not pin:
            raise GiftCardError("gift_card_pin_required", "send the card's PIN", field="pin")
        if await _take_slot(tx, term_key, window) > TERMINAL_FAILURES_MAX:
            refusal = GiftCardError(
                "gift_card_locked",
                "too many wrong gift card numbers or PINs at this terminal; try again later",
                field="gift_cards",
                scope="terminal",
                retry_after_s=_retry_after_s(now),
            )
        elif row is None:
            refusal = GiftCardError(
                "gift_card_not_found", "no gift card with this number", field="number"
            )
        else:
            used = await _take_slot(tx, card_key, window)
            if used > CARD_FAILURES_MAX:
                refusal = GiftCardError(
                    "gift_card_locked",
                    "too many wrong PINs for this gift card; try again in an hour",
                    field="pin",
                    scope="card",
                    retry_after_s=_retry_after_s(now),
                )
    if refusal is not None:
        raise refusal
    assert row is not None and pin
    if not await asyncio.to_thread(pin_matches, pin, row.pin_hash):
        raise GiftCardError(
            "gift_card_wrong_pin",
            "wrong PIN",
            field="pin",
            attempts_left=max(CARD_FAILURES_MAX - used, 0),
        )
    async with rt.hot.tx() as tx:
        await _give_back(tx, [term_key, card_key], window)
    return row


async def check_tenders(
    rt: Runtime, term: Terminal, tenders: list[Tender], *, now: datetime | None = None
) -> list[VerifiedTender]:
    """Check every tender's number and PIN (transactions of their own, so failures stay
    counted though the purchase is refused).  Call before the receipt's transaction;
    pass the result to ``hold_tenders``.  A refusal's ``field`` is
    ``gift_cards[i].pin`` (or ``.number``, ``.amount``)."""
    now = now or rt.now()
    out: list[VerifiedTender] = []
    for i, tender in enumerate(tenders):
        try:
            row = await check_card(
                rt,
                program_id=term.program_id,
                number=tender.number,
                pin=tender.pin,
                terminal_id=term.id,
                now=now,
            )
        except GiftCardError as exc:
            exc.field = f"gift_cards[{i}].{exc.field or 'number'}"
            raise
        out.append(VerifiedTender(row.id, row.number, tender.amount))
    return out


# --- tenders inside the receipt's transaction --------------------------------------------


async def hold_tenders(
    tx: Tx,
    *,
    program_id: int,
    terminal_id: int,
    receipt_pk: int,
    tenders: list[VerifiedTender],
    now: datetime,
    to_pay: Decimal | None = None,
) -> list[dict[str, Any]]:
    """Hold each tender's amount on its card (locks the cards, in id order, so two
    receipts with the same cards never deadlock).  Refuses with the first card's code
    (``gift_card_insufficient`` gives ``available``); the caller's transaction then rolls
    back every hold.  With ``to_pay`` (the receipt's amount to pay after discounts and
    points) the cards together may not pay more (``gift_cards_exceed_total``).
    Returns, in the tenders' order, what to show per card."""
    total = sum((x.amount for x in tenders), ZERO)
    if to_pay is not None and total > to_pay:
        raise GiftCardError(
            "gift_cards_exceed_total",
            f"the gift cards pay {fmt2(total)}, the receipt is {fmt2(to_pay)} to pay",
            field="gift_cards",
            to_pay=fmt2(to_pay),
        )
    shown: dict[int, dict[str, Any]] = {}
    order = sorted(range(len(tenders)), key=lambda i: tenders[i].card_id)
    for i in order:
        tender = tenders[i]
        row = await _load_by_id(tx, tender.card_id)
        assert row.program_id == program_id
        try:
            after, entry = gd.plan_hold(row.card, tender.amount, now=now)
        except GiftCardRefused as exc:
            raise _refusal(exc, field=f"gift_cards[{i}].amount") from None
        # The guard repeats the rule in the database: never more than is available.
        rows = await tx.fetch(
            "UPDATE gift_cards SET held = held + ? WHERE id = ? AND balance - held >= ? "
            "RETURNING id",
            cents(tender.amount),
            row.id,
            cents(tender.amount),
        )
        assert rows, "the card changed under its lock"
        await tx.execute(
            INSERT_ENTRY,
            program_id,
            row.id,
            entry.kind.value,
            0,
            cents(entry.held_delta),
            receipt_pk,
            None,
            terminal_id,
            ts(tx, now),
        )
        shown[i] = {
            "number": mask_card(row.number),
            "amount": fmt2(tender.amount),
            "balance_after": fmt2(after.balance - after.held),
        }
    return [shown[i] for i in range(len(tenders))]


@dataclass
class _ReceiptCard:
    card_id: int
    first_entry: int
    held: Decimal  # outstanding for this receipt
    hold_total: Decimal
    debited: Decimal
    refunded: Decimal
    terminal_id: int | None


async def _receipt_cards(tx: Tx, receipt_pk: int) -> list[_ReceiptCard]:
    """The cards a receipt used, in order of use, with its sums per card."""
    rows = await tx.fetch(
        "SELECT card_id, MIN(id), SUM(held_delta), "
        "SUM(CASE WHEN kind = 'hold' THEN held_delta ELSE 0 END), "
        "SUM(CASE WHEN kind = 'debit' THEN -amount ELSE 0 END), "
        "SUM(CASE WHEN kind = 'refund' THEN amount ELSE 0 END), MAX(terminal_id) "
        "FROM gift_card_entries WHERE receipt_pk = ? GROUP BY card_id ORDER BY MIN(id)",
        receipt_pk,
    )
    return [
        _ReceiptCard(r[0], r[1], dec2(r[2]), dec2(r[3]), dec2(r[4]), dec2(r[5]), r[6]) for r in rows
    ]


async def _locked_receipt_cards(tx: Tx, receipt_pk: int) -> list[tuple[_ReceiptCard, CardRow]]:
    """The receipt's cards, locked (in id order), with the receipt's sums read *after*
    the locks, so a concurrent confirm, cancel, hold expiry or refund of the same
    receipt is seen, not overwritten.  In order of use."""
    ids = sorted({rc.card_id for rc in await _receipt_cards(tx, receipt_pk)})
    rows = {card_id: await _load_by_id(tx, card_id) for card_id in ids}
    return [(rc, rows[rc.card_id]) for rc in await _receipt_cards(tx, receipt_pk)]


async def confirm_tenders(tx: Tx, *, receipt_pk: int, now: datetime) -> list[dict[str, Any]]:
    """Confirm: each card's hold for the receipt is debited.  Idempotent (a debited card
    is left as it is).  If a hold was released meanwhile (it expired), the amount is
    taken again if the card still allows it, else ``hold_expired`` (409) and nothing is
    written by this call.  Locks the cards.  Returns per card what was debited."""
    out = []
    plans: list[tuple[CardRow, Card, GiftEntry, int | None]] = []
    for rc, row in await _locked_receipt_cards(tx, receipt_pk):
        if rc.debited > 0:
            continue
        card = row.card
        if rc.held < rc.hold_total:  # released (hold expiry): take it again, if possible
            try:
                card, hold_entry = gd.plan_hold(card, rc.hold_total, now=now)
            except GiftCardRefused as exc:
                raise GiftCardError(
                    "hold_expired",
                    "the gift card hold expired and the card can no longer pay "
                    f"{fmt2(rc.hold_total)}: {exc.detail}; calculate again",
                    field="gift_cards",
                    card=mask_card(row.number),
                ) from None
            plans.append((row, card, hold_entry, rc.terminal_id))
            row = CardRow(
                row.id,
                row.program_id,
                row.number,
                row.pin_hash,
                card,
                row.valid_days,
                row.activated_at,
            )
        after, entry = gd.debit_held(card, rc.hold_total)
        plans.append((row, after, entry, rc.terminal_id))
        out.append((rc.first_entry, row.number, rc.hold_total, after.balance))
    # Past this point the confirm must succeed: only writes follow.
    for row, after, entry, terminal_id in plans:
        await _write(tx, row, after, entry, now, receipt_pk=receipt_pk, terminal_id=terminal_id)
    out.sort()
    return [
        {"number": mask_card(n), "amount": fmt2(a), "balance_after": fmt2(b)} for _, n, a, b in out
    ]


async def release_tenders(tx: Tx, *, receipt_pk: int, now: datetime) -> Decimal:
    """Cancel or hold expiry: release what the receipt still holds on its cards.
    Idempotent.  Locks the cards.  Returns the amount released."""
    total = ZERO
    for rc, row in await _locked_receipt_cards(tx, receipt_pk):
        if rc.held <= 0:
            continue
        after, entry = gd.release(row.card, rc.held)
        await _write(tx, row, after, entry, now, receipt_pk=receipt_pk, terminal_id=rc.terminal_id)
        total += rc.held
    return total


async def refund_tenders(
    tx: Tx, *, receipt_pk: int, refund_pk: int, amount: Decimal, now: datetime
) -> dict[str, Any]:
    """Return up to ``amount`` to the receipt's cards, the last used first, never more
    than the receipt debited from a card (less what earlier refunds returned).

    An expired card takes nothing back (docs/gift-cards.md).  Returns ``returned`` (to
    cards), ``not_returned`` (the part of ``amount`` the till must pay another way) and
    per card what went back.  Locks the cards."""
    left = amount
    cards = []
    for rc, row in reversed(await _locked_receipt_cards(tx, receipt_pk)):
        room = rc.debited - rc.refunded
        if left <= 0 or room <= 0:
            continue
        back = min(room, left)
        planned = gd.refund(row.card, back, now=now)
        if planned is None:
            continue
        after, entry = planned
        await _write(tx, row, after, entry, now, receipt_pk=receipt_pk, refund_pk=refund_pk)
        left -= back
        cards.append(
            {
                "number": mask_card(row.number),
                "amount": fmt2(back),
                "balance_after": fmt2(after.balance),
            }
        )
    return {"returned": fmt2(amount - left), "not_returned": fmt2(left), "cards": cards}


# --- at the till: balance and activation --------------------------------------------------


async def balance(rt: Runtime, term: Terminal, number: str) -> dict[str, Any]:
    """State and balance of a card (no PIN: the till holds the card; spending needs it)."""
    now = rt.now()
    if not gd.is_valid_gift_card_number(number):
        raise GiftCardError("gift_card_not_found", "no gift card with this number", field="number")
    async with rt.hot.read() as tx:
        row = await load_card(tx, program_id=term.program_id, number=number, lock=False)
    if row is None:
        raise GiftCardError("gift_card_not_found", "no gift card with this number", field="number")
    return card_view(row, now)


async def do_activate(rt: Runtime, term: Terminal, number: str) -> dict[str, Any]:
    """The card was sold at this till: issued -> active with its nominal value, expiring
    ``valid_days`` after today.  A repeat from the terminal that activated it answers
    the card's state (a retry after a lost answer); elsewhere it is 409."""
    now = rt.now()
    if not gd.is_valid_gift_card_number(number):
        raise GiftCardError("gift_card_not_found", "no gift card with this number", field="number")
    async with rt.hot.tx() as tx:
        row = await load_card(tx, program_id=term.program_id, number=number, lock=True)
        if row is None:
            raise GiftCardError(
                "gift_card_not_found", "no gift card with this number", field="number"
            )
        try:
            after, entry = gd.activate(row.card, now=now, valid_days=row.valid_days)
        except GiftCardRefused as exc:
            if exc.code == gd.ALREADY_ACTIVE and await _activated_by(tx, row.id) == term.id:
                return card_view(row, now)
            raise _refusal(exc, field="number") from None
        await _write(tx, row, after, entry, now, terminal_id=term.id, activated=True)
        done = CardRow(row.id, row.program_id, row.number, row.pin_hash, after, row.valid_days, now)
        return card_view(done, now)


async def _activated_by(tx: Tx, card_id: int) -> int | None:
    rows = await tx.fetch(
        "SELECT terminal_id FROM gift_card_entries WHERE card_id = ? AND kind = 'activate'",
        card_id,
    )
    return rows[0][0] if rows else None


async def do_block(
    rt: Runtime,
    program_code: str,
    number: str,
    *,
    actor: Actor | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Block a lost or stolen card: no new holds; its balance stays (a receipt already
    holding money on it can still be confirmed or cancelled).  Idempotent.  With
    ``actor`` (console, admin API) the block is audited in its transaction."""
    now = rt.now()
    async with rt.engine.begin() as conn:
        pid = await program_id(conn, program_code)
        tx = SATx(conn)
        row = await load_card(tx, program_id=pid, number=number, lock=True)
        if row is None:
            raise GiftCardError(
                "gift_card_not_found", "no gift card with this number", field="number"
            )
        if actor is not None:
            actor.require(Perm.MECHANICS_WRITE)
        if row.card.state is not CardState.BLOCKED:
            after, entry = gd.block(row.card)
            await _write(tx, row, after, entry, now)
            if actor is not None:
                await audit.record(
                    conn,
                    actor,
                    "gift_card.block",
                    "gift_card",
                    row.number,
                    at=now,
                    program_id=pid,
                    reason=reason,
                    before={"state": row.card.state.value, "balance": row.card.balance},
                    after={"state": after.state.value, "balance": after.balance},
                )
            row = CardRow(
                row.id,
                row.program_id,
                row.number,
                row.pin_hash,
                after,
                row.valid_days,
                row.activated_at,
            )
        return card_view(row, now)


def state_after_unblock(row: CardRow) -> CardState:
    """What a blocked card becomes again: issued if it was never sold, else active or
    used by its balance (an expiry that passed meanwhile shows as expired)."""
    if row.activated_at is None:
        return CardState.ISSUED
    return CardState.USED if row.card.balance == 0 else CardState.ACTIVE


async def do_unblock(
    rt: Runtime, program_code: str, number: str, *, actor: Actor, reason: str
) -> dict[str, Any]:
    """Unblock a card found again (an ``unblock`` entry of 0, audited).  Idempotent."""
    actor.require(Perm.MECHANICS_WRITE)
    now = rt.now()
    async with rt.engine.begin() as conn:
        pid = await program_id(conn, program_code)
        tx = SATx(conn)
        row = await load_card(tx, program_id=pid, number=number, lock=True)
        if row is None:
            raise GiftCardError(
                "gift_card_not_found", "no gift card with this number", field="number"
            )
        if row.card.state is CardState.BLOCKED:
            state = state_after_unblock(row)
            await tx.execute(
                INSERT_ENTRY, row.program_id, row.id, "unblock", 0, 0, None, None, None, ts(tx, now)
            )
            await tx.execute("UPDATE gift_cards SET state = ? WHERE id = ?", state.value, row.id)
            await audit.record(
                conn,
                actor,
                "gift_card.unblock",
                "gift_card",
                row.number,
                at=now,
                program_id=pid,
                reason=reason,
                before={"state": "blocked", "balance": row.card.balance},
                after={"state": state.value, "balance": row.card.balance},
            )
            row = await _load_by_id(tx, row.id)
        return card_view(row, now)


# --- jobs and reports --------------------------------------------------------------------


async def expire_tender_holds(rt: Runtime) -> int:
    """Release gift-card holds of receipts still only calculated after the program's
    hold time (``hold_ttl_s``).  Returns how many receipts were released."""
    now = rt.now()
    e, r = t.gift_card_entries, t.receipts
    async with rt.engine.connect() as conn:
        due = (
            await conn.execute(
                select(r.c.id, r.c.program_id, r.c.created_at)
                .join(e, e.c.receipt_pk == r.c.id)
                .where(r.c.state == "calculated")
                .group_by(r.c.id, r.c.program_id, r.c.created_at)
                .having(func.sum(e.c.held_delta) > 0)
            )
        ).all()
    done = 0
    for rec in due:
        ttl = (await rt.program(rec.program_id)).hold_ttl_s
        if (now - rec.created_at).total_seconds() < ttl:
            continue
        async with rt.engine.begin() as conn:
            if await release_tenders(SATx(conn), receipt_pk=rec.id, now=now) > 0:
                done += 1
    return done


async def expire_cards(rt: Runtime, *, now: datetime | None = None) -> tuple[int, Decimal]:
    """Cards whose expiry time came lose their remaining balance (breakage) by an
    ``expire`` entry; cards with money held wait for the hold.  Returns (cards, amount)."""
    now = now or rt.now()
    g = t.gift_cards
    async with rt.engine.connect() as conn:
        ids = (
            (
                await conn.execute(
                    select(g.c.id).where(
                        g.c.state.in_([CardState.ACTIVE.value, CardState.USED.value]),
                        g.c.expires_at <= now,
                    )
                )
            )
            .scalars()
            .all()
        )
    n, total = 0, ZERO
    for card_id in ids:
        async with rt.engine.begin() as conn:
            tx = SATx(conn)
            row = await _load_by_id(tx, card_id)
            planned = gd.plan_expire(row.card, now=now)
            if planned is None:
                continue
            after, entry = planned
            await _write(tx, row, after, entry, now)
            n += 1
            total -= entry.amount
    return n, total


@dataclass(frozen=True)
class BreakageRow:
    series: str
    name: str
    cards_expired: int
    breakage: Decimal  # value that expired unspent in the period
    activated: Decimal  # value sold (activated) in the period
    redeemed: Decimal  # value spent in the period (debits less refunds)
    outstanding: Decimal  # balances of live cards now: the liability


async def breakage_report(
    rt: Runtime, program_code: str, *, start: datetime | None = None, end: datetime | None = None
) -> list[BreakageRow]:
    """Per series: cards expired and the value they took with them (breakage), value
    activated and redeemed in ``[start, end)``, and what live cards still hold."""
    g, e, s = t.gift_cards, t.gift_card_entries, t.gift_card_series
    async with rt.engine.connect() as conn:
        pid = await program_id(conn, program_code)
        where = [e.c.program_id == pid]
        if start is not None:
            where.append(e.c.created_at >= start)
        if end is not None:
            where.append(e.c.created_at < end)
        sums = {
            (r.series_id, r.kind): (r.n, Decimal(r.amount or 0))
            for r in (
                await conn.execute(
                    select(
                        g.c.series_id,
                        e.c.kind,
                        func.count().label("n"),
                        func.sum(e.c.amount).label("amount"),
                    )
                    .join(g, g.c.id == e.c.card_id)
                    .where(*where)
                    .group_by(g.c.series_id, e.c.kind)
                )
            ).all()
        }
        live = {
            r.series_id: Decimal(r.b or 0)
            for r in (
                await conn.execute(
                    select(g.c.series_id, func.sum(g.c.balance).label("b"))
                    .where(g.c.program_id == pid, g.c.state.in_(["active", "used", "blocked"]))
                    .group_by(g.c.series_id)
                )
            ).all()
        }
        series = (
            await conn.execute(
                select(s.c.id, s.c.code, s.c.name).where(s.c.program_id == pid).order_by(s.c.code)
            )
        ).all()

    def get(sid: int, kind: str) -> tuple[int, Decimal]:
        return sums.get((sid, kind), (0, ZERO))

    return [
        BreakageRow(
            x.code,
            x.name,
            get(x.id, "expire")[0],
            -get(x.id, "expire")[1],
            get(x.id, "activate")[1],
            -get(x.id, "debit")[1] - get(x.id, "refund")[1],
            live.get(x.id, ZERO),
        )
        for x in series
    ]


@dataclass(frozen=True)
class CardDiscrepancy:
    card_id: int
    what: str
    cached: Decimal
    recomputed: Decimal


async def verify_cards(rt: Runtime, *, program_id: int | None = None) -> list[CardDiscrepancy]:
    """Recompute every card from its entries: balance == sum(amount), held ==
    sum(held_delta), 0 <= held <= balance <= nominal, state used iff balance 0 (for
    active and used cards)."""
    g, e = t.gift_cards, t.gift_card_entries
    q = select(
        e.c.card_id,
        func.coalesce(func.sum(e.c.amount), 0).label("s"),
        func.coalesce(func.sum(e.c.held_delta), 0).label("h"),
    ).group_by(e.c.card_id)
    cq = select(g.c.id, g.c.nominal, g.c.balance, g.c.held, g.c.state)
    if program_id is not None:
        q = q.where(e.c.program_id == program_id)
        cq = cq.where(g.c.program_id == program_id)
    async with rt.engine.connect() as conn:
        sums = {r.card_id: (Decimal(r.s), Decimal(r.h)) for r in (await conn.execute(q)).all()}
        cards = (await conn.execute(cq)).all()
    out: list[CardDiscrepancy] = []
    for c in cards:
        s, h = sums.get(c.id, (ZERO, ZERO))
        if c.balance != s:
            out.append(CardDiscrepancy(c.id, "balance vs entries", c.balance, s))
        if c.held != h:
            out.append(CardDiscrepancy(c.id, "held vs entries", c.held, h))
        if not (ZERO <= c.held <= c.balance <= c.nominal):
            out.append(CardDiscrepancy(c.id, "held/balance out of range", c.held, c.balance))
        if c.state in ("active", "used") and (c.state == "used") != (c.balance == 0):
            out.append(CardDiscrepancy(c.id, f"state {c.state} vs balance", c.balance, c.balance))
    return out


# --- the console and the admin API: lists, a card's movements, exports ---------------------

CARD_STATES = tuple(s.value for s in CardState)
CARD_SORTS = ("number", "state", "balance", "nominal", "activated_at", "expires_at")
GIFT_SERIES_SORTS = ("code", "name", "nominal", "created_at", "cards", "outstanding")


@dataclass(frozen=True, slots=True)
class GiftSeriesRow:
    id: int
    code: str
    name: str
    nominal: Decimal
    valid_days: int | None
    created_at: datetime
    cards: int
    by_state: dict[str, int]
    outstanding: Decimal  # balances of active, used and blocked cards


@dataclass(frozen=True, slots=True)
class GiftCardRow:
    id: int
    number: str
    series: str
    state: str
    nominal: Decimal
    balance: Decimal
    held: Decimal
    activated_at: datetime | None
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Movement:
    id: int
    kind: str
    amount: Decimal
    held_delta: Decimal
    receipt_pk: int | None
    terminal_id: int | None
    created_at: datetime


def _shown_state(now: datetime) -> Any:
    """The state people see: a live card past its expiry shows as expired (the job that
    takes its balance may not have run yet), as ``card_view`` says."""
    from sqlalchemy import and_, case, literal

    g = t.gift_cards.c
    return case(
        (
            and_(g.state.in_(["active", "used"]), g.expires_at.is_not(None), g.expires_at <= now),
            literal("expired"),
        ),
        else_=g.state,
    )


async def list_gift_series(
    rt: Runtime,
    *,
    program_id: int,
    offset: int = 0,
    limit: int = 50,
    sort: str = "created_at",
    descending: bool = True,
) -> tuple[list[GiftSeriesRow], int]:
    """A page of the program's gift-card series with cards by state and what they hold."""
    from sqlalchemy import case

    s, g = t.gift_card_series.c, t.gift_cards.c
    state = _shown_state(rt.now())
    per_state = (
        select(g.series_id, state.label("state"), func.count().label("n"))
        .where(g.program_id == program_id)
        .group_by(g.series_id, state)
    )
    totals = (
        select(
            g.series_id.label("series_id"),
            func.count().label("cards"),
            func.sum(case((g.state.in_(["active", "used", "blocked"]), g.balance), else_=0)).label(
                "outstanding"
            ),
        )
        .where(g.program_id == program_id)
        .group_by(g.series_id)
        .subquery()
    )
    q = (
        select(
            s.id,
            s.code,
            s.name,
            s.nominal,
            s.valid_days,
            s.created_at,
            func.coalesce(totals.c.cards, 0).label("cards"),
            func.coalesce(totals.c.outstanding, 0).label("outstanding"),
        )
        .select_from(t.gift_card_series.outerjoin(totals, totals.c.series_id == s.id))
        .where(s.program_id == program_id)
    )
    sort = sort if sort in GIFT_SERIES_SORTS else "created_at"
    col = q.selected_columns[sort]
    async with rt.engine.connect() as conn:
        total = (
            await conn.execute(
                select(func.count())
                .select_from(t.gift_card_series)
                .where(s.program_id == program_id)
            )
        ).scalar_one()
        rows = (
            await conn.execute(
                q.order_by(col.desc() if descending else col.asc(), s.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
        ids = [r.id for r in rows]
        counts: dict[int, dict[str, int]] = {}
        if ids:
            for r in (await conn.execute(per_state.where(g.series_id.in_(ids)))).all():
                counts.setdefault(r.series_id, {})[r.state] = int(r.n)
    out = [
        GiftSeriesRow(
            r.id,
            r.code,
            r.name,
            Decimal(r.nominal),
            r.valid_days,
            r.created_at,
            int(r.cards),
            counts.get(r.id, {}),
            Decimal(r.outstanding or 0).quantize(Decimal("0.01")),
        )
        for r in rows
    ]
    return out, int(total)


def _cards_query(rt: Runtime, program_id: int, *, series: str = "", state: str = "") -> Any:
    g, s = t.gift_cards.c, t.gift_card_series.c
    shown = _shown_state(rt.now())
    q = (
        select(
            g.id,
            g.number,
            s.code.label("series"),
            shown.label("state"),
            g.nominal,
            g.balance,
            g.held,
            g.activated_at,
            g.expires_at,
            g.created_at,
        )
        .select_from(t.gift_cards.join(t.gift_card_series, s.id == g.series_id))
        .where(g.program_id == program_id)
    )
    if series:
        q = q.where(s.code == series)
    if state in CARD_STATES:
        q = q.where(shown == state)
    return q


def _gift_row(r: Any) -> GiftCardRow:
    return GiftCardRow(
        r.id,
        r.number,
        r.series,
        r.state,
        Decimal(r.nominal),
        Decimal(r.balance),
        Decimal(r.held),
        r.activated_at,
        r.expires_at,
        r.created_at,
    )


async def list_cards(
    rt: Runtime,
    *,
    program_id: int,
    series: str = "",
    state: str = "",
    number: str = "",
    offset: int = 0,
    limit: int = 50,
    sort: str = "number",
    descending: bool = False,
) -> tuple[list[GiftCardRow], int]:
    """A page of the program's gift cards (of a series, in a state, or by number)."""
    q = _cards_query(rt, program_id, series=series, state=state)
    if number:
        q = q.where(t.gift_cards.c.number.startswith(number.strip(), autoescape=True))
    sort = sort if sort in CARD_SORTS else "number"
    col = q.selected_columns[sort]
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
        rows = (
            await conn.execute(
                q.order_by(col.desc() if descending else col.asc(), t.gift_cards.c.id)
                .offset(offset)
                .limit(limit)
            )
        ).all()
    return [_gift_row(r) for r in rows], int(total)


async def card_detail(
    rt: Runtime, *, program_id: int, number: str, limit: int = 200, partner_id: int | None = None
) -> tuple[GiftCardRow, list[Movement]]:
    """One card and its latest movements (entries), newest first.  With ``partner_id``
    (a partner user) only movements at that partner's tills and receipts, and those of
    no till (block, expiry)."""
    e = t.gift_card_entries.c
    q = _cards_query(rt, program_id).where(t.gift_cards.c.number == number)
    async with rt.engine.connect() as conn:
        r = (await conn.execute(q)).first()
        if r is None:
            raise GiftCardError(
                "gift_card_not_found", "no gift card with this number", field="number"
            )
        entries = (
            await conn.execute(
                select(
                    e.id, e.kind, e.amount, e.held_delta, e.receipt_pk, e.terminal_id, e.created_at
                )
                .where(e.card_id == r.id, *_partner_only(partner_id))
                .order_by(e.id.desc())
                .limit(limit)
            )
        ).all()
    moves = [
        Movement(
            x.id,
            x.kind,
            Decimal(x.amount),
            Decimal(x.held_delta),
            x.receipt_pk,
            x.terminal_id,
            x.created_at,
        )
        for x in entries
    ]
    return _gift_row(r), moves


def _partner_only(partner_id: int | None) -> list[Any]:
    if partner_id is None:
        return []
    e, tm, st, rc = t.gift_card_entries.c, t.terminals.c, t.stores.c, t.receipts.c
    own_tills = (
        select(tm.id).join(t.stores, st.id == tm.store_id).where(st.partner_id == partner_id)
    )
    own_receipts = select(rc.id).where(rc.partner_id == partner_id)
    return [
        or_(e.terminal_id.is_(None), e.terminal_id.in_(own_tills)),
        or_(e.receipt_pk.is_(None), e.receipt_pk.in_(own_receipts)),
    ]


def cards_table(rt: Runtime, *, program_id: int, series: str = "", state: str = "") -> Any:
    """Gift cards for an export (``exports.Table``; never the PINs), read in chunks."""
    from kopilka.services import exports

    base = _cards_query(rt, program_id, series=series, state=state)

    async def fetch(after: int | None, size: int) -> list[Any]:
        q = base if after is None else base.where(t.gift_cards.c.id > after)
        async with rt.engine.connect() as conn:
            return list((await conn.execute(q.order_by(t.gift_cards.c.id).limit(size))).all())

    async def rows() -> Any:
        async for r in exports.chunked(fetch, key=lambda r: r[0]):
            c = _gift_row(r)
            yield (
                c.number,
                c.series,
                c.state,
                c.nominal,
                c.balance,
                c.held,
                c.activated_at,
                c.expires_at,
            )

    return exports.Table(
        series or "gift-cards",
        (
            "number",
            "series",
            "state",
            "nominal",
            "balance",
            "held",
            "activated_at",
            "expires_at",
        ),
        rows(),
    )
