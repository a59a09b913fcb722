"""Admin API: the summary, stores and cohorts reports as JSON, CSV and XLSX, and bad
parameters answered with problem+json naming the parameter."""

from __future__ import annotations

import io
import secrets
from typing import Any

import httpx
from openpyxl import load_workbook

from kopilka.services import admin
from kopilka.services.runtime import Runtime
from tests.conftest import Clock
from tests.services.test_summary_report import hand_shop

BASE = "/api/admin/v1/reports"


async def _auth(rt: Runtime, code: str, role: str = "analyst") -> dict[str, str]:
    key = await admin.do_add_token(rt, name=f"an-{secrets.token_hex(2)}", program_code=code,
                                   role=role)  # fmt: skip
    return {"Authorization": f"Bearer {key}"}


async def test_summary_as_json_csv_and_xlsx(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient, clock: Clock
) -> None:
    shop, _, _ = await hand_shop(make_shop, clock)
    auth = await _auth(rt, shop.code)
    q = {"program": shop.code, "from": "2026-03-10", "to": "2026-03-12"}

    js = await client.get(f"{BASE}/summary", params=q, headers=auth)
    csv = await client.get(f"{BASE}/summary", params={**q, "format": "csv"}, headers=auth)
    xlsx = await client.get(f"{BASE}/summary", params={**q, "format": "xlsx"}, headers=auth)

    assert js.status_code == 200, js.text
    body = js.json()
    assert body["kpis"]["sales"] == {
        "value": "700.00", "previous": "400.00", "change": "300.00", "change_pct": "75.0"
    }  # fmt: skip
    assert body["previous"] == {"from": "2026-03-07", "to": "2026-03-09"}
    assert [s["receipts"] for s in body["series"]] == [2, 1, 0]
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "metric,value,previous,change,change_pct"
    assert lines[1] == "sales,700.00,400.00,300.00,75.0"
    sheets = load_workbook(io.BytesIO(xlsx.content), read_only=True).sheetnames
    assert sheets == ["summary", "over time"]


async def test_stores_and_cohorts_over_the_api(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient, clock: Clock
) -> None:
    shop, _, _ = await hand_shop(make_shop, clock)
    auth = await _auth(rt, shop.code)
    q = {"program": shop.code, "from": "2026-03-10", "to": "2026-03-12"}

    st = await client.get(f"{BASE}/stores", params={**q, "cashiers": "false"}, headers=auth)
    co = await client.get(f"{BASE}/cohorts", params={**q, "format": "csv"}, headers=auth)

    assert st.status_code == 200, st.text
    assert [(r["receipts"], r["sales"], r["refund_amount"]) for r in st.json()["rows"]] == [
        (3, "700.00", "1000.00")
    ]
    assert co.status_code == 200, co.text
    # A first bought on 03-08 and B on 03-11: one cohort of two, both in month 0
    assert co.content.decode("utf-8-sig").splitlines()[1].startswith("2026-03,2,100.0,")


async def test_bad_parameters_name_the_parameter(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    auth = await _auth(rt, shop.code)
    q = {"program": shop.code, "from": "2026-03-10", "to": "2026-03-12"}
    cases = [
        ("summary", {"from": "10.03.2026"}, "from"),
        ("summary", {"to": "2026-03-01"}, "to"),
        ("summary", {"by": "year"}, "by"),
        ("summary", {"format": "pdf"}, "format"),
        ("stores", {"sort": "colour"}, "sort"),
        ("stores", {"store": "nope"}, "store"),
        ("cohorts", {"program": "nope"}, "program"),
    ]
    for path, change, field in cases:
        r = await client.get(f"{BASE}/{path}", params={**q, **change}, headers=auth)

        assert r.status_code == 422, (path, change, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == field, r.json()


async def test_a_role_without_reports_is_refused(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    auth = await _auth(rt, shop.code, role="support")

    r = await client.get(
        f"{BASE}/summary", params={"program": shop.code, "from": "2026-03-10", "to": "2026-03-12"},
        headers=auth,
    )  # fmt: skip

    assert r.status_code == 403
