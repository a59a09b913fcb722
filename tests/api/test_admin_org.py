"""Admin API: stores, terminals, users, the audit log — the console's services."""

from __future__ import annotations

import csv
import io
import secrets
from typing import Any

import httpx
from sqlalchemy import update

from kopilka.services import admin
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

API = "/api/admin/v1"


async def _token(rt: Runtime, *, program: str | None = None, role: str = "owner") -> dict[str, str]:
    key = await admin.do_add_token(rt, name=f"org-{secrets.token_hex(3)}", program_code=program)
    if role != "owner":
        async with rt.engine.begin() as conn:
            await conn.execute(
                update(t.admin_tokens)
                .where(t.admin_tokens.c.key_prefix == key[:10])
                .values(role=role)
            )
    return {"Authorization": f"Bearer {key}"}


async def test_stores_are_created_checked_changed_and_listed(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()
    h = await _token(rt, program=shop.code)
    url = f"{API}/programs/{shop.code}/stores"
    bad = await client.post(
        url,
        headers=h,
        json={"code": "N1", "name": "North", "partner": "main", "latitude": "91", "longitude": 37},
    )
    assert bad.status_code == 422, bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["field"] == "latitude"
    unknown = await client.post(
        url, headers=h, json={"code": "N1", "name": "N", "partner": "main", "x": 1}
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "x"
    tz = await client.post(
        url, headers=h, json={"code": "N1", "name": "N", "partner": "main", "timezone": "Mars/Base"}
    )
    assert tz.json()["field"] == "timezone"
    nopartner = await client.post(
        url, headers=h, json={"code": "N1", "name": "N", "partner": "nope"}
    )
    assert nopartner.status_code == 422 and nopartner.json()["field"] == "partner"

    made = await client.post(
        url,
        headers=h,
        json={
            "code": "N1",
            "name": "North",
            "partner": "main",
            "city": "Тверь",
            "latitude": 56.8587,
            "longitude": "35.9176",
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["latitude"] == "56.8587" and made.json()["longitude"] == "35.9176"
    again = await client.post(
        url, headers=h, json={"code": "N1", "name": "North", "partner": "main"}
    )
    assert again.status_code == 409 and again.json()["field"] == "code"

    changed = await client.patch(f"{url}/N1", headers=h, json={"city": "Клин"})
    assert changed.status_code == 200 and changed.json()["city"] == "Клин"
    listed = await client.get(url, headers=h, params={"city": "Клин"})
    assert [s["code"] for s in listed.json()["items"]] == ["N1"]
    every = await client.get(url, headers=h, params={"sort": "name", "desc": "true"})
    assert every.json()["total"] == 2

    # A token of another program cannot reach this one.
    other = await make_shop()
    h2 = await _token(rt, program=other.code)
    assert (await client.get(url, headers=h2)).status_code == 403
    # An analyst's token reads but cannot write.
    ha = await _token(rt, program=shop.code, role="analyst")
    assert (await client.get(url, headers=ha)).status_code == 200
    refused = await client.post(
        url, headers=ha, json={"code": "N2", "name": "N", "partner": "main"}
    )
    assert refused.status_code == 403


async def test_a_terminal_key_is_returned_once_and_disabling_refuses_the_till(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()
    member = await shop.customer(10)
    h = await _token(rt, program=shop.code)
    base = f"{API}/programs/{shop.code}/stores/{shop.store_code}/terminals"
    made = await client.post(base, headers=h, json={"name": "till 9"})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    till = {"Authorization": f"Bearer {key}"}
    look = await client.get(
        "/api/pos/v1/customers/lookup", params={"identifier": member.card}, headers=till
    )
    assert look.status_code == 200
    listed = (await client.get(base, headers=h)).json()["items"]
    assert key not in str(listed)
    mine = next(x for x in listed if x["name"] == "till 9")
    assert mine["key_prefix"] == key[:10] and mine["status"] == "active"

    await rt.flush_last_seen(force=True)
    listed = (await client.get(base, headers=h)).json()["items"]
    assert next(x for x in listed if x["name"] == "till 9")["last_seen_at"] is not None

    off = await client.post(f"{API}/programs/{shop.code}/terminals/{mine['id']}/disable", headers=h)
    assert off.status_code == 200, off.text
    refused = await client.get(
        "/api/pos/v1/customers/lookup", params={"identifier": member.card}, headers=till
    )
    assert refused.status_code == 403 and refused.json()["code"] == "terminal_disabled"
    twice = await client.post(
        f"{API}/programs/{shop.code}/terminals/{mine['id']}/disable", headers=h
    )
    assert twice.status_code == 409
    # Another program's terminal is not found through this program.
    other = await make_shop()
    h2 = await _token(rt, program=other.code)
    assert (
        await client.post(f"{API}/programs/{other.code}/terminals/{mine['id']}/disable", headers=h2)
    ).status_code == 404


async def test_users_are_created_changed_and_the_audit_log_is_listed_and_exported(
    rt: Runtime, client: httpx.AsyncClient, make_shop: Any
) -> None:
    shop = await make_shop()
    h = await _token(rt, program=shop.code)
    login = f"api-{secrets.token_hex(3)}"
    short = await client.post(
        f"{API}/users",
        headers=h,
        json={"login": login, "name": "Pat", "password": "short", "role": "support"},
    )
    assert short.status_code == 422 and short.json()["field"] == "password"
    nopartner = await client.post(
        f"{API}/users",
        headers=h,
        json={"login": login, "name": "Pat", "password": "long-enough-1", "role": "partner"},
    )
    assert nopartner.status_code == 422 and nopartner.json()["field"] == "partner"
    badrole = await client.post(
        f"{API}/users",
        headers=h,
        json={"login": login, "name": "Pat", "password": "long-enough-1", "role": "king"},
    )
    assert badrole.status_code == 422 and badrole.json()["field"] == "role"
    made = await client.post(
        f"{API}/users",
        headers=h,
        json={
            "login": login,
            "name": "Pat",
            "password": "long-enough-1",
            "role": "partner",
            "partner": "main",
        },
    )
    assert made.status_code == 201, made.text
    user = made.json()
    assert user["program_id"] == shop.program_id and user["partner_id"] == shop.partner_id
    assert "password" not in str(user)

    changed = await client.patch(
        f"{API}/users/{user['id']}",
        headers=h,
        json={"role": "cashier", "store": shop.store_code, "email": "pat@example.org"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "cashier" and changed.json()["partner_id"] is None
    off = await client.patch(f"{API}/users/{user['id']}", headers=h, json={"active": False})
    assert off.json()["active"] is False
    listed = await client.get(f"{API}/users", headers=h, params={"q": login})
    assert [u["login"] for u in listed.json()["items"]] == [login]

    # A security token reads the audit log; a support token may not.
    hs = await _token(rt, program=shop.code, role="security")
    log = await client.get(
        f"{API}/audit", headers=hs, params={"object_type": "user", "object_id": str(user["id"])}
    )
    assert log.status_code == 200, log.text
    actions = [r["action"] for r in log.json()["items"]]
    assert actions[-1] == "user.create" and actions.count("user.update") == 3
    assert any(r["after"] == {"email": "pat@example.org"} for r in log.json()["items"])
    exported = await client.get(
        f"{API}/audit.csv", headers=hs, params={"object_type": "user", "object_id": str(user["id"])}
    )
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["action"] for r in rows] == list(reversed(actions))
    hsup = await _token(rt, program=shop.code, role="support")
    assert (await client.get(f"{API}/audit", headers=hsup)).status_code == 403
    assert (await client.get(f"{API}/users", headers=hsup)).status_code == 403
    bad = await client.get(f"{API}/audit", headers=hs, params={"since": "yesterday"})
    assert bad.status_code == 422 and bad.json()["field"] == "since"


async def test_the_org_endpoints_and_bodies_are_in_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    for name in ("StoreIn", "StoreChangeIn", "TerminalIn", "UserIn", "UserChangeIn"):
        assert name in doc["components"]["schemas"], name
    paths = doc["paths"]
    assert "post" in paths[f"{API}/programs/{{code}}/stores/{{store_code}}/terminals"]
    assert "patch" in paths[f"{API}/users/{{user_id}}"]
    assert "get" in paths[f"{API}/audit.csv"]
    body = paths[f"{API}/programs/{{code}}/stores"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/StoreIn")
