"""The console's cashier screen: the POS services, used by a person at a store.

For stores whose POS software shows nothing, a cashier (or store manager, or an owner
who picks a store) identifies the customer, registers a new one, and checks a coupon or
a gift card in the browser.  Nothing here re-implements the till: the screen acts as one
more terminal of its store, named ``cashier screen``, created on first use with a random
key that is never stored nor shown (only its hash is; no POS can ever authenticate as
it), so registrations, coupon checks and their rate limits are attributed to the store
exactly as for a POS.  Every answer comes from the same functions the POS API calls:
``customers.check_lookup``, ``customers.do_register``, ``customers.do_confirm_phone``,
``coupons.check_lookup``, ``giftcards.balance``.

What the screen adds to the POS lookup is read-only: the masked phone, and
*recommendations* — enabled, non-personal promotions running today that could apply to
this customer at this store (three-valued: a condition that the customer or the store
fails rules the promotion out; one that depends on the basket or the hour may hold),
first those touching the categories the customer bought most in the last 180 days, then
those aimed at the customer's tier, segment or group, then those for every purchase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select

from kopilka.domain.identifiers import is_valid_card_number
from kopilka.domain.roles import Perm, mask_phone
from kopilka.domain.rules import model as m
from kopilka.domain.rules.compiler import CompiledProgram, _birthday_in, _segment_test
from kopilka.domain.rules.facts import CustomerContext
from kopilka.services import audit, coupons, customers, giftcards
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.phones import to_e164
from kopilka.services.pricing import tags_of
from kopilka.services.runtime import Runtime, Terminal, hash_key
from kopilka.services.terminals import new_key
from kopilka.store import tables as t
from kopilka.store.raw import dec2, parse_ts, ts

TERMINAL_NAME = "cashier screen"
TOP_CATEGORIES = 3
HISTORY_DAYS = 180
RECOMMENDATIONS_MAX = 5
NAME_MAX = 100
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]+$")


@dataclass(frozen=True)
class StoreRef:
    id: int
    program_id: int
    code: str
    name: str
    city: str


# --- which store, which terminal -------------------------------------------------------


async def list_stores(rt: Runtime, actor: Actor, *, program_id: int | None) -> list[StoreRef]:
    """The stores the actor may work in: its own store, or (an unbound role such as the
    owner) every store of the program the console shows."""
    actor.require(Perm.CASHIER)
    s = t.stores
    q = select(s.c.id, s.c.program_id, s.c.code, s.c.name, s.c.city).order_by(s.c.name, s.c.id)
    if actor.store_id is not None:
        q = q.where(s.c.id == actor.store_id)
    elif program_id is not None:
        q = q.where(s.c.program_id == program_id)
    else:
        return []
    if actor.program_id is not None:
        q = q.where(s.c.program_id == actor.program_id)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    return [StoreRef(*r) for r in rows]


def pick_store(stores: list[StoreRef], wanted: int | None) -> StoreRef | None:
    """The store asked for if the actor may use it; the only one if there is one."""
    if len(stores) == 1:
        return stores[0]
    return next((x for x in stores if x.id == wanted), None)


async def screen_terminal(rt: Runtime, actor: Actor, store: StoreRef) -> Terminal:
    """The store's ``cashier screen`` terminal, created (and audited) on first use.

    Two first uses at the same moment may create two; the oldest is used from then on.
    A terminal disabled on the stores page stops the screen in that store."""
    actor.require(Perm.CASHIER)
    tt = t.terminals
    find = (
        select(tt.c.id)
        .where(tt.c.store_id == store.id, tt.c.name == TERMINAL_NAME)
        .order_by(tt.c.id)
        .limit(1)
    )
    async with rt.engine.connect() as conn:
        term_id = (await conn.execute(find)).scalar_one_or_none()
    if term_id is None:
        term_id = await _do_create_terminal(rt, actor, store)
    term = await rt.terminal_by_id(term_id)
    if term is None:  # pragma: no cover - terminals are never deleted
        raise ServiceError("not_found", "the store's cashier screen terminal is gone", field=None)
    if not term.active:
        raise ServiceError(
            "terminal_disabled",
            "the cashier screen is disabled in this store (see the store's terminals)",
            field=None,
        )
    return term


async def _do_create_terminal(rt: Runtime, actor: Actor, store: StoreRef) -> int:
    key = new_key()  # never shown, never stored: only its hash, which nobody can reverse
    now = rt.now()
    async with rt.engine.begin() as conn:
        term_id = (
            await conn.execute(
                insert(t.terminals).returning(t.terminals.c.id),
                {
                    "program_id": store.program_id,
                    "store_id": store.id,
                    "name": TERMINAL_NAME,
                    "key_hash": hash_key(key),
                    "key_prefix": "screen",
                    "status": "active",
                    "created_at": now,
                },
            )
        ).scalar_one()
        await audit.record(
            conn,
            actor,
            "terminal.create",
            "terminal",
            term_id,
            at=now,
            program_id=store.program_id,
            after={"store": store.code, "name": TERMINAL_NAME},
        )
    return int(term_id)


# --- identify the customer -------------------------------------------------------------


def check_text(value: str, *, field: str, empty: str) -> str:
    text = value.strip()
    if not text:
        raise ServiceError("validation_failed", empty, field=field)
    if len(text) > 64:
        raise ServiceError("validation_failed", "at most 64 characters", field=field)
    if not _PRINTABLE.match(text):
        raise ServiceError("validation_failed", "unexpected characters", field=field)
    return text


async def lookup(rt: Runtime, term: Terminal, identifier: str) -> dict[str, Any]:
    """The POS lookup (``customers.check_lookup``) plus the masked phone and
    recommendations.  ``404 unknown_identifier`` for an unknown card or phone."""
    text = check_text(identifier, field="identifier", empty="scan the card or type the phone")
    data = await customers.check_lookup(rt, term, text)
    extra = await _customer_facts(rt, term, int(data["customer"]["id"]))
    data["customer"]["phone"] = mask_phone(extra.phone)
    data["top_categories"] = extra.top_categories
    compiled = await rt.compiled(term.program_id)
    data["recommendations"] = recommend(compiled, extra, term=term, now=rt.now())
    return data


@dataclass
class CustomerFacts:
    """What recommendations need to know of the customer (read-only)."""

    customer_id: int
    phone: str | None = None
    tier: str | None = None
    rfm: str | None = None
    tags: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    birthday: date | None = None
    purchases: int = 0
    last_purchase_at: datetime | None = None
    top_categories: list[str] = field(default_factory=list)


async def _customer_facts(rt: Runtime, term: Terminal, customer_id: int) -> CustomerFacts:
    since = rt.now() - timedelta(days=HISTORY_DAYS)
    async with rt.hot.read() as tx:
        rows = await tx.fetch(
            "SELECT a.id, a.tier, cu.phone, cu.rfm_segment, cu.tags, cu.birthday, c.number "
            "FROM customers cu JOIN accounts a ON a.customer_id = cu.id "
            "LEFT JOIN cards c ON c.customer_id = cu.id WHERE cu.id = ? AND cu.program_id = ?",
            customer_id,
            term.program_id,
        )
        account_id = rows[0][0]
        history = await tx.fetch(
            "SELECT count(*), max(occurred_at) FROM receipts "
            "WHERE program_id = ? AND account_id = ? AND state = 'confirmed'",
            term.program_id,
            account_id,
        )
        cats = await tx.fetch(
            "SELECT rl.category, sum(rl.to_pay) FROM receipts r "
            "JOIN receipt_lines rl ON rl.receipt_pk = r.id "
            "WHERE r.program_id = ? AND r.account_id = ? AND r.state = 'confirmed' "
            "AND r.occurred_at >= ? AND rl.category IS NOT NULL "
            "GROUP BY rl.category ORDER BY sum(rl.to_pay) DESC, rl.category LIMIT ?",
            term.program_id,
            account_id,
            ts(tx, since),
            TOP_CATEGORIES,
        )
    r0 = rows[0]
    keys = {str(customer_id), *(str(r[6]) for r in rows if r[6])}
    if r0[2]:
        keys.add(str(r0[2]))
    birthday = r0[5]
    if birthday is not None and not isinstance(birthday, date):
        birthday = date.fromisoformat(str(birthday)[:10])
    return CustomerFacts(
        customer_id=customer_id,
        phone=r0[2],
        tier=r0[1],
        rfm=r0[3],
        tags=tags_of(r0[4]),
        keys=frozenset(keys),
        birthday=birthday,
        purchases=int(history[0][0] or 0) if history else 0,
        last_purchase_at=parse_ts(history[0][1]) if history and history[0][1] else None,
        top_categories=[str(r[0]) for r in cats if dec2(r[1]) > 0],
    )


# --- recommendations -------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    compiled: CompiledProgram
    customer: CustomerContext
    term: Terminal
    today: date


def recommend(
    compiled: CompiledProgram, facts: CustomerFacts, *, term: Terminal, now: datetime
) -> list[dict[str, Any]]:
    """Promotions worth telling this customer about here today, best first (pure).

    Each answer names why: ``category`` (he buys it), ``tier``/``segment``/``tag`` (it is
    aimed at him), or ``everyone`` (it applies to any purchase)."""
    tz = compiled.zone(term.store.timezone)
    today = now.astimezone(tz).date()
    lowest = compiled.doc.tiers.levels[0].code if compiled.doc.tiers else None
    cu = CustomerContext(
        account_id=0,
        available=Decimal(0),
        customer_id=facts.customer_id,
        keys=facts.keys,
        tier=facts.tier or lowest,
        tags=facts.tags,
        rfm=facts.rfm,
        last_purchase_on=(
            facts.last_purchase_at.astimezone(tz).date() if facts.last_purchase_at else None
        ),
        purchases=facts.purchases,
        birthday=facts.birthday,
    )
    f = _Facts(compiled, cu, term, today)
    bought: dict[str, str] = {}  # a category or any of its ancestors -> what he bought
    for cat in facts.top_categories:
        for anc in compiled.ancestors(cat):
            bought.setdefault(anc, cat)
    scored: list[tuple[int, int, dict[str, Any]]] = []
    for p in compiled.promotions:
        src = p.source
        if not p.enabled or p.personal:
            continue
        if (p.starts_at is not None and now < p.starts_at) or (
            p.ends_at is not None and now >= p.ends_at
        ):
            continue
        if src.when is not None and _could(src.when, f) is False:
            continue
        cats = _categories(src)
        why: list[dict[str, str]]
        if cats:
            hit = sorted({bought[c] for c in cats if c in bought})
            if not hit:
                continue  # about goods he does not buy: not worth the cashier's breath
            names = {c.code: c.name or c.code for c in compiled.doc.categories}
            score, why = 3, [{"kind": "category", "value": names.get(c, c)} for c in hit]
        else:
            aimed = _aimed_at(src.when, f)
            score, why = (2, aimed) if aimed else (1, [{"kind": "everyone", "value": ""}])
        item = {
            "promotion": p.id,
            "name": p.name,
            "description": src.description or "",
            "why": why,
            "ends_at": None if p.ends_at is None else p.ends_at.isoformat(),
        }
        scored.append((-score, p.order, item))
    scored.sort(key=lambda x: (x[0], x[1]))
    return [x[2] for x in scored[:RECOMMENDATIONS_MAX]]


def _categories(p: m.Promotion) -> set[str]:
    out: set[str] = set()
    for tree in (p.when, p.lines):
        for c in m.walk(tree):
            out.update(c.category or ())
    return out


def _aimed_at(c: m.Condition | None, f: _Facts) -> list[dict[str, str]]:
    """The tier, segment and group conditions the customer meets (outside ``not``)."""
    out: list[dict[str, str]] = []
    stack = [c] if c is not None else []
    while stack:
        x = stack.pop()
        stack.extend(x.all or ())
        stack.extend(x.any or ())
        if x.tier and f.customer.tier in x.tier:
            tier = f.compiled.tiers.get(f.customer.tier or "")
            out.append({"kind": "tier", "value": tier.name if tier else str(f.customer.tier)})
        for name in x.segment or ():
            if _in_segment(name, f):
                out.append({"kind": "segment", "value": name})
        for tag in sorted(set(x.tag or ()) & f.customer.tags):
            out.append({"kind": "tag", "value": tag})
        if x.birthday is not None and _birthday_near(x.birthday, f):
            out.append({"kind": "birthday", "value": ""})
    return out


def _birthday_near(w: m.BirthdayWindow, f: _Facts) -> bool:
    """As the engine's ``birthday`` condition: today within the window around it."""
    born = f.customer.birthday
    if born is None:
        return False  # the engine refuses an unknown birthday too
    for year in (f.today.year - 1, f.today.year, f.today.year + 1):
        day = _birthday_in(born, year)
        if day - timedelta(days=w.days_before) <= f.today <= day + timedelta(days=w.days_after):
            return True
    return False


def _within(value: int, r: m.Range) -> bool:
    return (r.min is None or value >= r.min) and (r.max is None or value <= r.max)


def _in_segment(name: str, f: _Facts) -> bool:
    seg = f.compiled.doc.segments.get(name)
    return seg is not None and _segment_test(seg)(f.customer, f.today)


def _all(values: list[bool | None]) -> bool | None:
    if any(v is False for v in values):
        return False
    return True if all(v is True for v in values) else None


def _any(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    return False if all(v is False for v in values) else None


def _could(c: m.Condition, f: _Facts) -> bool | None:
    """Kleene logic: False when the customer, the store or today rule the condition out,
    True when they satisfy it, None when it depends on the basket or the hour."""
    results: list[bool | None] = []
    cu, store, today = f.customer, f.term.store, f.today
    for key in c.keys_set():
        v = getattr(c, key)
        r: bool | None = None
        if key == "all":
            r = _all([_could(x, f) for x in v])
        elif key == "any":
            r = _any([_could(x, f) for x in v])
        elif key == "not_":
            inner = _could(v, f)
            r = None if inner is None else not inner
        elif key == "tier":
            r = cu.tier in v
        elif key == "segment":
            r = any(_in_segment(name, f) for name in v)
        elif key == "tag":
            r = not cu.tags.isdisjoint(v)
        elif key == "store":
            r = store.code in v
        elif key == "partner":
            r = store.partner in v
        elif key == "city":
            r = store.city in v
        elif key == "region":
            r = store.region in v
        elif key == "dates":
            r = (v.from_ is None or today >= v.from_) and (v.to is None or today <= v.to)
        elif key == "weekday":
            r = m.WEEKDAYS[today.weekday()] in v
        elif key == "member":
            r = bool(v)
        elif key == "first_purchase":
            r = (cu.purchases == 0) == v
        elif key == "birthday":
            r = _birthday_near(v, f)
        elif key == "days_since_last_purchase" and cu.last_purchase_on is not None:
            r = _within((today - cu.last_purchase_on).days, v)
        elif key in ("coupon", "personal_offer"):
            # A coupon's promotion needs the coupon; personal offers are listed apart.
            r = False if v else None
        results.append(r)
    return _all(results)


# --- register a customer ---------------------------------------------------------------


REGISTRATION_FIELDS = (
    "phone",
    "first_name",
    "last_name",
    "card_number",
    "consent_sms",
    "consent_email",
)


def check_registration(
    form: dict[str, str],
) -> tuple[customers.Registration | None, dict[str, str]]:
    """The registration form's values checked as the POS API checks its body; the
    errors by field (English; the page translates them)."""
    errors: dict[str, str] = {}
    phone_raw = form.get("phone", "").strip()
    phone = to_e164(phone_raw) if phone_raw else None
    if not phone_raw:
        errors["phone"] = "enter the customer's phone"
    elif phone is None:
        errors["phone"] = "not a valid phone number"
    first = form.get("first_name", "").strip()
    last = form.get("last_name", "").strip()
    if not first:
        errors["first_name"] = "enter the customer's first name"
    for name, value in (("first_name", first), ("last_name", last)):
        if len(value) > NAME_MAX:
            errors[name] = "at most 100 characters"
        elif value and not _PRINTABLE.match(value):
            errors[name] = "unexpected characters"
    card = re.sub(r"\s+", "", form.get("card_number", "")) or None
    if card is not None and not (card.isdigit() and len(card) == 13):
        errors["card_number"] = "a card number has 13 digits"
    elif card is not None and not is_valid_card_number(card):
        errors["card_number"] = "the card number's check digit is wrong"
    if errors:
        return None, errors
    assert phone is not None
    return (
        customers.Registration(
            phone=phone,
            first_name=first,
            last_name=last,
            card_number=card,
            consent_sms=form.get("consent_sms") in ("on", "true", "1"),
            consent_email=form.get("consent_email") in ("on", "true", "1"),
        ),
        {},
    )


async def do_register(
    rt: Runtime, actor: Actor, term: Terminal, reg: customers.Registration
) -> dict[str, Any]:
    """The POS registration (new customer, account, card, SMS code), audited."""
    actor.require(Perm.CASHIER)
    return await customers.do_register(rt, term, reg, actor=actor)


async def do_confirm_phone(
    rt: Runtime, actor: Actor, term: Terminal, *, customer_id: int, code: str
) -> dict[str, Any]:
    """The one-time code the customer received, typed by the cashier (as at a POS)."""
    actor.require(Perm.CASHIER)
    if not re.fullmatch(r"\d{6}", code.strip()):
        raise ServiceError("validation_failed", "the code has 6 digits", field="code")
    return await customers.do_confirm_phone(rt, term, customer_id, code.strip())


# --- coupon and gift card checks -------------------------------------------------------


async def check_coupon(rt: Runtime, term: Terminal, code: str) -> dict[str, Any]:
    """``coupons.check_lookup``: state, what it gives, validity (and its rate limit)."""
    text = check_text(code, field="code", empty="type or scan the coupon code")
    return await coupons.check_lookup(rt, term, text)


async def check_gift_card(rt: Runtime, term: Terminal, number: str) -> dict[str, Any]:
    """``giftcards.balance``: state, balance and expiry, no PIN (reads only)."""
    text = re.sub(r"\s+", "", check_text(number, field="number", empty="scan the gift card"))
    if not text.isdigit():
        raise ServiceError("gift_card_not_found", "no gift card with this number", field="number")
    return await giftcards.balance(rt, term, text)


def parse_iso(value: str | None) -> datetime | None:
    return None if not value else datetime.fromisoformat(value.replace("Z", "+00:00"))
