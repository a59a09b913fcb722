"""Browser tests: a real `kopilka serve` on the session's database, driven by Debian's
Chromium through Playwright (never a downloaded browser).

The server runs against the same database as the ``rt`` fixture (SQLite and
PostgreSQL), so a test sets its data up with services and then works in the browser as
a user would.  Each test gets a fresh browser context (no cookies).

The browser tests run on SQLite only (ADR 0033): what a page shows comes from the same
services the API and service tests prove on both databases, and a second Chromium pass
over PostgreSQL cost minutes of the 15-minute suite.  ``KOPILKA_BROWSER_PG=1`` runs them
on PostgreSQL too.  The console's in-process tests (no browser) still run on both.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from kopilka.services import users
from kopilka.services.audit import CLI
from kopilka.services.runtime import Runtime
from tests.conftest import Shop
from tests.processes import stop
from tests.services.conftest import _free_port, _wait_healthy

KOPILKA = str(Path(sys.executable).with_name("kopilka"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_SHOTS_DIR = os.environ.get("KOPILKA_SCREENSHOTS")
SHOTS = Path(_SHOTS_DIR) if _SHOTS_DIR else None
HAVE_CHROMIUM = os.path.exists(CHROMIUM)


@pytest.fixture(scope="session")
def web_base(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a `kopilka serve` on the session's database."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("web") / "server.log"
    env = {**os.environ, "KOPILKA_DB_POOL": "5"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [KOPILKA, "--db", db_url, "serve", "--port", str(port), "--workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_healthy(base, proc, log)
        yield base
    finally:
        stop(proc)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail(f"{CHROMIUM} is missing; the test command installs Debian's chromium")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


@pytest.fixture
async def context(browser: Browser, web_base: str) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(base_url=web_base, viewport={"width": 1366, "height": 900})
    ctx.set_default_timeout(15_000)
    yield ctx
    await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    p = await context.new_page()
    yield p
    await p.close()


@dataclass(frozen=True)
class Login:
    id: int
    login: str
    password: str
    name: str


MakeUser = Callable[..., Awaitable[Login]]


@pytest.fixture
def make_user(rt: Runtime) -> MakeUser:
    """A console user (random login) limited to a shop's program unless told otherwise."""

    async def make(
        role: str,
        shop: Shop | None = None,
        *,
        name: str = "",
        locale: str = "en",
        **scope: Any,
    ) -> Login:
        login = f"{role.replace('_', '-')}-{secrets.token_hex(4)}"
        password = "pw-" + secrets.token_hex(8)
        uid = await users.do_create_user(
            rt,
            CLI,
            login=login,
            name=name or f"Test {role}",
            password=password,
            role=role,
            locale=locale,
            program_id=shop.program_id if shop else None,
            **scope,
        )
        return Login(uid, login, password, name or f"Test {role}")

    return make


async def login(page: Page, who: Login, *, next_url: str = "/admin/") -> None:
    """Sign in through the login form, as a person would; lands on ``next_url``."""
    await page.goto("/admin/login?next=" + next_url)
    await page.get_by_label("Login").or_(page.get_by_label("Логин")).fill(who.login)
    await page.get_by_label("Password").or_(page.get_by_label("Пароль")).fill(who.password)
    await page.locator("button[type=submit]").click()
    await page.wait_for_url(f"**{next_url.split('?')[0]}*")


async def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot when KOPILKA_SCREENSHOTS names a folder (docs use them)."""
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


BROWSER_FIXTURES = {"web_base", "page", "context", "browser"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the browser tests' PostgreSQL pass unless KOPILKA_BROWSER_PG=1 (ADR 0033);
    left-out tests are deselected (reported as such), never skipped."""
    if os.environ.get("KOPILKA_BROWSER_PG") == "1":
        return
    web = Path(__file__).parent
    drop = [
        item
        for item in items
        if web in Path(str(item.fspath)).parents
        and "[pg" in item.nodeid
        and BROWSER_FIXTURES & set(getattr(item, "fixturenames", ()))
    ]
    if drop:
        config.hook.pytest_deselected(items=drop)
        gone = set(map(id, drop))
        items[:] = [item for item in items if id(item) not in gone]
