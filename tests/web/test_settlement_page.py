"""Reports → Settlement in the console: everyone with reports sees every party, a
partner's user only its own; downloads; Russian; closing by typing the month (Chromium)."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from pypdf import PdfReader

from kopilka.services import audit, settlement, users
from kopilka.services.runtime import Runtime
from tests.conftest import Clock
from tests.settlement.conftest import Coalition, make_coalition, november
from tests.web.conftest import MakeUser, login, shot

NOV = "/admin/reports/settlement?period=2026-11"


@pytest.fixture
async def coalition(make_shop: Any, clock: Clock) -> Coalition:
    """The worked example of docs/coalition.md (tests/settlement/conftest.py)."""
    c = await make_coalition(make_shop, clock)
    await november(c, clock)
    return c


async def _cookie(rt: Runtime, who: Any) -> dict[str, str]:
    token, _ = await users.login(rt, who.login, who.password, ip=None, user_agent=None)
    return {"Cookie": f"kopilka_session={token}"}


async def _terms(c: Coalition) -> None:
    program = await settlement.find_program(c.a.rt, c.a.code)
    await settlement.do_set_terms(
        c.a.rt, program, rate=Decimal("0.50"), fee_percent=Decimal("2"), actor=audit.CLI
    )


def _nets(html: str) -> dict[str, str]:
    html = html.replace("\u00a0", " ").replace("\u202f", " ")
    return dict(
        re.findall(
            r'<tr data-party="([^"]+)">.*?data-testid="net"><strong>([^<]+)</strong>', html, re.S
        )
    )


async def test_an_analyst_sees_every_party_and_downloads_the_month(
    coalition: Coalition, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    c = coalition
    await _terms(c)
    h = await _cookie(c.a.rt, await make_user("analyst", c.a))
    client.cookies.clear()

    index = await client.get("/admin/reports", headers=h)
    page = await client.get(NOV, headers=h)
    got = await client.get("/admin/reports/settlement.csv?period=2026-11", headers=h)
    printed = await client.get("/admin/reports/settlement.pdf?period=2026-11", headers=h)
    bad = await client.get("/admin/reports/settlement?period=2026-13", headers=h)

    assert 'href="/admin/reports/settlement"' in index.text
    assert page.status_code == 200
    assert _nets(page.text) == {
        "operator": "-23.40 ₽",
        "apteka": "-15.40 ₽",
        "coffee": "38.80 ₽",
    }
    assert "Open: figures are preliminary" in page.text
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert [(r["party"], r["net_rub"]) for r in rows] == [
        ("operator", "-23.40"),
        ("apteka", "-15.40"),
        ("coffee", "38.80"),
    ]
    text = PdfReader(io.BytesIO(printed.content)).pages[0].extract_text()
    assert "Clearing report" in text and "Кофейня" in text and "38.80" in text
    assert bad.status_code == 422 and "a month such as 2026-11" in bad.text


async def test_a_partner_user_sees_only_its_own_settlement(
    coalition: Coalition, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    c = coalition
    await _terms(c)
    who = await make_user("partner", c.a, partner_id=c.a.partner_id, locale="ru")
    h = await _cookie(c.a.rt, who)
    client.cookies.clear()

    page = await client.get(NOV, headers=h)
    got = await client.get("/admin/reports/settlement.csv?period=2026-11", headers=h)
    own = await client.get("/admin/reports/settlement/2026-11/apteka.pdf", headers=h)
    other = await client.get("/admin/reports/settlement/2026-11/coffee.pdf", headers=h)
    close = await client.post(
        "/admin/reports/settlement/close",
        data={"period": "2026-11", "confirm": "2026-11"},
        headers=h,
    )

    assert "Взаиморасчёты" in page.text and "Сальдо, ₽" in page.text
    assert _nets(page.text) == {"apteka": "-15,40 ₽"}
    assert "Кофейня" in page.text  # its counterparty
    assert "coffee.pdf" not in page.text and "Закрыть месяц" not in page.text
    assert [r["party"] for r in csv.DictReader(io.StringIO(got.content.decode("utf-8-sig")))] == [
        "apteka"
    ]
    assert own.status_code == 200 and own.content.startswith(b"%PDF")
    assert other.status_code == 404  # as a partner that does not exist (ADR 0026)
    assert close.status_code == 403


async def test_the_owner_closes_the_month_by_typing_it(
    coalition: Coalition, page: Page, make_user: MakeUser
) -> None:
    # (SQLite only, like every browser test: ADR 0033; closing on PostgreSQL is tested
    # above and in tests/settlement — API, CLI, two closes at once)
    c = coalition  # the served app runs on the real clock: November 2026 is over
    who = await make_user("owner", c.a)
    await login(page, who, next_url="/admin/reports/settlement?period=2026-11")

    await page.get_by_label("Type the month to confirm").fill("2026-10")
    await page.get_by_role("button", name="Close the month").click()
    await expect(page.locator("#confirm-error")).to_have_text(
        "type the month to close it, e.g. 2026-11"
    )
    await page.get_by_label("Type the month to confirm").fill("2026-11")
    await page.get_by_role("button", name="Close the month").click()

    await expect(
        page.get_by_text("The month is closed; its statements are signed.")
    ).to_be_visible()
    await expect(page.get_by_test_id("state")).to_contain_text("Closed")
    await shot(page, "settlement")
    program = await settlement.find_program(c.a.rt, c.a.code)
    assert await settlement.stored_statement(c.a.rt, program, "2026-11", c.b_partner) is not None
