"""Admin API of the report builder: ad-hoc runs, saved reports shared with roles, files."""

from __future__ import annotations

import io
import secrets
from typing import Any

import httpx
import openpyxl
import pypdf
import pytest

from kopilka.services import admin
from kopilka.services.runtime import Runtime
from tests.analytics.conftest import NOV, Till, make_november

BASE = "/api/admin/v1/reports/custom"


@pytest.fixture
async def november(make_shop: Any) -> Till:
    return await make_november(make_shop)


BY_CITY = {"dimensions": ["city"], "measures": ["sales", "receipts"], "period": NOV}


async def token(rt: Runtime, till: Till, role: str) -> dict[str, str]:
    key = await admin.do_add_token(
        rt, name=f"{role}-{secrets.token_hex(3)}", program_code=till.shop.code, role=role
    )
    return {"Authorization": f"Bearer {key}"}


async def test_run_a_definition_as_json_csv_xlsx_and_pdf(
    november: Till, rt: Runtime, client: httpx.AsyncClient
) -> None:
    auth = await token(rt, november, "analyst")

    r = await client.post(f"{BASE}/run", json=BY_CITY, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == {"from": "2026-11-01", "to": "2026-11-30"}
    assert body["header"] == ["City", "Sales", "Receipts"]
    assert body["rows"] == [["Казань", "591.00", 2], ["Москва", "200.49", 2]]

    csv = await client.post(f"{BASE}/run?format=csv", json=BY_CITY, headers=auth)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.content.decode("utf-8-sig").splitlines() == [
        "City,Sales,Receipts",
        "Казань,591.00,2",
        "Москва,200.49,2",
    ]

    xlsx = await client.post(f"{BASE}/run?format=xlsx", json=BY_CITY, headers=auth)
    ws = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert ws is not None
    assert [[c.value for c in row] for row in ws.iter_rows()] == [
        ["City", "Sales", "Receipts"],
        ["Казань", 591, 2],
        ["Москва", 200.49, 2],
    ]

    pdf = await client.post(f"{BASE}/run?format=pdf", json=BY_CITY, headers=auth)
    assert pdf.headers["content-type"] == "application/pdf"
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Казань" in text and "591.00" in text and "01.11.2026 – 30.11.2026" in text


async def test_a_bad_definition_is_a_problem_naming_the_field(
    november: Till, rt: Runtime, client: httpx.AsyncClient
) -> None:
    auth = await token(rt, november, "analyst")

    r = await client.post(f"{BASE}/run", json={"measures": ["profit"]}, headers=auth)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == "measures[0]"

    saved = await client.post(
        BASE, json={"name": "x", "definition": {"measures": []}}, headers=auth
    )
    assert saved.status_code == 422 and saved.json()["field"] == "definition.measures"

    broken = await client.post(f"{BASE}/run", content=b"{not json", headers=auth)
    assert broken.status_code == 400 and broken.json()["code"] == "malformed_json"


async def test_a_report_shared_with_analysts(
    november: Till, rt: Runtime, client: httpx.AsyncClient
) -> None:
    author = await token(rt, november, "analyst")
    colleague = await token(rt, november, "analyst")
    marketer = await token(rt, november, "marketer")
    support = await token(rt, november, "support")

    r = await client.post(
        BASE,
        json={"name": "Города", "definition": BY_CITY, "shared_roles": ["analyst"]},
        headers=author,
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    private = await client.post(BASE, json={"name": "Мой", "definition": BY_CITY}, headers=author)
    private_id = private.json()["id"]

    async def names(auth: dict[str, str]) -> list[str]:
        got = await client.get(BASE, headers=auth)
        assert got.status_code == 200, got.text
        return [x["name"] for x in got.json()["reports"]]

    assert await names(author) == ["Города", "Мой"]
    assert await names(colleague) == ["Города"]
    assert await names(marketer) == []
    assert (await client.get(BASE, headers=support)).status_code == 403

    seen = await client.get(f"{BASE}/{rid}", headers=colleague)
    assert seen.status_code == 200 and seen.json()["rows"][0] == ["Казань", "591.00", 2]
    assert (await client.get(f"{BASE}/{rid}", headers=marketer)).status_code == 404
    assert (await client.get(f"{BASE}/{private_id}", headers=colleague)).status_code == 404
    # a colleague may open it, not change it
    put = await client.put(
        f"{BASE}/{rid}", json={"name": "Чужой", "definition": BY_CITY}, headers=colleague
    )
    assert put.status_code == 403

    xlsx = await client.get(f"{BASE}/{rid}?format=xlsx", headers=colleague)
    cyrillic = "%D0%93%D0%BE%D1%80%D0%BE%D0%B4%D0%B0"  # Города
    assert xlsx.headers["content-disposition"] == (
        f"attachment; filename=\"report.xlsx\"; filename*=UTF-8''{cyrillic}.xlsx"
    )

    wrong = await client.delete(f"{BASE}/{rid}?confirm=Город", headers=author)
    assert wrong.status_code == 422 and wrong.json()["field"] == "confirm"
    gone = await client.delete(f"{BASE}/{rid}?confirm=Города", headers=author)
    assert gone.status_code == 204
    assert await names(author) == ["Мой"]


async def test_schedules_over_the_api(
    november: Till, rt: Runtime, client: httpx.AsyncClient
) -> None:
    auth = await token(rt, november, "analyst")
    rid = (await client.post(BASE, json={"name": "R", "definition": BY_CITY}, headers=auth)).json()[
        "id"
    ]

    bad = await client.post(
        f"{BASE}/{rid}/schedules",
        json={"frequency": "weekly", "at": "08:00", "recipients": ["boss@example.com"]},
        headers=auth,
    )
    assert bad.status_code == 422 and bad.json()["field"] == "weekday"
    r = await client.post(
        f"{BASE}/{rid}/schedules",
        json={
            "frequency": "weekly",
            "weekday": 1,
            "at": "08:00",
            "timezone": "Europe/Moscow",
            "recipients": ["boss@example.com"],
            "format": "pdf",
        },
        headers=auth,
    )
    assert r.status_code == 201, r.text
    got: dict[str, Any] = r.json()
    assert (got["frequency"], got["weekday"], got["at"], got["format"]) == (
        "weekly",
        1,
        "08:00",
        "pdf",
    )
    listed = (await client.get(f"{BASE}/{rid}/schedules", headers=auth)).json()["schedules"]
    assert [s["id"] for s in listed] == [got["id"]]
    assert (
        await client.delete(f"{BASE}/{rid}/schedules/{got['id']}", headers=auth)
    ).status_code == 204
