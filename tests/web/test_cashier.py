"""The cashier screen in real Chromium at tablet size (820x1180), on both databases: a
cashier of the store scans a card, types a phone, registers a customer, checks a coupon
and a gift card; a role without the cashier permission is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import insert, select, update

from kopilka.services import giftcards as gc
from kopilka.services.coupons import do_create_series
from kopilka.store import tables as t
from kopilka.web import i18n
from tests.api.test_promotions_at_till import publish
from tests.services.test_cashier import COUPON_ONLY, PROMOTIONS, TIERS, buy_coffee, store_id
from tests.web.conftest import MakeUser, login, shot

TABLET = {"width": 820, "height": 1180}


@pytest.fixture
async def tablet(browser: Browser, web_base: str) -> AsyncIterator[Page]:
    ctx = await browser.new_context(base_url=web_base, viewport=TABLET)
    ctx.set_default_timeout(15_000)
    page = await ctx.new_page()
    yield page
    await ctx.close()


async def scan(page: Page, text: str) -> None:
    """What a barcode scanner does: types into the focused field, then Enter.  (A person
    scans once the page is up: wait until a field has the focus, as the page gives it on
    load, or the first digits would go nowhere.)"""
    await page.wait_for_function(
        "document.activeElement && document.activeElement.tagName === 'INPUT'"
    )
    await page.keyboard.type(text)
    await page.keyboard.press("Enter")


async def test_a_cashier_scans_a_card_then_types_the_phone_and_sees_the_customer(
    tablet: Page, make_user: MakeUser, make_shop: Any
) -> None:
    page = tablet
    shop = await make_shop()
    await publish(shop, PROMOTIONS, **TIERS, points={"expiry_days": 20})
    member = await shop.customer(points=40, first_name="Анна", last_name="Смирнова")
    async with shop.rt.engine.begin() as conn:  # her birthday is today
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == member.customer_id)
            .values(birthday=shop.rt.now().date().replace(year=1990))
        )
    bought = await buy_coffee(shop, member)
    earned = Decimal(bought["points_earned"])
    who = await make_user("cashier", shop, store_id=await store_id(shop))
    await login(page, who, next_url="/cashier")

    field = page.get_by_label("Card, QR or phone")
    await expect(field).to_be_focused()  # ready for the scanner
    await scan(page, member.card)

    card = page.get_by_test_id("customer")
    await expect(card.get_by_test_id("customer-name")).to_have_text("Анна С.")
    await expect(card).to_contain_text(member.phone[-2:])
    await expect(card).not_to_contain_text(member.phone)  # the phone is masked
    await expect(card.get_by_test_id("available")).to_have_text(i18n.points("en", 40 + earned))
    await expect(card.get_by_test_id("tier")).to_have_text("Silver")
    purchases = card.get_by_test_id("purchases")
    await expect(purchases.locator("tbody tr")).to_have_count(1)
    await expect(purchases.locator("tbody tr")).to_contain_text("1,380.00 ₽")
    await expect(purchases.locator("tbody tr")).to_contain_text(f"+{earned:.0f}")
    await expect(card.get_by_test_id("recommendations")).to_contain_text("Double points on coffee")
    await expect(card.get_by_test_id("recommendations")).to_contain_text("buys coffee")
    # Messages: the birthday, and all her points expiring within 30 days (20 here).
    messages = card.get_by_role("status")
    await expect(messages.first).to_have_text("The customer's birthday is this week")
    await expect(messages.nth(1)).to_contain_text(f"{40 + earned:.2f} points expire on")
    # After the answer the field is ready for the next scan, its text selected.
    await expect(field).to_be_focused()
    await shot(page, "cashier-customer")

    async with page.expect_response("**/cashier/lookup"):
        await scan(page, member.phone[2:])  # the card was forgotten: 10 digits of the phone
    await expect(card.get_by_test_id("customer-name")).to_have_text("Анна С.")
    await expect(field).to_have_value(member.phone[2:])

    await scan(page, "2700000000000")
    await expect(page.get_by_test_id("lookup-error")).to_contain_text(
        "No customer with this card or phone."
    )
    await expect(field).to_have_value("2700000000000")  # the typed value is kept
    await shot(page, "cashier-unknown")


async def sms_code(shop: Any, phone: str) -> str:
    """The one-time code the customer got (the SMS waits in the outbox)."""
    async with shop.rt.engine.connect() as conn:
        payloads = (
            await conn.execute(
                select(t.outbox.c.payload)
                .where(t.outbox.c.program_id == shop.program_id, t.outbox.c.topic == "sms.send")
                .order_by(t.outbox.c.id.desc())
            )
        ).scalars()
        sms = next(p for p in map(orjson.loads, payloads) if p["to"] == phone)
    code: str = sms["code"]
    return code


async def test_a_cashier_registers_a_customer_and_then_finds_him_by_phone(
    tablet: Page, make_user: MakeUser, make_shop: Any
) -> None:
    page = tablet
    shop = await make_shop()
    taken = await shop.customer()
    who = await make_user("cashier", shop, store_id=await store_id(shop))
    await login(page, who, next_url="/cashier")

    await page.get_by_role("button", name="New customer").click()
    form = page.locator("#panel form")
    await expect(form.get_by_label("Phone")).to_be_focused()
    await form.get_by_label("Phone").fill(taken.phone)
    await form.get_by_label("First name").fill("Борис")
    await form.get_by_label("Card number (optional)").fill("123")
    await form.get_by_label("SMS messages").check()
    await form.get_by_role("button", name="Register").click()
    # Refused next to the fields, with what was typed kept.
    await expect(form.get_by_text("a card number has 13 digits")).to_be_visible()
    await expect(form.get_by_label("First name")).to_have_value("Борис")
    await expect(form.get_by_label("SMS messages")).to_be_checked()
    await form.get_by_label("Card number (optional)").fill("")
    await form.get_by_role("button", name="Register").click()
    await expect(
        form.get_by_text("A customer with this phone is already registered.")
    ).to_be_visible()
    await expect(form.get_by_label("Phone")).to_have_value(taken.phone)
    await shot(page, "cashier-register-error")

    await form.get_by_label("Phone").fill("+7 916 555-12-34")
    await form.get_by_label("Last name").fill("Петров")
    await form.get_by_role("button", name="Register").click()
    done = page.get_by_test_id("registered")
    await expect(done).to_contain_text("Customer registered")
    await expect(done.get_by_label("Code from the SMS")).to_be_focused()
    await shot(page, "cashier-registered")
    await scan(page, "000000")
    await expect(done.get_by_text("The code is wrong.")).to_be_visible()
    await done.get_by_label("Code from the SMS").fill(await sms_code(shop, "+79165551234"))
    await done.get_by_role("button", name="Confirm the phone").click()
    await expect(done.get_by_text("The phone is confirmed.")).to_be_visible()
    await done.get_by_role("button", name="Show the customer").click()
    await expect(page.get_by_test_id("customer-name")).to_have_text("Борис П.")
    await page.keyboard.press("Escape")  # the next customer: the screen is cleared
    await expect(page.get_by_test_id("customer")).to_have_count(0)

    await page.get_by_label("Card, QR or phone").fill("89165551234")
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_test_id("customer-name")).to_have_text("Борис П.")
    await expect(page.get_by_test_id("customer")).to_contain_text("No purchases yet.")


async def test_a_cashier_checks_a_coupon_and_a_gift_card(
    tablet: Page, make_user: MakeUser, make_shop: Any
) -> None:
    page = tablet
    shop = await make_shop()
    await publish(shop, [COUPON_ONLY])
    [code] = await do_create_series(
        shop.rt, program_code=shop.code, code="COFFEE20", name="20% off coffee", count=1
    )
    [(number, _pin)] = await gc.do_create_series(
        shop.rt, shop.code, code="GIFT", name="Gift", nominal=Decimal("1500"), count=1
    )
    term = await shop.rt.terminal_by_key(shop.key)
    assert term is not None
    await gc.do_activate(shop.rt, term, number)
    who = await make_user("store_manager", shop, store_id=await store_id(shop))
    await login(page, who, next_url="/cashier")

    await page.get_by_role("button", name="Check a coupon").click()
    await expect(page.get_by_label("Coupon code")).to_be_focused()
    await scan(page, "NOPE-NOPE")
    await expect(page.locator("#panel").get_by_text("No such coupon.")).to_be_visible()
    await expect(page.get_by_label("Coupon code")).to_have_value("NOPE-NOPE")
    await page.get_by_label("Coupon code").fill(code)
    await page.get_by_role("button", name="Check", exact=True).click()
    result = page.get_by_test_id("coupon-result")
    await expect(result).to_contain_text("valid")
    await expect(result).to_contain_text("Coupon: 20% off coffee")
    await expect(result).to_contain_text("no time limit")
    await shot(page, "cashier-coupon")

    await page.get_by_role("button", name="Check a gift card").click()
    await expect(page.get_by_label("Gift card number")).to_be_focused()
    await scan(page, number)
    gift = page.get_by_test_id("gift-card-result")
    await expect(gift).to_contain_text("ready to use")
    await expect(gift.get_by_test_id("gift-balance")).to_have_text("1,500.00 ₽")
    await shot(page, "cashier-gift-card")


async def test_a_blocked_card_says_so(tablet: Page, make_user: MakeUser, make_shop: Any) -> None:
    from kopilka.services.cards import do_block_card

    page = tablet
    shop = await make_shop()
    member = await shop.customer(points=10)
    await do_block_card(shop.rt, member.card, reason="lost")
    who = await make_user("cashier", shop, store_id=await store_id(shop), locale="ru")
    await login(page, who, next_url="/cashier")

    await scan(page, member.card)

    await expect(page.get_by_test_id("card-blocked")).to_contain_text("Карта заблокирована.")
    await expect(page.get_by_test_id("available")).to_have_count(0)
    await shot(page, "cashier-blocked")


async def test_support_cannot_open_the_cashier_screen(
    tablet: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    who = await make_user("support", shop)
    await login(tablet, who)

    answer = await tablet.goto("/cashier")

    assert answer is not None and answer.status == 403
    await expect(tablet.get_by_role("heading", name="Access denied")).to_be_visible()
    await expect(
        tablet.locator("aside.sidebar").get_by_role("link", name="Cashier screen")
    ).to_have_count(0)


async def test_an_owner_chooses_the_store_first(
    tablet: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    member = await shop.customer(first_name="Вера", last_name="Орлова")
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            insert(t.stores),
            {
                "program_id": shop.program_id,
                "partner_id": shop.partner_id,
                "code": "second",
                "name": "Second store",
                "city": "Казань",
            },
        )
    who = await make_user("owner", shop)
    await login(tablet, who, next_url="/cashier")

    await expect(tablet.get_by_text("Choose the store you are working in.")).to_be_visible()
    await expect(tablet.get_by_label("Card, QR or phone")).to_have_count(0)
    await tablet.get_by_label("Store", exact=True).select_option(label="Second store · Казань")

    await expect(tablet.get_by_label("Card, QR or phone")).to_be_focused()
    await scan(tablet, member.card)
    await expect(tablet.get_by_test_id("customer-name")).to_have_text("Вера О.")
    await shot(tablet, "cashier-owner")
