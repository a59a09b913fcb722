"""Welcome and birthday points reach the customer: the award writes its outbox row in its
own transaction, the worker renders and sends it (with consent), exactly once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, update

from kopilka.notify.channels.sms import JsonSms
from kopilka.notify.outbox import Notifier, run_once
from kopilka.notify.reminders import announce_expiring_points
from kopilka.services.activities import do_award, do_birthday_points
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Clock
from tests.notify.conftest import HttpReceiver


async def test_welcome_and_birthday_points_are_announced_once_to_those_who_agreed(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    clock.set(datetime(2027, 3, 14, 9, 0, tzinfo=UTC))
    shop = await make_shop()
    anna = await shop.customer(first_name="Анна")
    boris = await shop.customer(first_name="Борис")
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id.in_([anna.customer_id, boris.customer_id]))
            .values(birthday=date(1990, 3, 14))
        )
        await conn.execute(
            update(t.customers).where(t.customers.c.id == anna.customer_id).values(consent_sms=True)
        )
    for m in (anna, boris):
        for _ in range(2):  # the same key twice: one award, one message
            await do_award(
                rt,
                program_id=shop.program_id,
                account_id=m.account_id,
                activity="welcome",
                idempotency_key=f"welcome-{m.account_id}",
            )
    await do_birthday_points(rt, program_id=shop.program_id)
    await do_birthday_points(rt, program_id=shop.program_id)  # a rerun gives nothing twice

    stats = await run_once(
        rt,
        Notifier({"sms": JsonSms(http_receiver.url)}),
        worker_id="w",
        program_ids=[shop.program_id],
    )

    assert stats.dispatched == 4  # two welcomes, two birthdays; Boris gave no consent
    texts = sorted((s.json()["to"], s.json()["text"]) for s in http_receiver.seen)
    async with rt.engine.connect() as conn:
        program = (
            await conn.execute(select(t.programs.c.name).where(t.programs.c.id == shop.program_id))
        ).scalar_one()
    assert texts == sorted(
        [
            (anna.phone, f"Анна, добро пожаловать в {program}! Вам начислено 100 баллов."),
            (anna.phone, f"С днём рождения, Анна! Дарим 200 баллов. {program}"),
        ]
    )


async def test_expiring_points_are_announced_once_per_account_and_day(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    clock.set(datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    # points earned on 1 March expire at the start of 11 March: 10 March is the last day
    shop = await make_shop(expiry_days=10)
    anna = await shop.customer(points=120, first_name="Анна")
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers).where(t.customers.c.id == anna.customer_id).values(consent_sms=True)
        )
    notifier = Notifier({"sms": JsonSms(http_receiver.url)})
    only = [shop.program_id]

    too_early = await announce_expiring_points(rt, days=7, program_id=shop.program_id)
    clock.advance(days=4)
    first = await announce_expiring_points(rt, days=7, program_id=shop.program_id)
    clock.advance(hours=1)
    again = await announce_expiring_points(rt, days=7, program_id=shop.program_id)
    stats = await run_once(rt, notifier, worker_id="w", program_ids=only)

    assert (too_early, first, again) == (0, 1, 0)
    assert stats.delivered == 1
    [sms] = http_receiver.seen
    assert sms.json()["text"].startswith("Успейте потратить 120 баллов до 10.03.2027 включительно.")
