"""Admin API v1 additions of issue 6 on both databases: lists a page at a time, series
state, exports, blocking coupons, unblocking gift cards, all audited with the token as
the author, refused to a read-only token."""

from __future__ import annotations

import csv
import io
import secrets
from decimal import Decimal
from typing import Any

import httpx
import openpyxl
from sqlalchemy import select, update

from kopilka.services import admin, coupons, giftcards, rewards
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Shop

API = "/api/admin/v1/programs"


async def token(rt: Runtime, shop: Shop, role: str = "owner") -> dict[str, str]:
    name = f"{role}-{secrets.token_hex(3)}"
    key = await admin.do_add_token(rt, name=name, program_code=shop.code)
    if role != "owner":
        async with rt.engine.begin() as conn:
            await conn.execute(
                update(t.admin_tokens).where(t.admin_tokens.c.name == name).values(role=role)
            )
    return {"Authorization": f"Bearer {key}"}


async def audit(rt: Runtime, shop: Shop) -> list[tuple[str, str, str]]:
    a = t.audit_log.c
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(a.action, a.actor_kind, a.object_id)
                .where(a.program_id == shop.program_id)
                .order_by(a.id)
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_coupon_series_are_listed_exported_and_blocked(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()
    auth = await token(rt, shop)
    made = await coupons.do_create_series(
        rt, program_code=shop.code, code="API1", name="Api", count=7
    )
    base = f"{API}/{shop.code}"

    r = await client.get(f"{base}/coupon-series", headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total"], body["items"][0]["series"]) == (1, "API1")
    assert body["items"][0]["codes"] == {
        "issued": 7,
        "active": 7,
        "used": 0,
        "expired": 0,
        "blocked": 0,
    }
    r = await client.get(f"{base}/coupon-series/API1/coupons?limit=5&offset=5", headers=auth)
    assert (r.json()["total"], len(r.json()["items"])) == (7, 2)

    r = await client.post(
        f"{base}/coupons/{made[0]}/block", json={"reason": "leaked"}, headers=auth
    )
    assert (r.status_code, r.json()["state"]) == (200, "blocked")
    till = await shop.get(f"/coupons/{made[0]}")
    assert (till.json()["valid"], till.json()["reason"]) == (False, "coupon_blocked")
    r = await client.get(f"{base}/coupon-series/API1", headers=auth)
    assert r.json()["codes"]["blocked"] == 1

    r = await client.get(f"{base}/coupon-series/API1/export?format=csv&state=active", headers=auth)
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"coupons-API1.csv\"; filename*=UTF-8''coupons-API1.csv"
    )
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert sorted(x["code"] for x in rows) == sorted(made[1:])
    r = await client.get(f"{base}/coupon-series/API1/export?format=xlsx", headers=auth)
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    assert sorted(c[0].value for c in ws.iter_rows(min_row=2)) == sorted(made)

    r = await client.post(f"{base}/coupon-series/API1/block", headers=auth)
    assert r.json() == {"series": "API1", "changed": 6}
    r = await client.post(f"{base}/coupon-series/API1/unblock", headers=auth)
    assert r.json() == {"series": "API1", "changed": 7}
    assert [a[0] for a in await audit(rt, shop)] == [
        "coupon.block",
        "coupon_series.block",
        "coupon_series.unblock",
    ]
    assert {a[1] for a in await audit(rt, shop)} == {"token"}

    r = await client.get(f"{base}/coupon-series/NOPE", headers=auth)
    assert (r.status_code, r.json()["code"]) == (404, "coupon_series_not_found")
    r = await client.get(f"{base}/coupon-series/API1/export?format=pdf", headers=auth)
    assert r.status_code == 422


async def test_a_read_only_token_lists_but_cannot_block(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()
    auth = await token(rt, shop, "analyst")
    made = await coupons.do_create_series(rt, program_code=shop.code, code="RO", name="ro", count=1)
    base = f"{API}/{shop.code}"

    assert (await client.get(f"{base}/coupon-series", headers=auth)).status_code == 200
    r = await client.post(f"{base}/coupons/{made[0]}/block", headers=auth)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await client.post(f"{base}/coupon-series/RO/block", headers=auth)
    assert r.status_code == 403
    assert await audit(rt, shop) == []


async def test_gift_cards_are_listed_shown_unblocked_with_a_reason_and_exported(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()
    auth = await token(rt, shop)
    cards = await giftcards.do_create_series(
        rt, shop.code, code="G1", name="Gift", nominal=Decimal("750.50"), count=2
    )
    number = cards[0][0]
    assert (await shop.post(f"/gift-cards/{number}/activate")).status_code == 200
    base = f"{API}/{shop.code}"

    r = await client.post(
        f"{base}/gift-cards/{number}/block", json={"reason": "lost"}, headers=auth
    )
    assert r.json()["state"] == "blocked"
    r = await client.post(f"{base}/gift-cards/{number}/unblock", headers=auth)
    assert (r.status_code, r.json()["field"]) == (422, "reason")
    r = await client.post(
        f"{base}/gift-cards/{number}/unblock", json={"reason": "found"}, headers=auth
    )
    assert r.json()["state"] == "active"

    r = await client.get(f"{base}/gift-cards/{number}", headers=auth)
    card = r.json()
    assert (card["state"], card["balance"]) == ("active", "750.50")
    assert [m["kind"] for m in card["movements"]] == ["unblock", "block", "activate"]
    r = await client.get(f"{base}/gift-cards?state=issued", headers=auth)
    assert [x["number"] for x in r.json()["items"]] == [cards[1][0]]
    r = await client.get(f"{base}/gift-card-series", headers=auth)
    assert r.json()["items"][0]["by_state"] == {"active": 1, "issued": 1}
    assert r.json()["items"][0]["outstanding"] == "750.50"
    r = await client.get(f"{base}/gift-cards/export?format=csv&series=G1", headers=auth)
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {x["number"]: x["balance"] for x in rows} == {number: "750.50", cards[1][0]: "0.00"}
    assert "pin" not in rows[0]
    assert [a[0] for a in await audit(rt, shop)] == ["gift_card.block", "gift_card.unblock"]


async def test_draws_and_reward_orders_are_listed(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()
    auth = await token(rt, shop)
    base = f"{API}/{shop.code}"
    r = await client.post(
        f"{base}/draws",
        json={
            "code": "D1",
            "name": "Draw",
            "period_start": "2099-01-01T00:00:00+03:00",
            "period_end": "2099-02-01T00:00:00+03:00",
            "rules": {"prizes": [{"points": "10"}]},
        },
        headers=auth,
    )
    assert r.status_code == 201, r.text
    r = await client.get(f"{base}/draws", headers=auth)
    assert [(x["draw"], x["state"]) for x in r.json()["items"]] == [("D1", "open")]
    r = await client.get(f"{base}/draws/D1/winners?format=csv", headers=auth)
    assert r.content.decode("utf-8-sig").splitlines() == [
        "place,customer_id,account_id,name,card,prize,points"
    ]

    await rewards.do_add_reward(
        rt, program_id=shop.program_id, code="CUP", name="Cup", price_points=Decimal("10")
    )
    member = await shop.customer(100)
    order = await rewards.do_order(
        rt,
        program_id=shop.program_id,
        account_id=member.account_id,
        reward_code="CUP",
        idempotency_key=f"k{shop.program_id}",
    )
    r = await client.get(f"{base}/reward-orders?state=ordered", headers=auth)
    body = r.json()
    assert (body["total"], body["items"][0]["id"], body["items"][0]["customer_id"]) == (
        1,
        order.id,
        member.customer_id,
    )
    r = await client.get(f"{base}/reward-orders?state=issued", headers=auth)
    assert r.json()["total"] == 0
