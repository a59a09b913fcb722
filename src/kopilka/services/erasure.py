"""Erasure of a customer's personal data (issue 10, 152-FZ art. 21): irreversible.

What goes: names (the first name becomes the pseudonym ``erased-<12 hex>``, random, so
nothing links it back to the person), phone, e-mail, birthday, gender, city, device id,
the external id, the phone and e-mail consents (withdrawn, recorded in ``consents`` with
the processing-of-data consent), every identifier of every card (card number, phone, QR
token, RFID UID: the customer can no longer be found by them; the card rows stay,
renumbered ``erased-<card id>`` and blocked, so the old plastic number is free), unused
one-time codes, sessions and their IP addresses.

What stays, under the pseudonym: the account, its balance, lots and ledger (append-only;
``kopilka ledger verify`` stays green), receipts and their lines — accounting needs them.
Reached from the cabinet (the member's own request), the admin API, the console and the
CLI (``kopilka customer erase``); each writes its audit row in the same transaction.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.roles import Perm
from kopilka.services import audit, consents
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

PSEUDONYM_PREFIX = "erased-"


def new_pseudonym() -> str:
    return PSEUDONYM_PREFIX + secrets.token_hex(6)


async def erase_in(
    conn: AsyncConnection,
    *,
    program_id: int,
    customer_id: int,
    now: datetime,
    source: str,
    actor: str,
) -> tuple[str, dict[str, Any]]:
    """Erase inside the caller's transaction; (pseudonym, what there was: flags only,
    for the audit row).  Refuses a customer already erased or merged (409)."""
    cu = t.customers
    row = (
        await conn.execute(select(cu).where(cu.c.id == customer_id, cu.c.program_id == program_id))
    ).first()
    if row is None:
        raise ServiceError("customer_not_found", f"no customer {customer_id}", field="customer_id")
    if row.status in ("deleted", "merged"):
        raise ServiceError("conflict", f"the customer is already {row.status}", field="customer_id")
    pseudonym = new_pseudonym()
    had = {
        "had_phone": row.phone is not None,
        "had_email": row.email is not None,
        "had_name": bool(row.first_name or row.last_name or row.middle_name),
        "had_birthday": row.birthday is not None,
    }
    await conn.execute(
        update(cu)
        .where(cu.c.id == customer_id)
        .values(
            first_name=pseudonym,
            last_name="",
            middle_name="",
            phone=None,
            email=None,
            birthday=None,
            gender=None,
            city=None,
            device_id=None,
            external_id=None,
            consent_sms=False,
            consent_email=False,
            status="deleted",
        )
    )
    withdrawn = {"pd": False}
    if row.consent_sms:
        withdrawn["sms"] = False
    if row.consent_email:
        withdrawn["email"] = False
    await consents.record(
        conn,
        program_id=program_id,
        customer_id=customer_id,
        changes=withdrawn,
        at=now,
        source=source,
        actor=actor,
    )
    cd = t.cards
    card_ids = (
        (await conn.execute(select(cd.c.id).where(cd.c.customer_id == customer_id))).scalars().all()
    )
    if card_ids:
        await conn.execute(t.identifiers.delete().where(t.identifiers.c.card_id.in_(card_ids)))
        for card_id in card_ids:
            await conn.execute(
                update(cd)
                .where(cd.c.id == card_id)
                .values(
                    number=f"{PSEUDONYM_PREFIX}{card_id}",
                    qr_token=None,
                    rfid_uid=None,
                    status="blocked",
                    block_reason="personal data erased",
                )
            )
    pc = t.phone_codes
    await conn.execute(
        update(pc)
        .where(pc.c.customer_id == customer_id, pc.c.used_at.is_(None))
        .values(used_at=now)
    )
    ms = t.member_sessions
    await conn.execute(
        update(ms)
        .where(ms.c.customer_id == customer_id)
        .values(ip=None, user_agent=None, ended_at=now)
    )
    return pseudonym, had


async def do_erase_customer(
    rt: Runtime,
    actor: audit.Actor,
    program_id: int,
    customer_id: int,
    *,
    reason: str | None,
) -> str:
    """Erase on a staff member's or the CLI's request (``customers.write``, a reason);
    returns the pseudonym.  Audited ``customer.erase``."""
    actor.require(Perm.CUSTOMERS_WRITE)
    if actor.program_id is not None and actor.program_id != program_id:
        raise ServiceError("forbidden", "this program is outside your scope", field=None)
    why = audit.require_reason(reason)
    now = rt.now()
    async with rt.engine.begin() as conn:
        pseudonym, had = await erase_in(
            conn,
            program_id=program_id,
            customer_id=customer_id,
            now=now,
            source="admin",
            actor=f"{actor.kind}:{actor.name}",
        )
        await audit.record(
            conn,
            actor,
            "customer.erase",
            "customer",
            customer_id,
            at=now,
            program_id=program_id,
            reason=why,
            before=had,
            after={"status": "deleted", "pseudonym": pseudonym},
        )
    return pseudonym
