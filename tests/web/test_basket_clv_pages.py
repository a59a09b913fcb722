"""The basket and CLV console pages (in-process): both languages, the numbers a user
reads, the field named on bad input, the downloads, saving rules, and who may open them."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from kopilka.services import basket, users
from tests.services.test_basket_report import _textbook_shop
from tests.services.test_clv_report import _weekly_shop
from tests.web.conftest import MakeUser

Q = "min_support=0.4&min_confidence=0.6&max_len=2&from=2026-03-02&to=2026-03-02"


async def session(
    rt: Any, make_user: MakeUser, shop: Any, role: str, locale: str = "en"
) -> tuple[dict[str, str], str]:
    who = await make_user(role, shop, locale=locale)
    token, s = await users.login(rt, who.login, who.password, ip="127.0.0.1", user_agent="test")
    return {"Cookie": f"kopilka_session={token}"}, s.csrf_token


@pytest.mark.parametrize("locale", ["en", "ru"])
async def test_basket_page_shows_the_rules_in_both_languages(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any, locale: str
) -> None:
    shop = await _textbook_shop(make_shop)
    h, _ = await session(shop.rt, make_user, shop, "analyst", locale)

    empty = await client.get("/admin/reports/basket", headers=h)
    r = await client.get(f"/admin/reports/basket?{Q}", headers=h)
    sets = await client.get(f"/admin/reports/basket?{Q}&what=itemsets", headers=h)
    index = await client.get("/admin/reports", headers=h)

    assert empty.status_code == 200 and 'value="0.01"' in empty.text
    assert r.status_code == 200, r.text[-500:]
    assert 'data-testid="rules">12<' in r.text
    assert 'data-testid="receipts">5<' in r.text
    assert "chart-data-basket-rules" in r.text
    assert "<code>beer</code> item beer</td><td><code>diapers</code> item diapers" in r.text
    assert 'data-testid="itemsets-table"' in sets.text
    words = ("Корзины", "Поддержка", "Лифт") if locale == "ru" else ("Baskets", "Support", "Lift")
    assert all(w in r.text for w in words)
    assert "/admin/reports/basket" in index.text and "/admin/reports/clv" in index.text


async def test_basket_page_names_the_bad_field_and_exports(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await _textbook_shop(make_shop)
    h, _ = await session(shop.rt, make_user, shop, "analyst")

    bad = await client.get("/admin/reports/basket?min_support=5&min_confidence=0.6", headers=h)
    csv = await client.get(f"/admin/reports/basket/export?format=csv&{Q}", headers=h)
    xlsx = await client.get(f"/admin/reports/basket/export?format=xlsx&{Q}", headers=h)

    assert bad.status_code == 422
    assert 'id="min_support-error"' in bad.text and 'value="5"' in bad.text
    assert csv.content.startswith(b"\xef\xbb\xbfantecedents,consequents,support,confidence,lift")
    assert csv.text.count("\r\n") == 13
    wb = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert wb.sheetnames == ["Rules", "Itemsets"]


async def test_saving_rules_needs_write_permission(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await _textbook_shop(make_shop)
    ha, csrf_a = await session(shop.rt, make_user, shop, "analyst")
    hm, csrf_m = await session(shop.rt, make_user, shop, "marketer")
    form = dict(x.split("=") for x in Q.split("&"))

    denied = await client.post(
        "/admin/reports/basket/save", data={**form, "csrf": csrf_a}, headers=ha
    )
    saved = await client.post(
        "/admin/reports/basket/save", data={**form, "csrf": csrf_m}, headers=hm
    )
    tips = await basket.suggestions(shop.rt, shop.program_id, ["cola"])

    assert denied.status_code == 403
    assert saved.status_code == 303
    assert [t.skus for t in tips] == [("diapers",), ("milk",)]


async def test_clv_page_shows_parameters_charts_and_exports(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await _weekly_shop(make_shop)
    h, _ = await session(shop.rt, make_user, shop, "analyst", "ru")
    q = "as_of=2026-03-01&time_unit=week&penalizer=0.001"

    form = await client.get("/admin/reports/clv", headers=h)
    r = await client.get(f"/admin/reports/clv?{q}", headers=h)
    bad = await client.get("/admin/reports/clv?as_of=2026-02-30", headers=h)
    too_little = await client.get("/admin/reports/clv?as_of=2026-01-02", headers=h)
    csv = await client.get(f"/admin/reports/clv/export?format=csv&{q}", headers=h)
    support, _ = await session(shop.rt, make_user, shop, "support")
    denied = await client.get(f"/admin/reports/clv?{q}", headers=support)

    assert form.status_code == 200 and 'name="as_of"' in form.text
    assert r.status_code == 200, r.text[-500:]
    assert "Параметры моделей" in r.text
    for name in (
        "alpha",
        "chart-data-clv-alive",
        "chart-data-clv-value",
        'data-testid="clv-table"',
    ):
        assert name in r.text
    assert bad.status_code == 422 and 'id="as_of-error"' in bad.text
    assert too_little.status_code == 422 and "need at least 3" in too_little.text
    assert csv.text.splitlines()[0].lstrip("\ufeff") == (
        "customer,frequency,recency,T,monetary_value,p_alive,expected_purchases,expected_value,clv"
    )
    assert denied.status_code == 403
