"""The programs area in a real browser: a marketer builds a promotion and sees it in the
simulator; a support user cannot change a program; a wrong value is shown next to its
field with everything typed kept; versions, diff and roll-back."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, expect
from sqlalchemy import select

from kopilka.domain.rules.model import validate_document
from kopilka.services import offline, programs
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.web.conftest import MakeUser, login, shot


def document(code: str, promotions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "code": code,
        "name": "Coffee House",
        "type": "bonus",
        "points": {"earn_percent": "5", "burn_max_percent": "30"},
        "tiers": {
            "qualify_by": "spend",
            "levels": [
                {"code": "base", "name": "Base", "threshold": "0"},
                {"code": "gold", "name": "Gold", "threshold": "10000", "earn_percent": "7"},
            ],
        },
        "categories": [
            {"code": "coffee", "name": "Coffee"},
            {"code": "tea", "name": "Tea"},
        ],
        "segments": {"staff": {"tag": ["staff"]}},
        "promotions": promotions or [],
    }


TEA = {
    "id": "tea5",
    "name": "Tea Tuesday",
    "when": {"weekday": ["tue"]},
    "lines": {"category": ["tea"]},
    "effects": [{"kind": "line_discount", "percent": "5"}],
    "priority": 5,
}


async def setup_program(rt: Runtime, shop: Any, promotions: list[dict[str, Any]] | None = None):
    doc = validate_document(document(shop.code, promotions))
    return await programs.do_apply(rt, doc, author="setup")


async def csrf_of(page: Page) -> str:
    token: str = await page.evaluate(
        "JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']"
    )
    return token


async def test_a_marketer_creates_a_promotion_and_sees_it_in_the_simulator(
    page: Page, make_user: MakeUser, make_shop, rt: Runtime
) -> None:
    shop = await make_shop()
    await setup_program(rt, shop, [TEA])
    who = await make_user("marketer", shop, name="Mia Marketer")
    await login(page, who, next_url="/admin/programs")
    await shot(page, "programs-list")
    await page.get_by_role("link", name=shop.code).click()
    await expect(page.get_by_role("heading", name=re.compile("Coffee House"))).to_be_visible()
    await page.get_by_role("button", name="New promotion").click()

    await page.get_by_label("Code (id)").fill("gold-coffee")
    await page.get_by_label("Name", exact=True).fill("Gold coffee")
    effect = page.locator("#e-rows [data-row]").first
    await effect.get_by_label("Percent", exact=True).fill("10")
    # A condition: the customer's tier.
    await page.get_by_role("button", name="Add a condition").click()
    cond = page.locator("#c-rows [data-row]").last
    await cond.get_by_label("Condition").select_option("tier")
    await cond.get_by_label("Values, comma-separated").fill("gold")
    # The lines it applies to: the coffee category.
    await page.get_by_role("button", name="Add a line filter").click()
    lines = page.locator("#l-rows [data-row]").last
    await lines.get_by_label("Condition").select_option("category")
    await lines.get_by_label("Values, comma-separated").fill("coffee")
    await page.get_by_role("group", name="Weekdays (none: every day)").get_by_label("sat").check()
    await page.get_by_role("group", name="Weekdays (none: every day)").get_by_label("sun").check()
    # The preview follows the form as it is typed.
    await expect(page.get_by_test_id("preview-en")).to_have_text(
        "10% off Coffee on weekends for Gold members."
    )
    await expect(page.get_by_test_id("preview-ru")).to_have_text(
        "Скидка 10% на Coffee по выходным для уровня Gold."
    )
    await shot(page, "programs-promotion-form")
    # Every day for the simulator's sake: the weekend is only for the preview's words.
    await page.get_by_role("group", name="Weekdays (none: every day)").get_by_label("sat").uncheck()
    await page.get_by_role("group", name="Weekdays (none: every day)").get_by_label("sun").uncheck()
    await page.get_by_role("button", name="Save promotion").click()
    await expect(page.get_by_role("status")).to_have_text("Promotion gold-coffee saved.")
    await expect(page.get_by_test_id("preview-en")).to_have_text("10% off Coffee for Gold members.")
    await shot(page, "programs-promotion")

    # The program's list of promotions shows it, active.
    await page.goto(f"/admin/programs/{shop.code}")
    row = page.locator("table.promotions tbody tr", has_text="Gold coffee")
    await expect(row).to_contain_text("active")
    await expect(row).to_contain_text("Discount on each line")
    await shot(page, "programs-program")

    # The simulator uses the version just saved (no waiting for the program cache).
    await page.get_by_role("link", name="Simulator").first.click()
    await page.get_by_label("SKU").first.fill("LATTE")
    await page.get_by_label("Category").first.fill("coffee")
    await page.get_by_label("Price, ₽").first.fill("two hundred")
    await page.get_by_label("Tier").select_option("gold")
    await page.get_by_role("button", name="Calculate").click()
    await expect(page.locator("#line0_price-error")).to_be_visible()
    await expect(page.get_by_label("SKU").first).to_have_value("LATTE")
    await page.get_by_label("Price, ₽").first.fill("200")
    # A real customer that does not exist is named at the identifier.
    await page.get_by_label("A real customer").check()
    await page.get_by_label("Card, phone or QR").fill("0000000000000")
    await page.get_by_role("button", name="Calculate").click()
    await expect(page.locator("#identifier-error")).to_have_text("no customer with this identifier")
    await page.get_by_label("Described").check()
    await page.get_by_role("button", name="Calculate").click()
    await expect(page.get_by_test_id("total-discount")).to_have_text("20.00 ₽")
    why = page.locator("tr[data-promotion=gold-coffee]")
    await expect(why).to_contain_text("applied")
    await expect(why).not_to_contain_text("not applied")
    await expect(why).to_contain_text("20.00 ₽")
    await expect(page.locator("tr[data-promotion=tea5]")).to_contain_text("not applied")
    await shot(page, "programs-simulator")

    # A Base member's basket does not qualify, and the page says why.
    await page.get_by_label("Tier").select_option("base")
    await page.get_by_role("button", name="Calculate").click()
    await expect(page.get_by_test_id("total-discount")).to_have_text("0.00 ₽")
    await expect(why).to_contain_text("not applied")
    await expect(why).to_contain_text("tier")
    # What was typed is kept.
    await expect(page.get_by_label("SKU").first).to_have_value("LATTE")
    # Usable at tablet width: the receipt and the reasons stay on the page.
    await page.set_viewport_size({"width": 800, "height": 1000})
    await expect(page.get_by_role("button", name="Calculate")).to_be_visible()
    await shot(page, "programs-simulator-tablet")

    # Saving was audited with who did it.
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(t.audit_log.c.action, t.audit_log.c.actor_name).where(
                    t.audit_log.c.program_id == shop.program_id
                )
            )
        ).all()
    assert ("promotion.set", "Mia Marketer") in [tuple(r) for r in rows]


async def test_a_support_user_cannot_change_a_program(
    page: Page, make_user: MakeUser, make_shop, rt: Runtime
) -> None:
    shop = await make_shop()
    version = await setup_program(rt, shop, [TEA])
    key = await offline.do_rotate_keys(rt, program_id=shop.program_id)
    who = await make_user("support", shop)
    await login(page, who, next_url=f"/admin/programs/{shop.code}")
    await expect(page.get_by_test_id("read-only")).to_be_visible()
    # the offline burn public key, for whoever sets tills up by hand
    await expect(page.get_by_test_id("offline-keys")).to_contain_text(key.public_key)
    await expect(page.get_by_role("button", name="New promotion")).to_have_count(0)
    await page.get_by_role("link", name="Tea Tuesday").click()
    await expect(page.get_by_test_id("preview-en")).to_contain_text("5% off Tea on Tue.")
    await expect(page.get_by_role("button", name="Save promotion")).to_have_count(0)
    await expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    await expect(page.get_by_label("Name", exact=True)).to_be_disabled()
    await shot(page, "programs-read-only")
    # A direct POST, with a valid CSRF token, is refused.
    token = await csrf_of(page)
    url = f"/admin/programs/{shop.code}/promotions/tea5"
    resp = await page.request.post(
        url, form={"csrf": token, "name": "Hacked", "e0_kind": "line_discount", "e0_percent": "90"}
    )
    assert resp.status == 403
    rollback = {"csrf": token, "version": "1", "confirm": "1"}
    resp = await page.request.post(f"/admin/programs/{shop.code}/rollback", form=rollback)
    assert resp.status == 403
    resp = await page.request.get(f"/admin/programs/{shop.code}/promotions/new")
    assert resp.status == 403
    current, doc = await programs.current(rt, shop.code)
    assert current == version and doc["promotions"][0]["name"] == "Tea Tuesday"


async def test_a_wrong_value_is_shown_next_to_its_field_and_the_form_keeps_what_was_typed(
    page: Page, make_user: MakeUser, make_shop, rt: Runtime
) -> None:
    shop = await make_shop()
    version = await setup_program(rt, shop, [TEA])
    who = await make_user("marketer", shop)
    await login(page, who, next_url=f"/admin/programs/{shop.code}/promotions/tea5")
    await page.get_by_label("Name", exact=True).fill("Tea Tuesday, bigger")
    await page.get_by_label("Description").fill("Half the price, almost")
    effect = page.locator("#e-rows [data-row]").first
    await effect.get_by_label("Percent", exact=True).fill("150")
    await page.get_by_label("Budget, ₽").fill("50000")
    await page.get_by_role("button", name="Save promotion").click()
    percent = page.locator("#e-rows [data-row]").first.get_by_label("Percent", exact=True)
    await expect(page.locator("#e0_percent-error")).to_have_text("must be between 0 and 100")
    await expect(percent).to_have_attribute("aria-invalid", "true")
    await expect(percent).to_have_value("150")
    await expect(page.get_by_label("Name", exact=True)).to_have_value("Tea Tuesday, bigger")
    await expect(page.get_by_label("Description")).to_have_value("Half the price, almost")
    await expect(page.get_by_label("Budget, ₽")).to_have_value("50000")
    await expect(page.locator("#l-rows [data-row]").first.get_by_label("Condition")).to_have_value(
        "category"
    )
    await shot(page, "programs-promotion-error")
    assert (await programs.current(rt, shop.code))[0] == version
    # A reference to a tier that does not exist is named at its row too.
    await percent.fill("15")
    await page.get_by_role("button", name="Add a condition").click()
    cond = page.locator("#c-rows [data-row]").last
    await cond.get_by_label("Condition").select_option("tier")
    await cond.get_by_label("Values, comma-separated").fill("platinum")
    await page.get_by_role("button", name="Save promotion").click()
    await expect(page.locator("#c-rows [data-row]").last.locator("small.error")).to_have_text(
        "unknown tier 'platinum'"
    )
    await expect(page.get_by_label("Name", exact=True)).to_have_value("Tea Tuesday, bigger")


async def test_versions_show_a_diff_and_a_roll_back_asks_for_the_number(
    page: Page, make_user: MakeUser, make_shop, rt: Runtime
) -> None:
    shop = await make_shop()
    first = await setup_program(rt, shop, [TEA])
    changed = {**TEA, "effects": [{"kind": "line_discount", "percent": "7"}]}
    await programs.do_set_promotion(rt, shop.code, changed, author="Mia")
    who = await make_user("marketer", shop, name="Max Marketer")
    await login(page, who, next_url=f"/admin/programs/{shop.code}/versions")
    await page.get_by_label(f"From {first}", exact=True).check()
    await page.get_by_label(f"To {first + 1}", exact=True).check()
    await page.get_by_role("button", name="Compare").click()
    diff = page.get_by_role("region", name="Changes")
    await expect(diff).to_contain_text("promotions[tea5].effects[0].percent")
    await expect(diff).to_contain_text("5 → 7")
    await shot(page, "programs-versions")
    # A wrong confirmation is refused.
    form = page.get_by_role("form", name="Roll back")
    await form.get_by_label("Version to roll back to").fill(str(first))
    await form.get_by_label("Type the version number again to confirm").fill("99")
    await form.get_by_role("button", name="Roll back").click()
    await expect(page.get_by_role("status")).to_contain_text(f"type {first} to confirm")
    assert (await programs.current(rt, shop.code))[0] == first + 1
    await form.get_by_label("Version to roll back to").fill(str(first))
    await form.get_by_label("Type the version number again to confirm").fill(str(first))
    await form.get_by_role("button", name="Roll back").click()
    await expect(page.get_by_role("status")).to_have_text(
        f"Rolled back to version {first}: now version {first + 2}."
    )
    await expect(page.locator("table.versions")).to_contain_text("rollback to version")
    await expect(page.locator("table.versions")).to_contain_text("Max Marketer")
    version, doc = await programs.current(rt, shop.code)
    assert version == first + 2
    assert doc["promotions"][0]["effects"][0]["percent"] == "5"
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(t.audit_log.c.actor_name, t.audit_log.c.after).where(
                    t.audit_log.c.action == "program.rollback",
                    t.audit_log.c.program_id == shop.program_id,
                )
            )
        ).one()
    assert row.actor_name == "Max Marketer"


async def test_a_promotion_can_be_edited_as_yaml_and_the_page_speaks_russian(
    page: Page, make_user: MakeUser, make_shop, rt: Runtime
) -> None:
    shop = await make_shop()
    await setup_program(rt, shop, [TEA])
    who = await make_user("marketer", shop, locale="ru")
    await login(page, who, next_url=f"/admin/programs/{shop.code}/promotions/tea5")
    await expect(page.get_by_test_id("preview-ru")).to_have_text("Скидка 5% на Tea по дням: вт.")
    await page.get_by_text("Править как YAML/JSON").click()
    yaml_box = page.get_by_label("Вся акция в YAML или JSON")
    await expect(yaml_box).to_contain_text("id: tea5")
    await yaml_box.fill("name: [unclosed")
    await page.get_by_role("button", name="Сохранить из YAML/JSON").click()
    await expect(page.locator("details.advanced small.error")).to_contain_text("YAML")
    await expect(yaml_box).to_have_value("name: [unclosed")
    await yaml_box.fill(
        "name: Tea every day\n"
        "lines: {category: [tea]}\n"
        "effects:\n  - {kind: earn_multiplier, factor: 3}\n"
    )
    await page.get_by_role("button", name="Сохранить из YAML/JSON").click()
    await expect(page.get_by_role("status")).to_have_text("Акция tea5 сохранена.")
    await expect(page.get_by_test_id("preview-ru")).to_have_text("Баллы ×3 на Tea.")
    await expect(page.get_by_test_id("preview-en")).to_have_text("×3 points on Tea.")
    # The form shows the new effect in its row.
    effect = page.locator("#e-rows [data-row]").first
    await expect(effect.get_by_label("Действие")).to_have_value("earn_multiplier")
    await expect(effect.get_by_label("Множитель", exact=True)).to_have_value("3")
    await page.goto(f"/admin/programs/{shop.code}")
    await expect(page.locator("table.promotions")).to_contain_text("действует")
    await shot(page, "programs-program-ru")


async def test_an_owner_edits_the_tiers_in_the_program_document(
    page: Page, make_user: MakeUser, make_shop, rt: Runtime
) -> None:
    shop = await make_shop()
    version = await setup_program(rt, shop, [TEA])
    who = await make_user("owner", shop, name="Olga Owner")
    await login(page, who, next_url=f"/admin/programs/{shop.code}")
    await page.get_by_role("button", name="Edit as YAML").click()
    box = page.get_by_label("Program document (YAML or JSON)")
    text = await box.input_value()
    assert "threshold: '10000'" in text
    await box.fill(text.replace("threshold: '10000'", "threshold: '-5'"))
    await page.get_by_role("button", name="Save as a new version").click()
    await expect(page.get_by_role("alert")).to_contain_text("tiers.levels[1].threshold")
    await expect(box).to_contain_text("threshold: '-5'")  # what was typed stays
    await shot(page, "programs-document-error")
    await box.fill(text.replace("threshold: '10000'", "threshold: '20000'"))
    await page.get_by_role("button", name="Save as a new version").click()
    await expect(page.get_by_role("status")).to_have_text(f"Saved as version {version + 1}.")
    await expect(page.locator("table.tiers")).to_contain_text("20,000")
    async with rt.engine.connect() as conn:
        actions = (
            (
                await conn.execute(
                    select(t.audit_log.c.action).where(
                        t.audit_log.c.program_id == shop.program_id,
                        # the test's console users are created and log in under the program
                        t.audit_log.c.action.not_in(("user.create", "login")),
                    )
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["program.apply"]
