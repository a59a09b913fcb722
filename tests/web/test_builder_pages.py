"""The report builder's console pages in-process (both languages, both databases):
the live preview, saving, sharing with a role, exports, schedules and deleting."""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import openpyxl
import pytest

from kopilka.services import users
from tests.analytics.conftest import Till, make_november
from tests.web.conftest import MakeUser

FORM = {
    "dim1": "city",
    "measures": ["sales", "receipts", "avg_receipt"],
    "period": "custom",
    "from": "2026-11-01",
    "to": "2026-11-30",
    "chart": "bar",
    "limit": "1000",
}


@pytest.fixture
async def november(make_shop: Any) -> Till:
    return await make_november(make_shop)


async def session(
    till: Till, make_user: MakeUser, role: str, locale: str = "en"
) -> tuple[dict[str, str], str]:
    who = await make_user(role, till.shop, locale=locale)
    token, s = await users.login(
        till.rt, who.login, who.password, ip="127.0.0.1", user_agent="test"
    )
    return {"Cookie": f"kopilka_session={token}"}, s.csrf_token


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("en", ["Report builder", "591.00", "295.50", "Average receipt"]),
        ("ru", ["Конструктор отчётов", "591,00", "295,50", "Средний чек"]),
    ],
)
async def test_the_builder_previews_and_saves(
    november: Till, client: httpx.AsyncClient, make_user: MakeUser, locale: str, words: list[str]
) -> None:
    h, csrf = await session(november, make_user, "analyst", locale)

    page = await client.get("/admin/reports/builder", headers=h)
    preview = await client.post(
        "/admin/reports/builder/preview", data={**FORM, "csrf": csrf}, headers=h
    )
    saved = await client.post(
        "/admin/reports/builder/save",
        data={**FORM, "csrf": csrf, "name": "Города", "shared_roles": "analyst"},
        headers=h,
    )

    assert page.status_code == 200 and words[0] in page.text
    assert preview.status_code == 200
    text = re.sub(r"\s+", " ", preview.text.replace("\xa0", " "))
    for w in words[1:]:
        assert w in text
    assert 'data-chart="chart-data-builder"' in preview.text  # the chart's data island
    assert saved.status_code == 303
    report = await client.get(saved.headers["location"], headers=h)
    assert report.status_code == 200 and "Города" in report.text and words[1] in report.text


async def test_a_bad_definition_is_shown_at_its_field(
    november: Till, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    h, csrf = await session(november, make_user, "analyst", "ru")
    form = {**FORM, "measures": [], "csrf": csrf, "name": "x"}

    preview = await client.post("/admin/reports/builder/preview", data=form, headers=h)
    saved = await client.post("/admin/reports/builder/save", data=form, headers=h)
    pie = await client.post(
        "/admin/reports/builder/preview",
        data={**FORM, "dim1": "", "chart": "pie", "csrf": csrf},
        headers=h,
    )

    assert "выберите хотя бы один" in preview.text
    assert saved.status_code == 422
    assert re.search(r'<small class="error">выберите хотя бы один</small>', saved.text)
    assert "для линий, столбцов и круговой диаграммы нужно измерение" in pie.text


async def test_sharing_with_a_role(
    november: Till, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    author, csrf = await session(november, make_user, "analyst")
    colleague, _ = await session(november, make_user, "analyst")
    marketer, _ = await session(november, make_user, "marketer")
    support, _ = await session(november, make_user, "support")
    saved = await client.post(
        "/admin/reports/builder/save",
        data={**FORM, "csrf": csrf, "name": "Для аналитиков", "shared_roles": "analyst"},
        headers=author,
    )
    url = saved.headers["location"]

    assert "Для аналитиков" in (await client.get("/admin/reports/custom", headers=colleague)).text
    assert (await client.get(url, headers=colleague)).status_code == 200
    assert (
        "Для аналитиков" not in (await client.get("/admin/reports/custom", headers=marketer)).text
    )
    assert (await client.get(url, headers=marketer)).status_code == 404
    assert (await client.get("/admin/reports/custom", headers=support)).status_code == 403
    copy = await client.get(f"/admin/reports/builder?id={url.rsplit('/', 1)[1]}", headers=colleague)
    assert copy.status_code == 200 and 'name="report_id"' not in copy.text
    assert 'value="Для аналитиков"' in copy.text  # the copy starts with the report's name
    # the colleague may open it but not delete it
    refused = await client.post(
        url + "/delete", data={"csrf": _, "confirm": "Для аналитиков"}, headers=colleague
    )
    assert refused.status_code == 403


async def test_exports_schedules_and_delete(
    november: Till, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    h, csrf = await session(november, make_user, "analyst")
    url = (
        await client.post(
            "/admin/reports/builder/save",
            data={**FORM, "csrf": csrf, "name": "Выгрузка"},
            headers=h,
        )
    ).headers["location"]

    adhoc = await client.post(
        "/admin/reports/builder/export?format=xlsx", data={**FORM, "csrf": csrf}, headers=h
    )
    ws = openpyxl.load_workbook(io.BytesIO(adhoc.content)).active
    assert ws is not None
    assert [[c.value for c in r] for r in ws.iter_rows()][1] == ["Казань", 591, 2, 295.5]
    csv = await client.get(url + "/export?format=csv", headers=h)
    assert csv.content.decode("utf-8-sig").splitlines()[1] == "Казань,591.00,2,295.50"
    pdf = await client.get(url + "/export?format=pdf", headers=h)
    assert pdf.content.startswith(b"%PDF") and pdf.headers["content-type"] == "application/pdf"

    bad = await client.post(
        url + "/schedules",
        data={"csrf": csrf, "frequency": "weekly", "at": "08:00", "recipients": "a@example.com"},
        headers=h,
    )
    assert bad.status_code == 422
    assert re.search(r'aria-invalid="true"[^>]*>\s*<option value=""></option>', bad.text)
    ok = await client.post(
        url + "/schedules",
        data={
            "csrf": csrf,
            "frequency": "weekly",
            "weekday": "1",
            "at": "08:00",
            "recipients": "a@example.com",
            "format": "pdf",
        },
        headers=h,
    )
    assert ok.status_code == 303
    page = (await client.get(url, headers=h)).text
    assert "a@example.com" in page and "weekly, Monday, 08:00 (Europe/Moscow)" in page

    wrong = await client.post(url + "/delete", data={"csrf": csrf, "confirm": "Выгруз"}, headers=h)
    assert (await client.get(url, headers=h)).status_code == 200
    assert wrong.status_code == 303
    right = await client.post(
        url + "/delete", data={"csrf": csrf, "confirm": "Выгрузка"}, headers=h
    )
    assert right.status_code == 303
    assert (await client.get(url, headers=h)).status_code == 404
