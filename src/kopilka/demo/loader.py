"""Demo data: deterministic (seeded), loaded by ``kopilka demo``.

Minimal placeholder: one program, one partner, two stores, one terminal, a few customers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import insert, select

from kopilka.domain.identifiers import make_card_number
from kopilka.domain.program import ProgramSettings
from kopilka.services.customers import create_account_and_card
from kopilka.services.runtime import Runtime, hash_key, settings_to_json
from kopilka.store import tables as t

PROGRAM_CODE = "demo"


def demo_terminal_key(seed: int) -> str:
    return "kp_demo_" + hashlib.sha256(f"kopilka-demo-{seed}".encode()).hexdigest()[:24]


@dataclass
class DemoInfo:
    terminal_key: str
    card_numbers: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    already_loaded: bool = False


async def load_demo(rt: Runtime, *, seed: int = 42, customers: int = 30) -> DemoInfo:
    key = demo_terminal_key(seed)
    now = rt.now()
    async with rt.engine.begin() as conn:
        existing = (
            await conn.execute(select(t.programs.c.id).where(t.programs.c.code == PROGRAM_CODE))
        ).first()
        if existing is not None:
            cards = (
                (
                    await conn.execute(
                        select(t.cards.c.number)
                        .where(t.cards.c.program_id == existing.id)
                        .order_by(t.cards.c.id)
                        .limit(3)
                    )
                )
                .scalars()
                .all()
            )
            return DemoInfo(key, list(cards), already_loaded=True)
        pid = (
            await conn.execute(
                insert(t.programs).returning(t.programs.c.id),
                {
                    "code": PROGRAM_CODE,
                    "name": "Копилка Демо",
                    "created_at": now,
                    "settings": settings_to_json(ProgramSettings()),
                },
            )
        ).scalar_one()
        partner = (
            await conn.execute(
                insert(t.partners).returning(t.partners.c.id),
                {"program_id": pid, "code": "main", "name": "Демо-маркет"},
            )
        ).scalar_one()
        store = (
            await conn.execute(
                insert(t.stores).returning(t.stores.c.id),
                {
                    "program_id": pid,
                    "partner_id": partner,
                    "code": "MSK-001",
                    "name": "Демо-маркет на Тверской",
                    "address": "Тверская ул., 1",
                    "city": "Москва",
                    "region": "Москва",
                    "latitude": 55.7575,
                    "longitude": 37.6137,
                    "timezone": "Europe/Moscow",
                },
            )
        ).scalar_one()
        await conn.execute(
            insert(t.terminals),
            {
                "program_id": pid,
                "store_id": store,
                "name": "Касса 1",
                "key_hash": hash_key(key),
                "key_prefix": key[:10],
                "status": "active",
                "created_at": now,
            },
        )
        numbers = []
        for n in range(customers):
            cid = (
                await conn.execute(
                    insert(t.customers).returning(t.customers.c.id),
                    {
                        "program_id": pid,
                        "first_name": "Иван",
                        "last_name": f"Петров{n}",
                        "phone": f"+7916{1000000 + n:07d}",
                        "registered_at": now,
                    },
                )
            ).scalar_one()
            number, _ = await create_account_and_card(
                conn,
                program_id=pid,
                customer_id=cid,
                now=now,
                card_number=make_card_number("20", 1 + n),
                phone=f"+7916{1000000 + n:07d}",
            )
            numbers.append(number)
    return DemoInfo(key, numbers[:3], {"customers": customers})
