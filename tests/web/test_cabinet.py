"""The customer cabinet in a real browser at phone width: sign in with a code the test's
SMS gateway received, a purchase at the till appears, wrong codes lock out, an expired
code is refused, personal data is exported and deleted.  Both databases.

The cabinet runs in its own `kopilka serve` (the console's server does not know the
rotating-QR secret); the outbox is delivered in-process from the test with part A's
``run_once`` and the JSON SMS provider pointed at a real HTTP server in the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select, update

from kopilka.domain.identifiers import make_card_number
from kopilka.notify.channels.sms import JsonSms
from kopilka.notify.config import DeliveryPolicy
from kopilka.notify.outbox import Notifier, run_once
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Member, receipt
from tests.notify.conftest import HttpReceiver
from tests.processes import stop
from tests.services.conftest import _free_port, _wait_healthy
from tests.web.conftest import KOPILKA, shot

QR_SECRET = "cabinet-test-secret-0123456789"
PHONE_WIDTH = {"width": 390, "height": 844}
FAST = DeliveryPolicy(base_delay_s=1, max_delay_s=5, max_attempts=3, lease_s=60)


@pytest.fixture(scope="module")
def cabinet_base(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `kopilka serve` with the rotating-QR secret set, on the session's database."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("cabinet") / "server.log"
    env = {**os.environ, "KOPILKA_DB_POOL": "5", "KOPILKA_QR_SECRET": QR_SECRET}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [KOPILKA, "--db", db_url, "serve", "--port", str(port), "--workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_healthy(base, proc, log)
        yield base
    finally:
        stop(proc)


@pytest.fixture
async def phone(browser: Browser, cabinet_base: str) -> AsyncIterator[Page]:
    """A page at a phone's width, in English."""
    ctx = await browser.new_context(
        base_url=cabinet_base, viewport=PHONE_WIDTH, accept_downloads=True
    )
    ctx.set_default_timeout(15_000)
    await ctx.add_cookies([{"name": "kopilka_lang", "value": "en", "url": cabinet_base}])
    page = await ctx.new_page()
    yield page
    await ctx.close()


@pytest.fixture
def sms_gateway() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    r.start()
    yield r
    r.stop()


async def deliver_sms(rt: Runtime, gateway: HttpReceiver, program_id: int) -> None:
    """What `kopilka worker` does at a round: dispatch the outbox and send the SMS."""
    notifier = Notifier({"sms": JsonSms(gateway.url + "/sms")}, FAST)
    await run_once(rt, notifier, worker_id="cabinet-test", program_ids=[program_id])


def code_sent_to(gateway: HttpReceiver, phone_number: str) -> str:
    texts = [s.json()["text"] for s in gateway.seen if s.json()["to"] == phone_number]
    assert texts, f"no SMS to {phone_number}: {[s.json() for s in gateway.seen]}"
    m = re.search(r"\b(\d{6})\b", texts[-1])
    assert m, texts[-1]
    return m.group(1)


async def ask_code(page: Page, program_code: str, member: Member) -> None:
    await page.goto(f"/my/{program_code}/")
    await expect(page).to_have_url(re.compile(rf"/my/{program_code}/login$"))
    await page.get_by_label("Phone").fill(member.phone)
    await page.get_by_role("button", name="Get a code").click()
    await expect(page.get_by_role("heading", name="Enter the code")).to_be_visible()


async def sign_in(
    page: Page, rt: Runtime, gateway: HttpReceiver, program_code: str, program_id: int, m: Member
) -> None:
    await ask_code(page, program_code, m)
    await deliver_sms(rt, gateway, program_id)
    await page.get_by_label("Code from SMS").fill(code_sent_to(gateway, m.phone))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("available")).to_be_visible()


async def test_sign_in_with_the_sms_code_then_a_purchase_at_the_till_appears(
    phone: Page, rt: Runtime, make_shop: Any, sms_gateway: HttpReceiver
) -> None:
    shop = await make_shop(earn_percent="10", expiry_days=180)
    m = await shop.customer(points=50, first_name="Anna", last_name="Smirnova")
    await ask_code(phone, shop.code, m)
    await shot(phone, "cabinet-code")
    await deliver_sms(rt, sms_gateway, shop.program_id)
    code = code_sent_to(sms_gateway, m.phone)
    await phone.get_by_label("Code from SMS").fill(code)
    await phone.get_by_role("button", name="Sign in").click()
    await expect(phone.get_by_test_id("available")).to_have_text("50 points")
    await expect(phone.get_by_text("No purchases yet.")).to_be_visible()

    calc = await shop.post("/purchases/calculate", receipt("R-1001", m.card, ("a", 2, "600.00")))
    assert calc.status_code == 200, calc.text
    conf = await shop.post("/purchases/R-1001/confirm")
    assert conf.status_code == 200, conf.text
    await phone.reload()
    await expect(phone.get_by_test_id("available")).to_have_text("170 points")
    recent = phone.get_by_test_id("recent")
    await expect(recent).to_contain_text("Receipt R-1001")
    await expect(recent).to_contain_text("+120 points")
    await expect(phone.get_by_text("Expiring points")).to_be_visible()
    await shot(phone, "cabinet-home")

    await phone.get_by_role("link", name="History", exact=True).click()
    await expect(phone.get_by_test_id("receipts")).to_contain_text("R-1001")
    await expect(phone.get_by_test_id("moves")).to_contain_text("+120.00")
    await shot(phone, "cabinet-history")

    # The card page: the barcode of the card and the one-minute till code, which the
    # till accepts as the customer's identifier.
    await phone.get_by_role("link", name="Card", exact=True).click()
    await expect(phone.get_by_role("img", name=f"EAN-13 {m.card}")).to_be_visible()
    token = await phone.get_by_test_id("qr-token").inner_text()
    assert token.startswith("KQ" + m.card)
    await shot(phone, "cabinet-card")

    # the code itself is single-use: a second sign-in with it is refused
    await phone.get_by_role("button", name="Log out").click()
    await expect(phone.get_by_role("heading", name="Sign in")).to_be_visible()
    await ask_code(phone, shop.code, m)
    await phone.get_by_label("Code from SMS").fill(code)
    await phone.get_by_role("button", name="Sign in").click()
    await expect(phone.get_by_role("alert")).to_have_text("The code is wrong.")


async def test_wrong_codes_lock_out_even_the_right_code(
    phone: Page, rt: Runtime, make_shop: Any, sms_gateway: HttpReceiver
) -> None:
    shop = await make_shop()
    m = await shop.customer()
    await ask_code(phone, shop.code, m)
    await deliver_sms(rt, sms_gateway, shop.program_id)
    right = code_sent_to(sms_gateway, m.phone)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(4):
        await phone.get_by_label("Code from SMS").fill(wrong)
        await phone.get_by_role("button", name="Sign in").click()
        await expect(phone.get_by_role("alert")).to_have_text("The code is wrong.")
    # the 5th wrong code locks the phone out (issue 10), and says so
    await phone.get_by_label("Code from SMS").fill(wrong)
    await phone.get_by_role("button", name="Sign in").click()
    await expect(phone.get_by_role("alert")).to_contain_text("try again in an hour")
    await phone.get_by_label("Code from SMS").fill(right)  # the 6th fails even when right
    await phone.get_by_role("button", name="Sign in").click()
    await expect(phone.get_by_role("alert")).to_contain_text("too many wrong codes")
    await shot(phone, "cabinet-locked")

    await phone.get_by_role("button", name="Send a new code").click()
    await expect(phone.get_by_text("too many wrong codes for this phone")).to_be_visible()
    await phone.goto(f"/my/{shop.code}/")
    await expect(phone).to_have_url(re.compile(r"/login$"))  # not signed in


async def test_an_expired_code_is_refused(
    phone: Page, rt: Runtime, make_shop: Any, sms_gateway: HttpReceiver
) -> None:
    shop = await make_shop()
    m = await shop.customer()
    await ask_code(phone, shop.code, m)
    await deliver_sms(rt, sms_gateway, shop.program_id)
    code = code_sent_to(sms_gateway, m.phone)
    # Five minutes pass: the server's clock is real, so the code's expiry moves back.
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.phone_codes)
            .where(t.phone_codes.c.customer_id == m.customer_id)
            .values(expires_at=rt.now() - timedelta(seconds=1))
        )
    await phone.get_by_label("Code from SMS").fill(code)
    await phone.get_by_role("button", name="Sign in").click()
    await expect(phone.get_by_role("alert")).to_have_text(
        "The code has expired; ask for a new one."
    )


async def test_profile_consents_export_and_deletion_of_personal_data(
    phone: Page, rt: Runtime, make_shop: Any, sms_gateway: HttpReceiver, tmp_path: Path
) -> None:
    shop = await make_shop()
    m = await shop.customer(points=25, first_name="Olga", last_name="Ivanova")
    await sign_in(phone, rt, sms_gateway, shop.code, shop.program_id, m)

    await phone.get_by_role("link", name="Profile", exact=True).click()
    await phone.get_by_label("E-mail", exact=True).fill("not an address")
    await phone.get_by_role("button", name="Save").click()
    await expect(phone.get_by_text("not an e-mail address")).to_be_visible()
    await expect(phone.get_by_label("E-mail", exact=True)).to_have_value("not an address")
    await phone.get_by_label("E-mail", exact=True).fill("olga@example.org")
    await phone.get_by_label("News and offers by SMS").check()
    await phone.get_by_role("button", name="Save").click()
    await expect(phone.get_by_role("status")).to_have_text("Saved.")
    await expect(phone.get_by_label("News and offers by SMS")).to_be_checked()
    await shot(phone, "cabinet-profile")
    async with rt.engine.connect() as conn:
        audit = (
            await conn.execute(
                select(t.audit_log.c.action, t.audit_log.c.actor_kind).where(
                    t.audit_log.c.program_id == shop.program_id
                )
            )
        ).all()
    assert [tuple(r) for r in audit] == [("customer.consent", "member")]

    await phone.get_by_role("link", name="Download or delete my personal data").click()
    async with phone.expect_download() as info:
        await phone.get_by_role("button", name="Download (JSON)").click()
    download = await info.value
    path = tmp_path / "my-data.json"
    await download.save_as(path)
    doc = json.loads(path.read_text())
    assert doc["customer"]["phone"] == m.phone
    assert doc["customer"]["email"] == "olga@example.org"
    assert doc["balance"]["available"] == "25.00"

    await phone.get_by_label("Type DELETE to confirm").fill("yes")
    await phone.get_by_role("button", name="Delete my personal data").click()
    await expect(phone.get_by_text("type DELETE to confirm", exact=True)).to_be_visible()
    await shot(phone, "cabinet-data")
    await phone.get_by_label("Type DELETE to confirm").fill("DELETE")
    await phone.get_by_role("button", name="Delete my personal data").click()
    await expect(phone.get_by_role("heading", name="Your personal data is deleted")).to_be_visible()
    await phone.goto(f"/my/{shop.code}/")
    await expect(phone).to_have_url(re.compile(r"/login$"))
    async with rt.engine.connect() as conn:
        cust = (
            await conn.execute(select(t.customers).where(t.customers.c.id == m.customer_id))
        ).one()
        ledger = (
            await conn.execute(
                select(t.ledger_entries.c.id).where(t.ledger_entries.c.account_id == m.account_id)
            )
        ).all()
    assert (cust.phone, cust.email, cust.status) == (None, None, "deleted")
    assert cust.first_name.startswith("erased-")  # a pseudonym, not the name
    assert ledger  # the points' history stays for accounting


async def test_the_login_page_in_russian_and_a_stale_form_is_refused(
    browser: Browser, cabinet_base: str, make_shop: Any
) -> None:
    shop = await make_shop()
    ctx = await browser.new_context(base_url=cabinet_base, viewport=PHONE_WIDTH)
    page = await ctx.new_page()
    try:
        await page.goto(f"/my/{shop.code}/login")
        await expect(page.get_by_role("heading", name="Вход")).to_be_visible()
        await page.get_by_label("Телефон").fill("12")
        await page.get_by_role("button", name="Получить код").click()
        await expect(page.get_by_text("введите номер мобильного телефона")).to_be_visible()
        await shot(page, "cabinet-login")
        # a POST without the form's token (another site's form) is refused
        r = await page.request.post(f"/my/{shop.code}/login", form={"phone": "+79031234567"})
        assert r.status == 403
    finally:
        await ctx.close()


async def test_unsubscribing_in_the_cabinet_stops_the_receipt_sms(
    phone: Page, rt: Runtime, make_shop: Any, sms_gateway: HttpReceiver
) -> None:
    shop = await make_shop(earn_percent="10")
    m = await shop.customer()
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers).where(t.customers.c.id == m.customer_id).values(consent_sms=True)
        )
    await sign_in(phone, rt, sms_gateway, shop.code, shop.program_id, m)
    for rid in ("U-1", "U-2"):
        if rid == "U-2":  # the member turns SMS off in the cabinet between the purchases
            await phone.get_by_role("link", name="Profile", exact=True).click()
            await expect(phone.get_by_label("News and offers by SMS")).to_be_checked()
            await phone.get_by_label("News and offers by SMS").uncheck()
            await phone.get_by_role("button", name="Save").click()
            await expect(phone.get_by_role("status")).to_have_text("Saved.")
            await expect(phone.get_by_label("News and offers by SMS")).not_to_be_checked()
        calc = await shop.post("/purchases/calculate", receipt(rid, m.card, ("a", 1, "500.00")))
        assert calc.status_code == 200, calc.text
        assert (await shop.post(f"/purchases/{rid}/confirm")).status_code == 200
        await deliver_sms(rt, sms_gateway, shop.program_id)
    texts = [s.json()["text"] for s in sms_gateway.seen if s.json()["to"] == m.phone]
    receipts = [x for x in texts if "50" in x and not re.search(r"\b\d{6}\b", x)]
    assert len(receipts) == 1, texts  # U-1's SMS only: none after unsubscribing


async def test_the_till_accepts_the_cards_one_minute_code(
    phone: Page,
    rt: Runtime,
    make_shop: Any,
    sms_gateway: HttpReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KOPILKA_QR_SECRET", QR_SECRET)  # the test's in-process POS API
    shop = await make_shop()
    m = await shop.customer(points=40)
    await sign_in(phone, rt, sms_gateway, shop.code, shop.program_id, m)
    await phone.get_by_role("link", name="Card", exact=True).click()
    token = await phone.get_by_test_id("qr-token").inner_text()
    # The code is also drawn as a QR image a till's scanner reads (an SVG, several rows).
    qr = phone.get_by_test_id("qr-image").locator("svg")
    await expect(qr).to_be_visible()
    box = await qr.bounding_box()
    assert box is not None and box["width"] >= 100 and box["height"] >= 100
    r = await shop.get("/customers/lookup", params={"identifier": token})
    assert r.status_code == 200, r.text
    assert r.json()["customer"]["id"] == m.customer_id
    assert r.json()["balance"]["available"] == "40.00"
    changed = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert (await shop.get("/customers/lookup", params={"identifier": changed})).status_code == 404

    # a plastic card registered in the cabinet identifies the member at the till too
    plastic = make_card_number("26", shop.program_id * 1000 + 1)
    await phone.get_by_label("Plastic card number").fill("123")
    await phone.get_by_role("button", name="Register the card").click()
    await expect(phone.get_by_text("13 digits with a correct check digit")).to_be_visible()
    await phone.get_by_label("Plastic card number").fill(plastic)
    await phone.get_by_role("button", name="Register the card").click()
    await expect(phone.get_by_role("status")).to_have_text("The card is registered.")
    await expect(phone.get_by_test_id("cards")).to_contain_text(plastic)
    r = await shop.get("/customers/lookup", params={"identifier": plastic})
    assert r.status_code == 200 and r.json()["customer"]["id"] == m.customer_id


async def test_the_card_page_shows_the_offline_burn_code_and_the_app_gets_the_token(
    phone: Page, rt: Runtime, make_shop: Any, sms_gateway: HttpReceiver
) -> None:
    shop = await make_shop(earn_percent="0", burn_max_percent="100", offline_cap_max="200")
    m = await shop.customer(points=150)
    await sign_in(phone, rt, sms_gateway, shop.code, shop.program_id, m)

    await phone.get_by_role("link", name="Card", exact=True).click()
    section = phone.get_by_test_id("offline")
    await expect(section).to_contain_text("Pay with points when the till is offline")
    await expect(phone.get_by_test_id("offline-cap")).to_have_text("Up to 150 points")
    await expect(section.locator("svg")).to_be_visible()
    await shot(phone, "cabinet-offline-code")
    app = await phone.request.get(f"/my/{shop.code}/card/offline-token")
    token = await app.json()

    # the till, offline, burned 100 of the 150; the receipt arrives later
    r = await shop.post(
        "/purchases",
        receipt(
            "OFF-1",
            None,
            ("a", 1, "100.00"),
            offline_token=token["token"],
            redeem_points="100",
        ),
    )

    assert (app.status, token["cap"]) == (200, "150.00")
    assert r.status_code == 200, r.text
    assert r.json()["balance"]["available"] == "50.00"
