"""Purchases at the till: calculate, confirm, cancel, calculate-and-confirm, batch.

Each ``do_*`` function is one database transaction.  The account row is locked
(``FOR UPDATE``) whenever points move, so two tills burning the same account at once
are serialised and can never overdraw it; the receipt row is locked on confirm and
cancel, so the same confirm sent twice at once applies once.  Idempotency: the
``(terminal_id, pos_receipt_id)`` unique constraint is the key; a retry with the same
request hash gets the stored answer byte for byte, another body gets 409.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from prometheus_client import Counter

from kopilka import crash
from kopilka.crash import ARMED as CRASH_ARMED
from kopilka.domain import qr
from kopilka.domain.coupons import normalise
from kopilka.domain.identifiers import mask_card, mask_name
from kopilka.domain.ledger import (
    ZERO,
    Balance,
    EntryKind,
    HoldState,
    InsufficientPoints,
    Lot,
    balance_at,
    burn_cap,
    has_restricted,
    plan_burn,
    plan_earn,
    plan_offline_burn,
)
from kopilka.domain.money import fmt2
from kopilka.domain.program import ProgramSettings
from kopilka.domain.receipt import (
    Basket,
    PricedReceipt,
    RedeemRefused,
    price_receipt,
)
from kopilka.domain.rules.compiler import CompiledProgram
from kopilka.domain.rules.engine import BASE_EARN
from kopilka.offline_verify import OfflineToken
from kopilka.services import giftcards, offline, views
from kopilka.services.coupons import (
    Coupon,
    check_coupons,
    confirm_coupons,
    coupons_view,
    hold_coupons,
    release_coupons,
    used_coupons,
)
from kopilka.services.errors import ServiceError
from kopilka.services.levels import has_levels, refresh_after_purchase
from kopilka.services.phones import to_e164
from kopilka.services.pricing import (
    INSERT_RECEIPT_PROMOTIONS,
    budgets_left,
    customer_context,
    promotion_rows,
    release_promotions,
    reserve_promotions,
)
from kopilka.services.runtime import Runtime, Terminal
from kopilka.store.queries.accounts import (
    AccountState,
    Posting,
    held_at,
    load_account,
    load_by_identifier,
    lot_from_row,
)
from kopilka.store.raw import (
    Changed,
    Tx,
    UniqueViolation,
    cents,
    dec2,
    insert_rows,
    parse_ts,
    ts,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PurchaseRequest:
    receipt_id: str
    identifier: str | None
    occurred_at: datetime | None
    cashier_id: str | None
    basket: Basket
    gift_cards: tuple[giftcards.Tender, ...] = ()
    offline_token: str | None = None  # a burn made offline under a signed token (ADR 0030)

    def request_hash(self) -> str:
        """Hash of the normalised request: 1500 and "1500.00" are the same price."""
        parts = [
            self.receipt_id,
            self.identifier or "",
            self.cashier_id or "",
            self.occurred_at.astimezone(UTC).isoformat() if self.occurred_at else "",
            _norm_redeem(self.basket.redeem_points),
            ",".join(normalise(c) for c in self.basket.coupons),
        ]
        for ln in self.basket.lines:
            parts.append(
                f"{ln.sku}\x1f{ln.name}\x1f{ln.category or ''}\x1f"
                f"{ln.quantity:.3f}\x1f{ln.price:.2f}\x1f{ln.discount:.2f}"
            )
        for g in self.gift_cards:
            parts.append(f"gift\x1f{g.number}\x1f{g.amount:.2f}")
        if self.offline_token is not None:  # absent: the hash of every earlier receipt
            parts.append(f"offline\x1f{self.offline_token}")
        return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()


def _redeems(value: Decimal | str | None) -> bool:
    return value is not None and (isinstance(value, str) or value != 0)


def _norm_redeem(value: Decimal | str | None) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return f"{value:.2f}"


def identifier_values(identifier: str) -> list[str]:
    """What the scanned text may be stored as: itself, and as an E.164 phone.

    Only text that can be a phone (10-11 digits, maybe with + ( ) - and spaces) is parsed
    as one; card numbers, QR tokens and RFID UIDs go straight to the index.
    """
    raw = identifier.strip()
    if raw.startswith(qr.PREFIX):  # the cabinet's rotating QR token: its card, if genuine
        card = qr.card_of(raw, qr.configured_secret(), datetime.now(UTC))
        return [card] if card is not None else [raw]
    values = [raw]
    digits = sum(ch.isdigit() for ch in raw)
    if 10 <= digits <= 12 and all(ch.isdigit() or ch in "+()- " for ch in raw):
        phone = to_e164(raw)
        if phone and phone != raw:
            values.append(phone)
    return values


def lot_dates(occurred_at: datetime, program: ProgramSettings) -> tuple[datetime, datetime | None]:
    """Activation and expiry of points earned at ``occurred_at``, exact to the program's day.

    Delayed points activate at the start of the day ``activation_delay_days`` after the
    purchase; points expire at the start of the day ``expiry_days`` after activation.
    """
    tz = ZoneInfo(program.timezone)
    local = occurred_at.astimezone(tz)
    if program.activation_delay_days > 0:
        day = local.date() + timedelta(days=program.activation_delay_days)
        activates = datetime(day.year, day.month, day.day, tzinfo=tz)
    else:
        activates = local
    expires = None
    if program.expiry_days is not None:
        d = activates.date() + timedelta(days=program.expiry_days)
        expires = datetime(d.year, d.month, d.day, tzinfo=tz)
    return activates, expires


# --- calculate -------------------------------------------------------------------------


# Calculates holding points whose unlocked write found the account changed since it was
# read (ADR 0038), done again with the account locked.
CALC_RELOCKED = Counter(
    "kopilka_calculate_relocked",
    "Calculates holding points whose guarded write found the account changed, done again locked",
)


# Calculates that started from the account their till's lookup read in this process
# (ADR 0040), by result: written; changed since the lookup, or refused from the lookup's
# read (in both, nothing written and read again).
CALC_FROM_LOOKUP = Counter(
    "kopilka_calculate_from_lookup",
    "Calculates that started from the lookup's read kept in this process, by result",
    ["result"],
)


async def do_calculate(rt: Runtime, term: Terminal, req: PurchaseRequest) -> bytes:
    """Price the receipt, hold the redeemed points, store the answer; one transaction."""
    return await _priced_call(rt, term, req, confirm=False)


async def do_purchase(rt: Runtime, term: Terminal, req: PurchaseRequest) -> bytes:
    """Calculate and confirm in one transaction (also offline uploads with a past time)."""
    return await _priced_call(rt, term, req, confirm=True)


async def _priced_call(
    rt: Runtime, term: Terminal, req: PurchaseRequest, *, confirm: bool
) -> bytes:
    """Run a calculation; a receipt_id seen before gets its first answer (or 409).

    The happy path does not look for an earlier receipt: the unique key finds it.  A
    refusal (say, the points are now held by the first call) is checked against an
    earlier receipt too, so a retry never gets a refusal the first call did not get.
    """
    compiled = await rt.compiled(term.program_id)
    digest = req.request_hash()
    want = "purchase" if confirm else "calc"
    now = rt.now()
    found: list[offline.OfflineBurn] = []  # an offline burn's token, to report a reuse
    calculated: list[Calculated] | None = None if confirm or rt.sqlite else []
    try:
        verified = (
            await giftcards.check_tenders(rt, term, list(req.gift_cards), now=now)
            if req.gift_cards
            else []
        )
        # A calculate that burns nothing is one read and one insert: on PostgreSQL it needs
        # no transaction (the insert is atomic by itself), saving BEGIN and COMMIT.  With
        # promotions the receipt's promotion rows (and budgets) are written with it.
        moves_points = (
            confirm
            or _redeems(req.basket.redeem_points)
            or bool(compiled.promotions)
            or bool(req.basket.coupons)
            or bool(verified)
        )
        # Burning points on PostgreSQL: first without a lock, the hold guarded by the
        # account's version (ADR 0038): two round trips instead of BEGIN, lock, lots,
        # write, COMMIT; done again locked if another till wrote the account meanwhile.
        guarded = (
            not rt.sqlite
            and not confirm
            and _redeems(req.basket.redeem_points)
            and not compiled.promotions
            and not req.basket.coupons
            and not verified
            and req.offline_token is None
        )
        # A member's calculate after the till's lookup on this process, burning nothing or
        # guarded: no read, the write checks that nothing the lookup read has changed
        # (ADR 0040); if something has, the calculate reads as below.
        looked_up = None
        values = identifier_values(req.identifier) if req.identifier is not None else None
        if values is not None and not rt.sqlite and (guarded or not moves_points):
            looked_up = rt.take_looked_up(term.program_id, tuple(values))
        attempts: list[tuple[bool, AccountState | None]] = [(guarded, None)]
        if looked_up is not None:
            attempts.insert(0, (True, looked_up))
        if guarded:
            attempts.append((False, None))
        for n, (unlocked, kept) in enumerate(attempts, 1):
            try:
                async with rt.hot.tx() if moves_points and not unlocked else rt.hot.single() as tx:
                    answer = await _calculate(
                        tx,
                        rt,
                        term,
                        req,
                        compiled,
                        digest,
                        now,
                        confirm=confirm,
                        verified=verified,
                        found=found,
                        calculated=calculated,
                        unlocked=unlocked,
                        looked_up=kept,
                        values=values,
                    )
                if kept is not None:
                    CALC_FROM_LOOKUP.labels("written").inc()
                break
            except Changed:  # unlocked, and the account changed: nothing was written
                if n == len(attempts):
                    raise
                if kept is not None:
                    CALC_FROM_LOOKUP.labels("changed").inc()
                elif unlocked:
                    CALC_RELOCKED.inc()
            except ServiceError:
                # A refusal from the lookup's read (a card blocked then, points short
                # then) may be stale: only a read of its own may refuse (nothing written).
                if kept is None:
                    raise
                CALC_FROM_LOOKUP.labels("refused").inc()
        if calculated:  # written (committed): the confirm may start from it
            rt.remember_calculated(term.id, req.receipt_id, calculated[0])
    except UniqueViolation:
        replay = await _replay(rt, term, req.receipt_id, digest, want=want)
        if replay is None:
            raise
        return replay
    except ServiceError as exc:
        replay = await _replay(rt, term, req.receipt_id, digest, want=want)
        if replay is None:
            if exc.code == "offline_cap_exceeded" and found:
                await _report_offline(rt, term, req, found[0], "refused")
            raise
        return replay
    if found and found[0].reuse:  # after the commit: the burn stands, the alert follows
        await _report_offline(rt, term, req, found[0], "applied")
    return answer


async def _report_offline(
    rt: Runtime, term: Terminal, req: PurchaseRequest, burn: offline.OfflineBurn, outcome: str
) -> None:
    """The fraud alert of a token used again; a failure here never fails the receipt (its
    burn is committed, or its refusal stands): it is logged, and ``offline_burns`` keeps
    the record."""
    try:
        await _write_offline_alert(rt, term, req, burn, outcome)
    except Exception:
        log.exception("offline token alert not written (token %s)", burn.token.token_id)


async def _write_offline_alert(
    rt: Runtime, term: Terminal, req: PurchaseRequest, burn: offline.OfflineBurn, outcome: str
) -> None:
    await offline.report(
        rt,
        program_id=term.program_id,
        token=burn.token,
        terminal_id=term.id,
        store_id=term.store_id,
        receipt_id=req.receipt_id,
        points=burn.points,
        outcome=outcome,
    )


async def _replay(
    rt: Runtime, term: Terminal, receipt_id: str, digest: str, *, want: str
) -> bytes | None:
    """The stored answer for a receipt_id used before; None if it was never used."""
    async with rt.hot.tx() as tx:
        rows = await tx.fetch(
            "SELECT state, request_hash, calc_response, confirm_response, source "
            "FROM receipts WHERE terminal_id = ? AND pos_receipt_id = ?",
            term.id,
            receipt_id,
        )
    if not rows:
        return None
    _state, request_hash, calc_response, confirm_response, source = rows[0]
    one_shot = source != "calculate"
    if request_hash != digest or (want == "purchase") != one_shot:
        raise ServiceError(
            "idempotency_conflict",
            f"receipt_id {receipt_id!r} was already used with a different request",
            field="receipt_id",
        )
    if want == "purchase":
        assert confirm_response is not None
        return bytes(confirm_response)
    return bytes(calc_response)


@dataclass(frozen=True, slots=True)
class Calculated:
    """What a calculate on PostgreSQL read and wrote, kept by this process for the
    receipt's confirm (ADR 0038): the receipt's key, time and stored answer; the account
    ``(id, program_id, balance, held, debt, lots)`` exactly as the row version ``xmin``
    holds it (read in one snapshot, or as the calculate's own write left it); and the
    receipt's hold.  The confirm writes from it guarded by that version, as an unlocked
    confirm writes from its read (ADR 0037)."""

    receipt_pk: int
    occurred_at: datetime
    calc_response: bytes
    account: tuple[int, int, Decimal, Decimal, Decimal, tuple[Lot, ...]] | None
    xmin: int | None
    hold_id: int | None = None

    def account_state(self) -> AccountState | None:
        if self.account is None:
            return None
        id_, program_id, balance, held, debt, lots = self.account
        return AccountState(id_, program_id, balance, held, debt, list(lots))


INSERT_RECEIPT = (
    "INSERT INTO receipts (program_id, partner_id, store_id, terminal_id, pos_receipt_id, "
    "account_id, customer_id, card_id, state, occurred_at, created_at, confirmed_at, "
    "cashier_id, amount, discount, points_redeemed, redeemed_value, to_pay, points_earned, "
    "request_hash, calc_response, source, program_version) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
INSERT_HOLD = (
    "INSERT INTO holds (program_id, account_id, receipt_pk, amount, state, created_at, "
    "expires_at) VALUES (?, ?, ?, ?, 'active', ?, ?) RETURNING id"
)
INSERT_LINES = (
    "INSERT INTO receipt_lines (receipt_pk, idx, program_id, sku, name, category, quantity, "
    "price, amount, discount, points_redeemed, redeemed_value, to_pay, points_earned)"
)
INSERT_OUTBOX = (
    "INSERT INTO outbox (program_id, topic, payload, created_at, attempts) VALUES (?, ?, ?, ?, 0)"
)
FINISH_RECEIPT = (
    "UPDATE receipts SET state = ?, confirmed_at = ?, confirm_response = ?, earned_lot_id = ? "
    "WHERE id = ?"
)
_HOLD_PG_ROWS = (
    "WITH rc AS (" + INSERT_RECEIPT + "), "
    "h AS (INSERT INTO holds (program_id, account_id, receipt_pk, amount, state, created_at, "
    "expires_at) SELECT ?, ?, rc.id, ?, 'active', ?, ? FROM rc RETURNING id, receipt_pk), "
    "e AS (INSERT INTO ledger_entries (program_id, account_id, kind, amount, held_delta, "
    "hold_id, receipt_pk, funding_partner_id, partner_id, created_at) "
    "SELECT ?, ?, 'hold', 0, ?, h.id, h.receipt_pk, NULL, ?, ? FROM h RETURNING 1)"
)
HOLD_PG = (
    _HOLD_PG_ROWS + " UPDATE accounts SET held = ?, updated_at = ? WHERE id = ? "
    "RETURNING xmin, balance, held, debt, (SELECT id FROM h), (SELECT id FROM rc)"
)


# PostgreSQL, a calculate that holds points without a lock (ADR 0038): the same rows as
# HOLD_PG, the account updated only in the version its lots were read in (``xmin``), the
# whole statement undone (KP001) if it changed meanwhile.
def _hold_pg_guarded(also: str = "") -> str:
    return (
        _HOLD_PG_ROWS
        + ", acc AS (UPDATE accounts SET held = ?, updated_at = ? WHERE id = ? AND xmin = ?"
        f"{also} RETURNING xmin, balance, held, debt) "
        "SELECT kopilka_confirm_check((SELECT count(*) FROM acc) = 1), (SELECT xmin FROM acc), "
        "(SELECT balance FROM acc), (SELECT held FROM acc), (SELECT debt FROM acc), "
        "(SELECT id FROM h), (SELECT id FROM rc)"
    )


HOLD_PG_GUARDED = _hold_pg_guarded()
# PostgreSQL, a calculate starting from the account its till's lookup read (ADR 0040):
# the identifier still leads to the same card, and the card, the customer and the account
# are the row versions the lookup read (``xmin``; the account's covers its lots and holds,
# as for ADR 0037), or the statement is undone (KP001) and the calculate reads for itself.
# Parameters: program, the identifier's two values, the card; then the account, the card
# and the customer, each with its version.
_AS_LOOKED_UP = (
    "(SELECT card_id FROM identifiers WHERE program_id = ? AND value IN (?, ?) "
    "ORDER BY kind LIMIT 1) = ? AND (SELECT xmin FROM accounts WHERE id = ?) = ? "
    "AND (SELECT xmin FROM cards WHERE id = ?) = ? "
    "AND (SELECT xmin FROM customers WHERE id = ?) = ?"
)
INSERT_RECEIPT_AS_LOOKED_UP = INSERT_RECEIPT + f", kopilka_confirm_check({_AS_LOOKED_UP})"
HOLD_PG_AS_LOOKED_UP = _hold_pg_guarded(f" AND {_AS_LOOKED_UP}")
LOCK_RECEIPT = (
    "SELECT id, state, account_id, occurred_at, calc_response, confirm_response, partner_id "
    "FROM receipts WHERE terminal_id = ? AND pos_receipt_id = ?"
)


async def _calculate(
    tx: Tx,
    rt: Runtime,
    term: Terminal,
    req: PurchaseRequest,
    compiled: CompiledProgram,
    digest: str,
    now: datetime,
    *,
    confirm: bool,
    verified: list[giftcards.VerifiedTender],
    found: list[offline.OfflineBurn] | None = None,
    calculated: list[Calculated] | None = None,
    unlocked: bool = False,
    looked_up: AccountState | None = None,
    values: list[str] | None = None,
) -> bytes:
    """``unlocked`` (PostgreSQL, a calculate that may hold points; ADR 0038): read the
    account without a lock and write the hold guarded by the row's version; raises
    ``Changed``, having written nothing, when the account changed between the two."""
    program = compiled.settings
    occurred_at = req.occurred_at or now
    account: AccountState | None = None
    token = None
    if req.offline_token is not None:
        token = await _offline_token(tx, term, req, occurred_at, confirm=confirm)
        if req.identifier is None:  # the token names the card
            req = replace(req, identifier=token.card_number)
    if req.identifier is not None and values is None:  # the offline token's card
        values = identifier_values(req.identifier)
    as_looked_up: list[Any] = []  # the guard's parameters (ADR 0040)
    if looked_up is not None:  # the lookup's read, checked by the write (ADR 0040)
        assert req.identifier is not None and unlocked and not confirm
        account = replace(looked_up, lots=list(looked_up.lots))
        assert values is not None
        as_looked_up = [term.program_id, values[0], values[-1], account.card_id, account.id]
        as_looked_up += [account.xmin, account.card_id, account.card_xmin]
        as_looked_up += [account.customer_id, account.customer_xmin]
    elif values is not None:
        redeeming = _redeems(req.basket.redeem_points)
        account = await load_by_identifier(
            tx,
            program_id=term.program_id,
            values=values,
            lock=(redeeming or confirm) and not unlocked,
        )
    if req.identifier is not None:
        if account is None:
            raise ServiceError(
                "unknown_identifier", "no customer with this identifier", field="identifier"
            )
        if account.card_status != "active":
            raise ServiceError(
                "card_blocked", f"the card is {account.card_status}", field="identifier"
            )
    # What can be burned at this till (ADR 0024): lots restricted to another partner are
    # not; the holds-by-partner read happens only for an account with restricted lots.
    balance = (
        balance_at(
            account.lots,
            at=term.partner_id,
            held=account.held,
            held_at=await held_at(tx, account),
            debt=account.debt,
            now=now,
        )
        if account
        else None
    )
    burn = None
    if token is not None and account is not None and balance is not None:
        try:
            burn = await _offline_burn(tx, term, req, token, account)
        except ServiceError as exc:  # beyond the cap: reported once the refusal stands
            wanted = req.basket.redeem_points
            if exc.code == "offline_cap_exceeded" and found is not None:
                assert isinstance(wanted, Decimal)
                found.append(offline.OfflineBurn(token, wanted, 0, ZERO))
            raise
        if burn is not None and found is not None:
            found.append(burn)
    local = occurred_at.astimezone(compiled.zone(term.store.timezone))
    ctx = None
    if account is not None and balance is not None:
        # An offline burn was allowed by the token's cap, not by the balance of now.
        spendable = burn.left if burn is not None else balance.available
        ctx = await customer_context(tx, compiled, account, available=spendable, local=local)
    budgets = await budgets_left(tx, compiled, term.program_id) if compiled.promotions else None
    presented: list[Coupon] = []
    basket = req.basket
    if verified:  # the `gift_card_payment` condition, and points on the gift-card part
        basket = replace(
            basket,
            gift_card_payment=True,
            gift_card_amount=sum((v.amount for v in verified), Decimal(0)),
        )
    if basket.coupons:
        presented = await check_coupons(
            tx,
            program_id=term.program_id,
            codes=basket.coupons,
            customer_id=account.customer_id if account else None,
            now=now,
        )
        # Promotions name a coupon's series (or the code itself).
        basket = replace(
            basket, coupons=tuple({*(c.series for c in presented), *(c.code for c in presented)})
        )
    excluded: set[str] = set()
    while True:
        try:
            priced = price_receipt(
                basket,
                ctx,
                compiled,
                now,
                store=term.store,
                budgets=budgets,
                excluded=excluded,
            )
        except RedeemRefused as exc:
            raise ServiceError(
                exc.code, exc.detail, field="redeem_points", redeem_max=fmt2(exc.redeem_max)
            ) from None
        lost = await reserve_promotions(
            tx, compiled, priced, program_id=term.program_id, account=account, local=local
        )
        if lost is None:
            break
        excluded.add(lost)  # another till spent its budget or limit first: price without it

    hold_expires = now + timedelta(seconds=program.hold_ttl_s)
    activates, _ = lot_dates(occurred_at, program)
    pending_earn = activates > now
    used = used_coupons(compiled, presented, {a.rule for a in priced.applied}) if presented else []
    calc_body = _calc_answer(
        req,
        priced,
        account,
        balance,
        program,
        pending_earn,
        hold_expires if (priced.points_redeemed or used) and not confirm else None,
        unit=rt.profile_cached(term.program_id).points_ru[2],
    )
    if presented:
        calc_body["coupons"] = coupons_view(presented, used)
    if burn is not None and balance is not None:
        # What the lots cannot give (another till spent it, or this token's earlier
        # receipt did) becomes the account's debt: at most the cap, by check_burn.
        burn.debt = plan_offline_burn(
            priced.points_redeemed, available=balance.available, cap_left=burn.left
        ).debt
        calc_body["offline"] = {
            "token_id": burn.token.token_id,
            "cap": fmt2(burn.token.cap),
            "use": burn.use_no,
            "burned_under_token": fmt2(burn.burned_before + priced.points_redeemed),
            "debt": fmt2(burn.debt),
        }
    c = cents
    receipt_args = (
        term.program_id,
        term.partner_id,
        term.store_id,
        term.id,
        req.receipt_id,
        account.id if account else None,
        account.customer_id if account else None,
        account.card_id if account else None,
        "confirmed" if confirm else "calculated",
        ts(tx, occurred_at),
        ts(tx, now),
        ts(tx, now) if confirm else None,
        req.cashier_id,
        c(priced.amount),
        c(priced.discount),
        c(priced.points_redeemed),
        c(priced.redeemed_value),
        c(priced.to_pay),
        c(priced.points_earned),
        digest,
        views.dumps(calc_body),
        "purchase" if confirm else "calculate",
        compiled.version,
    )
    promo_rows = promotion_rows(compiled, priced, term.program_id, account, local)
    holding = account is not None and priced.points_redeemed > 0 and not confirm
    if holding and tx.pg and account is not None and not promo_rows and not used and not verified:
        # Receipt, hold, hold entry and account total in one round trip (the account is
        # locked); the same rows as the statements below.
        held = account.held + priced.points_redeemed
        assert held >= 0
        guard = [account.xmin] if unlocked else []
        if unlocked and CRASH_ARMED:  # the write is the commit (no transaction)
            crash.point("tx.commit")
        rows = await tx.fetch(
            (HOLD_PG_AS_LOOKED_UP if as_looked_up else HOLD_PG_GUARDED) if unlocked else HOLD_PG,
            *receipt_args,
            account.program_id,
            account.id,
            c(priced.points_redeemed),
            ts(tx, now),
            ts(tx, hold_expires),
            account.program_id,
            account.id,
            c(priced.points_redeemed),
            term.partner_id,
            ts(tx, now),
            c(held),
            ts(tx, now),
            account.id,
            *guard,
            *as_looked_up,
        )
        if unlocked and CRASH_ARMED:
            crash.point("tx.committed")
        if calculated is not None and token is None:
            # the account row as this statement left it (locked, or unchanged since its
            # lots were read: guarded): its lots are as read
            xmin, bal, held_now, debt, hold_id, pk = rows[0][-6:]
            acc = (account.id, account.program_id, dec2(bal), dec2(held_now), dec2(debt))
            calculated.append(
                Calculated(
                    int(pk),
                    occurred_at,
                    receipt_args[20],
                    (*acc, tuple(account.lots)),
                    int(xmin),
                    int(hold_id),
                )
            )
        return views.dumps(calc_body)
    if unlocked and holding:  # the general path's hold needs the lock: take it
        raise Changed("a hold written by the general path")
    if as_looked_up:
        rows = await tx.fetch(INSERT_RECEIPT_AS_LOOKED_UP, *receipt_args, *as_looked_up)
    else:
        rows = await tx.fetch(INSERT_RECEIPT, *receipt_args)
    receipt_pk = int(rows[0][0])
    if (
        calculated is not None
        and tx.pg
        and not confirm
        and token is None
        and not verified
        and not used
        and (account is None or (account.xmin is not None and priced.points_redeemed == 0))
    ):
        snap = None
        if account is not None:
            snap = (
                account.id,
                account.program_id,
                account.balance,
                account.held,
                account.debt,
                tuple(account.lots),
            )
        calculated.append(
            Calculated(
                receipt_pk,
                occurred_at,
                receipt_args[20],
                snap,
                None if account is None else account.xmin,
            )
        )
    if burn is not None:
        burn.receipt_pk = receipt_pk
        await offline.record_burn(tx, burn, terminal_id=term.id, occurred_at=occurred_at, now=now)
    if verified:
        calc_body["gift_cards"] = await giftcards.hold_tenders(
            tx,
            program_id=term.program_id,
            terminal_id=term.id,
            receipt_pk=receipt_pk,
            tenders=verified,
            now=now,
            to_pay=priced.to_pay,
        )
        if not confirm:
            calc_body["hold_expires_at"] = views.iso(hold_expires)
        await tx.execute(
            "UPDATE receipts SET calc_response = ? WHERE id = ?", views.dumps(calc_body), receipt_pk
        )
        if confirm:
            await giftcards.confirm_tenders(tx, receipt_pk=receipt_pk, now=now)
    # Past this point the call must succeed: only writes follow.
    if promo_rows:
        await insert_rows(tx, INSERT_RECEIPT_PROMOTIONS, [(receipt_pk, *r) for r in promo_rows])
    if used:
        await hold_coupons(
            tx,
            program_id=term.program_id,
            receipt_pk=receipt_pk,
            account_id=account.id if account else None,
            coupons=used,
            now=now,
            spent=confirm,
        )
    if confirm:
        body = await _settle(
            tx,
            term,
            receipt_pk,
            req.receipt_id,
            calc_body,
            account,
            priced,
            program,
            now,
            occurred_at,
            hold_id=None,
            offline_debt=burn.debt if burn is not None else ZERO,
            unit=rt.profile_cached(term.program_id).points_ru[2],
            compiled=compiled,
        )
        if account is not None:
            await refresh_after_purchase(
                tx, compiled, program_id=term.program_id, account_id=account.id, now=now
            )
        return body
    if account is not None and priced.points_redeemed > 0:
        rows = await tx.fetch(
            INSERT_HOLD,
            account.program_id,
            account.id,
            receipt_pk,
            c(priced.points_redeemed),
            ts(tx, now),
            ts(tx, hold_expires),
        )
        posting = Posting(account, now, receipt_pk=receipt_pk, partner_id=term.partner_id)
        posting.hold(priced.points_redeemed, int(rows[0][0]))
        await posting.flush(tx)
    return views.dumps(calc_body)


def _calc_answer(
    req: PurchaseRequest,
    priced: PricedReceipt,
    account: AccountState | None,
    balance: Balance | None,
    program: ProgramSettings,
    pending_earn: bool,
    hold_expires_at: datetime | None,
    unit: str = "баллов",
) -> dict[str, Any]:
    after: Balance | None = None
    if balance is not None:
        earned_now = ZERO if pending_earn else priced.points_earned
        after = Balance(
            available=balance.available - priced.points_redeemed + earned_now,
            pending=balance.pending + (priced.points_earned if pending_earn else ZERO),
            held=balance.held,
            debt=balance.debt,
        )
    return {
        "receipt_id": req.receipt_id,
        "state": "calculated",
        "member": account is not None,
        "customer": None
        if account is None
        else {
            "name": mask_name(account.first_name, account.last_name),
            "card": mask_card(account.card_number),
        },
        "lines": views.priced_lines_view(req.basket.lines, priced),
        **views.totals_view(priced),
        "redeem_max": fmt2(priced.redeem_max),
        "promotions": views.applied_view(priced.applied),
        "cashier_messages": list(priced.cashier_messages),
        "gifts": [{"sku": g[0], "name": g[1], "quantity": g[2]} for g in priced.gifts],
        "program_version": priced.program_version,
        "balance_after": None if after is None else views.balance_view(after),
        "receipt_text": views.receipt_text(priced, after, pending_earn, unit=unit),
        "hold_expires_at": views.iso(hold_expires_at),
    }


async def _offline_token(
    tx: Tx, term: Terminal, req: PurchaseRequest, occurred_at: datetime, *, confirm: bool
) -> OfflineToken:
    """The receipt's offline token, verified; only a completed receipt carries one."""
    if not confirm:
        raise ServiceError(
            "not_supported",
            "offline_token is for receipts made offline: POST /purchases or the batch",
            field="offline_token",
        )
    assert req.offline_token is not None
    return await offline.check_token(
        tx, program_id=term.program_id, text=req.offline_token, occurred_at=occurred_at
    )


async def _offline_burn(
    tx: Tx,
    term: Terminal,
    req: PurchaseRequest,
    token: OfflineToken,
    account: AccountState,
) -> offline.OfflineBurn | None:
    """The burn under the token (the account is locked); None if the receipt burns nothing."""
    if account.id != token.account_id:
        raise ServiceError(
            "offline_token_invalid",
            "the token belongs to another customer than the identifier",
            field="offline_token",
            reason="other_account",
        )
    wanted = req.basket.redeem_points
    if isinstance(wanted, str):
        raise ServiceError(
            "validation_failed",
            'an offline receipt states the points it burned: a number, not "max"',
            field="redeem_points",
        )
    if not wanted:
        return None
    return await offline.check_burn(tx, token, program_id=term.program_id, points=wanted)


# --- confirm -----------------------------------------------------------------------------


async def do_confirm(rt: Runtime, term: Terminal, receipt_id: str) -> bytes:
    """Burn the held points, credit the earned ones; locks the receipt and the account."""
    compiled = await rt.compiled(term.program_id)
    now = rt.now()
    if not rt.sqlite and not has_levels(compiled):
        answer = None
        calculated = rt.take_calculated(term.id, receipt_id)
        if calculated is not None:
            answer = await _confirm_calculated(rt, term, receipt_id, compiled, now, calculated)
        if answer is None:
            answer = await _confirm_unlocked(rt, term, receipt_id, compiled, now)
        if answer is not None:
            return answer
    async with rt.hot.tx() as tx:
        rec, account = await _lock_receipt_and_account(tx, term, receipt_id)
        if rec.state == "confirmed":
            return rec.confirm_response
        if rec.state == "cancelled":
            raise ServiceError("receipt_cancelled", "the receipt was cancelled", field="receipt_id")
        calc = orjson.loads(rec.calc_response)
        redeemed = views.dec(calc["points_redeemed"])
        hold_id = None
        if account is not None and redeemed > 0:
            hold_id = await _resolve_hold(tx, rec.id, now, HoldState.CONFIRMED)
            if hold_id is None:  # the hold expired and was released: try again from scratch
                bal = balance_at(
                    account.lots,
                    at=term.partner_id,
                    held=account.held,
                    held_at=await held_at(tx, account),
                    debt=account.debt,
                    now=now,
                )
                if bal.available < redeemed:
                    raise ServiceError(
                        "hold_expired",
                        "the hold on redeemed points expired and the points "
                        "are no longer available; calculate again with a new receipt_id",
                        field="receipt_id",
                        available=fmt2(bal.available),
                    )
        if calc.get("coupons"):
            await confirm_coupons(tx, receipt_pk=rec.id, now=now)
        if calc.get("gift_cards"):  # may refuse: hold_expired
            await giftcards.confirm_tenders(tx, receipt_pk=rec.id, now=now)
        # Past this point the confirm must succeed: only writes follow.
        body = await _settle_confirm(
            tx, rt, term, rec, receipt_id, calc, account, compiled, now, hold_id=hold_id
        )
        assert isinstance(body, bytes)  # locked: a refusal raises
        if account is not None:  # tier or discount up at once (the job lowers them)
            await refresh_after_purchase(
                tx, compiled, program_id=term.program_id, account_id=account.id, now=now
            )
        return body


# Unlocked confirms that lost a race and were done again the locking way (ADR 0037): a
# few a day is normal (a till's retry, a cancel at the same moment); many mean accounts
# written from several places at once.
RELOCKED = Counter(
    "kopilka_confirm_relocked_total",
    "Confirms whose unlocked write found the account or receipt changed, done again locked",
    ["reason"],
)

# PostgreSQL, the unlocked confirm's read (ADR 0037): the receipt, its account with the
# row's version (xmin) and lots, and whether the receipt's hold is still active, all in
# the statement's one snapshot (not ``kopilka_live_lots``, whose fresh snapshot could show
# lots already burned by a confirm that committed after this statement began, beside the
# account row and hold from before it).
READ_FOR_CONFIRM_PG = (
    "WITH r AS (" + LOCK_RECEIPT + ") "
    "SELECT r.*, a.id, a.program_id, a.balance, a.held, a.debt, "
    "ARRAY(SELECT ROW(l.id, l.remaining, l.activates_at, l.expires_at, l.burn_partner_id, "
    "l.funding_partner_id) FROM lots l WHERE l.program_id = a.program_id "
    "AND l.account_id = a.id AND l.remaining > 0 ORDER BY l.id), a.xmin, "
    "(SELECT min(h.id) FROM holds h WHERE h.receipt_pk = r.id AND h.state = 'active') "
    "FROM r LEFT JOIN accounts a ON a.id = r.account_id"
)


async def _confirm_unlocked(
    rt: Runtime, term: Terminal, receipt_id: str, compiled: CompiledProgram, now: datetime
) -> bytes | None:
    """The confirm in two round trips and no transaction (PostgreSQL, ADR 0037): read,
    price the postings, write them in one statement guarded by what was read.  None when
    the locking confirm must decide: the receipt is not simply calculated (a replay of a
    confirmed one is answered here), it has coupons or gift cards, its hold is gone, or
    the account or the receipt changed between the read and the write (nothing written).
    """
    async with rt.hot.read() as tx:
        rows = await tx.fetch(READ_FOR_CONFIRM_PG, term.id, receipt_id)
        if not rows:
            raise _no_receipt(receipt_id)
        x = rows[0]
        rec = _receipt_from_row(x)
        if rec.state == "confirmed":
            return rec.confirm_response
        if rec.state != "calculated":
            return None
        calc = orjson.loads(rec.calc_response)
        if calc.get("coupons") or calc.get("gift_cards"):
            return None
        account = _account_from_row(x)
        hold = False
        if account is not None:
            hold = views.dec(calc["points_redeemed"]) > 0
            if hold and x[14] is None:  # released or expired since calculate
                return None
        answer = await _settle_confirm(
            tx,
            rt,
            term,
            rec,
            receipt_id,
            calc,
            account,
            compiled,
            now,
            hold_id=x[14] if hold else None,
            unlocked=Unlocked(x[13] if account is not None else None, hold),
        )
        if isinstance(answer, Lost):
            # another call wrote first (the same confirm from a retry, a cancel, a burn on
            # the account): nothing of this one was written; the locking confirm decides,
            # and gives any refusal itself
            RELOCKED.labels(answer.reason).inc()
            return None
    if CRASH_ARMED:
        crash.point("tx.committed")
    return answer


@dataclass(frozen=True, slots=True)
class Lost:
    """An unlocked confirm's write that wrote nothing: ``changed`` (the account, the
    receipt or its hold changed since the read), ``confirmed_meanwhile`` (the same
    confirm finished first), ``refused`` (pricing refused)."""

    reason: str


# Confirms written from what this process's calculate of the receipt read (ADR 0038):
# "written", or "changed" (the account or the receipt changed since; nothing was written
# and the confirm read them again).
FROM_CALCULATE = Counter(
    "kopilka_confirm_from_calculate_total",
    "Confirms that started from the calculate's read kept in this process, by result",
    ["result"],
)


async def _confirm_calculated(
    rt: Runtime,
    term: Terminal,
    receipt_id: str,
    compiled: CompiledProgram,
    now: datetime,
    calculated: Calculated,
) -> bytes | None:
    """The confirm in one round trip (PostgreSQL, ADR 0038): the unlocked confirm's write
    (ADR 0037), computed from what this process's calculate read and wrote instead of a
    read of its own, guarded the same way (the account row's version, the receipt still
    calculated, its hold still active).  None when anything changed since: nothing was
    written, and the confirm reads again."""
    calc = orjson.loads(calculated.calc_response)
    account = calculated.account_state()
    hold = account is not None and views.dec(calc["points_redeemed"]) > 0
    if hold and calculated.hold_id is None:
        return None
    rec = LockedReceipt(
        calculated.receipt_pk,
        "calculated",
        None if account is None else account.id,
        calculated.occurred_at,
        calculated.calc_response,
        b"",
        term.partner_id,
    )
    async with rt.hot.read() as tx:
        answer = await _settle_confirm(
            tx,
            rt,
            term,
            rec,
            receipt_id,
            calc,
            account,
            compiled,
            now,
            hold_id=calculated.hold_id if hold else None,
            unlocked=Unlocked(calculated.xmin, hold),
        )
    if isinstance(answer, Lost):  # whatever the reason, the confirm reads again
        FROM_CALCULATE.labels("changed").inc()
        return None
    if CRASH_ARMED:
        crash.point("tx.committed")
    FROM_CALCULATE.labels("written").inc()
    return answer


@dataclass(frozen=True, slots=True)
class LockedReceipt:
    id: int
    state: str
    account_id: int | None
    occurred_at: datetime
    calc_response: bytes
    confirm_response: bytes
    partner_id: int


# PostgreSQL: the receipt and its account locked in one statement, receipt first (the
# order every path takes).  Locked rows are read in their newest version, so both are
# current; and the account's lots, read by ``kopilka_live_lots`` (migration 0032): a VOLATILE
# function takes a fresh snapshot for its query, evaluated here once the account's lock is
# held, so it sees a burn committed by the transaction the lock waited for.  (A join or a
# plain subquery would see the statement's snapshot: stale lots, a double spend; pinned by
# tests/services/test_concurrency.py::test_a_confirm_that_waited_for_the_lock_...)
LOCK_RECEIPT_AND_ACCOUNT_PG = (
    "WITH r AS (" + LOCK_RECEIPT + " FOR UPDATE), "
    "a AS (SELECT id, program_id, balance, held, debt FROM accounts "
    "WHERE id = (SELECT account_id FROM r) FOR UPDATE) "
    "SELECT r.*, a.id, a.program_id, a.balance, a.held, a.debt, "
    "ARRAY(SELECT ROW(f.id, f.remaining, f.activates_at, f.expires_at, f.burn_partner_id, "
    "f.funding_partner_id) FROM kopilka_live_lots(a.program_id, a.id) f) "
    "FROM r LEFT JOIN a ON true"
)


async def _lock_receipt_and_account(
    tx: Tx, term: Terminal, receipt_id: str
) -> tuple[LockedReceipt, AccountState | None]:
    """The receipt and, for a member's receipt, its account with its lots, both locked."""
    if not tx.pg:
        rec = await _locked_receipt(tx, term, receipt_id)
        acc = await load_account(tx, rec.account_id, lock=True) if rec.account_id else None
        return rec, acc
    rows = await tx.fetch(LOCK_RECEIPT_AND_ACCOUNT_PG, term.id, receipt_id)
    if not rows:
        raise _no_receipt(receipt_id)
    return _receipt_from_row(rows[0]), _account_from_row(rows[0])


def _account_from_row(x: Any) -> AccountState | None:
    """The account of a confirm's read (columns 7-12 of ``LOCK_RECEIPT_AND_ACCOUNT_PG`` and
    ``READ_FOR_CONFIRM_PG``): None for a guest's receipt."""
    if x[7] is None:
        return None
    account = AccountState(x[7], x[8], dec2(x[9]), dec2(x[10]), dec2(x[11]))
    account.lots = [lot_from_row(r) for r in x[12]]
    return account


async def _settle_confirm(
    tx: Tx,
    rt: Runtime,
    term: Terminal,
    rec: LockedReceipt,
    receipt_id: str,
    calc: dict[str, Any],
    account: AccountState | None,
    compiled: CompiledProgram,
    now: datetime,
    *,
    hold_id: int | None,
    unlocked: Unlocked | None = None,
) -> bytes | Lost:
    """``_settle`` for a confirm of a calculated receipt.  Locked: the answer (a refusal
    raises).  ``unlocked`` (ADR 0037, 0038): the answer, or why nothing was written."""
    if unlocked is not None and CRASH_ARMED:
        crash.point("tx.commit")
    try:
        return await _settle(
            tx,
            term,
            rec.id,
            receipt_id,
            calc,
            account,
            _priced_from_answer(calc),
            compiled.settings,
            now,
            rec.occurred_at,
            hold_id=hold_id,
            unit=rt.profile_cached(term.program_id).points_ru[2],
            compiled=compiled,
            unlocked=unlocked,
        )
    except (Changed, UniqueViolation, ServiceError) as exc:
        if unlocked is None:
            raise
        if isinstance(exc, Changed):
            return Lost("changed")
        if isinstance(exc, UniqueViolation):
            return Lost("confirmed_meanwhile")
        return Lost("refused")


def _no_receipt(receipt_id: str) -> ServiceError:
    return ServiceError(
        "receipt_not_found", f"no receipt {receipt_id!r} at this terminal", field="receipt_id"
    )


def _receipt_from_row(x: Any) -> LockedReceipt:
    occurred = parse_ts(x[3])
    assert occurred is not None
    return LockedReceipt(x[0], x[1], x[2], occurred, bytes(x[4] or b""), bytes(x[5] or b""), x[6])


async def _locked_receipt(tx: Tx, term: Terminal, receipt_id: str) -> LockedReceipt:
    """The receipt row, locked until the transaction ends (PostgreSQL FOR UPDATE)."""
    rows = await tx.fetch(LOCK_RECEIPT + (" FOR UPDATE" if tx.pg else ""), term.id, receipt_id)
    if not rows:
        raise _no_receipt(receipt_id)
    return _receipt_from_row(rows[0])


async def _resolve_hold(tx: Tx, receipt_pk: int, now: datetime, state: HoldState) -> int | None:
    """Move the receipt's active hold to ``state``; None if it was no longer active."""
    rows = await tx.fetch(
        "UPDATE holds SET state = ?, resolved_at = ? WHERE receipt_pk = ? AND state = 'active' "
        "RETURNING id, amount",
        state.value,
        ts(tx, now),
        receipt_pk,
    )
    return int(rows[0][0]) if rows else None


def _priced_from_answer(calc: dict[str, Any]) -> PricedReceipt:
    """The totals of a stored calculation: confirm applies exactly what was shown.

    Lines are not rebuilt: confirm writes them from the stored answer (``_line_rows``).
    """
    d = views.dec
    return PricedReceipt(
        lines=(),
        amount=d(calc["amount"]),
        discount=d(calc["discount"]),
        points_redeemed=d(calc["points_redeemed"]),
        redeemed_value=d(calc["redeemed_value"]),
        to_pay=d(calc["to_pay"]),
        points_earned=d(calc["points_earned"]),
        redeem_max=d(calc["redeem_max"]),
    )


def _minor(text: str) -> int:
    """An answer's fixed-point string ("150.00", "1.500") as integer minor units.

    Exact because the answers are written by ``fmt2``/``fmt3`` with a fixed number of
    decimals; cheaper than a Decimal round trip for every field of every line.
    """
    return int(text.replace(".", ""))


# The answer's fixed-point fields of a line, stored as integer minor units.
_LINE_MINOR = (
    "quantity",
    "price",
    "amount",
    "discount",
    "points_redeemed",
    "redeemed_value",
    "to_pay",
    "points_earned",
)


def _line_rows(
    receipt_pk: int, program_id: int, lines: list[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """``INSERT_LINES``'s rows (SQLite): the answer's fixed-point fields as integers."""
    return [
        (
            receipt_pk,
            x["index"],
            program_id,
            x["sku"],
            x["name"],
            x["category"],
            *[_minor(x[k]) for k in _LINE_MINOR],
        )
        for x in lines
    ]


def _line_columns_pg(lines: list[dict[str, Any]]) -> list[Any]:
    """``_lines_insert``'s twelve parameters: the index, SKU, name and category as arrays,
    and the eight fixed-point fields as array literals in text, ``{15000,990}``: the
    answer's "150.00" without its point is its minor units (``_minor``), and PostgreSQL
    parses a literal in C where asyncpg would encode 160 integers one by one."""
    cols: list[Any] = [
        [x["index"] for x in lines],
        [x["sku"] for x in lines],
        [x["name"] for x in lines],
        [x["category"] for x in lines],
    ]
    for key in _LINE_MINOR:
        cols.append("{" + ",".join([x[key].replace(".", "") for x in lines]) + "}")
    return cols


def _lines_insert(*, receipt: str, program: str, first: int) -> str:
    """The receipt's lines inserted from twelve columns, parameters ``$first`` on
    (``_line_columns_pg``): shared by the member's and the guest's confirm statements."""
    p = [f"${first + i}" for i in range(12)]
    types = ["int[]", "text[]", "text[]", "text[]"] + ["text::bigint[]"] * 8
    arrays = ", ".join(f"{x}::{t}" for x, t in zip(p, types, strict=True))
    return (
        "INSERT INTO receipt_lines (receipt_pk, idx, program_id, sku, name, category, "
        "quantity, price, amount, discount, points_redeemed, redeemed_value, to_pay, "
        f"points_earned) SELECT {receipt}, x.idx, {program}, x.sku, x.name, x.category, "
        "x.quantity, x.price, x.amount, x.discount, x.points_redeemed, x.redeemed_value, "
        f"x.to_pay, x.points_earned FROM unnest({arrays}) AS x(idx, sku, name, category, "
        "quantity, price, amount, discount, points_redeemed, redeemed_value, to_pay, "
        "points_earned) RETURNING 1"
    )


# The whole confirm write on PostgreSQL in one statement (data-modifying CTEs): the new
# lot, burned lots, ledger entries, account totals, lines, outbox and the receipt row.
# One round trip instead of eight; every part sees the same snapshot and touches other
# rows.  Locked: the caller holds the account's and the receipt's locks.  Unlocked (ADR
# 0037): nothing is locked; the account is updated only if its row is still the version
# the confirm read ($37, its xmin: every change of an account's lots or holds updates its
# row), the hold and the receipt only if still active and calculated, and
# ``kopilka_confirm_check`` undoes the whole statement when one of them was not ($38:
# whether a hold is to be confirmed).  Its rows are locked in the order every path takes
# (receipt, account, then the account's lots and hold): each part waits for the one
# before it through ``EXISTS``, evaluated before the part touches a row.
_NEW_LOT = """new_lot AS (
  INSERT INTO lots (program_id, account_id, amount, remaining, activates_at, expires_at,
                    receipt_pk, funding_partner_id, burn_partner_id, created_at)
  SELECT $1, $2, n.amount, n.amount, $4, $5, $6, n.funder, n.burn_at, $8
  FROM unnest($3::bigint[], $35::bigint[], $36::bigint[]) AS n(amount, funder, burn_at)
  RETURNING id, funding_partner_id, burn_partner_id
)"""
_LOT_UPD = """lot_upd AS (
  UPDATE lots l SET remaining = l.remaining + u.delta
  FROM unnest($9::bigint[], $10::bigint[]) AS u(id, delta)
  WHERE l.program_id = $1 AND l.account_id = $2 AND l.id = u.id{after}
  RETURNING l.id
)"""
_ENT = """ent AS (
  INSERT INTO ledger_entries (program_id, account_id, kind, amount, held_delta, lot_id,
                              hold_id, receipt_pk, funding_partner_id, partner_id, created_at)
  SELECT $1, $2, e.kind, e.amount, e.held_delta,
         CASE WHEN e.new_lot IS NULL THEN e.lot_id ELSE
           (SELECT nl.id FROM new_lot nl
            WHERE nl.funding_partner_id IS NOT DISTINCT FROM e.funder
              AND nl.burn_partner_id IS NOT DISTINCT FROM ($36::bigint[])[e.new_lot + 1])
         END,
         e.hold_id, $6, e.funder, $7, $8
  FROM unnest($11::text[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[],
              $16::int[], $34::bigint[])
       AS e(kind, amount, held_delta, lot_id, hold_id, new_lot, funder)
  RETURNING id
)"""
_ACC = """acc AS (
  UPDATE accounts SET balance = $17, held = $18, debt = $19, updated_at = $8
  WHERE id = $2{guard}
  RETURNING id
)"""
_LNS = "lns AS (" + _lines_insert(receipt="$6", program="$1", first=20) + ")"
_OB = """ob AS (
  INSERT INTO outbox (program_id, topic, payload, created_at, attempts)
  VALUES ($1, 'purchase.confirmed', $32, $8, 0) RETURNING id
)"""
_SETTLE_PG_RECEIPT = """
UPDATE receipts SET state = 'confirmed', confirmed_at = $8, confirm_response = $33,
       earned_lot_id = (SELECT min(id) FROM new_lot)
WHERE id = $6"""
SETTLE_PG = (
    "WITH "
    + ", ".join([_NEW_LOT, _LOT_UPD.format(after=""), _ENT, _ACC.format(guard=""), _LNS, _OB])
    + _SETTLE_PG_RECEIPT
)
SETTLE_PG_UNLOCKED = (
    "WITH "
    + ", ".join(
        [
            _NEW_LOT,
            "rc AS (" + _SETTLE_PG_RECEIPT + " AND state = 'calculated' RETURNING id)",
            _ACC.format(guard=" AND xmin = $37 AND EXISTS (SELECT 1 FROM rc)"),
            _LOT_UPD.format(after=" AND EXISTS (SELECT 1 FROM acc)"),
            """hold AS (
  UPDATE holds SET state = 'confirmed', resolved_at = $8
  WHERE receipt_pk = $6 AND state = 'active' AND EXISTS (SELECT 1 FROM acc) RETURNING id
)""",
            _ENT,
            _LNS,
            _OB,
        ]
    )
    + """
SELECT kopilka_confirm_check((SELECT count(*) FROM acc) = 1 AND (SELECT count(*) FROM rc) = 1
  AND (SELECT count(*) > 0 FROM hold) = $38)"""
)

# A guest's (non-member's) confirm on PostgreSQL: the lines and the receipt's state in one
# statement (locked: the receipt is locked by the caller; unlocked: written only if still
# calculated, else undone whole).
_GUEST_RECEIPT = (
    "UPDATE receipts SET state = 'confirmed', confirmed_at = $15, confirm_response = $16, "
    "earned_lot_id = NULL WHERE id = $1"
)
SETTLE_GUEST_PG = (
    "WITH lns AS (" + _lines_insert(receipt="$1", program="$2", first=3) + ") " + _GUEST_RECEIPT
)
SETTLE_GUEST_PG_UNLOCKED = (
    "WITH lns AS ("
    + _lines_insert(receipt="$1", program="$2", first=3)
    + "), rc AS ("
    + _GUEST_RECEIPT
    + " AND state = 'calculated' RETURNING id) "
    "SELECT kopilka_confirm_check((SELECT count(*) FROM rc) = 1)"
)


@dataclass(frozen=True, slots=True)
class Unlocked:
    """A confirm written without a transaction (ADR 0037): the account row's version
    (``xmin``) it was computed from (None: a guest's receipt), and whether the receipt's
    hold is to be confirmed."""

    xmin: int | None
    hold: bool


@dataclass(frozen=True, slots=True)
class EarnPart:
    """Points of a receipt that make one lot: who funds them and where they burn."""

    amount: Decimal
    funder: int | None
    burn_at: int | None


def earn_parts(
    promotions: list[dict[str, Any]],
    points_earned: Decimal,
    compiled: CompiledProgram,
    partner_id: int,
) -> list[EarnPart]:
    """Split a receipt's earned points by funder and burn restriction (ADR 0024).

    ``promotions`` is the answer's per-contributor list (``views.applied_view``): each
    promotion's points are funded as it says (``funded_by``; a partner's promotion by
    the receipt's partner, burnable anywhere or only there), and the rest (the base
    rate, and the receipt's rounding) by ``points.base_funded_by``.  Non-zero parts
    only; the first is the base one.  A promotion no longer in the program counts as
    the program's.
    """
    base_funder = partner_id if compiled.doc.points.base_funded_by == "partner" else None
    if points_earned <= 0:
        return []
    by_key: dict[tuple[int | None, int | None], Decimal] = {}
    for x in promotions:
        if x["id"] in ("redeem", BASE_EARN):
            continue
        pts = views.dec(x["points"])
        if pts <= 0:
            continue
        p = compiled.by_id.get(x["id"])
        src = p.source if p is not None else None
        key: tuple[int | None, int | None]
        if src is not None and src.funded_by == "partner":
            key = (partner_id, partner_id if src.burn_at == "partner" else None)
        else:
            key = (None, None)
        by_key[key] = by_key.get(key, ZERO) + pts
    promo_total = sum(by_key.values(), ZERO)
    if promo_total > points_earned:  # never expected; fund everything as base points
        by_key = {}
        promo_total = ZERO
    base = points_earned - promo_total
    parts = [EarnPart(base, base_funder, None)] if base > 0 else []
    parts += [EarnPart(v, k[0], k[1]) for k, v in by_key.items()]
    return parts


async def _settle(
    tx: Tx,
    term: Terminal,
    receipt_pk: int,
    receipt_id: str,
    calc: dict[str, Any],
    account: AccountState | None,
    priced: PricedReceipt,
    program: ProgramSettings,
    now: datetime,
    occurred_at: datetime,
    *,
    hold_id: int | None,
    compiled: CompiledProgram,
    offline_debt: Decimal = ZERO,
    unit: str = "баллов",
    unlocked: Unlocked | None = None,
) -> bytes:
    """Write the confirmed receipt: ledger postings, lines, outbox, the receipt's state and
    stored answer.  Returns the answer.  Fails only when a one-shot purchase burns more
    points than the account has (nothing is written then).

    Burned points come out of the lots burnable at this partner, soonest expiry first,
    taking from unrestricted lots no more than the other partners' holds leave
    (``burn_cap``).  Earned points make one lot per funder and restriction
    (``earn_parts``): usually one.  Entries carry their lot's funder and this partner.
    ``offline_debt``: the part of an offline burn no lot covers, booked as the account's
    debt (ADR 0030); a debt is the program's.  ``unlocked`` (PostgreSQL): nothing is
    locked, the write is guarded instead and raises ``Changed`` having written nothing
    when the account or the receipt changed since they were read (ADR 0037)."""
    activates, expires = lot_dates(occurred_at, program)
    posting = None
    balance = None
    if account is not None:
        parts = earn_parts(calc["promotions"], priced.points_earned, compiled, term.partner_id)
        posting = Posting(
            account,
            now,
            receipt_pk=receipt_pk,
            funding_partner_id=parts[0].funder if parts else None,
            partner_id=term.partner_id,
        )
        # Other holds than this receipt's matter only with restricted lots (ADR 0024); when
        # this receipt's hold is all that is held there are none, and no read is needed.
        only_ours = hold_id is not None and account.held == priced.points_redeemed
        holds = {} if only_ours else await held_at(tx, account)
        from_lots = priced.points_redeemed - offline_debt
        if from_lots > 0:
            cap = None
            if has_restricted(account.lots):
                cap = burn_cap(
                    account.lots,
                    at=term.partner_id,
                    held_at=holds if holds is not None else {},
                    now=now,
                )
            try:
                takes = plan_burn(
                    account.lots,
                    from_lots,
                    now=now,
                    held_before=hold_id is not None,
                    at=term.partner_id,
                    unrestricted_cap=cap,
                )
            except InsufficientPoints as exc:  # only reachable without a hold (one-shot)
                raise ServiceError("insufficient_points", str(exc), field="redeem_points") from None
            posting.take(takes, EntryKind.BURN, from_hold=hold_id)
        posting.add_debt(offline_debt, EntryKind.BURN)
        for part in parts:  # the debt, if any, is paid from the base part first
            plan = plan_earn(part.amount, debt=account.debt)
            posting.earn(
                part.amount,
                debt_paid=plan.debt_paid,
                activates_at=activates,
                expires_at=expires,
                funder=part.funder,
                burn_at=part.burn_at,
            )
        balance = balance_at(
            posting.lots_after(),
            at=term.partner_id,
            held=account.held,
            held_at=holds,
            debt=account.debt,
            now=now,
        )
    body: dict[str, Any] = {
        "receipt_id": receipt_id,
        "state": "confirmed",
        "member": account is not None,
        "lines": calc["lines"],
        **{
            k: calc[k]
            for k in (
                "amount",
                "discount",
                "points_redeemed",
                "redeemed_value",
                "to_pay",
                "points_earned",
            )
        },
        "points_activate_at": views.iso(activates) if account and activates > now else None,
        "points_expire_at": views.iso(expires) if account and priced.points_earned else None,
        "balance": None if balance is None else views.balance_view(balance),
        "receipt_text": views.receipt_text(priced, balance, activates > now, unit=unit)
        if balance
        else [],
    }
    for extra in ("coupons", "gift_cards", "offline"):
        if extra in calc:
            body[extra] = calc[extra]
    answer = views.dumps(body)
    payload = None
    if account is not None:
        payload = orjson.dumps(
            {
                "receipt_pk": receipt_pk,
                # the confirm's account read does not join the customer (customer_id is 0
                # there): the notifier finds the customer by the account
                "account_id": account.id,
                "customer_id": account.customer_id or None,
                "points_earned": calc["points_earned"],
                "points_redeemed": calc["points_redeemed"],
                "balance": body["balance"],
            }
        ).decode()
    if tx.pg and posting is not None and account is not None:
        cols = _line_columns_pg(calc["lines"])
        await _settle_pg(tx, posting, account, cols, payload, answer, now, unlocked)
        return answer
    if tx.pg and account is None:  # a guest's receipt: lines and the receipt, one statement
        await tx.execute(
            SETTLE_GUEST_PG if unlocked is None else SETTLE_GUEST_PG_UNLOCKED,
            receipt_pk,
            term.program_id,
            *_line_columns_pg(calc["lines"]),
            now,
            answer,
        )
        return answer
    assert unlocked is None, "an unlocked confirm is PostgreSQL's"
    lines = _line_rows(receipt_pk, term.program_id, calc["lines"])
    earned_lot_id = await posting.flush(tx) if posting is not None else None
    await insert_rows(tx, INSERT_LINES, lines)
    if payload is not None:
        await tx.execute(INSERT_OUTBOX, term.program_id, "purchase.confirmed", payload, ts(tx, now))
    await tx.execute(FINISH_RECEIPT, "confirmed", ts(tx, now), answer, earned_lot_id, receipt_pk)
    return answer


async def _settle_pg(
    tx: Tx,
    posting: Posting,
    account: AccountState,
    line_cols: list[Any],
    payload: str | None,
    answer: bytes,
    now: datetime,
    unlocked: Unlocked | None = None,
) -> None:
    """``Posting.flush`` and the rest of ``_settle`` as one statement; same guarantees."""
    assert all(x.remaining >= 0 for x in posting.lots_after()), "a lot would go negative"
    assert account.held >= 0 and account.debt >= 0, (account.held, account.debt)
    lots = posting.new_lots
    # One receipt's new lots share their dates (only funder and restriction differ).
    assert len({(x.activates_at, x.expires_at) for x in lots}) <= 1
    lot_amounts, lot_funders, lot_burn_at = posting.new_lot_arrays()
    entry_cols = posting.entry_arrays()
    guard: list[Any] = [] if unlocked is None else [unlocked.xmin, unlocked.hold]
    await tx.execute(
        SETTLE_PG if unlocked is None else SETTLE_PG_UNLOCKED,
        account.program_id,
        account.id,
        lot_amounts,
        lots[0].activates_at if lots else now,
        lots[0].expires_at if lots else None,
        posting.receipt_pk,
        posting.partner_id,
        now,
        list(posting.lot_changes),
        [cents(d) for d in posting.lot_changes.values()],
        *entry_cols[:6],
        cents(account.balance),
        cents(account.held),
        cents(account.debt),
        *line_cols,
        payload,
        answer,
        *entry_cols[6:],
        lot_funders,
        lot_burn_at,
        *guard,
    )


# --- cancel ------------------------------------------------------------------------------


async def do_cancel(rt: Runtime, term: Terminal, receipt_id: str) -> bytes:
    """The sale did not happen: release the hold.  Idempotent; refuses a confirmed receipt."""
    now = rt.now()
    has_promotions = bool((await rt.compiled(term.program_id)).promotions)
    async with rt.hot.tx() as tx:
        rec = await _locked_receipt(tx, term, receipt_id)
        if rec.state == "cancelled":
            return rec.confirm_response
        if rec.state == "confirmed":
            raise ServiceError(
                "receipt_confirmed",
                "the receipt is confirmed; refund it instead",
                field="receipt_id",
            )
        if rec.account_id is not None:
            await release_hold(
                tx,
                receipt_pk=rec.id,
                account_id=rec.account_id,
                partner_id=rec.partner_id,
                now=now,
                kind=HoldState.RELEASED,
            )
        # Budgets and per-customer limits taken at calculate are given back only here: a
        # receipt whose hold expired may still be confirmed with what it was shown.
        if has_promotions:
            await release_promotions(tx, receipt_pk=rec.id)
        if b'"gift_cards":' in rec.calc_response:
            await giftcards.release_tenders(tx, receipt_pk=rec.id, now=now)
        if b'"coupons":' in rec.calc_response:
            await release_coupons(tx, receipt_pk=rec.id, now=now)
        body = views.dumps({"receipt_id": receipt_id, "state": "cancelled"})
        await tx.execute(
            "UPDATE receipts SET state = 'cancelled', confirm_response = ? WHERE id = ?",
            body,
            rec.id,
        )
        return body


async def release_hold(
    tx: Tx,
    *,
    receipt_pk: int,
    account_id: int,
    partner_id: int | None,
    now: datetime,
    kind: HoldState,
) -> Decimal:
    """Release the receipt's active hold, if any; locks the account.  Returns the amount."""
    account = await load_account(tx, account_id, lock=True)
    rows = await tx.fetch(
        "UPDATE holds SET state = ?, resolved_at = ? WHERE receipt_pk = ? AND state = 'active' "
        "RETURNING id, amount",
        kind.value,
        ts(tx, now),
        receipt_pk,
    )
    if not rows:
        return ZERO
    amount = dec2(rows[0][1])
    posting = Posting(account, now, receipt_pk=receipt_pk, partner_id=partner_id)
    posting.release(amount, int(rows[0][0]))
    await posting.flush(tx)
    return amount
