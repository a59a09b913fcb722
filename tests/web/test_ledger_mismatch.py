"""The nightly ledger verify (issue 10): the worker's job runs once a night at the hour
set, records the result, and a cached balance that disagrees with the ledger raises the
alarms: an outbox event ``ledger.mismatch`` to the operators' e-mail and webhooks, the
metric ``kopilka_ledger_verify_mismatches``, and a high alert in the console's queue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, update

from kopilka.jobs import worker
from kopilka.notify import messages, outbox
from kopilka.services import ledger_watch, users
from kopilka.store import tables as t
from tests.conftest import Clock, Shop
from tests.web.conftest import MakeUser

OPS = "ops@example.com"


async def _set_balance(shop: Shop, account_id: int, value: str) -> None:
    async with shop.rt.engine.begin() as conn:  # accounts is a cache, not append-only
        await conn.execute(
            update(t.accounts).where(t.accounts.c.id == account_id).values(balance=value)
        )


async def _events(shop: Shop) -> list[dict[str, Any]]:
    async with shop.rt.engine.connect() as conn:
        rows = await conn.execute(
            select(t.outbox.c.payload).where(
                t.outbox.c.program_id == shop.program_id, t.outbox.c.topic == "ledger.mismatch"
            )
        )
        return [orjson.loads(r.payload) for r in rows]


async def test_a_corrupted_balance_raises_the_alarms_once_a_night(
    make_shop: Any, clock: Clock, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    shop = await make_shop()
    member = await shop.customer(points=1000)
    await _set_balance(shop, member.account_id, "1005.00")
    job = worker.verify_nightly(3, "Europe/Moscow", [OPS])
    try:
        # 02:30 in Moscow: not yet; 03:10: the night's run; 04:00: already done tonight
        clock.set(datetime(2031, 1, 14, 23, 30, tzinfo=UTC))
        before = await job.run(shop.rt)
        clock.set(datetime(2031, 1, 15, 0, 10, tzinfo=UTC))
        said = await job.run(shop.rt)
        clock.set(datetime(2031, 1, 15, 1, 0, tzinfo=UTC))
        again = await job.run(shop.rt)
        last = await ledger_watch.last_run(shop.rt)
        metrics = (await client.get("/metrics")).text
        events = await _events(shop)

        assert before is None and again is None
        assert said is not None and "DIFFERENCES" in said
        assert last is not None and last[0] == datetime(2031, 1, 15, 0, 10, tzinfo=UTC)
        assert f"kopilka_ledger_verify_mismatches {float(last[1])}" in metrics
        assert last[1] >= 2  # ours (two checks fail) and any other test's broken account
        assert events == [
            {
                "night": "2031-01-15",
                "discrepancies": 2,
                "accounts": [member.account_id],
                "recipients": [OPS],
            }
        ]
        plan = messages.plan("ledger.mismatch", events[0])
        assert plan is not None and (plan.channel, plan.email) == ("email", OPS)
        assert plan.subject == "Kopilka: ledger verify found 2 differences (2031-01-15)"

        # the console: the security officer's queue shows it, in both languages
        who = await make_user("security", shop, locale="ru")
        token, _ = await users.login(
            shop.rt, who.login, who.password, ip="127.0.0.1", user_agent="t"
        )
        h = {"Cookie": f"kopilka_session={token}"}
        queue = await client.get("/admin/fraud", headers=h)
        async with shop.rt.engine.connect() as conn:
            aid, severity = (
                await conn.execute(
                    select(t.fraud_alerts.c.id, t.fraud_alerts.c.severity).where(
                        t.fraud_alerts.c.program_id == shop.program_id,
                        t.fraud_alerts.c.rule == "ledger_mismatch",
                    )
                )
            ).one()
        detail = await client.get(f"/admin/fraud/{aid}", headers=h)
        assert queue.status_code == 200 and detail.status_code == 200
        assert "Сверка журнала баллов нашла расхождение" in queue.text
        assert severity == "high"
        assert "баланс и проводки" in detail.text
        assert "в балансе 1005.00" in detail.text and "по журналу 1000.00" in detail.text
    finally:
        await _set_balance(shop, member.account_id, "1000.00")
        clock.set(datetime(2031, 1, 15, 1, 0, 1, tzinfo=UTC))
        await ledger_watch.verify_and_alert(shop.rt)  # the latest record: whatever is true now


async def test_the_mismatch_goes_to_the_operators_and_to_subscribed_webhooks(
    make_shop: Any, clock: Clock
) -> None:
    shop = await make_shop()
    member = await shop.customer(points=300)
    await outbox.add_webhook(
        shop.rt,
        program_id=shop.program_id,
        url="http://partner.example/hook",
        secret="s" * 16,
        topics="ledger.*",
    )
    await _set_balance(shop, member.account_id, "299.00")
    try:
        clock.set(datetime(2031, 2, 1, 1, 0, tzinfo=UTC))
        await ledger_watch.verify_and_alert(shop.rt, recipients=[OPS, "cto@example.com"])
        notifier = outbox.Notifier({"email": None, "webhook": None})  # type: ignore[dict-item]
        await outbox.dispatch(shop.rt, notifier, program_ids=[shop.program_id])
        async with shop.rt.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(t.deliveries.c.channel, t.deliveries.c.recipient)
                    .where(
                        t.deliveries.c.program_id == shop.program_id,
                        t.deliveries.c.topic == "ledger.mismatch",
                    )
                    .order_by(t.deliveries.c.channel)
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("email", "ops@example.com, cto@example.com"),
            ("webhook", "http://partner.example/hook"),
        ]
    finally:
        await _set_balance(shop, member.account_id, "300.00")
        await ledger_watch.verify_and_alert(shop.rt)


@pytest.mark.parametrize(
    ("utc", "due"),
    [
        (datetime(2031, 3, 1, 23, 59, tzinfo=UTC), None),  # 02:59 in Moscow
        (datetime(2031, 3, 2, 0, 0, tzinfo=UTC), "2031-03-02"),  # 03:00
        (datetime(2031, 3, 2, 20, 0, tzinfo=UTC), "2031-03-02"),  # 23:00, still that night's
    ],
)
def test_the_night_is_the_local_date_from_the_hour_on(utc: datetime, due: str | None) -> None:
    from zoneinfo import ZoneInfo

    got = ledger_watch.night_of(utc, hour=3, zone=ZoneInfo("Europe/Moscow"))

    assert (got[0].isoformat() if got else None) == due


async def test_ledger_verify_alert_by_hand_records_and_raises_the_same_alarms(
    make_shop: Any,
) -> None:
    import asyncio

    from kopilka import cli

    shop = await make_shop()
    member = await shop.customer(points=50)
    await _set_balance(shop, member.account_id, "49.50")
    try:
        code = await asyncio.to_thread(
            cli.main,
            ["--db", shop.rt.url, "ledger", "verify", "--alert", "--alert-email", OPS],
        )
        events = await _events(shop)

        assert code == 1
        assert [(e["discrepancies"], e["accounts"], e["recipients"]) for e in events] == [
            (2, [member.account_id], [OPS])
        ]
    finally:
        await _set_balance(shop, member.account_id, "50.00")
        await ledger_watch.verify_and_alert(shop.rt)
