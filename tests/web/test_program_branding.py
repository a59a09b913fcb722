"""Issue 9 in a real browser: a marketer sets a program's points' name, colour, logo and
support contacts on the settings page (a bad colour is shown at its field, what was typed
kept); two programs' cabinets then look different, each with its own unit.  Both
databases.  KOPILKA_SCREENSHOTS=docs/img saves the pictures the docs show."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import orjson
from PIL import Image, ImageDraw
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from kopilka.services import member_auth, program_profile
from kopilka.services.audit import CLI
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Member, Shop
from tests.web.conftest import MakeUser, login, shot

PHONE_WIDTH = {"width": 390, "height": 760}


def logo_png() -> bytes:
    """A small logo: a white circle on violet."""
    img = Image.new("RGB", (96, 96), (123, 31, 162))
    ImageDraw.Draw(img).ellipse((18, 18, 78, 78), fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


async def member_token(rt: Runtime, shop: Shop, m: Member) -> str:
    """A cabinet session as after the SMS code (the code read from the outbox)."""
    await member_auth.request_code(rt, shop.program_id, m.phone)
    async with rt.engine.connect() as conn:
        payload = (
            (
                await conn.execute(
                    select(t.outbox.c.payload)
                    .where(t.outbox.c.program_id == shop.program_id, t.outbox.c.topic == "sms.send")
                    .order_by(t.outbox.c.id.desc())
                )
            )
            .scalars()
            .first()
        )
    token, _ = await member_auth.verify_code(
        rt, shop.program_id, m.phone, orjson.loads(payload)["code"]
    )
    return token


async def cabinet_page(browser: Browser, base: str, token: str) -> Page:
    ctx = await browser.new_context(base_url=base, viewport=PHONE_WIDTH)
    ctx.set_default_timeout(15_000)
    await ctx.add_cookies(
        [
            {"name": "kopilka_member", "value": token, "url": base + "/my"},
            {"name": "kopilka_lang", "value": "ru", "url": base},
        ]
    )
    return await ctx.new_page()


async def test_two_programs_cabinets_carry_their_own_brand_and_unit(
    page: Page,
    browser: Browser,
    web_base: str,
    rt: Runtime,
    make_shop: Any,
    make_user: MakeUser,
    tmp_path: Path,
) -> None:
    miles, market = await make_shop(), await make_shop()
    marketer = await make_user("marketer", miles)
    logo = tmp_path / "logo.png"
    logo.write_bytes(logo_png())

    await login(page, marketer, next_url=f"/admin/programs/{miles.code}/settings")
    await page.get_by_label("Russian, 1 (балл, миля)").fill("миля")
    await page.get_by_label("Russian, 3 (балла, мили)").fill("мили")
    await page.get_by_label("Russian, 11 (баллов, миль)").fill("миль")
    await page.get_by_label("English, 1 (point)").fill("mile")
    await page.get_by_label("English, 3 (points)").fill("miles")
    await page.get_by_label("Name in the cabinet").fill("Мили Авиа")
    await page.get_by_label("Primary colour").fill("violet")
    await page.get_by_label("Support phone").fill("+7 800 555-35-35")
    await page.get_by_role("button", name="Save").click()

    colour = page.get_by_label("Primary colour")
    await expect(colour).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#primary_colour-error")).to_have_text(
        "must be #RRGGBB, e.g. #1E6FD9"
    )
    await expect(page.get_by_label("Name in the cabinet")).to_have_value("Мили Авиа")
    await colour.fill("#7B1FA2")
    await page.get_by_label("Logo").set_input_files(str(logo))
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Settings saved.")
    await expect(page.get_by_test_id("points-sample")).to_contain_text(
        "1 миля · 3 мили · 11 миль · 1 mile · 3 miles"
    )
    await expect(page.get_by_test_id("logo-preview")).to_be_visible()
    await shot(page, "program-settings")
    # the marketer of one program does not reach another's settings
    other = await page.goto(f"/admin/programs/{market.code}/settings")
    assert other is not None and other.status == 404

    await program_profile.do_update_settings(
        rt,
        market.code,
        {"brand_name": "Бонус-Маркет", "primary_colour": "#E65100",
         "support_email": "help@bonus-market.ru", "support_url": "https://bonus-market.ru/help"},
        actor=CLI,
    )  # fmt: skip
    a, b = await miles.customer(points=100), await market.customer(points=500)

    views = []
    for shop, m, name in ((miles, a, "cabinet-brand-miles"), (market, b, "cabinet-brand-market")):
        cab = await cabinet_page(browser, web_base, await member_token(rt, shop, m))
        await cab.goto(f"/my/{shop.code}/")
        await expect(cab.get_by_test_id("available")).to_be_visible()
        await shot(cab, name)
        views.append(cab)
    mp, bp = views

    await expect(mp.get_by_test_id("brand-name")).to_have_text("Мили Авиа")
    await expect(bp.get_by_test_id("brand-name")).to_have_text("Бонус-Маркет")
    await expect(mp.get_by_test_id("available")).to_have_text(re.compile(r"^100\s+миль$"))
    await expect(bp.get_by_test_id("available")).to_have_text(re.compile(r"^500\s+баллов$"))
    header = "el => getComputedStyle(el).backgroundColor"
    assert await mp.locator(".cab-top").evaluate(header) == "rgb(123, 31, 162)"
    assert await bp.locator(".cab-top").evaluate(header) == "rgb(230, 81, 0)"
    assert await mp.get_by_test_id("logo").evaluate("img => img.naturalWidth") == 96
    assert await bp.get_by_test_id("logo").count() == 0
    await expect(mp.get_by_test_id("support")).to_contain_text("+7 800 555-35-35")
    await expect(bp.get_by_test_id("support")).to_contain_text("help@bonus-market.ru")
    for p in views:
        await p.context.close()
