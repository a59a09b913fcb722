"""Admin API for fraud alerts: the queue, one alert with its evidence, the officer's
actions, thresholds, the export — with problem+json naming the field on bad input."""

from __future__ import annotations

import csv
import io
import secrets
from typing import Any

import httpx

from kopilka.services import admin, fraud
from kopilka.services.runtime import Runtime
from tests.conftest import Shop, receipt


async def _token(rt: Runtime, shop: Shop, role: str) -> dict[str, str]:
    key = await admin.do_add_token(
        rt, name=f"{role}-{secrets.token_hex(2)}", program_code=shop.code, role=role
    )
    return {"Authorization": f"Bearer {key}"}


async def _alert(shop: Shop) -> str:
    card = await shop.customer()
    for i in range(5):
        r = await shop.post(
            "/purchases", receipt(f"c{i}", card.card, ("a", 1, "100.00"), cashier_id="k-1")
        )
        assert r.status_code == 200, r.text
    await fraud.scan(shop.rt, program_id=shop.program_id)
    return card.card


async def test_the_officer_works_an_alert_over_the_api(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    card = await _alert(shop)
    auth = await _token(rt, shop, "security")
    base = f"/api/admin/v1/programs/{shop.code}/fraud"

    listed = (await client.get(f"{base}/alerts?state=active", headers=auth)).json()
    [item] = listed["items"]
    one = (await client.get(f"{base}/alerts/{item['id']}", headers=auth)).json()
    took = await client.post(f"{base}/alerts/{item['id']}/assign", headers=auth)
    blocked = await client.post(
        f"{base}/alerts/{item['id']}/block-card", json={"reason": "own card"}, headers=auth
    )
    no_note = await client.post(f"{base}/alerts/{item['id']}/resolve", json={}, headers=auth)
    done = await client.post(
        f"{base}/alerts/{item['id']}/resolve", json={"note": "cashier fired"}, headers=auth
    )
    twice = await client.post(
        f"{base}/alerts/{item['id']}/dismiss", json={"note": "oops"}, headers=auth
    )
    till = await shop.post("/purchases", receipt("late", card, ("a", 1, "1.00")))

    assert (listed["total"], item["rule"], item["card"]) == (1, "cashier_card", card)
    assert [x["receipt_id"] for x in one["evidence"]] == [f"c{i}" for i in range(5)]
    assert took.status_code == 200 and took.json()["state"] == "assigned"
    assert blocked.status_code == 200 and blocked.json()["card_status"] == "blocked"
    assert no_note.status_code == 422 and no_note.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert done.json()["state"] == "resolved" and done.json()["resolution"] == "cashier fired"
    assert twice.status_code == 409
    assert till.status_code == 422 and till.json()["code"] == "card_blocked"


async def test_a_marketer_cannot_see_alerts_and_support_cannot_act(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    await _alert(shop)
    base = f"/api/admin/v1/programs/{shop.code}/fraud"
    marketer = await _token(rt, shop, "marketer")
    owner = await _token(rt, shop, "owner")
    [item] = (await client.get(f"{base}/alerts", headers=owner)).json()["items"]

    seen = await client.get(f"{base}/alerts", headers=marketer)
    acted = await client.post(
        f"{base}/alerts/{item['id']}/assign", headers=await _token(rt, shop, "support")
    )

    assert seen.status_code == 403
    assert acted.status_code == 403


async def test_thresholds_over_the_api_and_bad_values_name_the_field(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    auth = await _token(rt, shop, "security")
    url = f"/api/admin/v1/programs/{shop.code}/fraud/settings"

    before = (await client.get(url, headers=auth)).json()
    put = await client.put(
        url, json={"refund_days": 5, "adjust_limit": "2500.50", "disabled": []}, headers=auth
    )
    bad = await client.put(url, json={"burst_minutes": 0}, headers=auth)
    typo = await client.put(url, json={"burst_minute": 3}, headers=auth)
    bad_filter = await client.get(
        f"/api/admin/v1/programs/{shop.code}/fraud/alerts?rule=nope", headers=auth
    )

    assert (before["refund_days"], before["adjust_limit"]) == (3, "1000")
    assert put.status_code == 200, put.text
    assert (put.json()["refund_days"], put.json()["adjust_limit"]) == (5, "2500.50")
    assert put.json()["cashier_card_receipts"] == before["cashier_card_receipts"]
    assert bad.status_code == 422 and "burst_minutes" in bad.text
    assert typo.status_code == 422 and "burst_minute" in typo.text
    assert bad_filter.status_code == 422 and "rule" in bad_filter.text


async def test_the_export_lists_the_alerts_as_csv(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    card = await _alert(shop)
    auth = await _token(rt, shop, "security")

    r = await client.get(
        f"/api/admin/v1/reports/fraud-alerts?program={shop.code}&format=csv", headers=auth
    )

    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][2] == "rule"
    assert [(x[2], x[8]) for x in rows[1:]] == [("cashier_card", card)]
