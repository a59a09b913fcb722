"""Admin API for campaigns: create, list, report — the console's service over HTTP."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from sqlalchemy import update

from kopilka.services import admin, campaigns
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t


async def test_create_list_and_report_over_the_api(
    make_shop: Any, rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    members = [await shop.customer() for _ in range(2)]
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id.in_([m.customer_id for m in members]))
            .values(consent_sms=True)
        )
    key = await admin.do_add_token(
        rt, name=f"mk-{secrets.token_hex(2)}", program_code=shop.code, role="marketer"
    )
    auth = {"Authorization": f"Bearer {key}"}
    base = f"/api/admin/v1/programs/{shop.code}/campaigns"

    bad = await client.post(base, json={"name": "x", "channel": "fax", "body": "b"}, headers=auth)
    assert bad.status_code == 422
    refused = await client.post(
        base,
        json={"name": "x", "channel": "sms", "body": "b", "quiet_start": "21:00"},
        headers=auth,
    )
    assert refused.status_code == 422 and "quiet" in refused.text

    r = await client.post(
        base,
        json={
            "name": "API spring",
            "channel": "sms",
            "body": "{{ name }}, hello",
            "audience": {"listed": [members[0].phone]},
            "control_percent": 0,
        },
        headers=auth,
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["state"] == "scheduled" and "/unsubscribe" not in r.json()["body"]
    assert "unsubscribe_url" in r.json()["body"]

    listed = (await client.get(base, headers=auth)).json()
    assert listed["total"] == 1 and listed["campaigns"][0]["name"] == "API spring"

    await campaigns.run_due(rt)
    rep = await client.get(f"{base}/{cid}/report", headers=auth)
    assert rep.status_code == 200, rep.text
    body = rep.json()
    assert body["recipients"] == {"sent": 1}  # only the listed phone
    assert body["response"]["target"]["customers"] == 1
    assert body["response"]["uplift_per_customer"] == "0.00"

    analyst = await admin.do_add_token(
        rt, name=f"an-{secrets.token_hex(2)}", program_code=shop.code, role="analyst"
    )
    no = await client.post(
        base,
        json={"name": "x", "channel": "sms", "body": "b"},
        headers={"Authorization": f"Bearer {analyst}"},
    )
    assert no.status_code == 403
