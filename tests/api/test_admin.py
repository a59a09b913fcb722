"""Admin API v1 through the real app: tokens, program documents and versions, the simulator
(both databases)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from kopilka.services import admin
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Shop

API = "/api/admin/v1"
WEDNESDAY = "2026-03-04T12:00:00+03:00"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def key(rt: Runtime) -> str:
    return await admin.do_add_token(rt, name=f"marketer-{secrets.token_hex(2)}")


def document(code: str, *, percent: Any = 10) -> dict[str, Any]:
    return {
        "code": code,
        "name": "Магазин у дома",
        "points": {"earn_percent": 5},
        "tiers": {
            "levels": [
                {"code": "base", "name": "Base", "threshold": 0},
                {"code": "gold", "name": "Gold", "threshold": 10000, "earn_percent": 10},
            ]
        },
        "categories": [{"code": "drinks"}, {"code": "coffee", "parent": "drinks"}],
        "promotions": [
            {
                "id": "coffee-10",
                "name": "Кофе −10%",
                "lines": {"category": ["drinks"]},
                "effects": [{"kind": "line_discount", "percent": percent}],
            },
            {
                "id": "weekend-x2",
                "name": "Двойные баллы по выходным",
                "when": {"weekday": ["sat", "sun"]},
                "effects": [{"kind": "earn_multiplier", "factor": 2}],
            },
            {
                "id": "staff-gift",
                "name": "Подарок сотрудникам",
                "when": {"tier": ["gold"], "tag": ["staff"]},
                "effects": [
                    {"kind": "gift", "sku": "G1", "name": "Кружка"},
                    {"kind": "cashier_message", "text": "Выдайте кружку"},
                ],
            },
        ],
    }


async def program_code(shop: Shop) -> str:
    async with shop.rt.engine.connect() as conn:
        code: str = (
            await conn.execute(select(t.programs.c.code).where(t.programs.c.id == shop.program_id))
        ).scalar_one()
    return code


# --- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        pytest.param({}, 401, "unauthorized", id="no-header"),
        pytest.param(auth("ka_nobody"), 401, "unauthorized", id="unknown-key"),
        pytest.param({"Authorization": "Basic eDp5"}, 401, "unauthorized", id="not-bearer"),
    ],
)
async def test_a_call_without_a_valid_token_is_refused(
    client: httpx.AsyncClient, headers: dict[str, str], status: int, code: str
) -> None:
    r = await client.get(f"{API}/programs", headers=headers)

    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code


async def test_a_disabled_token_is_refused_at_once(rt: Runtime, client: httpx.AsyncClient) -> None:
    key = await admin.do_add_token(rt, name="leaver")
    before = await client.get(f"{API}/programs", headers=auth(key))
    token_id = next(x.id for x in await admin.list_tokens(rt) if x.key_prefix == key[:10])

    await admin.do_disable_token(rt, token_id)
    after = await client.get(f"{API}/programs", headers=auth(key))

    assert before.status_code == 200
    assert after.status_code == 403
    assert after.json()["code"] == "token_disabled"


async def test_a_token_limited_to_a_program_reaches_no_other(
    rt: Runtime, client: httpx.AsyncClient, key: str
) -> None:
    mine, other = f"a{secrets.token_hex(3)}", f"b{secrets.token_hex(3)}"
    for code in (mine, other):
        r = await client.put(f"{API}/programs/{code}", json=document(code), headers=auth(key))
        assert r.status_code == 201, r.text
    limited = await admin.do_add_token(rt, name="partner", program_code=mine)

    listed = await client.get(f"{API}/programs", headers=auth(limited))
    own = await client.get(f"{API}/programs/{mine}", headers=auth(limited))
    foreign = await client.get(f"{API}/programs/{other}", headers=auth(limited))
    new = await client.put(f"{API}/programs/zz{mine}", json={}, headers=auth(limited))

    assert [p["code"] for p in listed.json()] == [mine]
    assert own.status_code == 200
    assert (foreign.status_code, foreign.json()["code"]) == (403, "forbidden")
    assert (new.status_code, new.json()["code"]) == (403, "forbidden")


async def test_a_token_acts_with_its_roles_permissions(
    rt: Runtime, client: httpx.AsyncClient, key: str
) -> None:
    code = f"r{secrets.token_hex(3)}"
    r = await client.put(f"{API}/programs/{code}", json=document(code), headers=auth(key))
    assert r.status_code == 201, r.text
    support = await admin.do_add_token(rt, name="helpdesk", program_code=code, role="support")

    read = await client.get(f"{API}/programs/{code}", headers=auth(support))
    write = await client.put(
        f"{API}/programs/{code}", json=document(code, percent=20), headers=auth(support)
    )
    removed = await client.delete(
        f"{API}/programs/{code}/promotions/coffee-10", headers=auth(support)
    )

    assert read.status_code == 200
    assert (write.status_code, write.json()["code"]) == (403, "forbidden")
    assert removed.status_code == 403
    current = await client.get(f"{API}/programs/{code}", headers=auth(key))
    assert current.json()["version"] == 1  # nothing changed


# --- documents and versions ----------------------------------------------------------------


async def test_a_bad_document_is_422_naming_every_problem_and_changes_nothing(
    client: httpx.AsyncClient, key: str
) -> None:
    code = f"p{secrets.token_hex(3)}"
    bad = document(code, percent=150)
    bad["promotions"][1]["when"] = {"weekday": ["caturday"]}

    r = await client.put(f"{API}/programs/{code}", json=bad, headers=auth(key))
    missing = await client.get(f"{API}/programs/{code}", headers=auth(key))

    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "invalid_program"
    assert body["field"] == "promotions[0].effects[0].percent"
    assert body["errors"][0] == {
        "field": "promotions[0].effects[0].percent",
        "code": "bad_value",
        "detail": "must be between 0 and 100",
    }
    assert [e["field"] for e in body["errors"]] == [
        "promotions[0].effects[0].percent",
        "promotions[1].when.weekday[0]",
    ]
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b"{not json", 400, "malformed_json", id="not-json"),
        pytest.param(b"[1, 2]", 422, "invalid_program", id="not-a-mapping"),
    ],
)
async def test_a_body_that_is_not_a_document_is_a_problem_not_a_500(
    client: httpx.AsyncClient, key: str, body: bytes, status: int, code: str
) -> None:
    r = await client.put(
        f"{API}/programs/x{secrets.token_hex(3)}",
        content=body,
        headers={**auth(key), "content-type": "application/json"},
    )

    assert (r.status_code, r.json()["code"]) == (status, code)


async def test_documents_versions_diff_and_rollback(
    client: httpx.AsyncClient, key: str, rt: Runtime
) -> None:
    code = f"p{secrets.token_hex(3)}"
    h = auth(key)
    author = next(x.name for x in await admin.list_tokens(rt) if x.key_prefix == key[:10])

    created = await client.put(f"{API}/programs/{code}", json=document(code), headers=h)
    changed = await client.put(
        f"{API}/programs/{code}",
        json=document(code, percent=15),
        params={"note": "15%"},
        headers=h,
    )
    current = await client.get(f"{API}/programs/{code}", headers=h)
    history = await client.get(f"{API}/programs/{code}/versions", headers=h)
    first = await client.get(f"{API}/programs/{code}/versions/1", headers=h)
    diff = await client.get(f"{API}/programs/{code}/diff", params={"from": 1}, headers=h)
    back = await client.post(f"{API}/programs/{code}/rollback", json={"version": 1}, headers=h)
    after = await client.get(f"{API}/programs/{code}", headers=h)

    assert (created.status_code, created.json()) == (201, {"code": code, "version": 1})
    assert (changed.status_code, changed.json()) == (200, {"code": code, "version": 2})
    assert current.json()["version"] == 2
    assert current.json()["document"]["promotions"][0]["effects"][0]["percent"] == "15"
    assert [(v["version"], v["author"], v["note"], v["promotions"]) for v in history.json()] == [
        (1, author, "", 3),
        (2, author, "15%", 3),
    ]
    assert first.json()["document"]["promotions"][0]["effects"][0]["percent"] == "10"
    assert diff.json() == {
        "from": 1,
        "to": 2,
        "changes": [
            {
                "path": "promotions[coffee-10].effects[0].percent",
                "change": "changed",
                "old": "10",
                "new": "15",
            }
        ],
    }
    assert back.json() == {"code": code, "version": 3}
    assert after.json()["document"] == first.json()["document"]


async def test_one_promotion_is_read_added_replaced_and_deleted(
    client: httpx.AsyncClient, key: str
) -> None:
    code = f"p{secrets.token_hex(3)}"
    h = auth(key)
    await client.put(f"{API}/programs/{code}", json=document(code), headers=h)
    url = f"{API}/programs/{code}/promotions"
    tea = {"name": "Чай", "effects": [{"kind": "fixed_points", "points": 25}]}

    added = await client.put(f"{url}/tea", json=tea, headers=h)
    replaced = await client.put(f"{url}/tea", json={**tea, "name": "Чай!"}, headers=h)
    read = await client.get(f"{url}/tea", headers=h)
    bad = await client.put(
        f"{url}/tea", json={**tea, "effects": [{"kind": "fixed_points", "points": -1}]}, headers=h
    )
    deleted = await client.delete(f"{url}/tea", headers=h)
    gone = await client.get(f"{url}/tea", headers=h)

    assert (added.status_code, added.json()["version"]) == (201, 2)
    assert (replaced.status_code, replaced.json()["version"]) == (200, 3)
    assert read.json()["promotion"]["name"] == "Чай!"
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "promotions[3].effects[0].points"
    assert (deleted.status_code, deleted.json()["version"]) == (200, 4)
    assert (gone.status_code, gone.json()["code"]) == (404, "promotion_not_found")


async def test_the_admin_api_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    paths = {p for p in schema["paths"] if p.startswith(API)}
    put = schema["paths"][f"{API}/programs/{{code}}"]["put"]

    assert f"{API}/simulate" in paths and f"{API}/programs/{{code}}/diff" in paths
    assert put["security"] == [{"adminToken": []}]
    assert "ProgramDoc" in schema["components"]["schemas"]


# --- the simulator -------------------------------------------------------------------------


async def shop_with_program(shop: Shop, client: httpx.AsyncClient, key: str) -> str:
    code = await program_code(shop)
    r = await client.put(f"{API}/programs/{code}", json=document(code), headers=auth(key))
    assert r.status_code == 200, r.text
    return code


def basket(code: str, store: str, **extra: Any) -> dict[str, Any]:
    return {
        "program": code,
        "store": store,
        "at": WEDNESDAY,
        "lines": [
            {"sku": "C1", "name": "Кофе", "category": "coffee", "quantity": 1, "price": "300"},
            {"sku": "B1", "name": "Хлеб", "quantity": 2, "price": 50},
        ],
        **extra,
    }


async def count_rows(rt: Runtime) -> tuple[int, ...]:
    async with rt.engine.connect() as conn:
        out = []
        for table in (t.receipts, t.holds, t.ledger_entries, t.promotion_budgets):
            out.append((await conn.execute(select(func.count()).select_from(table))).scalar_one())
    return tuple(out)


async def test_simulate_a_member_explains_what_applied_and_why_not_and_writes_nothing(
    make_shop: Any, client: httpx.AsyncClient, key: str, rt: Runtime
) -> None:
    shop = await make_shop()
    code = await shop_with_program(shop, client, key)
    member = await shop.customer(points=100)
    before = await count_rows(rt)

    r = await client.post(
        f"{API}/simulate",
        json=basket(code, shop.store_code, identifier=member.card, redeem_points=20),
        headers=auth(key),
    )
    after = await count_rows(rt)

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["program_version"] == 2
    assert body["member"] is True
    assert body["customer"]["available"] == "100.00"
    assert body["customer"]["tier"] == "base"
    assert body["lines"][0]["discount"] == "30.00"
    assert body["lines"][0]["promotions"][0]["id"] == "coffee-10"
    assert body["amount"] == "400.00"
    assert body["points_redeemed"] == "20.00"
    assert body["explanations"] == {
        "coffee-10": "applied",
        "staff-gift": "tier is base, needs gold",
        "weekend-x2": "weekday is wed, needs sat, sun",
    }
    assert after == before


async def test_simulate_a_described_customer_on_a_saturday(
    make_shop: Any, client: httpx.AsyncClient, key: str
) -> None:
    shop = await make_shop()
    code = await shop_with_program(shop, client, key)

    r = await client.post(
        f"{API}/simulate",
        json=basket(
            code,
            shop.store_code,
            at="2026-03-07T12:00:00+03:00",
            customer={"tier": "gold", "tags": ["staff"]},
            explain=["weekend-x2", "staff-gift"],
        ),
        headers=auth(key),
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["explanations"] == {"staff-gift": "applied", "weekend-x2": "applied"}
    assert body["gifts"] == [{"sku": "G1", "name": "Кружка", "quantity": "1"}]
    assert body["cashier_messages"] == ["Выдайте кружку"]
    # gold earns 10%, doubled on the weekend, on 370 paid
    assert body["points_earned"] == "74.00"


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        pytest.param({"program": "nope"}, 404, "program_not_found", "code", id="unknown-program"),
        pytest.param({"store": "nope"}, 404, "store_not_found", "store", id="unknown-store"),
        pytest.param(
            {"identifier": "2999999999999"}, 404, "unknown_identifier", "identifier", id="nobody"
        ),
        pytest.param(
            {"customer": {"segments": ["vip"]}},
            422,
            "validation_failed",
            "customer.segments[0]",
            id="unknown-segment",
        ),
        pytest.param({"at": "2026-03-04T12:00:00"}, 422, "validation_failed", "at", id="naive-at"),
        pytest.param(
            {"redeem_points": 10}, 422, "not_a_member", "redeem_points", id="redeem-no-member"
        ),
    ],
)
async def test_a_bad_simulation_is_a_problem_naming_the_field(
    make_shop: Any,
    client: httpx.AsyncClient,
    key: str,
    change: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    shop = await make_shop()
    program = await shop_with_program(shop, client, key)

    r = await client.post(
        f"{API}/simulate", json={**basket(program, shop.store_code), **change}, headers=auth(key)
    )

    assert r.status_code == status, r.text
    assert (r.json()["code"], r.json()["field"]) == (code, field)


async def test_simulate_an_older_version(
    make_shop: Any, client: httpx.AsyncClient, key: str
) -> None:
    shop = await make_shop()
    code = await shop_with_program(shop, client, key)
    await client.put(f"{API}/programs/{code}", json=document(code, percent=50), headers=auth(key))

    now = await client.post(f"{API}/simulate", json=basket(code, None), headers=auth(key))
    then = await client.post(
        f"{API}/simulate", json={**basket(code, None), "version": 2}, headers=auth(key)
    )

    assert (now.json()["program_version"], now.json()["lines"][0]["discount"]) == (3, "150.00")
    assert (then.json()["program_version"], then.json()["lines"][0]["discount"]) == (2, "30.00")
    assert datetime.fromisoformat(now.json()["at"]) == datetime(2026, 3, 4, 9, tzinfo=UTC)
