"""GET /api/admin/v1/reports/map on both databases: the figures of the hand-worked shop
as JSON (money as exact strings), token scope and problem+json for bad input."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from sqlalchemy import update

from kopilka.services import admin
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.analytics.map_data import make_map_shop
from tests.conftest import Shop

URL = "/api/admin/v1/reports/map"
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


async def token(rt: Runtime, shop: Shop, role: str = "analyst") -> dict[str, str]:
    name = f"{role}-{secrets.token_hex(3)}"
    key = await admin.do_add_token(rt, name=name, program_code=shop.code)
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.admin_tokens).where(t.admin_tokens.c.name == name).values(role=role)
        )
    return {"Authorization": f"Bearer {key}"}


async def test_the_map_figures_as_json(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any
) -> None:
    m = await make_map_shop(rt, await make_shop())

    r = await client.get(URL, params={**MARCH, "lang": "ru"}, headers=await token(rt, m.shop))

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == {"from": "2026-03-01", "to": "2026-03-31"}
    regions = {x["iso"]: x for x in body["regions"]}
    assert len(regions) == 83
    ta = regions["RU-TA"]
    assert (ta["name"], ta["stores"], ta["members"], ta["sales"]) == (
        "Республика Татарстан",
        1,
        1,
        "1030.00",
    )
    assert ta["colour"] == {
        "members": "#ffffb2",
        "sales": "#fd8d3c",
        "members_per_store": "#ffffb2",
    }
    assert regions["RU-MOW"]["members_per_store"] == "1.5"
    stores = {s["code"]: s for s in body["stores"]}
    assert (stores["C"]["lat"], stores["C"]["lon"], stores["C"]["members"]) == (55.79, 49.115, 1)
    assert stores["E"]["region"] is None
    assert body["unplaced_members"] == 1
    far = body["far"]
    assert (far["km"], far["members_with_city"], far["members_unknown_city"]) == (30.0, 5, 1)
    assert [(p["name"], p["members"], p["nearest_store"]) for p in far["places"]] == [
        ("Тверь", 2, "Тверская"),
        ("Выборг", 1, "Невский"),
    ]
    assert "tiles" not in body


async def test_bad_input_is_a_problem_naming_the_field(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()
    h = await token(rt, shop)

    bad_date = await client.get(URL, params={"from": "2026-02-30"}, headers=h)
    bad_km = await client.get(URL, params={"far_km": "far"}, headers=h)
    no_token = await client.get(URL)
    other = await client.get(URL, params={"program": "nope"}, headers=h)

    assert bad_date.status_code == 422
    assert bad_date.headers["content-type"].startswith("application/problem+json")
    assert bad_date.json()["field"] == "from"
    assert bad_km.status_code == 422 and bad_km.json()["field"] == "far_km"
    assert no_token.status_code == 401
    assert other.status_code == 403  # the token is limited to its own program


async def test_a_role_without_reports_is_refused(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()

    r = await client.get(URL, headers=await token(rt, shop, role="cashier"))

    assert r.status_code == 403


async def test_a_members_city_through_the_api(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()
    member = await shop.customer()
    h = await token(rt, shop, role="support")
    url = f"/api/admin/v1/programs/{shop.code}/customers/{member.customer_id}"

    ok = await client.post(url + "/city", json={"city": " Тверь ", "reason": "анкета"}, headers=h)
    bad = await client.post(url + "/city", json={"city": "Тверь-2", "reason": "анкета"}, headers=h)
    got = await client.get(url, headers=h)

    assert ok.status_code == 200 and ok.json() == {
        "customer_id": member.customer_id,
        "city": "Тверь",
    }
    assert bad.status_code == 422 and bad.json()["field"] == "city"
    assert got.json()["city"] == "Тверь"
