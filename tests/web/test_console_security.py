"""The console's session and CSRF rules, checked over HTTP (no browser needed)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from kopilka.services import users
from kopilka.services.runtime import Runtime
from tests.conftest import Clock
from tests.web.conftest import Login, MakeUser


async def _sign_in(client: httpx.AsyncClient, who: Login, next_url: str = "/admin/") -> str:
    """Log in through the form; returns the page's CSRF token."""
    client.cookies.clear()
    form = await client.get("/admin/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    r = await client.post(
        "/admin/login",
        data={"login": who.login, "password": who.password, "csrf": token[1], "next": next_url},
    )
    assert r.status_code == 303, r.text
    home = await client.get(r.headers["location"])
    assert home.status_code == 200, home.text
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    assert csrf is not None
    return csrf[1]


async def test_a_change_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop
) -> None:
    who = await make_user("support", await make_shop())
    csrf = await _sign_in(client, who)
    refused = await client.post("/admin/lang", data={"lang": "ru"})
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    forged = await client.post("/admin/lang", data={"lang": "ru", "csrf": "x" * 43})
    assert forged.status_code == 403
    ok = await client.post("/admin/lang", data={"lang": "ru"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 303


async def test_the_session_cookie_is_http_only_and_the_pages_forbid_framing(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop
) -> None:
    who = await make_user("analyst", await make_shop())
    client.cookies.clear()
    form = await client.get("/admin/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    r = await client.post(
        "/admin/login", data={"login": who.login, "password": who.password, "csrf": token[1]}
    )
    cookie = next(
        v for k, v in r.headers.multi_items() if k == "set-cookie" and "kopilka_session" in v
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = await client.get("/admin/")
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_login_does_not_redirect_to_another_site(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop
) -> None:
    who = await make_user("analyst", await make_shop())
    client.cookies.clear()
    form = await client.get("/admin/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    r = await client.post(
        "/admin/login",
        data={
            "login": who.login,
            "password": who.password,
            "csrf": token[1],
            "next": "//evil.example/phish",
        },
    )
    assert r.headers["location"] == "/admin/"


async def test_a_session_ends_after_two_idle_hours_and_when_the_user_is_disabled(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop, rt: Runtime, clock: Clock
) -> None:
    who = await make_user("support", await make_shop())
    await _sign_in(client, who)
    assert (await client.get("/admin/")).status_code == 200
    clock.set(rt.now() + users.SESSION_IDLE + timedelta(seconds=1))
    gone = await client.get("/admin/")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/admin/login")
    clock.frozen = None
    await _sign_in(client, who)
    from kopilka.services.audit import CLI

    await users.do_update_user(rt, CLI, who.id, active=False)
    gone = await client.get("/admin/")
    assert gone.status_code == 303


async def test_a_password_is_stored_as_an_argon2id_hash(
    make_user: MakeUser, make_shop, rt: Runtime
) -> None:
    from sqlalchemy import select

    from kopilka.store import tables as t

    who = await make_user("owner", await make_shop())
    async with rt.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(t.admin_users.c.password_hash).where(t.admin_users.c.id == who.id)
            )
        ).scalar_one()
    assert stored.startswith("$argon2id$") and who.password not in stored
