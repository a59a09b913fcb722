"""Stores and terminals, users and roles, the audit log — in a real browser."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import secrets
import time
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from kopilka.services.audit import CLI
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from tests.conftest import Shop
from tests.web.conftest import MakeUser, login, shot


async def _store_id(rt: Runtime, code: str) -> int:
    async with rt.engine.connect() as conn:
        sid = (
            await conn.execute(select(t.stores.c.id).where(t.stores.c.code == code))
        ).scalar_one()
    return int(sid)


async def _second_partner(rt: Runtime, shop: Shop) -> tuple[int, int, str]:
    """Another partner of the shop's program with a store of its own: (partner, store, code)."""
    code = f"OTHER-{secrets.token_hex(3)}"
    async with rt.engine.begin() as conn:
        partner = await insert_id(
            conn,
            t.partners,
            {"program_id": shop.program_id, "code": "other", "name": "Other Shop"},
        )
        store = await insert_id(
            conn,
            t.stores,
            {
                "program_id": shop.program_id,
                "partner_id": partner,
                "code": code,
                "name": "Other store",
                "city": "Казань",
            },
        )
    return partner, store, code


async def test_a_partner_user_cannot_see_another_partners_data(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    _, other_store, other_code = await _second_partner(rt, shop)
    own = await _store_id(rt, shop.store_code)
    who = await make_user("partner", shop, partner_id=shop.partner_id)
    await login(page, who, next_url="/admin/stores")
    rows = page.locator("#rows tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(shop.store_code)
    await expect(page.get_by_text(other_code)).to_have_count(0)
    # Only its own partner in the filters, no "New store" (read-only role).
    await expect(page.get_by_role("button", name="New store")).to_have_count(0)
    await shot(page, "org-stores-partner")

    answer = await page.goto(f"/admin/stores/{other_store}")
    assert answer is not None and answer.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    await expect(page.get_by_text("Other store")).to_have_count(0)

    answer = await page.goto(f"/admin/stores/{own}")
    assert answer is not None and answer.status == 200
    await expect(page.get_by_role("heading", name="Store")).to_be_visible()
    await expect(page.get_by_role("button", name="Add terminal")).to_have_count(0)

    answer = await page.goto("/admin/stores/new")
    assert answer is not None and answer.status == 403

    # The owner of the program sees both partners' stores and filters by partner.
    owner = await make_user("owner", shop)
    await page.context.clear_cookies()
    await login(page, owner, next_url="/admin/stores")
    await expect(rows).to_have_count(2)
    await shot(page, "org-stores")
    await page.get_by_label("Partner").select_option(label="Other Shop")
    await page.get_by_role("button", name="Find").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(other_code)


async def test_an_owner_adds_a_store_with_checked_coordinates(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    owner = await make_user("owner", shop)
    await login(page, owner, next_url="/admin/stores")
    await page.get_by_role("button", name="New store").click()
    code = f"MSK-{secrets.token_hex(2)}"
    await page.get_by_label("Code").fill(code)
    await page.get_by_label("Name").fill("Tverskaya 7")
    await page.get_by_label("Address").fill("Tverskaya st., 7")
    await page.get_by_label("City").fill("Москва")
    await page.get_by_label("Latitude").fill("95.5")
    await page.get_by_label("Longitude").fill("37.6173")
    await page.get_by_label("Time zone").fill("Europe/Atlantis")
    await page.get_by_role("button", name="Save").click()
    # Refused, naming the field; what was typed stays.
    await expect(page.get_by_text("must be between -90 and 90")).to_be_visible()
    await expect(page.get_by_label("Name")).to_have_value("Tverskaya 7")
    await shot(page, "org-store-form-error")
    await page.get_by_label("Latitude").fill("55.7558")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("unknown time zone")).to_be_visible()
    await page.get_by_label("Time zone").fill("Europe/Moscow")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Store created.")
    await expect(page.get_by_text("55.7558, 37.6173")).to_be_visible()
    # Edit: the change lands, and the audit log has before and after.
    await page.get_by_role("button", name="Edit").click()
    await page.get_by_label("City").fill("Химки")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    await expect(page.get_by_text("Химки")).to_be_visible()
    await shot(page, "org-store")
    await page.set_viewport_size({"width": 800, "height": 1000})
    await shot(page, "org-store-tablet")
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(t.audit_log.c.before, t.audit_log.c.after)
                .where(t.audit_log.c.action == "store.update")
                .order_by(t.audit_log.c.id.desc())
                .limit(1)
            )
        ).one()
    assert "Москва" in row.before and "Химки" in row.after


async def _till(web_base: str, key: str, card: str) -> int:
    async with httpx.AsyncClient(base_url=web_base, timeout=10) as http:
        r = await http.get(
            "/api/pos/v1/customers/lookup",
            params={"identifier": card},
            headers={"Authorization": f"Bearer {key}"},
        )
    return r.status_code


async def test_a_new_terminals_key_is_shown_once_works_and_dies_when_disabled(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime, web_base: str
) -> None:
    shop = await make_shop()
    member = await shop.customer(100)
    own = await _store_id(rt, shop.store_code)
    owner = await make_user("owner", shop)
    await login(page, owner, next_url=f"/admin/stores/{own}")
    await page.get_by_label("New terminal's name").fill("till 7")
    await page.get_by_role("button", name="Add terminal").click()
    key = (await page.get_by_test_id("key").inner_text()).strip()
    assert key.startswith("kp_") and len(key) > 20
    await shot(page, "org-terminal-key")
    # Reloading does not show the key again, nor does any other visit.
    await page.reload()
    await expect(page.get_by_test_id("new-key")).to_have_count(0)
    assert key not in await page.content()
    await expect(page.get_by_role("row", name="till 7")).to_contain_text(key[:10])

    # The key works at the till.
    assert await _till(web_base, key, member.card) == 200

    # Last seen: the tills' calls are noted in memory and flushed in one UPDATE by the
    # sweeper; here the till calls the in-process app and its runtime flushes.
    assert (
        await shop.get("/customers/lookup", params={"identifier": member.card})
    ).status_code == 200
    assert await rt.flush_last_seen(force=True) >= 1
    await page.reload()
    till1 = page.get_by_role("row", name="till 1")
    await expect(till1.get_by_test_id("last-seen")).not_to_have_text("never")
    await expect(till1.get_by_test_id("last-seen")).to_have_text(
        re.compile(r"\d\d\.\d\d\.\d{4} \d\d:\d\d")
    )

    # Disabling asks for the key prefix, then the till is refused.
    page.once("dialog", lambda d: asyncio.ensure_future(d.accept(key[:10])))
    await page.get_by_role("button", name="Disable till 7").click()
    await expect(page.get_by_role("status")).to_contain_text("disabled")
    await expect(page.get_by_role("row", name="till 7")).to_contain_text("disabled")
    deadline = time.monotonic() + 10
    status = await _till(web_base, key, member.card)
    while status == 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        status = await _till(web_base, key, member.card)
    assert status in (401, 403)
    # The other till of the store still works.
    assert await _till(web_base, shop.key, member.card) == 200


async def test_an_owner_creates_a_user_who_signs_in_with_the_roles_menu(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    owner = await make_user("owner", shop)
    await login(page, owner, next_url="/admin/users")
    await page.get_by_role("button", name="New user").click()
    login_name = f"anna-{secrets.token_hex(3)}"
    await page.get_by_label("Login").fill(login_name)
    await page.get_by_label("Person's name").fill("Anna Support")
    await page.get_by_label("E-mail").fill("anna@example.org")
    await page.get_by_label(re.compile(r"^Role")).select_option("support")
    await page.get_by_label("Password").fill("short")
    await page.get_by_label("Language").select_option("en")
    await page.get_by_role("button", name="Create user").click()
    await expect(page.get_by_text("at least 10 characters").first).to_be_visible()
    await expect(page.get_by_label("Login")).to_have_value(login_name)
    await shot(page, "org-user-new-error")
    await page.get_by_label("Password").fill("anna-password-1")
    await page.get_by_role("button", name="Create user").click()
    await expect(page.get_by_role("status")).to_have_text("User created.")
    await shot(page, "org-user")
    await page.goto("/admin/users?q=" + login_name)
    await expect(page.locator("#rows tbody tr")).to_have_count(1)
    await page.goto("/admin/users")
    await shot(page, "org-users")

    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url("**/admin/login")
    await page.get_by_label("Логин").or_(page.get_by_label("Login")).fill(login_name)
    await page.get_by_label("Пароль").or_(page.get_by_label("Password")).fill("anna-password-1")
    await page.locator("button[type=submit]").click()
    await page.wait_for_url("**/admin/")
    await expect(page.get_by_test_id("whoami")).to_contain_text("Anna Support")
    menu = page.locator("aside.sidebar")
    await expect(menu.get_by_role("link", name="Customers")).to_be_visible()
    await expect(menu.get_by_role("link", name="Stores")).to_be_visible()
    await expect(menu.get_by_role("link", name="Users")).to_have_count(0)
    await expect(menu.get_by_role("link", name="Audit log")).to_have_count(0)


async def test_the_security_officer_filters_and_exports_the_audit_log_support_cannot(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    own = await _store_id(rt, shop.store_code)
    tag = secrets.token_hex(3)
    owner = await make_user("owner", shop, name=f"Olga {tag}")
    # The owner adds two tills and disables one: three audit rows by Olga.
    await login(page, owner, next_url=f"/admin/stores/{own}")
    for name in ("till A", "till B"):
        await page.get_by_label("New terminal's name").fill(name)
        await page.get_by_role("button", name="Add terminal").click()
        await expect(page.get_by_test_id("key")).to_be_visible()
    prefix = (await page.get_by_role("row", name="till A").locator("code").inner_text())[:10]
    page.once("dialog", lambda d: asyncio.ensure_future(d.accept(prefix)))
    await page.get_by_role("button", name="Disable till A").click()
    await expect(page.get_by_role("status")).to_contain_text("disabled")

    await page.context.clear_cookies()
    security = await make_user("security", shop)
    await login(page, security, next_url="/admin/audit")
    await page.get_by_label("Who").fill(f"Olga {tag}")
    await page.get_by_role("button", name="Filter").click()
    rows = page.locator("#rows table.audit > tbody > tr")
    await expect(rows).to_have_count(4)  # login + 3 changes
    await page.get_by_label("Action").fill("terminal.")
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(3)
    await expect(rows.first).to_contain_text("terminal.disable")
    await expect(rows.first).to_contain_text("active")  # before → after, readable
    await shot(page, "org-audit")
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Export CSV").click()
    download = await info.value
    path = await download.path()
    data = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert [r["action"] for r in data] == ["terminal.create", "terminal.create", "terminal.disable"]
    assert {r["actor_name"] for r in data} == {f"Olga {tag}"}
    assert "till A" in data[0]["after"]
    # A bad date is named, not a crash.
    await page.get_by_label("From").evaluate("(el) => { el.type = 'text'; }")
    await page.get_by_label("From").fill("yesterday")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_text("a date such as 2026-11-23")).to_be_visible()

    await page.context.clear_cookies()
    support = await make_user("support", shop)
    await login(page, support)
    for url in ("/admin/audit", "/admin/users", "/admin/audit.csv", "/admin/users/new"):
        answer = await page.goto(url)
        assert answer is not None and answer.status == 403, url


async def test_disabling_a_user_ends_its_session_and_unlocking_lets_it_back_in(
    browser: Any, web_base: str, page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime
) -> None:
    from kopilka.services import users

    shop = await make_shop()
    owner = await make_user("owner", shop, locale="ru")
    worker = await make_user("marketer", shop, name="Mark Marketer")
    # The marketer is signed in in a browser of their own.
    other = await browser.new_context(base_url=web_base)
    theirs = await other.new_page()
    try:
        await login(theirs, worker)
        await expect(theirs.get_by_test_id("whoami")).to_contain_text("Mark Marketer")

        await login(page, owner, next_url=f"/admin/users/{worker.id}")
        # The owner works in Russian: the page is in Russian.
        await expect(page.get_by_text("Профиль и роль")).to_be_visible()
        page.once("dialog", lambda d: asyncio.ensure_future(d.accept(worker.login)))
        await page.get_by_role("button", name="Отключить пользователя").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Пользователь отключён, его сеансы завершены."
        )
        await theirs.goto("/admin/")
        await theirs.wait_for_url("**/admin/login**")

        await page.get_by_role("button", name="Включить пользователя").click()
        await expect(page.get_by_role("status")).to_have_text("Пользователь включён.")
        # Locked out by wrong passwords, then unlocked by the owner.
        for _ in range(users.LOCK_AFTER):
            with pytest.raises(ServiceError):
                await users.login(rt, worker.login, "wrong-password", ip=None, user_agent=None)
        await page.reload()
        await expect(page.locator(".toolbar .badge")).to_have_text("заблокирован")
        await shot(page, "org-user-locked-ru")
        await page.get_by_role("button", name="Разблокировать").click()
        await expect(page.get_by_role("status")).to_have_text("Вход разблокирован.")
        await login(theirs, worker)
        await expect(theirs.get_by_test_id("whoami")).to_contain_text("Mark Marketer")
        # A new password ends the session again; the new one works.
        await page.get_by_label("Новый пароль").fill("brand-new-password")
        await page.get_by_role("button", name="Сменить пароль").click()
        await expect(page.get_by_role("status")).to_contain_text("Пароль изменён")
        await theirs.goto("/admin/")
        await theirs.wait_for_url("**/admin/login**")
    finally:
        await other.close()
    views, _ = await users.list_users_page(rt, CLI, text=worker.login)
    assert views[0].user.active and not views[0].locked
