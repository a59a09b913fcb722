"""The territorial map page /admin/reports/map: through the app in-process (both databases)
its tables, downloads, errors and partner scope; in Chromium the map itself (regions as
SVG paths, store markers, the legend), with a screenshot for the docs."""

from __future__ import annotations

import csv
import io
import os
import re
from typing import Any

import httpx
import openpyxl
from playwright.async_api import Page

from kopilka.services import users
from kopilka.services.runtime import Runtime
from tests.analytics.map_data import make_map_shop
from tests.web.conftest import MakeUser, login, shot

MARCH = "from=2026-03-01&to=2026-03-31"


async def cookie(rt: Runtime, who: Any) -> dict[str, str]:
    token, _ = await users.login(rt, who.login, who.password, ip=None, user_agent=None)
    return {"Cookie": f"kopilka_session={token}"}


async def test_the_page_shows_regions_far_towns_and_downloads(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any, make_user: MakeUser
) -> None:
    m = await make_map_shop(rt, await make_shop())
    h = await cookie(rt, await make_user("analyst", m.shop))
    client.cookies.clear()

    page = await client.get(f"/admin/reports/map?{MARCH}", headers=h)
    index = await client.get("/admin/reports", headers=h)
    data = await client.get(f"/admin/reports/map.json?{MARCH}", headers=h)
    got_csv = await client.get(f"/admin/reports/map.csv?{MARCH}", headers=h)
    xlsx = await client.get(f"/admin/reports/map.xlsx?{MARCH}&measure=sales", headers=h)
    pdf = await client.get(f"/admin/reports/map.pdf?{MARCH}", headers=h)
    png = await client.get(f"/admin/reports/map.png?{MARCH}", headers=h)
    nothing = await client.get(f"/admin/reports/map.gif?{MARCH}", headers=h)

    assert page.status_code == 200
    rows = re.findall(
        r'<tr data-iso="(RU-[A-Z]+)"><td>([^<]+)</td><td class="num">(\d+)', page.text
    )
    assert rows == [
        ("RU-MOW", "Moscow", "2"),
        ("RU-SPE", "Saint Petersburg", "1"),
        ("RU-TA", "Republic of Tatarstan", "1"),
        ("RU-SVE", "Sverdlovsk Oblast", "1"),
    ]
    assert "1,030.00 ₽" in page.text
    assert "Stores whose region is not recognised: Марс-1 (E)" in page.text
    assert '<td>Тверь</td><td class="num">2</td>' in page.text
    assert 'href="/admin/reports/map.xlsx?from=2026-03-01&amp;to=2026-03-31' in page.text
    assert "Territorial map" in index.text
    assert data.json()["far"]["far_members"] == 3
    lines = list(csv.reader(io.StringIO(got_csv.content.decode("utf-8-sig"))))
    assert lines[1] == ["Moscow", "RU-MOW", "2", "3", "100.10", "1", "1.5"]
    assert got_csv.headers["content-disposition"] == (
        'attachment; filename="map-2026-03-01-2026-03-31.csv"; '
        "filename*=UTF-8''map-2026-03-01-2026-03-31.csv"
    )
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert wb.sheetnames == ["Map", "Regions", "Stores", "Far members"]
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content[:5] == b"%PDF-"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert nothing.status_code == 404


async def test_a_bad_date_is_shown_at_its_field(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any, make_user: MakeUser
) -> None:
    shop = await make_shop()
    h = await cookie(rt, await make_user("analyst", shop, locale="ru"))
    client.cookies.clear()

    r = await client.get("/admin/reports/map?from=2026-04-01&to=2026-03-01&far_km=0", headers=h)

    assert r.status_code == 422
    assert 'id="from-error"' in r.text and "after the end of the period" in r.text
    assert 'value="2026-04-01"' in r.text  # what was typed stays
    assert "territory-map" not in r.text
    assert "Территориальная карта" in r.text


async def test_a_partner_sees_only_its_stores(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any, make_user: MakeUser
) -> None:
    m = await make_map_shop(rt, await make_shop())
    h = await cookie(rt, await make_user("partner", m.shop, partner_id=m.east_partner))
    client.cookies.clear()

    r = await client.get(f"/admin/reports/map.json?{MARCH}", headers=h)

    assert r.status_code == 200
    assert [s["code"] for s in r.json()["stores"]] == ["C"]
    assert [x["iso"] for x in r.json()["regions"] if x["stores"]] == ["RU-TA"]


async def test_the_tile_layer_is_allowed_by_the_page_only_when_set(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any, make_user: MakeUser
) -> None:
    shop = await make_shop()
    h = await cookie(rt, await make_user("analyst", shop))
    client.cookies.clear()
    plain = await client.get("/admin/reports/map", headers=h)
    os.environ["KOPILKA_MAP_TILES"] = "https://{s}.tiles.example.org/{z}/{x}/{y}.png|© Example"
    try:
        tiled = await client.get("/admin/reports/map", headers=h)
        data = await client.get("/admin/reports/map.json", headers=h)
    finally:
        del os.environ["KOPILKA_MAP_TILES"]

    assert "img-src 'self' data:;" in plain.headers["content-security-policy"]
    csp = tiled.headers["content-security-policy"]
    assert "img-src 'self' data: https://*.tiles.example.org;" in csp
    assert data.json()["tiles"] == {
        "url": "https://{s}.tiles.example.org/{z}/{x}/{y}.png",
        "attribution": "© Example",
    }


async def test_the_map_draws_regions_and_stores_in_the_browser(
    rt: Runtime, page: Page, make_shop: Any, make_user: MakeUser
) -> None:
    m = await make_map_shop(rt, await make_shop())
    who = await make_user("analyst", m.shop, locale="ru")
    await login(page, who, next_url="/admin/reports")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"/admin/reports/map?{MARCH}")

    await page.wait_for_selector("#territory-map[data-drawn='1']")

    regions = await page.locator("#territory-map svg path.map-region").count()
    stores = await page.locator("#territory-map svg path.map-store").count()
    far = await page.locator("#territory-map svg path.map-far").count()
    assert regions >= 83  # a path per polygon: every subject, islands too
    assert stores == 4  # A, B, C, D have coordinates; the shop's own store and E do not
    assert far == 2  # Тверь, Выборг
    legend = await page.locator(".map-legend").inner_text()
    assert legend.splitlines()[0] == "участники"
    # the colour of Tatarstan as the server computed it, on its SVG path
    fills = await page.locator("#territory-map svg path.map-region").evaluate_all(
        "ps => ps.map(p => p.getAttribute('fill'))"
    )
    assert fills.count("#ffffb2") >= 1 and fills.count("#eeeeee") >= 79
    await page.locator("#map-measure").select_option("sales")
    legend = await page.locator(".map-legend").inner_text()
    assert legend.splitlines()[0] == "продажи"
    xlsx = await page.locator("a[href^='/admin/reports/map.xlsx']").get_attribute("href")
    assert xlsx is not None and "measure=sales" in xlsx
    await page.locator("#territory-map svg path.map-store").first.click(force=True)
    assert "Тверская" in await page.locator(".leaflet-popup-content").inner_text()
    assert errors == []
    await page.locator("#map-measure").select_option("members")
    await page.locator(".leaflet-popup-close-button").click()
    await page.mouse.move(1, 1)
    await shot(page, "map-test")


async def test_the_members_city_is_edited_in_the_console_and_counts_on_the_map(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any, make_user: MakeUser
) -> None:
    shop = await make_shop()
    member = await shop.customer()
    who = await make_user("support", shop, locale="ru")
    token, s = await users.login(rt, who.login, who.password, ip=None, user_agent=None)
    h = {"Cookie": f"kopilka_session={token}"}
    client.cookies.clear()
    url = f"/admin/customers/{member.customer_id}/city"

    form = await client.get(url, headers=h)
    bad = await client.post(
        url, data={"csrf": s.csrf_token, "city": "Тверь 2", "reason": "звонок"}, headers=h
    )
    ok = await client.post(
        url, data={"csrf": s.csrf_token, "city": "  г.  Тверь ", "reason": "звонок"}, headers=h
    )
    page = await client.get(f"/admin/customers/{member.customer_id}", headers=h)
    analyst = await cookie(rt, await make_user("analyst", shop))
    data = await client.get("/admin/reports/map.json", headers=analyst)

    assert form.status_code == 200 and "Город, где живёт клиент" in form.text
    assert bad.status_code == 422
    assert "Название населённого пункта: до 100 символов, без цифр." in bad.text
    assert ok.status_code == 303
    assert '<td data-testid="city">г. Тверь' in page.text
    far = data.json()["far"]
    # the shop's only store has no coordinates: nobody can be "far" from it
    assert (far["members_with_city"], far["members_unknown_city"], far["places"]) == (1, 0, [])
