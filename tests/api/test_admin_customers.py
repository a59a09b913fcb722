"""Admin API: customers and cards through the real app (both databases): search, the
customer, the audited actions, refusals (role, program scope, missing reason, bad body)."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from sqlalchemy import update

from kopilka.domain.identifiers import make_card_number
from kopilka.services import admin
from kopilka.services.audit import AuditFilter, list_audit
from kopilka.services.ledger_jobs import verify_ledger
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Shop, receipt

API = "/api/admin/v1"


async def token(rt: Runtime, shop: Shop, role: str = "support", *, scoped: bool = True) -> Any:
    key = await admin.do_add_token(
        rt, name=f"{role}-{secrets.token_hex(2)}", program_code=shop.code if scoped else None
    )
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.admin_tokens).where(t.admin_tokens.c.key_prefix == key[:10]).values(role=role)
        )
    return {"Authorization": f"Bearer {key}"}


async def test_search_and_read_a_customer(client: httpx.AsyncClient, make_shop: Any) -> None:
    shop = await make_shop()
    m = await shop.customer(75, last_name="Белова")
    h = await token(shop.rt, shop)
    by_phone = await client.get(
        f"{API}/programs/{shop.code}/customers", params={"q": m.phone}, headers=h
    )
    by_name = await client.get(
        f"{API}/programs/{shop.code}/customers", params={"q": "бел", "sort": "balance"}, headers=h
    )
    one = await client.get(f"{API}/programs/{shop.code}/customers/{m.customer_id}", headers=h)
    missing = await client.get(f"{API}/programs/{shop.code}/customers/999999999", headers=h)

    assert by_phone.status_code == 200, by_phone.text
    assert by_phone.json()["matched_by"] == "phone"
    assert [c["id"] for c in by_phone.json()["customers"]] == [m.customer_id]
    assert m.customer_id in [c["id"] for c in by_name.json()["customers"]]
    body = one.json()
    assert body["balance"] == {
        "available": "75.00",
        "pending": "0.00",
        "held": "0.00",
        "debt": "0.00",
    }
    assert body["cards"][0]["number"] == m.card and body["cards"][0]["status"] == "active"
    assert missing.status_code == 404 and missing.json()["code"] == "customer_not_found"


async def test_adjust_needs_a_reason_and_is_audited_under_the_token(
    client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()
    m = await shop.customer(10)
    h = await token(shop.rt, shop)
    url = f"{API}/programs/{shop.code}/customers/{m.customer_id}/adjust"

    no_reason = await client.post(url, json={"amount": "5"}, headers=h)
    extra = await client.post(url, json={"amount": "5", "reason": "ok!", "x": 1}, headers=h)
    blank = await client.post(url, json={"amount": "5", "reason": "     "}, headers=h)
    too_much = await client.post(url, json={"amount": "-11", "reason": "typo fix"}, headers=h)
    ok = await client.post(url, json={"amount": "2.50", "reason": "goodwill"}, headers=h)

    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "x"
    assert blank.status_code == 422 and blank.json()["field"] == "reason"
    assert too_much.status_code == 422 and too_much.json()["code"] == "insufficient_points"
    assert too_much.json()["field"] == "amount"
    assert ok.status_code == 200, ok.text
    assert ok.json()["after"]["available"] == "12.50"
    rows, _ = await list_audit(
        shop.rt, AuditFilter(object_type="account", object_id=str(m.account_id))
    )
    assert [(r.action, r.actor_kind, r.reason) for r in rows] == [
        ("points.adjust", "token", "goodwill")
    ]


async def test_block_unblock_replace_virtual_card_consents_and_merge(
    client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop(earn_percent="10")
    m = await shop.customer(40)
    dup = await shop.customer(15)
    h = await token(shop.rt, shop)
    base = f"{API}/programs/{shop.code}"

    blocked = await client.post(f"{base}/cards/{m.card}/block", json={"reason": "lost"}, headers=h)
    till = await shop.post("/purchases/calculate", receipt("a1", m.card, ("x", 1, "10")))
    again = await client.post(f"{base}/cards/{m.card}/block", json={"reason": "lost"}, headers=h)
    unblocked = await client.post(
        f"{base}/cards/{m.card}/unblock", json={"reason": "found"}, headers=h
    )
    new = make_card_number("28", shop.program_id * 1000 + 99)
    bad_new = await client.post(
        f"{base}/cards/{m.card}/replace", json={"new": "123", "reason": "lost"}, headers=h
    )
    replaced = await client.post(
        f"{base}/cards/{m.card}/replace", json={"new": new, "reason": "lost"}, headers=h
    )
    virtual = await client.post(
        f"{base}/customers/{m.customer_id}/virtual-card", json={"reason": "app"}, headers=h
    )
    consents = await client.put(
        f"{base}/customers/{m.customer_id}/consents",
        json={"sms": True, "email": "yes", "reason": "asked"},
        headers=h,
    )
    consents_ok = await client.put(
        f"{base}/customers/{m.customer_id}/consents",
        json={"sms": True, "email": False, "reason": "asked"},
        headers=h,
    )
    merged = await client.post(
        f"{base}/customers/{m.customer_id}/merge",
        json={"absorbed_id": dup.customer_id, "reason": "same person"},
        headers=h,
    )
    view = (await client.get(f"{base}/customers/{m.customer_id}", headers=h)).json()

    assert blocked.status_code == 200, blocked.text
    assert till.status_code == 422 and till.json()["code"] == "card_blocked"
    assert again.status_code == 409
    assert unblocked.status_code == 200
    assert bad_new.status_code == 422 and bad_new.json()["errors"][0]["field"] == "new"
    assert replaced.status_code == 200 and replaced.json()["new"] == new
    assert virtual.status_code == 201 and virtual.json()["number"].startswith("29")
    assert consents.status_code == 422 and consents.json()["errors"][0]["field"] == "email"
    assert consents_ok.status_code == 200
    assert merged.status_code == 200 and merged.json()["points_moved"] == "15.00"
    assert view["balance"]["available"] == "55.00"
    assert view["consents"] == {"sms": True, "email": False}
    assert {c["number"] for c in view["cards"]} >= {m.card, new, dup.card, virtual.json()["number"]}
    bad = [
        d for d in await verify_ledger(shop.rt) if d.account_id in (m.account_id, dup.account_id)
    ]
    assert bad == []


async def test_a_role_without_the_permission_and_another_program_are_refused(
    client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()
    other = await make_shop()
    m = await shop.customer(10)
    analyst = await token(shop.rt, shop, "analyst")
    security = await token(shop.rt, shop, "security")
    elsewhere = await token(shop.rt, other)
    base = f"{API}/programs/{shop.code}"

    read = await client.get(f"{base}/customers", params={"q": m.card}, headers=analyst)
    adjust = await client.post(
        f"{base}/customers/{m.customer_id}/adjust",
        json={"amount": "5", "reason": "because"},
        headers=security,
    )
    block = await client.post(
        f"{base}/cards/{m.card}/block", json={"reason": "fraud"}, headers=security
    )
    scoped = await client.get(f"{base}/customers/{m.customer_id}", headers=elsewhere)
    no_token = await client.get(f"{base}/customers/{m.customer_id}")

    assert read.status_code == 403 and read.json()["code"] == "forbidden"
    assert adjust.status_code == 403
    assert block.status_code == 200, block.text
    assert scoped.status_code == 403
    assert no_token.status_code == 401


async def test_the_openapi_document_lists_the_customer_endpoints(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert "/api/admin/v1/programs/{code}/customers/{customer_id}/merge" in doc["paths"]
    assert "AdjustIn" in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["AdjustIn"]["additionalProperties"] is False
