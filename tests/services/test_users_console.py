"""Console users: argon2 hashes, lockout, sessions that end, scoped management."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from kopilka.services import audit, users
from kopilka.services.audit import CLI, Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Clock

PASSWORD = "correct-horse-1"


async def _user(rt: Runtime, role: str = "support", **kw: Any) -> tuple[int, str]:
    login = f"u-{secrets.token_hex(4)}"
    uid = await users.do_create_user(
        rt, CLI, login=login, name="Test", password=PASSWORD, role=role, **kw
    )
    return uid, login


async def _actions(rt: Runtime, uid: int) -> list[str]:
    f = audit.AuditFilter(object_type="user", object_id=str(uid))
    rows, _ = await audit.list_audit(rt, f, newest_first=False)
    return [r.action for r in rows]


async def test_the_password_is_stored_as_an_argon2id_hash(rt: Runtime) -> None:
    uid, login = await _user(rt)
    async with rt.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(t.admin_users.c.password_hash).where(t.admin_users.c.id == uid)
            )
        ).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    # Nothing in the audit log carries the password either.
    rows, _ = await audit.list_audit(rt, audit.AuditFilter(object_id=str(uid)))
    assert all(PASSWORD not in (r.after or "") for r in rows)
    token, session = await users.login(rt, login, PASSWORD, ip="1.2.3.4", user_agent="t")
    assert session.user.id == uid and token


async def test_repeated_failures_lock_the_login_until_the_lock_ends_or_is_lifted(
    rt: Runtime, clock: Clock
) -> None:
    clock.set(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    uid, login = await _user(rt)
    for _ in range(users.LOCK_AFTER):
        with pytest.raises(ServiceError) as exc:
            await users.login(rt, login, "wrong-password", ip=None, user_agent=None)
        assert exc.value.code == "unauthorized"
    with pytest.raises(ServiceError) as exc:
        await users.login(rt, login, PASSWORD, ip=None, user_agent=None)
    assert exc.value.code == "too_many_attempts"
    views, _ = await users.list_users_page(rt, CLI, text=login)
    assert views[0].locked
    # The lock ends by itself ...
    clock.advance(seconds=users.LOCK_FOR.total_seconds() + 1)
    views, _ = await users.list_users_page(rt, CLI, text=login)
    assert not views[0].locked
    await users.login(rt, login, PASSWORD, ip=None, user_agent=None)
    # ... or the owner lifts it, which the audit log records.
    for _ in range(users.LOCK_AFTER):
        with pytest.raises(ServiceError):
            await users.login(rt, login, "wrong-password", ip=None, user_agent=None)
    await users.do_unlock_user(rt, CLI, uid)
    await users.login(rt, login, PASSWORD, ip=None, user_agent=None)
    acts = await _actions(rt, uid)
    assert acts.count("login.locked") == 2 and "user.unlock" in acts


async def test_a_session_ends_after_being_idle(rt: Runtime, clock: Clock) -> None:
    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    _, login = await _user(rt)
    token, _ = await users.login(rt, login, PASSWORD, ip=None, user_agent=None)
    clock.advance(seconds=users.SESSION_IDLE.total_seconds() - 120)
    assert await users.session_by_token(rt, token) is not None  # used: idle time restarts
    clock.advance(seconds=users.SESSION_IDLE.total_seconds() - 60)
    assert await users.session_by_token(rt, token) is not None
    clock.advance(seconds=users.SESSION_IDLE.total_seconds() + 1)
    assert await users.session_by_token(rt, token) is None


async def test_disabling_a_user_or_a_new_password_ends_its_sessions(rt: Runtime) -> None:
    uid, login = await _user(rt)
    token, _ = await users.login(rt, login, PASSWORD, ip=None, user_agent=None)
    await users.do_update_user(rt, CLI, uid, active=False)
    assert await users.session_by_token(rt, token) is None
    with pytest.raises(ServiceError):
        await users.login(rt, login, PASSWORD, ip=None, user_agent=None)
    await users.do_update_user(rt, CLI, uid, active=True)
    token, _ = await users.login(rt, login, PASSWORD, ip=None, user_agent=None)
    await users.do_update_user(rt, CLI, uid, password="another-password-2")
    assert await users.session_by_token(rt, token) is None
    await users.login(rt, login, "another-password-2", ip=None, user_agent=None)
    acts = await _actions(rt, uid)
    assert acts[0] == "user.create" and acts.count("user.update") == 3


async def test_a_user_cannot_disable_itself_or_change_its_own_role(rt: Runtime) -> None:
    uid, _ = await _user(rt, role="owner")
    me = Actor("user", uid, "me", "owner")
    with pytest.raises(ServiceError) as exc:
        await users.do_update_user(rt, me, uid, active=False)
    assert exc.value.code == "forbidden"


async def test_an_owner_limited_to_a_program_manages_only_that_programs_users(
    rt: Runtime, make_shop: Any
) -> None:
    mine, theirs = await make_shop(), await make_shop()
    owner = Actor("user", 1, "Olga", "owner", program_id=mine.program_id)
    uid_mine, _ = await _user(rt, program_id=mine.program_id)
    uid_theirs, _ = await _user(rt, program_id=theirs.program_id)
    views, _ = await users.list_users_page(rt, owner, limit=500)
    ids = {v.user.id for v in views}
    assert uid_mine in ids and uid_theirs not in ids
    with pytest.raises(ServiceError) as exc:
        await users.get_managed_user(rt, owner, uid_theirs)
    assert exc.value.code == "not_found"
    with pytest.raises(ServiceError) as exc:
        await users.check_user_scope(
            rt, owner, role="support", program_id=theirs.program_id, partner_id=None, store_id=None
        )
    assert exc.value.code == "forbidden"
    # The partner must be one of the program's.
    with pytest.raises(ServiceError) as exc:
        await users.check_user_scope(
            rt, owner, role="partner", program_id=None, partner_id=theirs.partner_id, store_id=None
        )
    assert exc.value.field == "partner"
    scope = await users.check_user_scope(
        rt, owner, role="partner", program_id=None, partner_id=mine.partner_id, store_id=5
    )
    assert scope == (mine.program_id, mine.partner_id, None)
    # A support user manages nobody.
    with pytest.raises(ServiceError) as exc:
        await users.list_users_page(rt, Actor("user", 2, "Sam", "support"))
    assert exc.value.code == "forbidden"


async def test_the_audit_log_filters_by_actor_action_object_and_dates(
    rt: Runtime, clock: Clock
) -> None:
    tag = secrets.token_hex(3)
    alice = Actor("user", 901, f"Alice {tag}", "owner")
    bob = Actor("token", 902, f"Bob {tag}", "owner")
    when = {
        "a1": datetime(2026, 4, 10, 12, 0, tzinfo=UTC),
        "a2": datetime(2026, 4, 12, 12, 0, tzinfo=UTC),
        "b1": datetime(2026, 4, 14, 12, 0, tzinfo=UTC),
    }
    async with rt.engine.begin() as conn:
        await audit.record(
            conn, alice, "card.block", "card", f"c{tag}", at=when["a1"], reason="lost"
        )
        await audit.record(
            conn,
            alice,
            "card.unblock",
            "card",
            f"c{tag}",
            at=when["a2"],
            before={"status": "blocked"},
            after={"status": "active"},
        )
        await audit.record(conn, bob, "points.adjust", "account", f"a{tag}", at=when["b1"])

    async def actions(**kw: Any) -> list[str]:
        rows, total = await audit.list_audit(rt, audit.AuditFilter(**kw), newest_first=False)
        assert total == len(rows)
        return [r.action for r in rows]

    assert await actions(actor=f"alice {tag}") == ["card.block", "card.unblock"]
    assert await actions(actor=tag, action="card.") == ["card.block", "card.unblock"]
    assert await actions(actor=tag, action="points") == ["points.adjust"]
    assert await actions(object_type="card", object_id=f"c{tag}") == ["card.block", "card.unblock"]
    since, until = when["a2"].date(), when["a2"].date()
    assert await actions(actor=tag, since=since, until=until) == ["card.unblock"]
    assert await actions(actor=tag, since=when["b1"].date()) == ["points.adjust"]
    # "%" and "_" in a filter are literal, not wildcards.
    assert await actions(actor="%") == []
    page, total = await audit.list_audit(rt, audit.AuditFilter(actor=tag), offset=1, limit=1)
    assert total == 3 and [r.action for r in page] == ["card.unblock"]
    row = page[0]
    assert audit.changes(row.before, row.after) == [("status", "blocked", "active")]
    csv_text = await audit.export_audit_csv(rt, audit.AuditFilter(actor=tag))
    assert csv_text.splitlines()[0].startswith("id,at,actor_kind")
    assert len(csv_text.strip().splitlines()) == 4
    xlsx = await audit.export_audit_xlsx(rt, audit.AuditFilter(actor=tag))
    from io import BytesIO

    from openpyxl import load_workbook

    ws = load_workbook(BytesIO(xlsx)).active
    assert ws is not None
    values = [[c.value for c in r] for r in ws.iter_rows()]
    assert values[0][:3] == ["id", "at", "actor_kind"] and len(values) == 4
    assert [v[5] for v in values[1:]] == ["card.block", "card.unblock", "points.adjust"]
