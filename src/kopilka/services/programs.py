"""Program documents: validate, apply as a new version, export, compare, roll back.

Every change is a new row in ``program_versions`` (author, note, time) and a bump of
``programs.version``; the runtime of every server process notices the new number within
its cache TTL and compiles the new version (``Runtime.compiled``).  A version is never
updated or deleted: a rollback applies an old document as a new version.

Concurrency: a change starts with ``UPDATE programs SET version = version + 1``, which
locks the program's row until the transaction ends (PostgreSQL row lock; SQLite's
``BEGIN IMMEDIATE`` write lock), so two applies at once get consecutive versions; the
unique key (program_id, version) backs it.  Edits of one promotion read the current
document after taking that lock, so concurrent edits never lose each other.

Applying a document identical to the current one still makes a new version: the
version history is also the log of who applied what and when.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.ledger import balance_of
from kopilka.domain.money import fmt2
from kopilka.domain.receipt import Basket, RedeemRefused, price_receipt
from kopilka.domain.rules.compiler import program_from_settings, settings_of
from kopilka.domain.rules.facts import CustomerContext, StoreContext
from kopilka.domain.rules.model import DocumentInvalid, ProgramDoc, Promotion, validate_document
from kopilka.services import audit, views
from kopilka.services.errors import ServiceError
from kopilka.services.pricing import budgets_left, customer_context
from kopilka.services.purchases import identifier_values
from kopilka.services.runtime import Runtime, load_compiled, settings_from_json, settings_to_json
from kopilka.store import tables as t
from kopilka.store.queries.accounts import AccountState, load_by_identifier

# This module's refusals and their HTTP status (kept here, not in errors.STATUS, so the
# table of the POS API's codes stays the POS API's).
STATUS = {
    "invalid_program": 422,
    "program_not_found": 404,
    "version_not_found": 404,
    "promotion_not_found": 404,
    "forbidden": 403,
    "token_disabled": 403,
    "store_not_found": 404,
}
APPLY_ATTEMPTS = 3


class ProgramError(ServiceError):
    """A refusal of a program change or read; ``status`` from this module's table."""

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 422)


def invalid_program(problems: list[tuple[str, str]], *, prefix: str = "") -> ProgramError:
    """Every problem of a document, each naming its path inside the document."""

    def path(p: str) -> str:
        if not prefix:
            return p or "body"
        return prefix + ("." + p if p and not p.startswith("[") else p)

    errors = [{"field": path(p), "code": "bad_value", "detail": m} for p, m in problems]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ProgramError(
        "invalid_program",
        f"{first['field']}: {first['detail']}{more}",
        field=first["field"],
        errors=errors,
    )


def check_document(data: Any) -> ProgramDoc:
    """A validated document; raises ``ProgramError('invalid_program')`` listing every
    problem with its path (``promotions[3].effects[0].percent``)."""
    if not isinstance(data, dict):
        raise invalid_program([("", "a program document is a mapping (code, name, ...)")])
    try:
        return validate_document(data)
    except DocumentInvalid as exc:
        raise invalid_program(exc.problems) from None


def document_json(doc: ProgramDoc) -> dict[str, Any]:
    """The document as stored and exported: JSON types, decimals as strings."""
    out: dict[str, Any] = doc.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def not_found(code: str) -> ProgramError:
    return ProgramError("program_not_found", f"no program {code!r}", field="code")


# --- writing versions ------------------------------------------------------------------


Build = Callable[[dict[str, Any] | None], ProgramDoc]


async def do_apply(
    rt: Runtime,
    doc: ProgramDoc,
    *,
    author: str,
    note: str = "",
    actor: audit.Actor | None = None,
) -> int:
    """Make ``doc`` the program's new current version (creating the program if its code
    is new); returns the version number.  With ``actor`` the change is also written to
    the audit log, in the same transaction (the console does; so may every caller)."""
    return await _write_version(
        rt,
        doc.code,
        lambda _current: doc,
        author=author,
        note=note,
        audited=None if actor is None else (actor, "program.apply"),
    )


Audited = tuple[audit.Actor, str] | None  # (who, the audit action) of a change


async def _write_version(
    rt: Runtime,
    code: str,
    build: Build,
    *,
    author: str,
    note: str,
    create: bool = True,
    audited: Audited = None,
) -> int:
    """One transaction: lock (or create) the program, build the document from the
    current one (None for a new program), insert the version, update the program row.

    A concurrent creation of the same new code loses on the programs' unique code and is
    retried, then finding the program and locking it like any other change.
    """
    for attempt in range(APPLY_ATTEMPTS):
        try:
            async with rt.engine.begin() as conn:
                return await _write_in(conn, rt, code, build, author, note, create, audited)
        except IntegrityError:
            if attempt == APPLY_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _write_in(
    conn: AsyncConnection,
    rt: Runtime,
    code: str,
    build: Build,
    author: str,
    note: str,
    create: bool,
    audited: Audited = None,
) -> int:
    p = t.programs
    # The bump is the lock: whoever comes second waits here and bumps past the first.
    row = (
        await conn.execute(
            update(p)
            .where(p.c.code == code)
            .values(version=p.c.version + 1)
            .returning(p.c.id, p.c.version, p.c.name, p.c.settings)
        )
    ).first()
    if row is None:
        if not create:
            raise not_found(code)
        doc = build(None)
        program_id = (
            await conn.execute(
                insert(p).returning(p.c.id),
                {
                    "code": code,
                    "name": doc.name,
                    "settings": settings_to_json(settings_of(doc)),
                    "version": 1,
                    "created_at": rt.now(),
                },
            )
        ).scalar_one()
        version = 1
    else:
        program_id, version = row.id, row.version
        current = await _document_at(conn, program_id, version - 1)
        if current is None:  # set up with ``program create|set``: no document yet
            base = program_from_settings(settings_from_json(row.settings), code=code)
            current = document_json(base.model_copy(update={"name": row.name}))
        doc = build(current)
        if doc.code != code:
            raise invalid_program([("code", f"must stay {code!r}")])
        await conn.execute(
            update(p)
            .where(p.c.id == program_id)
            .values(name=doc.name, settings=settings_to_json(settings_of(doc)))
        )
    await conn.execute(
        insert(t.program_versions),
        {
            "program_id": program_id,
            "version": version,
            "document": orjson.dumps(document_json(doc)).decode(),
            "author": author[:200],
            "note": note[:500],
            "created_at": rt.now(),
        },
    )
    if audited is not None:
        actor, action = audited
        await audit.record(
            conn,
            actor,
            action,
            "program",
            code,
            at=rt.now(),
            program_id=program_id,
            before={"version": version - 1} if version > 1 else None,
            after={"version": version, "note": note[:500]},
        )
    return int(version)


async def do_rollback(
    rt: Runtime, code: str, version: int, *, author: str, actor: audit.Actor | None = None
) -> int:
    """Apply version ``version``'s document as a new version (audited with ``actor``)."""
    old = await export(rt, code, version)
    doc = check_document(old)
    return await _write_version(
        rt,
        code,
        lambda _c: doc,
        author=author,
        note=f"rollback to version {version}",
        create=False,
        audited=None if actor is None else (actor, "program.rollback"),
    )


async def do_set_promotion(
    rt: Runtime,
    code: str,
    promotion: dict[str, Any],
    *,
    author: str,
    note: str = "",
    actor: audit.Actor | None = None,
) -> tuple[int, bool]:
    """Add the promotion, or replace the one with its id; returns (version, created)."""
    if not isinstance(promotion, dict):
        raise invalid_program([("", "a promotion is a mapping (id, name, effects, ...)")])
    try:
        pid = Promotion.model_validate(promotion).id
    except ValidationError:
        pid = str(promotion.get("id", ""))
    created = False

    def build(current: dict[str, Any] | None) -> ProgramDoc:
        nonlocal created
        assert current is not None
        promos = list(current.get("promotions", []))
        at = next((i for i, x in enumerate(promos) if x.get("id") == pid), None)
        created = at is None
        if at is None:
            promos.append(promotion)
        else:
            promos[at] = promotion
        return check_document({**current, "promotions": promos})

    v = await _write_version(
        rt,
        code,
        build,
        author=author,
        note=note or f"promotion {pid} set",
        create=False,
        audited=None if actor is None else (actor, "promotion.set"),
    )
    return v, created


async def do_delete_promotion(
    rt: Runtime,
    code: str,
    promotion_id: str,
    *,
    author: str,
    note: str = "",
    actor: audit.Actor | None = None,
) -> int:
    def build(current: dict[str, Any] | None) -> ProgramDoc:
        assert current is not None
        promos = list(current.get("promotions", []))
        kept = [x for x in promos if x.get("id") != promotion_id]
        if len(kept) == len(promos):
            raise ProgramError(
                "promotion_not_found", f"no promotion {promotion_id!r}", field="promotion_id"
            )
        return check_document({**current, "promotions": kept})

    return await _write_version(
        rt,
        code,
        build,
        author=author,
        note=note or f"promotion {promotion_id} deleted",
        create=False,
        audited=None if actor is None else (actor, "promotion.delete"),
    )


async def do_set_settings(rt: Runtime, code: str, changes: dict[str, str], *, author: str) -> int:
    """``kopilka program set`` for a program that has a document: the named settings are
    changed in the document's ``points`` (``timezone`` at its top), so its promotions stay
    (a settings-only version would be compiled without them)."""
    from kopilka.services.setup import parse_settings

    def build(current: dict[str, Any] | None) -> ProgramDoc:
        assert current is not None
        s = parse_settings(settings_of(check_document(current)), changes)
        points = dict(current.get("points", {}))
        top: dict[str, Any] = {}
        for name in changes:
            value = getattr(s, name)
            if name == "timezone":
                top["timezone"] = value
            elif name == "points_step":
                points[name] = "0.01" if value == Decimal("0.01") else "1"
            else:
                points[name] = str(value) if isinstance(value, Decimal) else value
        return check_document({**current, **top, "points": points})

    note = "settings: " + ", ".join(f"{k}={v}" for k, v in changes.items())
    return await _write_version(rt, code, build, author=author, note=note, create=False)


# --- reading ---------------------------------------------------------------------------


async def has_document(rt: Runtime, code: str) -> bool:
    async with rt.engine.connect() as conn:
        pid, _version, _name = await _program(conn, code)
        n = (
            await conn.execute(
                select(func.count())
                .select_from(t.program_versions)
                .where(t.program_versions.c.program_id == pid)
            )
        ).scalar_one()
    return bool(n)


async def _program(conn: AsyncConnection, code: str) -> tuple[int, int, str]:
    row = (
        await conn.execute(
            select(t.programs.c.id, t.programs.c.version, t.programs.c.name).where(
                t.programs.c.code == code
            )
        )
    ).first()
    if row is None:
        raise not_found(code)
    return int(row.id), int(row.version), str(row.name)


async def _document_at(
    conn: AsyncConnection, program_id: int, version: int
) -> dict[str, Any] | None:
    raw = (
        await conn.execute(
            select(t.program_versions.c.document).where(
                t.program_versions.c.program_id == program_id,
                t.program_versions.c.version == version,
            )
        )
    ).scalar_one_or_none()
    if raw is None:
        return None
    doc: dict[str, Any] = orjson.loads(raw)
    return doc


async def list_programs(rt: Runtime, *, code: str | None = None) -> list[ProgramSummary]:
    """Every program (or the one ``code``) with its current version."""
    p = t.programs
    q = select(p.c.id, p.c.code, p.c.name, p.c.version).order_by(p.c.code)
    if code is not None:
        q = q.where(p.c.code == code)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    return [ProgramSummary(r.id, r.code, r.name, r.version) for r in rows]


@dataclass(frozen=True)
class ProgramSummary:
    id: int
    code: str
    name: str
    version: int


async def current(rt: Runtime, code: str) -> tuple[int, dict[str, Any]]:
    """(current version, its document)."""
    async with rt.engine.connect() as conn:
        _, version, _ = await _program(conn, code)
    return version, await export(rt, code)


async def export(rt: Runtime, code: str, version: int | None = None) -> dict[str, Any]:
    """The document of a version (default: the current one).

    A program set up only with ``kopilka program create|set`` has no document; its
    current version is exported as the bonus program its settings describe, so it can be
    edited and applied.
    """
    async with rt.engine.connect() as conn:
        pid, current_version, name = await _program(conn, code)
        v = current_version if version is None else version
        doc = await _document_at(conn, pid, v)
        if doc is not None:
            return doc
        if v != current_version:
            raise ProgramError(
                "version_not_found", f"program {code!r} has no version {v}", field="version"
            )
        raw = (
            await conn.execute(select(t.programs.c.settings).where(t.programs.c.id == pid))
        ).scalar_one()
    base = program_from_settings(settings_from_json(raw), code=code)
    return document_json(base.model_copy(update={"name": name}))


@dataclass(frozen=True)
class VersionInfo:
    version: int
    author: str
    note: str
    created_at: datetime
    promotions: int


async def versions(rt: Runtime, code: str) -> list[VersionInfo]:
    """Every stored version, oldest first."""
    pv = t.program_versions
    async with rt.engine.connect() as conn:
        pid, _, _ = await _program(conn, code)
        rows = (
            await conn.execute(
                select(pv.c.version, pv.c.author, pv.c.note, pv.c.created_at, pv.c.document)
                .where(pv.c.program_id == pid)
                .order_by(pv.c.version)
            )
        ).all()
    return [
        VersionInfo(
            r.version,
            r.author,
            r.note,
            r.created_at,
            len(orjson.loads(r.document).get("promotions", [])),
        )
        for r in rows
    ]


# --- comparing -------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference: ``kind`` is added, removed or changed; values as in the JSON."""

    path: str
    kind: str
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {_show(self.new)}"
        if self.kind == "removed":
            return f"- {self.path}: {_show(self.old)}"
        return f"~ {self.path}: {_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


async def diff(rt: Runtime, code: str, a: int, b: int) -> list[Change]:
    """What changed from version ``a`` to version ``b``."""
    return diff_documents(await export(rt, code, a), await export(rt, code, b))


def diff_documents(old: Any, new: Any, path: str = "") -> list[Change]:
    """A recursive diff of two JSON values.  Lists of mappings that all carry an ``id``
    (promotions) or a ``code`` (tiers, categories) are matched by it, so inserting a
    promotion reads as one addition, not as every later promotion changed."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        for k in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{k}" if path else str(k)
            if k not in new:
                out.append(Change(sub, "removed", old=old[k]))
            elif k not in old:
                out.append(Change(sub, "added", new=new[k]))
            else:
                out.extend(diff_documents(old[k], new[k], sub))
        return out
    if isinstance(old, list) and isinstance(new, list):
        key = _list_key(old + new)
        if key is not None:
            return _diff_keyed(old, new, path, key)
        out = []
        for i in range(max(len(old), len(new))):
            sub = f"{path}[{i}]"
            if i >= len(new):
                out.append(Change(sub, "removed", old=old[i]))
            elif i >= len(old):
                out.append(Change(sub, "added", new=new[i]))
            else:
                out.extend(diff_documents(old[i], new[i], sub))
        return out
    return [] if old == new else [Change(path, "changed", old=old, new=new)]


def _list_key(items: list[Any]) -> str | None:
    for key in ("id", "code"):
        if items and all(isinstance(x, dict) and key in x for x in items):
            return key
    return None


def _diff_keyed(old: list[Any], new: list[Any], path: str, key: str) -> list[Change]:
    before = {x[key]: x for x in old}
    after = {x[key]: x for x in new}
    out: list[Change] = []
    for k in list(before) + [k for k in after if k not in before]:
        sub = f"{path}[{k}]"
        if k not in after:
            out.append(Change(sub, "removed", old=before[k]))
        elif k not in before:
            out.append(Change(sub, "added", new=after[k]))
        else:
            out.extend(diff_documents(before[k], after[k], sub))
    return out


# --- the simulator ---------------------------------------------------------------------


@dataclass(frozen=True)
class GivenCustomer:
    """A customer described instead of read ("a Gold member with tag staff").

    ``segments`` makes him satisfy each named segment of the document: listed by his
    first key, in its first RFM segment, with its first tag, and a last purchase at the
    lower end of its days-since range.
    """

    tier: str | None = None
    tags: frozenset[str] = frozenset()
    segments: tuple[str, ...] = ()
    rfm: str | None = None
    birthday: date | None = None
    purchases: int = 1
    last_purchase_on: date | None = None
    available: Decimal = Decimal(0)
    discount_percent: Decimal | None = None
    offers: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Simulation:
    """What would ``basket`` get for this customer at this store at ``at``?"""

    program: str
    basket: Basket
    store: str | None = None
    at: datetime | None = None
    identifier: str | None = None
    customer: GivenCustomer | None = None
    explain: bool | tuple[str, ...] = True
    version: int | None = None


async def simulate(rt: Runtime, sim: Simulation) -> dict[str, Any]:
    """Price the basket like the till would, and say why each promotion did (not) apply.

    Writes nothing: the program and store are read on a plain connection, the customer
    (``identifier``), his usage and the budgets on the hot path's read-only connection.
    ``at`` is the receipt's time (default: now); balances are as of now.
    """
    now = rt.now()
    at = sim.at or now
    async with rt.engine.connect() as conn:
        pid, current_version, _ = await _program(conn, sim.program)
        version = current_version if sim.version is None else sim.version
        if version != current_version and await _document_at(conn, pid, version) is None:
            raise ProgramError(
                "version_not_found",
                f"program {sim.program!r} has no version {version}",
                field="version",
            )
        store = await _store_context(conn, pid, sim.store)
    # SQLite has one pooled connection: the runtime's own read comes after ours closed.
    compiled = await rt.compiled(pid)
    if compiled.version != version:  # a cached older one, or an older one asked for
        async with rt.engine.connect() as conn:
            compiled = await load_compiled(conn, pid, version)
    local = at.astimezone(ZoneInfo(store.timezone or compiled.doc.timezone))
    basket = replace(sim.basket, occurred_at=at)
    account: AccountState | None = None
    ctx: CustomerContext | None = None
    async with rt.hot.read() as tx:
        if sim.identifier is not None:
            account = await load_by_identifier(
                tx,
                program_id=pid,
                values=identifier_values(sim.identifier),
                lock=False,
            )
            if account is None:
                raise ServiceError(
                    "unknown_identifier", "no customer with this identifier", field="identifier"
                )
            bal = balance_of(account.lots, held=account.held, debt=account.debt, now=now)
            ctx = await customer_context(
                tx, compiled, account, available=bal.available, local=local
            )
        elif sim.customer is not None:
            ctx = given_context(sim.customer, compiled.doc, local.date())
        budgets = await budgets_left(tx, compiled, pid)
    try:
        priced = price_receipt(
            basket, ctx, compiled, now, store=store, budgets=budgets, explain=sim.explain
        )
    except RedeemRefused as exc:
        raise ServiceError(
            exc.code, exc.detail, field="redeem_points", redeem_max=fmt2(exc.redeem_max)
        ) from None
    return {
        "program": sim.program,
        "program_version": compiled.version,
        "store": store.code or None,
        "at": at.isoformat(),
        "member": ctx is not None,
        "customer": None if ctx is None else _context_view(ctx, account),
        "lines": views.priced_lines_view(basket.lines, priced),
        **views.totals_view(priced),
        "redeem_max": fmt2(priced.redeem_max),
        "promotions": views.applied_view(priced.applied),
        "messages": list(priced.messages),
        "cashier_messages": list(priced.cashier_messages),
        "gifts": [{"sku": g[0], "name": g[1], "quantity": g[2]} for g in priced.gifts],
        "explanations": priced.explanations or {},
    }


async def _store_context(conn: AsyncConnection, program_id: int, code: str | None) -> StoreContext:
    if code is None:
        return StoreContext()
    s = t.stores
    row = (
        await conn.execute(
            select(s.c.code, s.c.city, s.c.region, s.c.timezone, t.partners.c.code.label("partner"))
            .join(t.partners, t.partners.c.id == s.c.partner_id)
            .where(s.c.program_id == program_id, s.c.code == code)
        )
    ).first()
    if row is None:
        raise ProgramError("store_not_found", f"no store {code!r} in this program", field="store")
    return StoreContext(
        code=row.code,
        partner=row.partner,
        city=row.city or None,
        region=row.region or None,
        timezone=row.timezone or None,
    )


def given_context(c: GivenCustomer, doc: ProgramDoc, today: date) -> CustomerContext:
    """The context of a described customer (see ``GivenCustomer``)."""
    keys, tags, rfm, last = set(c.keys), set(c.tags), c.rfm, c.last_purchase_on
    problems = []
    for i, name in enumerate(c.segments):
        seg = doc.segments.get(name)
        if seg is None:
            problems.append((f"customer.segments[{i}]", f"unknown segment {name!r}"))
            continue
        if seg.customers:
            keys.add(seg.customers[0])
        if seg.rfm and rfm not in seg.rfm:
            rfm = seg.rfm[0]
        if seg.tag and tags.isdisjoint(seg.tag):
            tags.add(seg.tag[0])
        if seg.days_since_last_purchase is not None and last is None:
            last = today - timedelta(days=int(seg.days_since_last_purchase.min or 0))
    if problems:
        raise ServiceError(
            "validation_failed",
            f"{problems[0][0]}: {problems[0][1]}",
            field=problems[0][0],
            errors=[{"field": f, "code": "bad_value", "detail": m} for f, m in problems],
        )
    tier = c.tier
    if tier is None and doc.tiers is not None:
        tier = doc.tiers.levels[0].code
    return CustomerContext(
        account_id=0,
        available=c.available,
        keys=frozenset(keys),
        tier=tier,
        discount_percent=c.discount_percent,
        tags=frozenset(tags),
        rfm=rfm,
        last_purchase_on=last,
        purchases=c.purchases,
        birthday=c.birthday,
        offers=c.offers,
    )


def _context_view(ctx: CustomerContext, account: AccountState | None) -> dict[str, Any]:
    return {
        "card": None if account is None else account.card_number,
        "available": fmt2(ctx.available),
        "tier": ctx.tier,
        "tags": sorted(ctx.tags),
        "rfm": ctx.rfm,
        "birthday": None if ctx.birthday is None else ctx.birthday.isoformat(),
        "purchases": ctx.purchases,
        "last_purchase_on": None
        if ctx.last_purchase_on is None
        else ctx.last_purchase_on.isoformat(),
        "discount_percent": None if ctx.discount_percent is None else str(ctx.discount_percent),
        "offers": sorted(ctx.offers),
    }
