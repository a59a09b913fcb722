"""Program documents as versions: apply, export, versions, diff, rollback, promotion edits,
and the runtime picking up a new version (both databases)."""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from kopilka.services import programs, setup
from kopilka.services.programs import ProgramError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t


def document(code: str, *, percent: Any = 10, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": "Магазин",
        "points": {"earn_percent": "4", "expiry_days": 180},
        "categories": [{"code": "coffee", "name": "Кофе"}],
        "promotions": [
            {
                "id": "coffee-10",
                "name": "Кофе −10%",
                "lines": {"category": ["coffee"]},
                "effects": [{"kind": "line_discount", "percent": percent}],
            }
        ],
        **extra,
    }


def new_code() -> str:
    return f"d{secrets.token_hex(4)}"


async def test_an_applied_document_exports_as_it_was_written(rt: Runtime) -> None:
    code = new_code()
    doc = programs.check_document(document(code, percent="12.5"))

    version = await programs.do_apply(rt, doc, author="anna")
    exported = await programs.export(rt, code)

    assert version == 1
    assert exported == programs.document_json(doc)
    assert exported["promotions"][0]["effects"][0] == {"kind": "line_discount", "percent": "12.5"}
    assert programs.check_document(exported) == doc


async def test_each_apply_is_a_new_version_with_its_author_and_note(rt: Runtime) -> None:
    code = new_code()

    v1 = await programs.do_apply(rt, programs.check_document(document(code)), author="anna")
    v2 = await programs.do_apply(
        rt, programs.check_document(document(code, percent=15)), author="boris", note="15%"
    )
    history = await programs.versions(rt, code)

    assert (v1, v2) == (1, 2)
    assert [(h.version, h.author, h.note, h.promotions) for h in history] == [
        (1, "anna", "", 1),
        (2, "boris", "15%", 1),
    ]
    assert (await programs.export(rt, code, 1))["promotions"][0]["effects"][0]["percent"] == "10"


async def test_the_first_document_of_a_program_made_by_create_is_the_next_version(
    rt: Runtime,
) -> None:
    code = new_code()
    await setup.do_create_program(rt, code=code, name="Старая", changes={"earn_percent": "2"})
    await setup.do_set_program(rt, code=code, changes={"burn_max_percent": "40"})

    before = await programs.export(rt, code)
    version = await programs.do_apply(rt, programs.check_document(document(code)), author="a")
    settings = await setup.show_program(rt, code)

    assert before["name"] == "Старая"
    assert before["points"]["earn_percent"] == "2"
    assert before["points"]["burn_max_percent"] == "40"
    assert version == 3
    assert settings.earn_percent == Decimal("4") and settings.expiry_days == 180


async def test_the_runtime_compiles_a_new_version_after_its_cache_ttl(db_url: str) -> None:
    code = new_code()
    writer = Runtime.from_url(db_url)
    reader = Runtime.from_url(db_url, cache_ttl_s=0.3)
    try:
        await programs.do_apply(writer, programs.check_document(document(code)), author="a")
        pid = (await programs.list_programs(writer, code=code))[0].id
        first = await reader.compiled(pid)

        await programs.do_apply(
            writer, programs.check_document(document(code, percent=20)), author="a"
        )
        cached = await reader.compiled(pid)
        await asyncio.sleep(0.35)
        fresh = await reader.compiled(pid)
    finally:
        await writer.close()
        await reader.close()

    assert (first.version, cached.version, fresh.version) == (1, 1, 2)
    assert fresh.by_id["coffee-10"].effects[0].percent == Decimal("20")  # type: ignore[union-attr]


async def test_concurrent_applies_get_distinct_consecutive_versions(db_url: str) -> None:
    code = new_code()
    runtimes = [Runtime.from_url(db_url) for _ in range(2)]
    doc = programs.check_document(document(code))
    try:
        await programs.do_apply(runtimes[0], doc, author="first")
        got = await asyncio.gather(
            *(programs.do_apply(runtimes[i % 2], doc, author=f"w{i}") for i in range(8))
        )
        async with runtimes[0].engine.connect() as conn:
            stored = (
                await conn.execute(
                    select(t.program_versions.c.version)
                    .join(t.programs, t.programs.c.id == t.program_versions.c.program_id)
                    .where(t.programs.c.code == code)
                    .order_by(t.program_versions.c.version)
                )
            ).scalars()
            current = (
                await conn.execute(select(t.programs.c.version).where(t.programs.c.code == code))
            ).scalar_one()
            stored_versions = list(stored)
    finally:
        for r in runtimes:
            await r.close()

    assert sorted(got) == list(range(2, 10))
    assert stored_versions == list(range(1, 10))
    assert current == 9


async def test_concurrent_creations_of_one_new_code_make_one_program(db_url: str) -> None:
    code = new_code()
    runtimes = [Runtime.from_url(db_url) for _ in range(2)]
    doc = programs.check_document(document(code))
    try:
        got = await asyncio.gather(*(programs.do_apply(r, doc, author="a") for r in runtimes))
        async with runtimes[0].engine.connect() as conn:
            n = (
                await conn.execute(
                    select(func.count()).select_from(t.programs).where(t.programs.c.code == code)
                )
            ).scalar_one()
    finally:
        for r in runtimes:
            await r.close()

    assert sorted(got) == [1, 2]
    assert n == 1


async def test_diff_names_the_changed_paths_and_matches_promotions_by_id(rt: Runtime) -> None:
    code = new_code()
    await programs.do_apply(rt, programs.check_document(document(code)), author="a")
    changed = document(code, percent=15)
    changed["promotions"].insert(
        0,
        {
            "id": "tea",
            "name": "Чай",
            "lines": {"sku": ["tea-1"]},
            "effects": [{"kind": "earn_multiplier", "factor": 2}],
        },
    )
    changed["name"] = "Магазин 2"
    await programs.do_apply(rt, programs.check_document(changed), author="a")

    changes = [str(c) for c in await programs.diff(rt, code, 1, 2)]

    assert changes[0] == "~ name: Магазин -> Магазин 2"
    assert "~ promotions[coffee-10].effects[0].percent: 10 -> 15" in changes
    assert any(c.startswith("+ promotions[tea]: ") for c in changes)
    assert len(changes) == 3


async def test_rollback_applies_an_old_document_as_a_new_version(rt: Runtime) -> None:
    code = new_code()
    await programs.do_apply(rt, programs.check_document(document(code)), author="a")
    await programs.do_apply(rt, programs.check_document(document(code, percent=30)), author="a")

    version = await programs.do_rollback(rt, code, 1, author="boris")

    assert version == 3
    assert await programs.export(rt, code) == await programs.export(rt, code, 1)
    last = (await programs.versions(rt, code))[-1]
    assert (last.author, last.note) == ("boris", "rollback to version 1")


async def test_a_promotion_is_added_replaced_and_deleted_each_as_a_version(rt: Runtime) -> None:
    code = new_code()
    await programs.do_apply(rt, programs.check_document(document(code)), author="a")
    tea = {"id": "tea", "name": "Чай", "effects": [{"kind": "fixed_points", "points": 50}]}

    added = await programs.do_set_promotion(rt, code, tea, author="b")
    replaced = await programs.do_set_promotion(rt, code, {**tea, "name": "Чай!"}, author="b")
    deleted = await programs.do_delete_promotion(rt, code, "coffee-10", author="c")
    promos = (await programs.export(rt, code))["promotions"]

    assert (added, replaced, deleted) == ((2, True), (3, False), 4)
    assert [(p["id"], p["name"]) for p in promos] == [("tea", "Чай!")]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        pytest.param(
            lambda rt, c: programs.do_delete_promotion(rt, c, "nope", author="a"),
            "promotion_not_found",
            id="delete-unknown-promotion",
        ),
        pytest.param(
            lambda rt, c: programs.do_rollback(rt, c, 99, author="a"),
            "version_not_found",
            id="rollback-to-unknown-version",
        ),
        pytest.param(
            lambda rt, c: programs.export(rt, c + "-none"),
            "program_not_found",
            id="export-unknown-program",
        ),
    ],
)
async def test_what_is_not_there_is_refused_and_nothing_is_written(
    rt: Runtime, call: Any, code: str
) -> None:
    program = new_code()
    await programs.do_apply(rt, programs.check_document(document(program)), author="a")

    with pytest.raises(ProgramError) as err:
        await call(rt, program)

    assert err.value.code == code and err.value.status == 404
    assert [v.version for v in await programs.versions(rt, program)] == [1]


async def test_a_promotion_that_breaks_the_document_names_its_path(rt: Runtime) -> None:
    code = new_code()
    await programs.do_apply(rt, programs.check_document(document(code)), author="a")
    bad = {"id": "x", "name": "X", "effects": [{"kind": "line_discount", "percent": 120}]}

    with pytest.raises(ProgramError) as err:
        await programs.do_set_promotion(rt, code, bad, author="a")

    assert err.value.code == "invalid_program"
    assert err.value.extra["errors"] == [
        {
            "field": "promotions[1].effects[0].percent",
            "code": "bad_value",
            "detail": "must be between 0 and 100",
        }
    ]
    assert [v.version for v in await programs.versions(rt, code)] == [1]


def test_every_problem_of_a_document_is_listed_with_its_path() -> None:
    data = document("x", percent=101)
    data["promotions"].append({"id": "coffee-10", "name": "again", "effects": []})
    data["timezone"] = "Mars/Olympus"

    with pytest.raises(ProgramError) as err:
        programs.check_document(data)

    fields = [e["field"] for e in err.value.extra["errors"]]
    assert fields == ["timezone", "promotions[0].effects[0].percent", "promotions[1].effects"]
    assert err.value.status == 422
