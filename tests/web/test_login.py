"""Signing in and out of the console in a real browser; lockout; the role's menu."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect
from sqlalchemy import select

from kopilka.services.runtime import Runtime
from kopilka.services.users import LOCK_AFTER
from kopilka.store import tables as t
from tests.web.conftest import MakeUser, login, shot


async def test_a_wrong_password_is_refused_and_the_login_stays_typed(
    page: Page, make_user: MakeUser, make_shop
) -> None:
    shop = await make_shop()
    who = await make_user("support", shop)
    await page.goto("/admin/")
    # Not signed in: the console sends the browser to the login page.
    await expect(page).to_have_url(re.compile(r"/admin/login\?next=/admin/"))
    await page.get_by_label("Логин").fill(who.login)
    await page.get_by_label("Пароль").fill("not-the-password")
    await page.locator("button[type=submit]").click()
    await expect(page.get_by_role("alert")).to_have_text("неверный логин или пароль")
    await expect(page.get_by_label("Логин")).to_have_value(who.login)
    await shot(page, "login-error")


async def test_signing_in_shows_the_menu_of_the_role_and_signing_out_ends_it(
    page: Page, make_user: MakeUser, make_shop
) -> None:
    shop = await make_shop()
    who = await make_user("support", shop, name="Sam Support")
    await login(page, who)
    await expect(page.get_by_test_id("whoami")).to_contain_text("Sam Support")
    menu = page.locator("aside.sidebar")
    await expect(menu.get_by_role("link", name="Customers")).to_be_visible()
    # Support has no users, audit log or program editing in its menu.
    await expect(menu.get_by_role("link", name="Users")).to_have_count(0)
    await expect(menu.get_by_role("link", name="Audit log")).to_have_count(0)
    await shot(page, "home")
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url("**/admin/login")
    await page.goto("/admin/")
    await page.wait_for_url("**/admin/login**")


async def test_repeated_failures_lock_the_login_and_the_audit_log_says_so(
    page: Page, make_user: MakeUser, make_shop, rt: Runtime
) -> None:
    shop = await make_shop()
    who = await make_user("marketer", shop)
    for _ in range(LOCK_AFTER):
        await page.goto("/admin/login")
        await page.get_by_label("Логин").fill(who.login)
        await page.get_by_label("Пароль").fill("wrong-password")
        await page.locator("button[type=submit]").click()
        await expect(page.get_by_role("alert")).to_be_visible()
    # Now even the right password is refused, with the reason.
    await page.goto("/admin/login")
    await page.get_by_label("Логин").fill(who.login)
    await page.get_by_label("Пароль").fill(who.password)
    await page.locator("button[type=submit]").click()
    await expect(page.get_by_role("alert")).to_contain_text("Слишком много неудачных попыток")
    async with rt.engine.connect() as conn:
        actions = (
            (
                await conn.execute(
                    select(t.audit_log.c.action)
                    .where(
                        t.audit_log.c.object_type == "user", t.audit_log.c.object_id == str(who.id)
                    )
                    .order_by(t.audit_log.c.id)
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["user.create"] + ["login.failed"] * (LOCK_AFTER - 1) + ["login.locked"]
