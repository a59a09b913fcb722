"""Editing promotions one at a time (services.program_editor), on both databases:
refusals name the field inside the promotion, changes are audited with their actor in
the version's transaction, destructive changes ask for a confirmation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from kopilka.domain.rules.model import validate_document
from kopilka.services import program_editor as editor
from kopilka.services import programs
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t


def doc(code: str, promotions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "code": code,
        "name": "Editor test",
        "tiers": {"levels": [{"code": "base", "name": "Base", "threshold": "0"}]},
        "categories": [{"code": "coffee", "name": "Coffee"}],
        "promotions": promotions,
    }


def promo(pid: str, percent: str = "10", **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "name": f"Promotion {pid}",
        "lines": {"category": ["coffee"]},
        "effects": [{"kind": "line_discount", "percent": percent}],
        **extra,
    }


def marketer(program_id: int | None = None, role: str = "marketer") -> Actor:
    return Actor("user", 7, "Mia Marketer", role=role, program_id=program_id)


async def audit_rows(rt: Runtime, program_id: int) -> list[tuple[str, str, str]]:
    a = t.audit_log
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(a.c.action, a.c.actor_name, a.c.object_id)
                .where(a.c.program_id == program_id)
                .order_by(a.c.id)
            )
        ).all()
    return [(r.action, r.actor_name, r.object_id) for r in rows]


async def test_saving_a_promotion_makes_a_version_and_an_audit_row(rt: Runtime, make_shop) -> None:
    shop = await make_shop()
    v0 = await programs.do_apply(rt, validate_document(doc(shop.code, [])), author="setup")
    who = marketer(shop.program_id)
    v1 = await editor.save_promotion(rt, who, shop.code, promo("a"), create=True)
    assert v1 == v0 + 1
    assert [p.author for p in await programs.versions(rt, shop.code)][-1] == "Mia Marketer"
    assert await audit_rows(rt, shop.program_id) == [("promotion.set", "Mia Marketer", shop.code)]
    # Creating the same id again is refused at the id; replacing it is fine.
    with pytest.raises(programs.ProgramError) as exc:
        await editor.save_promotion(rt, who, shop.code, promo("a"), create=True)
    assert exc.value.field == "id"
    v2 = await editor.save_promotion(rt, who, shop.code, promo("a", "15"), create=False)
    _, current = await programs.current(rt, shop.code)
    assert v2 == v1 + 1 and current["promotions"][0]["effects"][0]["percent"] == "15"


async def test_refusals_name_paths_inside_the_promotion(rt: Runtime, make_shop) -> None:
    shop = await make_shop()
    others = [promo("x"), promo("y")]
    version = await programs.do_apply(rt, validate_document(doc(shop.code, others)), author="s")
    who = marketer(shop.program_id)
    bad = promo("z", "150", when={"all": [{"tier": ["platinum"]}]})
    with pytest.raises(programs.ProgramError) as exc:
        await editor.save_promotion(rt, who, shop.code, bad, create=True)
    fields = [e["field"] for e in exc.value.extra["errors"]]
    assert fields == ["effects[0].percent"]
    # The model's field errors come first; the reference is checked on a valid shape.
    bad = promo("z", "15", when={"all": [{"tier": ["platinum"]}]})
    with pytest.raises(programs.ProgramError) as exc:
        await editor.save_promotion(rt, who, shop.code, bad, create=True)
    assert exc.value.extra["errors"] == [
        {"field": "when.all[0].tier", "code": "bad_value", "detail": "unknown tier 'platinum'"}
    ]
    # Nothing was written.
    assert (await programs.current(rt, shop.code))[0] == version
    assert await audit_rows(rt, shop.program_id) == []


async def test_readers_and_other_programs_users_are_refused(rt: Runtime, make_shop) -> None:
    shop = await make_shop()
    other = await make_shop()
    await programs.do_apply(rt, validate_document(doc(shop.code, [promo("a")])), author="s")
    with pytest.raises(ServiceError) as exc:
        await editor.save_promotion(
            rt, marketer(shop.program_id, "support"), shop.code, promo("b"), create=True
        )
    assert exc.value.code == "forbidden" and exc.value.status == 403
    with pytest.raises(ServiceError) as exc:
        await editor.rollback(rt, marketer(other.program_id), shop.code, 1, confirm="1")
    assert exc.value.code == "forbidden"


async def test_delete_and_rollback_ask_for_a_confirmation_and_are_audited(
    rt: Runtime, make_shop
) -> None:
    shop = await make_shop()
    first = await programs.do_apply(
        rt, validate_document(doc(shop.code, [promo("a"), promo("b")])), author="s"
    )
    who = marketer(shop.program_id)
    with pytest.raises(programs.ProgramError) as exc:
        await editor.delete_promotion(rt, who, shop.code, "a", confirm="b")
    assert exc.value.code == "not_confirmed" and exc.value.field == "confirm"
    deleted = await editor.delete_promotion(rt, who, shop.code, "a", confirm="a")
    _, current = await programs.current(rt, shop.code)
    assert [p["id"] for p in current["promotions"]] == ["b"]
    with pytest.raises(programs.ProgramError) as exc:
        await editor.rollback(rt, who, shop.code, first, confirm=str(deleted))
    assert exc.value.code == "not_confirmed"
    back = await editor.rollback(rt, who, shop.code, first, confirm=f" {first} ")
    _, current = await programs.current(rt, shop.code)
    assert back == deleted + 1 and [p["id"] for p in current["promotions"]] == ["a", "b"]
    assert [a for a, _, _ in await audit_rows(rt, shop.program_id)] == [
        "promotion.delete",
        "program.rollback",
    ]


async def test_the_promotions_page_sorts_filters_and_pages(rt: Runtime, make_shop) -> None:
    shop = await make_shop()
    now = rt.now()
    items = [
        promo("on", priority=1),
        promo("later", priority=5, starts_at=(now + timedelta(days=3)).isoformat()),
        promo("over", priority=3, ends_at=(now - timedelta(days=1)).isoformat()),
        promo("off", priority=2, enabled=False),
    ]
    await programs.do_apply(rt, validate_document(doc(shop.code, items)), author="s")
    page = await editor.promotions_page(rt, shop.code, sort="priority", descending=True)
    assert [r.id for r in page.rows] == ["later", "over", "off", "on"]
    assert {r.id: r.status for r in page.rows} == {
        "later": "scheduled",
        "over": "ended",
        "off": "disabled",
        "on": "active",
    }
    page = await editor.promotions_page(rt, shop.code, sort="status", descending=False, limit=2)
    assert [r.id for r in page.rows] == ["on", "later"] and page.total == 4
    page = await editor.promotions_page(rt, shop.code, status="ended")
    assert [r.id for r in page.rows] == ["over"]
    page = await editor.promotions_page(rt, shop.code, sort="starts_at", descending=True)
    assert page.rows[0].id == "later"


async def test_the_admin_api_lists_promotions_with_status_and_describes_one(
    rt: Runtime, make_shop, client: Any
) -> None:
    from kopilka.services import admin

    shop = await make_shop()
    items = [promo("a", priority=1), promo("b", priority=9, enabled=False)]
    await programs.do_apply(rt, validate_document(doc(shop.code, items)), author="s")
    key = await admin.do_add_token(rt, name="api-reader")
    headers = {"Authorization": f"Bearer {key}"}
    api = f"/api/admin/v1/programs/{shop.code}"
    r = await client.get(f"{api}/promotions?sort=priority&dir=asc", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 2
    assert [(p["id"], p["status"]) for p in body["promotions"]] == [
        ("a", "active"),
        ("b", "disabled"),
    ]
    r = await client.get(f"{api}/promotions?status=active", headers=headers)
    assert [p["id"] for p in r.json()["promotions"]] == ["a"]
    r = await client.get(f"{api}/promotions/a/describe", headers=headers)
    assert r.status_code == 200
    assert r.json()["en"] == "10% off Coffee."
    assert r.json()["ru"] == "Скидка 10% на Coffee."
    r = await client.get(f"{api}/promotions/zzz/describe", headers=headers)
    assert r.status_code == 404
    r = await client.get(f"{api}/promotions?sort=bogus", headers=headers)
    assert r.status_code in (400, 422)


async def test_applying_a_whole_document_keeps_the_code_and_is_audited(
    rt: Runtime, make_shop
) -> None:
    shop = await make_shop()
    v0 = await programs.do_apply(rt, validate_document(doc(shop.code, [])), author="s")
    who = marketer(shop.program_id)
    with pytest.raises(programs.ProgramError) as exc:
        await editor.apply_document(rt, who, shop.code, {**doc(shop.code, []), "code": "other"})
    assert exc.value.field == "code"
    bad = doc(shop.code, [promo("a", "101")])
    with pytest.raises(programs.ProgramError) as exc:
        await editor.apply_document(rt, who, shop.code, bad)
    assert exc.value.field == "promotions[0].effects[0].percent"
    v1 = await editor.apply_document(rt, who, shop.code, doc(shop.code, [promo("a")]))
    assert v1 == v0 + 1
    assert await audit_rows(rt, shop.program_id) == [("program.apply", "Mia Marketer", shop.code)]


async def test_a_program_set_up_without_a_document_gets_its_first_promotion(
    rt: Runtime, make_shop
) -> None:
    shop = await make_shop()  # made with settings only: no document, no stored version
    page = await editor.promotions_page(rt, shop.code)
    assert page.rows == [] and page.total == 0
    version = await editor.save_promotion(
        rt, marketer(shop.program_id), shop.code, promo("first", lines=None), create=True
    )
    _, current = await programs.current(rt, shop.code)
    assert [p["id"] for p in current["promotions"]] == ["first"]
    assert [v.version for v in await programs.versions(rt, shop.code)] == [version]
