"""A partner's webhook endpoint receives only its partner's events (issue 9): receipts at
its stores, fraud alerts of its stores, events of its customers that happened at no
store; a program-wide endpoint receives every event.  Real receiver, both databases."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import insert, update

from kopilka.notify import outbox
from kopilka.notify.channels.webhook import Webhook
from kopilka.notify.outbox import Notifier, run_once
from kopilka.services.runtime import Runtime, hash_key
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from tests.conftest import Clock, Shop, receipt
from tests.notify.conftest import HttpReceiver
from tests.notify.test_delivery import FAST


async def _partner_b(rt: Runtime, shop: Shop) -> tuple[int, int, str]:
    async with rt.engine.begin() as conn:
        partner = await insert_id(
            conn, t.partners, {"program_id": shop.program_id, "code": "b", "name": "B"}
        )
        store = await insert_id(
            conn,
            t.stores,
            {"program_id": shop.program_id, "partner_id": partner, "code": "SB", "name": "B1"},
        )
        key = f"kp_test_{secrets.token_hex(12)}"
        await conn.execute(
            insert(t.terminals),
            {
                "program_id": shop.program_id,
                "store_id": store,
                "name": "till b",
                "key_hash": hash_key(key),
                "key_prefix": key[:10],
                "created_at": rt.now(),
            },
        )
    return partner, store, key


async def test_a_partners_endpoint_gets_only_its_partners_events(
    make_shop: Any, rt: Runtime, clock: Clock, http_receiver: HttpReceiver
) -> None:
    clock.set(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    shop = await make_shop(earn_percent="10")
    b_partner, b_store, b_key = await _partner_b(rt, shop)
    member = await shop.customer()  # a customer of partner A (home store: A's)
    async with rt.engine.begin() as conn:
        a_store = (
            await conn.execute(
                t.stores.select().where(
                    t.stores.c.program_id == shop.program_id, t.stores.c.code == shop.store_code
                )
            )
        ).first()
        assert a_store is not None
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == member.customer_id)
            .values(home_store_id=a_store.id)
        )
    for path, partner in (("/all", None), ("/a", shop.partner_id), ("/b", b_partner)):
        await outbox.add_webhook(
            rt,
            program_id=shop.program_id,
            url=http_receiver.url + path,
            secret="whsec-0123456789abcdef",
            partner_id=partner,
        )
    # a receipt of A's customer at A's store, another at B's store
    for rid, key in (("at-a", shop.key), ("at-b", b_key)):
        h = {"Authorization": f"Bearer {key}"}
        calc = receipt(rid, member.card, ("sku", 1, "100.00"))
        assert (
            await shop.client.post("/api/pos/v1/purchases/calculate", json=calc, headers=h)
        ).status_code == 200
        assert (
            await shop.client.post(f"/api/pos/v1/purchases/{rid}/confirm", headers=h)
        ).status_code == 200
    # a fraud alert at B's store, and A's customer's points expiring (no store)
    async with rt.engine.begin() as conn:
        for topic, payload in (
            ("fraud.alert", {"alert_id": 1, "rule": "x", "severity": "high", "store_id": b_store}),
            (
                "points.expiring",
                {"account_id": member.account_id, "points": "10.00", "expires_on": "01.12.2026"},
            ),
        ):
            await conn.execute(
                insert(t.outbox),
                {
                    "program_id": shop.program_id,
                    "topic": topic,
                    "payload": orjson.dumps(payload).decode(),
                    "created_at": rt.now(),
                },
            )

    await run_once(
        rt, Notifier({"webhook": Webhook()}, FAST), worker_id="w", program_ids=[shop.program_id]
    )

    got: dict[str, list[str]] = {}
    for seen in http_receiver.seen:
        event = seen.json()
        what = event["topic"]
        if what == "purchase.confirmed":
            what += ":" + (
                "a" if event["data"]["receipt_pk"] == min(_receipts(http_receiver)) else "b"
            )
        got.setdefault(seen.path, []).append(what)
    assert sorted(got["/all"]) == sorted(
        ["purchase.confirmed:a", "purchase.confirmed:b", "fraud.alert", "points.expiring"]
    )
    assert sorted(got["/a"]) == ["points.expiring", "purchase.confirmed:a"]
    assert sorted(got["/b"]) == ["fraud.alert", "purchase.confirmed:b"]


def _receipts(receiver: HttpReceiver) -> list[int]:
    return [
        s.json()["data"]["receipt_pk"]
        for s in receiver.seen
        if s.json()["topic"] == "purchase.confirmed"
    ]
