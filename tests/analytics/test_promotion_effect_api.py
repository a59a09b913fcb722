"""The promotion-effect report through its doors: the admin API (JSON and files, token
and role checks, problem+json naming the field) and ``kopilka report promotions``."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import update

from kopilka.cli import main
from kopilka.services import admin
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.analytics.test_promotion_effect import pre_period_scenario
from tests.conftest import Clock, Shop

URL = "/api/admin/v1/reports/promotions"
OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}


async def token(rt: Runtime, shop: Shop, role: str = "analyst") -> dict[str, str]:
    name = f"{role}-{secrets.token_hex(3)}"
    key = await admin.do_add_token(rt, name=name, program_code=shop.code)
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.admin_tokens).where(t.admin_tokens.c.name == name).values(role=role)
        )
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def shop(rt: Runtime, make_shop: Any, clock: Clock) -> Shop:
    s: Shop = await make_shop()
    await pre_period_scenario(rt, s, clock)
    return s


async def test_the_api_answers_the_figures_and_the_effect_as_json(
    rt: Runtime, client: httpx.AsyncClient, shop: Shop
) -> None:
    h = await token(rt, shop)

    r = await client.get(URL, params={**OCTOBER, "margin": "25"}, headers=h)

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["program"], body["margin_percent"], body["point_value"]) == (
        shop.code,
        "25.00",
        "1",
    )
    [p] = body["promotions"]
    assert p["id"] == "promo-sku"
    assert (p["participants"], p["receipts"], p["points"], p["cost"]) == (
        20,
        20,
        "200.00",
        "200.00",
    )
    e = p["effect"]
    assert e["method"] == "pre_period"
    assert e["per_member"] == {"estimate": "50.00", "low": "40.71", "high": "59.29"}
    assert e["incremental_revenue"]["estimate"] == "1000.00"
    assert e["roi"]["estimate"] == 0.25
    assert e["purchase_rate"] is None
    assert (e["group_a"]["members"], e["group_b"]["members"]) == (20, 20)


async def test_the_api_gives_the_same_table_as_csv(
    rt: Runtime, client: httpx.AsyncClient, shop: Shop
) -> None:
    h = await token(rt, shop)

    r = await client.get(URL, params={**OCTOBER, "format": "csv"}, headers=h)

    assert r.status_code == 200
    assert 'filename="promotions-2026-10-01-2026-10-31.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["promotion_id"], x["participants"], x["cost"]) for x in rows] == [
        ("promo-sku", "20", "200.00")
    ]
    assert (rows[0]["effect_per_member"], rows[0]["roi"]) == ("50.00", "5.0")  # 1000 / 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01", "to": "2026-10-31"}, "from"),
        ({"from": "2026-10-31", "to": "2026-10-01"}, "to"),
        ({**OCTOBER, "margin": "120"}, "margin"),
    ],
    ids=["bad-date", "backwards", "margin"],
)
async def test_bad_parameters_are_problems_naming_the_field(
    rt: Runtime, client: httpx.AsyncClient, shop: Shop, params: dict[str, str], field: str
) -> None:
    h = await token(rt, shop)

    r = await client.get(URL, params=params, headers=h)

    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field


async def test_a_token_without_reports_read_is_refused(
    rt: Runtime, client: httpx.AsyncClient, shop: Shop
) -> None:
    h = await token(rt, shop, role="cashier")

    r = await client.get(URL, params=OCTOBER, headers=h)

    assert r.status_code == 403


async def test_a_token_of_another_program_is_refused(
    rt: Runtime, client: httpx.AsyncClient, shop: Shop, make_shop: Any
) -> None:
    other = await make_shop()
    h = await token(rt, other)

    r = await client.get(URL, params={**OCTOBER, "program": shop.code}, headers=h)

    assert r.status_code == 403


async def test_the_cli_writes_csv_and_a_workbook(db_url: str, shop: Shop, tmp_path: Path) -> None:
    out, book = tmp_path / "p.csv", tmp_path / "p.xlsx"
    base = ["--db", db_url, "report", "promotions", "--program", shop.code]
    dates = ["--from", "2026-10-01", "--to", "2026-10-31", "--margin", "25"]

    rc1 = await asyncio.to_thread(main, [*base, *dates, "--out", str(out)])
    rc2 = await asyncio.to_thread(main, [*base, *dates, "--format", "xlsx", "--out", str(book)])

    assert (rc1, rc2) == (0, 0)
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert [(x["promotion_id"], x["method"], x["incremental_revenue"], x["roi"]) for x in rows] == [
        ("promo-sku", "pre_period", "1000.00", "0.25")
    ]
    wb = openpyxl.load_workbook(book)
    assert wb.sheetnames == ["promotions", "parameters"]
    params = {r[0]: r[1] for r in wb["parameters"].iter_rows(min_row=2, values_only=True)}
    assert params["margin_percent"] == 25


async def test_the_cli_names_the_bad_option(
    db_url: str, shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--db", db_url, "report", "promotions", "--program", shop.code]

    rc = await asyncio.to_thread(main, [*argv, "--from", "1 October", "--to", "2026-10-31"])

    assert rc == 2
    assert capsys.readouterr().err == "error: from: expected a date like 2026-11-01\n"
