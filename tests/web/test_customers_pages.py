"""Every customers page renders in both languages (in-process, no browser); the CSRF
check guards the actions, and another program's customer is not found."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kopilka.services import customer_admin as ca
from kopilka.services import users
from kopilka.services.audit import Actor
from tests.conftest import receipt
from tests.web.conftest import MakeUser


async def session(
    rt: Any, make_user: MakeUser, shop: Any, locale: str
) -> tuple[dict[str, str], str]:
    who = await make_user("support", shop, locale=locale)
    token, s = await users.login(rt, who.login, who.password, ip="127.0.0.1", user_agent="test")
    return {"Cookie": f"kopilka_session={token}"}, s.csrf_token


@pytest.mark.parametrize("locale", ["en", "ru"])
async def test_every_page_renders(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any, locale: str
) -> None:
    shop = await make_shop(earn_percent="5")
    m = await shop.customer(10, last_name="Зотова")
    assert (
        await shop.post("/purchases", receipt("r1", m.card, ("a", 1, "100")))
    ).status_code == 200
    who = Actor("user", 1, "t", "support", None, shop.program_id)
    await ca.block_card(shop.rt, who, shop.program_id, m.card, reason="test block")
    h, _ = await session(shop.rt, make_user, shop, locale)
    base = f"/admin/customers/{m.customer_id}"
    urls = [
        "/admin/customers",
        "/admin/customers?q=зот",
        "/admin/customers?q=зот&sort=balance&dir=desc",
        f"/admin/customers?q={m.card}",
        base,
        base + "?tab=receipts&sort=amount&dir=asc",
        base + "?tab=movements",
        base + "?tab=lots",
        base + "?tab=coupons",
        base + "?tab=history",
        base + "/adjust",
        base + "/consents",
        base + "/virtual-card",
        base + "/merge",
        f"{base}/cards/{m.card}/unblock",
        f"{base}/cards/{m.card}/replace",
    ]
    for url in urls:
        r = await client.get(url, headers=h)
        assert r.status_code == 200, (url, r.status_code, r.text[-500:])
    page = (await client.get(base, headers=h)).text
    assert ("Зотова" in page) and (("заблокирован" in page) == (locale == "ru"))
    rows = await client.get("/admin/customers?q=зот", headers={**h, "HX-Request": "true"})
    assert 'id="rows"' in rows.text


async def test_actions_need_the_csrf_token_and_the_program(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    other = await make_shop()
    m = await shop.customer(10)
    stranger = await other.customer(10)
    h, csrf = await session(shop.rt, make_user, shop, "en")
    url = f"/admin/customers/{m.customer_id}/adjust"
    form = {"direction": "credit", "amount": "5", "reason": "test"}

    forged = await client.post(url, data=form, headers=h)
    ok = await client.post(url, data={**form, "csrf": csrf}, headers=h)
    elsewhere = await client.get(f"/admin/customers/{stranger.customer_id}", headers=h)
    bad_card = await client.get(
        f"/admin/customers/{m.customer_id}/cards/{stranger.card}/block", headers=h
    )

    assert forged.status_code == 403
    assert ok.status_code == 303
    assert elsewhere.status_code == 404
    assert bad_card.status_code == 404
    assert (await ca.get_customer(shop.rt, shop.program_id, m.customer_id)).total == 15


async def test_the_lots_tab_says_who_funds_each_lot_and_where_it_can_be_spent(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop(earn_percent="5")
    m = await shop.customer(10)  # the operator's points: the program's, anywhere
    await shop.post("/purchases", receipt("r1", m.card, ("a", 1, "100")))  # the shop's
    h, _ = await session(shop.rt, make_user, shop, "ru")

    page = (await client.get(f"/admin/customers/{m.customer_id}?tab=lots", headers=h)).text

    table = page.split('<section id="rows">', 1)[1].split("</table>", 1)[0]
    rows = [r for r in table.split("<tr>") if "<td>" in r]
    assert len(rows) == 2
    assert sorted(("программа" in r, "Shop" in r, "везде" in r) for r in rows) == [
        (False, True, True),
        (True, False, True),
    ]


@pytest.mark.parametrize("locale", ["en", "ru"])
async def test_the_console_shows_the_consent_history_and_erases_under_a_pseudonym(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any, locale: str
) -> None:
    shop = await make_shop()
    reg = await shop.post("/customers", {"phone": "+79265550101", "consent_sms": True})
    cid = reg.json()["customer_id"]
    h, csrf = await session(shop.rt, make_user, shop, locale)
    base = f"/admin/customers/{cid}"

    before = (await client.get(base, headers=h)).text
    form = (await client.get(base + "/erase", headers=h)).text
    unconfirmed = await client.post(
        base + "/erase", data={"confirm": str(cid + 1), "reason": "asked", "csrf": csrf}, headers=h
    )
    done = await client.post(
        base + "/erase", data={"confirm": str(cid), "reason": "asked", "csrf": csrf}, headers=h
    )
    after = (await client.get(base, headers=h)).text

    assert reg.status_code == 201, reg.text
    assert 'data-testid="consent-history"' in before
    assert ("Обработка персональных данных" in before) == (locale == "ru")
    assert ("Personal data processing" in before) == (locale == "en")
    assert "sms-2026-12" in before and "pd-2026-12" in before
    assert 'name="confirm"' in form
    assert unconfirmed.status_code == 422 and "+79265550101" in before
    assert done.status_code == 303
    assert "+79265550101" not in after and "erased-" in after
    assert ("отозвано" in after) == (locale == "ru")
