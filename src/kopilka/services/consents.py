"""Consent records (issue 10, 152-FZ art. 9): who agreed to what, when, on which text.

Every path that changes a customer's consent writes a row of ``consents`` in the same
transaction: registration at the till (source ``till``: personal data processing, and
SMS / e-mail as ticked), the cabinet's profile (``cabinet``), the console and the admin
API (``admin``), erasure (every channel withdrawn).  A row carries the version and the
SHA-256 of the consent text that was shown, so the text can be proven later; texts are
never edited in place — a new wording is a new version here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

CHANNELS = ("pd", "sms", "email")
SOURCES = ("till", "cabinet", "admin", "import")

# The texts shown (version -> text) per channel; the current version is the last one.
TEXTS: dict[str, dict[str, str]] = {
    "pd": {
        "pd-2026-12": (
            "I agree to the processing of my personal data (name, phone, e-mail, birthday, "
            "purchases) by the loyalty program operator to run the program, under Federal "
            "Law 152-FZ, until I withdraw this consent."
        ),
    },
    "sms": {
        "sms-2026-12": "I agree to receive news and offers of the loyalty program by SMS.",
    },
    "email": {
        "email-2026-12": "I agree to receive news and offers of the loyalty program by e-mail.",
    },
}


def current_text(channel: str) -> tuple[str, str]:
    """(version, SHA-256 of the text) of the channel's current consent text."""
    version, text = list(TEXTS[channel].items())[-1]
    return version, hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    channel: str
    granted: bool
    at: datetime
    text_version: str
    text_hash: str
    source: str
    actor: str


async def record(
    conn: AsyncConnection,
    *,
    program_id: int,
    customer_id: int,
    changes: dict[str, bool],
    at: datetime,
    source: str,
    actor: str = "",
) -> None:
    """Append one row per changed channel (``changes``: channel -> granted); a helper
    inside the caller's transaction, it never commits."""
    assert source in SOURCES, source
    rows = []
    for channel, granted in changes.items():
        version, digest = current_text(channel)
        rows.append(
            {
                "program_id": program_id,
                "customer_id": customer_id,
                "channel": channel,
                "granted": granted,
                "at": at,
                "text_version": version,
                "text_hash": digest,
                "source": source,
                "actor": actor[:200],
            }
        )
    if rows:
        await conn.execute(insert(t.consents), rows)


async def history(rt: Runtime, program_id: int, customer_id: int) -> list[ConsentRecord]:
    """Every consent record of the customer, newest first."""
    c = t.consents
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    c.c.channel,
                    c.c.granted,
                    c.c.at,
                    c.c.text_version,
                    c.c.text_hash,
                    c.c.source,
                    c.c.actor,
                )
                .where(c.c.program_id == program_id, c.c.customer_id == customer_id)
                .order_by(c.c.id.desc())
            )
        ).all()
    return [ConsentRecord(r[0], bool(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]
