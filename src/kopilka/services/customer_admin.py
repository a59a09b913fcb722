"""Customers and cards for the console and the admin API: search, the customer's page,
and the support actions (points adjustment, cards, merge, consents).

Search is built for a program with a million members: every query is one indexed,
program-scoped lookup (docs/console/customers.md):

- a phone: normalised to E.164, the unique index ``customers (program_id, phone)``;
- a card number, QR token or RFID UID: the primary key ``identifiers (program_id, value)``;
- an e-mail: equality on the index ``customers (program_id, email)``;
- a name: a *prefix range* on ``customers (program_id, last_name)`` (``>= 'Смир'`` and
  ``< 'Смис'``), then the first name among those.  Never ``LIKE '%x%'``, which no
  B-tree index can answer and which reads every customer.

Every action checks the actor's permission and program, needs a reason, and writes an
audit row in the transaction of the change.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.identifiers import make_card_number
from kopilka.domain.ledger import ZERO, Balance, EntryKind, Lot, Take, balance_of
from kopilka.domain.money import fmt2
from kopilka.domain.roles import Perm
from kopilka.services import accounts, audit, cards, consents
from kopilka.services.customers import VIRTUAL_CARD_PREFIX
from kopilka.services.errors import ServiceError
from kopilka.services.phones import to_e164
from kopilka.services.pricing import tags_of
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from kopilka.store.queries.accounts import Posting, load_account
from kopilka.store.raw import SATx

cu, ac, cd, idf = t.customers, t.accounts, t.cards, t.identifiers
MIN_NAME = 2
SORTS = ("name", "registered", "balance")


# --- scope ------------------------------------------------------------------------------


async def program_code_of(rt: Runtime, customer_id: int) -> str:
    """The code of the program a customer belongs to (404 for an unknown id)."""
    async with rt.engine.connect() as conn:
        code = (
            await conn.execute(
                select(t.programs.c.code)
                .join(cu, cu.c.program_id == t.programs.c.id)
                .where(cu.c.id == customer_id)
            )
        ).scalar()
    if code is None:
        raise ServiceError("customer_not_found", f"no customer {customer_id}", field="customer_id")
    return str(code)


def check_scope(actor: audit.Actor, program_id: int) -> None:
    """An actor limited to one program reaches no other (403)."""
    if actor.program_id is not None and actor.program_id != program_id:
        raise ServiceError("forbidden", "this program is outside your scope", field=None)


# --- search -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    id: int
    first_name: str
    last_name: str
    middle_name: str
    phone: str | None
    email: str | None
    status: str
    registered_at: datetime
    balance: Decimal
    card: str | None

    @property
    def name(self) -> str:
        return " ".join(x for x in (self.last_name, self.first_name, self.middle_name) if x)


@dataclass(frozen=True)
class SearchResult:
    kind: str  # phone | identifier | email | name | empty | short
    items: list[Found]
    total: int


def _next_prefix(prefix: str) -> str:
    """The smallest string after every string that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _prefix(col: Any, prefix: str) -> Any:
    """``col`` starts with ``prefix``, as a range a B-tree index answers."""
    return and_(col >= prefix, col < _next_prefix(prefix))


def _as_stored(word: str) -> str:
    return word if any(ch.isupper() for ch in word) else word[:1].upper() + word[1:]


def _by_identifier(program_id: int, values: set[str]) -> Any:
    """Customers whose card has one of ``values`` as an identifier (the primary key)."""
    return cu.c.id.in_(
        select(cd.c.customer_id)
        .join(idf, idf.c.card_id == cd.c.id)
        .where(idf.c.program_id == program_id, idf.c.value.in_(sorted(values)))
        .scalar_subquery()
    )


def classify(q: str, program_id: int) -> tuple[str, list[Any]]:
    """What the typed text is, and the conditions that find it in the program."""
    text = " ".join(q.split())
    if not text:
        return "empty", []
    if "@" in text and " " not in text:
        return "email", [cu.c.email.in_({text, text.lower()})]
    digits = sum(ch.isdigit() for ch in text)
    conds: list[Any] = []
    kind = "name"
    if digits and all(ch.isdigit() or ch in "+()- " for ch in text):
        kind = "identifier"
        phone = to_e164(text) if 10 <= digits <= 12 else None
        if phone:
            kind = "phone"
            conds.append(cu.c.phone == phone)
        raw = text.replace(" ", "").replace("-", "")
        conds.append(_by_identifier(program_id, {text, raw}))
        conds.append(cu.c.external_id == text)  # an imported customer's old id
        return kind, [or_(*conds)]
    if " " not in text and any(ch.isdigit() for ch in text):
        # a QR token or an RFID UID: the identifiers' primary key; or the customer's id
        # in the chain's old system (imports): the (program_id, external_id) key
        return "identifier", [or_(_by_identifier(program_id, {text}), cu.c.external_id == text)]
    words = text.split(" ")
    last, first = words[0], " ".join(words[1:])
    if len(last) < MIN_NAME:
        return "short", []
    # Names are stored capitalised ("Кузнецова"): "кузн" means "Кузн".  Typed with a
    # capital somewhere ("McD"), the text is taken as it is.  One range: the index
    # returns the matches in name order, no sorting.
    conds = [_prefix(cu.c.last_name, _as_stored(last))]
    if first:
        conds.append(_prefix(cu.c.first_name, _as_stored(first)))
    return kind, conds


async def search(
    rt: Runtime,
    program_id: int,
    q: str,
    *,
    offset: int = 0,
    limit: int = 50,
    sort: str = "name",
    descending: bool = False,
) -> SearchResult:
    """One page of customers matching ``q`` (phone, card/QR/RFID, e-mail or name)."""
    kind, conds = classify(q, program_id)
    if not conds:
        return SearchResult(kind, [], 0)
    where = and_(cu.c.program_id == program_id, *conds)
    # The page's ids first, from the index alone where the order allows (name order is
    # the index's own: (program_id, last_name) then the row id); the details of these
    # few rows after.  SQLite computes a result column for every row it sorts, so
    # joining accounts and cards before the LIMIT would touch every match.
    order: list[Any] = {
        "name": [cu.c.last_name, cu.c.id],
        "registered": [cu.c.registered_at, cu.c.id],
        "balance": [ac.c.balance, cu.c.id],
    }.get(sort, [cu.c.last_name, cu.c.id])
    if descending:
        order = [x.desc() for x in order]
    source = cu.join(ac, ac.c.customer_id == cu.c.id) if sort == "balance" else cu
    page_q = select(cu.c.id).select_from(source).where(where).order_by(*order)
    card = (
        select(cd.c.number)
        .where(cd.c.customer_id == cu.c.id, cd.c.status == "active")
        .order_by(cd.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(cu).where(where))).scalar_one()
        ids = (
            (await conn.execute(page_q.offset(offset).limit(limit))).scalars().all()
            if total
            else []
        )
        rows = (
            (
                await conn.execute(
                    select(
                        cu.c.id,
                        cu.c.first_name,
                        cu.c.last_name,
                        cu.c.middle_name,
                        cu.c.phone,
                        cu.c.email,
                        cu.c.status,
                        cu.c.registered_at,
                        func.coalesce(ac.c.balance, 0).label("balance"),
                        card.label("card"),
                    )
                    .select_from(cu.outerjoin(ac, ac.c.customer_id == cu.c.id))
                    .where(cu.c.id.in_(list(ids)))
                )
            ).all()
            if ids
            else []
        )
    by_id = {r.id: r for r in rows}
    return SearchResult(
        kind,
        [
            Found(
                r.id,
                r.first_name,
                r.last_name,
                r.middle_name,
                r.phone,
                r.email,
                r.status,
                r.registered_at,
                Decimal(r.balance),
                r.card,
            )
            for r in (by_id[i] for i in ids if i in by_id)
        ],
        int(total),
    )


# --- the customer's page ----------------------------------------------------------------


@dataclass(frozen=True)
class CardView:
    id: int
    number: str
    kind: str
    status: str
    block_reason: str | None
    created_at: datetime
    qr_token: str | None
    rfid_uid: str | None
    replaced_by: str | None


@dataclass(frozen=True)
class CouponView:
    code: str
    series: str
    status: str
    uses: int
    valid_until: datetime | None


@dataclass
class CustomerView:
    id: int
    program_id: int
    first_name: str
    last_name: str
    middle_name: str
    phone: str | None
    email: str | None
    birthday: date | None
    gender: str | None
    consent_sms: bool
    consent_email: bool
    status: str
    registered_at: datetime
    phone_confirmed_at: datetime | None
    merged_into_id: int | None
    tags: list[str]
    rfm_segment: str | None
    account_id: int
    balance: Balance
    total: Decimal  # the account's balance: lots minus debt
    lots: list[Lot]
    tier: str | None
    tier_name: str | None
    discount_percent: Decimal | None
    cards: list[CardView] = field(default_factory=list)
    coupons: list[CouponView] = field(default_factory=list)
    external_id: str | None = None  # the id in the chain's own systems (imports)
    city: str | None = None  # where the member lives, as typed (the territorial map)
    # Partner id -> name, for the lots' funder and restriction (coalitions, ADR 0024).
    partners: dict[int, str] = field(default_factory=dict)
    partner_codes: dict[int, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return " ".join(x for x in (self.last_name, self.first_name, self.middle_name) if x)

    @property
    def active_cards(self) -> list[CardView]:
        return [x for x in self.cards if x.status == "active"]


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


async def get_customer(rt: Runtime, program_id: int, customer_id: int) -> CustomerView:
    """Identity, balance (available / pending / held), lots, tier, cards and coupons."""
    now = rt.now()
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(cu, ac.c.id.label("account_id"), ac.c.tier, ac.c.discount_percent)
                .select_from(cu.join(ac, ac.c.customer_id == cu.c.id))
                .where(cu.c.id == customer_id, cu.c.program_id == program_id)
            )
        ).first()
        if row is None:
            raise ServiceError(
                "customer_not_found", f"no customer {customer_id}", field="customer_id"
            )
        acc = await load_account(SATx(conn), row.account_id, lock=False)
        card_rows = (
            await conn.execute(
                select(cd).where(cd.c.customer_id == customer_id).order_by(cd.c.id.desc())
            )
        ).all()
        partner_rows = (
            await conn.execute(
                select(t.partners.c.id, t.partners.c.code, t.partners.c.name).where(
                    t.partners.c.program_id == program_id
                )
            )
        ).all()
        s, cp = t.coupon_series, t.coupons
        coupon_rows = (
            await conn.execute(
                select(cp.c.code, s.c.code.label("series"), cp.c.status, cp.c.uses, s.c.valid_until)
                .join(s, s.c.id == cp.c.series_id)
                .where(cp.c.program_id == program_id, cp.c.customer_id == customer_id)
                .order_by(cp.c.id.desc())
                .limit(50)
            )
        ).all()
    numbers = {r.id: r.number for r in card_rows}
    compiled = await rt.compiled(program_id)
    tier_name = None
    if compiled.doc.tiers is not None:
        tier = compiled.tiers.get(row.tier or "") or compiled.doc.tiers.levels[0]
        tier_name = tier.name
    return CustomerView(
        id=row.id,
        program_id=program_id,
        first_name=row.first_name,
        last_name=row.last_name,
        middle_name=row.middle_name,
        city=row.city,
        phone=row.phone,
        email=row.email,
        birthday=_date(row.birthday),
        gender=row.gender,
        consent_sms=bool(row.consent_sms),
        consent_email=bool(row.consent_email),
        status=row.status,
        registered_at=row.registered_at,
        phone_confirmed_at=row.phone_confirmed_at,
        merged_into_id=row.merged_into_id,
        tags=sorted(tags_of(row.tags)),
        rfm_segment=row.rfm_segment,
        account_id=row.account_id,
        balance=balance_of(acc.lots, held=acc.held, debt=acc.debt, now=now),
        total=acc.balance,
        lots=sorted(acc.lots, key=lambda x: (x.expires_at is None, x.expires_at or now, x.id)),
        tier=row.tier,
        tier_name=tier_name,
        discount_percent=None if row.discount_percent is None else Decimal(row.discount_percent),
        external_id=row.external_id,
        partners={int(r.id): str(r.name) for r in partner_rows},
        partner_codes={int(r.id): str(r.code) for r in partner_rows},
        cards=[
            CardView(
                r.id,
                r.number,
                r.kind,
                r.status,
                r.block_reason,
                r.created_at,
                r.qr_token,
                r.rfid_uid,
                numbers.get(r.replaced_by_id) if r.replaced_by_id else None,
            )
            for r in card_rows
        ],
        coupons=[
            CouponView(r.code, r.series, r.status, r.uses, r.valid_until) for r in coupon_rows
        ],
    )


@dataclass(frozen=True)
class ReceiptRow:
    id: int
    pos_receipt_id: str
    occurred_at: datetime
    store: str
    state: str
    amount: Decimal
    discount: Decimal
    to_pay: Decimal
    points_earned: Decimal
    points_redeemed: Decimal


RECEIPT_SORTS = ("occurred_at", "amount")


async def receipts(
    rt: Runtime,
    program_id: int,
    account_id: int,
    *,
    offset: int = 0,
    limit: int = 20,
    sort: str = "occurred_at",
    descending: bool = True,
) -> tuple[list[ReceiptRow], int]:
    """The account's receipts, newest first (index ``(program_id, account_id, occurred_at)``)."""
    r = t.receipts
    where = and_(r.c.program_id == program_id, r.c.account_id == account_id)
    col = r.c.amount if sort == "amount" else r.c.occurred_at
    order = [col.desc(), r.c.id.desc()] if descending else [col, r.c.id]
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(r).where(where))).scalar_one()
        rows = (
            await conn.execute(
                select(r, t.stores.c.name.label("store"))
                .join(t.stores, t.stores.c.id == r.c.store_id)
                .where(where)
                .order_by(*order)
                .offset(offset)
                .limit(limit)
            )
        ).all()
    return [
        ReceiptRow(
            x.id,
            x.pos_receipt_id,
            x.occurred_at,
            x.store,
            x.state,
            x.amount,
            x.discount,
            x.to_pay,
            x.points_earned,
            x.points_redeemed,
        )
        for x in rows
    ], int(total)


@dataclass(frozen=True)
class Movement:
    id: int
    created_at: datetime
    kind: str
    amount: Decimal
    held_delta: Decimal
    receipt_pk: int | None
    note: str | None


async def movements(
    rt: Runtime,
    program_id: int,
    account_id: int,
    *,
    offset: int = 0,
    limit: int = 20,
    descending: bool = True,
) -> tuple[list[Movement], int]:
    """The account's ledger entries (index ``(program_id, account_id, id)``)."""
    le = t.ledger_entries
    where = and_(le.c.program_id == program_id, le.c.account_id == account_id)
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(le).where(where))).scalar_one()
        rows = (
            await conn.execute(
                select(le)
                .where(where)
                .order_by(le.c.id.desc() if descending else le.c.id)
                .offset(offset)
                .limit(limit)
            )
        ).all()
    return [
        Movement(x.id, x.created_at, x.kind, x.amount, x.held_delta, x.receipt_pk, x.note)
        for x in rows
    ], int(total)


async def history(
    rt: Runtime, program_id: int, customer_id: int, *, offset: int = 0, limit: int = 20
) -> tuple[list[audit.AuditRow], int]:
    """Audit rows about this customer, its account and its cards, newest first."""
    a = t.audit_log
    async with rt.engine.connect() as conn:
        numbers = (
            (await conn.execute(select(cd.c.number).where(cd.c.customer_id == customer_id)))
            .scalars()
            .all()
        )
        account_id = (
            await conn.execute(select(ac.c.id).where(ac.c.customer_id == customer_id))
        ).scalar_one_or_none()
        where = or_(
            and_(a.c.object_type == "customer", a.c.object_id == str(customer_id)),
            and_(a.c.object_type == "account", a.c.object_id == str(account_id)),
            and_(a.c.object_type == "card", a.c.object_id.in_(list(numbers) or [""])),
        )
        where = and_(where, a.c.program_id == program_id)
        total = (await conn.execute(select(func.count()).select_from(a).where(where))).scalar_one()
        rows = (
            await conn.execute(
                select(a).where(where).order_by(a.c.id.desc()).offset(offset).limit(limit)
            )
        ).all()
    return [audit._row(r) for r in rows], int(total)


# --- actions ----------------------------------------------------------------------------


async def _customer_row(conn: AsyncConnection, program_id: int, customer_id: int) -> Any:
    row = (
        await conn.execute(
            select(cu, ac.c.id.label("account_id"))
            .select_from(cu.join(ac, ac.c.customer_id == cu.c.id))
            .where(cu.c.id == customer_id, cu.c.program_id == program_id)
        )
    ).first()
    if row is None:
        raise ServiceError("customer_not_found", f"no customer {customer_id}", field="customer_id")
    return row


def _not_merged(row: Any, field: str = "customer_id") -> None:
    if row.status == "merged":
        raise ServiceError(
            "conflict",
            f"customer {row.id} was merged into {row.merged_into_id}",
            field=field,
        )


async def adjust(
    rt: Runtime,
    actor: audit.Actor,
    program_id: int,
    customer_id: int,
    amount: Decimal,
    *,
    reason: str | None,
) -> dict[str, Any]:
    """Credit (``amount`` > 0) or debit points by hand, with a reason (audit row)."""
    actor.require(Perm.CUSTOMERS_WRITE)
    check_scope(actor, program_id)
    audit.require_reason(reason)
    async with rt.engine.connect() as conn:
        row = await _customer_row(conn, program_id, customer_id)
    _not_merged(row)
    return await accounts.do_adjust(
        rt, row.account_id, amount, program_id=program_id, actor=actor, reason=reason
    )


async def block_card(
    rt: Runtime, actor: audit.Actor, program_id: int, number: str, *, reason: str | None
) -> int:
    actor.require(Perm.CARDS_BLOCK)
    check_scope(actor, program_id)
    audit.require_reason(reason)
    return await cards.do_block_card(
        rt, number.strip(), reason=reason or "", actor=actor, program_id=program_id
    )


async def unblock_card(
    rt: Runtime, actor: audit.Actor, program_id: int, number: str, *, reason: str | None
) -> int:
    actor.require(Perm.CARDS_BLOCK)
    check_scope(actor, program_id)
    audit.require_reason(reason)
    return await cards.do_unblock_card(
        rt, number.strip(), reason=reason, actor=actor, program_id=program_id
    )


async def replace_card(
    rt: Runtime,
    actor: audit.Actor,
    program_id: int,
    old: str,
    new: str,
    *,
    reason: str | None,
) -> int:
    """A lost card's successor on the same account: the balance stays with the customer."""
    actor.require(Perm.CUSTOMERS_WRITE)
    check_scope(actor, program_id)
    audit.require_reason(reason)
    if not new.strip():
        raise ServiceError("validation_failed", "type the new card's number", field="new")
    return await cards.do_replace_card(
        rt, old.strip(), new.strip(), actor=actor, reason=reason, program_id=program_id
    )


async def issue_virtual_card(
    rt: Runtime, actor: audit.Actor, program_id: int, customer_id: int, *, reason: str | None
) -> str:
    """A new virtual card on the customer's account; its number is random (as at
    registration: a virtual number must not reveal its neighbours)."""
    actor.require(Perm.CUSTOMERS_WRITE)
    check_scope(actor, program_id)
    why = audit.require_reason(reason)
    now = rt.now()
    for _ in range(5):
        number = make_card_number(VIRTUAL_CARD_PREFIX, secrets.randbelow(10**10))
        try:
            async with rt.engine.begin() as conn:
                row = await _customer_row(conn, program_id, customer_id)
                _not_merged(row)
                card_id = await insert_id(
                    conn,
                    cd,
                    {
                        "program_id": program_id,
                        "account_id": row.account_id,
                        "customer_id": customer_id,
                        "number": number,
                        "kind": "virtual",
                        "created_at": now,
                    },
                )
                await conn.execute(
                    idf.insert(),
                    {"program_id": program_id, "value": number, "kind": "card", "card_id": card_id},
                )
                await audit.record(
                    conn,
                    actor,
                    "card.issue_virtual",
                    "customer",
                    customer_id,
                    at=now,
                    program_id=program_id,
                    reason=why,
                    after={"card": number, "kind": "virtual"},
                )
            return number
        except IntegrityError:
            continue  # the random number is taken: draw another
    raise ServiceError("conflict", "could not draw a free card number; try again", field=None)


async def set_consents(
    rt: Runtime,
    actor: audit.Actor,
    program_id: int,
    customer_id: int,
    *,
    sms: bool,
    email: bool,
    reason: str | None,
) -> None:
    actor.require(Perm.CUSTOMERS_WRITE)
    check_scope(actor, program_id)
    why = audit.require_reason(reason)
    async with rt.engine.begin() as conn:
        row = await _customer_row(conn, program_id, customer_id)
        before = {"consent_sms": bool(row.consent_sms), "consent_email": bool(row.consent_email)}
        after = {"consent_sms": sms, "consent_email": email}
        await conn.execute(
            update(cu).where(cu.c.id == customer_id).values(consent_sms=sms, consent_email=email)
        )
        await consents.record(
            conn,
            program_id=program_id,
            customer_id=customer_id,
            changes={
                ch: now
                for ch, was, now in (
                    ("sms", before["consent_sms"], sms),
                    ("email", before["consent_email"], email),
                )
                if was != now
            },
            at=rt.now(),
            source="admin",
            actor=f"{actor.kind}:{actor.name}",
        )
        await audit.record(
            conn,
            actor,
            "customer.consents",
            "customer",
            customer_id,
            at=rt.now(),
            program_id=program_id,
            reason=why,
            before=before,
            after=after,
        )


CITY_MAX = 100


async def set_city(
    rt: Runtime,
    actor: audit.Actor,
    program_id: int,
    customer_id: int,
    *,
    city: str,
    reason: str | None,
) -> None:
    """Where the member lives, as typed ("" clears it); the territorial map geocodes it."""
    actor.require(Perm.CUSTOMERS_WRITE)
    check_scope(actor, program_id)
    why = audit.require_reason(reason)
    value = " ".join(city.split()) or None
    if value is not None and len(value) > CITY_MAX:
        raise ServiceError("invalid_city", f"city: at most {CITY_MAX} characters", field="city")
    if value is not None and any(ch.isdigit() or ord(ch) < 32 for ch in value):
        raise ServiceError("invalid_city", "city: a town's name, without digits", field="city")
    async with rt.engine.begin() as conn:
        row = await _customer_row(conn, program_id, customer_id)
        _not_merged(row)
        await conn.execute(update(cu).where(cu.c.id == customer_id).values(city=value))
        await audit.record(
            conn,
            actor,
            "customer.city",
            "customer",
            customer_id,
            at=rt.now(),
            program_id=program_id,
            reason=why,
            before={"city": row.city},
            after={"city": value},
        )


async def merge(
    rt: Runtime,
    actor: audit.Actor,
    program_id: int,
    survivor_id: int,
    absorbed_id: int,
    *,
    reason: str | None,
) -> dict[str, Any]:
    """Merge a duplicate: the absorbed customer's points, cards and identifiers move to
    the survivor; the absorbed customer stays, with status ``merged``.

    Points move lot by lot through ledger entries (``adjust`` out of the absorbed
    account, ``adjust`` into a lot with the same activation and expiry on the survivor),
    funded by the lot's own funding party, so ``kopilka ledger verify`` stays clean and
    nothing expires earlier or later than it would have.  A debt moves as a debt.  Both
    accounts are locked in id order (no deadlock with a merge the other way round);
    accounts with points held by an unfinished receipt are refused.
    """
    actor.require(Perm.CUSTOMERS_WRITE)
    check_scope(actor, program_id)
    why = audit.require_reason(reason)
    if survivor_id == absorbed_id:
        raise ServiceError("validation_failed", "choose another customer", field="other")
    now = rt.now()
    note = f"merge {absorbed_id} into {survivor_id}"
    async with rt.engine.begin() as conn:
        keep = await _customer_row(conn, program_id, survivor_id)
        gone = await _customer_row(conn, program_id, absorbed_id)
        _not_merged(keep)
        _not_merged(gone, "other")
        tx = SATx(conn)
        first, second = sorted((keep.account_id, gone.account_id))
        locked = {
            first: await load_account(tx, first, lock=True),
            second: await load_account(tx, second, lock=True),
        }
        into, out = locked[keep.account_id], locked[gone.account_id]
        # Read again after the locks: a merge the other way round may have just committed
        # (PostgreSQL's READ COMMITTED shows it to this new statement).
        keep = await _customer_row(conn, program_id, survivor_id)
        gone = await _customer_row(conn, program_id, absorbed_id)
        _not_merged(keep)
        _not_merged(gone, "other")
        if into.held > 0 or out.held > 0:
            raise ServiceError(
                "conflict",
                "points are held by an unfinished purchase; try again when it is closed",
                field="other" if out.held > 0 else "customer_id",
            )
        before = {
            "survivor_balance": fmt2(into.balance),
            "absorbed_balance": fmt2(out.balance),
            "absorbed_debt": fmt2(out.debt),
        }
        moved = ZERO
        lt = t.lots
        funders = {
            r.id: r.funding_partner_id
            for r in (
                await conn.execute(
                    select(lt.c.id, lt.c.funding_partner_id).where(
                        lt.c.program_id == program_id,
                        lt.c.account_id == out.id,
                        lt.c.remaining > 0,
                    )
                )
            ).all()
        }
        for lot in list(out.lots):
            if lot.remaining <= 0:
                continue
            funder = funders.get(lot.id)
            p_out = Posting(out, now, funding_partner_id=funder)
            p_out.take([Take(lot.id, lot.remaining)], EntryKind.ADJUST)
            await p_out.flush(tx, note=note)
            p_in = Posting(into, now, funding_partner_id=funder)
            p_in.earn(
                lot.remaining,
                debt_paid=ZERO,
                activates_at=lot.activates_at,
                expires_at=lot.expires_at,
                kind=EntryKind.ADJUST,
                burn_at=lot.burn_partner_id,
            )
            await p_in.flush(tx, note=note)
            moved += lot.remaining
        if out.debt > 0:
            debt = out.debt
            p_out = Posting(out, now)
            p_out.earn(
                debt, debt_paid=debt, activates_at=now, expires_at=None, kind=EntryKind.ADJUST
            )
            await p_out.flush(tx, note=note)
            p_in = Posting(into, now)
            p_in.add_debt(debt, EntryKind.ADJUST)
            await p_in.flush(tx, note=note)
        moved_cards = (
            (await conn.execute(select(cd.c.number).where(cd.c.customer_id == absorbed_id)))
            .scalars()
            .all()
        )
        await conn.execute(
            update(cd)
            .where(cd.c.customer_id == absorbed_id)
            .values(customer_id=survivor_id, account_id=keep.account_id)
        )
        await conn.execute(
            update(t.coupons)
            .where(t.coupons.c.program_id == program_id, t.coupons.c.customer_id == absorbed_id)
            .values(customer_id=survivor_id)
        )
        await conn.execute(
            update(cu)
            .where(cu.c.id == absorbed_id)
            .values(status="merged", merged_into_id=survivor_id)
        )
        after = {
            "survivor_balance": fmt2(into.balance),
            "absorbed_balance": fmt2(out.balance),
            "points_moved": fmt2(moved),
            "cards_moved": list(moved_cards),
        }
        for cid, role in ((survivor_id, "survivor"), (absorbed_id, "absorbed")):
            await audit.record(
                conn,
                actor,
                "customer.merge",
                "customer",
                cid,
                at=now,
                program_id=program_id,
                reason=why,
                before={
                    "role": role,
                    "survivor_id": survivor_id,
                    "absorbed_id": absorbed_id,
                    **before,
                },
                after=after,
            )
    return {
        "survivor_id": survivor_id,
        "absorbed_id": absorbed_id,
        "points_moved": fmt2(moved),
        "cards_moved": list(moved_cards),
        "balance": fmt2(into.balance),
    }


def parse_amount(raw: str, *, field: str = "amount") -> Decimal:
    """A typed number of points (``1 234,5`` or ``-100``) as Decimal; never float."""
    text = raw.strip().replace(" ", "").replace("\u00a0", "").replace(",", ".")
    if text.startswith("+"):
        text = text[1:]
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise ServiceError(
            "validation_failed", "type a number, e.g. 150 or -20.5", field=field
        ) from None
    if not value.is_finite():
        raise ServiceError("validation_failed", "type a number, e.g. 150 or -20.5", field=field)
    return value
