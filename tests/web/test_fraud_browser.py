"""The security officer's queue in a real browser: alerts raised by the worker's scan over
real till traffic, filtered, opened, taken, the card blocked and the alert resolved."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from playwright.async_api import Page, expect
from sqlalchemy import update

from kopilka.services import audit, customer_admin, fraud, giftcards
from kopilka.store import tables as t
from tests.conftest import Shop, receipt
from tests.web.conftest import MakeUser, login, shot


async def _traffic(shop: Shop) -> str:
    """Four situations: a cashier's own card, a refund after paying with points, a big
    manual adjustment, gift-card PIN guessing."""
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.stores)
            .where(t.stores.c.program_id == shop.program_id)
            .values(name="Тверская, 12")
        )
    own = await shop.customer(first_name="Игорь", last_name="Кассиров")
    for i in range(6):
        r = await shop.post(
            "/purchases", receipt(f"k{i}", own.card, ("a", 1, "450.00"), cashier_id="cashier-07")
        )
        assert r.status_code == 200, r.text
    buyer = await shop.customer(points=800)
    r = await shop.post(
        "/purchases", receipt("p1", buyer.card, ("tv", 1, "2000.00"), redeem_points=600)
    )
    assert r.status_code == 200, r.text
    assert (await shop.post("/purchases/p1/refunds", {"refund_id": "b1"})).status_code == 200
    who = audit.Actor("user", 77, "Сергей Саппортов", role="support")
    await customer_admin.adjust(
        shop.rt, who, shop.program_id, buyer.customer_id, Decimal("5000"), reason="goodwill"
    )
    [(number, pin)] = await giftcards.do_create_series(
        shop.rt, shop.code, code="G", name="Gift", nominal=Decimal("3000"), count=1
    )
    assert (await shop.post(f"/gift-cards/{number}/activate", {})).status_code == 200
    for i in range(4):
        body = receipt(f"g{i}", None, ("a", 1, "100.00"))
        body["gift_cards"] = [{"number": number, "pin": f"{(int(pin) + 1 + i) % 10000:04d}",
                               "amount": "100.00"}]  # fmt: skip
        assert (await shop.post("/purchases", body)).status_code == 422
    await fraud.scan(shop.rt, program_id=shop.program_id)
    return own.card


async def test_the_officer_works_the_queue(page: Page, make_user: MakeUser, make_shop: Any) -> None:
    shop = await make_shop(burn_max_percent="50")
    card = await _traffic(shop)
    who = await make_user("security", shop, name="Олег Охранов")
    await login(page, who, next_url="/admin/fraud")

    rows = page.get_by_test_id("alerts").locator("tbody tr")
    await expect(rows).to_have_count(4)
    await shot(page, "fraud-queue")
    await page.get_by_label("Rule").select_option("cashier_card")
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(1)
    await rows.first.get_by_role("link", name="One card on many receipts of one cashier").click()

    await expect(page.get_by_test_id("evidence").locator("tbody tr")).to_have_count(6)
    await expect(page.get_by_test_id("state")).to_have_text("Open")
    await page.get_by_role("button", name="Assign to me").click()
    await expect(page.get_by_test_id("state")).to_have_text("Assigned")
    await page.get_by_label("Why the card is blocked").fill("cashier swipes own card")
    await page.get_by_role("button", name="Block the card").click()
    await expect(page.get_by_test_id("card-status")).to_have_text("blocked")
    await shot(page, "fraud-alert")
    await page.get_by_label("Note").fill("Talked to the store manager; cashier warned.")
    await page.get_by_role("button", name="Resolve").click()
    await expect(page.get_by_test_id("state")).to_have_text("Resolved")

    till = await shop.post("/purchases", receipt("after", card, ("a", 1, "10.00")))
    assert till.status_code == 422 and till.json()["code"] == "card_blocked"


async def test_the_queue_and_thresholds_in_russian(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop(burn_max_percent="50")
    await _traffic(shop)
    who = await make_user("security", shop, name="Олег Охранов", locale="ru")
    await login(page, who, next_url="/admin/fraud")

    await expect(page.get_by_test_id("alerts").locator("tbody tr")).to_have_count(4)
    await expect(page.get_by_role("link", name="Подбор PIN-кода подарочной карты")).to_be_visible()
    await shot(page, "fraud-queue-ru")
    await page.get_by_role("button", name="Пороги").click()
    await page.get_by_label("Баллов в одной ручной корректировке, не меньше").fill("-5")
    await page.get_by_role("button", name="Сохранить пороги").click()
    await expect(page.get_by_text("баллы больше 0")).to_be_visible()
    await shot(page, "fraud-settings-ru")
