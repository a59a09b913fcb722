"""Per-program settings through the admin API, as the till, the worker and the cabinet
then use them (issue 9).  Both databases."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import select, update

from kopilka.notify.channels.sms import JsonSms
from kopilka.notify.config import DeliveryPolicy
from kopilka.notify.outbox import Notifier, run_once
from kopilka.services.admin import do_add_token
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Shop, receipt
from tests.notify.conftest import HttpReceiver

FAST = DeliveryPolicy(base_delay_s=1, max_delay_s=5, max_attempts=3, lease_s=60)


def png(colour: tuple[int, int, int] = (200, 30, 30), size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, "PNG")
    return out.getvalue()


async def token(rt: Runtime, shop: Shop) -> dict[str, str]:
    key = await do_add_token(rt, name="marketer", program_code=shop.code, role="marketer")
    return {"Authorization": f"Bearer {key}"}


async def test_bad_settings_are_all_named_and_nothing_is_written(
    rt: Runtime, make_shop: Any, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    auth = await token(rt, shop)
    url = f"/api/admin/v1/programs/{shop.code}/settings"
    before = (await client.get(url, headers=auth)).json()

    r = await client.patch(
        url,
        headers=auth,
        json={
            "point_value": "-1",
            "timezone": "Mars/Olympus",
            "points_ru": ["миля", "мили"],
            "sms_sender": "ТОЛЬКО-ЛАТИНИЦА",
            "primary_colour": "#12345",
            "brand_name": "Мили",  # a good one: not written either
        },
    )

    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert sorted(e["field"] for e in r.json()["errors"]) == [
        "point_value",
        "points_ru",
        "primary_colour",
        "sms_sender",
        "timezone",
    ]
    assert (await client.get(url, headers=auth)).json() == before
    not_json = await client.patch(url, headers=auth, content=b"{")
    assert (not_json.status_code, not_json.json()["code"]) == (400, "malformed_json")


async def test_miles_reach_the_receipt_the_sms_and_its_sender(
    rt: Runtime, make_shop: Any, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    auth = await token(rt, shop)
    url = f"/api/admin/v1/programs/{shop.code}/settings"
    v1 = (await client.get(url, headers=auth)).json()

    profile_only = await client.patch(
        url,
        headers=auth,
        json={"points_ru": ["миля", "мили", "миль"], "points_en": ["mile", "miles"],
              "sms_sender": "MILES", "language": "en"},
    )  # fmt: skip
    rules = await client.patch(
        url, headers=auth, json={"point_value": "0.5", "timezone": "Asia/Omsk"}
    )

    assert profile_only.status_code == 200, profile_only.text
    assert profile_only.json()["version"] == v1["version"]  # the profile is not versioned
    assert rules.status_code == 200, rules.text
    assert (rules.json()["version"], rules.json()["point_value"], rules.json()["timezone"]) == (
        v1["version"] + 1,
        "0.5",
        "Asia/Omsk",
    )
    assert rules.json()["points_ru"] == ["миля", "мили", "миль"]

    m = await shop.customer(points=100)
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers).where(t.customers.c.id == m.customer_id).values(consent_sms=True)
        )
    # 1000 ₽, 40 miles burned at 0.5 ₽ = 20 ₽; 980 ₽ paid, 5 % = 49 miles; 100 - 40 + 49 = 109
    calc = await shop.post(
        "/purchases/calculate", receipt("M-1", m.card, ("a", 1, "1000.00"), redeem_points="40")
    )
    conf = await shop.post("/purchases/M-1/confirm")
    assert calc.status_code == 200, calc.text
    assert conf.json()["receipt_text"] == [
        "Списано миль: 40.00 (оплачено 20.00 руб.)",
        "Начислено миль: 49.00",
        "Баланс: 109.00 миль",
    ]

    gateway = HttpReceiver()
    gateway.start()
    try:
        notifier = Notifier({"sms": JsonSms(gateway.url + "/sms")}, FAST)
        await run_once(rt, notifier, worker_id="settings-test", program_ids=[shop.program_id])
    finally:
        gateway.stop()
    [sms] = [s.json() for s in gateway.seen]
    assert sms["from"] == "MILES"
    assert sms["text"].startswith("Earned 49 miles. Redeemed 40 miles. Balance: 109 miles.")
    async with rt.engine.connect() as conn:
        senders = (
            (
                await conn.execute(
                    select(t.deliveries.c.sender).where(
                        t.deliveries.c.program_id == shop.program_id
                    )
                )
            )
            .scalars()
            .all()
        )
    assert senders == ["MILES"]


async def test_the_logo_is_checked_stored_and_served_to_the_cabinet(
    rt: Runtime, make_shop: Any, client: httpx.AsyncClient
) -> None:
    shop = await make_shop()
    auth = await token(rt, shop)
    base = f"/api/admin/v1/programs/{shop.code}"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    image = png()

    refused = await client.put(base + "/logo", headers=auth, content=svg)
    huge = await client.put(base + "/logo", headers=auth, content=png(size=2100))
    stored = await client.put(base + "/logo", headers=auth, content=image)
    colour = await client.patch(
        base + "/settings", headers=auth, json={"primary_colour": "#1E6FD9"}
    )
    served = await client.get(f"/my/{shop.code}/logo")
    css = await client.get(f"/my/{shop.code}/brand.css")
    login = await client.get(f"/my/{shop.code}/login")

    assert (refused.status_code, refused.json()["field"]) == (422, "logo")
    assert (huge.status_code, huge.json()["field"]) == (422, "logo")
    assert stored.status_code == 200, stored.text
    assert stored.json()["content_type"] == "image/png"
    assert (served.status_code, served.headers["content-type"], served.content) == (
        200,
        "image/png",
        image,
    )
    assert colour.json()["primary_colour"] == "#1e6fd9"
    assert css.headers["content-type"].startswith("text/css")
    assert "--pico-primary: #1e6fd9" in css.text
    assert f'href="/my/{shop.code}/brand.css?v=1e6fd9"' in login.text
    assert f'src="/my/{shop.code}/logo?v={stored.json()["sha256"][:12]}"' in login.text
    assert "script-src 'self'" in login.headers["content-security-policy"]

    removed = await client.delete(base + "/logo", headers=auth)
    assert removed.status_code == 204
    assert (await client.get(f"/my/{shop.code}/logo")).status_code == 404
