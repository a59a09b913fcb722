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


IDENTIFIER_KINDS = ("qr", "rfid")


async def do_link_identifier(rt: Runtime, number: str, *, kind: str, value: str) -> None:
    """Attach a QR token or an RFID UID to a card: the till can then identify the customer
    by scanning it (lookup and calculate accept it as ``identifier``)."""
    if kind not in IDENTIFIER_KINDS:
        raise ServiceError(
            "validation_failed", f"kind must be one of {IDENTIFIER_KINDS}", field="kind"
        )
    value = value.strip()
    if not 4 <= len(value) <= 64 or not value.isprintable() or " " in value:
        raise ServiceError(
            "validation_failed", "4 to 64 printable characters, no spaces", field="value"
        )
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(select(c.c.id, c.c.program_id).where(c.c.number == number))
        ).first()
        if row is None:
            raise ServiceError("unknown_identifier", f"no card {number}", field="number")
        i = t.identifiers
        taken = (
            await conn.execute(
                select(i.c.card_id).where(i.c.program_id == row.program_id, i.c.value == value)
            )
        ).first()
        if taken is not None:
            raise ServiceError("card_taken", f"{value!r} already identifies a card", field="value")
        await conn.execute(
            insert(i),
            {"program_id": row.program_id, "value": value, "kind": kind, "card_id": row.id},
        )
        column = c.c.qr_token if kind == "qr" else c.c.rfid_uid
        await conn.execute(update(c).where(c.c.id == row.id).values({column: value}))
