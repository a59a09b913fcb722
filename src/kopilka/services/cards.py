"""Cards: block a lost card (and unblock it), replace it with a new one on the same account,
link a QR token or an RFID UID.

Every change writes an audit row (the card's state before and after) in its own
transaction.  The console and the admin API pass their ``actor`` and a mandatory reason;
the operator's CLI acts as ``audit.CLI``.  With ``program_id`` the card is looked for in
that program only (card numbers are unique per program).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, insert, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.identifiers import is_valid_card_number
from kopilka.domain.roles import Perm
from kopilka.services import audit
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

c = t.cards


def _why(actor: audit.Actor, reason: str | None, perm: Perm) -> str | None:
    """People (console, API) need the permission and a reason; the CLI needs neither."""
    if actor.kind in ("cli", "system"):
        return (reason or "").strip()[:500] or None
    actor.require(perm)
    return audit.require_reason(reason)


def _in_program(program_id: int | None) -> ColumnElement[bool]:
    return true() if program_id is None else c.c.program_id == program_id


async def _card(
    conn: AsyncConnection, number: str, program_id: int | None, *, field: str = "number"
) -> Any:
    rows = (
        await conn.execute(select(c).where(c.c.number == number, _in_program(program_id)))
    ).all()
    if not rows:
        raise ServiceError("unknown_identifier", f"no card {number}", field=field)
    if len(rows) > 1:
        raise ServiceError(
            "validation_failed", f"card {number} is in several programs: name one", field=field
        )
    return rows[0]


async def _set_status(
    rt: Runtime,
    number: str,
    *,
    actor: audit.Actor,
    reason: str | None,
    program_id: int | None,
    frm: str,
    to: str,
    action: str,
) -> int:
    why = _why(actor, reason, Perm.CARDS_BLOCK)
    async with rt.engine.begin() as conn:
        card = await _card(conn, number, program_id)
        if card.status != frm:
            raise ServiceError(
                "conflict" if card.status in ("active", "blocked") else "card_blocked",
                f"card {number} is {card.status}, not {frm}",
                field="number",
            )
        await conn.execute(
            update(c)
            .where(c.c.id == card.id, c.c.status == frm)
            .values(status=to, block_reason=(why or "")[:200] or None if to == "blocked" else None)
        )
        await audit.record(
            conn,
            actor,
            action,
            "card",
            number,
            at=rt.now(),
            program_id=card.program_id,
            reason=why,
            before={"status": frm, "customer_id": card.customer_id},
            after={"status": to, "customer_id": card.customer_id},
        )
    return int(card.customer_id)


async def do_block_card(
    rt: Runtime,
    number: str,
    *,
    reason: str,
    actor: audit.Actor = audit.CLI,
    program_id: int | None = None,
) -> int:
    """A blocked card identifies nobody at the till (422 card_blocked); the account stays.

    Returns the card's customer id.
    """
    return await _set_status(
        rt,
        number,
        actor=actor,
        reason=reason,
        program_id=program_id,
        frm="active",
        to="blocked",
        action="card.block",
    )


async def do_unblock_card(
    rt: Runtime,
    number: str,
    *,
    reason: str | None,
    actor: audit.Actor = audit.CLI,
    program_id: int | None = None,
) -> int:
    """A blocked card identifies its customer again (a replaced card never does)."""
    return await _set_status(
        rt,
        number,
        actor=actor,
        reason=reason,
        program_id=program_id,
        frm="blocked",
        to="active",
        action="card.unblock",
    )


async def do_replace_card(
    rt: Runtime,
    old: str,
    new: str,
    *,
    actor: audit.Actor = audit.CLI,
    reason: str | None = None,
    program_id: int | None = None,
) -> int:
    """Move the customer to a new card: same account, the old card is marked replaced.

    The balance stays where it is, on the account, which the new card belongs to.  The
    phone, QR and RFID identifiers follow the customer to the new card; the old number
    still resolves, to a card the till is told is replaced (422 card_blocked).  Returns
    the customer id.
    """
    why = _why(actor, reason, Perm.CUSTOMERS_WRITE)
    new = new.strip()
    if not is_valid_card_number(new):
        raise ServiceError("validation_failed", "card number check digit is wrong", field="new")
    try:
        async with rt.engine.begin() as conn:
            row = await _card(conn, old, program_id, field="old")
            if row.status == "replaced":
                raise ServiceError("conflict", f"card {old} was replaced already", field="old")
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
            await audit.record(
                conn,
                actor,
                "card.replace",
                "card",
                old,
                at=rt.now(),
                program_id=row.program_id,
                reason=why,
                before={"card": old, "status": row.status, "customer_id": row.customer_id},
                after={"card": new, "replaced": old, "customer_id": row.customer_id},
            )
    except IntegrityError:
        raise ServiceError(
            "card_taken", f"card {new} already belongs to a customer", field="new"
        ) from None
    return int(row.customer_id)


IDENTIFIER_KINDS = ("qr", "rfid")


async def do_link_identifier(
    rt: Runtime, number: str, *, kind: str, value: str, actor: audit.Actor = audit.CLI
) -> None:
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
        await audit.record(
            conn,
            actor,
            "card.link",
            "card",
            number,
            at=rt.now(),
            program_id=row.program_id,
            after={"kind": kind, "value": value},
        )
