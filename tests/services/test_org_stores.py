"""Stores and terminals as services: scoping, checks, audit, last-seen times."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select

from kopilka.services import audit, stores, terminals
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from tests.conftest import Clock, Shop


async def _store_id(rt: Runtime, code: str) -> int:
    async with rt.engine.connect() as conn:
        return int(
            (await conn.execute(select(t.stores.c.id).where(t.stores.c.code == code))).scalar_one()
        )


async def _other_partner(rt: Runtime, shop: Shop) -> tuple[int, int]:
    async with rt.engine.begin() as conn:
        partner = await insert_id(
            conn, t.partners, {"program_id": shop.program_id, "code": "other", "name": "Other"}
        )
        store = await insert_id(
            conn,
            t.stores,
            {
                "program_id": shop.program_id,
                "partner_id": partner,
                "code": f"O-{secrets.token_hex(3)}",
                "name": "Other store",
            },
        )
    return partner, store


def _owner(shop: Shop) -> Actor:
    return Actor("user", 1, "Olga", "owner", program_id=shop.program_id)


async def test_a_partner_user_and_a_store_manager_see_only_their_stores(
    rt: Runtime, make_shop: Any
) -> None:
    shop = await make_shop()
    _, other_store = await _other_partner(rt, shop)
    own = await _store_id(rt, shop.store_code)
    partner = Actor(
        "user", 2, "Pat", "partner", program_id=shop.program_id, partner_id=shop.partner_id
    )
    rows, total = await stores.list_stores(rt, partner, shop.program_id)
    assert total == 1 and [r.id for r in rows] == [own]
    with pytest.raises(ServiceError) as exc:
        await stores.get_store(rt, partner, other_store)
    assert exc.value.status == 404
    with pytest.raises(ServiceError) as exc:
        await stores.list_store_terminals(rt, partner, other_store)
    assert exc.value.status == 404
    assert [p.code for p in await stores.list_partners(rt, partner, shop.program_id)] == ["main"]
    # Read-only role: no writes.
    with pytest.raises(ServiceError) as exc:
        await terminals.do_create_terminal(rt, partner, own, "till x")
    assert exc.value.code == "forbidden"

    manager = Actor(
        "user", 3, "Max", "store_manager", program_id=shop.program_id, store_id=other_store
    )
    rows, total = await stores.list_stores(rt, manager, shop.program_id)
    assert [r.id for r in rows] == [other_store]
    with pytest.raises(ServiceError):
        await stores.get_store(rt, manager, own)

    owner = _owner(shop)
    _, total = await stores.list_stores(rt, owner, shop.program_id)
    assert total == 2
    # A user of another program reaches none of it.
    other = await make_shop()
    stranger = Actor("user", 4, "X", "owner", program_id=other.program_id)
    with pytest.raises(ServiceError):
        await stores.get_store(rt, stranger, own)
    with pytest.raises(ServiceError):
        await stores.list_stores(rt, stranger, shop.program_id)


async def test_a_store_is_checked_field_by_field_created_and_changed_with_audit(
    rt: Runtime, make_shop: Any
) -> None:
    shop = await make_shop()
    owner = _owner(shop)
    base = {"code": "K-1", "name": "Kazan", "partner": str(shop.partner_id)}
    with pytest.raises(ServiceError) as exc:
        await stores.do_create_store(
            rt,
            owner,
            shop.program_id,
            {**base, "code": "", "latitude": "100", "longitude": "x", "timezone": "Nowhere/City"},
        )
    fields = {e["field"] for e in exc.value.extra["errors"]}
    assert fields == {"code", "latitude", "longitude", "timezone"}
    for bad, field in (
        ({"latitude": "55.1"}, "longitude"),
        ({"latitude": "55.1", "longitude": "-180.5"}, "longitude"),
        ({"latitude": "55.123456789", "longitude": "37"}, "latitude"),
        ({"latitude": "NaN", "longitude": "37"}, "latitude"),
        ({"partner": "999999999"}, "partner"),
    ):
        with pytest.raises(ServiceError) as exc:
            await stores.do_create_store(rt, owner, shop.program_id, {**base, **bad})
        assert exc.value.field == field, bad
    sid = await stores.do_create_store(
        rt,
        owner,
        shop.program_id,
        {**base, "latitude": "55,7887", "longitude": "49.1221", "timezone": "Europe/Moscow"},
    )
    store = await stores.get_store(rt, owner, sid)
    assert store.latitude == pytest.approx(55.7887) and store.form()["longitude"] == "49.1221"
    with pytest.raises(ServiceError) as exc:
        await stores.do_create_store(rt, owner, shop.program_id, base)
    assert exc.value.code == "conflict" and exc.value.field == "code"
    changed = await stores.do_update_store(
        rt, owner, sid, {"city": "Казань", "timezone": "Europe/Samara"}
    )
    assert changed.city == "Казань" and changed.timezone == "Europe/Samara"
    rows, _ = await audit.list_audit(
        rt, audit.AuditFilter(object_type="store", object_id=str(sid)), newest_first=False
    )
    assert [r.action for r in rows] == ["store.create", "store.update"]
    diff = dict((k, (a, b)) for k, a, b in audit.changes(rows[1].before, rows[1].after))
    assert diff == {"city": ("", "Казань"), "timezone": ("Europe/Moscow", "Europe/Samara")}
    # Filters and sorting.
    found, _ = await stores.list_stores(rt, owner, shop.program_id, city="Казань")
    assert [r.id for r in found] == [sid]
    found, _ = await stores.list_stores(rt, owner, shop.program_id, text="kaz")
    assert [r.id for r in found] == [sid]
    found, _ = await stores.list_stores(rt, owner, shop.program_id, sort="name", descending=True)
    assert [r.name for r in found] == ["Store", "Kazan"]


async def test_terminals_are_added_with_a_key_once_and_revoked_with_audit(
    rt: Runtime, make_shop: Any
) -> None:
    shop = await make_shop()
    owner = _owner(shop)
    own = await _store_id(rt, shop.store_code)
    with pytest.raises(ServiceError) as exc:
        await terminals.do_create_terminal(rt, owner, own, "  ")
    assert exc.value.field == "name"
    tid, key = await terminals.do_create_terminal(rt, owner, own, "till 2")
    async with rt.engine.connect() as conn:
        row = (await conn.execute(select(t.terminals).where(t.terminals.c.id == tid))).one()
    assert row.key_hash != key and key not in str(tuple(row))
    term = await rt.terminal_by_key(key)
    assert term is not None and term.id == tid and term.active
    await terminals.do_revoke_terminal(rt, owner, tid)
    term = await rt.terminal_by_key(key)
    assert term is not None and not term.active
    with pytest.raises(ServiceError) as exc:
        await terminals.do_revoke_terminal(rt, owner, tid)
    assert exc.value.code == "conflict"
    rows, _ = await audit.list_audit(
        rt, audit.AuditFilter(object_type="terminal", object_id=str(tid)), newest_first=False
    )
    assert [r.action for r in rows] == ["terminal.create", "terminal.disable"]
    assert key not in (rows[0].after or "") and key[:10] in (rows[0].after or "")


async def test_last_seen_is_kept_in_memory_and_flushed_in_one_statement(
    rt: Runtime, make_shop: Any, clock: Clock
) -> None:
    shop = await make_shop()
    member = await shop.customer(5)
    other = await make_shop()
    clock.set(datetime(2026, 5, 1, 8, 0, tzinfo=UTC))
    rt._seen.clear()
    # Till calls note the terminal without writing anything.
    for s in (shop, other, shop):
        r = await s.get("/customers/lookup", params={"identifier": member.card})
        assert r.status_code in (200, 404)
    async with rt.engine.connect() as conn:
        before = (
            (
                await conn.execute(
                    select(t.terminals.c.last_seen_at).where(
                        t.terminals.c.program_id.in_([shop.program_id, other.program_id])
                    )
                )
            )
            .scalars()
            .all()
        )
    assert before == [None, None]

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(rt.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await rt.flush_last_seen(force=True) == 2
    finally:
        event.remove(rt.engine.sync_engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("UPDATE")]) == 1
    own = await _store_id(rt, shop.store_code)
    terms = await stores.list_store_terminals(rt, _owner(shop), own)
    assert terms[0].last_seen_at == datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    # Nothing new: nothing to write.  Within the period: not yet.
    assert await rt.flush_last_seen(force=True) == 0
    clock.advance(minutes=5)
    await shop.get("/customers/lookup", params={"identifier": member.card})
    assert await rt.flush_last_seen() == 0  # less than last_seen_every_s since the flush
    assert await rt.flush_last_seen(force=True) == 1
    terms = await stores.list_store_terminals(rt, _owner(shop), own)
    assert terms[0].last_seen_at == datetime(2026, 5, 1, 8, 5, tzinfo=UTC)
    # An older time (another process's late flush) never moves it back.
    rt._seen[terms[0].id] = datetime(2026, 5, 1, 7, 0, tzinfo=UTC)
    await rt.flush_last_seen(force=True)
    terms = await stores.list_store_terminals(rt, _owner(shop), own)
    assert terms[0].last_seen_at == datetime(2026, 5, 1, 8, 5, tzinfo=UTC)


async def test_the_servers_sweeper_flushes_last_seen(rt: Runtime, make_shop: Any) -> None:
    import asyncio

    from kopilka.api.app import _sweep

    shop = await make_shop()
    member = await shop.customer(1)
    await shop.get("/customers/lookup", params={"identifier": member.card})
    rt._seen_flushed = 0.0  # as in a process that has not flushed for a while
    own = await _store_id(rt, shop.store_code)
    task = asyncio.create_task(_sweep(rt, 0.05))
    try:
        for _ in range(100):
            terms = await stores.list_store_terminals(rt, _owner(shop), own)
            if terms[0].last_seen_at is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert terms[0].last_seen_at is not None
