"""Support's journeys through the customers pages in real Chromium: find a customer by
phone, adjust points with a reason; block a card and see the till refuse it; replace,
merge, consents and a virtual card through their forms; roles without the permission."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from playwright.async_api import Page, expect

from kopilka.domain.identifiers import make_card_number
from kopilka.services import customer_admin as ca
from tests.conftest import receipt
from tests.web.conftest import MakeUser, login, shot


async def test_support_finds_a_customer_by_phone_and_adjusts_points_with_a_reason(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop(earn_percent="5")
    member = await shop.customer(100, first_name="Ирина", last_name="Волкова")
    bought = await shop.post(
        "/purchases", receipt("p-1", member.card, ("milk", 2, "89.90"), ("bread", 1, "45.00"))
    )
    assert bought.status_code == 200, bought.text
    start = Decimal((await shop.balance(member))["available"])
    who = await make_user("support", shop)
    await login(page, who, next_url="/admin/customers")

    # Typed as people say it; the live search finds the customer without pressing Enter.
    typed = "8 (" + member.phone[2:5] + ") " + member.phone[5:8] + "-" + member.phone[8:]
    await page.get_by_role("searchbox").fill(typed)
    row = page.locator("#rows tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(member.card)
    await expect(page.locator("#rows")).to_contain_text("Found by phone")
    await shot(page, "customers-search")

    await row.get_by_role("link", name="Волкова Ирина").click()
    await expect(page.get_by_test_id("available")).to_have_text(f"{start:.2f}")
    await expect(page.locator("#rows")).to_contain_text("p-1")
    await shot(page, "customers-page")

    await page.get_by_role("button", name="Adjust points").click()
    await page.get_by_label("Points").fill("50")
    await page.get_by_role("button", name="Adjust", exact=True).click()
    # No reason: the message sits next to the field, the amount stays typed.
    await expect(page.locator("#reason-error")).to_have_text("Say why (at least 3 characters).")
    await expect(page.get_by_label("Points")).to_have_value("50")
    await shot(page, "customers-adjust-error")

    await page.get_by_label("Reason (required, seen in the audit log)").fill("Lost receipt 4411")
    await page.get_by_role("button", name="Adjust", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text(f"Available now: {start + 50:.2f}")
    await expect(page.get_by_test_id("available")).to_have_text(f"{start + 50:.2f}")

    await page.get_by_role("button", name="Movements").click()
    movements = page.get_by_test_id("movements")
    await expect(movements.locator("tbody tr").first).to_contain_text("adjust")
    await expect(movements.locator("tbody tr").first).to_contain_text("50.00")
    await expect(movements.locator("tbody tr").first).to_contain_text("Lost receipt 4411")
    await page.get_by_role("button", name="History").click()
    await expect(page.locator("#rows")).to_contain_text("points.adjust")
    await expect(page.locator("#rows")).to_contain_text("Lost receipt 4411")

    # A debit above what is available is refused, naming the field and keeping the input.
    await page.goto(f"/admin/customers/{member.customer_id}/adjust")
    await page.get_by_label("Direction").select_option("debit")
    await page.get_by_label("Points").fill("1000")
    await page.get_by_label("Reason (required, seen in the audit log)").fill("Test debit")
    await page.get_by_role("button", name="Adjust", exact=True).click()
    await expect(page.locator("#amount-error")).to_contain_text("More than the customer has")
    await expect(page.get_by_label("Points")).to_have_value("1000")
    await expect(page.get_by_label("Direction")).to_have_value("debit")

    # At tablet width the page still reads top to bottom.
    await page.set_viewport_size({"width": 800, "height": 1000})
    await page.goto(f"/admin/customers/{member.customer_id}?tab=movements")
    await expect(page.get_by_test_id("available")).to_be_visible()
    await shot(page, "customers-page-tablet")


async def test_a_card_blocked_in_the_console_is_refused_at_the_till_until_unblocked(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop(earn_percent="5")
    member = await shop.customer(20)
    who = await make_user("support", shop)
    await login(page, who, next_url=f"/admin/customers?q={member.card}")
    await page.locator("#rows tbody tr a").first.click()

    card_row = page.get_by_test_id("cards").locator(f"tr[data-card='{member.card}']")
    await card_row.get_by_role("link", name="Block").click()
    await page.get_by_label("Reason (required, seen in the audit log)").fill("Lost, by phone")
    await shot(page, "customers-block")
    await page.get_by_role("button", name="Block").click()
    await expect(page.get_by_role("status")).to_contain_text(f"Card {member.card} blocked.")
    await expect(card_row).to_contain_text("blocked")

    refused = await shop.post("/purchases/calculate", receipt("t1", member.card, ("a", 1, "10")))
    assert refused.status_code == 422 and refused.json()["code"] == "card_blocked"
    lookup = await shop.get("/customers/lookup", params={"identifier": member.card})
    assert lookup.json()["card"]["status"] == "blocked"

    await card_row.get_by_role("link", name="Unblock").click()
    await page.get_by_label("Reason (required, seen in the audit log)").fill("Card found")
    await shot(page, "customers-unblock")
    await page.get_by_role("button", name="Unblock").click()
    await expect(card_row).to_contain_text("active")
    allowed = await shop.post("/purchases/calculate", receipt("t2", member.card, ("a", 1, "10")))
    assert allowed.status_code == 200, allowed.text


async def test_replace_virtual_card_consents_and_merge_through_their_forms(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    member = await shop.customer(30, last_name="Орлова")
    dup = await shop.customer(12, last_name="Орлова")
    who = await make_user("support", shop)
    await login(page, who, next_url=f"/admin/customers/{member.customer_id}")

    new = make_card_number("28", shop.program_id * 1000 + 55)
    await page.get_by_test_id("cards").get_by_role("link", name="Replace").click()
    await page.get_by_label("New card number").fill(new[:-1] + str((int(new[-1]) + 1) % 10))
    await page.get_by_label("Reason (required, seen in the audit log)").fill("Card lost")
    await page.get_by_role("button", name="Replace").click()
    await expect(page.locator("#new-error")).to_have_text("The card number's check digit is wrong.")
    await page.get_by_label("New card number").fill(new)
    await shot(page, "customers-replace")
    await page.get_by_role("button", name="Replace").click()
    await expect(page.get_by_role("status")).to_contain_text("the balance stays")
    await expect(page.get_by_test_id("cards")).to_contain_text(f"replaced by {new}")
    await expect(page.get_by_test_id("available")).to_have_text("30.00")

    await page.get_by_role("button", name="Issue a virtual card").click()
    await page.get_by_label("Reason (required, seen in the audit log)").fill("Asked in chat")
    await shot(page, "customers-virtual-card")
    await page.get_by_role("button", name="Issue", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text(re.compile(r"Virtual card 29\d{11}"))

    await page.get_by_role("button", name="Change consents").click()
    await page.get_by_label("SMS messages").check()
    await page.get_by_label("Reason (required, seen in the audit log)").fill("Customer asked")
    await shot(page, "customers-consents")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_test_id("consents")).to_have_text("SMS: yes · E-mail: no")

    await page.get_by_role("button", name="Merge a duplicate").click()
    await page.get_by_label("Duplicate customer (number, card or phone)").fill(dup.card)
    confirm = page.get_by_label("Type the duplicate's customer number again to confirm")
    await confirm.fill(str(dup.customer_id))
    await page.get_by_label("Reason (required, seen in the audit log)").fill("Same person")
    await shot(page, "customers-merge")
    await confirm.fill("1")
    await page.get_by_label("Reason (required, seen in the audit log)").fill("Same person")
    await page.get_by_role("button", name="Merge", exact=True).click()
    await expect(page.locator("#confirm-error")).to_contain_text("to confirm")
    await expect(page.get_by_label("Duplicate customer (number, card or phone)")).to_have_value(
        dup.card
    )
    await confirm.fill(str(dup.customer_id))
    await page.get_by_role("button", name="Merge", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("12.00 points moved")
    await expect(page.get_by_test_id("available")).to_have_text("42.00")
    await expect(page.get_by_test_id("cards")).to_contain_text(dup.card)
    gone = await ca.get_customer(shop.rt, shop.program_id, dup.customer_id)
    assert gone.status == "merged" and gone.merged_into_id == member.customer_id


async def test_roles_without_customer_permissions_see_no_actions_or_no_page(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    member = await shop.customer(5)
    security = await make_user("security", shop)
    await login(page, security, next_url=f"/admin/customers/{member.customer_id}")
    # The security officer reads and may block, but adjusts nothing.
    await expect(page.get_by_role("button", name="Adjust points")).to_have_count(0)
    await expect(page.get_by_test_id("cards").get_by_role("link", name="Block")).to_be_visible()
    resp = await page.goto(f"/admin/customers/{member.customer_id}/adjust")
    assert resp is not None and resp.status == 403

    analyst = await make_user("analyst", shop)
    await page.context.clear_cookies()
    await login(page, analyst)
    resp = await page.goto("/admin/customers")
    assert resp is not None and resp.status == 403
    await expect(page.locator("aside.sidebar").get_by_role("link", name="Customers")).to_have_count(
        0
    )


async def test_the_pages_speak_russian(page: Page, make_user: MakeUser, make_shop: Any) -> None:
    shop = await make_shop()
    member = await shop.customer(7, first_name="Олег", last_name="Титов")
    who = await make_user("support", shop, locale="ru")
    await login(page, who, next_url="/admin/customers")
    await expect(page.get_by_role("heading", name="Поиск клиента")).to_be_visible()
    await page.get_by_role("searchbox").fill("тит")
    await page.locator("#rows").get_by_role("link", name="Титов Олег").click()
    await expect(page.get_by_text("Доступно", exact=True)).to_be_visible()
    await expect(page.get_by_test_id("available")).to_have_text("7,00")
    await page.get_by_role("button", name="Начислить или списать баллы").click()
    await page.get_by_label("Баллы").fill("2,5")
    await page.get_by_role("button", name="Провести").click()
    await expect(page.locator("#reason-error")).to_have_text(
        "Укажите причину (не короче 3 символов)."
    )
    await expect(page.get_by_label("Баллы")).to_have_value("2,5")
    await page.get_by_label("Причина (обязательно, видна в журнале аудита)").fill("Компенсация")
    await page.get_by_role("button", name="Провести").click()
    await expect(page.get_by_role("status")).to_contain_text("Доступно: 9,50")
    await shot(page, "customers-page-ru")
    assert member.customer_id
