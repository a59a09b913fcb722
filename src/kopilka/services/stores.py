"""Stores and their terminals as the console and the admin API see them, scoped to the
actor: a partner user reaches only its partner's stores, a store manager its own store,
a user limited to a program only that program's.  A store outside the scope is simply
not found (404), so its existence is not revealed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.roles import Perm
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

st = t.stores
pt = t.partners
tm = t.terminals

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SORTS = ("code", "name", "city", "partner", "terminals")


@dataclass(frozen=True)
class StoreRow:
    id: int
    program_id: int
    partner_id: int
    partner_code: str
    partner_name: str
    code: str
    name: str
    address: str
    city: str
    region: str
    latitude: float | None
    longitude: float | None
    timezone: str
    terminals: int = 0

    def form(self) -> dict[str, str]:
        """The store as a form's values."""
        return {
            "code": self.code,
            "name": self.name,
            "partner": str(self.partner_id),
            "address": self.address,
            "city": self.city,
            "region": self.region,
            "latitude": "" if self.latitude is None else _coord_text(self.latitude),
            "longitude": "" if self.longitude is None else _coord_text(self.longitude),
            "timezone": self.timezone,
        }


@dataclass(frozen=True)
class PartnerRow:
    id: int
    code: str
    name: str


def _coord_text(value: float) -> str:
    return format(Decimal(repr(value)).normalize(), "f")


def in_scope(q: Select[Any], actor: Actor) -> Select[Any]:
    """Limit a query over ``stores`` to what the actor may see."""
    if actor.program_id is not None:
        q = q.where(st.c.program_id == actor.program_id)
    if actor.partner_id is not None:
        q = q.where(st.c.partner_id == actor.partner_id)
    if actor.store_id is not None:
        q = q.where(st.c.id == actor.store_id)
    return q


def _check_program(actor: Actor, program_id: int) -> None:
    if actor.program_id is not None and actor.program_id != program_id:
        raise ServiceError("forbidden", "this user is limited to another program", field="program")


def _store_select() -> Select[Any]:
    n_terms = (
        select(func.count())
        .select_from(tm)
        .where(tm.c.store_id == st.c.id, tm.c.status == "active")
        .scalar_subquery()
        .label("terminals")
    )
    return select(
        st.c.id,
        st.c.program_id,
        st.c.partner_id,
        pt.c.code.label("partner_code"),
        pt.c.name.label("partner_name"),
        st.c.code,
        st.c.name,
        st.c.address,
        st.c.city,
        st.c.region,
        st.c.latitude,
        st.c.longitude,
        st.c.timezone,
        n_terms,
    ).join(pt, pt.c.id == st.c.partner_id)


def _row(r: Any) -> StoreRow:
    return StoreRow(
        r.id,
        r.program_id,
        r.partner_id,
        r.partner_code,
        r.partner_name,
        r.code,
        r.name,
        r.address or "",
        r.city or "",
        r.region or "",
        r.latitude,
        r.longitude,
        r.timezone,
        r.terminals or 0,
    )


async def list_stores(
    rt: Runtime,
    actor: Actor,
    program_id: int,
    *,
    text: str = "",
    city: str = "",
    partner_id: int | None = None,
    sort: str = "code",
    descending: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[StoreRow], int]:
    """One page of the program's stores the actor may see, and how many match."""
    actor.require(Perm.STORES_READ)
    _check_program(actor, program_id)
    q = in_scope(_store_select().where(st.c.program_id == program_id), actor)
    if text.strip():
        like = text.strip().lower()
        q = q.where(
            func.lower(st.c.code).contains(like, autoescape=True)
            | func.lower(st.c.name).contains(like, autoescape=True)
            | func.lower(st.c.address).contains(like, autoescape=True)
        )
    if city.strip():
        q = q.where(st.c.city == city.strip())
    if partner_id is not None:
        q = q.where(st.c.partner_id == partner_id)
    keys = {
        "code": st.c.code,
        "name": st.c.name,
        "city": st.c.city,
        "partner": pt.c.name,
        "terminals": q.selected_columns.terminals,
    }
    key = keys.get(sort, st.c.code)
    order = [key.desc() if descending else key.asc(), st.c.id.asc()]
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
        rows = (await conn.execute(q.order_by(*order).offset(offset).limit(limit))).all()
    return [_row(r) for r in rows], int(total)


async def get_store(rt: Runtime, actor: Actor, store_id: int) -> StoreRow:
    actor.require(Perm.STORES_READ)
    async with rt.engine.connect() as conn:
        return await _get(conn, actor, store_id)


async def _get(conn: AsyncConnection, actor: Actor, store_id: int) -> StoreRow:
    row = (await conn.execute(in_scope(_store_select().where(st.c.id == store_id), actor))).first()
    if row is None:
        raise ServiceError("not_found", f"no store {store_id}", field="store")
    return _row(row)


async def list_cities(rt: Runtime, actor: Actor, program_id: int) -> list[str]:
    actor.require(Perm.STORES_READ)
    q = in_scope(
        select(st.c.city).where(st.c.program_id == program_id, st.c.city != "").distinct(),
        actor,
    )
    async with rt.engine.connect() as conn:
        return sorted(r[0] for r in (await conn.execute(q)).all())


async def list_partners(rt: Runtime, actor: Actor, program_id: int) -> list[PartnerRow]:
    """The program's partners the actor may see (a partner user: its own)."""
    q = select(pt.c.id, pt.c.code, pt.c.name).where(pt.c.program_id == program_id)
    if actor.program_id is not None:
        q = q.where(pt.c.program_id == actor.program_id)
    if actor.partner_id is not None:
        q = q.where(pt.c.id == actor.partner_id)
    if actor.store_id is not None:  # a store's staff: the store's partner
        q = q.where(
            pt.c.id == select(st.c.partner_id).where(st.c.id == actor.store_id).scalar_subquery()
        )
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q.order_by(pt.c.name))).all()
    return [PartnerRow(r.id, r.code, r.name) for r in rows]


def _text(values: dict[str, Any], name: str, limit: int) -> str:
    v = values.get(name)
    text = "" if v is None else str(v).strip()
    if len(text) > limit:
        raise ServiceError("validation_failed", f"at most {limit} characters", field=name)
    return text


def _coord(values: dict[str, Any], name: str, bound: int) -> float | None:
    raw = values.get(name)
    if raw is None or str(raw).strip() == "":
        return None
    try:
        d = Decimal(str(raw).strip().replace(",", "."))
    except InvalidOperation:
        raise ServiceError("validation_failed", "not a number", field=name) from None
    if not d.is_finite() or not -bound <= d <= bound:
        raise ServiceError("validation_failed", f"must be between -{bound} and {bound}", field=name)
    if d.as_tuple().exponent < -7:  # type: ignore[operator]
        raise ServiceError("validation_failed", "at most 7 decimal places", field=name)
    return float(d)


def clean_store(values: dict[str, Any]) -> dict[str, Any]:
    """A store's fields from a form or an API body, checked; a refusal names its field
    (and lists every wrong field in ``errors``).

    Coordinates are degrees (latitude -90..90, longitude -180..180), read as exact
    decimals and stored as floats (they are not money)."""
    problems: dict[str, str] = {}
    out: dict[str, Any] = {}

    def check(name: str, fn: Any) -> None:
        try:
            out[name] = fn()
        except ServiceError as exc:
            problems[exc.field or name] = exc.detail

    def code() -> str:
        text = _text(values, "code", 64)
        if not CODE_RE.match(text):
            raise ServiceError(
                "validation_failed",
                "letters, digits, '-', '_' or '.', up to 64, starting with a letter or digit",
                field="code",
            )
        return text

    def name() -> str:
        text = _text(values, "name", 200)
        if not text:
            raise ServiceError("validation_failed", "the store's name is required", field="name")
        return text

    def partner() -> int:
        try:
            return int(str(values.get("partner")))
        except ValueError:
            raise ServiceError("validation_failed", "choose the partner", field="partner") from None

    def timezone() -> str:
        tz = _text(values, "timezone", 64) or "Europe/Moscow"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ServiceError(
                "validation_failed", "unknown time zone (e.g. Europe/Moscow)", field="timezone"
            ) from None
        return tz

    check("code", code)
    check("name", name)
    check("partner_id", partner)
    for f, limit in (("address", 300), ("city", 100), ("region", 100)):
        check(f, lambda f=f, limit=limit: _text(values, f, limit))
    check("latitude", lambda: _coord(values, "latitude", 90))
    check("longitude", lambda: _coord(values, "longitude", 180))
    check("timezone", timezone)
    if (
        "latitude" in out
        and "longitude" in out
        and (out["latitude"] is None) != (out["longitude"] is None)
    ):
        missing = "longitude" if out["longitude"] is None else "latitude"
        problems[missing] = "give both coordinates or neither"
    if problems:
        first = next(iter(problems))
        raise ServiceError(
            "validation_failed",
            problems[first],
            field=first,
            errors=[{"field": k, "code": "bad_value", "detail": v} for k, v in problems.items()],
        )
    return {
        k: out[k]
        for k in (
            "code",
            "name",
            "partner_id",
            "address",
            "city",
            "region",
            "latitude",
            "longitude",
            "timezone",
        )
    }


async def _check_partner(conn: AsyncConnection, actor: Actor, program_id: int, pid: int) -> None:
    q = select(pt.c.id).where(pt.c.id == pid, pt.c.program_id == program_id)
    if actor.partner_id is not None:
        q = q.where(pt.c.id == actor.partner_id)
    if (await conn.execute(q)).first() is None:
        raise ServiceError("validation_failed", "no such partner in the program", field="partner")


async def _code_taken(
    conn: AsyncConnection, program_id: int, code: str, but: int | None = None
) -> None:
    q = select(st.c.id).where(st.c.program_id == program_id, st.c.code == code)
    if but is not None:
        q = q.where(st.c.id != but)
    if (await conn.execute(q)).first() is not None:
        raise ServiceError("conflict", f"the store code {code!r} is taken", field="code")


async def do_create_store(
    rt: Runtime, actor: Actor, program_id: int, values: dict[str, Any]
) -> int:
    """A new store in the program; audited ``store.create``."""
    actor.require(Perm.STORES_WRITE)
    _check_program(actor, program_id)
    if actor.store_id is not None:
        raise ServiceError("forbidden", "a store's user cannot add stores", field=None)
    data = clean_store(values)
    now = rt.now()
    async with rt.engine.begin() as conn:
        await _check_partner(conn, actor, program_id, data["partner_id"])
        await _code_taken(conn, program_id, data["code"])
        sid: int = (
            await conn.execute(insert(st).returning(st.c.id), {"program_id": program_id, **data})
        ).scalar_one()
        await audit.record(
            conn,
            actor,
            "store.create",
            "store",
            sid,
            at=now,
            program_id=program_id,
            partner_id=data["partner_id"],
            after=data,
        )
    return sid


async def do_update_store(
    rt: Runtime, actor: Actor, store_id: int, values: dict[str, Any]
) -> StoreRow:
    """Change a store (every field is given, as a form sends them); audited
    ``store.update`` with the fields that changed, before and after."""
    actor.require(Perm.STORES_WRITE)
    now = rt.now()
    async with rt.engine.begin() as conn:
        old = await _get(conn, actor, store_id)
        merged = {**old.form(), **{k: v for k, v in values.items() if v is not None}}
        data = clean_store(merged)
        await _check_partner(conn, actor, old.program_id, data["partner_id"])
        await _code_taken(conn, old.program_id, data["code"], but=store_id)
        before_all = {**old.form(), "partner_id": old.partner_id}
        before_all["latitude"], before_all["longitude"] = old.latitude, old.longitude
        changed = {k: v for k, v in data.items() if before_all.get(k) != v}
        if changed:
            await conn.execute(update(st).where(st.c.id == store_id).values(changed))
            await audit.record(
                conn,
                actor,
                "store.update",
                "store",
                store_id,
                at=now,
                program_id=old.program_id,
                partner_id=data["partner_id"],
                before={k: before_all.get(k) for k in changed},
                after=changed,
            )
        return await _get(conn, actor, store_id)


@dataclass(frozen=True)
class TerminalView:
    id: int
    store_id: int
    name: str
    key_prefix: str
    status: str
    created_at: datetime
    disabled_at: datetime | None
    last_seen_at: datetime | None


async def list_store_terminals(rt: Runtime, actor: Actor, store_id: int) -> list[TerminalView]:
    """The store's terminals (active first), with when each was last seen."""
    actor.require(Perm.STORES_READ)
    async with rt.engine.connect() as conn:
        await _get(conn, actor, store_id)
        rows = (
            await conn.execute(
                select(
                    tm.c.id,
                    tm.c.store_id,
                    tm.c.name,
                    tm.c.key_prefix,
                    tm.c.status,
                    tm.c.created_at,
                    tm.c.disabled_at,
                    tm.c.last_seen_at,
                )
                .where(tm.c.store_id == store_id)
                .order_by((tm.c.status == "active").desc(), tm.c.id)
            )
        ).all()
    return [TerminalView(*r) for r in rows]


async def terminal_store(rt: Runtime, actor: Actor, terminal_id: int) -> int:
    """The store of a terminal the actor may see (404 otherwise)."""
    async with rt.engine.connect() as conn:
        sid = (
            await conn.execute(select(tm.c.store_id).where(tm.c.id == terminal_id))
        ).scalar_one_or_none()
        if sid is None:
            raise ServiceError("not_found", f"no terminal {terminal_id}", field="terminal")
        try:
            await _get(conn, actor, int(sid))
        except ServiceError:
            raise ServiceError(
                "not_found", f"no terminal {terminal_id}", field="terminal"
            ) from None
    return int(sid)


async def store_in_scope(conn: AsyncConnection, actor: Actor, store_id: int) -> StoreRow:
    """For services in the same transaction (terminals)."""
    return await _get(conn, actor, store_id)
