"""The promotion-effect page in a browser: the table, the error-bar chart, a promotion's
daily chart, the downloads, a bad field, Russian; screenshots for the docs."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, expect

from kopilka.domain.holdout import holdout_cut, is_held_out
from kopilka.services.runtime import Runtime
from tests.analytics.test_promotion_effect import D, apply, buy, members, promotion
from tests.conftest import Clock, Shop
from tests.web.conftest import MakeUser, login, shot

OCTOBER = "from=2026-10-01&to=2026-10-31&margin=25"


async def two_promotions(rt: Runtime, shop: Shop, clock: Clock) -> None:
    """'Autumn points' holds out half the members, whose others spend 40 more;
    'Coffee' (no holdout) is bought by 30 members who spend 60 more than in September."""
    autumn = promotion("autumn", holdout="50") | {"name": "Autumn points"}
    coffee = promotion("coffee", sku="P") | {
        "name": "Coffee −10%",
        "effects": [{"kind": "line_discount", "percent": "10"}],
    }
    await apply(rt, shop, autumn, coffee)
    people = await members(shop, clock, 120)
    cut = holdout_cut(D(50))
    for i, m in enumerate(people):
        base = D(150 + 7 * (i % 13))
        day = 1 + i % 30  # spread over the month, so the daily chart has a shape
        await buy(shop, m, "A", base, f"2026-09-{day:02d}T12:00:00+03:00", "sep")
        lift = D(0) if is_held_out(shop.code, "autumn", m.customer_id, cut) else D(40)
        october = f"2026-10-{day:02d}T12:00:00+03:00"
        if i < 30:
            await buy(shop, m, "P", base + 60 + lift, october, "oct")
        else:
            await buy(shop, m, "A", base + lift, october, "oct")


async def test_the_analyst_reads_the_effects_and_opens_a_promotion(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    shop = await make_shop()
    await two_promotions(rt, shop, clock)
    who = await make_user("analyst", shop)
    await login(page, who, next_url="/admin/reports")

    await page.get_by_role("link", name="Promotion effect").click()
    await page.get_by_label("From").fill("2026-10-01")
    await page.get_by_label("To").fill("2026-10-31")
    await page.get_by_role("button", name="Show").click()

    rows = page.locator("table.effect tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("Autumn points")
    await expect(rows.nth(0)).to_contain_text("held-out control group")
    await expect(rows.nth(1)).to_contain_text("Coffee −10%")
    await expect(rows.nth(1)).to_contain_text("matched pre-period")
    await expect(rows.nth(1)).to_contain_text("30")  # participants
    await expect(page.locator("#chart-effect[data-drawn='1']")).to_be_visible()
    await expect(page.locator("#chart-effect svg")).to_have_count(1)
    await shot(page, "promotion-effect")

    async with page.expect_download() as dl:
        await page.get_by_role("button", name="Export CSV").click()
    path = await (await dl.value).path()
    text = path.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("promotion_id,name,method,")
    assert re.search(r"^coffee,Coffee −10%,pre_period,", text, re.M)

    await rows.nth(1).get_by_role("link", name="Coffee −10%").click()
    await expect(page.get_by_role("heading", name=re.compile("Coffee"))).to_be_visible()
    await expect(page.locator("#chart-daily[data-drawn='1']")).to_be_visible()
    await expect(page.get_by_text("Method: matched pre-period.")).to_be_visible()
    await shot(page, "promotion-effect-detail")


async def test_a_bad_date_is_shown_at_its_field_in_russian(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    who = await make_user("analyst", shop, locale="ru")
    await login(page, who, next_url="/admin/reports")

    await page.goto("/admin/reports/promotions?from=2026-10-31&to=2026-10-01")

    await expect(page.get_by_role("heading", name="Эффект акций")).to_be_visible()
    await expect(page.locator("#to-error")).to_have_text(
        "дата, например 2026-11-30, не раньше первого дня"
    )
    await expect(page.get_by_label("С", exact=True)).to_have_value("2026-10-31")
