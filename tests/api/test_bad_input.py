"""Bad input at the till: a clear problem+json, never a 500, and nothing half-written.

Every refusal is RFC 9457 problem details (``application/problem+json``) with the status
of POS_API.md, a stable ``code`` and, where one field is to blame, ``field`` naming it the
way the POS wrote it (``lines[0].price``); schema errors also list each field's own code
in ``errors``.  After every refusal the customer's balance is what it was, no receipt,
hold or ledger entry exists, and the same ``receipt_id`` (or ``refund_id``, or phone)
can be used again for a valid call.

The tests talk to their own app whose transport turns an unexpected exception into the
500 answer a real server gives, so that a failure shows the response, not a traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from kopilka.api.app import create_app
from kopilka.api.problems import CODES, TYPE_BASE
from kopilka.domain.identifiers import make_card_number
from kopilka.services.runtime import Runtime, hash_key
from kopilka.services.terminals import do_disable_terminal
from kopilka.store import tables as t
from tests.conftest import Member, Shop, receipt

PROBLEM = "application/problem+json"
POINTS = 1000
UNTOUCHED = {"available": "1000.00", "pending": "0.00", "held": "0.00", "debt": "0.00"}

Change = Callable[[dict[str, Any]], None]


# --- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture(scope="module")
async def edge(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(rt, sweep_every_s=0)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def shop(make_shop: Any, edge: httpx.AsyncClient) -> Shop:
    """Default program: 5% earned (floor, whole points), at most 30% of a receipt burned."""
    made: Shop = await make_shop()
    return dataclasses.replace(made, client=edge)


@pytest.fixture
async def member(shop: Shop) -> Member:
    return await shop.customer(points=POINTS)


def good(card: str | None, rid: str = "r1") -> dict[str, Any]:
    """2 x 150.00 + 1 x 89.90 = 389.90; 30% of it lets at most 116 points burn."""
    return receipt(rid, card, ("coffee", 2, "150.00"), ("milk", 1, "89.90"))


def assert_problem(
    r: httpx.Response,
    status: int,
    code: str,
    field: str | None = None,
    *,
    field_code: str | None = None,
) -> dict[str, Any]:
    """The answer is problem details with this status, code and field; returns its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == TYPE_BASE + code
    assert body["title"] == code.replace("_", " ").capitalize()
    assert isinstance(body["detail"], str) and len(body["detail"]) > 0
    assert body.get("field") == field, body
    if code == "validation_failed":
        assert {e["code"] for e in body["errors"]} <= CODES, body["errors"]
        assert (body["errors"][0]["field"], body["errors"][0]["code"]) == (field, field_code)
    return body


async def traces(shop: Shop) -> dict[str, int]:
    """Rows a call could have left behind in this shop's program."""
    pid = shop.program_id
    counts = {}
    async with shop.rt.engine.connect() as conn:
        for name, table in (
            ("receipts", t.receipts),
            ("holds", t.holds),
            ("entries", t.ledger_entries),
            ("refunds", t.refunds),
            ("customers", t.customers),
        ):
            stmt = select(func.count()).select_from(table).where(table.c.program_id == pid)
            counts[name] = (await conn.execute(stmt)).scalar_one()
    return counts


def fresh_traces(*, customers: int = 1) -> dict[str, int]:
    """A program with ``customers`` members, one of them credited once (the adjust)."""
    return {"receipts": 0, "holds": 0, "entries": 1, "refunds": 0, "customers": customers}


async def terminal_id(shop: Shop) -> int:
    async with shop.rt.engine.connect() as conn:
        stmt = select(t.terminals.c.id).where(t.terminals.c.key_hash == hash_key(shop.key))
        tid: int = (await conn.execute(stmt)).scalar_one()
    return tid


# Changes to a good receipt -------------------------------------------------------------


def at_line(i: int, **values: Any) -> Change:
    def change(body: dict[str, Any]) -> None:
        body["lines"][i].update(values)

    return change


def without_in_line(i: int, key: str) -> Change:
    def change(body: dict[str, Any]) -> None:
        del body["lines"][i][key]

    return change


def with_(**values: Any) -> Change:
    def change(body: dict[str, Any]) -> None:
        body.update(values)

    return change


def without(*keys: str) -> Change:
    def change(body: dict[str, Any]) -> None:
        for key in keys:
            del body[key]

    return change


def both(*changes: Change) -> Change:
    def change(body: dict[str, Any]) -> None:
        for c in changes:
            c(body)

    return change


def days_ahead(days: int) -> Change:
    def change(body: dict[str, Any]) -> None:
        body["occurred_at"] = (datetime.now(UTC) + timedelta(days=days)).isoformat()

    return change


def case(
    change: Change,
    status: int,
    code: str,
    field: str,
    field_code: str | None = None,
    *,
    id: str,
    **extra: Any,
) -> Any:
    return pytest.param(change, status, code, field, field_code, extra, id=id)


V = "validation_failed"
BAD_RECEIPTS = [
    # wrong types
    case(at_line(0, quantity=True), 422, V, "lines[0].quantity", "wrong_type", id="quantity-true"),
    case(
        at_line(0, quantity="two"), 422, V, "lines[0].quantity", "not_a_number", id="quantity-word"
    ),
    case(at_line(1, price={"rub": 89}), 422, V, "lines[1].price", "wrong_type", id="price-object"),
    case(at_line(1, price=[89.9]), 422, V, "lines[1].price", "wrong_type", id="price-list"),
    case(at_line(1, price=""), 422, V, "lines[1].price", "not_a_number", id="price-empty-string"),
    case(with_(lines="coffee"), 422, V, "lines", "wrong_type", id="lines-a-string"),
    case(with_(lines={"0": {}}), 422, V, "lines", "wrong_type", id="lines-an-object"),
    case(with_(lines=[1]), 422, V, "lines[0]", "wrong_type", id="line-a-number"),
    case(with_(receipt_id=42), 422, V, "receipt_id", "wrong_type", id="receipt_id-a-number"),
    case(
        with_(identifier=2000000000017), 422, V, "identifier", "wrong_type", id="identifier-number"
    ),
    # missing and empty
    case(without("receipt_id"), 422, V, "receipt_id", "required", id="missing-receipt_id"),
    case(without("lines"), 422, V, "lines", "required", id="missing-lines"),
    case(without_in_line(0, "sku"), 422, V, "lines[0].sku", "required", id="missing-sku"),
    case(without_in_line(1, "price"), 422, V, "lines[1].price", "required", id="missing-price"),
    case(with_(lines=[]), 422, V, "lines", "too_few_items", id="empty-lines"),
    case(
        with_(lines=[{"sku": "a", "quantity": 1, "price": 1}] * 1001),
        422,
        V,
        "lines",
        "too_many_items",
        id="1001-lines",
    ),
    case(at_line(0, sku=""), 422, V, "lines[0].sku", "too_short", id="sku-empty"),
    # quantities
    case(at_line(0, quantity=-1), 422, V, "lines[0].quantity", "out_of_range", id="quantity-neg"),
    case(at_line(0, quantity=0), 422, V, "lines[0].quantity", "out_of_range", id="quantity-zero"),
    case(at_line(0, quantity=1e9), 422, V, "lines[0].quantity", "out_of_range", id="quantity-1e9"),
    case(
        at_line(0, quantity="1000000000"),
        422,
        V,
        "lines[0].quantity",
        "out_of_range",
        id="quantity-1e9-string",
    ),
    case(
        at_line(0, quantity="1.2345"),
        422,
        V,
        "lines[0].quantity",
        "too_many_decimals",
        id="quantity-4-decimals",
    ),
    case(
        at_line(0, quantity=1.2345),
        422,
        V,
        "lines[0].quantity",
        "too_many_decimals",
        id="quantity-4-decimals-number",
    ),
    case(at_line(0, quantity="NaN"), 422, V, "lines[0].quantity", "not_a_number", id="qty-NaN"),
    case(
        at_line(0, quantity="-Infinity"),
        422,
        V,
        "lines[0].quantity",
        "not_a_number",
        id="quantity--Infinity",
    ),
    # prices
    case(
        at_line(1, price="89.905"),
        422,
        V,
        "lines[1].price",
        "too_many_decimals",
        id="price-3-decimals",
    ),
    case(
        at_line(1, price=89.905),
        422,
        V,
        "lines[1].price",
        "too_many_decimals",
        id="price-3-decimals-number",
    ),
    case(at_line(1, price="-89.90"), 422, V, "lines[1].price", "out_of_range", id="price-negative"),
    case(at_line(1, price="1e12"), 422, V, "lines[1].price", "out_of_range", id="price-absurd"),
    case(at_line(1, price="NaN"), 422, V, "lines[1].price", "not_a_number", id="price-NaN"),
    case(at_line(1, price="Infinity"), 422, V, "lines[1].price", "not_a_number", id="price-Inf"),
    # unknown fields, times
    case(with_(colour="red"), 422, V, "colour", "unknown_field", id="unknown-field"),
    case(
        at_line(0, barcode="1"),
        422,
        V,
        "lines[0].barcode",
        "unknown_field",
        id="unknown-line-field",
    ),
    case(
        with_(occurred_at="2026-11-23T10:15:00"),
        422,
        V,
        "occurred_at",
        "needs_timezone",
        id="occurred_at-without-offset",
    ),
    case(
        with_(occurred_at="yesterday"), 422, V, "occurred_at", "bad_format", id="occurred_at-word"
    ),
    case(
        with_(occurred_at="9999-12-31T23:59:59+00:00"),
        422,
        V,
        "occurred_at",
        "out_of_range",
        id="occurred_at-year-9999",
    ),
    case(
        with_(occurred_at="0001-01-01T00:00:00+14:00"),
        422,
        V,
        "occurred_at",
        "out_of_range",
        id="occurred_at-year-1",
    ),
    case(days_ahead(2), 422, V, "occurred_at", "out_of_range", id="occurred_at-two-days-ahead"),
    # points to redeem
    case(with_(redeem_points=-5), 422, V, "redeem_points", "out_of_range", id="redeem-negative"),
    case(
        with_(redeem_points="1.001"),
        422,
        V,
        "redeem_points",
        "too_many_decimals",
        id="redeem-3-decimals",
    ),
    case(with_(redeem_points="all"), 422, V, "redeem_points", "not_a_number", id="redeem-a-word"),
    case(with_(redeem_points=True), 422, V, "redeem_points", "wrong_type", id="redeem-true"),
    case(
        with_(redeem_points="1.50"),
        422,
        "invalid_points_step",
        "redeem_points",
        id="redeem-not-a-whole-point",
        redeem_max="116.00",
    ),
    case(
        with_(redeem_points=POINTS + 1),
        422,
        "insufficient_points",
        "redeem_points",
        id="redeem-more-than-available",
        redeem_max="116.00",
    ),
    case(
        with_(redeem_points=117),
        422,
        "redeem_limit_exceeded",
        "redeem_points",
        id="redeem-over-the-program-share",
        redeem_max="116.00",
    ),
    case(
        both(without("identifier"), with_(redeem_points=10)),
        422,
        "not_a_member",
        "redeem_points",
        id="redeem-for-a-non-member",
    ),
    # sums
    case(
        at_line(0, amount="250.00"),
        422,
        "lines_do_not_add_up",
        "lines[0].amount",
        id="amount-not-quantity-x-price",
        expected="300.00",
    ),
    case(
        with_(total="400.00"),
        422,
        "lines_do_not_add_up",
        "total",
        id="total-does-not-add-up",
        expected="389.90",
    ),
    case(
        at_line(1, discount="90.00"),
        422,
        "lines_do_not_add_up",
        "lines[1].discount",
        id="discount-over-amount",
    ),
    case(at_line(1, discount="-1"), 422, V, "lines[1].discount", "out_of_range", id="discount-neg"),
    # ids and texts
    case(with_(receipt_id="x" * 65), 422, V, "receipt_id", "too_long", id="receipt_id-oversized"),
    case(with_(receipt_id=""), 422, V, "receipt_id", "too_short", id="receipt_id-empty"),
    case(with_(receipt_id="0042/1"), 422, V, "receipt_id", "bad_format", id="receipt_id-slash"),
    case(with_(receipt_id="r\x001"), 422, V, "receipt_id", "bad_format", id="receipt_id-NUL"),
    case(at_line(0, sku="cof\x00fee"), 422, V, "lines[0].sku", "bad_format", id="sku-NUL"),
    case(at_line(0, name="Кофе\x00"), 422, V, "lines[0].name", "bad_format", id="name-NUL"),
    case(with_(identifier=""), 422, V, "identifier", "too_short", id="identifier-empty"),
    case(with_(identifier="2000\x00"), 422, V, "identifier", "bad_format", id="identifier-NUL"),
    case(
        with_(identifier="2999999999990"),
        404,
        "unknown_identifier",
        "identifier",
        id="identifier-unknown",
    ),
    case(with_(coupons=["K7Q2-9XWD"]), 404, "coupon_not_found", "coupons[0]", id="coupon-unknown"),
    case(
        with_(coupons=["K7Q2-9XWD", "k7q2 9xwd"]),
        422,
        "coupon_repeated",
        "coupons[1]",
        id="coupon-twice",
    ),
    # a number with a wrong check digit (docs/gift-cards.md)
    case(
        with_(gift_cards=[{"number": "7000000000012", "pin": "1234", "amount": "500.00"}]),
        404,
        "gift_card_not_found",
        "gift_cards[0].number",
        id="gift_cards",
    ),
]


# --- receipts ----------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "status", "code", "field", "field_code", "extra"), BAD_RECEIPTS)
async def test_a_bad_receipt_is_refused_and_leaves_no_trace(
    shop: Shop,
    member: Member,
    change: Change,
    status: int,
    code: str,
    field: str,
    field_code: str | None,
    extra: dict[str, Any],
) -> None:
    """Calculate and calculate-and-confirm refuse it; a batch refuses it alone."""
    body = good(member.card)
    change(body)
    in_batch = good(member.card, "b1")
    change(in_batch)

    calculate = await shop.post("/purchases/calculate", body)
    purchase = await shop.post("/purchases", body)
    batch = await shop.post("/purchases/batch", {"receipts": [good(None, "anon-1"), in_batch]})

    for r in (calculate, purchase):
        problem = assert_problem(r, status, code, field, field_code=field_code)
        assert {k: problem.get(k) for k in extra} == extra
    assert batch.status_code == 200, batch.text
    out = batch.json()
    assert (out["accepted"], out["rejected"]) == (1, 1)
    item = out["results"][1]
    problem = item["problem"]
    assert (item["index"], item["status"], problem["code"]) == (1, status, code)
    assert problem["field"] == f"receipts[1].{field}"
    if field_code is not None:
        first = problem["errors"][0]
        assert (first["field"], first["code"]) == (f"receipts[1].{field}", field_code)
    assert {k: problem.get(k) for k in extra} == extra
    assert await shop.balance(member) == UNTOUCHED
    assert await traces(shop) == {**fresh_traces(), "receipts": 1}  # the anonymous one
    # Neither call kept "r1" (a kept one would make this a 409), nor the batch "b1".
    again = await shop.post("/purchases/calculate", good(member.card))
    again_b1 = await shop.post("/purchases", good(member.card, "b1"))
    assert (again.status_code, again_b1.status_code) == (200, 200), (again.text, again_b1.text)


async def test_a_batch_item_with_integers_beyond_64_bits_is_refused_alone(shop: Shop) -> None:
    huge = 10**30
    items = [
        receipt("b1", None, ("a", huge, "1.00")),
        {**receipt("b2", None, ("a", 1, "1.00")), "receipt_id": huge},
        receipt("b3", None, ("a", 1, "1.00")),
    ]

    r = await shop.post("/purchases/batch", {"receipts": items})

    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["receipt_id"], x["status"]) for x in results] == [
        ("b1", 422),
        (None, 422),
        ("b3", 200),
    ]
    assert results[0]["problem"]["field"] == "receipts[0].lines[0].quantity"
    assert results[0]["problem"]["errors"][0]["code"] == "out_of_range"
    assert results[1]["problem"]["field"] == "receipts[1].receipt_id"
    assert results[1]["problem"]["errors"][0]["code"] == "wrong_type"


@pytest.mark.parametrize(
    ("body", "field", "field_code"),
    [
        pytest.param({"receipts": []}, "receipts", "too_few_items", id="no-receipts"),
        pytest.param({"receipts": {"r1": {}}}, "receipts", "wrong_type", id="receipts-an-object"),
        pytest.param({}, "receipts", "required", id="missing-receipts"),
        pytest.param({"receipts": [{}], "x": 1}, "x", "unknown_field", id="unknown-field"),
    ],
)
async def test_a_bad_batch_is_refused_whole(
    shop: Shop, body: dict[str, Any], field: str, field_code: str
) -> None:
    r = await shop.post("/purchases/batch", body)

    assert_problem(r, 422, V, field, field_code=field_code)
    assert (await traces(shop))["receipts"] == 0


# --- bodies that are not JSON objects -----------------------------------------------------

RAW_BODIES = [
    pytest.param(b'{"receipt_id": "r1", ', "the body is not valid JSON", id="truncated"),
    pytest.param(b"{'receipt_id': 'r1'}", "the body is not valid JSON", id="single-quotes"),
    pytest.param(b'{"receipt_id": "r1"} x', "the body is not valid JSON", id="trailing-garbage"),
    pytest.param(b'{"refund_id": "\xff\xfe"}', "the body is not valid JSON", id="not-utf-8"),
    pytest.param(b"", "the body is not valid JSON", id="empty"),
    pytest.param(b"[]", "the body must be a JSON object", id="array"),
    pytest.param(b'[{"receipt_id": "r1"}]', "the body must be a JSON object", id="array-of-one"),
    pytest.param(b'"r1"', "the body must be a JSON object", id="string"),
    pytest.param(b"42", "the body must be a JSON object", id="number"),
    pytest.param(b"null", "the body must be a JSON object", id="null"),
]
ENDPOINTS = [  # confirm and cancel take an optional body, so only an empty one is fine
    "/purchases/calculate",
    "/purchases",
    "/purchases/batch",
    "/purchases/r1/refunds",
    "/purchases/r1/confirm",
    "/purchases/r1/cancel",
    "/customers",
    "/customers/1/confirm-phone",
]


@pytest.mark.parametrize(("raw", "detail"), RAW_BODIES)
async def test_a_body_that_is_not_a_json_object_is_400_everywhere(
    shop: Shop, member: Member, raw: bytes, detail: str
) -> None:
    paths = [p for p in ENDPOINTS if raw or not p.endswith(("/confirm", "/cancel"))]

    answers = [
        await shop.client.post(
            "/api/pos/v1" + path,
            content=raw,
            headers={**shop.headers, "content-type": "application/json"},
        )
        for path in paths
    ]

    for r in answers:
        problem = assert_problem(r, 400, "malformed_json")
        assert problem["detail"] == detail
    assert await shop.balance(member) == UNTOUCHED
    assert await traces(shop) == fresh_traces()


@pytest.mark.parametrize(
    ("literal", "field"),
    [
        pytest.param(b"NaN", "lines[0].quantity", id="quantity-NaN"),
        pytest.param(b"-Infinity", "lines[0].quantity", id="quantity--Infinity"),
        pytest.param(b"1e400", "lines[0].quantity", id="quantity-1e400"),
    ],
)
async def test_a_non_finite_number_literal_names_its_field(
    shop: Shop, member: Member, literal: bytes, field: str
) -> None:
    """NaN and Infinity are not JSON, but the parser reads them: refused as the field's value."""
    raw = b'{"receipt_id": "r1", "lines": [{"sku": "a", "quantity": %s, "price": 1}]}' % literal

    r = await shop.client.post(
        "/api/pos/v1/purchases/calculate",
        content=raw,
        headers={**shop.headers, "content-type": "application/json"},
    )

    assert_problem(r, 422, V, field, field_code="not_a_number")
    assert await traces(shop) == fresh_traces()


# --- keys and terminals -------------------------------------------------------------------

CALLS = [
    ("GET", "/customers/lookup?identifier=2000000000017"),
    ("POST", "/purchases/calculate"),
    ("POST", "/purchases"),
    ("POST", "/purchases/batch"),
    ("POST", "/purchases/r1/confirm"),
    ("POST", "/purchases/r1/cancel"),
    ("POST", "/purchases/r1/refunds"),
    ("POST", "/customers"),
]


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("Bearer", id="bearer-without-key"),
        pytest.param("Bearer   ", id="bearer-blank-key"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic-auth"),
        pytest.param("kp_test_000", id="key-without-scheme"),
        pytest.param("Bearer kp_test_unknown", id="unknown-key"),
    ],
)
async def test_no_or_unknown_key_is_401_before_the_body_is_read(
    shop: Shop, member: Member, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    answers = [
        await shop.client.request(method, "/api/pos/v1" + path, content=b"{not", headers=headers)
        for method, path in CALLS
    ]

    for r in answers:
        assert_problem(r, 401, "unauthorized")
    assert await traces(shop) == fresh_traces()


async def test_a_disabled_terminal_is_403(shop: Shop, member: Member) -> None:
    calculated = await shop.post("/purchases/calculate", {**good(member.card), "redeem_points": 9})
    await do_disable_terminal(shop.rt, await terminal_id(shop))
    before = await traces(shop)
    body = {**good(member.card, "r2"), "redeem_points": 100}

    answers = [
        await shop.client.request(method, "/api/pos/v1" + path, json=body, headers=shop.headers)
        for method, path in CALLS
    ]

    assert calculated.status_code == 200, calculated.text
    for r in answers:
        assert_problem(r, 403, "terminal_disabled")
    assert await traces(shop) == before
    term = await shop.rt.terminal_by_key(shop.key)
    assert term is not None and term.active is False


# --- blocked card -------------------------------------------------------------------------


async def block(shop: Shop, member: Member, status: str = "blocked") -> None:
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.cards).where(t.cards.c.number == member.card).values(status=status)
        )


@pytest.mark.parametrize(
    "path", ["/purchases/calculate", "/purchases"], ids=["calculate", "purchase"]
)
@pytest.mark.parametrize("redeem", [None, 50, "max"], ids=["earn-only", "redeem-50", "redeem-max"])
async def test_a_blocked_card_is_refused_and_leaves_no_trace(
    shop: Shop, member: Member, path: str, redeem: Any
) -> None:
    await block(shop, member)
    body = good(member.card)
    if redeem is not None:
        body["redeem_points"] = redeem

    by_card = await shop.post(path, body)
    by_phone = await shop.post(path, {**body, "identifier": member.phone})

    assert_problem(by_card, 422, "card_blocked", "identifier")
    assert_problem(by_phone, 422, "card_blocked", "identifier")
    assert await shop.balance(member) == UNTOUCHED
    assert await traces(shop) == fresh_traces()
    await block(shop, member, "active")
    retry = await shop.post(path, body)
    assert retry.status_code == 200, retry.text


# --- idempotency and state ----------------------------------------------------------------


async def test_the_same_receipt_id_with_another_body_is_409_and_the_first_stands(
    shop: Shop, member: Member
) -> None:
    first = await shop.post("/purchases/calculate", {**good(member.card), "redeem_points": 10})

    other_points = await shop.post(
        "/purchases/calculate", {**good(member.card), "redeem_points": 20}
    )
    other_lines = await shop.post(
        "/purchases/calculate",
        {**good(member.card), "redeem_points": 10, "lines": good(None)["lines"][:1]},
    )
    one_shot = await shop.post("/purchases", {**good(member.card), "redeem_points": 10})

    assert first.status_code == 200, first.text
    for r in (other_points, other_lines, one_shot):
        assert_problem(r, 409, "idempotency_conflict", "receipt_id")
    assert (await shop.balance(member))["held"] == "10.00"
    assert (await traces(shop))["receipts"] == 1


async def test_a_one_shot_purchase_repeated_with_another_body_is_409(
    shop: Shop, member: Member
) -> None:
    first = await shop.post("/purchases", good(member.card))

    again = await shop.post("/purchases", {**good(member.card), "cashier_id": "17"})
    as_calculate = await shop.post("/purchases/calculate", good(member.card))

    assert first.status_code == 200, first.text
    assert_problem(again, 409, "idempotency_conflict", "receipt_id")
    assert_problem(as_calculate, 409, "idempotency_conflict", "receipt_id")
    assert (await shop.balance(member))["available"] == "1019.00"  # 5% of 389.90, floored


@pytest.mark.parametrize(
    ("steps", "call", "status", "code", "balance"),
    [
        pytest.param(
            ["calculate", "cancel"],
            "confirm",
            409,
            "receipt_cancelled",
            UNTOUCHED,
            id="confirm-a-cancelled-receipt",
        ),
        pytest.param(
            ["calculate", "confirm"],
            "cancel",
            409,
            "receipt_confirmed",
            {"available": "914.00", "pending": "0.00", "held": "0.00", "debt": "0.00"},
            id="cancel-a-confirmed-receipt",
        ),
        pytest.param(
            ["calculate"],
            "refund",
            409,
            "receipt_not_confirmed",
            {"available": "900.00", "pending": "0.00", "held": "100.00", "debt": "0.00"},
            id="refund-a-calculated-receipt",
        ),
        pytest.param(
            ["calculate", "cancel"],
            "refund",
            409,
            "receipt_not_confirmed",
            UNTOUCHED,
            id="refund-a-cancelled-receipt",
        ),
        pytest.param([], "confirm", 404, "receipt_not_found", UNTOUCHED, id="confirm-unknown"),
        pytest.param([], "cancel", 404, "receipt_not_found", UNTOUCHED, id="cancel-unknown"),
        pytest.param([], "refund", 404, "receipt_not_found", UNTOUCHED, id="refund-unknown"),
    ],
)
async def test_a_call_in_the_wrong_state_is_refused_and_changes_nothing(
    shop: Shop,
    member: Member,
    steps: list[str],
    call: str,
    status: int,
    code: str,
    balance: dict[str, str],
) -> None:
    calls = {
        "calculate": lambda: shop.post(
            "/purchases/calculate", {**good(member.card), "redeem_points": 100}
        ),
        "confirm": lambda: shop.post("/purchases/r1/confirm"),
        "cancel": lambda: shop.post("/purchases/r1/cancel"),
        "refund": lambda: shop.post("/purchases/r1/refunds", {"refund_id": "x1"}),
    }
    for step in steps:
        done = await calls[step]()
        assert done.status_code == 200, done.text
    before = await traces(shop)

    r = await calls[call]()

    assert_problem(r, status, code, "receipt_id")
    assert await shop.balance(member) == balance
    assert await traces(shop) == before


@pytest.mark.parametrize(
    "receipt_id",
    [
        pytest.param("nope", id="never-sent"),
        pytest.param("x" * 65, id="oversized"),
        pytest.param("r%001", id="NUL"),
        pytest.param("r%0A1", id="newline"),
        pytest.param("r%201", id="space"),
    ],
)
async def test_an_unknown_receipt_is_404(shop: Shop, receipt_id: str) -> None:
    answers = [
        await shop.post(f"/purchases/{receipt_id}/confirm"),
        await shop.post(f"/purchases/{receipt_id}/cancel"),
        await shop.post(f"/purchases/{receipt_id}/refunds", {"refund_id": "x1"}),
    ]

    for r in answers:
        assert_problem(r, 404, "receipt_not_found", "receipt_id")


async def test_another_terminals_receipt_is_404(shop: Shop, make_shop: Any) -> None:
    other = await make_shop()
    made = await other.post("/purchases/calculate", good(None))

    r = await shop.post("/purchases/r1/confirm")

    assert made.status_code == 200
    assert_problem(r, 404, "receipt_not_found", "receipt_id")


# --- refunds ------------------------------------------------------------------------------

AFTER_PURCHASE = {"available": "914.00", "pending": "0.00", "held": "0.00", "debt": "0.00"}


def refund_case(
    body: dict[str, Any],
    status: int,
    code: str,
    field: str,
    field_code: str | None = None,
    *,
    id: str,
    **extra: Any,
) -> Any:
    return pytest.param(body, status, code, field, field_code, extra, id=id)


def lines(*items: Any) -> dict[str, Any]:
    return {"refund_id": "x1", "lines": list(items)}


BAD_REFUNDS = [
    refund_case(lines({"index": 5}), 422, "unknown_line", "lines[0].index", id="unknown-line"),
    refund_case(
        lines({"index": 0, "quantity": 1}, {"index": 0, "quantity": 1}),
        422,
        "unknown_line",
        "lines[1].index",
        id="line-listed-twice",
    ),
    refund_case(
        lines({"index": 1}, {"index": 0, "quantity": 3}),
        422,
        "refund_exceeds_purchase",
        "lines[1].quantity",
        id="quantity-above-bought",
        returnable="2.000",
    ),
    refund_case(
        lines({"index": 0, "quantity": "2.001"}),
        422,
        "refund_exceeds_purchase",
        "lines[0].quantity",
        id="quantity-a-gram-above-bought",
        returnable="2.000",
    ),
    refund_case(
        lines({"index": 0, "quantity": 0}), 422, V, "lines[0].quantity", "out_of_range", id="qty-0"
    ),
    refund_case(
        lines({"index": 0, "quantity": -1}),
        422,
        V,
        "lines[0].quantity",
        "out_of_range",
        id="quantity-negative",
    ),
    refund_case(
        lines({"index": 0, "quantity": "0.0001"}),
        422,
        V,
        "lines[0].quantity",
        "too_many_decimals",
        id="quantity-4-decimals",
    ),
    refund_case(lines({"index": -1}), 422, V, "lines[0].index", "out_of_range", id="index-neg"),
    refund_case(lines({"index": "0"}), 422, V, "lines[0].index", "wrong_type", id="index-a-string"),
    refund_case(lines({"index": True}), 422, V, "lines[0].index", "wrong_type", id="index-true"),
    refund_case(lines({"index": 0.5}), 422, V, "lines[0].index", "wrong_type", id="index-0.5"),
    refund_case(lines({"quantity": 1}), 422, V, "lines[0].index", "required", id="index-missing"),
    refund_case(lines(), 422, V, "lines", "too_few_items", id="lines-empty"),
    refund_case(
        {"refund_id": "x1", "lines": "all"}, 422, V, "lines", "wrong_type", id="lines-a-string"
    ),
    refund_case({}, 422, V, "refund_id", "required", id="refund_id-missing"),
    refund_case({"refund_id": "r" * 65}, 422, V, "refund_id", "too_long", id="refund_id-oversized"),
    refund_case({"refund_id": "x/1"}, 422, V, "refund_id", "bad_format", id="refund_id-slash"),
    refund_case({"refund_id": "x\x00"}, 422, V, "refund_id", "bad_format", id="refund_id-NUL"),
    refund_case(
        {"refund_id": "x1", "reason": "x"}, 422, V, "reason", "unknown_field", id="unknown-field"
    ),
]


@pytest.mark.parametrize(("body", "status", "code", "field", "field_code", "extra"), BAD_REFUNDS)
async def test_a_bad_refund_is_refused_and_leaves_no_trace(
    shop: Shop,
    member: Member,
    body: dict[str, Any],
    status: int,
    code: str,
    field: str,
    field_code: str | None,
    extra: dict[str, Any],
) -> None:
    bought = await shop.post("/purchases", {**good(member.card), "redeem_points": 100})
    assert bought.status_code == 200, bought.text
    assert await shop.balance(member) == AFTER_PURCHASE  # 1000 - 100 + 5% of 289.90
    before = await traces(shop)

    r = await shop.post("/purchases/r1/refunds", body)

    problem = assert_problem(r, status, code, field, field_code=field_code)
    assert {k: problem.get(k) for k in extra} == extra
    assert await shop.balance(member) == AFTER_PURCHASE
    assert await traces(shop) == before
    whole = await shop.post("/purchases/r1/refunds", {"refund_id": "x1"})
    assert whole.status_code == 200, whole.text
    assert await shop.balance(member) == UNTOUCHED


async def test_a_refund_never_returns_more_than_is_left(shop: Shop, member: Member) -> None:
    await shop.post("/purchases", good(member.card))
    one = await shop.post(
        "/purchases/r1/refunds", {"refund_id": "x1", "lines": [{"index": 0, "quantity": 1}]}
    )

    two = await shop.post(
        "/purchases/r1/refunds", {"refund_id": "x2", "lines": [{"index": 0, "quantity": 2}]}
    )
    rest = await shop.post("/purchases/r1/refunds", {"refund_id": "x3"})
    nothing_left = await shop.post("/purchases/r1/refunds", {"refund_id": "x4"})

    assert one.status_code == 200 and rest.status_code == 200, (one.text, rest.text)
    assert (
        assert_problem(two, 422, "refund_exceeds_purchase", "lines[0].quantity")["returnable"]
        == "1.000"
    )
    assert_problem(nothing_left, 422, "refund_exceeds_purchase", "lines")
    assert await shop.balance(member) == UNTOUCHED


async def test_the_same_refund_id_with_other_lines_is_409(shop: Shop, member: Member) -> None:
    await shop.post("/purchases", good(member.card))
    first = await shop.post(
        "/purchases/r1/refunds", {"refund_id": "x1", "lines": [{"index": 0, "quantity": 1}]}
    )

    other = await shop.post(
        "/purchases/r1/refunds", {"refund_id": "x1", "lines": [{"index": 1, "quantity": 1}]}
    )

    assert first.status_code == 200, first.text
    assert_problem(other, 409, "idempotency_conflict", "refund_id")
    assert (await traces(shop))["refunds"] == 1


# --- customers ----------------------------------------------------------------------------


def phone_of(shop: Shop) -> str:
    return f"+7916{shop.program_id % 10_000_000:07d}"


def wrong_check_digit(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


GOOD_CARD = make_card_number("27", 9_999_999)

BAD_REGISTRATIONS = [
    pytest.param({"phone": "+7 999 000"}, "phone", "bad_format", id="phone-not-a-number"),
    pytest.param({"phone": "abcdefgh"}, "phone", "bad_format", id="phone-letters"),
    pytest.param({"phone": "123"}, "phone", "too_short", id="phone-too-short"),
    pytest.param({"phone": 79161234567}, "phone", "wrong_type", id="phone-a-number"),
    pytest.param({"phone": None}, "phone", "wrong_type", id="phone-null"),
    pytest.param({"phone": "+7916\x001234567"}, "phone", "bad_format", id="phone-NUL"),
    pytest.param(
        {"card_number": wrong_check_digit(GOOD_CARD)},
        "card_number",
        "bad_check_digit",
        id="card-check-digit",
    ),
    pytest.param({"card_number": "12345"}, "card_number", "bad_format", id="card-too-short"),
    pytest.param({"email": "nope"}, "email", "bad_format", id="email"),
    pytest.param({"birthday": "2020-13-01"}, "birthday", "bad_format", id="birthday"),
    pytest.param({"gender": "x"}, "gender", "bad_value", id="gender"),
    pytest.param({"consent_sms": "yes"}, "consent_sms", "wrong_type", id="consent-a-string"),
    pytest.param({"first_name": "Ан\x00на"}, "first_name", "bad_format", id="name-NUL"),
    pytest.param({"first_name": "А" * 101}, "first_name", "too_long", id="name-oversized"),
    pytest.param({"loyalty": "gold"}, "loyalty", "unknown_field", id="unknown-field"),
]


@pytest.mark.parametrize(("change", "field", "field_code"), BAD_REGISTRATIONS)
async def test_a_bad_registration_is_refused_and_creates_nobody(
    shop: Shop, change: dict[str, Any], field: str, field_code: str
) -> None:
    body = {"phone": phone_of(shop), "first_name": "Анна", **change}

    r = await shop.post("/customers", body)

    assert_problem(r, 422, V, field, field_code=field_code)
    assert (await traces(shop))["customers"] == 0
    ok = await shop.post("/customers", {"phone": phone_of(shop), "card_number": GOOD_CARD})
    assert ok.status_code == 201, ok.text


async def test_a_taken_phone_or_card_is_409(shop: Shop) -> None:
    first = await shop.post("/customers", {"phone": phone_of(shop), "card_number": GOOD_CARD})

    same_phone = await shop.post("/customers", {"phone": phone_of(shop)})
    same_card = await shop.post("/customers", {"phone": "+79160000001", "card_number": GOOD_CARD})

    assert first.status_code == 201, first.text
    assert_problem(same_phone, 409, "already_registered", "phone")
    assert_problem(same_card, 409, "card_taken", "card_number")
    assert (await traces(shop))["customers"] == 1


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "field", "field_code"),
    [
        pytest.param("abc", {"code": "123456"}, 422, V, "customer_id", "bad_format", id="id-abc"),
        pytest.param("1", {"code": "12"}, 422, V, "code", "bad_format", id="code-short"),
        pytest.param("1", {"code": 123456}, 422, V, "code", "wrong_type", id="code-a-number"),
        pytest.param("1", {}, 422, V, "code", "required", id="code-missing"),
        pytest.param(
            "999999999",
            {"code": "123456"},
            404,
            "customer_not_found",
            "customer_id",
            None,
            id="unknown-customer",
        ),
    ],
)
async def test_a_bad_phone_confirmation_is_refused(
    shop: Shop,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
    field: str,
    field_code: str | None,
) -> None:
    r = await shop.post(f"/customers/{path}/confirm-phone", body)

    assert_problem(r, status, code, field, field_code=field_code)


# --- lookup -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "code", "field_code"),
    [
        pytest.param({}, 422, V, "required", id="missing"),
        pytest.param({"identifier": ""}, 422, V, "too_short", id="empty"),
        pytest.param({"identifier": "   "}, 422, V, "too_short", id="blank"),
        pytest.param({"identifier": "2" * 65}, 422, V, "too_long", id="oversized"),
        pytest.param({"identifier": "2000\x000"}, 422, V, "bad_format", id="NUL"),
        pytest.param({"identifier": "2000\n0"}, 422, V, "bad_format", id="newline"),
        pytest.param(
            {"identifier": "2999999999990"}, 404, "unknown_identifier", None, id="unknown"
        ),
        pytest.param(
            {"identifier": "+7 000 000-00-00"}, 404, "unknown_identifier", None, id="phone"
        ),
    ],
)
async def test_a_bad_lookup_is_refused(
    shop: Shop, params: dict[str, str], status: int, code: str, field_code: str | None
) -> None:
    r = await shop.get("/customers/lookup", params=params)

    assert_problem(r, status, code, "identifier", field_code=field_code)


# --- outside the API ----------------------------------------------------------------------


async def test_an_unknown_path_or_method_is_a_problem_too(shop: Shop) -> None:
    unknown = await shop.get("/receipts")
    wrong_method = await shop.get("/purchases")

    assert_problem(unknown, 404, "not_found")
    assert_problem(wrong_method, 405, "method_not_allowed")
