"""Offline burn end to end on both databases: keys for tills, tokens for members, and the
reconciliation of receipts that burned points under a token while the till was offline.

Expected balances are worked out by hand in each test from the program's settings
(earn 5 % of what was paid in money, points worth a rouble, up to 100 % of a receipt).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select

from kopilka import cli
from kopilka.services import offline
from kopilka.services.ledger_jobs import verify_ledger
from kopilka.services.runtime import hash_key
from kopilka.store import tables as t
from tests.conftest import Clock, Member, Shop, receipt

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
SETTINGS = {"burn_max_percent": "100", "offline_cap_max": "300"}


async def _token(shop: Shop, member: Member) -> offline.IssuedToken:
    return await offline.do_issue_token(
        shop.rt,
        program_id=shop.program_id,
        account_id=member.account_id,
        card_number=member.card,
        channel="app",
    )


async def _second_till(shop: Shop) -> Shop:
    key = f"kp_test_{secrets.token_hex(12)}"
    async with shop.rt.engine.begin() as conn:
        store = (
            await conn.execute(
                select(t.stores.c.id).where(
                    t.stores.c.program_id == shop.program_id, t.stores.c.code == shop.store_code
                )
            )
        ).scalar_one()
        await conn.execute(
            insert(t.terminals),
            {
                "program_id": shop.program_id,
                "store_id": store,
                "name": "till 2",
                "key_hash": hash_key(key),
                "key_prefix": key[:10],
                "created_at": shop.rt.now(),
            },
        )
    return Shop(shop.rt, shop.client, shop.program_id, shop.partner_id, shop.store_code, key)


def _offline(
    rid: str, token: str, points: str, price: str = "1000.00", **kw: Any
) -> dict[str, Any]:
    at = kw.pop("occurred_at", (NOW + timedelta(minutes=5)).isoformat())
    return receipt(
        rid, None, ("a", 1, price), offline_token=token, redeem_points=points, occurred_at=at, **kw
    )


async def _alerts(shop: Shop) -> list[Any]:
    fa = t.fraud_alerts
    async with shop.rt.engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    select(fa.c.rule, fa.c.severity, fa.c.evidence, fa.c.card_number).where(
                        fa.c.program_id == shop.program_id
                    )
                )
            ).all()
        )


async def _ledger_ok(shop: Shop, *members: Member) -> None:
    ids = {m.account_id for m in members}
    assert [d for d in await verify_ledger(shop.rt) if d.account_id in ids] == []


async def test_a_token_caps_at_the_setting_and_the_balance_and_tills_get_its_key(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOW)
    shop = await make_shop(**SETTINGS)
    rich, poor = await shop.customer(1000), await shop.customer("120.50")

    before = (await shop.get("/offline/keys")).json()
    a = await _token(shop, rich)
    again = await _token(shop, rich)
    b = await _token(shop, poor)
    keys = (await shop.get("/offline/keys")).json()

    assert before["keys"] == []
    assert (a.cap, b.cap) == (Decimal("300.00"), Decimal("120.00"))  # step 1: floor
    assert again.token == a.token  # the same page shown again
    assert a.expires_at - a.issued_at == timedelta(minutes=15)
    assert [k["key_id"] for k in keys["keys"]] == [a.key_id]
    assert keys["rules"]["offline_cap_max"] == "300.00"
    raw = base64.urlsafe_b64decode(keys["keys"][0]["public_key"] + "=")
    assert len(raw) == 32


async def test_an_offline_burn_is_applied_once_and_a_replay_changes_nothing(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOW)
    shop = await make_shop(**SETTINGS)
    member = await shop.customer(1000)
    tok = await _token(shop, member)
    clock.set(NOW + timedelta(hours=2))  # the till came back online later

    first = await shop.post("/purchases", _offline("off-1", tok.token, "250"))
    again = await shop.post("/purchases", _offline("off-1", tok.token, "250"))
    bal = await shop.balance(member)

    assert first.status_code == 200, first.text
    assert again.content == first.content
    body = first.json()
    # 1000 - 250 burned = 750 paid; 5 % of 750 = 37.50 -> floor 37 earned
    assert (body["points_redeemed"], body["to_pay"], body["points_earned"]) == (
        "250.00",
        "750.00",
        "37.00",
    )
    assert body["offline"] == {
        "token_id": tok.token_id,
        "cap": "300.00",
        "use": 1,
        "burned_under_token": "250.00",
        "debt": "0.00",
    }
    assert bal["available"] == "787.00"  # 1000 - 250 + 37
    assert await _alerts(shop) == []
    await _ledger_ok(shop, member)


async def test_two_tills_one_token_the_second_is_applied_within_the_cap_as_debt_and_reported(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOW)
    shop = await make_shop(earn_percent="0", **SETTINGS)
    member = await shop.customer(200)
    tok = await _token(shop, member)  # cap 200: all the member has
    till2 = await _second_till(shop)
    clock.set(NOW + timedelta(hours=1))

    r1 = await shop.post("/purchases", _offline("t1-1", tok.token, "150"))
    r2 = await till2.post("/purchases", _offline("t2-1", tok.token, "50", price="80.00"))
    r3 = await till2.post("/purchases", _offline("t2-2", tok.token, "1", price="80.00"))
    bal = await shop.balance(member)
    alerts = await _alerts(shop)

    assert r1.status_code == 200, r1.text
    assert r2.status_code == 200, r2.text
    # the cap (200) is used up by 150 + 50: the third receipt is refused
    assert r3.status_code == 422
    assert (r3.json()["code"], r3.json()["field"]) == ("offline_cap_exceeded", "redeem_points")
    assert r2.json()["offline"]["use"] == 2
    assert r2.json()["offline"]["debt"] == "0.00"  # 50 points were still on the account
    assert bal["available"] == "0.00"
    assert [(a.rule, a.severity, a.card_number) for a in alerts] == [
        ("offline_token", "high", member.card)
    ]
    outcomes = sorted(x["outcome"] for x in __import__("json").loads(alerts[0].evidence))
    assert outcomes == ["applied", "refused"]
    await _ledger_ok(shop, member)


async def test_balance_spent_online_meanwhile_the_offline_burn_becomes_debt_within_the_cap(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOW)
    shop = await make_shop(**SETTINGS)
    member = await shop.customer(300)
    tok = await _token(shop, member)
    # online at another till: 280 of the 300 points are spent
    spent = await shop.post(
        "/purchases", receipt("online-1", member.card, ("b", 1, "280.00"), redeem_points="280")
    )
    clock.set(NOW + timedelta(hours=1))

    r = await shop.post("/purchases", _offline("off-2", tok.token, "300", price="500.00"))
    after = await shop.balance(member)
    # a later purchase pays the debt first: 5 % of 600 = 30 points
    later = await shop.post("/purchases", receipt("online-2", member.card, ("c", 1, "600.00")))

    assert spent.status_code == 200, spent.text
    assert r.status_code == 200, r.text
    # 20 points were left, 280 become debt; 500 - 300 = 200 paid earns 10, paying the debt
    assert r.json()["offline"]["debt"] == "280.00"
    assert after == {"available": "0.00", "pending": "0.00", "held": "0.00", "debt": "270.00"}
    assert later.json()["balance"]["available"] == "0.00"
    assert (await shop.balance(member))["debt"] == "240.00"
    await _ledger_ok(shop, member)


async def test_beyond_the_cap_is_refused_reported_and_nothing_is_written(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOW)
    shop = await make_shop(**SETTINGS)
    member = await shop.customer(1000)
    tok = await _token(shop, member)

    r = await shop.post("/purchases", _offline("off-3", tok.token, "301"))
    plain = await shop.post(
        "/purchases", receipt("off-3", member.card, ("a", 1, "1000.00"))
    )  # the same receipt uploaded again without the burn

    assert r.status_code == 422
    assert r.json()["code"] == "offline_cap_exceeded"
    assert r.json()["cap"] == "300.00"
    assert plain.status_code == 200, plain.text
    assert (await shop.balance(member))["available"] == "1050.00"  # 1000 + 5 % of 1000
    assert [(a.rule, a.severity) for a in await _alerts(shop)] == [("offline_token", "high")]


async def test_expired_tampered_and_foreign_tokens_are_refused(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOW)
    shop = await make_shop(**SETTINGS)
    other = await make_shop(**SETTINGS)
    member = await shop.customer(1000)
    stranger = await other.customer(1000)
    tok = await _token(shop, member)
    foreign = await _token(other, stranger)
    late = (tok.expires_at + timedelta(minutes=3)).isoformat()
    i = 40  # a character inside the signed part
    tampered = tok.token[:i] + ("A" if tok.token[i] != "A" else "B") + tok.token[i + 1 :]

    expired = await shop.post("/purchases", _offline("x1", tok.token, "10", occurred_at=late))
    bad = await shop.post("/purchases", _offline("x2", tampered, "10"))
    wrong = await shop.post("/purchases", _offline("x3", foreign.token, "10"))
    calc = await shop.post("/purchases/calculate", _offline("x4", tok.token, "10"))

    assert (expired.status_code, expired.json()["code"]) == (422, "offline_token_expired")
    assert (bad.json()["code"], bad.json()["field"]) == ("offline_token_invalid", "offline_token")
    assert wrong.json()["code"] == "offline_token_invalid"
    assert calc.json()["code"] == "not_supported"
    assert (await shop.balance(member))["available"] == "1000.00"


async def test_the_batch_reconciles_offline_receipts_each_on_its_own(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOW)
    shop = await make_shop(earn_percent="0", **SETTINGS)
    member = await shop.customer(500)
    tok = await _token(shop, member)
    clock.set(NOW + timedelta(minutes=30))

    body = {
        "receipts": [
            _offline("b-1", tok.token, "100"),
            _offline("b-2", tok.token, "250"),  # 100 + 250 > 300: refused
            _offline("b-1", tok.token, "100"),  # the first again: its first answer
        ]
    }
    r = await shop.post("/purchases/batch", body)
    again = await shop.post("/purchases/batch", body)

    res = r.json()["results"]
    assert [x["status"] for x in res] == [200, 422, 200]
    assert res[1]["problem"]["code"] == "offline_cap_exceeded"
    assert res[1]["problem"]["field"] == "receipts[1].redeem_points"
    assert res[2]["result"] == res[0]["result"]
    assert [x["status"] for x in again.json()["results"]] == [200, 422, 200]
    assert (await shop.balance(member))["available"] == "400.00"
    async with shop.rt.engine.connect() as conn:
        n = (
            await conn.execute(
                select(func.count()).where(t.offline_burns.c.program_id == shop.program_id)
            )
        ).scalar_one()
    assert n == 1


async def test_after_a_rotation_the_old_key_still_reconciles_its_tokens(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOW)
    shop = await make_shop(**SETTINGS)
    member = await shop.customer(1000)
    old = await _token(shop, member)

    new_key = await offline.do_rotate_keys(shop.rt, program_id=shop.program_id)
    listed = [k["key_id"] for k in (await shop.get("/offline/keys")).json()["keys"]]
    r = await shop.post("/purchases", _offline("rot-1", old.token, "100"))
    clock.set(NOW + timedelta(minutes=18))  # past the old tokens' life and the skew
    later = [k["key_id"] for k in (await shop.get("/offline/keys")).json()["keys"]]
    clock.set(NOW + timedelta(minutes=19))
    fresh = await _token(shop, member)

    assert listed == [new_key.key_id, old.key_id]
    assert r.status_code == 200, r.text
    assert later == [new_key.key_id]
    assert fresh.key_id == new_key.key_id


async def test_kopilka_offline_keys_rotate_publishes_a_new_signing_key(make_shop: Any) -> None:
    shop = await make_shop(**SETTINGS)
    first = await offline.do_rotate_keys(shop.rt, program_id=shop.program_id)

    def run() -> tuple[int, str]:  # the command in-process: no interpreter start-up
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(
                ["--db", shop.rt.url, "offline", "keys", "rotate", "--program", shop.code]
            )
        return code, out.getvalue()

    code, printed = await asyncio.to_thread(run)
    keys = (await shop.get("/offline/keys")).json()["keys"]

    assert code == 0
    key_id, public = printed.strip().removeprefix("key ").split(": ")
    assert [(k["key_id"], k["public_key"]) for k in keys] == [
        (int(key_id), public),
        (first.key_id, first.public_key),
    ]
    assert keys[0]["valid_until"] is None and keys[1]["valid_until"] is not None


async def test_two_tills_reconciling_one_token_at_once_never_exceed_its_cap(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOW)
    shop = await make_shop(earn_percent="0", **SETTINGS)
    member = await shop.customer(200)
    tok = await _token(shop, member)
    till2 = await _second_till(shop)

    a, b = await asyncio.gather(
        shop.post("/purchases", _offline("race-1", tok.token, "150")),
        till2.post("/purchases", _offline("race-2", tok.token, "150")),
    )

    assert sorted([a.status_code, b.status_code]) == [200, 422]
    assert (await shop.balance(member))["available"] == "50.00"
    await _ledger_ok(shop, member)


async def test_a_refund_of_an_offline_receipt_gives_back_its_debt_part_first_to_the_debt(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOW)
    shop = await make_shop(earn_percent="0", **SETTINGS)
    member = await shop.customer(300)
    tok = await _token(shop, member)
    await shop.post(
        "/purchases", receipt("online-1", member.card, ("b", 1, "280.00"), redeem_points="280")
    )
    off = await shop.post("/purchases", _offline("off-r", tok.token, "300", price="500.00"))
    in_debt = await shop.balance(member)

    half = await shop.post(
        "/purchases/off-r/refunds", {"refund_id": "r1", "lines": [{"index": 0, "quantity": "0.5"}]}
    )
    rest = await shop.post("/purchases/off-r/refunds", {"refund_id": "r2"})
    after = await shop.balance(member)

    assert off.json()["offline"]["debt"] == "280.00"
    assert (in_debt["available"], in_debt["debt"]) == ("0.00", "280.00")
    # 150 back: 20 to the lot they came from, 130 off the debt; then the other 150
    assert half.status_code == 200, half.text
    assert rest.status_code == 200, rest.text
    assert (after["available"], after["debt"]) == ("20.00", "0.00")
    await _ledger_ok(shop, member)


async def test_every_flipped_byte_of_a_token_is_refused_by_the_center(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(NOW)
    shop = await make_shop(**SETTINGS)
    member = await shop.customer(1000)
    tok = await _token(shop, member)
    body = tok.token[2:]
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    tampered = []
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x10
        tampered.append("KO" + base64.b32encode(bytes(bad)).decode().rstrip("="))

    r = await shop.post(
        "/purchases/batch",
        {"receipts": [_offline(f"flip-{i}", x, "10") for i, x in enumerate(tampered)]},
    )

    res = r.json()
    assert (res["accepted"], res["rejected"]) == (0, 117)
    assert {x["problem"]["code"] for x in res["results"]} == {"offline_token_invalid"}
    assert {x["problem"]["field"] for x in res["results"]} == {
        f"receipts[{i}].offline_token" for i in range(117)
    }
    assert (await shop.balance(member))["available"] == "1000.00"
