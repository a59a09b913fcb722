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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.identifiers import mask_card, mask_name
from kopilka.domain.ledger import (
    ZERO,
    Balance,
    EntryKind,
    HoldState,
    InsufficientPoints,
    balance_of,
    plan_burn,
    plan_earn,
)
from kopilka.domain.money import fmt2
from kopilka.domain.program import ProgramSettings
from kopilka.domain.receipt import (
    Basket,
    CustomerContext,
    PricedReceipt,
    RedeemRefused,
    price_receipt,
)
from kopilka.services import views
from kopilka.services.errors import ServiceError
from kopilka.services.phones import to_e164
from kopilka.services.runtime import Runtime, Terminal
from kopilka.store import tables as t
from kopilka.store.queries.accounts import AccountState, Posting, load_account, load_by_identifier

r = t.receipts


@dataclass(frozen=True, slots=True)
class PurchaseRequest:
    receipt_id: str
    identifier: str | None
    occurred_at: datetime | None
    cashier_id: str | None
    basket: Basket

    def request_hash(self) -> str:
        """Hash of the normalised request: 1500 and "1500.00" are the same price."""
        parts = [
            self.receipt_id,
            self.identifier or "",
            self.cashier_id or "",
            self.occurred_at.astimezone(UTC).isoformat() if self.occurred_at else "",
            _norm_redeem(self.basket.redeem_points),
        ]
        for ln in self.basket.lines:
            parts.append(
                f"{ln.sku}\x1f{ln.name}\x1f{ln.category or ''}\x1f"
                f"{ln.quantity:.3f}\x1f{ln.price:.2f}\x1f{ln.discount:.2f}"
            )
        return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()


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
    program = await rt.program(term.program_id)
    digest = req.request_hash()
    want = "purchase" if confirm else "calc"
    now = rt.now()
    try:
        async with rt.engine.begin() as conn:
            return await _calculate(conn, rt, term, req, program, digest, now, confirm=confirm)
    except IntegrityError:
        replay = await _replay(rt, term, req.receipt_id, digest, want=want)
        if replay is None:
            raise
        return replay
    except ServiceError:
        replay = await _replay(rt, term, req.receipt_id, digest, want=want)
        if replay is None:
            raise
        return replay


async def _replay(
    rt: Runtime, term: Terminal, receipt_id: str, digest: str, *, want: str
) -> bytes | None:
    """The stored answer for a receipt_id used before; None if it was never used."""
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    r.c.state, r.c.request_hash, r.c.calc_response, r.c.confirm_response, r.c.source
                ).where(r.c.terminal_id == term.id, r.c.pos_receipt_id == receipt_id)
            )
        ).first()
    if row is None:
        return None
    one_shot = row.source != "calculate"
    if row.request_hash != digest or (want == "purchase") != one_shot:
        raise ServiceError(
            "idempotency_conflict",
            f"receipt_id {receipt_id!r} was already used with a different request",
            field="receipt_id",
        )
    if want == "purchase":
        assert row.confirm_response is not None
        return bytes(row.confirm_response)
    return bytes(row.calc_response)


async def _calculate(
    conn: AsyncConnection,
    rt: Runtime,
    term: Terminal,
    req: PurchaseRequest,
    program: ProgramSettings,
    digest: str,
    now: datetime,
    *,
    confirm: bool,
) -> bytes:
    occurred_at = req.occurred_at or now
    account: AccountState | None = None
    if req.identifier is not None:
        redeeming = req.basket.redeem_points not in (None, ZERO) and req.basket.redeem_points != 0
        account = await load_by_identifier(
            conn,
            program_id=term.program_id,
            values=identifier_values(req.identifier),
            lock=redeeming or confirm,
        )
        if account is None:
            raise ServiceError(
                "unknown_identifier", "no customer with this identifier", field="identifier"
            )
        if account.card_status != "active":
            raise ServiceError(
                "card_blocked", f"the card is {account.card_status}", field="identifier"
            )
    balance = (
        balance_of(account.lots, held=account.held, debt=account.debt, now=now) if account else None
    )
    ctx = CustomerContext(account.id, balance.available) if account and balance else None
    try:
        priced = price_receipt(req.basket, ctx, program, now)
    except RedeemRefused as exc:
        raise ServiceError(
            exc.code, exc.detail, field="redeem_points", redeem_max=fmt2(exc.redeem_max)
        ) from None

    hold_expires = now + timedelta(seconds=program.hold_ttl_s)
    activates, _ = lot_dates(occurred_at, program)
    pending_earn = activates > now
    calc_body = _calc_answer(
        req,
        priced,
        account,
        balance,
        program,
        pending_earn,
        hold_expires if priced.points_redeemed and not confirm else None,
    )
    receipt_pk = (
        await conn.execute(
            insert(r).returning(r.c.id),
            {
                "program_id": term.program_id,
                "partner_id": term.partner_id,
                "store_id": term.store_id,
                "terminal_id": term.id,
                "pos_receipt_id": req.receipt_id,
                "account_id": account.id if account else None,
                "customer_id": account.customer_id if account else None,
                "card_id": account.card_id if account else None,
                "state": "confirmed" if confirm else "calculated",
                "occurred_at": occurred_at,
                "created_at": now,
                "confirmed_at": now if confirm else None,
                "cashier_id": req.cashier_id,
                "amount": priced.amount,
                "discount": priced.discount,
                "points_redeemed": priced.points_redeemed,
                "redeemed_value": priced.redeemed_value,
                "to_pay": priced.to_pay,
                "points_earned": priced.points_earned,
                "request_hash": digest,
                "calc_response": views.dumps(calc_body),
                "source": "purchase" if confirm else "calculate",
            },
        )
    ).scalar_one()
    # Past this point the call must succeed: only writes follow.
    if confirm:
        body, lot_id = await _settle(
            conn,
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
        )
        await conn.execute(
            update(r)
            .where(r.c.id == receipt_pk)
            .values(confirm_response=body, earned_lot_id=lot_id)
        )
        return body
    if account is not None and priced.points_redeemed > 0:
        hold_id = (
            await conn.execute(
                insert(t.holds).returning(t.holds.c.id),
                {
                    "program_id": account.program_id,
                    "account_id": account.id,
                    "receipt_pk": receipt_pk,
                    "amount": priced.points_redeemed,
                    "state": HoldState.ACTIVE.value,
                    "created_at": now,
                    "expires_at": hold_expires,
                },
            )
        ).scalar_one()
        posting = Posting(account, now, receipt_pk=receipt_pk, funding_partner_id=term.partner_id)
        posting.hold(priced.points_redeemed, hold_id)
        await posting.flush(conn)
    return views.dumps(calc_body)


def _calc_answer(
    req: PurchaseRequest,
    priced: PricedReceipt,
    account: AccountState | None,
    balance: Balance | None,
    program: ProgramSettings,
    pending_earn: bool,
    hold_expires_at: datetime | None,
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
        "balance_after": None if after is None else views.balance_view(after),
        "receipt_text": views.receipt_text(priced, after, pending_earn),
        "hold_expires_at": views.iso(hold_expires_at),
    }


# --- confirm -----------------------------------------------------------------------------


async def do_confirm(rt: Runtime, term: Terminal, receipt_id: str) -> bytes:
    """Burn the held points, credit the earned ones; locks the receipt and the account."""
    program = await rt.program(term.program_id)
    now = rt.now()
    async with rt.engine.begin() as conn:
        row = await _locked_receipt(conn, term, receipt_id)
        if row.state == "confirmed":
            return bytes(row.confirm_response)
        if row.state == "cancelled":
            raise ServiceError("receipt_cancelled", "the receipt was cancelled", field="receipt_id")
        calc = orjson.loads(row.calc_response)
        account = await load_account(conn, row.account_id, lock=True) if row.account_id else None
        redeemed = views.dec(calc["points_redeemed"])
        hold_id = None
        if account is not None and redeemed > 0:
            hold_id = await _take_hold(conn, row.id, now)
            if hold_id is None:  # the hold expired and was released: try again from scratch
                bal = balance_of(account.lots, held=account.held, debt=account.debt, now=now)
                if bal.available < redeemed:
                    raise ServiceError(
                        "hold_expired",
                        "the hold on redeemed points expired and the points "
                        "are no longer available; calculate again with a new receipt_id",
                        field="receipt_id",
                        available=fmt2(bal.available),
                    )
        # Past this point the confirm must succeed: only writes follow.
        priced = _priced_from_answer(calc)
        body, lot_id = await _settle(
            conn,
            term,
            row.id,
            receipt_id,
            calc,
            account,
            priced,
            program,
            now,
            row.occurred_at,
            hold_id=hold_id,
        )
        await conn.execute(
            update(r)
            .where(r.c.id == row.id)
            .values(
                state="confirmed", confirmed_at=now, confirm_response=body, earned_lot_id=lot_id
            )
        )
        return body


async def _locked_receipt(conn: AsyncConnection, term: Terminal, receipt_id: str) -> Any:
    row = (
        await conn.execute(
            select(
                r.c.id,
                r.c.state,
                r.c.account_id,
                r.c.occurred_at,
                r.c.calc_response,
                r.c.confirm_response,
                r.c.earned_lot_id,
                r.c.partner_id,
            )
            .where(r.c.terminal_id == term.id, r.c.pos_receipt_id == receipt_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise ServiceError(
            "receipt_not_found", f"no receipt {receipt_id!r} at this terminal", field="receipt_id"
        )
    return row


async def _take_hold(conn: AsyncConnection, receipt_pk: int, now: datetime) -> int | None:
    h = t.holds
    res = await conn.execute(
        update(h)
        .where(h.c.receipt_pk == receipt_pk, h.c.state == HoldState.ACTIVE.value)
        .values(state=HoldState.CONFIRMED.value, resolved_at=now)
        .returning(h.c.id)
    )
    hold_id: int | None = res.scalar_one_or_none()
    return hold_id


def _priced_from_answer(calc: dict[str, Any]) -> PricedReceipt:
    """Totals and lines of a stored calculation: confirm applies exactly what was shown."""
    from kopilka.domain.receipt import PricedLine

    d = views.dec
    lines = tuple(
        PricedLine(
            d(x["amount"]),
            d(x["discount"]),
            d(x["points_redeemed"]),
            d(x["redeemed_value"]),
            d(x["to_pay"]),
            d(x["points_earned"]),
        )
        for x in calc["lines"]
    )
    return PricedReceipt(
        lines=lines,
        amount=d(calc["amount"]),
        discount=d(calc["discount"]),
        points_redeemed=d(calc["points_redeemed"]),
        redeemed_value=d(calc["redeemed_value"]),
        to_pay=d(calc["to_pay"]),
        points_earned=d(calc["points_earned"]),
        redeem_max=d(calc["redeem_max"]),
    )


async def _settle(
    conn: AsyncConnection,
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
) -> tuple[bytes, int | None]:
    """Write the confirmed receipt's ledger postings, lines and outbox row; the caller
    stores the answer and the earned lot on the receipt row.  Must not fail."""
    balance = None
    earned_lot_id = None
    activates, expires = lot_dates(occurred_at, program)
    if account is not None:
        posting = Posting(account, now, receipt_pk=receipt_pk, funding_partner_id=term.partner_id)
        if priced.points_redeemed > 0:
            try:
                takes = plan_burn(
                    account.lots, priced.points_redeemed, now=now, held_before=hold_id is not None
                )
            except InsufficientPoints as exc:  # only reachable without a hold (one-shot)
                raise ServiceError("insufficient_points", str(exc), field="redeem_points") from None
            posting.take(takes, EntryKind.BURN, from_hold=hold_id)
        plan = plan_earn(priced.points_earned, debt=account.debt)
        posting.earn(
            priced.points_earned,
            debt_paid=plan.debt_paid,
            activates_at=activates,
            expires_at=expires,
        )
        earned_lot_id = await posting.flush(conn)
        balance = balance_of(account.lots, held=account.held, debt=account.debt, now=now)
    await conn.execute(
        insert(t.receipt_lines),
        [
            {
                "receipt_pk": receipt_pk,
                "idx": x["index"],
                "program_id": term.program_id,
                "sku": x["sku"],
                "name": x["name"],
                "category": x["category"],
                "quantity": views.dec(x["quantity"]),
                "price": views.dec(x["price"]),
                "amount": views.dec(x["amount"]),
                "discount": views.dec(x["discount"]),
                "points_redeemed": views.dec(x["points_redeemed"]),
                "redeemed_value": views.dec(x["redeemed_value"]),
                "to_pay": views.dec(x["to_pay"]),
                "points_earned": views.dec(x["points_earned"]),
            }
            for x in calc["lines"]
        ],
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
        "receipt_text": views.receipt_text(priced, balance, activates > now) if balance else [],
    }
    if account is not None:
        await conn.execute(
            insert(t.outbox),
            {
                "program_id": term.program_id,
                "topic": "purchase.confirmed",
                "created_at": now,
                "payload": orjson.dumps(
                    {
                        "receipt_pk": receipt_pk,
                        "customer_id": account.customer_id,
                        "points_earned": calc["points_earned"],
                        "points_redeemed": calc["points_redeemed"],
                        "balance": body["balance"],
                    }
                ).decode(),
            },
        )
    return views.dumps(body), earned_lot_id


# --- cancel ------------------------------------------------------------------------------


async def do_cancel(rt: Runtime, term: Terminal, receipt_id: str) -> bytes:
    """The sale did not happen: release the hold.  Idempotent; refuses a confirmed receipt."""
    now = rt.now()
    async with rt.engine.begin() as conn:
        row = await _locked_receipt(conn, term, receipt_id)
        if row.state == "cancelled":
            return bytes(row.confirm_response)
        if row.state == "confirmed":
            raise ServiceError(
                "receipt_confirmed",
                "the receipt is confirmed; refund it instead",
                field="receipt_id",
            )
        if row.account_id is not None:
            await release_hold(
                conn,
                receipt_pk=row.id,
                account_id=row.account_id,
                partner_id=row.partner_id,
                now=now,
                kind=HoldState.RELEASED,
            )
        body = views.dumps({"receipt_id": receipt_id, "state": "cancelled"})
        await conn.execute(
            update(r).where(r.c.id == row.id).values(state="cancelled", confirm_response=body)
        )
        return body


async def release_hold(
    conn: AsyncConnection,
    *,
    receipt_pk: int,
    account_id: int,
    partner_id: int | None,
    now: datetime,
    kind: HoldState,
) -> Decimal:
    """Release the receipt's active hold, if any; locks the account.  Returns the amount."""
    h = t.holds
    account = await load_account(conn, account_id, lock=True)
    res = (
        await conn.execute(
            update(h)
            .where(h.c.receipt_pk == receipt_pk, h.c.state == HoldState.ACTIVE.value)
            .values(state=kind.value, resolved_at=now)
            .returning(h.c.id, h.c.amount)
        )
    ).first()
    if res is None:
        return ZERO
    posting = Posting(account, now, receipt_pk=receipt_pk, funding_partner_id=partner_id)
    posting.release(res.amount, res.id)
    await posting.flush(conn)
    return Decimal(res.amount)
