"""The outbox delivered through real servers: a gateway down and back, several workers,
dead letters, consent, signed webhooks, SMTP.  Both databases."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from kopilka.notify import outbox
from kopilka.notify.channels.email import Smtp
from kopilka.notify.channels.sms import JsonSms, SmsRu
from kopilka.notify.channels.webhook import Webhook, verify
from kopilka.notify.config import DeliveryPolicy
from kopilka.notify.outbox import Notifier, run_once
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Clock, Member, receipt
from tests.notify.conftest import HttpReceiver, SmtpServer

# aiosmtpd warns that its test server takes a password without TLS: on localhost, on purpose
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

FAST = DeliveryPolicy(base_delay_s=10, max_delay_s=60, max_attempts=3, lease_s=120)


async def consent(
    rt: Runtime, member: Member, *, sms: bool = False, mail: str | None = None
) -> None:
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == member.customer_id)
            .values(consent_sms=sms, consent_email=mail is not None, email=mail)
        )


async def buy(shop: Any, member: Member, rid: str, amount: str = "1000.00", **kw: Any) -> None:
    """Calculate and confirm a receipt at the till, as the POS does."""
    calc = await shop.post(
        "/purchases/calculate", receipt(rid, member.card, ("a", 1, amount), **kw)
    )
    assert calc.status_code == 200, calc.text
    conf = await shop.post(f"/purchases/{rid}/confirm")
    assert conf.status_code == 200, conf.text


async def states(rt: Runtime, program_id: int) -> Counter[str]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(t.deliveries.c.state).where(t.deliveries.c.program_id == program_id)
        )
        return Counter(r.state for r in rows)


def frozen(clock: Clock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))


async def test_sms_gateway_down_then_back_delivers_every_receipt_sms_exactly_once(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    frozen(clock)
    shop = await make_shop(earn_percent="10")
    members = [await shop.customer(points=50) for _ in range(4)]
    for m in members:
        await consent(rt, m, sms=True)
    notifier = Notifier({"sms": JsonSms(http_receiver.url + "/sms")}, FAST)
    only = [shop.program_id]
    http_receiver.stop()

    for i, m in enumerate(members):
        await buy(shop, m, f"r{i}", redeem_points="20" if i % 2 else None)
    down = await run_once(rt, notifier, worker_id="w1", program_ids=only)
    http_receiver.start()
    clock.advance(seconds=5)
    too_early = await run_once(rt, notifier, worker_id="w1", program_ids=only)
    clock.advance(seconds=60)
    back = await run_once(rt, notifier, worker_id="w1", program_ids=only)
    clock.advance(hours=2)
    later = await run_once(rt, notifier, worker_id="w1", program_ids=only)

    assert (down.dispatched, down.claimed, down.retried, down.delivered) == (4, 4, 4, 0)
    assert too_early.claimed == 0
    assert (back.claimed, back.delivered) == (4, 4)
    assert later.claimed == 0 and later.dispatched == 0
    got = [s.json() for s in http_receiver.seen]
    assert sorted(x["to"] for x in got) == sorted(m.phone for m in members)
    assert len({x["key"] for x in got}) == 4
    assert all(s.headers["Idempotency-Key"] == s.json()["key"] for s in http_receiver.seen)
    texts = sorted(x["text"] for x in got)
    assert texts[0].startswith("Начислено 100 баллов. Баланс: 150 баллов.")
    assert any("Списано 20 баллов" in x for x in texts)
    assert await states(rt, shop.program_id) == Counter(delivered=4)


async def test_two_workers_at_once_send_each_message_once(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    frozen(clock)
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    await consent(rt, member, sms=True)
    for i in range(24):
        await buy(shop, member, f"r{i}", amount=f"{100 + i}.00")
    policy = DeliveryPolicy(batch=5, concurrency=3)
    only = [shop.program_id]
    # two runtimes: two engines, two connection pools, as two worker processes have
    second = Runtime.from_url(rt.url, clock=rt.clock)
    workers = 2 if not rt.sqlite else 1  # SQLite runs one worker (ADR 0013)
    runtimes = [rt, second][:workers]
    try:
        results = await asyncio.gather(
            *(
                run_once(
                    r,
                    Notifier({"sms": JsonSms(http_receiver.url)}, policy),
                    worker_id=f"w{i}",
                    program_ids=only,
                )
                for i, r in enumerate(runtimes)
            )
        )
    finally:
        await second.close()

    keys = Counter(s.json()["key"] for s in http_receiver.seen)
    assert len(keys) == 24 and set(keys.values()) == {1}
    assert sum(r.dispatched for r in results) == 24
    assert sum(r.delivered for r in results) == 24
    assert await states(rt, shop.program_id) == Counter(delivered=24)


async def test_a_message_the_gateway_keeps_failing_goes_dead_and_can_be_retried(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    frozen(clock)
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    await consent(rt, member, sms=True)
    await buy(shop, member, "r1")
    notifier = Notifier({"sms": JsonSms(http_receiver.url)}, FAST)
    only = [shop.program_id]
    http_receiver.status = 503

    rounds = []
    for _ in range(4):
        rounds.append(await run_once(rt, notifier, worker_id="w", program_ids=only))
        clock.advance(hours=1)
    dead, total = await outbox.list_deliveries(rt, states=["dead"], program_id=shop.program_id)
    http_receiver.status = 200
    requeued = await outbox.retry(rt, program_id=shop.program_id)
    again = await run_once(rt, notifier, worker_id="w", program_ids=only)

    assert [(r.retried, r.dead) for r in rounds] == [(1, 0), (1, 0), (0, 1), (0, 0)]
    assert total == 1 and dead[0].attempts == 3 and "HTTP 503" in (dead[0].last_error or "")
    assert requeued == 1 and again.delivered == 1
    assert len(http_receiver.seen) == 4  # three failures and the delivery
    assert len({s.json()["key"] for s in http_receiver.seen}) == 1


async def test_a_refused_recipient_fails_at_once_without_retries(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    frozen(clock)
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    await consent(rt, member, sms=True)
    await buy(shop, member, "r1")
    http_receiver.smsru_code = 207  # SMS.ru: this number may not receive messages

    stats = await run_once(
        rt,
        Notifier({"sms": SmsRu("api-key", base_url=http_receiver.url)}, FAST),
        worker_id="w",
        program_ids=[shop.program_id],
    )

    assert stats.failed == 1
    assert await states(rt, shop.program_id) == Counter(failed=1)


async def test_sms_ru_gets_its_documented_form_and_its_id_is_kept(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    frozen(clock)
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    await consent(rt, member, sms=True)
    await buy(shop, member, "r1")
    provider = SmsRu("api-key", sender="SHOP", base_url=http_receiver.url)

    stats = await run_once(
        rt, Notifier({"sms": provider}, FAST), worker_id="w", program_ids=[shop.program_id]
    )

    assert stats.delivered == 1
    [req] = http_receiver.seen
    form = req.form()
    assert req.path == "/sms/send"
    assert form == {
        "api_id": "api-key",
        "to": member.phone.lstrip("+"),
        "from": "SHOP",
        "json": "1",
        "msg": form["msg"],
    }
    assert form["msg"].startswith("Начислено 100 баллов.")
    async with rt.engine.connect() as conn:
        ref = (
            await conn.execute(
                select(t.deliveries.c.provider_ref).where(
                    t.deliveries.c.program_id == shop.program_id
                )
            )
        ).scalar_one()
    assert ref == "id-1"


async def test_a_worker_that_dies_after_sending_is_retried_with_the_same_key(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    frozen(clock)
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    await consent(rt, member, sms=True)
    await buy(shop, member, "r1")
    notifier = Notifier({"sms": JsonSms(http_receiver.url)}, FAST)
    only = [shop.program_id]
    await outbox.dispatch(rt, notifier, program_ids=only)

    batch = await outbox.claim(rt, notifier, worker_id="dies", program_ids=only)
    await outbox.send(notifier, batch)  # ... and the worker dies before marking
    during_lease = await outbox.deliver(rt, notifier, worker_id="w2", program_ids=only)
    clock.advance(seconds=FAST.lease_s + 1)
    after_lease = await outbox.deliver(rt, notifier, worker_id="w2", program_ids=only)
    stale = await outbox.mark(rt, notifier, await outbox.send(notifier, batch), worker_id="dies")

    assert during_lease.claimed == 0
    assert after_lease.delivered == 1
    assert stale.delivered == 1  # counted by the late worker, but it no longer holds the row
    keys = [s.json()["key"] for s in http_receiver.seen]
    assert len(keys) == 3 and len(set(keys)) == 1  # same key every time: the gateway dedups
    [row], _ = await outbox.list_deliveries(rt, program_id=shop.program_id)
    assert (row.state, row.attempts) == ("delivered", 2)


async def test_consent_decides_who_hears_from_us_and_the_login_code_always_goes(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver, smtp_server: SmtpServer
) -> None:
    frozen(clock)
    shop = await make_shop(earn_percent="10")
    sms_yes, nobody, mail_yes = [await shop.customer() for _ in range(3)]
    await consent(rt, sms_yes, sms=True)
    await consent(rt, mail_yes, mail="anna@example.org")
    for i, m in enumerate((sms_yes, nobody, mail_yes)):
        await buy(shop, m, f"r{i}")
    reg = await shop.post("/customers", {"phone": "+79261110022", "first_name": "Олег"})
    assert reg.status_code == 201, reg.text
    smtp = Smtp(
        "127.0.0.1",
        smtp_server.port,
        "loyalty@shop.example",
        "Shop",
        security="none",
        user=smtp_server.user,
        password=smtp_server.password,
    )
    notifier = Notifier({"sms": JsonSms(http_receiver.url), "email": smtp}, FAST)

    stats = await run_once(rt, notifier, worker_id="w", program_ids=[shop.program_id])

    assert stats.delivered == 3
    sms = {s.json()["to"]: s.json()["text"] for s in http_receiver.seen}
    assert set(sms) == {sms_yes.phone, "+79261110022"}  # not ``nobody``, not ``mail_yes``
    assert sms[sms_yes.phone].startswith("Начислено 100 баллов")
    assert re.fullmatch(r"Код: \d{6}\. Никому его не сообщайте\. Program \d+", sms["+79261110022"])
    [mail] = smtp_server.mailbox.messages
    msg = email.message_from_bytes(mail.content, policy=email.policy.default)  # type: ignore[arg-type]
    assert mail.rcpt_tos == ["anna@example.org"]
    assert str(msg["Subject"]).startswith("Баллы за покупку")
    assert "Начислено" not in msg.get_content() and "начислено 100 баллов" in msg.get_content()
    assert str(msg["Message-ID"]).startswith("<kp-")
    async with rt.engine.connect() as conn:
        payload = (
            await conn.execute(
                select(t.outbox.c.payload).where(
                    t.outbox.c.program_id == shop.program_id, t.outbox.c.topic == "sms.send"
                )
            )
        ).scalar_one()
        bodies = (
            (
                await conn.execute(
                    select(t.deliveries.c.body).where(
                        t.deliveries.c.program_id == shop.program_id,
                        t.deliveries.c.topic == "sms.send",
                    )
                )
            )
            .scalars()
            .all()
        )
    assert orjson.loads(payload) == {"redacted": True}  # the code is not kept in clear
    assert bodies == ["[redacted]"]


async def test_partner_webhooks_are_signed_retried_and_never_carry_login_codes(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    frozen(clock)
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    secret = "whsec-0123456789abcdef"
    await outbox.add_webhook(
        rt,
        program_id=shop.program_id,
        url=http_receiver.url + "/hook",
        secret=secret,
        topics="purchase.*,sms.send",
    )
    await buy(shop, member, "r1", amount="250.00")
    await shop.post("/customers", {"phone": "+79261110033"})
    notifier = Notifier({"webhook": Webhook()}, FAST)
    only = [shop.program_id]
    http_receiver.status = 500

    first = await run_once(rt, notifier, worker_id="w", program_ids=only)
    http_receiver.status = 200
    clock.advance(seconds=30)
    second = await run_once(rt, notifier, worker_id="w", program_ids=only)

    assert (first.retried, second.delivered) == (1, 1)
    assert len(http_receiver.seen) == 2
    for req in http_receiver.seen:
        h = req.headers
        assert verify(
            secret,
            timestamp=h["X-Kopilka-Timestamp"],
            signature=h["X-Kopilka-Signature"],
            body=req.body,
        )
        assert not verify(
            "another-secret-000",
            timestamp=h["X-Kopilka-Timestamp"],
            signature=h["X-Kopilka-Signature"],
            body=req.body,
        )
    event = http_receiver.seen[1].json()
    assert event["topic"] == "purchase.confirmed"
    assert event["id"] == http_receiver.seen[1].headers["X-Kopilka-Delivery"]
    assert event["data"]["customer_id"] == member.customer_id
    assert Decimal(event["data"]["points_earned"]) == Decimal("25")


async def test_a_programs_own_template_is_used_and_a_broken_one_stops_only_its_event(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    frozen(clock)
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    await consent(rt, member, sms=True)
    async with rt.engine.begin() as conn:
        await conn.execute(
            t.message_templates.insert(),
            [
                {
                    "program_id": shop.program_id,
                    "name": "purchase_confirmed",
                    "channel": "sms",
                    "locale": "ru",
                    "body": "+{{ points_earned|points }}, итого {{ balance|points }}",
                    "updated_at": clock(),
                },
                {
                    "program_id": shop.program_id,
                    "name": "tier_changed",
                    "channel": "sms",
                    "locale": "ru",
                    "body": "{{ tier.__class__.__mro__ }}",
                    "updated_at": clock(),
                },
            ],
        )
        await conn.execute(
            t.outbox.insert(),
            {
                "program_id": shop.program_id,
                "topic": "tier.changed",
                "created_at": clock(),
                "payload": orjson.dumps(
                    {
                        "account_id": member.account_id,
                        "new": "gold",
                        "new_name": "Gold",
                        "direction": "up",
                    }
                ).decode(),
            },
        )
    await buy(shop, member, "r1")

    stats = await run_once(
        rt,
        Notifier({"sms": JsonSms(http_receiver.url)}, FAST),
        worker_id="w",
        program_ids=[shop.program_id],
    )

    assert (stats.dispatched, stats.delivered) == (2, 1)
    assert [s.json()["text"] for s in http_receiver.seen] == ["+100 баллов, итого 100 баллов"]
    async with rt.engine.connect() as conn:
        dead = (
            await conn.execute(
                select(t.outbox.c.topic, t.outbox.c.state, t.outbox.c.last_error).where(
                    t.outbox.c.program_id == shop.program_id, t.outbox.c.state == "dead"
                )
            )
        ).one()
    assert dead.topic == "tier.changed" and "'tier_changed'" in dead.last_error
    assert (await outbox.event_counts(rt, program_id=shop.program_id))["dead"] == 1
    async with rt.engine.begin() as conn:  # the marketer fixes the template
        await conn.execute(
            update(t.message_templates)
            .where(
                t.message_templates.c.program_id == shop.program_id,
                t.message_templates.c.name == "tier_changed",
            )
            .values(body="Уровень: {{ tier }}")
        )
    assert await outbox.retry_events(rt, program_id=shop.program_id) == 1
    again = await run_once(
        rt,
        Notifier({"sms": JsonSms(http_receiver.url)}, FAST),
        worker_id="w",
        program_ids=[shop.program_id],
    )
    assert again.delivered == 1
    assert http_receiver.seen[-1].json()["text"] == "Уровень: Gold"
