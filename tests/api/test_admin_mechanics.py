"""Admin API v1, mechanics of a program, through the real app on both databases: coupon
series and surprises, gift-card series, blocking and breakage, draws, rewards and orders."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kopilka.api.admin import mechanics
from kopilka.api.app import create_app
from kopilka.services import admin, draws, giftcards
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Clock, Shop, new_shop

API = "/api/admin/v1"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="session")
async def mclient(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the mechanics router (mounted here until app.py mounts it)."""
    app = create_app(rt, sweep_every_s=0)
    path = f"{API}/programs/{{code}}/coupon-series"
    if not any(getattr(r, "path", None) == path for r in app.routes):
        app.include_router(mechanics.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def key(rt: Runtime) -> str:
    return await admin.do_add_token(rt, name=f"marketer-{secrets.token_hex(2)}")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def program(rt: Runtime, client: httpx.AsyncClient) -> tuple[Shop, str]:
    shop = await new_shop(rt, client)
    async with rt.engine.connect() as conn:
        code: str = (
            await conn.execute(select(t.programs.c.code).where(t.programs.c.id == shop.program_id))
        ).scalar_one()
    return shop, code


def refused(r: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body


# --- auth, scope, unknown program ------------------------------------------------------------

CALLS: list[tuple[str, str, Any]] = [
    ("POST", "/coupon-series", {"code": "X", "name": "x", "count": 1}),
    ("POST", "/coupon-surprises", {"code": "X", "name": "x", "count": 1, "seed": "s"}),
    ("POST", "/gift-card-series", {"code": "X", "name": "x", "nominal": 500, "count": 1}),
    ("POST", "/gift-cards/7000000000000/block", None),
    ("GET", "/gift-cards/breakage", None),
    ("POST", "/draws", {}),
    ("POST", "/draws/d1/commit", None),
    ("POST", "/draws/d1/run", None),
    ("GET", "/draws/d1", None),
    ("GET", "/rewards", None),
    ("POST", "/rewards", {}),
    ("PUT", "/rewards/r1", {}),
    ("POST", "/reward-orders", {}),
    ("GET", "/reward-orders/1", None),
    ("POST", "/reward-orders/1/issue", None),
    ("POST", "/reward-orders/1/cancel", None),
]
CALL_IDS = [f"{m} {p}" for m, p, _ in CALLS]


@pytest.mark.parametrize(("method", "path", "body"), CALLS, ids=CALL_IDS)
async def test_every_call_needs_a_token_reaching_an_existing_program(
    rt: Runtime, mclient: httpx.AsyncClient, key: str, method: str, path: str, body: Any
) -> None:
    _, mine = await program(rt, mclient)
    _, other = await program(rt, mclient)
    limited = await admin.do_add_token(rt, name="partner", program_code=mine)

    async def call(code: str, headers: dict[str, str]) -> httpx.Response:
        return await mclient.request(
            method, f"{API}/programs/{code}{path}", json=body, headers=headers
        )

    refused(await call(mine, {}), 401, "unauthorized")
    refused(await call(mine, auth("ka_nobody")), 401, "unauthorized")
    refused(await call(other, auth(limited)), 403, "forbidden")
    refused(await call(f"nope{secrets.token_hex(3)}", auth(key)), 404, "program_not_found")


# --- coupons ----------------------------------------------------------------------------------


async def test_a_generated_series_answers_its_codes_once(
    rt: Runtime, mclient: httpx.AsyncClient, key: str
) -> None:
    _, code = await program(rt, mclient)
    url = f"{API}/programs/{code}/coupon-series"
    body = {"code": "spring-10", "name": "Весна", "count": 3, "seed": "s1", "max_uses": 2}

    r = await mclient.post(url, json=body, headers=auth(key))
    again = await mclient.post(url, json=body, headers=auth(key))

    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    out = r.json()
    assert out["series"] == "SPRING-10"
    assert len(out["codes"]) == len(set(out["codes"])) == 3
    refused(again, 409, "coupon_series_exists", "code")
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(t.coupon_series.c.max_uses, t.coupon_series.c.seed).where(
                    t.coupon_series.c.code == "SPRING-10",
                    t.coupon_series.c.program_id
                    == select(t.programs.c.id).where(t.programs.c.code == code).scalar_subquery(),
                )
            )
        ).one()
    assert (row.max_uses, row.seed) == (2, "s1")


async def test_imported_codes_and_a_points_code(
    rt: Runtime, mclient: httpx.AsyncClient, key: str
) -> None:
    _, code = await program(rt, mclient)
    url = f"{API}/programs/{code}/coupon-series"

    r = await mclient.post(
        url,
        json={
            "code": "P100",
            "name": "100 баллов",
            "codes": ["ABCD1234", "WXYZ9876"],
            "points": "100",
        },
        headers=auth(key),
    )
    clash = await mclient.post(
        url, json={"code": "P200", "name": "again", "codes": ["ABCD1234"]}, headers=auth(key)
    )

    assert r.status_code == 201, r.text
    assert r.json() == {"series": "P100", "codes": ["ABCD1234", "WXYZ9876"]}
    refused(clash, 409, "coupon_code_exists", "codes")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"name": "x", "count": 1}, "code", id="no-code"),
        pytest.param({"code": "a b", "name": "x", "count": 1}, "code", id="bad-code"),
        pytest.param({"code": "A", "name": "x"}, "count", id="neither-count-nor-codes"),
        pytest.param({"code": "A", "name": "x", "count": 1, "codes": ["ABCD"]}, "count", id="both"),
        pytest.param({"code": "A", "name": "x", "count": 0}, "count", id="zero"),
        pytest.param({"code": "A", "name": "x", "count": "3"}, "count", id="string-count"),
        pytest.param({"code": "A", "name": "x", "count": 1, "max_uses": 0}, "max_uses", id="uses"),
        pytest.param(
            {"code": "A", "name": "x", "count": 1, "valid_until": "2026-01-01T00:00:00"},
            "valid_until",
            id="naive-time",
        ),
        pytest.param(
            {
                "code": "A",
                "name": "x",
                "count": 1,
                "valid_from": "2026-02-01T00:00:00Z",
                "valid_until": "2026-01-01T00:00:00Z",
            },
            "valid_until",
            id="ends-before-it-starts",
        ),
        pytest.param({"code": "A", "name": "x", "codes": ["a!"]}, "codes", id="bad-import"),
        pytest.param({"code": "A", "name": "x", "count": 1, "points": -1}, "points", id="points"),
        pytest.param({"code": "A", "name": "x", "count": 1, "extra": 1}, "extra", id="unknown"),
    ],
)
async def test_a_bad_series_is_refused_naming_the_field(
    rt: Runtime, mclient: httpx.AsyncClient, key: str, body: dict[str, Any], field: str
) -> None:
    _, code = await program(rt, mclient)

    r = await mclient.post(f"{API}/programs/{code}/coupon-series", json=body, headers=auth(key))

    refused(r, 422, "validation_failed", field)
    assert r.json()["errors"][0]["field"] == field


async def test_a_surprise_goes_to_members_drawn_with_the_seed(
    rt: Runtime, mclient: httpx.AsyncClient, key: str
) -> None:
    shop, code = await program(rt, mclient)
    members = [await shop.customer() for _ in range(4)]
    body = {"code": "NY", "name": "С Новым годом", "count": 2, "seed": "ny-2027"}

    r = await mclient.post(f"{API}/programs/{code}/coupon-surprises", json=body, headers=auth(key))
    again = await mclient.post(
        f"{API}/programs/{code}/coupon-surprises", json=body, headers=auth(key)
    )
    short = await mclient.post(
        f"{API}/programs/{code}/coupon-surprises",
        json={"code": "NY2", "name": "x", "count": 2},
        headers=auth(key),
    )

    assert r.status_code == 201, r.text
    got = r.json()
    assert len(got) == 2
    assert {x["customer_id"] for x in got} <= {m.customer_id for m in members}
    assert all(isinstance(x["code"], str) and x["code"] for x in got)
    refused(again, 409, "coupon_series_exists", "code")
    refused(short, 422, "validation_failed", "seed")


# --- gift cards ----------------------------------------------------------------------------------


async def test_a_gift_card_series_shows_numbers_and_pins_once(
    rt: Runtime, mclient: httpx.AsyncClient, key: str
) -> None:
    _, code = await program(rt, mclient)
    url = f"{API}/programs/{code}/gift-card-series"
    body = {"code": "G500", "name": "Сертификат 500", "nominal": "500.00", "count": 2}

    r = await mclient.post(url, json=body, headers=auth(key))
    again = await mclient.post(url, json=body, headers=auth(key))

    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    out = r.json()
    assert (out["series"], out["nominal"], out["valid_days"]) == ("G500", "500.00", 365)
    assert len(out["cards"]) == 2
    async with rt.engine.connect() as conn:
        stored = dict(
            (
                await conn.execute(
                    select(t.gift_cards.c.number, t.gift_cards.c.pin_hash).where(
                        t.gift_cards.c.number.in_([c["number"] for c in out["cards"]])
                    )
                )
            ).all()
        )
    for card in out["cards"]:
        assert giftcards.pin_matches(card["pin"], stored[card["number"]])
    refused(again, 409, "gift_card_series_exists")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"code": "G", "name": "x", "nominal": 0, "count": 1}, "nominal", id="zero"),
        pytest.param(
            {"code": "G", "name": "x", "nominal": "1.005", "count": 1}, "nominal", id="kopecks"
        ),
        pytest.param({"code": "G", "name": "x", "nominal": 5, "count": 0}, "count", id="count"),
        pytest.param({"code": "G", "name": "x", "nominal": 5, "count": 1001}, "count", id="many"),
        pytest.param(
            {"code": "G", "name": "x", "nominal": 5, "count": 1, "valid_days": 0},
            "valid_days",
            id="days",
        ),
        pytest.param({"code": "G", "nominal": 5, "count": 1}, "name", id="no-name"),
    ],
)
async def test_a_bad_gift_card_series_is_refused_naming_the_field(
    rt: Runtime, mclient: httpx.AsyncClient, key: str, body: dict[str, Any], field: str
) -> None:
    _, code = await program(rt, mclient)

    r = await mclient.post(f"{API}/programs/{code}/gift-card-series", json=body, headers=auth(key))

    refused(r, 422, "validation_failed", field)


async def test_a_blocked_card_and_the_breakage_report(
    rt: Runtime, mclient: httpx.AsyncClient, key: str
) -> None:
    _, code = await program(rt, mclient)
    made = await mclient.post(
        f"{API}/programs/{code}/gift-card-series",
        json={"code": "G1", "name": "Сертификат", "nominal": 1000, "count": 1},
        headers=auth(key),
    )
    number = made.json()["cards"][0]["number"]
    block = f"{API}/programs/{code}/gift-cards/{number}/block"

    first = await mclient.post(block, headers=auth(key))
    second = await mclient.post(block, headers=auth(key))
    unknown = await mclient.post(
        f"{API}/programs/{code}/gift-cards/7000000000001/block", headers=auth(key)
    )
    report = await mclient.get(
        f"{API}/programs/{code}/gift-cards/breakage",
        params={"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00+03:00"},
        headers=auth(key),
    )
    naive = await mclient.get(
        f"{API}/programs/{code}/gift-cards/breakage",
        params={"from": "2020-01-01T00:00:00"},
        headers=auth(key),
    )
    backwards = await mclient.get(
        f"{API}/programs/{code}/gift-cards/breakage",
        params={"from": "2021-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"},
        headers=auth(key),
    )

    assert first.status_code == 200, first.text
    assert first.json()["state"] == "blocked"
    assert number not in first.text  # masked
    assert second.json() == first.json()
    refused(unknown, 404, "gift_card_not_found", "number")
    assert report.status_code == 200, report.text
    assert report.json()["series"] == [
        {
            "series": "G1",
            "name": "Сертификат",
            "cards_expired": 0,
            "breakage": "0.00",
            "activated": "0.00",
            "redeemed": "0.00",
            "outstanding": "0.00",
        }
    ]
    refused(naive, 422, "validation_failed", "from")
    refused(backwards, 422, "validation_failed", "to")


# --- draws ---------------------------------------------------------------------------------------

RULES = {"prizes": [{"name": "1000 баллов", "points": 1000}], "tickets_per_purchase": 1}


async def test_a_draw_is_created_committed_run_and_published(
    rt: Runtime, mclient: httpx.AsyncClient, key: str, clock: Clock
) -> None:
    _, code = await program(rt, mclient)
    clock.set(clock())
    now = clock()
    base = f"{API}/programs/{code}/draws"
    body = {
        "code": "summer",
        "name": "Летний розыгрыш",
        "period_start": (now - timedelta(days=1)).isoformat(),
        "period_end": (now + timedelta(days=1)).isoformat(),
        "rules": RULES,
    }

    created = await mclient.post(base, json=body, headers=auth(key))
    twice = await mclient.post(base, json=body, headers=auth(key))
    early = await mclient.post(f"{base}/summer/run", headers=auth(key))
    committed = await mclient.post(f"{base}/summer/commit", headers=auth(key))
    recommitted = await mclient.post(f"{base}/summer/commit", headers=auth(key))
    too_soon = await mclient.post(f"{base}/summer/run", headers=auth(key))
    before = await mclient.get(f"{base}/summer", headers=auth(key))
    clock.advance(days=2)
    run = await mclient.post(f"{base}/summer/run", headers=auth(key))
    rerun = await mclient.post(f"{base}/summer/run", headers=auth(key))
    after = await mclient.get(f"{base}/summer", headers=auth(key))
    missing = await mclient.get(f"{base}/winter", headers=auth(key))

    assert created.status_code == 201, created.text
    assert created.json()["state"] == "open"
    assert created.json()["draw"] == "summer"
    refused(twice, 409, "draw_exists", "code")
    refused(early, 409, "draw_not_committed")
    assert committed.status_code == 200, committed.text
    seed_hash = committed.json()["seed_hash"]
    assert recommitted.json()["seed_hash"] == seed_hash
    refused(too_soon, 409, "draw_period_not_ended")
    assert before.json()["seed"] is None
    assert before.json()["seed_hash"] == seed_hash
    assert run.status_code == 200, run.text
    assert run.json()["state"] == "drawn"
    assert rerun.json() == run.json() == after.json()
    assert draws.verify_published(after.json())
    refused(missing, 404, "draw_not_found")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"rules": {"prizes": []}}, "rules", id="no-prizes"),
        pytest.param({"period_end": "2020-01-01T00:00:00Z"}, "period_end", id="ends-before"),
        pytest.param({"period_start": "2026-01-01T00:00:00"}, "period_start", id="naive"),
        pytest.param({"code": ""}, "code", id="empty-code"),
        pytest.param({"rules": "many"}, "rules", id="rules-not-an-object"),
    ],
)
async def test_a_bad_draw_is_refused_naming_the_field(
    rt: Runtime, mclient: httpx.AsyncClient, key: str, change: dict[str, Any], field: str
) -> None:
    _, code = await program(rt, mclient)
    body = {
        "code": "d",
        "name": "Розыгрыш",
        "period_start": "2026-01-01T00:00:00Z",
        "period_end": "2026-02-01T00:00:00Z",
        "rules": RULES,
    } | change

    r = await mclient.post(f"{API}/programs/{code}/draws", json=body, headers=auth(key))

    refused(r, 422, "validation_failed", field)


async def test_a_draw_of_another_program_is_not_found(
    rt: Runtime, mclient: httpx.AsyncClient, key: str
) -> None:
    _, mine = await program(rt, mclient)
    _, other = await program(rt, mclient)
    body = {
        "code": "theirs",
        "name": "x",
        "period_start": "2026-01-01T00:00:00Z",
        "period_end": "2126-02-01T00:00:00Z",
        "rules": RULES,
    }
    assert (
        await mclient.post(f"{API}/programs/{other}/draws", json=body, headers=auth(key))
    ).status_code == 201

    r = await mclient.post(f"{API}/programs/{mine}/draws/theirs/commit", headers=auth(key))

    refused(r, 404, "draw_not_found")


# --- rewards -------------------------------------------------------------------------------------


async def test_the_catalogue_is_added_to_listed_and_changed(
    rt: Runtime, mclient: httpx.AsyncClient, key: str
) -> None:
    _, code = await program(rt, mclient)
    base = f"{API}/programs/{code}/rewards"

    mug = await mclient.post(
        base,
        json={"code": "mug", "name": "Кружка", "price_points": 300, "stock": 5},
        headers=auth(key),
    )
    bag = await mclient.post(
        base,
        json={"code": "bag", "name": "Сумка", "price_points": "999.50", "active": False},
        headers=auth(key),
    )
    dup = await mclient.post(
        base, json={"code": "mug", "name": "x", "price_points": 1}, headers=auth(key)
    )
    listed = await mclient.get(base, headers=auth(key))
    active = await mclient.get(base, params={"active_only": "true"}, headers=auth(key))
    cheaper = await mclient.put(f"{base}/mug", json={"price_points": 250}, headers=auth(key))
    unlimited = await mclient.put(f"{base}/mug", json={"stock": None}, headers=auth(key))
    missing = await mclient.put(f"{base}/cap", json={"active": False}, headers=auth(key))
    bad = await mclient.put(f"{base}/mug", json={"price_points": 0}, headers=auth(key))
    unknown = await mclient.put(f"{base}/mug", json={"colour": "red"}, headers=auth(key))

    assert mug.status_code == 201, mug.text
    assert mug.json() == {
        "code": "mug",
        "name": "Кружка",
        "price_points": "300.00",
        "stock": 5,
        "active": True,
    }
    assert bag.status_code == 201, bag.text
    refused(dup, 409, "reward_exists", "code")
    assert [x["code"] for x in listed.json()] == ["bag", "mug"]
    assert [x["code"] for x in active.json()] == ["mug"]
    assert cheaper.status_code == 200, cheaper.text
    assert (cheaper.json()["price_points"], cheaper.json()["stock"]) == ("250.00", 5)
    assert (unlimited.json()["price_points"], unlimited.json()["stock"]) == ("250.00", None)
    refused(missing, 404, "reward_not_found")
    refused(bad, 422, "validation_failed", "price_points")
    refused(unknown, 422, "validation_failed", "colour")


async def test_an_order_is_held_issued_or_cancelled(
    rt: Runtime, mclient: httpx.AsyncClient, key: str
) -> None:
    shop, code = await program(rt, mclient)
    member = await shop.customer(1000)
    stranger = await shop.customer(1000)
    base = f"{API}/programs/{code}"
    await mclient.post(
        f"{base}/rewards",
        json={"code": "mug", "name": "Кружка", "price_points": 300, "stock": 2},
        headers=auth(key),
    )

    def order(customer: dict[str, Any], key_: str, reward: str = "mug") -> Any:
        return mclient.post(
            f"{base}/reward-orders",
            json={"customer": customer, "reward": reward, "idempotency_key": key_},
            headers=auth(key),
        )

    first = await order({"card": member.card}, "k1")
    replay = await order({"card": member.card}, "k1")
    conflict = await order({"card": stranger.card}, "k1")
    no_reward = await order({"card": member.card}, "k1", reward="cap")
    second = await order({"phone": member.phone}, "k2")
    sold_out = await order({"id": member.customer_id}, "k3")
    nobody = await order({"id": 10**12}, "k4")
    two_names = await order({"card": member.card, "phone": member.phone}, "k5")
    oid, oid2 = first.json()["id"], second.json()["id"]
    issued = await mclient.post(f"{base}/reward-orders/{oid}/issue", headers=auth(key))
    reissued = await mclient.post(f"{base}/reward-orders/{oid}/issue", headers=auth(key))
    cancel_issued = await mclient.post(f"{base}/reward-orders/{oid}/cancel", headers=auth(key))
    cancelled = await mclient.post(f"{base}/reward-orders/{oid2}/cancel", headers=auth(key))
    shown = await mclient.get(f"{base}/reward-orders/{oid2}", headers=auth(key))
    stock = await mclient.get(f"{base}/rewards", headers=auth(key))

    assert first.status_code == 201, first.text
    assert first.json()["state"] == "ordered"
    assert first.json()["points"] == "300.00"
    assert first.json()["account_id"] == member.account_id
    assert (replay.status_code, replay.json()) == (200, first.json())
    refused(conflict, 409, "idempotency_conflict", "idempotency_key")
    refused(no_reward, 404, "reward_not_found", "reward")
    assert second.status_code == 201, second.text
    refused(sold_out, 409, "out_of_stock")
    refused(nobody, 404, "customer_not_found")
    refused(two_names, 422, "validation_failed", "customer")
    assert issued.status_code == 200, issued.text
    assert issued.json()["state"] == "issued"
    assert issued.json()["resolved_at"] is not None
    assert reissued.json() == issued.json()
    refused(cancel_issued, 409, "order_issued")
    assert cancelled.json()["state"] == "cancelled"
    assert shown.json() == cancelled.json()
    assert stock.json()[0]["stock"] == 1
    assert (await shop.balance(member))["available"] == "700.00"


async def test_an_order_of_another_program_is_not_found(
    rt: Runtime, mclient: httpx.AsyncClient, key: str
) -> None:
    shop, other = await program(rt, mclient)
    _, mine = await program(rt, mclient)
    member = await shop.customer(500)
    await mclient.post(
        f"{API}/programs/{other}/rewards",
        json={"code": "mug", "name": "Кружка", "price_points": 100},
        headers=auth(key),
    )
    placed = await mclient.post(
        f"{API}/programs/{other}/reward-orders",
        json={"customer": {"card": member.card}, "reward": "mug", "idempotency_key": "x"},
        headers=auth(key),
    )
    oid = placed.json()["id"]

    for r in (
        await mclient.get(f"{API}/programs/{mine}/reward-orders/{oid}", headers=auth(key)),
        await mclient.post(f"{API}/programs/{mine}/reward-orders/{oid}/issue", headers=auth(key)),
        await mclient.post(f"{API}/programs/{mine}/reward-orders/{oid}/cancel", headers=auth(key)),
    ):
        refused(r, 404, "order_not_found")
    bad_id = await mclient.get(f"{API}/programs/{mine}/reward-orders/zero", headers=auth(key))
    refused(bad_id, 422, "validation_failed", "order_id")


# --- bodies and the OpenAPI document ---------------------------------------------------------

BODY_CALLS = [c for c in CALLS if c[2] is not None]


@pytest.mark.parametrize(("method", "path", "body"), BODY_CALLS, ids=[c[1] for c in BODY_CALLS])
async def test_a_body_that_is_not_json_or_not_an_object_is_refused(
    rt: Runtime, mclient: httpx.AsyncClient, key: str, method: str, path: str, body: Any
) -> None:
    _, code = await program(rt, mclient)
    url = f"{API}/programs/{code}{path}"

    broken = await mclient.request(method, url, content=b"{not json", headers=auth(key))
    empty = await mclient.request(method, url, content=b"", headers=auth(key))
    a_list = await mclient.request(method, url, json=[body], headers=auth(key))

    refused(broken, 400, "malformed_json")
    refused(empty, 400, "malformed_json")
    refused(a_list, 400, "malformed_json")


def test_every_documented_body_is_a_schema_of_the_module(rt: Runtime) -> None:
    app = create_app(rt, sweep_every_s=0)
    if not any(getattr(r, "path", "").endswith("/coupon-series") for r in app.routes):
        app.include_router(mechanics.router)
    paths = app.openapi()["paths"]
    names = {m.__name__ for m in mechanics.SCHEMAS}
    refs = set()
    for url, item in paths.items():
        if "/coupon-" in url or "/gift-card" in url or "/draws" in url or "/reward" in url:
            for op in item.values():
                content = op.get("requestBody", {}).get("content", {})
                for media in content.values():
                    refs.add(media["schema"]["$ref"].rsplit("/", 1)[1])
    assert refs == names
    for model in mechanics.SCHEMAS:
        assert model.model_json_schema(ref_template="#/components/schemas/{model}")
