"""Demo data: deterministic (seeded), loaded by ``kopilka demo``.

One bonus program («Копилка Демо»: 5% back, up to 30% of a receipt paid by points,
points live 365 days), one partner with 24 stores in 8 Russian cities, a catalogue of a
few hundred goods, 3000 members with a card each and a year of receipts up to now, about
two thirds of them by members.  ``build.py`` generates everything in memory; this module
writes it in bulk, in one transaction, so that a half-loaded demo never exists.

Loading again finds the program and changes nothing.  Ids are taken from the next free id
of each table, so the demo can join a database that already has other programs; it is
meant for a database nobody else writes to while it loads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.demo.build import DEMO_CUSTOMERS, DemoBuilder, IdBase, Row
from kopilka.demo.data import PARTNER_NAME
from kopilka.demo.program import demo_document
from kopilka.domain.program import ProgramSettings
from kopilka.domain.rules.model import validate_document
from kopilka.services import users
from kopilka.services.admin import do_add_token
from kopilka.services.audit import CLI
from kopilka.services.levels import recompute_levels
from kopilka.services.runtime import Runtime, hash_key, settings_to_json
from kopilka.services.terminals import new_key
from kopilka.store import tables as t

PROGRAM_CODE = "demo"
PROGRAM_NAME = "Копилка Демо"
PROGRAM = ProgramSettings(
    earn_percent=Decimal("5"),
    burn_max_percent=Decimal("30"),
    point_value=Decimal("1"),
    points_step=Decimal("1"),
    earn_rounding="floor",
    min_payment=Decimal("1"),
    activation_delay_days=0,
    expiry_days=365,
    timezone="Europe/Moscow",
)
CHUNK = 10_000
# What ``kopilka demo`` prints, in this order, after the stores, terminals and products.
_COUNTS = (
    "customers",
    "receipts",
    "member receipts",
    "receipt lines",
    "lots",
    "ledger entries",
    "points balance",
)

# Tables whose ids the builder assigns (IdBase fields have the same names).
_ID_TABLES = (
    t.stores,
    t.terminals,
    t.customers,
    t.accounts,
    t.cards,
    t.receipts,
    t.lots,
    t.ledger_entries,
)


def demo_terminal_key(seed: int) -> str:
    return "kp_demo_" + hashlib.sha256(f"kopilka-demo-{seed}".encode()).hexdigest()[:24]


def demo_admin_key(seed: int) -> str:
    """The demo's admin API token: printed, and as public as the demo terminal key."""
    return "ka_demo_" + hashlib.sha256(f"kopilka-demo-admin-{seed}".encode()).hexdigest()[:24]


async def _ensure_admin_token(rt: Runtime, seed: int) -> str:
    key = demo_admin_key(seed)
    async with rt.engine.connect() as conn:
        known = (
            await conn.execute(
                select(t.admin_tokens.c.id).where(t.admin_tokens.c.key_hash == hash_key(key))
            )
        ).first()
    if known is None:
        await do_add_token(rt, name="demo", program_code=PROGRAM_CODE, key=key)
    return key


# The console's demo people: (login, name, role); each one's password is
# ``kopilka-<login>``, printed by ``kopilka demo`` and as public as the demo terminal key.
DEMO_USERS = (
    ("owner", "Ольга Владелица", "owner"),
    ("marketer", "Мария Маркетолог", "marketer"),
    ("analyst", "Андрей Аналитик", "analyst"),
    ("support", "Сергей Поддержка", "support"),
    ("security", "Борис Безопасность", "security"),
    ("manager", "Дарья Директор", "store_manager"),
    ("partner", "Павел Партнёр", "partner"),
    ("cashier", "Катя Кассир", "cashier"),
)


def demo_password(login: str) -> str:
    return f"kopilka-{login}"


async def _ensure_users(rt: Runtime) -> list[tuple[str, str, str]]:
    """The demo's console users, made once: (login, password, role)."""
    async with rt.engine.connect() as conn:
        program = (
            await conn.execute(select(t.programs.c.id).where(t.programs.c.code == PROGRAM_CODE))
        ).scalar_one()
        known = set((await conn.execute(select(t.admin_users.c.login))).scalars())
        partner = (
            await conn.execute(
                select(t.partners.c.id).where(t.partners.c.program_id == program).limit(1)
            )
        ).scalar_one()
        store = (
            await conn.execute(
                select(t.stores.c.id)
                .where(t.stores.c.program_id == program)
                .order_by(t.stores.c.id)
                .limit(1)
            )
        ).scalar_one()
    for login, name, role in DEMO_USERS:
        if login in known:
            continue
        await users.do_create_user(
            rt,
            CLI,
            login=login,
            name=name,
            password=demo_password(login),
            role=role,
            program_id=program,
            partner_id=partner if role == "partner" else None,
            store_id=store if role in ("store_manager", "cashier") else None,
        )
    return [(login, demo_password(login), role) for login, _, role in DEMO_USERS]


@dataclass
class DemoInfo:
    terminal_key: str
    admin_token: str = ""
    users: list[tuple[str, str, str]] = field(default_factory=list)
    card_numbers: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    already_loaded: bool = False


async def load_demo(
    rt: Runtime, *, seed: int = 42, customers: int = 3000, days: int = 365
) -> DemoInfo:
    """Load the demo program with ``customers`` members and ``days`` of receipts up to now.

    The same seed (and the same clock) gives the same data, with one exception: the
    stores' own terminals get random keys (``secrets``) that nobody sees, because a key
    that anyone can work out from a seed would let anyone post receipts as those stores.
    Only the demo terminal's key comes from the seed; it is printed.
    """
    key = demo_terminal_key(seed)
    now = rt.now()
    async with rt.engine.begin() as conn:
        existing = (
            await conn.execute(select(t.programs.c.id).where(t.programs.c.code == PROGRAM_CODE))
        ).scalar_one_or_none()
        if existing is not None:
            info = await _loaded(conn, key, existing)
    if existing is not None:
        info.admin_token = await _ensure_admin_token(rt, seed)
        info.users = await _ensure_users(rt)
        return info
    async with rt.engine.begin() as conn:
        program_id = (
            await conn.execute(
                insert(t.programs).returning(t.programs.c.id),
                {
                    "code": PROGRAM_CODE,
                    "name": PROGRAM_NAME,
                    "settings": settings_to_json(PROGRAM),
                    "created_at": now,
                },
            )
        ).scalar_one()
        partner_id = (
            await conn.execute(
                insert(t.partners).returning(t.partners.c.id),
                {"program_id": program_id, "code": "main", "name": PARTNER_NAME},
            )
        ).scalar_one()
        b = DemoBuilder(
            seed=seed,
            now=now,
            program=PROGRAM,
            program_id=program_id,
            partner_id=partner_id,
            ids=await _next_ids(conn),
            customers=customers,
            days=days,
        )
        await _insert(conn, t.stores, b.store_rows())
        await _insert(conn, t.terminals, _terminal_rows(b, key, now))
        await _insert(conn, t.customers, b.customer_rows())
        for receipts, lines in b.receipts():
            await _insert(conn, t.receipts, receipts)
            await _insert(conn, t.receipt_lines, lines)
        await _insert(conn, t.accounts, b.account_rows())
        await _insert(conn, t.cards, b.card_rows())
        await _insert(conn, t.identifiers, b.identifier_rows())
        await _insert(conn, t.lots, b.lot_rows_list())
        await _insert(conn, t.ledger_entries, b.entry_rows())
        if not rt.sqlite:
            await _advance_sequences(conn)
        # The year of history was priced by the base rule (version 1); from now on the
        # demo program has tiers and promotions (version 2).
        doc = validate_document(demo_document(PROGRAM_CODE, PROGRAM_NAME))
        await conn.execute(
            insert(t.program_versions),
            {
                "program_id": program_id,
                "version": 2,
                "document": orjson.dumps(
                    doc.model_dump(mode="json", by_alias=True, exclude_none=True)
                ).decode(),
                "author": "demo",
                "note": "tiers and promotions",
                "created_at": now,
            },
        )
        await conn.execute(
            update(t.programs).where(t.programs.c.id == program_id).values(version=2)
        )
    await recompute_levels(rt, program_id=program_id)
    admin_token = await _ensure_admin_token(rt, seed)
    counts = {
        "stores": len(b.stores),
        "terminals": len(b.stores) + 1,
        "products": len(b.products),
        **{name: b.counts[name] for name in _COUNTS},
    }
    cards = [c.card_number for c in b.customers[:DEMO_CUSTOMERS]]
    return DemoInfo(key, admin_token, await _ensure_users(rt), cards, counts)


def _terminal_rows(b: DemoBuilder, key: str, now: datetime) -> list[Row]:
    opened = b.day_starts[0] - timedelta(days=30)
    first = b.stores[0]
    rows: list[Row] = [
        {
            "id": first.terminal_id - 1,
            "program_id": b.program_id,
            "store_id": first.id,
            "name": "Демо-касса",
            "key_hash": hash_key(key),
            "key_prefix": key[:10],
            "status": "active",
            "created_at": now,
        }
    ]
    for s in b.stores:
        store_key = new_key()
        rows.append(
            {
                "id": s.terminal_id,
                "program_id": b.program_id,
                "store_id": s.id,
                "name": "Касса 1",
                "key_hash": hash_key(store_key),
                "key_prefix": store_key[:10],
                "status": "active",
                "created_at": opened,
            }
        )
    return rows


async def _next_ids(conn: AsyncConnection) -> IdBase:
    ids = IdBase()
    for table in _ID_TABLES:
        top = (await conn.execute(select(func.max(table.c.id)))).scalar_one_or_none()
        setattr(ids, table.name, (top or 0) + 1)
    return ids


async def _advance_sequences(conn: AsyncConnection) -> None:
    """Rows were written with explicit ids; PostgreSQL's sequences must move past them."""
    for table in _ID_TABLES:
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"(SELECT max(id) FROM {table.name}))"
            )
        )


async def _insert(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    for i in range(0, len(rows), CHUNK):
        await conn.execute(insert(table), list(rows[i : i + CHUNK]))


async def _loaded(conn: AsyncConnection, key: str, program_id: int) -> DemoInfo:
    """What an earlier load made: the same key and cards, and the counts as they are now."""
    cards = (
        (
            await conn.execute(
                select(t.cards.c.number)
                .where(t.cards.c.program_id == program_id)
                .order_by(t.cards.c.id)
                .limit(DEMO_CUSTOMERS)
            )
        )
        .scalars()
        .all()
    )

    async def count(table: Table) -> int:
        n = await conn.execute(
            select(func.count()).select_from(table).where(table.c.program_id == program_id)
        )
        return int(n.scalar_one())

    counts = {
        "stores": await count(t.stores),
        "terminals": await count(t.terminals),
        "customers": await count(t.customers),
        "receipts": await count(t.receipts),
        "receipt lines": await count(t.receipt_lines),
        "ledger entries": await count(t.ledger_entries),
    }
    return DemoInfo(key, card_numbers=list(cards), counts=counts, already_loaded=True)
