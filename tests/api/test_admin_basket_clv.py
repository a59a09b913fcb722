"""Admin API: /reports/basket and /reports/clv as JSON, CSV and XLSX; refusals as
problem+json naming the field; reports.read needed."""

from __future__ import annotations

import io
import secrets
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from kopilka.services import admin
from kopilka.services.runtime import Runtime
from tests.services.test_basket_report import EXPECTED, _textbook_shop
from tests.services.test_clv_report import _weekly_shop


async def _auth(rt: Runtime, code: str, role: str = "analyst") -> dict[str, str]:
    key = await admin.do_add_token(
        rt, name=f"an-{secrets.token_hex(3)}", program_code=code, role=role
    )
    return {"Authorization": f"Bearer {key}"}


async def test_basket_rules_as_json_pages_and_csv(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await _textbook_shop(make_shop)
    auth = await _auth(rt, shop.code)
    q = {"min_support": "0.4", "min_confidence": "0.6", "max_len": "2", "from": "2026-03-02"}
    q["to"] = "2026-03-02"

    page = await client.get("/api/admin/v1/reports/basket", params={**q, "limit": 2}, headers=auth)
    rest = await client.get(
        "/api/admin/v1/reports/basket", params={**q, "offset": 10}, headers=auth
    )
    csv = await client.get(
        "/api/admin/v1/reports/basket", params={**q, "format": "csv"}, headers=auth
    )

    assert page.status_code == 200, page.text
    body = page.json()
    assert (body["receipts"], body["rules_total"]) == (5, 12)
    assert body["rules"][0] == {
        "antecedents": ["beer"],
        "consequents": ["diapers"],
        "support": pytest.approx(0.6),
        "confidence": pytest.approx(1.0),
        "lift": pytest.approx(1.25),
    }
    assert [(r["antecedents"], r["consequents"]) for r in rest.json()["rules"]] == [
        (["beer"], ["bread"]),
        (["beer"], ["milk"]),
    ]
    lines = csv.text.splitlines()
    assert lines[0] == "antecedents,consequents,support,confidence,lift"
    assert [tuple(x.split(",")[:2]) for x in lines[1:]] == [(a, c) for a, c, *_ in EXPECTED]
    assert csv.headers["content-type"].startswith("text/csv")


async def test_basket_xlsx_has_both_sheets(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await _textbook_shop(make_shop)
    auth = await _auth(rt, shop.code)

    r = await client.get(
        "/api/admin/v1/reports/basket",
        params={"min_support": "0.4", "min_confidence": "0.6", "format": "xlsx"},
        headers=auth,
    )
    wb = load_workbook(io.BytesIO(r.content), read_only=True)

    assert wb.sheetnames == ["Rules", "Itemsets"]
    header = next(wb["Itemsets"].iter_rows(values_only=True))
    rules = list(wb["Rules"].iter_rows(values_only=True))
    assert header == ("itemset", "support", "length")
    # numbers are numeric cells in a spreadsheet, not text
    assert len(rules) > 1
    assert all(isinstance(v, int | float) for r in rules[1:] for v in r[2:])


async def test_bad_thresholds_and_roles_are_refused(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    auth = await _auth(rt, shop.code)
    support = await _auth(rt, shop.code, role="support")

    bad = await client.get(
        "/api/admin/v1/reports/basket", params={"min_support": "0"}, headers=auth
    )
    bad_len = await client.get(
        "/api/admin/v1/reports/basket",
        params={"min_support": "0.1", "max_len": "1"},
        headers=auth,
    )
    denied = await client.get(
        "/api/admin/v1/reports/basket", params={"min_support": "0.1"}, headers=support
    )
    no_token = await client.get("/api/admin/v1/reports/clv", params={"as_of": "2026-01-01"})
    other = await client.get(
        "/api/admin/v1/reports/basket",
        params={"min_support": "0.1", "program": "someone-else"},
        headers=auth,
    )

    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["field"] == "min_support"
    assert bad_len.json()["field"] == "max_len"
    assert denied.status_code == 403
    assert no_token.status_code == 401
    assert other.status_code == 403


async def test_clv_as_json_and_csv(make_shop: Any, rt: Runtime, client: httpx.AsyncClient) -> None:
    shop = await _weekly_shop(make_shop)
    auth = await _auth(rt, shop.code)
    q = {"as_of": "2026-03-01", "penalizer": "0.001"}

    r = await client.get("/api/admin/v1/reports/clv", params={**q, "limit": 5}, headers=auth)
    csv = await client.get("/api/admin/v1/reports/clv", params={**q, "format": "csv"}, headers=auth)
    bad = await client.get(
        "/api/admin/v1/reports/clv", params={"as_of": "2026-02-30"}, headers=auth
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body["params"]) == ["r", "alpha", "a", "b", "p", "q", "v"]
    assert (body["customers_total"], len(body["customers"]), body["horizon"]) == (31, 5, 52)
    a = next(row for row in csv.text.splitlines()[1:] if row.startswith("A,")).split(",")
    assert a[:5] == ["A", "1", "2", "7", "30.00"]
    values = [float(c["expected_value"]) for c in body["customers"]]
    assert values == sorted(values, reverse=True)
    assert bad.status_code == 422 and bad.json()["field"] == "as_of"
