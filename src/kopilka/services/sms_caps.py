"""Caps on sending one-time codes by SMS (issue 10): per phone and per source.

Every service that sends a code calls ``check_and_count`` in its transaction, before the
outbox row: the phone's sends within ``per_phone_window_s`` and the source's within
``per_source_window_s`` are counted in minute windows of ``rate_counters`` (the same
table as the cabinet's wrong-code lockout).  Past a cap the call is refused with
``too_many_attempts`` (HTTP 429) and ``retry_after_s``: when the oldest counted send ages
out.  A refused call counts nothing.

The source is the client's IP address for the member cabinet (anonymous), and the
terminal for the POS API (authenticated; many tills of a store may share one address).
Counters are kept per program.  An unknown phone is counted like a known one, so the caps
do not tell who is a member.  Settings (docs/operations.md): ``KOPILKA_SMS_PER_PHONE``
(default ``3/600``: three codes per phone per ten minutes), ``KOPILKA_SMS_PER_IP``
(``20/3600``), ``KOPILKA_SMS_PER_TERMINAL`` (``200/3600``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.services.errors import ServiceError
from kopilka.store import tables as t


def _parse(name: str, default: str) -> tuple[int, int]:
    raw = os.environ.get(name, default)
    try:
        count, _, seconds = raw.partition("/")
        out = int(count), int(seconds)
    except ValueError:
        raise ValueError(f"{name} must be COUNT/SECONDS, e.g. {default}; got {raw!r}") from None
    if out[0] < 1 or out[1] < 60:
        raise ValueError(f"{name}: at least 1 send per at least 60 seconds; got {raw!r}")
    return out


@dataclass(frozen=True, slots=True)
class SmsCaps:
    per_phone: int = 3
    per_phone_window_s: int = 600
    per_ip: int = 20
    per_ip_window_s: int = 3600
    per_terminal: int = 200
    per_terminal_window_s: int = 3600

    @classmethod
    def from_env(cls) -> SmsCaps:
        phone = _parse("KOPILKA_SMS_PER_PHONE", "3/600")
        ip = _parse("KOPILKA_SMS_PER_IP", "20/3600")
        term = _parse("KOPILKA_SMS_PER_TERMINAL", "200/3600")
        return cls(phone[0], phone[1], ip[0], ip[1], term[0], term[1])


def _minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


async def _sent(
    conn: AsyncConnection, key: str, now: datetime, window_s: int
) -> tuple[int, datetime | None]:
    """Sends counted under ``key`` within the window, and the oldest counted minute."""
    rc = t.rate_counters
    since = _minute(now) - timedelta(seconds=window_s) + timedelta(minutes=1)
    row = (
        await conn.execute(
            select(func.coalesce(func.sum(rc.c.count), 0), func.min(rc.c.window_start)).where(
                rc.c.key == key, rc.c.window_start >= since
            )
        )
    ).one()
    return int(row[0]), row[1]


async def _count(conn: AsyncConnection, key: str, now: datetime) -> None:
    rc = t.rate_counters
    window = _minute(now)
    done = await conn.execute(
        update(rc).where(rc.c.key == key, rc.c.window_start == window).values(count=rc.c.count + 1)
    )
    if done.rowcount == 0:
        await conn.execute(insert(rc), {"key": key, "window_start": window, "count": 1})


async def check_and_count(
    conn: AsyncConnection,
    caps: SmsCaps,
    *,
    program_id: int,
    phone: str,
    now: datetime,
    ip: str | None = None,
    terminal_id: int | None = None,
) -> None:
    """Refuse (429) when the phone or the source is past its cap; else count one send.
    Call inside the transaction that writes the code, before it; ``phone`` in E.164."""
    limits: list[tuple[str, int, int, str]] = [
        (f"sms.phone:{program_id}:{phone}", caps.per_phone, caps.per_phone_window_s, "phone")
    ]
    if ip:
        limits.append((f"sms.ip:{program_id}:{ip}", caps.per_ip, caps.per_ip_window_s, "ip"))
    if terminal_id is not None:
        limits.append(
            (
                f"sms.terminal:{program_id}:{terminal_id}",
                caps.per_terminal,
                caps.per_terminal_window_s,
                "terminal",
            )
        )
    for key, cap, window_s, what in limits:
        sent, oldest = await _sent(conn, key, now, window_s)
        if sent >= cap:
            assert oldest is not None
            wait = oldest + timedelta(seconds=window_s) - now
            raise ServiceError(
                "too_many_attempts",
                f"too many codes sent to this {what}; try again later"
                if what == "phone"
                else f"too many codes sent from this {what}; try again later",
                field="phone",
                retry_after_s=max(1, int(wait.total_seconds()) + 1),
                limit=what,
            )
    for key, *_ in limits:
        await _count(conn, key, now)
