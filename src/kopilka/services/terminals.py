"""Terminals: a key per cash register, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from kopilka.domain.roles import Perm
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime, hash_key
from kopilka.store import tables as t


def new_key() -> str:
    return "kp_" + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class TerminalRow:
    id: int
    store_code: str
    name: str
    key_prefix: str
    status: str
    created_at: datetime


async def do_add_terminal(
    rt: Runtime,
    *,
    store_code: str,
    name: str,
    program_code: str | None = None,
    key: str | None = None,
) -> str:
    """Create a terminal in the store; returns its key (the only time it is seen)."""
    key = key or new_key()
    async with rt.engine.begin() as conn:
        q = (
            select(t.stores.c.id, t.stores.c.program_id)
            .join(t.programs, t.programs.c.id == t.stores.c.program_id)
            .where(t.stores.c.code == store_code)
        )
        if program_code:
            q = q.where(t.programs.c.code == program_code)
        rows = (await conn.execute(q)).all()
        if not rows:
            raise ServiceError(
                "validation_failed", f"no store with code {store_code!r}", field="store"
            )
        if len(rows) > 1:
            raise ServiceError(
                "validation_failed",
                "store code exists in several programs; give --program",
                field="program",
            )
        await conn.execute(
            insert(t.terminals),
            {
                "program_id": rows[0].program_id,
                "store_id": rows[0].id,
                "name": name,
                "key_hash": hash_key(key),
                "key_prefix": key[:10],
                "status": "active",
                "created_at": rt.now(),
            },
        )
    return key


async def list_terminals(rt: Runtime) -> list[TerminalRow]:
    tt = t.terminals
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    tt.c.id,
                    t.stores.c.code,
                    tt.c.name,
                    tt.c.key_prefix,
                    tt.c.status,
                    tt.c.created_at,
                )
                .join(t.stores, t.stores.c.id == tt.c.store_id)
                .order_by(tt.c.id)
            )
        ).all()
    return [TerminalRow(*r) for r in rows]


async def do_disable_terminal(rt: Runtime, terminal_id: int) -> None:
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            update(t.terminals)
            .where(t.terminals.c.id == terminal_id)
            .values(status="disabled", disabled_at=rt.now())
        )
        if res.rowcount == 0:
            raise ServiceError("validation_failed", f"no terminal {terminal_id}", field="id")


# --- the console and the admin API (issue 6): scoped to the actor, audited ---------------


async def do_create_terminal(
    rt: Runtime, actor: Actor, store_id: int, name: str
) -> tuple[int, str]:
    """A new terminal in a store the actor may change: (id, key).  The key is returned
    this once; only its SHA-256 is kept.  Audited ``terminal.create`` (the key prefix only)."""
    from kopilka.services import stores

    actor.require(Perm.STORES_WRITE)
    name = (name or "").strip()
    if not name:
        raise ServiceError("validation_failed", "name the till (e.g. 'till 2')", field="name")
    if len(name) > 200:
        raise ServiceError("validation_failed", "at most 200 characters", field="name")
    key = new_key()
    now = rt.now()
    async with rt.engine.begin() as conn:
        store = await stores.store_in_scope(conn, actor, store_id)
        tid: int = (
            await conn.execute(
                insert(t.terminals).returning(t.terminals.c.id),
                {
                    "program_id": store.program_id,
                    "store_id": store.id,
                    "name": name,
                    "key_hash": hash_key(key),
                    "key_prefix": key[:10],
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
            tid,
            at=now,
            program_id=store.program_id,
            partner_id=store.partner_id,
            after={"store": store.code, "name": name, "key_prefix": key[:10]},
        )
    return tid, key


async def do_revoke_terminal(rt: Runtime, actor: Actor, terminal_id: int) -> None:
    """Disable a terminal: its key is refused at the till within the key cache's TTL on
    every server process (at once on this one).  Audited ``terminal.disable``."""
    from kopilka.services import stores

    actor.require(Perm.STORES_WRITE)
    store_id = await stores.terminal_store(rt, actor, terminal_id)
    now = rt.now()
    tt = t.terminals
    async with rt.engine.begin() as conn:
        store = await stores.store_in_scope(conn, actor, store_id)
        row = (
            await conn.execute(
                select(tt.c.status, tt.c.key_hash, tt.c.name).where(tt.c.id == terminal_id)
            )
        ).one()
        if row.status != "active":
            raise ServiceError("conflict", "the terminal is already disabled", field="terminal")
        await conn.execute(
            update(tt).where(tt.c.id == terminal_id).values(status="disabled", disabled_at=now)
        )
        await audit.record(
            conn,
            actor,
            "terminal.disable",
            "terminal",
            terminal_id,
            at=now,
            program_id=store.program_id,
            partner_id=store.partner_id,
            before={"status": "active", "name": row.name},
            after={"status": "disabled"},
        )
    rt.forget_terminal(row.key_hash)
