"""Tiers and cumulative discounts kept on the account, on both databases: the job
(``recompute_levels``) and the till (``refresh_after_purchase``), what they write to the
account and to the outbox, and what the till's review costs in statements."""

from __future__ import annotations

import argparse
import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import insert, select, update

from kopilka.domain.rules.model import validate_document
from kopilka.services.levels import (
    Change,
    recompute_levels,
    refresh_account,
    refresh_after_purchase,
    run_levels_cli,
)
from kopilka.services.runtime import Runtime
from kopilka.store import raw
from kopilka.store import tables as t
from kopilka.store.raw import SATx
from tests.conftest import Clock, Member, Shop

D = Decimal
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
_serial = itertools.count(1)

SPEND_TIERS = {
    "qualify_by": "spend",
    "period_days": 90,
    "levels": [
        {"code": "base", "name": "Base", "threshold": 0},
        {"code": "silver", "name": "Silver", "threshold": 10000, "earn_percent": 7},
        {"code": "gold", "name": "Gold", "threshold": 50000, "earn_percent": 10},
    ],
}
WHOLESALE = {
    "basis": "all_time",
    "levels": [{"from": 0, "percent": 1}, {"from": 100000, "percent": 3}],
    "decay": {"drop": 2, "inactive_days": 30, "min_month_amount": 20000},
}


async def publish(shop: Shop, **doc: Any) -> None:
    """The shop's program becomes this document (a new current version)."""
    valid = validate_document({"code": f"lv{shop.program_id}", "name": "Levels", **doc})
    async with shop.rt.engine.begin() as conn:
        version = (
            await conn.execute(
                select(t.programs.c.version).where(t.programs.c.id == shop.program_id)
            )
        ).scalar_one() + 1
        await conn.execute(
            insert(t.program_versions),
            {
                "program_id": shop.program_id,
                "version": version,
                "document": orjson.dumps(valid.model_dump(mode="json", by_alias=True)).decode(),
                "author": "test",
                "created_at": shop.rt.now(),
            },
        )
        await conn.execute(
            update(t.programs).where(t.programs.c.id == shop.program_id).values(version=version)
        )


async def bought(
    shop: Shop, member: Member, to_pay: str, *, at: datetime, state: str = "confirmed"
) -> int:
    """A receipt in the member's history, written directly (its ledger does not matter
    here); returns its id."""
    term = await shop.rt.terminal_by_key(shop.key)
    assert term is not None
    async with shop.rt.engine.begin() as conn:
        pk: int = (
            await conn.execute(
                insert(t.receipts).returning(t.receipts.c.id),
                {
                    "program_id": shop.program_id,
                    "partner_id": term.partner_id,
                    "store_id": term.store_id,
                    "terminal_id": term.id,
                    "pos_receipt_id": f"h{next(_serial)}",
                    "account_id": member.account_id,
                    "customer_id": member.customer_id,
                    "state": state,
                    "occurred_at": at,
                    "created_at": at,
                    "confirmed_at": at if state == "confirmed" else None,
                    "amount": D(to_pay),
                    "discount": D(0),
                    "points_redeemed": D(0),
                    "redeemed_value": D(0),
                    "to_pay": D(to_pay),
                    "points_earned": D(0),
                    "request_hash": "x",
                },
            )
        ).scalar_one()
    return pk


async def refunded(shop: Shop, receipt_pk: int, amount: str) -> None:
    term = await shop.rt.terminal_by_key(shop.key)
    assert term is not None
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            insert(t.refunds),
            {
                "program_id": shop.program_id,
                "receipt_pk": receipt_pk,
                "pos_refund_id": f"r{next(_serial)}",
                "terminal_id": term.id,
                "request_hash": "x",
                "response": b"{}",
                "amount": D(amount),
                "points_taken_back": D(0),
                "points_returned": D(0),
                "points_uncollected": D(0),
                "created_at": shop.rt.now(),
            },
        )


async def levels(shop: Shop, member: Member) -> tuple[str | None, datetime | None, D | None]:
    a = t.accounts
    async with shop.rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(a.c.tier, a.c.tier_since, a.c.discount_percent).where(
                    a.c.id == member.account_id
                )
            )
        ).one()
    return row.tier, row.tier_since, row.discount_percent


async def notices(shop: Shop) -> list[tuple[str, dict[str, Any]]]:
    """The program's tier and discount notifications, oldest first."""
    o = t.outbox
    async with shop.rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(o.c.topic, o.c.payload)
                .where(
                    o.c.program_id == shop.program_id,
                    o.c.topic.in_(["tier.changed", "discount.changed"]),
                )
                .order_by(o.c.id)
            )
        ).all()
    return [(r.topic, orjson.loads(r.payload)) for r in rows]


async def till_review(shop: Shop, member: Member) -> list[str]:
    """``refresh_after_purchase`` in a hot-path transaction; the statements it ran."""
    rt = shop.rt
    compiled = await rt.compiled(shop.program_id)
    seen: list[str] = []

    def on_sql(sql: str) -> None:
        seen.append(sql.split(None, 1)[0].upper())

    async with rt.hot.tx() as tx:
        raw.statement_listeners.append(on_sql)
        try:
            await refresh_after_purchase(
                tx,
                compiled,
                program_id=shop.program_id,
                account_id=member.account_id,
                now=rt.now(),
            )
        finally:
            raw.statement_listeners.remove(on_sql)
    return seen


@pytest.fixture
def at_now(clock: Clock) -> Clock:
    clock.set(NOW)
    return clock


# --- tiers in the job ----------------------------------------------------------------------


async def test_job_upgrades_at_once_and_downgrades_only_at_period_end(
    make_shop: Any, rt: Runtime, at_now: Clock
) -> None:
    shop = await make_shop()
    await publish(shop, tiers=SPEND_TIERS)
    anna = await shop.customer()
    await bought(shop, anna, "6000.00", at=NOW - timedelta(days=10))
    await bought(shop, anna, "4000.00", at=NOW - timedelta(days=3))
    await bought(shop, anna, "90000.00", at=NOW - timedelta(days=1), state="cancelled")

    assert await recompute_levels(rt, program_id=shop.program_id) == 1
    assert await levels(shop, anna) == ("silver", NOW, None)

    at_now.set(NOW + timedelta(days=85))  # every receipt out of the window: spend 0
    assert await recompute_levels(rt, program_id=shop.program_id) == 0
    assert await levels(shop, anna) == ("silver", NOW, None)

    later = NOW + timedelta(days=90)  # the period has ended
    at_now.set(later)
    assert await recompute_levels(rt, program_id=shop.program_id) == 1
    assert await levels(shop, anna) == ("base", later, None)
    assert await notices(shop) == [
        (
            "tier.changed",
            {
                "account_id": anna.account_id,
                "customer_id": anna.customer_id,
                "old": "base",
                "new": "silver",
                "new_name": "Silver",
                "direction": "up",
                "since": NOW.isoformat(),
            },
        ),
        (
            "tier.changed",
            {
                "account_id": anna.account_id,
                "customer_id": anna.customer_id,
                "old": "silver",
                "new": "base",
                "new_name": "Base",
                "direction": "down",
                "since": later.isoformat(),
            },
        ),
    ]


async def test_requalifying_at_period_end_renews_since_without_a_notice(
    make_shop: Any, rt: Runtime, at_now: Clock
) -> None:
    shop = await make_shop()
    await publish(shop, tiers=SPEND_TIERS)
    anna = await shop.customer()
    await bought(shop, anna, "12000.00", at=NOW)
    await recompute_levels(rt, program_id=shop.program_id)
    renewed = NOW + timedelta(days=91)
    await bought(shop, anna, "11000.00", at=renewed - timedelta(days=5))

    at_now.set(renewed)
    changed = await recompute_levels(rt, program_id=shop.program_id)

    assert changed == 0
    assert await levels(shop, anna) == ("silver", renewed, None)
    assert [topic for topic, _ in await notices(shop)] == ["tier.changed"]


async def test_visits_qualify_and_only_the_program_accounts_are_touched(
    make_shop: Any, rt: Runtime, at_now: Clock
) -> None:
    shop = await make_shop()
    other = await make_shop()
    tiers = {
        "qualify_by": "visits",
        "period_days": 30,
        "levels": [
            {"code": "guest", "name": "Guest", "threshold": 0},
            {"code": "regular", "name": "Regular", "threshold": 4},
        ],
    }
    await publish(shop, tiers=tiers)
    await publish(other, tiers=tiers)
    anna, boris = await shop.customer(), await shop.customer()
    stranger = await other.customer()
    for days in (1, 2, 3, 4):
        await bought(other, stranger, "10.00", at=NOW - timedelta(days=days))
    for days in (1, 2, 3, 4):
        await bought(shop, anna, "10.00", at=NOW - timedelta(days=days))
    for days in (1, 2, 3, 31):
        await bought(shop, boris, "9000.00", at=NOW - timedelta(days=days))

    assert await recompute_levels(rt, program_id=shop.program_id, batch=1) == 1

    assert await levels(shop, anna) == ("regular", NOW, None)
    assert await levels(shop, boris) == (None, None, None)
    assert await levels(other, stranger) == (None, None, None)


async def test_refunds_reduce_spend(make_shop: Any, rt: Runtime, at_now: Clock) -> None:
    shop = await make_shop()
    await publish(shop, tiers=SPEND_TIERS)
    anna = await shop.customer()
    pk = await bought(shop, anna, "12000.00", at=NOW - timedelta(days=1))
    await refunded(shop, pk, "2500.00")

    await recompute_levels(rt, program_id=shop.program_id)

    assert await levels(shop, anna) == (None, None, None)


# --- cumulative discount in the job --------------------------------------------------------


async def test_cumulative_level_then_decay_by_inactivity(
    make_shop: Any, rt: Runtime, at_now: Clock
) -> None:
    shop = await make_shop()
    await publish(shop, type="cumulative", cumulative=WHOLESALE)
    ivan = await shop.customer()
    await bought(shop, ivan, "80000.00", at=NOW - timedelta(days=400))
    await bought(shop, ivan, "25000.00", at=NOW - timedelta(days=24))  # October, Moscow

    assert await recompute_levels(rt, program_id=shop.program_id) == 1
    assert await levels(shop, ivan) == (None, None, D("3.00"))

    at_now.set(NOW + timedelta(days=6))  # 30 days since the last purchase
    assert await recompute_levels(rt, program_id=shop.program_id) == 1
    assert await levels(shop, ivan) == (None, None, D("1.00"))

    at_now.set(NOW + timedelta(days=20))  # the decay does not compound
    assert await recompute_levels(rt, program_id=shop.program_id) == 0
    assert await levels(shop, ivan) == (None, None, D("1.00"))
    ids = {"account_id": ivan.account_id, "customer_id": ivan.customer_id}
    assert await notices(shop) == [
        (
            "discount.changed",
            {**ids, "old": None, "new": "3.00", "direction": "up", "reason": None},
        ),
        (
            "discount.changed",
            {**ids, "old": "3.00", "new": "1.00", "direction": "down", "reason": "inactive"},
        ),
    ]


async def test_decay_by_a_low_month_in_the_program_time_zone(
    make_shop: Any, rt: Runtime, at_now: Clock
) -> None:
    shop = await make_shop()
    await publish(shop, type="cumulative", cumulative=WHOLESALE)
    ivan = await shop.customer()
    await bought(shop, ivan, "100000.00", at=NOW - timedelta(days=100))
    # 1 November 00:30 in Moscow is still October in UTC: it counts for November.
    await bought(shop, ivan, "30000.00", at=datetime(2026, 10, 31, 21, 30, tzinfo=UTC))
    await bought(shop, ivan, "5000.00", at=datetime(2026, 10, 20, 12, 0, tzinfo=UTC))

    await recompute_levels(rt, program_id=shop.program_id)

    assert await levels(shop, ivan) == (None, None, D("1.00"))
    assert (await notices(shop))[-1][1]["reason"] == "low_month"


async def test_rolling_window_forgets_old_purchases(
    make_shop: Any, rt: Runtime, at_now: Clock
) -> None:
    shop = await make_shop()
    rolling = {
        "basis": "rolling",
        "window_days": 180,
        "levels": [{"from": 0, "percent": 0}, {"from": 30000, "percent": 5}],
    }
    await publish(shop, type="cumulative", cumulative=rolling)
    ivan = await shop.customer()
    await bought(shop, ivan, "20000.00", at=NOW - timedelta(days=200))
    await bought(shop, ivan, "20000.00", at=NOW - timedelta(days=100))

    await recompute_levels(rt, program_id=shop.program_id)

    assert await levels(shop, ivan) == (None, None, D("0.00"))
    assert await notices(shop) == []  # nothing to tell: no discount before, none now


# --- at the till ---------------------------------------------------------------------------


async def test_till_upgrades_at_once_in_two_statements_at_most(
    make_shop: Any, rt: Runtime, at_now: Clock
) -> None:
    shop = await make_shop()
    await publish(shop, tiers=SPEND_TIERS, cumulative=WHOLESALE)
    anna = await shop.customer()
    await bought(shop, anna, "60000.00", at=NOW - timedelta(days=40))
    await bought(shop, anna, "45000.00", at=NOW)

    statements = await till_review(shop, anna)

    assert statements == (["SELECT", "WITH"] if not rt.sqlite else ["SELECT", "UPDATE", "INSERT"])
    assert await levels(shop, anna) == ("gold", NOW, D("3.00"))
    assert [(topic, body["new"]) for topic, body in await notices(shop)] == [
        ("tier.changed", "gold"),
        ("discount.changed", "3.00"),
    ]
    assert await till_review(shop, anna) == ["SELECT"]  # nothing changes: one statement


async def test_till_never_lowers_but_lifts_a_decay(
    make_shop: Any, rt: Runtime, at_now: Clock
) -> None:
    shop = await make_shop()
    await publish(shop, tiers=SPEND_TIERS, cumulative=WHOLESALE)
    anna = await shop.customer()
    await bought(shop, anna, "120000.00", at=NOW - timedelta(days=60))
    await recompute_levels(rt, program_id=shop.program_id)
    assert await levels(shop, anna) == ("gold", NOW, D("1.00"))  # decayed: inactive

    later = NOW + timedelta(days=100)  # 3 March 2027: gold's period is over
    at_now.set(later)
    await bought(shop, anna, "25000.00", at=datetime(2027, 2, 15, 12, 0, tzinfo=UTC))
    await bought(shop, anna, "10.00", at=later)
    await till_review(shop, anna)

    assert await levels(shop, anna) == ("gold", NOW, D("3.00"))  # qualified: only silver
    await recompute_levels(rt, program_id=shop.program_id)
    assert await levels(shop, anna) == ("silver", later, D("3.00"))


async def test_till_costs_nothing_without_tiers_or_cumulative_rules(
    make_shop: Any, rt: Runtime, at_now: Clock
) -> None:
    shop = await make_shop()
    anna = await shop.customer()
    await bought(shop, anna, "99999.00", at=NOW)

    assert await till_review(shop, anna) == []
    assert await recompute_levels(rt, program_id=shop.program_id) == 0


async def test_the_job_waits_for_a_confirm_in_progress_and_counts_its_purchase(
    make_shop: Any, rt: Runtime, at_now: Clock
) -> None:
    shop = await make_shop()
    await publish(shop, tiers=SPEND_TIERS)
    compiled = await rt.compiled(shop.program_id)
    anna = await shop.customer()
    await bought(shop, anna, "9000.00", at=NOW - timedelta(days=2))
    pending = await bought(shop, anna, "2000.00", at=NOW, state="calculated")

    async def job() -> Change | None:
        async with rt.engine.begin() as conn:
            return await refresh_account(
                SATx(conn),
                compiled,
                program_id=shop.program_id,
                account_id=anna.account_id,
                now=NOW,
            )

    async with rt.hot.tx() as tx:  # a confirm: the account locked, the receipt confirmed
        lock = " FOR UPDATE" if tx.pg else ""
        await tx.fetch("SELECT id FROM accounts WHERE id = ?" + lock, anna.account_id)
        await tx.execute("UPDATE receipts SET state = 'confirmed' WHERE id = ?", pending)
        running = asyncio.create_task(job())
        await asyncio.sleep(0.3)
        assert not running.done()  # waiting for the account
    change = await running

    assert change is not None and change.after.tier == "silver"
    assert await levels(shop, anna) == ("silver", NOW, None)


# --- command line --------------------------------------------------------------------------


async def test_levels_recompute_command(
    make_shop: Any, rt: Runtime, at_now: Clock, db_url: str
) -> None:
    shop = await make_shop()
    await publish(shop, tiers=SPEND_TIERS)
    anna = await shop.customer()
    await bought(shop, anna, "10000.00", at=datetime.now(UTC) - timedelta(days=1))
    async with rt.engine.connect() as conn:
        code = (
            await conn.execute(select(t.programs.c.code).where(t.programs.c.id == shop.program_id))
        ).scalar_one()

    def run(program: str) -> int:  # the command runs its own event loop and runtime
        return run_levels_cli(argparse.Namespace(db=db_url, program=program))

    assert await asyncio.to_thread(run, "no-such-program") == 2
    assert await asyncio.to_thread(run, code) == 0
    assert (await levels(shop, anna))[0] == "silver"
