"""The cashier screen's forms without JavaScript and at their edges, through the app
in-process (both databases): every answer is a page, never a 500."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import update

from kopilka.services import users
from kopilka.store import tables as t
from tests.services.test_cashier import store_id
from tests.web.conftest import MakeUser


async def signed_in(client: httpx.AsyncClient, shop: Any, who: Any) -> tuple[dict[str, str], str]:
    """A console user's session cookie (as a header: the app's client is shared by every
    test) and CSRF token, as the login page would give them."""
    token, session = await users.login(shop.rt, who.login, who.password, ip=None, user_agent=None)
    return {"Cookie": f"kopilka_session={token}"}, session.csrf_token


async def test_without_javascript_every_form_answers_the_whole_screen(
    client: httpx.AsyncClient, make_shop: Any, make_user: MakeUser
) -> None:
    shop = await make_shop()
    member = await shop.customer(first_name="Ия", last_name="Ким")
    who = await make_user("cashier", shop, store_id=await store_id(shop))
    cookies, csrf = await signed_in(client, shop, who)
    client.cookies.clear()

    async def post(path: str, **form: str) -> httpx.Response:
        return await client.post(path, data={"csrf": csrf, **form}, headers=cookies)

    found = await post("/cashier/lookup", identifier=member.card)
    unknown = await post("/cashier/lookup", identifier="  ")
    control = await post("/cashier/lookup", identifier="12\x0734")
    coupon = await post("/cashier/coupon", code="NOPE")
    gift = await post("/cashier/gift-card", number="abc")
    reg = await post("/cashier/register", phone="1", first_name="x" * 101)
    confirm = await post("/cashier/confirm-phone", customer_id="x", code="12")
    panel = await post("/cashier/panel/nothing")
    no_csrf = await client.post("/cashier/lookup", data={"identifier": "1"}, headers=cookies)

    assert found.status_code == 200 and "<html" in found.text
    assert "Ия К." in found.text and 'id="identifier"' in found.text
    assert member.card in found.text  # the typed value stays in its field
    assert "scan the card or type the phone" in unknown.text
    assert "unexpected characters" in control.text
    assert "No such coupon." in coupon.text
    assert "No gift card with this number." in gift.text
    assert reg.status_code == 422
    assert "not a valid phone number" in reg.text and "at most 100 characters" in reg.text
    assert confirm.status_code == 422 and "the code has 6 digits" in confirm.text
    assert panel.status_code == 404
    assert no_csrf.status_code == 403


async def test_a_disabled_screen_terminal_stops_the_screen_with_a_reason(
    client: httpx.AsyncClient, make_shop: Any, make_user: MakeUser
) -> None:
    shop = await make_shop()
    who = await make_user("cashier", shop, store_id=await store_id(shop))
    cookies, csrf = await signed_in(client, shop, who)
    client.cookies.clear()
    first = await client.get("/cashier", headers=cookies)
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.terminals)
            .where(
                t.terminals.c.name == "cashier screen", t.terminals.c.program_id == shop.program_id
            )
            .values(status="disabled")
        )

    page = await client.get("/cashier", headers=cookies)
    partial = await client.post(
        "/cashier/lookup",
        data={"csrf": csrf, "identifier": "1"},
        headers={**cookies, "HX-Request": "true"},
    )

    assert first.status_code == 200 and 'id="identifier"' in first.text
    assert "The cashier screen is disabled in this store." in page.text
    assert 'id="identifier"' not in page.text
    assert partial.status_code == 200 and "<html" not in partial.text
    assert re.search(r"The cashier screen is disabled in this store\.", partial.text)
