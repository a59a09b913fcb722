"""The RFM page in a real browser: the form, the grid and bars, the table, exports,
the migration matrix, "Save segments", and the Russian page (both databases)."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.analytics.test_rfm import dozen, segment_of
from tests.web.conftest import SHOTS, MakeUser, login, shot


async def test_marketer_reads_the_rfm_report_compares_dates_and_saves_segments(
    page: Page, make_user: MakeUser, make_shop: Any, clock: Any
) -> None:
    shop = await make_shop()
    m = await dozen(shop, clock)
    who = await make_user("marketer", shop)
    await login(page, who, next_url="/admin/reports")
    await page.get_by_role("link", name="RFM segments").click()

    await page.get_by_label("As of").fill("2026-06-30")
    await page.get_by_role("button", name="Show").click()

    count = page.get_by_test_id("rfm-summary").locator("strong").first
    await expect(count).to_have_text("12")
    champions = page.locator("[data-testid=rfm-segments] tr[data-segment=champions]")
    await expect(champions).to_contain_text("Champions")
    await expect(champions.locator("td").nth(5)).to_have_text("1")
    rows = page.get_by_test_id("rfm-rows").locator("tbody tr")
    await expect(rows).to_have_count(12)
    await expect(page.get_by_test_id("rfm-rows")).to_contain_text("EXT-A")
    await expect(page.locator("#chart-rfm-grid[data-drawn]")).to_be_visible()
    await expect(page.locator("#chart-rfm-bars svg")).to_be_visible()
    csv = page.get_by_role("button", name="Export CSV")
    assert await csv.get_attribute("href") == (
        "/admin/reports/rfm/export?as_of=2026-06-30&window_days=365&format=csv"
    )

    await shot(page, "rfm")

    await page.get_by_role("button", name="Save segments").click()
    await expect(page.locator(".flash")).to_have_text(
        "Segments saved as of 2026-06-30: 12 customers in segments, 12 changed."
    )
    assert await segment_of(shop, m["A"]) == "champions"

    # The matrix of tests/analytics/test_rfm.py, computed by hand there: 30-day windows.
    await page.get_by_label("Window, days").fill("30")
    await page.get_by_role("button", name="Show").click()
    await expect(count).to_have_text("5")
    await page.get_by_label("First date").fill("2026-06-15")
    await page.get_by_label("Second date").fill("2026-06-30")
    await page.get_by_role("button", name="Compare").click()
    matrix = page.get_by_test_id("rfm-migration")
    await expect(matrix.locator("td[data-from=hibernating][data-to=champions]")).to_have_text("1")
    await expect(matrix.locator("td[data-from=promising][data-to=cant_lose]")).to_have_text("1")
    await expect(matrix.locator("td[data-from=loyal][data-to=loyal]")).to_have_text("·")
    if SHOTS is not None:
        await page.locator("#migration").screenshot(path=str(SHOTS / "rfm-migration.png"))


async def test_the_russian_page_and_a_bad_date(
    page: Page, make_user: MakeUser, make_shop: Any, clock: Any
) -> None:
    shop = await make_shop()
    await dozen(shop, clock)
    who = await make_user("analyst", shop, locale="ru")
    await login(page, who, next_url="/admin/reports/rfm?as_of=2026-06-30")

    await expect(page.get_by_role("heading", name="RFM-сегменты")).to_be_visible()
    await expect(page.get_by_test_id("rfm-segments")).to_contain_text("Чемпионы")
    await expect(page.get_by_role("button", name="Сохранить сегменты")).to_have_count(0)
    await shot(page, "rfm-ru")

    await page.goto("/admin/reports/rfm?as_of=2026-02-30")
    await expect(page.locator("#as_of-error")).to_have_text("укажите дату в виде ГГГГ-ММ-ДД")
