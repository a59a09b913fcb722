"""Campaigns, message templates, the outbox and webhooks in a real browser; the worker's
functions run in-process against the same database as the served console."""

from __future__ import annotations

import re
from typing import Any

import orjson
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from kopilka.notify.channels.sms import JsonSms
from kopilka.notify.config import DeliveryPolicy
from kopilka.notify.outbox import Notifier, run_once
from kopilka.services import campaigns
from kopilka.services.audit import CLI
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Member, Shop, receipt
from tests.notify.conftest import HttpReceiver, http_receiver  # noqa: F401  (the fixture)
from tests.web.conftest import MakeUser, login, shot


async def consenting(shop: Shop, n: int, *, sms: bool = True) -> list[Member]:
    out = []
    for _ in range(n):
        m = await shop.customer()
        async with shop.rt.engine.begin() as conn:
            await conn.execute(
                update(t.customers).where(t.customers.c.id == m.customer_id).values(consent_sms=sms)
            )
        out.append(m)
    return out


async def buy(shop: Shop, m: Member, rid: str, amount: str) -> None:
    calc = await shop.post("/purchases/calculate", receipt(rid, m.card, ("a", 1, amount)))
    assert calc.status_code == 200, calc.text
    assert (await shop.post(f"/purchases/{rid}/confirm")).status_code == 200


async def test_marketer_builds_a_campaign_runs_it_and_reads_the_report(
    page: Page,
    make_user: MakeUser,
    make_shop: Any,
    rt: Runtime,
    http_receiver: HttpReceiver,  # noqa: F811
) -> None:
    shop = await make_shop()
    members = await consenting(shop, 3)
    silent = (await consenting(shop, 1, sms=False))[0]
    who = await make_user("marketer", shop)
    await login(page, who, next_url="/admin/campaigns")
    await expect(page.get_by_text("No campaigns yet.")).to_be_visible()
    await page.get_by_role("button", name="New campaign").click()
    await expect(page.get_by_test_id("audience-count")).to_have_text("3")
    await page.get_by_label("Campaign name").fill("Spring sale")
    await page.get_by_label("Text").fill("{{ name }}, -20% on everything this week!")
    await expect(page.get_by_test_id("preview")).to_contain_text("Анна, -20% on everything")
    # a Cyrillic name makes it UCS-2 (70 a part); with the unsubscribe link: two parts
    await expect(page.get_by_test_id("sms-length")).to_contain_text("UCS-2")
    await expect(page.get_by_test_id("sms-length")).to_contain_text("parts: 2")
    # a condition nobody meets: the count follows
    await page.get_by_label("Days since last purchase, at most").fill("30")
    await expect(page.get_by_test_id("audience-count")).to_have_text("0")
    await page.get_by_label("Days since last purchase, at most").fill("")
    await expect(page.get_by_test_id("audience-count")).to_have_text("3")
    await shot(page, "notify-campaign-new")
    # a bad field comes back with what was typed
    await page.get_by_label("Quiet hours from").fill("21:00")
    await page.get_by_role("button", name="Schedule campaign").click()
    await expect(page.get_by_text("Give both ends of quiet hours.")).to_be_visible()
    await expect(page.get_by_label("Campaign name")).to_have_value("Spring sale")
    await page.get_by_label("Quiet hours from").fill("")
    await page.get_by_label("Control group, %").fill("0")
    await page.get_by_role("button", name="Schedule campaign").click()
    await expect(page.get_by_text("Campaign scheduled.")).to_be_visible()
    await expect(page.get_by_role("heading", name="Spring sale")).to_contain_text("scheduled")
    url = page.url

    # the worker: due campaigns become outbox events, the outbox is delivered
    assert await campaigns.run_due(rt) >= 3
    notifier = Notifier({"sms": JsonSms(http_receiver.url + "/sms")}, DeliveryPolicy())
    await run_once(rt, notifier, worker_id="web-test", program_ids=[shop.program_id])
    got = sorted(s.json()["to"] for s in http_receiver.seen)
    assert got == sorted(m.phone for m in members) and silent.phone not in got
    await buy(shop, members[0], "after-1", "1200.00")

    await page.goto(url)
    await expect(page.get_by_test_id("sent")).to_have_text("3")
    await expect(page.get_by_test_id("delivered")).to_have_text("3")
    rows = page.get_by_test_id("response").locator("tbody tr")
    # target: 3 customers, one bought once for 1,200.00; no control group (0 %)
    await expect(rows.nth(0)).to_have_text(re.compile(r"Customers\s*3\s*0"))
    await expect(rows.nth(2)).to_have_text(re.compile(r"Purchases\s*1\s*0"))
    await expect(rows.nth(3)).to_contain_text("1,200.00 ₽")
    await expect(rows.nth(4)).to_contain_text("400.00 ₽")  # 1,200.00 / 3
    await shot(page, "notify-campaign-report")
    await page.goto("/admin/campaigns")
    await expect(page.locator("#rows tbody tr")).to_have_count(1)
    await shot(page, "notify-campaigns")


async def test_template_edit_with_live_preview_and_sms_parts(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    who = await make_user("marketer", shop)
    await login(page, who, next_url="/admin/message-templates?lang=ru")
    await page.get_by_role("row", name="Points for a purchase SMS").get_by_role("link").click()
    body = page.get_by_label("Text")
    await expect(page.get_by_test_id("preview")).to_contain_text("Начислено 125 баллов")
    long = "Спасибо за покупку, {{ name }}! " * 3 + "Баланс: {{ balance|points }}."
    await body.fill(long)
    await expect(page.get_by_test_id("preview")).to_contain_text(
        "Спасибо за покупку, Анна! Спасибо за покупку, Анна!"
    )
    await expect(page.get_by_test_id("sms-length")).to_contain_text("UCS-2")
    await expect(page.get_by_test_id("sms-length")).to_contain_text("parts: 2")
    await shot(page, "notify-template-edit")
    await body.fill("Баланс {{ balance|points")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("small.error")).to_contain_text("does not render")
    await body.fill("Баланс: {{ balance|points }}. {{ program }}")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("Template saved.")).to_be_visible()
    await expect(page.get_by_text("The program's own text.")).to_be_visible()
    async with rt.engine.connect() as conn:
        saved = (
            await conn.execute(
                select(t.message_templates.c.body).where(
                    t.message_templates.c.program_id == shop.program_id
                )
            )
        ).scalar_one()
        action = (
            await conn.execute(
                select(t.audit_log.c.action).where(
                    t.audit_log.c.program_id == shop.program_id,
                    t.audit_log.c.object_type == "template",
                )
            )
        ).scalar_one()
    assert saved == "Баланс: {{ balance|points }}. {{ program }}"
    assert action == "template.update"


async def test_a_dead_letter_is_retried_from_the_outbox_page(
    page: Page,
    make_user: MakeUser,
    make_shop: Any,
    rt: Runtime,
    http_receiver: HttpReceiver,  # noqa: F811
) -> None:
    shop = await make_shop(earn_percent="10")
    (m,) = await consenting(shop, 1)
    notifier = Notifier(
        {"sms": JsonSms(http_receiver.url + "/sms")}, DeliveryPolicy(max_attempts=1)
    )
    only = [shop.program_id]
    http_receiver.stop()
    await buy(shop, m, "r-dead", "500.00")
    stats = await run_once(rt, notifier, worker_id="web-test", program_ids=only)
    assert stats.dead == 1

    # the marketer does not see the outbox at all
    marketer = await make_user("marketer", shop)
    await login(page, marketer)
    await expect(page.get_by_role("link", name="Outbox")).to_have_count(0)
    await page.context.clear_cookies()

    owner = await make_user("owner", shop)
    await login(page, owner, next_url="/admin/outbox?state=dead")
    row = page.locator("#rows tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(m.phone)
    await shot(page, "notify-outbox-dead")
    await row.get_by_role("checkbox").check()
    await page.get_by_role("button", name="Retry selected").click()
    await expect(page.get_by_text("Queued again: 1")).to_be_visible()
    await expect(page.locator("#rows tbody tr")).to_contain_text("Waiting")

    http_receiver.start()
    again = await run_once(rt, notifier, worker_id="web-test", program_ids=only)
    assert again.delivered == 1
    assert [s.json()["to"] for s in http_receiver.seen] == [m.phone]
    async with rt.engine.connect() as conn:
        audited = (
            await conn.execute(
                select(t.audit_log.c.actor_name).where(
                    t.audit_log.c.action == "outbox.retry",
                    t.audit_log.c.program_id == shop.program_id,
                )
            )
        ).scalar_one()
    assert audited == owner.name


async def test_unsubscribe_link_clears_consent(page: Page, make_shop: Any, rt: Runtime) -> None:
    shop = await make_shop()
    (m,) = await consenting(shop, 1)
    form = {"name": "News", "channel": "sms", "body": "Новинки недели"}
    await campaigns.create(rt, CLI, shop.program_id, form)
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
    link = orjson.loads(payload)["unsubscribe_url"]
    path = "/unsubscribe/" + link.rsplit("/", 1)[1]

    bad = await page.goto(path[:-3] + "abc")
    assert bad is not None and bad.status == 404
    await page.goto(path)
    await page.get_by_role("button", name="Отписаться").click()
    await expect(page.get_by_role("heading", name="Вы отписались")).to_be_visible()
    await expect(page.get_by_text("по SMS")).to_be_visible()
    await shot(page, "notify-unsubscribe")
    async with rt.engine.connect() as conn:
        consent = (
            await conn.execute(
                select(t.customers.c.consent_sms).where(t.customers.c.id == m.customer_id)
            )
        ).scalar_one()
    assert consent is False


async def test_owner_adds_a_webhook_and_rotates_its_secret(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    owner = await make_user("owner", shop)
    await login(page, owner, next_url="/admin/webhooks")
    await page.get_by_label("Address").fill("ftp://nope")
    await page.get_by_role("button", name="Add", exact=True).click()
    await expect(page.get_by_text("Enter an http(s) address.")).to_be_visible()
    await page.get_by_label("Address").fill("https://partner.example/hook")
    await page.get_by_role("button", name="Add", exact=True).click()
    first = await page.get_by_test_id("new-secret").inner_text()
    assert first.startswith("whsec_")
    await page.get_by_role("button", name="Rotate secret").click()
    second = await page.get_by_test_id("new-secret").inner_text()
    assert second.startswith("whsec_") and second != first
    await expect(page.get_by_role("row", name="partner.example")).to_contain_text(second[-4:])
    await shot(page, "notify-webhooks")
