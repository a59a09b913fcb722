"""Admin API: the RFM report and its migration matrix, JSON and files, bad input as
problem+json naming the parameter (both databases)."""

from __future__ import annotations

import io
import secrets
from decimal import Decimal as D
from typing import Any

import httpx
from openpyxl import load_workbook

from kopilka.services import admin
from kopilka.services.runtime import Runtime
from tests.analytics.test_rfm import dozen, expected_rows


async def test_the_report_as_json_csv_and_xlsx(
    make_shop: Any, clock: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    m = await dozen(shop, clock)
    key = await admin.do_add_token(
        rt, name=f"an-{secrets.token_hex(2)}", program_code=shop.code, role="analyst"
    )
    auth = {"Authorization": f"Bearer {key}"}
    url = "/api/admin/v1/reports/rfm"

    r = await client.get(url, params={"as_of": "2026-06-30"}, headers=auth)

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["customers"], body["window_days"], body["timezone"]) == (
        12,
        365,
        "Europe/Moscow",
    )
    a = next(x for x in body["rows"] if x["customer"] == "EXT-A")
    assert a == {
        "customer": "EXT-A",
        "customer_id": m["A"].customer_id,
        "last_purchase": "2026-06-30",
        "recency_days": 0,
        "frequency": 3,
        "monetary": "2000.00",
        "r": 5,
        "f": 4,
        "m": 4,
        "segment": "champions",
    }
    loyal = next(s for s in body["segments"] if s["code"] == "loyal")
    assert (loyal["customers"], loyal["revenue"], loyal["r"], loyal["f"]) == (
        2,
        "16500.00",
        "3-4",
        "4-5",
    )

    csv = await client.get(url, params={"as_of": "2026-06-30", "format": "csv"}, headers=auth)
    assert csv.status_code == 200
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 13 and lines[0].startswith("customer,last_purchase")
    xlsx = await client.get(url, params={"as_of": "2026-06-30", "format": "xlsx"}, headers=auth)
    book = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert book.sheetnames == ["RFM", "Segments"]
    sheet_rows = list(book["RFM"].iter_rows(values_only=True))
    first = expected_rows(m)[0]
    got = sheet_rows[1]
    assert [str(v) for i, v in enumerate(got) if i != 4] == [
        str(v) for i, v in enumerate(first) if i != 4
    ]
    assert D(str(got[4])) == first[4]  # a numeric cell


async def test_the_migration_matrix_over_the_api(
    make_shop: Any, clock: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    await dozen(shop, clock)
    key = await admin.do_add_token(rt, name=f"o-{secrets.token_hex(2)}", program_code=shop.code)

    r = await client.get(
        "/api/admin/v1/reports/rfm/migration",
        params={"from": "2026-06-15", "to": "2026-06-30", "window_days": "30"},
        headers={"Authorization": f"Bearer {key}"},
    )

    assert r.status_code == 200, r.text
    cells = {(c["from"], c["to"]): c["customers"] for c in r.json()["cells"]}
    # the same hand computation as tests/analytics/test_rfm.py
    assert cells == {
        ("hibernating", "champions"): 1,
        ("lost", None): 1,
        ("promising", "cant_lose"): 1,
        ("about_to_sleep", "lost"): 1,
        (None, "promising"): 1,
        (None, "about_to_sleep"): 1,
    }


async def test_bad_parameters_are_problems_naming_them(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    key = await admin.do_add_token(rt, name=f"o-{secrets.token_hex(2)}", program_code=shop.code)
    auth = {"Authorization": f"Bearer {key}"}
    url = "/api/admin/v1/reports/rfm"

    cases = [
        ({"as_of": "30.06.2026"}, "as_of"),
        ({}, "as_of"),
        ({"as_of": "2026-06-30", "window_days": "-1"}, "window_days"),
        ({"as_of": "2026-06-30", "format": "pdf"}, "format"),
    ]
    for params, field in cases:
        r = await client.get(url, params=params, headers=auth)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in r.text
    r = await client.get(url + "/migration", params={"from": "2026-06-01"}, headers=auth)
    assert r.status_code == 422 and '"to"' in r.text
    assert (await client.get(url, params={"as_of": "2026-06-30"})).status_code == 401
    other = await client.get(
        url, params={"as_of": "2026-06-30", "program": "someone-else"}, headers=auth
    )
    assert other.status_code == 403
    everywhere = await admin.do_add_token(rt, name=f"all-{secrets.token_hex(2)}")
    several = await client.get(
        url, params={"as_of": "2026-06-30"}, headers={"Authorization": f"Bearer {everywhere}"}
    )
    assert several.status_code == 422 and '"program"' in several.text  # which one?
    named = await client.get(
        url,
        params={"as_of": "2026-06-30", "program": shop.code},
        headers={"Authorization": f"Bearer {everywhere}"},
    )
    assert named.status_code == 200 and named.json()["customers"] == 0
