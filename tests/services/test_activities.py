"""Activity points (both databases): idempotent by key, limits per period exact under
concurrency, the birthday job once a year, the ledger verified after."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update

from kopilka.api.admin import events
from kopilka.api.app import create_app
from kopilka.services import admin
from kopilka.services.activities import (
    DEFAULT_RULES,
    ActivityError,
    ActivityRule,
    ActivityRules,
    birthday_keys,
    do_award,
    do_award_customer,
    do_birthday_points,
    period_start,
)
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Clock, Member, Shop
from tests.services.conftest import discrepancies

MSK = ZoneInfo("Europe/Moscow")


async def balance_of(rt: Runtime, member: Member) -> Decimal:
    async with rt.engine.connect() as conn:
        value = (
            await conn.execute(
                select(t.accounts.c.balance).where(t.accounts.c.id == member.account_id)
            )
        ).scalar_one()
    return Decimal(value)


async def award(shop: Shop, member: Member, activity: str, key: str, **kw: Any) -> Any:
    return await do_award(
        shop.rt,
        program_id=shop.program_id,
        account_id=member.account_id,
        activity=activity,
        idempotency_key=key,
        **kw,
    )


async def outcome(coro: Any) -> str:
    try:
        a = await coro
    except ActivityError as exc:
        return exc.code
    return f"ok {a.points}"


# --- periods (no database) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("per", "expected"),
    [
        pytest.param("day", datetime(2026, 3, 4, tzinfo=MSK), id="day-from-local-midnight"),
        pytest.param("week", datetime(2026, 3, 2, tzinfo=MSK), id="week-from-monday"),
        pytest.param("month", datetime(2026, 3, 1, tzinfo=MSK), id="month-from-the-1st"),
        pytest.param("year", datetime(2026, 1, 1, tzinfo=MSK), id="year-from-1-january"),
        pytest.param("ever", None, id="ever-has-no-start"),
    ],
)
def test_period_starts_in_the_program_time_zone(per: Any, expected: datetime | None) -> None:
    # 22:30 UTC on Tuesday 3 March is already Wednesday 4 March in Moscow
    now = datetime(2026, 3, 3, 22, 30, tzinfo=UTC)

    start = period_start(per, now, MSK)

    assert start == expected


def test_birthday_on_29_february_is_celebrated_on_28_february_of_a_common_year() -> None:
    assert birthday_keys(date(2027, 2, 28)) == ["02-28", "02-29"]
    assert birthday_keys(date(2028, 2, 28)) == ["02-28"]
    assert birthday_keys(date(2028, 2, 29)) == ["02-29"]


# --- awards --------------------------------------------------------------------------------


async def test_award_credits_a_lot_and_the_same_key_answers_the_first_award(
    make_shop: Any,
) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer()

    first = await award(shop, member, "welcome", "welcome-1")
    again = await award(shop, member, "welcome", "welcome-1")

    assert (first.points, first.replayed) == (Decimal("100.00"), False)
    assert (again.event_id, again.points, again.replayed) == (first.event_id, first.points, True)
    assert await balance_of(shop.rt, member) == Decimal("100.00")
    assert await shop.balance(member) == {
        "available": "100.00",
        "pending": "0.00",
        "held": "0.00",
        "debt": "0.00",
    }
    assert await discrepancies(shop) == []


async def test_the_same_key_for_another_account_or_activity_is_a_conflict(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    anna, boris = await shop.customer(), await shop.customer()
    await award(shop, anna, "survey", "k1")

    assert await outcome(award(shop, boris, "survey", "k1")) == "idempotency_conflict"
    assert await outcome(award(shop, anna, "review", "k1")) == "idempotency_conflict"
    assert await balance_of(shop.rt, boris) == Decimal("0.00")


@pytest.mark.parametrize(
    ("activity", "points", "expected"),
    [
        pytest.param("dancing", None, "unknown_activity", id="unknown-activity"),
        pytest.param("welcome", Decimal("5"), "validation_failed", id="fixed-points"),
        pytest.param("partner_event", Decimal("1000.01"), "validation_failed", id="above-max"),
        pytest.param("partner_event", Decimal("0"), "validation_failed", id="zero"),
        pytest.param("partner_event", Decimal("250.50"), "ok 250.50", id="partner-names-points"),
        pytest.param("partner_event", None, "ok 10.00", id="partner-rule-points"),
    ],
)
async def test_refusals_and_caller_points(
    make_shop: Any, activity: str, points: Decimal | None, expected: str
) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer()

    got = await outcome(award(shop, member, activity, "e1", points=points, partner_id=None))

    assert got == expected


async def test_partner_funds_its_event(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer()

    await award(
        shop, member, "partner_event", "crm-77", points=Decimal("30"), partner_id=shop.partner_id
    )

    async with shop.rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    t.ledger_entries.c.kind,
                    t.ledger_entries.c.amount,
                    t.ledger_entries.c.funding_partner_id,
                ).where(t.ledger_entries.c.account_id == member.account_id)
            )
        ).one()
    assert (row.kind, Decimal(row.amount), row.funding_partner_id) == (
        "earn",
        Decimal("30.00"),
        shop.partner_id,
    )


async def test_limits_per_calendar_period(make_shop: Any, clock: Clock) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer()
    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=MSK))  # Monday

    results = [
        await outcome(award(shop, member, "review", "r1")),
        await outcome(award(shop, member, "review", "r2")),
        await outcome(award(shop, member, "review", "r3")),
        await outcome(award(shop, member, "review", "r4")),
        await outcome(award(shop, member, "survey", "s1")),
        await outcome(award(shop, member, "survey", "s2")),
    ]
    clock.set(datetime(2026, 3, 3, 0, 0, tzinfo=MSK))  # the next day
    results.append(await outcome(award(shop, member, "survey", "s3")))
    results.append(await outcome(award(shop, member, "review", "r5")))
    clock.set(datetime(2026, 4, 1, 0, 0, tzinfo=MSK))  # the next month
    results.append(await outcome(award(shop, member, "review", "r6")))

    assert results == [
        "ok 10.00",
        "ok 10.00",
        "ok 10.00",
        "activity_limit_reached",
        "ok 20.00",
        "activity_limit_reached",
        "ok 20.00",
        "activity_limit_reached",
        "ok 10.00",
    ]
    assert await balance_of(shop.rt, member) == Decimal("80.00")
    assert await discrepancies(shop) == []


async def test_a_refused_key_may_be_retried_in_the_next_period(
    make_shop: Any, clock: Clock
) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer()
    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=MSK))
    await award(shop, member, "survey", "s1")
    assert await outcome(award(shop, member, "survey", "s2")) == "activity_limit_reached"

    clock.set(datetime(2026, 3, 3, 9, 0, tzinfo=MSK))

    assert await outcome(award(shop, member, "survey", "s2")) == "ok 20.00"


async def test_concurrent_awards_over_a_limit_of_one_a_day_give_exactly_one(
    make_shop: Any,
) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer()

    results = await asyncio.gather(
        *(outcome(award(shop, member, "survey", f"survey-{i}")) for i in range(6))
    )

    assert sorted(results) == ["activity_limit_reached"] * 5 + ["ok 20.00"]
    assert await balance_of(shop.rt, member) == Decimal("20.00")
    assert await discrepancies(shop) == []


async def test_concurrent_awards_with_one_key_write_one_award(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer()

    results = await asyncio.gather(
        *(award(shop, member, "partner_event", "same") for _ in range(5))
    )

    assert len({a.event_id for a in results}) == 1
    assert sorted(a.replayed for a in results) == [False, True, True, True, True]
    assert await balance_of(shop.rt, member) == Decimal("10.00")


async def test_custom_rules(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer()
    rules = ActivityRules(
        activities={
            **DEFAULT_RULES.activities,
            "app_installed": ActivityRule(points=Decimal("75"), limit=1, per="ever"),
        }
    )

    first = await outcome(award(shop, member, "app_installed", "a1", rules=rules))
    second = await outcome(award(shop, member, "app_installed", "a2", rules=rules))

    assert (first, second) == ("ok 75.00", "activity_limit_reached")


async def test_welcome_hook_gives_once_whatever_the_key(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer()

    async def welcome(key: str | None = None) -> Any:
        return await do_award_customer(
            shop.rt,
            program_id=shop.program_id,
            customer_id=member.customer_id,
            activity="welcome",
            idempotency_key=key,
        )

    first, again, other_key = await welcome(), await welcome(), await welcome("w2")

    assert first is not None and first.idempotency_key == f"welcome:customer:{member.customer_id}"
    assert again is not None and (again.event_id, again.replayed) == (first.event_id, True)
    assert other_key is None
    assert await balance_of(shop.rt, member) == Decimal("100.00")


# --- birthdays ----------------------------------------------------------------------------


async def test_birthday_job_gives_points_once_a_year(make_shop: Any, clock: Clock) -> None:
    shop: Shop = await make_shop()
    hero, other = await shop.customer(), await shop.customer()
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == hero.customer_id)
            .values(birthday=date(1990, 3, 4))
        )
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == other.customer_id)
            .values(birthday=date(1990, 3, 5))
        )
    # 22:30 UTC on 3 March is 4 March in Moscow
    clock.set(datetime(2026, 3, 3, 22, 30, tzinfo=UTC))

    first = await do_birthday_points(shop.rt, shop.rt.now(), program_id=shop.program_id)
    clock.set(datetime(2026, 3, 4, 20, 0, tzinfo=MSK))
    rerun = await do_birthday_points(shop.rt, shop.rt.now(), program_id=shop.program_id)
    clock.set(datetime(2027, 3, 4, 10, 0, tzinfo=MSK))
    next_year = await do_birthday_points(shop.rt, shop.rt.now(), program_id=shop.program_id)

    assert (first, rerun, next_year) == (1, 0, 1)
    assert await balance_of(shop.rt, hero) == Decimal("400.00")
    assert await balance_of(shop.rt, other) == Decimal("0.00")
    assert await discrepancies(shop) == []


# --- the admin API: POST /api/admin/v1/events -------------------------------------------------


@pytest.fixture(scope="session")
async def api(rt: Runtime) -> Any:
    """The real app with the events router mounted as app.py will mount it."""
    app = create_app(rt, sweep_every_s=0)
    app.include_router(events.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def program_code(shop: Shop) -> str:
    async with shop.rt.engine.connect() as conn:
        code: str = (
            await conn.execute(select(t.programs.c.code).where(t.programs.c.id == shop.program_id))
        ).scalar_one()
    return code


async def test_events_api(make_shop: Any, api: httpx.AsyncClient) -> None:
    shop: Shop = await make_shop()
    member = await shop.customer()
    program = await program_code(shop)
    key = await admin.do_add_token(shop.rt, name="crm", program_code=program)
    other_program = await program_code(await make_shop())
    headers = {"Authorization": f"Bearer {key}"}

    async def post(body: dict[str, Any], h: dict[str, str] = headers) -> tuple[int, Any]:
        r = await api.post("/api/admin/v1/events", json=body, headers=h)
        data = r.json()
        return r.status_code, data if r.status_code == 200 else data["code"]

    def event(**kw: Any) -> dict[str, Any]:
        return {
            "program": program,
            "customer": {"card": member.card},
            "activity": "survey",
            "idempotency_key": "crm-1",
            **kw,
        }

    first = await post(event())
    replay = await post(event())
    by_phone = await post(event(customer={"phone": member.phone}, idempotency_key="crm-2"))
    by_id = await post(
        event(customer={"id": member.customer_id}, activity="review", idempotency_key="crm-3")
    )
    partner = await post(
        event(activity="partner_event", idempotency_key="crm-4", points="12.50", partner="main")
    )

    assert first[0] == 200 and first == replay
    assert {k: first[1][k] for k in ("account_id", "activity", "points")} == {
        "account_id": member.account_id,
        "activity": "survey",
        "points": "20.00",
    }
    assert by_phone == (422, "activity_limit_reached")
    assert (by_id[0], by_id[1]["points"]) == (200, "10.00")
    assert (partner[0], partner[1]["points"]) == (200, "12.50")
    assert await post(event(), {}) == (401, "unauthorized")
    assert await post(event(program=other_program)) == (403, "forbidden")
    assert await post(event(customer={"card": "0000"}, idempotency_key="x")) == (
        404,
        "customer_not_found",
    )
    assert await post(event(customer={"card": member.card, "id": 1})) == (422, "validation_failed")
    assert await post(event(activity="dancing", idempotency_key="x")) == (422, "unknown_activity")
    assert await post(event(activity="review")) == (409, "idempotency_conflict")
    assert await post(event(partner="nobody", idempotency_key="y")) == (404, "partner_not_found")
    assert await shop.balance(member) == {
        "available": "42.50",
        "pending": "0.00",
        "held": "0.00",
        "debt": "0.00",
    }
