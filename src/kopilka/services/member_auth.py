"""A member signs in to the customer cabinet with a one-time SMS code (issue 7).

- The code is six digits, stored hashed in ``phone_codes`` (as the phone confirmation's
  are), valid ``LOGIN_CODE_TTL``, used once; it leaves through the outbox as the
  ``sms.send`` event (template ``phone_code``: the "login code" message), which the
  worker delivers by SMS — always, whatever the marketing consent.
- ``CODE_ATTEMPTS`` wrong tries spend a code; ``PHONE_FAILURES`` (5) wrong tries per
  phone within ``LOCKOUT`` (counted in quarter-hour windows of ``rate_counters``) lock
  the phone out until they age out: the 6th try fails even with the right code.
- Sends are capped per phone and per client IP (``services/sms_caps.py``).
- A new code at most once per ``RESEND_AFTER``, ``CODES_PER_HOUR`` an hour.
- An unknown phone gets the same answer as a known one (no SMS is sent): the page does
  not tell who is a member.
- Sessions are rows of ``member_sessions`` (the cookie's SHA-256, a CSRF token, idle and
  absolute expiry), apart from the console's ``admin_sessions``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.services import sms_caps
from kopilka.services.customers import hash_code
from kopilka.services.errors import ServiceError
from kopilka.services.phones import to_e164
from kopilka.services.runtime import Runtime, hash_key
from kopilka.store import tables as t

LOGIN_CODE_TTL = timedelta(minutes=5)
RESEND_AFTER = timedelta(seconds=60)
CODES_PER_HOUR = 5
CODE_ATTEMPTS = 5
PHONE_FAILURES = 5  # issue 10: the 6th try fails even with the right code
LOCKOUT = timedelta(hours=1)
SESSION_TTL = timedelta(days=30)
SESSION_IDLE = timedelta(days=7)

pc = t.phone_codes
ms = t.member_sessions


@dataclass(frozen=True, slots=True)
class MemberSession:
    id: int
    program_id: int
    customer_id: int
    csrf_token: str


def normalise_phone(raw: str) -> str:
    phone = to_e164(raw.strip()) if raw and raw.strip() else None
    if phone is None:
        raise ServiceError("validation_failed", "enter a mobile phone number", field="phone")
    return phone


def _window(now: datetime) -> datetime:
    """Failures are counted in quarter-hour windows; the last four make the lockout."""
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


def _fail_key(program_id: int, phone: str) -> str:
    return f"cabinet.login:{program_id}:{phone}"


async def _failures(conn: AsyncConnection, program_id: int, phone: str, now: datetime) -> int:
    rc = t.rate_counters
    n = (
        await conn.execute(
            select(func.coalesce(func.sum(rc.c.count), 0)).where(
                rc.c.key == _fail_key(program_id, phone),
                rc.c.window_start > _window(now) - LOCKOUT,
            )
        )
    ).scalar_one()
    return int(n)


async def _count_failure(conn: AsyncConnection, program_id: int, phone: str, now: datetime) -> None:
    rc = t.rate_counters
    key, window = _fail_key(program_id, phone), _window(now)
    done = await conn.execute(
        update(rc).where(rc.c.key == key, rc.c.window_start == window).values(count=rc.c.count + 1)
    )
    if done.rowcount == 0:
        await conn.execute(insert(rc), {"key": key, "window_start": window, "count": 1})


def _locked() -> ServiceError:
    return ServiceError(
        "too_many_attempts",
        "too many wrong codes for this phone; try again in an hour",
        field="code",
        retry_after_s=int(LOCKOUT.total_seconds()),
    )


async def _customer_by_phone(conn: AsyncConnection, program_id: int, phone: str) -> int | None:
    cu = t.customers
    row = (
        await conn.execute(
            select(cu.c.id).where(
                cu.c.program_id == program_id, cu.c.phone == phone, cu.c.status == "active"
            )
        )
    ).first()
    return None if row is None else int(row.id)


async def request_code(
    rt: Runtime, program_id: int, raw_phone: str, *, ip: str | None = None
) -> str:
    """Send a login code to a member's phone; returns the normalised phone.  Refuses
    (``too_many_attempts``) while the phone is locked out, a code went out too
    recently, or the phone or the client's ``ip`` is past its SMS cap (sms_caps.py:
    counted for unknown phones too, so the caps tell nothing about membership)."""
    phone = normalise_phone(raw_phone)
    now = rt.now()
    async with rt.engine.begin() as conn:
        if await _failures(conn, program_id, phone, now) >= PHONE_FAILURES:
            raise _locked()
        await sms_caps.check_and_count(
            conn, rt.sms_caps, program_id=program_id, phone=phone, now=now, ip=ip
        )
        customer_id = await _customer_by_phone(conn, program_id, phone)
        if customer_id is None:
            return phone  # the same answer as for a member; nothing is sent
        sent = (
            (
                await conn.execute(
                    select(pc.c.expires_at).where(
                        pc.c.customer_id == customer_id,
                        pc.c.expires_at > now - timedelta(hours=1) + LOGIN_CODE_TTL,
                    )
                )
            )
            .scalars()
            .all()
        )
        last = max((x - LOGIN_CODE_TTL for x in sent), default=None)
        if len(sent) >= CODES_PER_HOUR or (last is not None and now - last < RESEND_AFTER):
            wait = RESEND_AFTER if len(sent) < CODES_PER_HOUR else timedelta(hours=1)
            raise ServiceError(
                "too_many_attempts",
                "a code was sent recently; wait before asking for another",
                field="phone",
                retry_after_s=int(wait.total_seconds()),
            )
        code = f"{secrets.randbelow(10**6):06d}"
        await conn.execute(
            insert(pc),
            {
                "program_id": program_id,
                "customer_id": customer_id,
                "code_hash": hash_code(code),
                "expires_at": now + LOGIN_CODE_TTL,
            },
        )
        await conn.execute(
            insert(t.outbox),
            {
                "program_id": program_id,
                "topic": "sms.send",
                "created_at": now,
                "payload": orjson.dumps(
                    {"to": phone, "template": "phone_code", "code": code}
                ).decode(),
            },
        )
    return phone


async def verify_code(
    rt: Runtime,
    program_id: int,
    raw_phone: str,
    code: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> tuple[str, MemberSession]:
    """Check the latest code sent to the phone; on success a new session (its cookie
    value and row).  Every refusal is the same ``invalid_code`` for an unknown phone and
    a wrong code; the failed attempt is counted (committed) before the refusal."""
    phone = normalise_phone(raw_phone)
    code = code.strip()
    now = rt.now()
    refusal: ServiceError | None = None
    async with rt.engine.begin() as conn:
        if await _failures(conn, program_id, phone, now) >= PHONE_FAILURES:
            raise _locked()
        customer_id = await _customer_by_phone(conn, program_id, phone)
        row = None
        if customer_id is not None:
            row = (
                await conn.execute(
                    select(pc.c.id, pc.c.code_hash, pc.c.expires_at, pc.c.attempts, pc.c.used_at)
                    .where(pc.c.customer_id == customer_id, pc.c.program_id == program_id)
                    .order_by(pc.c.id.desc())
                    .limit(1)
                )
            ).first()
        if row is None or row.used_at is not None:
            refusal = ServiceError("invalid_code", "the code is wrong", field="code")
        elif row.attempts >= CODE_ATTEMPTS:
            refusal = ServiceError(
                "too_many_attempts", "too many wrong codes; ask for a new code", field="code"
            )
        elif row.expires_at <= now:
            refusal = ServiceError(
                "code_expired", "the code expired; ask for a new one", field="code"
            )
        elif not secrets.compare_digest(row.code_hash, hash_code(code)):
            await conn.execute(
                update(pc).where(pc.c.id == row.id).values(attempts=pc.c.attempts + 1)
            )
            refusal = ServiceError("invalid_code", "the code is wrong", field="code")
        if refusal is not None:
            if refusal.code == "invalid_code":
                await _count_failure(conn, program_id, phone, now)
                if await _failures(conn, program_id, phone, now) >= PHONE_FAILURES:
                    refusal = _locked()  # that was the last try: say so now
        else:
            assert row is not None and customer_id is not None
            await conn.execute(update(pc).where(pc.c.id == row.id).values(used_at=now))
            cu = t.customers
            await conn.execute(
                update(cu)
                .where(cu.c.id == customer_id, cu.c.phone_confirmed_at.is_(None))
                .values(phone_confirmed_at=now)
            )
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
            sid = (
                await conn.execute(
                    insert(ms).returning(ms.c.id),
                    {
                        "token_hash": hash_key(token),
                        "program_id": program_id,
                        "customer_id": customer_id,
                        "csrf_token": csrf,
                        "ip": ip,
                        "user_agent": (user_agent or "")[:300] or None,
                        "created_at": now,
                        "last_seen_at": now,
                        "expires_at": now + SESSION_TTL,
                    },
                )
            ).scalar_one()
    if refusal is not None:
        raise refusal
    assert customer_id is not None
    return token, MemberSession(int(sid), program_id, customer_id, csrf)


async def session_by_token(rt: Runtime, token: str) -> MemberSession | None:
    """The live member session of a cookie value, or None."""
    if not token:
        return None
    now = rt.now()
    cu = t.customers
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(ms, cu.c.status)
                .join(cu, cu.c.id == ms.c.customer_id)
                .where(ms.c.token_hash == hash_key(token))
            )
        ).first()
    if (
        row is None
        or row.ended_at is not None
        or row.expires_at <= now
        or row.last_seen_at + SESSION_IDLE <= now
        or row.status != "active"
    ):
        return None
    if now - row.last_seen_at > timedelta(minutes=1):
        async with rt.engine.begin() as conn:
            await conn.execute(update(ms).where(ms.c.id == row.id).values(last_seen_at=now))
    return MemberSession(int(row.id), int(row.program_id), int(row.customer_id), row.csrf_token)


async def logout(rt: Runtime, session: MemberSession) -> None:
    async with rt.engine.begin() as conn:
        await conn.execute(update(ms).where(ms.c.id == session.id).values(ended_at=rt.now()))


async def end_all(conn: AsyncConnection, customer_id: int, now: datetime) -> None:
    """End every session of a member (after deleting the personal data)."""
    await conn.execute(
        update(ms)
        .where(ms.c.customer_id == customer_id, ms.c.ended_at.is_(None))
        .values(ended_at=now)
    )
