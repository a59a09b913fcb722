"""The basket and CLV pages and the cashier's suggestions in real Chromium (both
databases): an analyst runs both reports and sees the charts drawn; rules saved from
the console reach the cashier screen."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Page, expect

from kopilka.services import audit, basket
from tests.services.receipts_data import Sale, add_sales
from tests.services.test_cashier import store_id
from tests.services.test_clv_report import _weekly_shop
from tests.web.conftest import MakeUser, login, shot

GOODS = {
    "4600000000011": "Кофе в зёрнах 1 кг",
    "4600000000028": "Молоко 3,2 %",
    "4600000000035": "Сахар 1 кг",
    "4600000000042": "Круассан",
    "4600000000059": "Чай чёрный",
    "4600000000066": "Лимон",
    "4600000000073": "Хлеб бородинский",
    "4600000000080": "Масло сливочное",
    "4600000000097": "Сыр",
    "4600000000103": "Вода 0,5 л",
}
SLOW_MS = 120_000  # a report computed on a machine shared with other test runs
COFFEE, MILK, SUGAR, CROISSANT, TEA, LEMON, BREAD, BUTTER, CHEESE, WATER = GOODS


def _baskets(n: int, seed: int = 7) -> list[list[str]]:
    """Receipts with habits: coffee with milk (and sugar), tea with lemon, bread with
    butter and cheese; and noise."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        skus: set[str] = set()
        if rnd.random() < 0.35:
            skus.add(COFFEE)
            if rnd.random() < 0.7:
                skus.add(MILK)
                if rnd.random() < 0.5:
                    skus.add(SUGAR)
            if rnd.random() < 0.3:
                skus.add(CROISSANT)
        if rnd.random() < 0.25:
            skus.add(TEA)
            if rnd.random() < 0.6:
                skus.add(LEMON)
        if rnd.random() < 0.4:
            skus.add(BREAD)
            if rnd.random() < 0.5:
                skus.add(BUTTER)
                if rnd.random() < 0.5:
                    skus.add(CHEESE)
        skus.update(rnd.sample(list(GOODS), rnd.randint(0, 2)))
        out.append(sorted(skus) or [WATER])
    return out


async def habits_shop(make_shop: Any) -> Any:
    shop = await make_shop()
    start = datetime(2026, 9, 1, 7, tzinfo=UTC)
    sales = [
        Sale(start + timedelta(hours=3 * i), skus, names=GOODS)
        for i, skus in enumerate(_baskets(600))
    ]
    await add_sales(shop, sales)
    return shop


async def test_analyst_finds_what_is_bought_together(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await habits_shop(make_shop)
    who = await make_user("marketer", shop)
    await login(page, who, next_url="/admin/reports")

    await page.get_by_role("link", name="Baskets").click()
    await page.get_by_label("Minimum support").fill("0.03")
    await page.get_by_label("Minimum confidence").fill("0.3")
    await page.get_by_role("button", name="Show").click(timeout=SLOW_MS)

    await expect(page.get_by_test_id("receipts")).to_have_text("600")
    await expect(page.locator("#chart-basket-rules[data-drawn='1'] svg")).to_be_visible()
    first = page.get_by_test_id("rules-table").locator("tbody tr").first
    await expect(first).to_be_visible()
    await shot(page, "basket-report")
    await page.get_by_role("button", name="Save the rules for the cashier screen").click()
    await expect(page.get_by_text("Rules saved for the cashier screen")).to_be_visible()
    await page.get_by_label("Minimum support").fill("0")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#min_support-error")).to_contain_text("expected 0 < value <= 1")


async def test_cashier_is_told_what_else_to_offer(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await habits_shop(make_shop)
    q = basket.parse_query({"min_support": "0.03", "min_confidence": "0.3"})
    await basket.do_save_rules(
        shop.rt, shop.program_id, await basket.run_report(shop.rt, audit.CLI, shop.program_id, q)
    )
    who = await make_user("cashier", shop, store_id=await store_id(shop), locale="ru")
    await login(page, who, next_url="/cashier")

    await page.wait_for_load_state("networkidle")  # htmx is up: the panel is swapped in
    await page.get_by_role("button", name="Что ещё предложить").click()
    field = page.get_by_label("Артикулы в корзине")
    await expect(field).to_be_visible()
    await page.wait_for_load_state("networkidle")
    await field.fill(f"{COFFEE}\n{CROISSANT}")
    await expect(field).to_have_value(f"{COFFEE}\n{CROISSANT}")
    await page.get_by_role("button", name="Подсказать").click()

    tips = page.get_by_test_id("basket-tips")
    await expect(tips).to_contain_text("Молоко 3,2 %")
    await expect(tips).to_contain_text("Сахар 1 кг")
    await expect(tips).not_to_contain_text("Кофе в зёрнах")  # already in the basket
    await expect(tips.locator("p")).to_have_count(3)
    await shot(page, "cashier-basket")


async def test_analyst_fits_customer_lifetime_value(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await _weekly_shop(make_shop)
    who = await make_user("analyst", shop)
    await login(page, who, next_url="/admin/reports/clv")

    await page.get_by_label("As of").fill("2026-03-01")
    await page.get_by_label("Penalizer").fill("0.001")
    # fitting takes seconds (the server's first fit imports pandas and lifetimes)
    await page.get_by_role("button", name="Fit").click(timeout=SLOW_MS)

    await expect(page.get_by_test_id("params")).to_contain_text("alpha")
    await expect(page.locator("#chart-clv-alive[data-drawn='1'] svg")).to_be_visible()
    await expect(page.locator("#chart-clv-value[data-drawn='1'] svg")).to_be_visible()
    await expect(page.get_by_test_id("clv-table").locator("tbody tr")).to_have_count(31)
    await shot(page, "clv-report")
