"""Admin API tokens: a key per integration or person, shown once, stored as a SHA-256 hash.

A token may be limited to one program (``program_id``); without it, it reaches every
program.  A token of the partner role acts for one partner (``partner_id``: a partner's
own system calling the events API), a store manager's or cashier's for one store — the
scopes console users have (``services.scope``).  Disabling is immediate: tokens are
looked up on every admin call (the admin API is not the till's hot path, so there is no
cache to wait for).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from kopilka.domain.roles import NEEDS_PARTNER, NEEDS_STORE, Role
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.programs import ProgramError, not_found
from kopilka.services.runtime import Runtime, hash_key
from kopilka.store import tables as t

KEY_PREFIX = "ka_"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class AdminToken:
    """Who calls the admin API; ``name`` is the author of the changes made with it."""

    id: int
    name: str
    role: str
    program_id: int | None
    program_code: str | None
    active: bool
    partner_id: int | None = None
    store_id: int | None = None

    def actor(self, ip: str | None = None) -> Actor:
        """The token as the author of changes (audit log), with its role's permissions and
        its program / partner / store scope."""
        return Actor(
            "token",
            self.id,
            self.name,
            self.role,
            ip,
            self.program_id,
            self.partner_id,
            self.store_id,
        )

    def check_program(self, code: str) -> None:
        """Refuse a program outside the token's scope (a new program included)."""
        if self.program_code is not None and code != self.program_code:
            raise ProgramError(
                "forbidden", f"this token is limited to program {self.program_code!r}", field="code"
            )


@dataclass(frozen=True)
class TokenRow:
    id: int
    name: str
    role: str
    program_code: str | None
    key_prefix: str
    created_at: datetime
    disabled_at: datetime | None


async def do_add_token(
    rt: Runtime,
    *,
    name: str,
    program_code: str | None = None,
    key: str | None = None,
    role: str = "owner",
    partner_code: str | None = None,
    store_code: str | None = None,
) -> str:
    """Create a token; returns its key (the only time it is seen).  The token acts with
    the permissions of ``role`` (domain/roles.py), as a console user of that role would;
    the partner role names its partner, a store manager or cashier its store (both within
    ``program_code``, which they then require)."""
    if not name.strip():
        raise ServiceError("validation_failed", "give the token a name", field="name")
    if role not in {r.value for r in Role}:
        raise ServiceError(
            "validation_failed", f"role must be one of {[r.value for r in Role]}", field="role"
        )
    if Role(role) in NEEDS_PARTNER and partner_code is None:
        raise ServiceError("validation_failed", "the partner role needs a partner", field="partner")
    if Role(role) in NEEDS_STORE and store_code is None:
        raise ServiceError("validation_failed", f"the {role} role needs a store", field="store")
    if (partner_code or store_code) and program_code is None:
        raise ServiceError(
            "validation_failed", "name the program of the partner or store", field="program"
        )
    key = key or new_key()
    async with rt.engine.begin() as conn:
        program_id = partner_id = store_id = None
        if program_code is not None:
            program_id = (
                await conn.execute(select(t.programs.c.id).where(t.programs.c.code == program_code))
            ).scalar_one_or_none()
            if program_id is None:
                raise not_found(program_code)
        if partner_code is not None and Role(role) in NEEDS_PARTNER:
            partner_id = (
                await conn.execute(
                    select(t.partners.c.id).where(
                        t.partners.c.program_id == program_id, t.partners.c.code == partner_code
                    )
                )
            ).scalar_one_or_none()
            if partner_id is None:
                raise ServiceError(
                    "validation_failed", f"no partner {partner_code!r}", field="partner"
                )
        if store_code is not None and Role(role) in NEEDS_STORE:
            store = (
                await conn.execute(
                    select(t.stores.c.id, t.stores.c.partner_id).where(
                        t.stores.c.program_id == program_id, t.stores.c.code == store_code
                    )
                )
            ).first()
            if store is None:
                raise ServiceError("validation_failed", f"no store {store_code!r}", field="store")
            store_id = store.id
        await conn.execute(
            insert(t.admin_tokens),
            {
                "name": name.strip(),
                "role": role,
                "program_id": program_id,
                "partner_id": partner_id,
                "store_id": store_id,
                "key_hash": hash_key(key),
                "key_prefix": key[:10],
                "created_at": rt.now(),
            },
        )
    return key


_COLUMNS = (
    t.admin_tokens.c.id,
    t.admin_tokens.c.name,
    t.admin_tokens.c.role,
    t.programs.c.code,
    t.admin_tokens.c.key_prefix,
    t.admin_tokens.c.created_at,
    t.admin_tokens.c.disabled_at,
    t.admin_tokens.c.program_id,
    t.admin_tokens.c.partner_id,
    t.admin_tokens.c.store_id,
)


async def list_tokens(rt: Runtime) -> list[TokenRow]:
    q = (
        select(*_COLUMNS)
        .outerjoin(t.programs, t.programs.c.id == t.admin_tokens.c.program_id)
        .order_by(t.admin_tokens.c.id)
    )
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    return [TokenRow(*r[:7]) for r in rows]


async def do_disable_token(rt: Runtime, token_id: int) -> None:
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            update(t.admin_tokens)
            .where(t.admin_tokens.c.id == token_id, t.admin_tokens.c.disabled_at.is_(None))
            .values(disabled_at=rt.now())
        )
        if res.rowcount == 0:
            exists = (
                await conn.execute(
                    select(t.admin_tokens.c.id).where(t.admin_tokens.c.id == token_id)
                )
            ).first()
            if exists is None:
                raise ServiceError("validation_failed", f"no token {token_id}", field="id")


async def token_by_key(rt: Runtime, key: str) -> AdminToken | None:
    q = (
        select(*_COLUMNS)
        .outerjoin(t.programs, t.programs.c.id == t.admin_tokens.c.program_id)
        .where(t.admin_tokens.c.key_hash == hash_key(key))
    )
    async with rt.engine.connect() as conn:
        r = (await conn.execute(q)).first()
    if r is None:
        return None
    return AdminToken(
        r.id,
        r.name,
        r.role,
        r.program_id,
        r.code,
        r.disabled_at is None,
        r.partner_id,
        r.store_id,
    )


async def check_token(rt: Runtime, authorization: str) -> AdminToken:
    """The caller of an admin call, from its ``Authorization: Bearer <key>`` header."""
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ServiceError("unauthorized", "send an admin token as 'Authorization: Bearer <key>'")
    token = await token_by_key(rt, key.strip())
    if token is None:
        raise ServiceError("unauthorized", "unknown admin token")
    if not token.active:
        raise ProgramError("token_disabled", "this admin token is disabled")
    return token
