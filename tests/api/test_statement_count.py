"""The hot path costs a fixed number of SQL statements, whatever the size of the basket.

Pinned here so that a change that adds a round trip to calculate or confirm is a
visible, deliberate decision (docs/performance.md explains each statement).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import event, text, update

from kopilka.services.runtime import Runtime
from kopilka.store import raw
from kopilka.store import tables as t
from tests.conftest import receipt


@contextmanager
def counting(rt: Runtime) -> Iterator[list[str]]:
    """Statements run inside the block, with the terminal and program caches warm (as in
    production, where they live 5 s; the test runtime turns them off elsewhere)."""
    seen: list[str] = []
    ttl = rt.cache_ttl_s
    rt.cache_ttl_s = 3600.0

    def on_sql(statement: str) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    def on_exec(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        on_sql(statement)

    # The hot path runs on the driver (store/raw.py); anything else goes through SQLAlchemy.
    event.listen(rt.engine.sync_engine, "before_cursor_execute", on_exec)
    raw.statement_listeners.append(on_sql)
    try:
        yield seen
    finally:
        event.remove(rt.engine.sync_engine, "before_cursor_execute", on_exec)
        raw.statement_listeners.remove(on_sql)
        rt.cache_ttl_s = ttl


async def forget_calculated(rt: Runtime, shop: Any, receipt_id: str) -> None:
    """Drop what this process's calculate kept for the confirm (ADR 0038), as when the
    confirm reaches another worker."""
    term = await rt.terminal_by_key(shop.key)
    assert term is not None
    assert rt.take_calculated(term.id, receipt_id) is not None


async def forget_looked_up(rt: Runtime, shop: Any, identifier: str) -> None:
    """Drop what this process's lookup kept for the calculate (ADR 0040), as when the
    calculate reaches another worker (PostgreSQL; SQLite keeps nothing)."""
    term = await rt.terminal_by_key(shop.key)
    assert term is not None
    kept = rt.take_looked_up(term.program_id, (identifier,))
    assert (kept is None) == rt.sqlite


def basket(n: int) -> list[tuple[str, Any, Any]]:
    return [(f"sku{i}", 1 + i % 3, "10.50") for i in range(n)]


def data_statements(seen: list[str]) -> list[str]:
    """Round trips that touch data (BEGIN/COMMIT are not counted; an executemany of
    receipt lines is one)."""
    return [s for s in seen if s not in ("BEGIN", "COMMIT", "ROLLBACK")]


async def test_calculate_and_confirm_cost_the_same_for_10_and_30_lines(
    make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop(burn_max_percent="50")
    member = await shop.customer(points=1000)
    with counting(rt):  # warm the caches
        await shop.get("/customers/lookup", params={"identifier": member.card})
    await forget_looked_up(rt, shop, member.card)  # calculates without a lookup first

    counts = {}
    elsewhere = []  # PostgreSQL: confirms of receipts calculated by another process
    for n in (10, 30):
        with counting(rt) as calc:
            r = await shop.post(
                "/purchases/calculate", receipt(f"c{n}", member.card, *basket(n), redeem_points="5")
            )
        with counting(rt) as conf:
            c = await shop.post(f"/purchases/c{n}/confirm")
        assert r.status_code == 200 and c.status_code == 200, (r.text, c.text)
        counts[n] = (list(calc), list(conf))
        if not rt.sqlite:
            r = await shop.post(
                "/purchases/calculate", receipt(f"e{n}", member.card, *basket(n), redeem_points="5")
            )
            await forget_calculated(rt, shop, f"e{n}")
            with counting(rt) as conf:
                c = await shop.post(f"/purchases/e{n}/confirm")
            assert r.status_code == 200 and c.status_code == 200, (r.text, c.text)
            elsewhere.append(list(conf))

    assert counts[10] == counts[30]
    calc_stmts, conf_all = counts[10]
    conf_stmts = data_statements(conf_all)
    # calculate: SQLite: identifier+card+account (locked), its lots, receipt, hold, hold
    # entry, account totals, in a transaction; PostgreSQL (ADR 0038): identifier+card+
    # account with its lots and version, then receipt, hold, hold entry and account
    # totals in one statement guarded by the version: no transaction
    if rt.sqlite:
        writes = ["INSERT", "INSERT", "INSERT", "UPDATE"]
        assert calc_stmts == ["BEGIN", "SELECT", "SELECT", *writes, "COMMIT"]
    else:
        assert calc_stmts == ["SELECT", "WITH"]
    # confirm: receipt (locked), account (locked), its lots, hold -> confirmed, then the
    # writes: on PostgreSQL one statement (new lot, burned lots, entries, account, lines,
    # outbox, receipt); on SQLite each its own (in-process, no round trips to save)
    # On PostgreSQL no transaction: one write statement that also confirms the hold,
    # guarded by the account's version the calculate of this process left (ADR 0038);
    # calculated by another process, two round trips (ADR 0037): the receipt, the account
    # with its lots and the hold read without a lock, then the same guarded write.
    if rt.sqlite:
        reads = ["SELECT", "SELECT", "SELECT"]
        writes = ["INSERT", "UPDATE", "INSERT", "UPDATE", "INSERT", "INSERT", "UPDATE"]
        assert conf_stmts == [*reads, "UPDATE", *writes]
        assert conf_all == ["BEGIN", *conf_stmts, "COMMIT"]
    else:
        assert conf_all == ["WITH"]
        assert elsewhere == [["WITH", "WITH"], ["WITH", "WITH"]]

    # After the till's lookup on the same process, PostgreSQL's burning calculate is the
    # guarded write alone: the lookup's read is checked by it (ADR 0040).
    await shop.get("/customers/lookup", params={"identifier": member.card})
    with counting(rt) as calc:
        r = await shop.post(
            "/purchases/calculate",
            receipt("after-lookup", member.card, *basket(20), redeem_points="5"),
        )
    assert r.status_code == 200, r.text
    assert calc == (counts[10][0] if rt.sqlite else ["WITH"])


async def test_non_redeeming_calculate_is_one_read_and_one_write(
    make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    member = await shop.customer(points=10)
    with counting(rt):
        await shop.get("/customers/lookup", params={"identifier": member.card})
    await forget_looked_up(rt, shop, member.card)

    with counting(rt) as seen:
        r = await shop.post("/purchases/calculate", receipt("c1", member.card, *basket(20)))
    assert r.status_code == 200
    assert data_statements(seen) == ["SELECT", "INSERT"]

    # right after the till's lookup on the same process: PostgreSQL writes at once, the
    # insert guarded by the versions the lookup read (ADR 0040)
    await shop.get("/customers/lookup", params={"identifier": member.card})
    with counting(rt) as seen:
        r = await shop.post("/purchases/calculate", receipt("c2", member.card, *basket(20)))
    assert r.status_code == 200
    assert (data_statements(seen) if rt.sqlite else seen) == (
        ["SELECT", "INSERT"] if rt.sqlite else ["INSERT"]
    )


async def test_the_lookup_reads_the_customer_and_recent_receipts_in_one_statement_on_pg(
    make_shop: Any, rt: Runtime
) -> None:
    """The till's lookup: account, lots, card, customer (birthday, confirmed phone) and the
    last receipts: one statement on PostgreSQL, two on SQLite, the same answer."""
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    today = rt.now().date()
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == member.customer_id)
            .values(
                birthday=today.replace(year=1992), phone_confirmed_at=rt.now()
            )  # 1992: leap year
        )
    await shop.post(
        "/purchases", receipt(f"lk-{uuid.uuid4().hex[:8]}", member.card, ("a", 1, "50.00"))
    )
    with counting(rt):  # caches
        await shop.get("/customers/lookup", params={"identifier": member.card})

    with counting(rt) as seen:
        r = await shop.get("/customers/lookup", params={"identifier": member.card})

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer"]["phone_confirmed"] is True
    assert [m["code"] for m in body["messages"]] == ["birthday"]
    assert [x["to_pay"] for x in body["last_purchases"]] == ["50.00"]
    assert body["balance"]["available"] == "5.00"
    assert data_statements(seen) == (["SELECT", "SELECT"] if rt.sqlite else ["WITH"])


async def test_a_guests_receipt_is_one_write_to_calculate_and_two_statements_to_confirm(
    make_shop: Any, rt: Runtime
) -> None:
    """A receipt without a customer (most receipts in many chains): calculate stores it,
    confirm writes its lines and state (on PostgreSQL in one statement after one read)."""
    shop = await make_shop()
    rid = f"guest-{uuid.uuid4().hex[:12]}"  # the session's database is shared
    await shop.post("/purchases/calculate", receipt(rid + "-warm", None, *basket(3)))  # caches

    with counting(rt) as calc:
        r = await shop.post("/purchases/calculate", receipt(rid, None, *basket(20)))
    with counting(rt) as conf:
        c = await shop.post(f"/purchases/{rid}/confirm")

    assert r.status_code == 200 and c.status_code == 200, (r.text, c.text)
    assert c.json()["state"] == "confirmed" and len(c.json()["lines"]) == 20
    assert data_statements(calc) == ["INSERT"]
    if rt.sqlite:
        assert conf == ["BEGIN", "SELECT", "INSERT", "UPDATE", "COMMIT"]
    else:  # the guarded write, from the calculate's answer kept here (ADR 0038)
        assert conf == ["WITH"]
        # calculated by another process: read, then the guarded write (ADR 0037)
        assert (
            await shop.post("/purchases/calculate", receipt(rid + "-e", None, *basket(3)))
        ).is_success
        await forget_calculated(rt, shop, rid + "-e")
        with counting(rt) as conf_elsewhere:
            assert (await shop.post(f"/purchases/{rid}-e/confirm")).is_success
        assert conf_elsewhere == ["WITH", "WITH"]
    again = await shop.post(f"/purchases/{rid}/confirm")  # a retry: the same bytes, no writes
    assert again.content == c.content
    async with rt.engine.connect() as conn:  # the lines are stored for the analytics
        stored = await conn.execute(
            text(
                "SELECT count(*), sum(l.amount) FROM receipt_lines l "
                "JOIN receipts r ON r.id = l.receipt_pk WHERE r.pos_receipt_id = :rid"
            ),
            {"rid": rid},
        )
        assert tuple(stored.one()) == (20, sum(round(105 * (1 + i % 3)) for i in range(20)) * 10)


def promotions(n: int) -> list[dict[str, Any]]:
    """``n`` promotions on SKUs, most of which a basket of sku0..sku19 does not touch."""
    return [
        {
            "id": f"p{i}",
            "name": f"{5 + i % 10}% off sku{i}",
            "lines": {"sku": [f"sku{i}"]},
            "effects": [{"kind": "line_discount", "percent": 5 + i % 10}],
        }
        for i in range(n)
    ]


async def test_the_number_of_promotions_does_not_change_the_statements(
    make_shop: Any, rt: Runtime
) -> None:
    from tests.api.test_promotions_at_till import publish

    counts = {}
    for n in (10, 200):
        shop = await make_shop()
        await publish(shop, promotions(n))
        member = await shop.customer(points=1000)
        with counting(rt):  # warm the caches
            await shop.get("/customers/lookup", params={"identifier": member.card})
        with counting(rt) as calc:
            r = await shop.post(
                "/purchases/calculate", receipt("c1", member.card, *basket(20), redeem_points="5")
            )
        with counting(rt) as conf:
            c = await shop.post("/purchases/c1/confirm")
        assert r.status_code == 200 and c.status_code == 200, (r.text, c.text)
        assert len(r.json()["promotions"]) > 2  # promotions did apply
        counts[n] = (data_statements(calc), data_statements(conf))

    assert counts[10] == counts[200]
    calc_stmts, _ = counts[200]
    # card+account (locked), lots, receipt, what each promotion gave (one multi-row
    # insert), hold, hold entry, account totals; on PostgreSQL too (the one-statement
    # hold of a receipt without promotions does not carry the promotion rows)
    assert calc_stmts == ["SELECT", "SELECT", "INSERT", "INSERT", "INSERT", "INSERT", "UPDATE"]


async def test_a_confirm_reads_again_when_the_calculates_read_is_old_or_crowded_out(
    make_shop: Any, rt: Runtime
) -> None:
    """What a calculate kept for its confirm (ADR 0038) is used within
    ``calculated_ttl_s`` and while fewer than ``calculated_max`` newer receipts were
    calculated in this process; otherwise the confirm reads for itself.  Either way the
    till gets the same confirmation."""
    shop = await make_shop()
    # a customer each: a confirm changes the account, which the next receipt of the same
    # customer would find changed since its calculate (and read again for that reason)
    members = [await shop.customer(points=10) for _ in range(3)]
    ttl, most = rt.calculated_ttl_s, rt.calculated_max
    try:
        rt.calculated_max = 2
        for rid, member in zip(("k1", "k2", "k3"), members, strict=True):  # k3 crowds k1 out
            r = await shop.post("/purchases/calculate", receipt(rid, member.card, *basket(3)))
            assert r.status_code == 200, r.text
        rt.calculated_ttl_s = 0.0
        with counting(rt) as old:  # k2: kept, but too long ago
            assert (await shop.post("/purchases/k2/confirm")).status_code == 200
        rt.calculated_ttl_s = ttl
        with counting(rt) as crowded:
            assert (await shop.post("/purchases/k1/confirm")).status_code == 200
        with counting(rt) as kept:
            last = await shop.post("/purchases/k3/confirm")
    finally:
        rt.calculated_ttl_s, rt.calculated_max = ttl, most
    assert last.status_code == 200 and last.json()["state"] == "confirmed"
    if rt.sqlite:  # nothing is kept: the confirm locks and reads
        assert old == crowded == kept
    else:
        assert (old, crowded, kept) == (["WITH", "WITH"], ["WITH", "WITH"], ["WITH"])
    # each receipt's points credited once
    earned = Decimal(last.json()["points_earned"])
    assert earned > 0
    for member in members:
        after = await shop.get("/customers/lookup", params={"identifier": member.card})
        shown = after.json()["balance"]
        assert Decimal(shown["available"]) + Decimal(shown["pending"]) == 10 + earned
