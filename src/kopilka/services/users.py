"""Console users: argon2id passwords, server-side sessions, lockout after failed logins.

A session is a random cookie value; the database keeps only its SHA-256, the user, a CSRF
token and the program the console shows.  Sessions end on logout, after ``SESSION_IDLE``
without a request, after ``SESSION_MAX`` in all, and at once when the user is disabled or
the password changes.  ``LOCK_AFTER`` failed logins in a row lock the login for
``LOCK_FOR``; the failures and the lock are written to the audit log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update

from kopilka.domain.roles import NEEDS_PARTNER, NEEDS_STORE, Perm, Role
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime, hash_key
from kopilka.store import tables as t

u = t.admin_users
s = t.admin_sessions

LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
SESSION_IDLE = timedelta(hours=2)
SESSION_MAX = timedelta(hours=12)
MIN_PASSWORD = 10
LOCALES = ("ru", "en")

_hasher = PasswordHasher()  # argon2id, the library's defaults (RFC 9106 low-memory profile)
# A hash to verify against when the login is unknown, so both answers take the same time.
_DUMMY = _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class User:
    id: int
    login: str
    name: str
    email: str | None
    role: str
    program_id: int | None
    partner_id: int | None
    store_id: int | None
    locale: str
    active: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime

    def actor(self, ip: str | None = None) -> Actor:
        return Actor(
            "user",
            self.id,
            self.name or self.login,
            self.role,
            ip,
            self.program_id,
            self.partner_id,
            self.store_id,
        )


@dataclass(frozen=True)
class Session:
    id: int
    user: User
    csrf_token: str
    program_id: int | None


def _user(r: object) -> User:
    return User(
        r.id,  # type: ignore[attr-defined]
        r.login,  # type: ignore[attr-defined]
        r.name,  # type: ignore[attr-defined]
        r.email,  # type: ignore[attr-defined]
        r.role,  # type: ignore[attr-defined]
        r.program_id,  # type: ignore[attr-defined]
        r.partner_id,  # type: ignore[attr-defined]
        r.store_id,  # type: ignore[attr-defined]
        r.locale,  # type: ignore[attr-defined]
        r.disabled_at is None,  # type: ignore[attr-defined]
        r.locked_until,  # type: ignore[attr-defined]
        r.last_login_at,  # type: ignore[attr-defined]
        r.created_at,  # type: ignore[attr-defined]
    )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ServiceError(
            "validation_failed", f"at least {MIN_PASSWORD} characters", field="password"
        )


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(hashed: str, password: str) -> bool:
    def run() -> bool:
        try:
            return _hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(run)


def _check_scope(role: str, partner_id: int | None, store_id: int | None) -> Role:
    try:
        r = Role(role)
    except ValueError:
        raise ServiceError(
            "validation_failed", f"role must be one of {[x.value for x in Role]}", field="role"
        ) from None
    if r in NEEDS_PARTNER and partner_id is None:
        raise ServiceError("validation_failed", "a partner user needs its partner", field="partner")
    if r in NEEDS_STORE and store_id is None:
        raise ServiceError("validation_failed", f"a {r.value} needs a store", field="store")
    return r


async def do_create_user(
    rt: Runtime,
    actor: Actor,
    *,
    login: str,
    name: str,
    password: str,
    role: str,
    email: str | None = None,
    program_id: int | None = None,
    partner_id: int | None = None,
    store_id: int | None = None,
    locale: str = "ru",
) -> int:
    login = login.strip().lower()
    if not login or len(login) > 64 or not login.replace(".", "").replace("-", "").isalnum():
        raise ServiceError(
            "validation_failed", "letters, digits, dots and hyphens, up to 64", field="login"
        )
    if not name.strip():
        raise ServiceError("validation_failed", "the person's name is required", field="name")
    check_password(password)
    r = _check_scope(role, partner_id, store_id)
    if locale not in LOCALES:
        raise ServiceError("validation_failed", f"one of {LOCALES}", field="locale")
    hashed = await hash_password(password)
    now = rt.now()
    async with rt.engine.begin() as conn:
        taken = (await conn.execute(select(u.c.id).where(u.c.login == login))).first()
        if taken is not None:
            raise ServiceError("user_exists", f"the login {login!r} is taken", field="login")
        uid: int = (
            await conn.execute(
                insert(u).returning(u.c.id),
                {
                    "login": login,
                    "name": name.strip()[:200],
                    "email": (email or "").strip() or None,
                    "password_hash": hashed,
                    "role": r.value,
                    "program_id": program_id,
                    "partner_id": partner_id,
                    "store_id": store_id,
                    "locale": locale,
                    "created_at": now,
                },
            )
        ).scalar_one()
        after = {"login": login, "name": name, "role": r.value, "partner_id": partner_id}
        after |= {"store_id": store_id, "program_id": program_id}
        await audit.record(
            conn, actor, "user.create", "user", uid, at=now, after=after, program_id=program_id
        )
    return uid


async def get_user(rt: Runtime, user_id: int) -> User:
    async with rt.engine.connect() as conn:
        row = (await conn.execute(select(u).where(u.c.id == user_id))).first()
    if row is None:
        raise ServiceError("not_found", f"no user {user_id}", field="user")
    return _user(row)


async def list_users(rt: Runtime) -> list[User]:
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(select(u).order_by(u.c.login))).all()
    return [_user(r) for r in rows]


async def do_update_user(
    rt: Runtime,
    actor: Actor,
    user_id: int,
    *,
    name: str | None = None,
    role: str | None = None,
    partner_id: int | None = None,
    store_id: int | None = None,
    locale: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> None:
    """Change a user; disabling or a new password ends every session of the user."""
    before = await get_user(rt, user_id)
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = name.strip()[:200]
    if role is not None:
        values["role"] = _check_scope(role, partner_id, store_id).value
        values["partner_id"] = partner_id
        values["store_id"] = store_id
    if locale is not None:
        if locale not in LOCALES:
            raise ServiceError("validation_failed", f"one of {LOCALES}", field="locale")
        values["locale"] = locale
    now = rt.now()
    if active is not None:
        values["disabled_at"] = None if active else now
        if active:
            values["failed_logins"] = 0
            values["locked_until"] = None
    if password is not None:
        check_password(password)
        values["password_hash"] = await hash_password(password)
        values["failed_logins"] = 0
        values["locked_until"] = None
    if actor.kind == "user" and actor.id == user_id and (active is False or role is not None):
        raise ServiceError(
            "forbidden", "you cannot disable yourself or change your own role", field="user"
        )
    if not values:
        return
    async with rt.engine.begin() as conn:
        await conn.execute(update(u).where(u.c.id == user_id).values(values))
        if active is False or password is not None or role is not None:
            await conn.execute(
                update(s).where(s.c.user_id == user_id, s.c.ended_at.is_(None)).values(ended_at=now)
            )
        shown = {k: v for k, v in values.items() if k != "password_hash"}
        if password is not None:
            shown["password"] = "changed"
        old = {k: getattr(before, k, None) for k in shown if hasattr(before, k)}
        await audit.record(
            conn,
            actor,
            "user.update",
            "user",
            user_id,
            at=now,
            before=old,
            after=shown,
            program_id=before.program_id,
        )


class LoginFailed(ServiceError):
    pass


async def login(
    rt: Runtime, login_name: str, password: str, *, ip: str | None, user_agent: str | None
) -> tuple[str, Session]:
    """Check the password and open a session: (cookie value, session).

    The same refusal for an unknown login and a wrong password; a locked login is told
    so (with no hint whether the password was right).
    """
    now = rt.now()
    name = login_name.strip().lower()
    async with rt.engine.connect() as conn:
        row = (await conn.execute(select(u).where(u.c.login == name))).first()
    if row is None:
        await _verify(_DUMMY, password)
        raise LoginFailed("unauthorized", "wrong login or password", field="login")
    user = _user(row)
    if user.locked_until is not None and user.locked_until > now:
        raise LoginFailed(
            "too_many_attempts",
            f"too many failed logins; try again after {user.locked_until:%H:%M} UTC",
            field="login",
            locked_until=user.locked_until,
        )
    ok = await _verify(row.password_hash, password)
    actor = Actor("user", user.id, user.name or user.login, user.role, ip)
    if not ok or not user.active:
        async with rt.engine.begin() as conn:
            failed = row.failed_logins + 1
            values: dict[str, object] = {"failed_logins": failed}
            locked = failed >= LOCK_AFTER
            if locked:
                values |= {"locked_until": now + LOCK_FOR, "failed_logins": 0}
            await conn.execute(update(u).where(u.c.id == user.id).values(values))
            action = "login.locked" if locked else "login.failed"
            await audit.record(
                conn, actor, action, "user", user.id, at=now, program_id=user.program_id
            )
        raise LoginFailed("unauthorized", "wrong login or password", field="login")
    token = secrets.token_urlsafe(32)
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(u)
            .where(u.c.id == user.id)
            .values(failed_logins=0, locked_until=None, last_login_at=now)
        )
        sid: int = (
            await conn.execute(
                insert(s).returning(s.c.id),
                {
                    "token_hash": hash_key(token),
                    "user_id": user.id,
                    "csrf_token": secrets.token_urlsafe(32),
                    "program_id": user.program_id,
                    "ip": ip,
                    "user_agent": (user_agent or "")[:300] or None,
                    "created_at": now,
                    "last_seen_at": now,
                    "expires_at": now + SESSION_MAX,
                },
            )
        ).scalar_one()
        await audit.record(
            conn, actor, "login", "user", user.id, at=now, program_id=user.program_id
        )
    session = await session_by_token(rt, token)
    assert session is not None and session.id == sid
    return token, session


async def session_by_token(rt: Runtime, token: str) -> Session | None:
    """The live session of a cookie value, or None; touches ``last_seen_at`` once a minute."""
    if not token:
        return None
    now = rt.now()
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    s.c.id.label("session_id"),
                    s.c.csrf_token,
                    s.c.program_id.label("session_program_id"),
                    s.c.ended_at,
                    s.c.expires_at,
                    s.c.last_seen_at,
                    u,
                )
                .join(u, u.c.id == s.c.user_id)
                .where(s.c.token_hash == hash_key(token))
            )
        ).first()
    if row is None:
        return None
    user = _user(row)
    if (
        row.ended_at is not None
        or row.expires_at <= now
        or row.last_seen_at + SESSION_IDLE <= now
        or not user.active
    ):
        return None
    sess = {"id": row.session_id, "last_seen_at": row.last_seen_at}
    if now - sess["last_seen_at"] > timedelta(minutes=1):
        async with rt.engine.begin() as conn:
            await conn.execute(update(s).where(s.c.id == sess["id"]).values(last_seen_at=now))
    return Session(row.session_id, user, row.csrf_token, row.session_program_id)


async def logout(rt: Runtime, session: Session) -> None:
    async with rt.engine.begin() as conn:
        await conn.execute(update(s).where(s.c.id == session.id).values(ended_at=rt.now()))


async def granted_programs(rt: Runtime, user: User) -> frozenset[int] | None:
    """The programs the user may open: its own and those granted (``admin_user_programs``);
    None: every program (neither a program nor a grant)."""
    gp = t.admin_user_programs
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(select(gp.c.program_id).where(gp.c.user_id == user.id))).all()
    ids = {int(r.program_id) for r in rows}
    if user.program_id is not None:
        ids.add(user.program_id)
    return frozenset(ids) if ids else None


async def do_grant_programs(rt: Runtime, actor: Actor, user_id: int, program_ids: set[int]) -> None:
    """Replace the programs granted to a user besides its own (audited ``user.programs``).
    Only a manager who reaches every program grants programs; a partner, store manager or
    cashier works in the one program its partner or store belongs to."""
    actor.require(Perm.USERS_MANAGE)
    if actor.program_id is not None:
        raise ServiceError(
            "forbidden", "only a manager of every program grants programs", field="programs"
        )
    user = await get_user(rt, user_id)
    if program_ids and Role(user.role) in NEEDS_PARTNER | NEEDS_STORE:
        raise ServiceError(
            "validation_failed",
            f"a {user.role} works in its own program only",
            field="programs",
        )
    gp = t.admin_user_programs
    now = rt.now()
    async with rt.engine.begin() as conn:
        known = {
            int(r.id)
            for r in await conn.execute(
                select(t.programs.c.id).where(t.programs.c.id.in_(program_ids))
            )
        }
        if known != set(program_ids):
            raise ServiceError("validation_failed", "no such program", field="programs")
        before = sorted(
            int(r.program_id)
            for r in await conn.execute(select(gp.c.program_id).where(gp.c.user_id == user_id))
        )
        await conn.execute(delete(gp).where(gp.c.user_id == user_id))
        if program_ids:
            await conn.execute(
                insert(gp), [{"user_id": user_id, "program_id": p} for p in sorted(program_ids)]
            )
        # the sessions' current program may no longer be granted: start them again
        await conn.execute(
            update(s).where(s.c.user_id == user_id, s.c.ended_at.is_(None)).values(ended_at=now)
        )
        await audit.record(
            conn,
            actor,
            "user.programs",
            "user",
            user_id,
            at=now,
            before={"programs": before},
            after={"programs": sorted(program_ids)},
        )


async def set_session_program(rt: Runtime, session: Session, program_id: int) -> None:
    granted = await granted_programs(rt, session.user)
    if granted is not None and program_id not in granted:
        raise ServiceError("forbidden", "this program is not granted to you", field="program")
    async with rt.engine.begin() as conn:
        await conn.execute(update(s).where(s.c.id == session.id).values(program_id=program_id))


async def set_locale(rt: Runtime, user_id: int, locale: str) -> None:
    if locale not in LOCALES:
        raise ServiceError("validation_failed", f"one of {LOCALES}", field="locale")
    async with rt.engine.begin() as conn:
        await conn.execute(update(u).where(u.c.id == user_id).values(locale=locale))


# --- managing users from the console and the admin API (issue 6) -------------------------

USER_SORTS = ("login", "name", "role", "last_login")


@dataclass(frozen=True)
class UserView:
    """A user as the users page lists it."""

    user: User
    program_code: str | None
    partner_name: str | None
    store_name: str | None

    @property
    def locked(self) -> bool:
        return self.user.locked_until is not None


def _in_reach(actor: Actor, program_id: int | None) -> bool:
    return actor.program_id is None or program_id == actor.program_id


async def list_users_page(
    rt: Runtime,
    actor: Actor,
    *,
    text: str = "",
    role: str = "",
    sort: str = "login",
    descending: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[UserView], int]:
    """One page of the users the actor may manage (a user limited to a program: that
    program's users), and how many match."""
    from sqlalchemy import func

    actor.require(Perm.USERS_MANAGE)
    q = (
        select(
            u,
            t.programs.c.code.label("program_code"),
            t.partners.c.name.label("partner_name"),
            t.stores.c.name.label("store_name"),
        )
        .outerjoin(t.programs, t.programs.c.id == u.c.program_id)
        .outerjoin(t.partners, t.partners.c.id == u.c.partner_id)
        .outerjoin(t.stores, t.stores.c.id == u.c.store_id)
    )
    if actor.program_id is not None:
        q = q.where(u.c.program_id == actor.program_id)
    if text.strip():
        like = text.strip().lower()
        q = q.where(
            func.lower(u.c.login).contains(like, autoescape=True)
            | func.lower(u.c.name).contains(like, autoescape=True)
            | func.lower(func.coalesce(u.c.email, "")).contains(like, autoescape=True)
        )
    if role:
        q = q.where(u.c.role == role)
    keys = {"login": u.c.login, "name": u.c.name, "role": u.c.role, "last_login": u.c.last_login_at}
    key = keys.get(sort, u.c.login)
    order = [key.desc() if descending else key.asc(), u.c.id]
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
        rows = (await conn.execute(q.order_by(*order).offset(offset).limit(limit))).all()
    now = rt.now()
    out = []
    for r in rows:
        user = _user(r)
        if user.locked_until is not None and user.locked_until <= now:
            user = dataclasses.replace(user, locked_until=None)
        out.append(UserView(user, r.program_code, r.partner_name, r.store_name))
    return out, int(total)


async def get_managed_user(rt: Runtime, actor: Actor, user_id: int) -> User:
    """A user the actor may manage; another program's user is not found (404)."""
    actor.require(Perm.USERS_MANAGE)
    user = await get_user(rt, user_id)
    if not _in_reach(actor, user.program_id):
        raise ServiceError("not_found", f"no user {user_id}", field="user")
    return user


async def check_user_scope(
    rt: Runtime,
    actor: Actor,
    *,
    role: str,
    program_id: int | None,
    partner_id: int | None,
    store_id: int | None,
) -> tuple[int | None, int | None, int | None]:
    """The (program, partner, store) a user of ``role`` gets, checked: the scope the role
    needs is there and belongs to the program; the actor cannot give more than it has.
    Returns them with what the role does not use dropped."""
    actor.require(Perm.USERS_MANAGE)
    r = _check_scope(role, partner_id, store_id)
    if actor.program_id is not None:
        if program_id is not None and program_id != actor.program_id:
            raise ServiceError(
                "forbidden", "you may only give users your own program", field="program"
            )
        program_id = actor.program_id
    partner_id = partner_id if r in NEEDS_PARTNER else None
    store_id = store_id if r in NEEDS_STORE else None
    async with rt.engine.connect() as conn:
        if program_id is not None:
            found = (
                await conn.execute(select(t.programs.c.id).where(t.programs.c.id == program_id))
            ).first()
            if found is None:
                raise ServiceError("validation_failed", "no such program", field="program")
        if partner_id is not None:
            prow = (
                await conn.execute(
                    select(t.partners.c.program_id).where(t.partners.c.id == partner_id)
                )
            ).first()
            if prow is None or (program_id is not None and prow.program_id != program_id):
                raise ServiceError(
                    "validation_failed", "no such partner in the program", field="partner"
                )
            program_id = program_id or prow.program_id
        if store_id is not None:
            srow = (
                await conn.execute(select(t.stores.c.program_id).where(t.stores.c.id == store_id))
            ).first()
            if srow is None or (program_id is not None and srow.program_id != program_id):
                raise ServiceError(
                    "validation_failed", "no such store in the program", field="store"
                )
            program_id = program_id or srow.program_id
    return program_id, partner_id, store_id


async def do_unlock_user(rt: Runtime, actor: Actor, user_id: int) -> None:
    """End a lockout before its time; audited ``user.unlock``."""
    user = await get_managed_user(rt, actor, user_id)
    now = rt.now()
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(u).where(u.c.id == user_id).values(failed_logins=0, locked_until=None)
        )
        await audit.record(
            conn,
            actor,
            "user.unlock",
            "user",
            user_id,
            at=now,
            before={"locked_until": user.locked_until},
            after={"locked_until": None},
            program_id=user.program_id,
        )


async def do_set_email(rt: Runtime, actor: Actor, user_id: int, email: str | None) -> None:
    """Change a user's e-mail; audited ``user.update``."""
    user = await get_managed_user(rt, actor, user_id)
    value = (email or "").strip() or None
    if value is not None and ("@" not in value or len(value) > 254 or " " in value):
        raise ServiceError("validation_failed", "not an e-mail address", field="email")
    if value == user.email:
        return
    async with rt.engine.begin() as conn:
        await conn.execute(update(u).where(u.c.id == user_id).values(email=value))
        await audit.record(
            conn,
            actor,
            "user.update",
            "user",
            user_id,
            at=rt.now(),
            before={"email": user.email},
            after={"email": value},
            program_id=user.program_id,
        )
