"""The summary, stores and cohorts pages in a real browser: the KPI cards show the
period's figures and the change against the previous period, the charts are drawn, the
export buttons give the files, a bad date is refused at its field."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from playwright.async_api import Page, expect

from kopilka.analytics import facts
from kopilka.services.runtime import Runtime
from tests.conftest import Clock, Shop, receipt
from tests.web.conftest import MakeUser, login, shot

START = date(2026, 1, 1)
DAYS = 90  # January to March 2026


def plan() -> list[tuple[date, int | None, Decimal, int]]:
    """(day, member index or None, price, quantity) of every purchase: a steady shop
    whose members come back less often as the months go by, guests every day."""
    out = []
    for i in range(DAYS):
        day = START + timedelta(days=i)
        out.append((day, None, Decimal(150 + 10 * (i % 7)), 1 + i % 3))
        for m in range(6):
            if (i + m) % (3 + m + i // 30) == 0:
                out.append((day, m, Decimal(200 + 25 * m), 1 + (i + m) % 2))
    return out


async def fill(shop: Shop, clock: Clock) -> list[tuple[date, int | None, Decimal, int]]:
    clock.set(datetime(2025, 12, 31, 9, tzinfo=UTC))
    members = [(await shop.customer()).card for _ in range(6)]
    purchases = plan()
    for n, (day, who, price, qty) in enumerate(purchases):
        clock.set(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=8, minutes=n))
        card = None if who is None else members[who]
        r = await shop.post(
            "/purchases", receipt(f"w{n}", card, ("sku", qty, str(price)), cashier_id=f"c{n % 2}")
        )
        assert r.status_code == 200, r.text
    await facts.rebuild(shop.rt, program_ids=[shop.program_id])
    await facts.set_watermark(shop.rt, datetime(2026, 4, 1, 6, 30, tzinfo=UTC))
    return purchases


def money_en(x: Decimal) -> str:
    return f"{x:,.2f} ₽"


async def test_summary_page_shows_kpis_charts_and_exports(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime, clock: Clock, web_base: str
) -> None:
    shop = await make_shop(earn_percent="5")
    purchases = await fill(shop, clock)
    march = [p for p in purchases if p[0].month == 3]
    feb = [p for p in purchases if p[0].month == 2 and p[0].day <= 31]
    sales = sum((p[2] * p[3] for p in march), Decimal(0))
    user = await make_user("analyst", shop)
    url = "/admin/reports/summary?from=2026-03-01&to=2026-03-31&by=day"
    await login(page, user)
    await page.goto(url)

    await expect(page.get_by_test_id("kpi-sales")).to_have_text(money_en(sales))
    await expect(page.get_by_test_id("kpi-receipts")).to_have_text(str(len(march)))
    # the previous 31 days: 29 of February and the 30th and 31st of January
    prev = [p for p in purchases if date(2026, 1, 29) <= p[0] <= date(2026, 2, 28)]
    prev_sales = sum((p[2] * p[3] for p in prev), Decimal(0))
    change = ((sales - prev_sales) * 100 / prev_sales).quantize(Decimal("0.1"))
    sign = "+" if change > 0 else ""
    await expect(page.get_by_test_id("change-sales")).to_have_text(f"{sign}{change} %")
    for chart in ("sales", "receipts", "points"):
        await expect(page.locator(f"#chart-{chart}[data-drawn='1'] svg")).to_have_count(1)
    assert feb  # the plan covers February
    await shot(page, "reports-summary")

    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=web_base, cookies=cookies) as http:
        got = await http.get(url + "&format=csv")
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert rows[0] == ["metric", "value", "previous", "change", "change_pct"]
    assert rows[1][:2] == ["sales", f"{sales:.2f}"]
    assert '.csv"; filename*=' in got.headers["content-disposition"]


async def test_summary_page_in_russian_and_a_bad_date(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    shop = await make_shop(earn_percent="5")
    await fill(shop, clock)
    user = await make_user("analyst", shop, locale="ru")
    await login(page, user)
    await page.goto("/admin/reports/summary?from=2026-03-01&to=2026-03-31")

    await expect(page.locator("h2")).to_have_text("Сводка")
    await expect(page.locator("[data-kpi=liability] header")).to_have_text(
        "Обязательства по баллам"
    )
    await shot(page, "reports-summary.ru")
    await page.goto("/admin/reports/summary?from=2026-03-31&to=2026-03-01")
    await expect(page.get_by_test_id("error-to")).to_have_text(
        "Период заканчивается раньше, чем начинается."
    )


async def test_stores_and_cohorts_pages(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    shop = await make_shop(earn_percent="5")
    purchases = await fill(shop, clock)
    user = await make_user("analyst", shop)
    await login(page, user)
    await page.goto("/admin/reports/stores?from=2026-03-01&to=2026-03-31")

    rows = page.get_by_test_id("stores").locator("tbody tr")
    await expect(rows).to_have_count(3)  # the store, cashiers c0 and c1
    march = [p for p in purchases if p[0].month == 3]
    await expect(rows.nth(0).locator("td").nth(2)).to_have_text(str(len(march)))
    await shot(page, "reports-stores")

    await page.goto("/admin/reports/cohorts?from=2026-01-01&to=2026-03-31")
    table = page.get_by_test_id("cohorts").locator("tbody tr")
    await expect(table).to_have_count(3)
    # every member bought in January: one cohort of six, the later months empty
    await expect(table.nth(0).locator("td").nth(0)).to_have_text("6")
    await expect(table.nth(1).locator("td").nth(0)).to_have_text("0")
    await expect(page.locator("#chart-cohorts[data-drawn='1'] svg")).to_have_count(1)
    await shot(page, "reports-cohorts")
