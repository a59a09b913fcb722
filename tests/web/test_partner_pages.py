"""A partner's console page in a real browser (issue 9): the receipts at its stores,
customers masked, nothing of another partner."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from kopilka.services.runtime import Runtime
from tests.api.access_world import _second_partner
from tests.conftest import Shop, receipt
from tests.web.conftest import MakeUser, login, shot


async def _confirmed(shop: Shop, key: str, rid: str, card: str) -> None:
    h = {"Authorization": f"Bearer {key}"}
    body = receipt(rid, card, ("sku", 1, "250.00"))
    r = await shop.client.post("/api/pos/v1/purchases/calculate", json=body, headers=h)
    assert r.status_code == 200, r.text
    r = await shop.client.post(f"/api/pos/v1/purchases/{rid}/confirm", headers=h)
    assert r.status_code == 200, r.text


async def test_a_partner_sees_its_receipts_with_customers_masked(
    page: Page, rt: Runtime, make_shop: Any, make_user: MakeUser
) -> None:
    shop: Shop = await make_shop()
    _, _, _, _, _, b_key = await _second_partner(rt, shop, "ZQPARTB")
    anna = await shop.customer(first_name="Анна", last_name="Смирнова")
    await _confirmed(shop, shop.key, "mine-1", anna.card)
    await _confirmed(shop, b_key, "theirs-1", anna.card)
    who = await make_user("partner", shop, partner_id=shop.partner_id)

    await login(page, who, next_url="/admin/receipts")

    rows = page.locator("#receipts tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator("code")).to_have_text("mine-1")
    await expect(rows.first.locator("td.customer")).to_have_text("А. С.")
    await expect(rows.first.locator("td.phone")).to_have_text(f"+7 9** ***-**-{anna.phone[-2:]}")
    await expect(page.locator("#masked-note")).to_be_visible()
    text = await page.content()
    assert "theirs-1" not in text and "ZQPARTB" not in text and "Смирнова" not in text
    await expect(page.get_by_role("link", name="Receipts")).to_be_visible()
    await shot(page, "partner-receipts")
