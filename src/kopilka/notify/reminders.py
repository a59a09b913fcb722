"""Announcements made by the worker's schedule rather than by a business change.

``announce_expiring_points``: once per account and expiry day, N days ahead, an outbox row
``points.expiring`` with the points that will expire that day.  The row's ``dedup_key``
(``points.expiring:<account>:<day>``) is unique, so hourly runs and several workers write
it once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from kopilka.services.runtime import Runtime
from kopilka.store import tables as t


async def announce_expiring_points(
    rt: Runtime, *, days: int = 7, now: datetime | None = None, program_id: int | None = None
) -> int:
    """Write the ``points.expiring`` rows due now; returns how many were new."""
    if days <= 0:
        return 0
    now = now or rt.now()
    lots = t.lots
    q = (
        select(lots.c.program_id, lots.c.account_id, lots.c.expires_at, lots.c.remaining)
        .where(
            lots.c.remaining > 0,
            lots.c.activates_at <= now,
            lots.c.expires_at > now,
            lots.c.expires_at <= now + timedelta(days=days),
        )
        .order_by(lots.c.program_id, lots.c.account_id)
    )
    if program_id is not None:
        q = q.where(lots.c.program_id == program_id)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    due: dict[tuple[int, int, date], Decimal] = defaultdict(Decimal)
    zones: dict[int, ZoneInfo] = {}
    for r in rows:
        if r.program_id not in zones:
            zones[r.program_id] = ZoneInfo((await rt.program(r.program_id)).timezone)
        # a lot expiring at local midnight is gone on the day before's end: show that day
        day = (r.expires_at.astimezone(zones[r.program_id]) - timedelta(microseconds=1)).date()
        due[(r.program_id, r.account_id, day)] += r.remaining
    if not due:
        return 0
    values = [
        {
            "program_id": pid,
            "topic": "points.expiring",
            "created_at": now,
            "attempts": 0,
            "dedup_key": f"points.expiring:{account}:{day.isoformat()}",
            "payload": orjson.dumps(
                {
                    "account_id": account,
                    "points": f"{points:.2f}",
                    "expires_on": day.strftime("%d.%m.%Y"),
                }
            ).decode(),
        }
        for (pid, account, day), points in due.items()
    ]
    async with rt.engine.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(t.outbox)
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(t.outbox.c.id)
        )
        written = (await conn.execute(stmt, values)).all()
    return len(written)
