"""What a member sees and does in the customer cabinet (issue 7): balance and expiring
points, receipts and point movements, coupons and offers, tier progress, cards, the
invite code, profile and consents, the export and deletion of personal data (152-FZ).

Every function takes the member's session: a member reaches only his own data.  Changes
are audited with the member as the actor (``Actor("member", customer_id, ...)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain import qr
from kopilka.domain.identifiers import is_valid_card_number
from kopilka.domain.ledger import Balance, balance_of
from kopilka.domain.money import ZERO
from kopilka.services import audit, consents, erasure, member_auth, programs
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.member_auth import MemberSession
from kopilka.services.offers import offers_view
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.queries.accounts import load_account

cu = t.customers
DELETE_WORD = "DELETE"


async def program_by_code(rt: Runtime, code: str) -> programs.ProgramSummary:
    found = await programs.list_programs(rt, code=code)
    if not found:
        raise ServiceError("program_not_found", f"no program {code!r}", field="program")
    return found[0]


def member_actor(s: MemberSession, name: str = "", ip: str | None = None) -> Actor:
    return Actor(
        "member", s.customer_id, name or f"member {s.customer_id}", "member", ip, s.program_id
    )


@dataclass(frozen=True, slots=True)
class Card:
    number: str
    kind: str
    status: str


@dataclass(frozen=True, slots=True)
class TierProgress:
    name: str
    next_name: str | None
    qualify_by: str  # spend | visits
    measure: Decimal  # spend (roubles) or visits over the period so far
    needed: Decimal  # how much more for the next tier (0 at the top)
    period_days: int


@dataclass
class Overview:
    customer_id: int
    account_id: int
    first_name: str
    last_name: str
    middle_name: str
    phone: str | None
    email: str | None
    birthday: date | None
    consent_sms: bool
    consent_email: bool
    balance: Balance
    expiring: list[tuple[datetime, Decimal]]  # (last moment, points) soonest first
    cards: list[Card]
    tier: TierProgress | None
    offers: list[dict[str, Any]] = field(default_factory=list)
    coupons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def card_number(self) -> str:
        live = [c for c in self.cards if c.status == "active"]
        virtual = [c for c in live if c.kind == "virtual"]
        return (virtual or live or self.cards)[0].number if self.cards else ""

    @property
    def name(self) -> str:
        return " ".join(x for x in (self.first_name, self.last_name) if x)


async def _customer(conn: AsyncConnection, s: MemberSession) -> Any:
    a = t.accounts
    row = (
        await conn.execute(
            select(cu, a.c.id.label("account_id"), a.c.tier)
            .join(a, a.c.customer_id == cu.c.id)
            .where(cu.c.id == s.customer_id, cu.c.program_id == s.program_id)
        )
    ).first()
    if row is None:
        raise ServiceError("customer_not_found", "no such member", field="customer")
    return row


async def overview(rt: Runtime, s: MemberSession) -> Overview:
    now = rt.now()
    compiled = await rt.compiled(s.program_id)
    async with rt.engine.connect() as conn:
        row = await _customer(conn, s)
        cards = [
            Card(r.number, r.kind, r.status)
            for r in await conn.execute(
                select(t.cards.c.number, t.cards.c.kind, t.cards.c.status)
                .where(t.cards.c.customer_id == s.customer_id)
                .order_by(t.cards.c.id)
            )
        ]
        coupons = [
            {"code": r.code, "name": r.name, "valid_until": r.valid_until}
            for r in await conn.execute(
                select(t.coupons.c.code, t.coupon_series.c.name, t.coupon_series.c.valid_until)
                .join(t.coupon_series, t.coupon_series.c.id == t.coupons.c.series_id)
                .where(
                    t.coupons.c.customer_id == s.customer_id,
                    t.coupons.c.status == "active",
                )
                .order_by(t.coupons.c.id)
            )
        ]
        tier = await _tier_progress(conn, compiled, row, now)
    async with rt.hot.read() as tx:
        acc = await load_account(tx, row.account_id, lock=False)
        offers = await offers_view(
            tx, compiled, program_id=s.program_id, customer_id=s.customer_id, now=now
        )
    bal = balance_of(acc.lots, held=acc.held, debt=acc.debt, now=now)
    by_day: dict[datetime, Decimal] = {}
    for lot in acc.lots:
        if lot.is_active(now) and lot.expires_at is not None and lot.remaining > 0:
            last = lot.expires_at - timedelta(seconds=1)  # the last moment to spend them
            by_day[last] = by_day.get(last, ZERO) + lot.remaining
    return Overview(
        s.customer_id,
        row.account_id,
        row.first_name,
        row.last_name,
        row.middle_name,
        row.phone,
        row.email,
        row.birthday,
        bool(row.consent_sms),
        bool(row.consent_email),
        bal,
        sorted(by_day.items())[:10],
        cards,
        tier,
        offers,
        [c for c in coupons if c["valid_until"] is None or c["valid_until"] > now],
    )


async def _tier_progress(
    conn: AsyncConnection, compiled: Any, row: Any, now: datetime
) -> TierProgress | None:
    rules = compiled.doc.tiers
    if rules is None:
        return None
    levels = rules.levels
    current = next((x for x in levels if x.code == row.tier), levels[0])
    idx = levels.index(current)
    nxt = levels[idx + 1] if idx + 1 < len(levels) else None
    r = t.receipts
    got = (
        await conn.execute(
            select(func.coalesce(func.sum(r.c.to_pay), 0), func.count()).where(
                r.c.program_id == row.program_id,
                r.c.account_id == row.account_id,
                r.c.state == "confirmed",
                r.c.occurred_at >= now - timedelta(days=rules.period_days),
            )
        )
    ).first()
    assert got is not None
    measure = Decimal(str(got[0])) if rules.qualify_by == "spend" else Decimal(got[1])
    needed = max(nxt.threshold - measure, ZERO) if nxt is not None else ZERO
    return TierProgress(
        current.name,
        None if nxt is None else nxt.name,
        rules.qualify_by,
        measure.quantize(Decimal("0.01")),
        needed.quantize(Decimal("0.01")),
        rules.period_days,
    )


# --- history -------------------------------------------------------------------------------


async def receipts_page(
    rt: Runtime, s: MemberSession, *, offset: int = 0, limit: int = 10
) -> tuple[list[dict[str, Any]], int]:
    """The member's confirmed receipts, newest first."""
    r = t.receipts
    account = select(t.accounts.c.id).where(t.accounts.c.customer_id == s.customer_id)
    where = and_(
        r.c.program_id == s.program_id,
        r.c.account_id == account.scalar_subquery(),  # the (program, account, time) index
        r.c.state == "confirmed",
    )
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(r).where(where))).scalar_one()
        rows = await conn.execute(
            select(
                r.c.pos_receipt_id,
                r.c.occurred_at,
                r.c.amount,
                r.c.to_pay,
                r.c.points_earned,
                r.c.points_redeemed,
                r.c.state,
                t.stores.c.name.label("store"),
            )
            .join(t.stores, t.stores.c.id == r.c.store_id)
            .where(where)
            .order_by(r.c.occurred_at.desc(), r.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [{str(k): v for k, v in x._mapping.items()} for x in rows], int(total)


async def movements_page(
    rt: Runtime, s: MemberSession, account_id: int, *, offset: int = 0, limit: int = 10
) -> tuple[list[dict[str, Any]], int]:
    """Point movements of the member's account (earned, burned, expired, ...), newest first."""
    le = t.ledger_entries
    where = and_(le.c.program_id == s.program_id, le.c.account_id == account_id)
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(le).where(where))).scalar_one()
        rows = await conn.execute(
            select(le.c.kind, le.c.amount, le.c.held_delta, le.c.created_at, le.c.note)
            .where(where)
            .order_by(le.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [{str(k): v for k, v in x._mapping.items()} for x in rows], int(total)


# --- profile and consents ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    first_name: str
    last_name: str
    email: str | None
    birthday: date | None
    consent_sms: bool
    consent_email: bool


def parse_profile(form: dict[str, str]) -> Profile:
    """The profile form's fields, checked; the first wrong field is named."""
    first = form.get("first_name", "").strip()
    last = form.get("last_name", "").strip()
    if len(first) > 100:
        raise ServiceError("validation_failed", "at most 100 characters", field="first_name")
    if len(last) > 100:
        raise ServiceError("validation_failed", "at most 100 characters", field="last_name")
    email = form.get("email", "").strip() or None
    if email is not None and (
        len(email) > 254 or "@" not in email or " " in email or email.startswith("@")
    ):
        raise ServiceError("validation_failed", "not an e-mail address", field="email")
    bday: date | None = None
    raw = form.get("birthday", "").strip()
    if raw:
        try:
            bday = date.fromisoformat(raw)
        except ValueError:
            raise ServiceError("validation_failed", "not a date", field="birthday") from None
        if not date(1900, 1, 1) <= bday <= date.today():
            raise ServiceError("validation_failed", "not a plausible birthday", field="birthday")
    return Profile(
        first, last, email, bday, form.get("consent_sms") == "on", form.get("consent_email") == "on"
    )


async def do_update_profile(
    rt: Runtime, s: MemberSession, p: Profile, *, ip: str | None = None
) -> None:
    """Save the profile; consent changes and the rest are audited with the member as actor."""
    now = rt.now()
    async with rt.engine.begin() as conn:
        row = await _customer(conn, s)
        before = {
            "first_name": row.first_name,
            "last_name": row.last_name,
            "email": row.email,
            "birthday": None if row.birthday is None else str(row.birthday),
            "consent_sms": bool(row.consent_sms),
            "consent_email": bool(row.consent_email),
        }
        after = {
            "first_name": p.first_name,
            "last_name": p.last_name,
            "email": p.email,
            "birthday": None if p.birthday is None else str(p.birthday),
            "consent_sms": p.consent_sms,
            "consent_email": p.consent_email,
        }
        if before == after:
            return
        await conn.execute(
            update(cu)
            .where(cu.c.id == s.customer_id)
            .values(
                first_name=p.first_name,
                last_name=p.last_name,
                email=p.email,
                birthday=p.birthday,
                consent_sms=p.consent_sms,
                consent_email=p.consent_email,
            )
        )
        consent_changed = (before["consent_sms"], before["consent_email"]) != (
            p.consent_sms,
            p.consent_email,
        )
        await consents.record(
            conn,
            program_id=s.program_id,
            customer_id=s.customer_id,
            changes={
                ch: bool(after[f"consent_{ch}"])
                for ch in ("sms", "email")
                if after[f"consent_{ch}"] != before[f"consent_{ch}"]
            },
            at=now,
            source="cabinet",
            actor="member",
        )
        changed = [k for k in after if after[k] != before[k]]
        await audit.record(
            conn,
            member_actor(s, p.first_name, ip),
            "customer.consent" if consent_changed else "customer.profile",
            "customer",
            s.customer_id,
            at=now,
            program_id=s.program_id,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )


# --- a plastic card, the invite code ---------------------------------------------------------


async def do_attach_card(
    rt: Runtime, s: MemberSession, number: str, *, ip: str | None = None
) -> bool:
    """Register a plastic card to the member's account; True when the program's
    ``card_registered`` activity awarded points for it."""
    number = "".join(ch for ch in number if ch.isdigit())
    if not is_valid_card_number(number):
        raise ServiceError(
            "validation_failed", "13 digits with a correct check digit", field="number"
        )
    now = rt.now()
    try:
        async with rt.engine.begin() as conn:
            row = await _customer(conn, s)
            card_id = (
                await conn.execute(
                    insert(t.cards).returning(t.cards.c.id),
                    {
                        "program_id": s.program_id,
                        "account_id": row.account_id,
                        "customer_id": s.customer_id,
                        "number": number,
                        "kind": "plastic",
                        "created_at": now,
                    },
                )
            ).scalar_one()
            await conn.execute(
                insert(t.identifiers),
                {"program_id": s.program_id, "value": number, "kind": "card", "card_id": card_id},
            )
            await audit.record(
                conn,
                member_actor(s, row.first_name, ip),
                "card.attach",
                "card",
                number,
                at=now,
                program_id=s.program_id,
                after={"kind": "plastic"},
            )
    except IntegrityError:
        raise ServiceError(
            "card_taken", "this card number belongs to another customer", field="number"
        ) from None
    compiled = await rt.compiled(s.program_id)
    if "card_registered" not in compiled.doc.activities:
        return False
    from kopilka.services import activities

    award = await activities.do_award_customer(
        rt,
        program_id=s.program_id,
        customer_id=s.customer_id,
        activity="card_registered",
        rules=activities.rules_for(compiled),
    )
    return award is not None and not award.replayed


async def invite_code(rt: Runtime, s: MemberSession) -> str:
    from kopilka.services import referrals

    return await referrals.invite_code_for(rt, s.customer_id)


# --- the rotating QR token (kopilka.domain.qr) ------------------------------------------------

QR_WINDOW_S = qr.WINDOW_S


def qr_secret() -> bytes | None:
    return qr.configured_secret()


def qr_token(card_number: str, secret: bytes, now: datetime) -> str:
    return qr.token(card_number, secret, now)


# --- personal data: export and deletion (152-FZ) ---------------------------------------------


async def export_personal_data(rt: Runtime, s: MemberSession) -> dict[str, Any]:
    """Everything the program keeps about the member, as JSON-ready values."""
    ov = await overview(rt, s)
    receipts, _ = await receipts_page(rt, s, limit=100_000)
    moves, _ = await movements_page(rt, s, ov.account_id, limit=100_000)

    def clean(x: Any) -> Any:
        if isinstance(x, (datetime, date)):
            return x.isoformat()
        if isinstance(x, Decimal):
            return format(x, "f")
        return x

    return {
        "exported_at": rt.now().isoformat(),
        "customer": {
            "first_name": ov.first_name,
            "last_name": ov.last_name,
            "middle_name": ov.middle_name,
            "phone": ov.phone,
            "email": ov.email,
            "birthday": clean(ov.birthday),
            "consent_sms": ov.consent_sms,
            "consent_email": ov.consent_email,
        },
        "cards": [{"number": c.number, "kind": c.kind, "status": c.status} for c in ov.cards],
        "balance": {
            "available": clean(ov.balance.available),
            "pending": clean(ov.balance.pending),
            "held": clean(ov.balance.held),
        },
        "receipts": [{k: clean(v) for k, v in r.items()} for r in receipts],
        "point_movements": [{k: clean(v) for k, v in m.items()} for m in moves],
    }


async def do_delete_personal_data(
    rt: Runtime, s: MemberSession, confirm: str, *, ip: str | None = None
) -> None:
    """Anonymise the member (152-FZ; ``erasure.erase_in``): personal data replaced by a
    pseudonym, consents withdrawn, every identifier removed, status ``deleted``, every
    session ended.  The account, ledger and receipts stay for accounting.
    The member confirms by typing ``DELETE``."""
    if confirm.strip().upper() != DELETE_WORD:
        raise ServiceError("validation_failed", f"type {DELETE_WORD} to confirm", field="confirm")
    now = rt.now()
    async with rt.engine.begin() as conn:
        pseudonym, had = await erasure.erase_in(
            conn,
            program_id=s.program_id,
            customer_id=s.customer_id,
            now=now,
            source="cabinet",
            actor="member",
        )
        await member_auth.end_all(conn, s.customer_id, now)
        await audit.record(
            conn,
            member_actor(s, "", ip),
            "customer.delete_personal_data",
            "customer",
            s.customer_id,
            at=now,
            program_id=s.program_id,
            reason="the member's own request (152-FZ)",
            before=had,
            after={"status": "deleted", "pseudonym": pseudonym},
        )
