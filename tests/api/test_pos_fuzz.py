"""Random bodies at the POS endpoints, through the ASGI app, on both databases: a good
body with one field changed to any JSON value (or removed, or one unknown field added)
is answered below 500, and every refusal is problem+json of the documented shape.

Small on purpose (schemathesis covers the schema at large): the bodies start from what
the pydantic models accept, so the mutation reaches the checks behind the schema too.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kopilka.api.app import create_app
from kopilka.api.problems import CODES, TYPE_BASE
from kopilka.services.runtime import Runtime
from tests.conftest import Member, Shop

PROBLEM = "application/problem+json"

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(
            ["", "max", "1e400", "12,50", "-1", "0", "²" * 13, "1" * 13, "\x00", "NaN", "  "]
        ),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

# (endpoint, body path) pairs: what a mutation may touch.
PURCHASE_FIELDS = [
    ("receipt_id",),
    ("identifier",),
    ("occurred_at",),
    ("cashier_id",),
    ("lines",),
    ("lines", 0),
    ("lines", 0, "sku"),
    ("lines", 0, "name"),
    ("lines", 0, "category"),
    ("lines", 0, "quantity"),
    ("lines", 0, "price"),
    ("lines", 0, "amount"),
    ("lines", 0, "discount"),
    ("redeem_points",),
    ("total",),
    ("coupons",),
    ("coupons", 0),
    ("gift_cards",),
    ("gift_cards", 0, "number"),
    ("gift_cards", 0, "pin"),
    ("gift_cards", 0, "amount"),
]
REFUND_FIELDS = [("refund_id",), ("lines",), ("lines", 0, "index"), ("lines", 0, "quantity")]
CUSTOMER_FIELDS = [
    ("phone",),
    ("first_name",),
    ("email",),
    ("birthday",),
    ("gender",),
    ("card_number",),
    ("consent_sms",),
    ("invite_code",),
]


@pytest.fixture(scope="module")
async def edge(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(rt, sweep_every_s=0)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture(scope="module")
async def counter() -> AsyncIterator[list[int]]:
    yield [0]


def _purchase(rid: str, card: str) -> dict[str, Any]:
    return {
        "receipt_id": rid,
        "identifier": card,
        "occurred_at": None,
        "cashier_id": "c1",
        "lines": [
            {
                "sku": "coffee",
                "name": "Кофе",
                "category": "drinks",
                "quantity": "2",
                "price": "150.00",
                "amount": "300.00",
                "discount": "0",
            }
        ],
        "redeem_points": "10",
        "total": "300.00",
        "coupons": ["K7Q2-9XWD-M3"],
        "gift_cards": [{"number": "2000000000008", "pin": "1234", "amount": "1.00"}],
    }


def _mutate(body: dict[str, Any], path: tuple[str | int, ...], how: str, value: Any) -> None:
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    last = path[-1]
    if how == "remove":
        del node[last]
    elif how == "unknown" and isinstance(node, dict):
        node["zz_" + str(last)] = value
    else:
        node[last] = value


def _encode(body: Any) -> bytes:
    # The standard library writes any integer and NaN/Infinity (invalid JSON): both must
    # be refused cleanly, so neither is avoided.
    return json.dumps(body, ensure_ascii=False).encode()


def assert_clean(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    if r.status_code < 400:
        return
    assert r.headers["content-type"] == PROBLEM, r.text
    body = r.json()
    assert body["status"] == r.status_code
    assert body["type"] == TYPE_BASE + body["code"]
    assert isinstance(body["detail"], str) and body["detail"]
    if body["code"] == "validation_failed":
        assert body["errors"], body
        assert {e["code"] for e in body["errors"]} <= CODES, body
        assert body["field"] == body["errors"][0]["field"], body


SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(
    endpoint=st.sampled_from(["/purchases/calculate", "/purchases", "/purchases/batch"]),
    path=st.sampled_from(PURCHASE_FIELDS),
    how=st.sampled_from(["set", "set", "remove", "unknown"]),
    value=json_values,
)
@example(  # '²' passed str.isdigit() and crashed the gift card's Luhn check: a 500
    endpoint="/purchases/calculate", path=("gift_cards", 0, "number"), how="set", value="²" * 13
)
@example(  # read through a float as 1.00: now too_many_decimals
    endpoint="/purchases", path=("lines", 0, "price"), how="set", value=150.000000000000000001
)
async def test_a_purchase_with_one_field_changed_is_answered_cleanly(
    make_shop: Any,
    edge: httpx.AsyncClient,
    counter: list[int],
    endpoint: str,
    path: tuple[str | int, ...],
    how: str,
    value: Any,
) -> None:
    shop, member = await _shop(make_shop, edge, counter)
    counter[0] += 1
    body: Any = _purchase(f"f{counter[0]}", member.card)
    _mutate(body, path, how, value)
    if endpoint.endswith("batch"):
        body = {"receipts": [body]}

    r = await shop.client.post(
        "/api/pos/v1" + endpoint, content=_encode(body), headers=shop.headers
    )

    assert_clean(r)
    if endpoint.endswith("batch") and r.status_code == 200:
        item = r.json()["results"][0]
        assert item["status"] < 500, item
        if item["status"] >= 400:
            assert item["problem"]["code"] and item["problem"]["detail"], item


@SETTINGS
@given(
    path=st.sampled_from(REFUND_FIELDS),
    how=st.sampled_from(["set", "remove", "unknown"]),
    value=json_values,
)
async def test_a_refund_with_one_field_changed_is_answered_cleanly(
    make_shop: Any,
    edge: httpx.AsyncClient,
    counter: list[int],
    path: tuple[str | int, ...],
    how: str,
    value: Any,
) -> None:
    shop, _ = await _shop(make_shop, edge, counter)
    counter[0] += 1
    body: Any = {"refund_id": f"x{counter[0]}", "lines": [{"index": 0, "quantity": "1"}]}
    _mutate(body, path, how, value)

    r = await shop.client.post(
        f"/api/pos/v1/purchases/{_SOLD[shop.key]}/refunds",
        content=_encode(body),
        headers=shop.headers,
    )

    assert_clean(r)


@SETTINGS
@given(
    path=st.sampled_from(CUSTOMER_FIELDS),
    how=st.sampled_from(["set", "remove", "unknown"]),
    value=json_values,
)
async def test_a_registration_with_one_field_changed_is_answered_cleanly(
    make_shop: Any,
    edge: httpx.AsyncClient,
    counter: list[int],
    path: tuple[str | int, ...],
    how: str,
    value: Any,
) -> None:
    shop, _ = await _shop(make_shop, edge, counter)
    counter[0] += 1
    body: Any = {
        "phone": f"+7916{counter[0]:07d}",
        "first_name": "Иван",
        "email": "ivan@example.org",
        "birthday": "1990-05-01",
        "gender": "m",
        "card_number": None,
        "consent_sms": True,
        "invite_code": None,
    }
    _mutate(body, path, how, value)

    r = await shop.client.post("/api/pos/v1/customers", content=_encode(body), headers=shop.headers)

    assert_clean(r)


# One shop per database (the module-scoped app serves them all), with a confirmed
# receipt to refund.
_SHOPS: dict[int, tuple[Shop, Member]] = {}
_SOLD: dict[str, str] = {}


async def _shop(make_shop: Any, edge: httpx.AsyncClient, counter: list[int]) -> tuple[Shop, Member]:
    key = id(edge)
    if key not in _SHOPS:
        shop = dataclasses.replace(await make_shop(), client=edge)
        member = await shop.customer(points=500)
        sold = await shop.post("/purchases", _purchase_plain("sold", member.card))
        assert sold.status_code == 200, sold.text
        _SHOPS[key] = (shop, member)
        _SOLD[shop.key] = "sold"
    return _SHOPS[key]


def _purchase_plain(rid: str, card: str) -> dict[str, Any]:
    body = _purchase(rid, card)
    del body["coupons"], body["gift_cards"]
    body["lines"][0]["quantity"] = "5"
    body["lines"][0]["amount"] = body["total"] = "750.00"
    return body


@pytest.mark.parametrize("number", ["²" * 13, "١٢٣٤٥٦٧٨٩٠١٢٨"])
async def test_a_gift_card_number_of_other_digits_is_not_found(
    make_shop: Any, edge: httpx.AsyncClient, counter: list[int], number: str
) -> None:
    # a terminal of its own: the fuzzed bodies sent to the shared shop's terminal count
    # as wrong gift-card numbers, and enough of them lock the terminal (429)
    shop = dataclasses.replace(await make_shop(), client=edge)
    member = await shop.customer(points=500)
    counter[0] += 1
    body = _purchase(f"g{counter[0]}", member.card)
    del body["coupons"]
    body["gift_cards"][0]["number"] = number

    r = await shop.post("/purchases/calculate", body)

    assert r.status_code == 404, r.text
    assert (r.json()["code"], r.json()["field"]) == ("gift_card_not_found", "gift_cards[0].number")


async def test_a_confirm_carrying_the_receipt_again_is_not_refused_for_its_numbers(
    make_shop: Any, edge: httpx.AsyncClient, counter: list[int]
) -> None:
    shop, member = await _shop(make_shop, edge, counter)
    counter[0] += 1
    body = _purchase_plain(f"c{counter[0]}", member.card)
    await shop.post("/purchases/calculate", body)
    body["lines"][0]["price"] = 150.000000000000000001  # ignored by confirm: no refusal
    raw = _encode(body).replace(b"150.0", b"150.000000000000000001")

    r = await shop.client.post(
        f"/api/pos/v1/purchases/{body['receipt_id']}/confirm", content=raw, headers=shop.headers
    )

    assert r.status_code == 200, r.text
    assert r.json()["state"] == "confirmed"
