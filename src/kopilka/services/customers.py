"""Identify a customer at the till; register a new one (with a one-time SMS code)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.identifiers import (
    is_valid_card_number,
    make_card_number,
    mask_card,
    mask_name,
)
from kopilka.domain.ledger import balance_at
from kopilka.domain.money import ZERO, fmt2
from kopilka.domain.rules.compiler import CompiledProgram
from kopilka.domain.rules.engine import card_discount_percent
from kopilka.domain.rules.facts import CustomerContext
from kopilka.services import audit, consents, sms_caps, views
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.offers import offers_view
from kopilka.services.pricing import tags_of
from kopilka.services.purchases import identifier_values
from kopilka.services.runtime import Runtime, Terminal
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from kopilka.store.queries.accounts import AccountState, held_at, load_for_lookup
from kopilka.store.raw import dec2, parse_ts

VIRTUAL_CARD_PREFIX = "29"
EXPIRING_SOON_DAYS = 30
BIRTHDAY_WINDOW_DAYS = 7


async def check_lookup(rt: Runtime, term: Terminal, identifier: str) -> dict[str, Any]:
    """Everything the cashier needs before the sale; reads only."""
    now = rt.now()
    compiled = await rt.compiled(term.program_id)
    values = identifier_values(identifier)
    async with rt.hot.lookup() as tx:  # the replica, when there is one (ADR 0032)
        # The account with its lots, the customer's own fields and the last five receipts
        # (one statement on PostgreSQL, two on SQLite): one row per receipt (the
        # customer's fields repeated), or one row of NULLs if none.
        acc, rows = await load_for_lookup(tx, program_id=term.program_id, values=values)
        if acc is None:
            raise ServiceError(
                "unknown_identifier", "no customer with this identifier", field="identifier"
            )
        if acc.customer_xmin is not None:  # PostgreSQL: for the calculate (ADR 0040)
            rt.remember_looked_up(term.program_id, tuple(values), acc)
        # What can be burned at this till (ADR 0024); the holds-by-partner read only
        # for an account with lots restricted to one partner.
        holds = await held_at(tx, acc)
        offers: list[dict[str, Any]] = []
        if compiled.reads[2]:  # only programs with personal promotions pay for the read
            offers = await offers_view(
                tx, compiled, program_id=term.program_id, customer_id=acc.customer_id, now=now
            )
    cust = rows[0]
    recent = [x[2:] for x in rows if x[2] is not None]
    birthday = (
        cust[0]
        if isinstance(cust[0], date) or cust[0] is None
        else (date.fromisoformat(str(cust[0])))
    )
    phone_confirmed = cust[1] is not None
    bal = balance_at(
        acc.lots, at=term.partner_id, held=acc.held, held_at=holds, debt=acc.debt, now=now
    )
    soon = now + timedelta(days=EXPIRING_SOON_DAYS)
    expiring = sum(
        (
            x.remaining
            for x in acc.lots
            if x.is_active(now) and x.expires_at and x.expires_at <= soon
        ),
        bal.held * 0,
    )
    first_expiry = min(
        (
            x.expires_at
            for x in acc.lots
            if x.is_active(now) and x.expires_at and x.expires_at <= soon
        ),
        default=None,
    )
    messages = []
    if birthday is not None and _birthday_near(birthday, now.date()):
        messages.append(
            {
                "code": "birthday",
                "text": "У покупателя день рождения на этой неделе",
                "text_en": "The customer's birthday is this week",
            }
        )
    if expiring > 0:
        messages.append(
            {
                "code": "points_expiring",
                "text": f"{fmt2(expiring)} баллов сгорят {first_expiry:%d.%m.%Y}",
                "text_en": f"{fmt2(expiring)} points expire on {first_expiry:%Y-%m-%d}",
            }
        )
    if acc.debt > 0:
        messages.append(
            {
                "code": "negative_balance",
                "text": f"Долг по баллам: {fmt2(acc.debt)}",
                "text_en": f"Points owed after refunds: {fmt2(acc.debt)}",
            }
        )
    return {
        "customer": {
            "id": acc.customer_id,
            "name": mask_name(acc.first_name, acc.last_name),
            "phone_confirmed": phone_confirmed,
        },
        "card": {"number": mask_card(acc.card_number), "status": acc.card_status},
        "tier": _tier_view(compiled, acc.tier),
        "balance": {**views.balance_view(bal), "debt": fmt2(acc.debt)},
        "discount_percent": _discount_view(compiled, acc),
        "offers": offers,
        "recommendations": [],
        "last_purchases": [
            {
                "receipt_id": x[0],
                "occurred_at": views.iso(parse_ts(x[1])),
                "store": x[5],
                "to_pay": fmt2(dec2(x[2])),
                "points_earned": fmt2(dec2(x[3])),
                "points_redeemed": fmt2(dec2(x[4])),
            }
            for x in recent
        ],
        "messages": messages,
    }


def _discount_view(compiled: CompiledProgram, acc: AccountState) -> str | None:
    """The card's discount percent, when the program gives one."""
    doc = compiled.doc
    tier_discounts = any(t.discount_percent is not None for t in compiled.tiers.values())
    if doc.discount is None and doc.cumulative is None and not tier_discounts:
        return None  # the program gives no card discount
    ctx = CustomerContext(
        account_id=acc.id,
        available=ZERO,
        tier=acc.tier or (doc.tiers.levels[0].code if doc.tiers else None),
        discount_percent=acc.discount_percent,
        tags=tags_of(acc.tags),
    )
    return fmt2(card_discount_percent(compiled, ctx))


def _tier_view(compiled: CompiledProgram, code: str | None) -> dict[str, str] | None:
    rules = compiled.doc.tiers
    if rules is None:
        return None
    tier = compiled.tiers.get(code or "") or rules.levels[0]
    return {"code": tier.code, "name": tier.name}


def _birthday_near(birthday: date, today: date) -> bool:
    for delta in range(-BIRTHDAY_WINDOW_DAYS // 2, BIRTHDAY_WINDOW_DAYS // 2 + 1):
        d = today + timedelta(days=delta)
        if (d.month, d.day) == (birthday.month, birthday.day):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Registration:
    phone: str  # E.164, validated at the edge
    first_name: str = ""
    last_name: str = ""
    middle_name: str = ""
    email: str | None = None
    birthday: date | None = None
    gender: str | None = None
    card_number: str | None = None
    consent_sms: bool = False
    consent_email: bool = False
    invite_code: str | None = None
    device_id: str | None = None


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def do_register(
    rt: Runtime, term: Terminal, reg: Registration, *, actor: Actor | None = None
) -> dict[str, Any]:
    """Create customer, account and card (a new virtual card if none is given), send the
    one-time code by SMS through the outbox.  One transaction; with ``actor`` (a person
    registering at the console's cashier screen) its audit row lands in it too."""
    now = rt.now()
    if reg.card_number is not None and not is_valid_card_number(reg.card_number):
        raise ServiceError(
            "validation_failed", "card number check digit is wrong", field="card_number"
        )
    try:
        async with rt.engine.begin() as conn:
            cust_id = await insert_id(
                conn,
                t.customers,
                {
                    "program_id": term.program_id,
                    "first_name": reg.first_name,
                    "last_name": reg.last_name,
                    "middle_name": reg.middle_name,
                    "phone": reg.phone,
                    "email": reg.email,
                    "birthday": reg.birthday,
                    "gender": reg.gender,
                    "consent_sms": reg.consent_sms,
                    "consent_email": reg.consent_email,
                    "home_store_id": term.store_id,
                    "registered_at": now,
                    "device_id": reg.device_id,
                },
            )
            card_number, card_id = await create_account_and_card(
                conn,
                program_id=term.program_id,
                customer_id=cust_id,
                now=now,
                card_number=reg.card_number,
                phone=reg.phone,
            )
            await sms_caps.check_and_count(
                conn,
                rt.sms_caps,
                program_id=term.program_id,
                phone=reg.phone,
                now=now,
                terminal_id=term.id,
            )
            # registering at the till is agreeing to the program's processing of the data
            await consents.record(
                conn,
                program_id=term.program_id,
                customer_id=cust_id,
                changes={"pd": True}
                | ({"sms": True} if reg.consent_sms else {})
                | ({"email": True} if reg.consent_email else {}),
                at=now,
                source="till",
                actor=f"terminal:{term.id}" if actor is None else f"{actor.kind}:{actor.name}",
            )
            await _send_phone_code(conn, term.program_id, cust_id, reg.phone, now)
            if actor is not None:
                await audit.record(
                    conn,
                    actor,
                    "customer.register",
                    "customer",
                    cust_id,
                    at=now,
                    program_id=term.program_id,
                    partner_id=term.partner_id,
                    after={"store_id": term.store_id, "terminal_id": term.id, "card": card_number},
                )
    except IntegrityError as exc:
        msg = str(exc.orig).lower()
        if "phone" in msg or ("identifiers" in msg and reg.card_number is None):
            raise ServiceError(
                "already_registered", "a customer with this phone exists", field="phone"
            ) from None
        raise ServiceError(
            "card_taken", "this card number belongs to another customer", field="card_number"
        ) from None
    out: dict[str, Any] = {
        "customer_id": cust_id,
        "card": {"number": card_number, "id": card_id},
        "phone_confirmation": "sms_sent",
    }
    if reg.invite_code is not None:  # after commit: the registration stands either way
        from kopilka.services import referrals

        try:
            await referrals.do_register_referral(
                rt,
                program_id=term.program_id,
                friend_customer_id=cust_id,
                invite_code=reg.invite_code,
            )
            out["referral"] = {"status": "pending", "reason": None}
        except ServiceError as exc:
            out["referral"] = {"status": "rejected", "reason": exc.code}
    return out


CODE_TTL = timedelta(minutes=10)
RESEND_AFTER = timedelta(seconds=60)
CODES_PER_DAY = 5


async def _send_phone_code(
    conn: AsyncConnection, program_id: int, customer_id: int, phone: str, now: datetime
) -> None:
    """A new one-time code, stored hashed, sent by SMS through the outbox."""
    code = f"{secrets.randbelow(10**6):06d}"
    await conn.execute(
        insert(t.phone_codes),
        {
            "program_id": program_id,
            "customer_id": customer_id,
            "code_hash": hash_code(code),
            "expires_at": now + CODE_TTL,
        },
    )
    await conn.execute(
        insert(t.outbox),
        {
            "program_id": program_id,
            "topic": "sms.send",
            "created_at": now,
            "payload": orjson.dumps({"to": phone, "template": "phone_code", "code": code}).decode(),
        },
    )


async def do_resend_code(rt: Runtime, term: Terminal, customer_id: int) -> dict[str, Any]:
    """A new code for a phone not yet confirmed: at most one a minute and five a day."""
    now = rt.now()
    pc = t.phone_codes
    async with rt.engine.begin() as conn:
        cust = (
            await conn.execute(
                select(t.customers.c.phone, t.customers.c.phone_confirmed_at).where(
                    t.customers.c.id == customer_id, t.customers.c.program_id == term.program_id
                )
            )
        ).first()
        if cust is None or cust.phone is None:
            raise ServiceError(
                "customer_not_found", f"no customer {customer_id}", field="customer_id"
            )
        if cust.phone_confirmed_at is not None:
            raise ServiceError(
                "phone_already_confirmed", "the phone is already confirmed", field="customer_id"
            )
        sent = (
            (
                await conn.execute(
                    select(pc.c.expires_at).where(
                        pc.c.customer_id == customer_id,
                        pc.c.expires_at > now - timedelta(days=1) + CODE_TTL,
                    )
                )
            )
            .scalars()
            .all()
        )
        last_sent = max((x - CODE_TTL for x in sent), default=None)
        if len(sent) >= CODES_PER_DAY or (last_sent and now - last_sent < RESEND_AFTER):
            wait = RESEND_AFTER if len(sent) < CODES_PER_DAY else timedelta(days=1)
            raise ServiceError(
                "too_many_attempts",
                "a code was sent recently; wait before asking for another",
                field="customer_id",
                retry_after_s=int(wait.total_seconds()),
            )
        await sms_caps.check_and_count(
            conn,
            rt.sms_caps,
            program_id=term.program_id,
            phone=cust.phone,
            now=now,
            terminal_id=term.id,
        )
        await _send_phone_code(conn, term.program_id, customer_id, cust.phone, now)
    return {"customer_id": customer_id, "phone_confirmation": "sms_sent"}


async def create_account_and_card(
    conn: AsyncConnection,
    *,
    program_id: int,
    customer_id: int,
    now: datetime,
    card_number: str | None,
    phone: str | None,
    kind: str = "plastic",
) -> tuple[str, int]:
    acc_id = await insert_id(
        conn,
        t.accounts,
        {
            "program_id": program_id,
            "customer_id": customer_id,
            "created_at": now,
            "updated_at": now,
        },
    )
    if card_number is None:
        kind = "virtual"
        # Random, not sequential: a virtual card number must not reveal its neighbours.
        card_number = make_card_number(VIRTUAL_CARD_PREFIX, secrets.randbelow(10**10))
    card_id = await insert_id(
        conn,
        t.cards,
        {
            "program_id": program_id,
            "account_id": acc_id,
            "customer_id": customer_id,
            "number": card_number,
            "kind": kind,
            "created_at": now,
        },
    )
    idents = [{"program_id": program_id, "value": card_number, "kind": "card", "card_id": card_id}]
    if phone:
        idents.append(
            {"program_id": program_id, "value": phone, "kind": "phone", "card_id": card_id}
        )
    await conn.execute(insert(t.identifiers), idents)
    return card_number, card_id


async def do_confirm_phone(
    rt: Runtime, term: Terminal, customer_id: int, code: str
) -> dict[str, Any]:
    now = rt.now()
    pc = t.phone_codes
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(pc.c.id, pc.c.code_hash, pc.c.expires_at, pc.c.attempts)
                .where(
                    pc.c.customer_id == customer_id,
                    pc.c.program_id == term.program_id,
                    pc.c.used_at.is_(None),
                )
                .order_by(pc.c.id.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            raise ServiceError(
                "customer_not_found", "no pending phone confirmation", field="customer_id"
            )
        if row.attempts >= 5:
            raise ServiceError(
                "too_many_attempts", "too many wrong codes; ask for a new code", field="code"
            )
        if row.expires_at <= now:
            raise ServiceError("code_expired", "the code expired", field="code")
        if not secrets.compare_digest(row.code_hash, hash_code(code)):
            await conn.execute(
                update(pc).where(pc.c.id == row.id).values(attempts=pc.c.attempts + 1)
            )
            wrong = True
        else:
            wrong = False
            await conn.execute(update(pc).where(pc.c.id == row.id).values(used_at=now))
            await conn.execute(
                update(t.customers)
                .where(t.customers.c.id == customer_id)
                .values(phone_confirmed_at=now)
            )
    if wrong:  # raised after commit, so the failed attempt is counted
        raise ServiceError("invalid_code", "the code is wrong", field="code")
    await _award_on_confirmation(rt, term.program_id, customer_id)
    return {"customer_id": customer_id, "phone_confirmed": True}


async def _award_on_confirmation(rt: Runtime, program_id: int, customer_id: int) -> None:
    """Welcome points, and points for registering a plastic card, when the program's
    document names them; after commit (on SQLite a second writer would wait)."""
    compiled = await rt.compiled(program_id)
    wanted = [a for a in ("welcome", "card_registered") if a in compiled.doc.activities]
    if not wanted:
        return
    from kopilka.services import activities

    if "card_registered" in wanted:
        async with rt.engine.connect() as conn:
            plastic = (
                await conn.execute(
                    select(t.cards.c.id).where(
                        t.cards.c.customer_id == customer_id, t.cards.c.kind == "plastic"
                    )
                )
            ).first()
        if plastic is None:
            wanted.remove("card_registered")
    for activity in wanted:
        await activities.do_award_customer(
            rt,
            program_id=program_id,
            customer_id=customer_id,
            activity=activity,
            rules=activities.rules_for(compiled),
        )
