"""Campaigns end to end on both databases: audience, control group, cap, quiet hours,
consent, the report and the unsubscribe link, through part A's real outbox worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from kopilka.domain import campaigns as dc
from kopilka.notify.channels.sms import JsonSms
from kopilka.notify.config import DeliveryPolicy
from kopilka.notify.outbox import Notifier, run_once
from kopilka.services import campaigns
from kopilka.services.audit import CLI
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Clock, Member, Shop, receipt
from tests.notify.conftest import HttpReceiver

NOON = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)  # 12:00 in Moscow


async def member(shop: Shop, *, tier: str | None = None, **fields: Any) -> Member:
    m = await shop.customer()
    values = {"consent_sms": True, **fields}
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers).where(t.customers.c.id == m.customer_id).values(**values)
        )
        if tier:
            await conn.execute(
                update(t.accounts).where(t.accounts.c.id == m.account_id).values(tier=tier)
            )
    return m


async def buy(shop: Shop, m: Member, rid: str, amount: str) -> None:
    calc = await shop.post("/purchases/calculate", receipt(rid, m.card, ("a", 1, amount)))
    assert calc.status_code == 200, calc.text
    conf = await shop.post(f"/purchases/{rid}/confirm")
    assert conf.status_code == 200, conf.text


async def store_id(rt: Runtime, code: str) -> int:
    async with rt.engine.connect() as conn:
        return int(
            (await conn.execute(select(t.stores.c.id).where(t.stores.c.code == code))).scalar_one()
        )


def form(**kw: str) -> dict[str, str]:
    return {"name": "Spring", "channel": "sms", "body": "{{ name }}, -20% this week!", **kw}


async def count(shop: Shop, **aud: str) -> int:
    return await campaigns.audience_count(
        shop.rt, CLI, shop.program_id, dc.parse_audience(aud), "sms"
    )


async def recipients(rt: Runtime, campaign_id: int) -> dict[int, tuple[str, str]]:
    cr = t.campaign_recipients
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(cr.c.customer_id, cr.c.grp, cr.c.state).where(cr.c.campaign_id == campaign_id)
        )
        return {r.customer_id: (r.grp, r.state) for r in rows}


async def test_audience_filters(make_shop: Any, rt: Runtime, clock: Clock) -> None:
    clock.set(NOON)
    shop = await make_shop(earn_percent="5")
    home = await store_id(rt, shop.store_code)
    gold = await member(shop, tier="gold", rfm_segment="champions", tags='["staff"]')
    born_may = await member(shop, birthday=datetime(1990, 5, 17).date(), home_store_id=home)
    await member(shop, rfm_segment="lost", consent_sms=False)  # never: no consent
    await member(shop, rfm_segment="lost", status="blocked")  # never: not active
    buyer = await member(shop)
    await buy(shop, buyer, "r1", "500.00")
    clock.set(NOON + timedelta(days=40))

    assert await count(shop) == 3
    assert await count(shop, rfm="champions") == 1
    assert await count(shop, rfm="lost") == 0
    assert await count(shop, tiers="gold") == 1
    assert await count(shop, tags="staff") == 1
    assert await count(shop, birthday_month="5") == 1
    assert await count(shop, cities="Москва") == 2  # the home store, a purchase there
    assert await count(shop, stores=str(home)) == 2
    assert await count(shop, cities="Казань") == 0
    assert await count(shop, days_max="60") == 1  # bought 40 days ago
    assert await count(shop, days_max="30") == 0
    assert await count(shop, days_min="30") == 3  # never bought counts as long ago
    assert await count(shop, days_min="60") == 2
    listed = f"phone\n{gold.phone}\n{born_may.card}\n+79999999999\n"
    assert await count(shop, list=listed) == 2
    email = await campaigns.audience_count(rt, CLI, shop.program_id, dc.Audience(), "email")
    assert email == 0  # nobody gave an e-mail consent


async def test_create_refuses_bad_input_naming_the_field(make_shop: Any, rt: Runtime) -> None:
    shop = await make_shop()
    cases = [
        (form(name=""), "name"),
        (form(channel="fax"), "channel"),
        (form(body="{{ name"), "body"),
        (form(channel="email"), "subject"),
        (form(quiet_start="21:00"), "quiet_end"),
        (form(quiet_start="25:00", quiet_end="09:00"), "quiet_start"),
        (form(cap_count="2"), "cap_days"),
        (form(control_percent="80"), "control_percent"),
        (form(send_at="tomorrow"), "send_at"),
        (form(timezone="Mars/Olympus"), "timezone"),
    ]
    for values, fld in cases:
        with pytest.raises(ServiceError) as e:
            await campaigns.create(rt, CLI, shop.program_id, values)
        assert e.value.field == fld, (values, e.value.detail)


async def test_consent_withdrawn_after_the_audience_was_built_stops_the_message(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    clock.set(NOON)
    shop = await make_shop()
    keeps, leaves, never = await member(shop), await member(shop), await member(shop)
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == never.customer_id)
            .values(consent_sms=False)
        )
    cid = await campaigns.create(rt, CLI, shop.program_id, form())
    assert await campaigns.run_due(rt) == 2  # the audience query left `never` out
    # the outbox events are written; now `leaves` withdraws consent before the worker runs
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == leaves.customer_id)
            .values(consent_sms=False)
        )
    notifier = Notifier({"sms": JsonSms(http_receiver.url + "/sms")}, DeliveryPolicy())
    await run_once(rt, notifier, worker_id="w", program_ids=[shop.program_id])
    to = [s.json()["to"] for s in http_receiver.seen]
    assert to == [keeps.phone]
    assert never.customer_id not in await recipients(rt, cid)
    text = http_receiver.seen[0].json()["text"]
    assert text.startswith("Анна, -20% this week!") and "/unsubscribe/" in text
    # and running everything again sends nothing more
    assert await campaigns.run_due(rt) == 0
    await run_once(rt, notifier, worker_id="w", program_ids=[shop.program_id])
    assert len(http_receiver.seen) == 1
    rep = await campaigns.report(rt, CLI, cid)
    assert rep.sent == 2 and rep.deliveries["delivered"] == 1


async def test_consent_checked_again_when_the_batch_is_written(
    make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    clock.set(NOON)
    shop = await make_shop()
    a, b = await member(shop), await member(shop)
    cid = await campaigns.create(rt, CLI, shop.program_id, form())
    # the audience is built (recipients queued) but the batch not yet written: consent goes
    async with rt.engine.begin() as conn:
        row = (await conn.execute(select(t.campaigns).where(t.campaigns.c.id == cid))).one()
        await campaigns._build(conn, row, NOON)
        await conn.execute(
            update(t.campaigns).where(t.campaigns.c.id == cid).values(state="sending")
        )
        await conn.execute(
            update(t.customers).where(t.customers.c.id == b.customer_id).values(consent_sms=False)
        )
    assert await campaigns.run_due(rt) == 1
    got = await recipients(rt, cid)
    assert got[a.customer_id] == ("target", "sent")
    assert got[b.customer_id] == ("target", "no_consent")


async def test_frequency_cap_across_campaigns(make_shop: Any, rt: Runtime, clock: Clock) -> None:
    clock.set(NOON)
    shop = await make_shop()
    ms = [await member(shop) for _ in range(3)]
    first = await campaigns.create(rt, CLI, shop.program_id, form(name="first"))
    assert await campaigns.run_due(rt) == 3
    clock.set(NOON + timedelta(days=2))
    capped = await campaigns.create(
        rt, CLI, shop.program_id, form(name="second", cap_count="1", cap_days="7")
    )
    assert await campaigns.run_due(rt) == 0
    assert {s for _, s in (await recipients(rt, capped)).values()} == {"capped"}
    clock.set(NOON + timedelta(days=8))
    later = await campaigns.create(
        rt, CLI, shop.program_id, form(name="third", cap_count="1", cap_days="7")
    )
    assert await campaigns.run_due(rt) == 3
    assert (await campaigns.report(rt, CLI, later)).sent == 3
    assert (await campaigns.report(rt, CLI, first)).sent == len(ms)


async def test_quiet_hours_postpone_until_morning(
    make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    evening = datetime(2026, 3, 10, 19, 30, tzinfo=UTC)  # 22:30 in Moscow
    clock.set(evening)
    shop = await make_shop()
    await member(shop)
    cid = await campaigns.create(
        rt,
        CLI,
        shop.program_id,
        form(quiet_start="21:00", quiet_end="09:00", timezone="Europe/Moscow"),
    )
    assert await campaigns.run_due(rt) == 0
    c = await campaigns.get(rt, CLI, cid)
    assert c.state == "scheduled"
    assert c.next_run_at == datetime(2026, 3, 11, 6, 0, tzinfo=UTC)  # 09:00 Moscow
    clock.set(datetime(2026, 3, 11, 5, 59, tzinfo=UTC))
    assert await campaigns.run_due(rt) == 0
    clock.set(datetime(2026, 3, 11, 6, 0, tzinfo=UTC))
    assert await campaigns.run_due(rt) == 1
    assert (await campaigns.get(rt, CLI, cid)).state == "sent"


async def test_report_compares_target_and_control(
    make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    clock.set(NOON)
    shop = await make_shop()
    ms = [await member(shop) for _ in range(12)]
    before = ms[0]
    await buy(shop, before, "old", "999.00")  # before the campaign: not counted
    clock.set(NOON + timedelta(hours=1))
    cid = await campaigns.create(
        rt, CLI, shop.program_id, form(control_percent="50", response_days="7")
    )
    await campaigns.run_due(rt)
    groups = await recipients(rt, cid)
    target = [m for m in ms if groups[m.customer_id][0] == "target"]
    control = [m for m in ms if groups[m.customer_id][0] == "control"]
    assert target and control and len(target) + len(control) == 12
    # the split is the seeded hash: the same answer as asking again
    async with rt.engine.connect() as conn:
        secret = (
            await conn.execute(select(t.campaigns.c.secret).where(t.campaigns.c.id == cid))
        ).scalar_one()
    assert {m.customer_id for m in control} == {
        m.customer_id for m in ms if dc.in_control(secret, m.customer_id, 50)
    }
    # within 7 days: target[0] buys twice (100 + 250), target[1] once (400),
    # control[0] once (150); after the window target[2] buys (not counted)
    clock.set(NOON + timedelta(days=1))
    await buy(shop, target[0], "t0a", "100.00")
    await buy(shop, target[0], "t0b", "250.00")
    await buy(shop, target[1], "t1", "400.00")
    await buy(shop, control[0], "c0", "150.00")
    clock.set(NOON + timedelta(days=8, hours=2))
    if len(target) > 2:
        await buy(shop, target[2], "late", "5000.00")

    rep = await campaigns.report(rt, CLI, cid)
    nt, nc = len(target), len(control)
    assert (rep.target.customers, rep.target.buyers, rep.target.purchases) == (nt, 2, 3)
    assert rep.target.revenue == Decimal("750.00")
    assert (rep.control.customers, rep.control.buyers, rep.control.purchases) == (nc, 1, 1)
    assert rep.control.revenue == Decimal("150.00")
    per_t = (Decimal("750.00") / nt).quantize(Decimal("0.01"))
    per_c = (Decimal("150.00") / nc).quantize(Decimal("0.01"))
    assert rep.target.per_customer == per_t and rep.control.per_customer == per_c
    assert rep.uplift == per_t - per_c
    assert rep.sent == nt and rep.recipients.get("held") == nc


async def test_unsubscribe_link_clears_consent_and_is_audited(
    make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    clock.set(NOON)
    shop = await make_shop()
    m = await member(shop)
    await campaigns.create(rt, CLI, shop.program_id, form())
    await campaigns.run_due(rt)
    async with rt.engine.connect() as conn:
        payload = (
            await conn.execute(
                select(t.outbox.c.payload).where(
                    t.outbox.c.program_id == shop.program_id,
                    t.outbox.c.topic == "campaign.message",
                )
            )
        ).scalar_one()
    token = orjson.loads(payload)["unsubscribe_url"].rsplit("/", 1)[1]
    assert await campaigns.unsubscribe(rt, token[:-2] + "xx") is None  # forged
    done = await campaigns.unsubscribe(rt, token)
    assert done is not None and not done.already and done.channel == "sms"
    again = await campaigns.unsubscribe(rt, token)
    assert again is not None and again.already
    async with rt.engine.connect() as conn:
        flag = (
            await conn.execute(
                select(t.customers.c.consent_sms).where(t.customers.c.id == m.customer_id)
            )
        ).scalar_one()
        audits = (
            await conn.execute(
                select(t.audit_log.c.action, t.audit_log.c.actor_kind).where(
                    t.audit_log.c.object_type == "customer",
                    t.audit_log.c.object_id == str(m.customer_id),
                )
            )
        ).all()
    assert flag is False
    assert audits == [("consent.unsubscribe", "customer")]
