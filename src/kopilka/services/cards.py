"""Cards: block a lost card, replace it with a new one on the same account."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from kopilka.domain.identifiers import is_valid_card_number
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

c = t.cards


async def do_block_card(rt: Runtime, number: str, *, reason: str) -> None:
    """A blocked card identifies nobody at the till (422 card_blocked); the account stays."""
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            update(c)
            .where(c.c.number == number, c.c.status == "active")
            .values(status="blocked", block_reason=reason[:200])
        )
        if res.rowcount == 0:
            raise ServiceError("unknown_identifier", f"no active card {number}", field="number")


async def do_replace_card(rt: Runtime, old: str, new: str) -> None:
    """Move the customer to a new card: same account, the old card is marked replaced.

    The phone, QR and RFID identifiers follow the customer to the new card; the old
    number still resolves, to a card the till is told is replaced (422 card_blocked).
    """
    if not is_valid_card_number(new):
        raise ServiceError("validation_failed", "card number check digit is wrong", field="new")
    async with rt.engine.begin() as conn:
        row = (await conn.execute(select(c).where(c.c.number == old))).first()
        if row is None:
            raise ServiceError("unknown_identifier", f"no card {old}", field="old")
        new_id = (
            await conn.execute(
                insert(c).returning(c.c.id),
                {
                    "program_id": row.program_id,
                    "account_id": row.account_id,
                    "customer_id": row.customer_id,
                    "number": new,
                    "kind": row.kind,
                    "created_at": rt.now(),
                },
            )
        ).scalar_one()
        await conn.execute(
            update(c).where(c.c.id == row.id).values(status="replaced", replaced_by_id=new_id)
        )
        i = t.identifiers
        await conn.execute(
            update(i).where(i.c.card_id == row.id, i.c.kind != "card").values(card_id=new_id)
        )
        await conn.execute(
            insert(i),
            {"program_id": row.program_id, "value": new, "kind": "card", "card_id": new_id},
        )
