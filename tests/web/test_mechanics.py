"""The console's coupons, gift cards, draws and rewards in a real browser, on both
databases: what a marketer does, what the till sees afterwards, what a read-only
analyst may not do."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openpyxl
from playwright.async_api import Page, expect
from sqlalchemy import insert, select

from kopilka.services import coupons, draws, giftcards, rewards
from kopilka.services.runtime import Runtime, Terminal, hash_key
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from tests.conftest import Clock, Shop, receipt
from tests.web.conftest import MakeUser, login, shot


async def stored_codes(rt: Runtime, shop: Shop, series: str) -> set[str]:
    s, c = t.coupon_series.c, t.coupons.c
    async with rt.engine.connect() as conn:
        return set(
            (
                await conn.execute(
                    select(c.code)
                    .join(t.coupon_series, s.id == c.series_id)
                    .where(s.program_id == shop.program_id, s.code == series)
                )
            ).scalars()
        )


async def audit_actions(rt: Runtime, shop: Shop) -> list[tuple[str, str, str]]:
    a = t.audit_log.c
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(a.action, a.object_id, a.actor_name)
                .where(a.program_id == shop.program_id)
                # the test's console users are created and log in under the program too
                .where(a.action.not_in(("user.create", "login")))
                .order_by(a.id)
            )
        ).all()
    return [(r.action, r.object_id, r.actor_name) for r in rows]


async def download(page: Page, link: str) -> bytes:
    async with page.expect_download() as info:
        await page.get_by_role("button", name=link).click()
    dl = await info.value
    path = await dl.path()
    assert path is not None
    return await asyncio.to_thread(Path(path).read_bytes)


async def test_a_marketer_creates_a_series_exports_it_and_a_blocked_code_is_refused_at_the_till(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime, web_base: str
) -> None:
    shop = await make_shop()
    who = await make_user("marketer", shop, name="Mary Marketer")
    await login(page, who, next_url="/admin/coupons")
    await page.get_by_role("button", name="New series").click()
    await page.get_by_label("Series code").fill("spring26")
    await page.get_by_label("Name", exact=True).fill("Spring coffee")
    await page.get_by_label("How many codes").fill("12")
    await page.get_by_label("Uses per code").fill("1")
    await shot(page, "mechanics-coupons-new")
    await page.get_by_role("button", name="Create series").click()

    await expect(page).to_have_url(re.compile(r"/admin/coupons/SPRING26$"))
    await expect(page.get_by_role("status")).to_contain_text("Series created: SPRING26 · 12")
    await expect(page.get_by_test_id("issued")).to_have_text("12")
    await expect(page.locator("tbody tr")).to_have_count(12)
    await shot(page, "mechanics-coupons-series")
    codes = await stored_codes(rt, shop, "SPRING26")
    assert len(codes) == 12
    # Sorting happens on the server: the heading sorts the other way round.
    await page.get_by_role("link", name=re.compile("^Code")).click()
    await expect(page).to_have_url(re.compile("sort=code&dir=desc"))
    top = (await page.locator("tbody tr td code").first.inner_text()).replace("-", "")
    assert top == max(codes)

    # Both downloads list exactly the database's codes.
    ws = openpyxl.load_workbook(io.BytesIO(await download(page, "Export XLSX"))).active
    assert [c.value for c in ws[1]][:3] == ["code", "series", "state"]
    assert {r[0].value.replace("-", "") for r in ws.iter_rows(min_row=2)} == codes
    text = (await download(page, "Export CSV")).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["code"].replace("-", "") for r in rows} == codes
    assert {r["state"] for r in rows} == {"active"}

    # Block one code: the till's coupon check refuses it from now on.
    first = (await page.locator("tbody tr td code").first.inner_text()).strip()
    await page.get_by_role("button", name=f"Block {first}").click()
    await expect(page.get_by_role("status")).to_contain_text(f"Coupon blocked: {first}")
    await expect(page.get_by_test_id("blocked")).to_have_text("1")
    async with httpx.AsyncClient(base_url=web_base) as till:
        r = await till.get(f"/api/pos/v1/coupons/{first}", headers=shop.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["valid"], r.json()["reason"]) == (False, "coupon_blocked")

    # The whole series: a destructive action asks for the series code.
    page.once("dialog", lambda d: d.accept("wrong"))
    await page.get_by_role("button", name="Block the whole series").click()
    await expect(page.get_by_test_id("blocked")).to_have_text("1")  # nothing was sent
    page.once("dialog", lambda d: d.accept("SPRING26"))
    await page.get_by_role("button", name="Block the whole series").click()
    await expect(page.get_by_role("status")).to_contain_text("Codes blocked: 11")
    await expect(page.get_by_test_id("blocked")).to_have_text("12")
    await page.get_by_label("State").select_option("blocked")
    await expect(page).to_have_url(re.compile(r"state=blocked"))

    assert await audit_actions(rt, shop) == [
        ("coupon_series.create", "SPRING26", "Mary Marketer"),
        ("coupon.block", first.replace("-", ""), "Mary Marketer"),
        ("coupon_series.block", "SPRING26", "Mary Marketer"),
    ]
    await page.goto("/admin/coupons")
    await expect(page.get_by_role("link", name="SPRING26")).to_be_visible()
    await shot(page, "mechanics-coupons")


async def test_a_form_error_names_the_field_and_keeps_what_was_typed(
    page: Page, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    who = await make_user("marketer", shop)
    await login(page, who, next_url="/admin/coupons/new")
    await page.get_by_label("Series code").fill("AUTUMN")
    await page.get_by_label("Name", exact=True).fill("Autumn tea")
    await page.get_by_label("How many codes").fill("0")
    await page.get_by_label("Valid from").fill("2026-10-01T00:00")
    await page.get_by_label("Valid until").fill("2026-09-01T00:00")
    await page.get_by_role("button", name="Create series").click()

    await expect(page.locator("#count-error")).to_have_text("From 1 to 100000")
    await expect(page.get_by_label("Name", exact=True)).to_have_value("Autumn tea")
    await expect(page.get_by_label("Series code")).to_have_value("AUTUMN")
    await page.get_by_label("How many codes").fill("5")
    await page.get_by_role("button", name="Create series").click()
    await expect(page.locator("#valid_until-error")).to_have_text("Must be after the start")
    await expect(page.get_by_label("Valid until")).to_have_value("2026-09-01T00:00")
    await shot(page, "mechanics-coupons-new-error")


async def test_an_analyst_sees_no_changing_buttons_and_a_direct_post_is_refused(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    made = await coupons.do_create_series(
        rt, program_code=shop.code, code="READONLY", name="Read only", count=3
    )
    who = await make_user("analyst", shop)
    await login(page, who, next_url="/admin/coupons/READONLY")

    await expect(page.get_by_test_id("issued")).to_have_text("3")
    await expect(page.get_by_role("button", name=re.compile("^Block"))).to_have_count(0)
    await expect(page.get_by_role("button", name="Export XLSX")).to_be_visible()
    await page.goto("/admin/coupons")
    await expect(page.get_by_role("button", name="New series")).to_have_count(0)
    for path in ("/admin/gift-cards", "/admin/draws", "/admin/rewards"):
        await page.goto(path)
        await expect(page.get_by_role("button", name=re.compile("^New"))).to_have_count(0)
    # Even with a valid CSRF token (the logout form's), the role may not change anything.
    token = await page.locator("input[name=csrf]").first.get_attribute("value")
    r = await page.request.post(
        f"/admin/coupons/READONLY/codes/{made[0]}/block", form={"csrf": token or ""}
    )
    assert r.status == 403
    r = await page.request.get("/admin/coupons/new")
    assert r.status == 403
    listed, _ = await coupons.list_codes(rt, program_id=shop.program_id, series="READONLY")
    assert {x.state for x in listed} == {"active"}


async def test_a_gift_card_is_blocked_with_a_reason_and_the_till_sees_it(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime, web_base: str
) -> None:
    shop = await make_shop()
    who = await make_user("marketer", shop, name="Mary Marketer")
    await login(page, who, next_url="/admin/gift-cards/new")
    await page.get_by_label("Series code").fill("GIFT1000")
    await page.get_by_label("Name", exact=True).fill("Gift 1000")
    await page.get_by_label("Nominal, roubles").fill("1000")
    await page.get_by_label("How many cards").fill("3")
    await shot(page, "mechanics-giftcards-new")
    await page.get_by_role("button", name="Create series").click()
    await expect(page.get_by_role("alert")).to_contain_text("shown only now")
    numbers = [n.strip() for n in await page.locator("tbody tr td:first-child").all_inner_texts()]
    assert len(numbers) == 3
    await shot(page, "mechanics-giftcards-pins")

    term = await rt.terminal_by_key(shop.key)
    assert term is not None
    await giftcards.do_activate(rt, term, numbers[0])
    await page.goto("/admin/gift-cards")
    await expect(page.get_by_test_id("outstanding")).to_have_text("1,000.00 ₽")
    await shot(page, "mechanics-giftcards")
    await page.get_by_role("link", name="GIFT1000").click()
    await page.get_by_label("State").select_option("active")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await shot(page, "mechanics-giftcards-cards")
    await page.get_by_role("link", name=numbers[0]).click()
    await expect(page.get_by_test_id("balance")).to_have_text("1,000.00 ₽")

    await page.get_by_role("button", name="Block the card").click()
    await expect(page.locator("#reason-error")).to_have_text("Say why (at least 3 characters)")
    await page.get_by_label("Reason").fill("lost by the customer")
    await page.get_by_role("button", name="Block the card").click()
    await expect(page.get_by_role("status")).to_have_text("Gift card blocked")
    await expect(page.get_by_test_id("card-state")).to_have_text("blocked")
    await shot(page, "mechanics-giftcards-card")
    async with httpx.AsyncClient(base_url=web_base) as till:
        r = await till.get(f"/api/pos/v1/gift-cards/{numbers[0]}", headers=shop.headers)
    assert (r.status_code, r.json()["state"]) == (200, "blocked")

    await page.get_by_label("Reason").fill("found again")
    await page.get_by_role("button", name="Unblock the card").click()
    await expect(page.get_by_test_id("card-state")).to_have_text("active")
    await expect(page.locator("tbody tr")).to_have_count(3)  # activate, block, unblock
    await page.goto("/admin/gift-cards/cards?series=GIFT1000")
    ws = openpyxl.load_workbook(io.BytesIO(await download(page, "Export XLSX"))).active
    assert sorted(r[0].value for r in ws.iter_rows(min_row=2)) == sorted(numbers)
    assert [a[0] for a in await audit_actions(rt, shop)] == [
        "gift_card_series.create",
        "gift_card.block",
        "gift_card.unblock",
    ]


MARCH = datetime(2025, 3, 1, tzinfo=UTC)


async def test_draws_and_rewards_pages_show_their_data_and_act(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    clock.set(MARCH - timedelta(days=1))
    shop = await make_shop(earn_percent="0")
    ann = await shop.customer(500, first_name="Anna", last_name="Smirnova")
    await draws.do_create_draw(
        rt,
        program_code=shop.code,
        code="MARCH",
        name="March draw",
        period_start=MARCH,
        period_end=MARCH + timedelta(days=31),
        rules={
            "tickets_per_purchase": 0,
            "tickets_per_amount": "500",
            "prizes": [{"points": "100"}],
        },
    )
    await draws.do_commit(rt, "MARCH", program_code=shop.code)
    clock.set(MARCH + timedelta(days=3))
    assert (await shop.post("/purchases", receipt("m1", ann.card, ("a", 1, "1200")))).is_success
    clock.frozen = None
    bob = await shop.customer(500, first_name="Boris", last_name="Ivanov")
    await rewards.do_add_reward(
        rt, program_id=shop.program_id, code="MUG", name="Mug", price_points=Decimal("50")
    )
    order = await rewards.do_order(
        rt,
        program_id=shop.program_id,
        account_id=bob.account_id,
        reward_code="MUG",
        idempotency_key=f"o-{shop.program_id}",
    )
    who = await make_user("marketer", shop)
    await login(page, who, next_url="/admin/draws")

    await page.get_by_role("button", name="New draw").click()
    await page.get_by_label("Draw code").fill("SUMMER")
    await page.get_by_label("Name", exact=True).fill("Summer draw")
    await page.get_by_label("Purchases from").fill("2099-06-01T00:00")
    await page.get_by_label("Purchases until (exclusive)").fill("2099-09-01T00:00")
    await page.get_by_label("Prizes, one a line, from the main prize down").fill(
        "1:points:5000\n3:goods:Coffee machine"
    )
    await shot(page, "mechanics-draws-new")
    await page.get_by_role("button", name="Create draw").click()
    await expect(page.get_by_test_id("draw-state")).to_have_text("open")
    await page.get_by_role("button", name="Commit the seed").click()
    await expect(page.get_by_test_id("seed-hash")).to_have_text(re.compile("^[0-9a-f]{64}$"))
    await page.goto("/admin/draws")
    await expect(page.locator("tbody tr")).to_have_count(2)
    await shot(page, "mechanics-draws")
    await page.get_by_role("link", name="MARCH").click()
    # Committed, period over: the tickets so far are what the run will count.
    await expect(page.get_by_test_id("draw-state")).to_have_text("seed committed")
    await expect(page.get_by_test_id("tickets")).to_have_text("2")
    page.once("dialog", lambda d: d.accept("MARCH"))
    await page.get_by_role("button", name="Run the draw").click()
    await expect(page.get_by_role("status")).to_have_text("The draw has been run")
    await expect(page.get_by_test_id("draw-state")).to_have_text("drawn")
    await expect(page.locator("tbody tr").first).to_contain_text("Anna S.")
    await shot(page, "mechanics-draws-draw")
    data = await download(page, "Export CSV")
    winners = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [(w["place"], w["customer_id"], w["points"]) for w in winners] == [
        ("1", str(ann.customer_id), "100.00")
    ]

    await page.get_by_role("link", name="Rewards").first.click()
    await page.get_by_role("button", name="New reward").click()
    await page.get_by_label("Code").fill("TOTE")
    await page.get_by_label("Name", exact=True).fill("Tote bag")
    await page.get_by_label("Price, points").fill("abc")
    await page.get_by_label("Stock").fill("10")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#price_points-error")).to_have_text("A number, such as 500 or 99.90")
    await expect(page.get_by_label("Stock")).to_have_value("10")
    await shot(page, "mechanics-rewards-form")
    await page.get_by_label("Price, points").fill("300")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Reward added: Tote bag")
    await expect(page.locator("tbody tr")).to_have_count(2)
    await shot(page, "mechanics-rewards")
    await page.get_by_role("button", name="Orders").click()
    await expect(page.locator("tbody tr")).to_have_count(1)
    await shot(page, "mechanics-rewards-orders")
    await page.get_by_role("button", name=f"Issue {order.id}").click()
    await expect(page.get_by_role("status")).to_contain_text(f"Order issued: {order.id}")
    await expect(page.locator("tbody tr").first).to_contain_text("handed over")
    assert (await rewards.order_status(rt, order.id)).state == "issued"
    assert [(a, o) for a, o, _ in await audit_actions(rt, shop)] == [
        ("draw.create", "SUMMER"),
        ("draw.commit", "SUMMER"),
        ("draw.run", "MARCH"),
        ("reward.create", "TOTE"),
        ("reward_order.issue", str(order.id)),
    ]


async def test_a_partner_user_reads_the_pages_in_russian_on_a_tablet_without_changing_anything(
    page: Page, make_user: MakeUser, make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    await coupons.do_create_series(rt, program_code=shop.code, code="TAB", name="Планшет", count=3)
    cards = await giftcards.do_create_series(
        rt, shop.code, code="GTAB", name="Карта", nominal=Decimal("500"), count=3
    )
    own, other = await rt.terminal_by_key(shop.key), await other_partners_till(rt, shop)
    assert own is not None and other is not None
    await giftcards.do_activate(rt, own, cards[0][0])
    await giftcards.do_activate(rt, other, cards[1][0])
    who = await make_user("partner", shop, locale="ru", partner_id=shop.partner_id)
    await page.set_viewport_size({"width": 800, "height": 1000})
    await login(page, who, next_url="/admin/coupons")

    await expect(page.get_by_role("heading", name="Серии купонов")).to_be_visible()
    await page.get_by_role("link", name="TAB").click()
    await expect(page.get_by_test_id("issued")).to_have_text("3")
    await expect(page.get_by_role("button", name="Выгрузить XLSX")).to_be_visible()
    await expect(page.get_by_role("button", name=re.compile("Заблокировать"))).to_have_count(0)
    # Nothing overflows the tablet's width.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 800
    await shot(page, "mechanics-coupons-series-tablet-ru")
    await page.goto("/admin/gift-cards/cards?state=issued")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(page.locator("tbody tr").first).to_contain_text("не продана")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 800
    # A card is the program's, but a partner sees only the movements at its own tills.
    await page.goto(f"/admin/gift-cards/cards/{cards[0][0]}")
    await expect(page.locator("tbody tr")).to_have_text(re.compile("продажа"))
    await page.goto(f"/admin/gift-cards/cards/{cards[1][0]}")
    await expect(page.get_by_test_id("balance")).to_contain_text("500,00")
    await expect(page.locator("tbody tr")).to_have_text("Движений нет.")
    await expect(page.get_by_role("button", name=re.compile("Заблокировать"))).to_have_count(0)


async def other_partners_till(rt: Runtime, shop: Shop) -> Terminal | None:
    """A second partner of the shop's program, with a store and a till."""
    key = f"kp_test_{secrets.token_hex(12)}"
    async with rt.engine.begin() as conn:
        partner = await insert_id(
            conn, t.partners, {"program_id": shop.program_id, "code": "other", "name": "Other"}
        )
        store = await insert_id(
            conn,
            t.stores,
            {
                "program_id": shop.program_id,
                "partner_id": partner,
                "code": f"O{secrets.token_hex(3)}",
                "name": "Other store",
                "city": "Казань",
            },
        )
        await conn.execute(
            insert(t.terminals),
            {
                "program_id": shop.program_id,
                "store_id": store,
                "name": "till",
                "key_hash": hash_key(key),
                "key_prefix": key[:10],
                "created_at": rt.now(),
            },
        )
    return await rt.terminal_by_key(key)
