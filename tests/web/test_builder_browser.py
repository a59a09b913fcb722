"""The report builder in a real browser: pick dimensions, measures and a chart, see the
table and the chart change live, save the report shared with analysts, open it."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.async_api import Page, expect

from tests.analytics.conftest import Till, till_for
from tests.web.conftest import MakeUser, login, shot

MSK = ZoneInfo("Europe/Moscow")


async def twenty_days(make_shop: Any) -> Till:
    """Each of the 20 days before today (Moscow): in Москва one receipt, dairy 100.00; in
    Казань one receipt of bakery 50.00 and dairy 25.00."""
    shop = await make_shop(timezone="Europe/Moscow")
    till = await till_for(shop)
    await till.store("MSK-1", name="Тверская", city="Москва", region="Москва")
    await till.store("KZN-1", name="Баумана", city="Казань", region="Татарстан")
    today = datetime.now(MSK).date()
    for n in range(1, 21):
        noon = datetime.combine(today - timedelta(days=n), time(12), tzinfo=MSK)
        await till.receipt("MSK-1", noon, [("milk", "dairy", "1", "100.00", "0", "0", "0")])
        await till.receipt(
            "KZN-1",
            noon,
            [
                ("bread", "bakery", "2", "50.00", "0", "0", "0"),
                ("kefir", "dairy", "1", "25.00", "0", "0", "0"),
            ],
        )
    return till


async def test_an_analyst_builds_a_report_with_a_chart_and_saves_it(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    till = await twenty_days(make_shop)
    who = await make_user("analyst", till.shop)
    await login(page, who, next_url="/admin/reports/builder")
    # the default report: sales and receipts by day over the last 30 days, a line chart
    await expect(page.locator("#result tbody tr")).to_have_count(20)
    await expect(page.locator('#preview [data-chart][data-drawn="1"]')).to_be_visible()

    await page.get_by_label("Dimension 1").select_option("city")
    await page.get_by_label("Dimension 2").select_option("category")
    await page.get_by_role("checkbox", name="Receipts").uncheck()
    await page.get_by_role("checkbox", name="Items").check()
    await page.locator('select[name="chart"]').select_option("stacked_bar")

    rows = page.locator("#result tbody tr")
    await expect(rows).to_have_count(3)
    # by sales, largest first: 20 × 100.00; 20 × 50.00; 20 × 25.00
    await expect(rows.nth(0)).to_have_text(re.compile(r"Москва\s*dairy\s*2,000.00\s*20"))
    await expect(rows.nth(1)).to_have_text(re.compile(r"Казань\s*bakery\s*1,000.00\s*40"))
    await expect(rows.nth(2)).to_have_text(re.compile(r"Казань\s*dairy\s*500.00\s*20"))
    await expect(page.locator('#preview [data-chart][data-drawn="1"] svg')).to_be_visible()
    await page.get_by_label("Report name").fill("Города и категории")
    await page.get_by_label("Share with roles").select_option(["analyst"])
    await shot(page, "builder")

    await page.get_by_role("button", name="Save report").click()
    await expect(page.get_by_text("Report saved.")).to_be_visible()
    await expect(page.get_by_role("heading", name="Города и категории")).to_be_visible()
    await expect(page.locator("#result tbody tr")).to_have_count(3)
    await expect(page.locator('[data-chart][data-drawn="1"] svg')).to_be_visible()
    await shot(page, "builder-report")
    await page.goto("/admin/reports/custom")
    await expect(page.get_by_role("link", name="Города и категории")).to_be_visible()
