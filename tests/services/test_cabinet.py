"""The customer cabinet's services: login by a one-time SMS code, what a member sees,
profile and consents (audited), a plastic card, the rotating QR token at the till,
personal data export and deletion.  Both databases."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from kopilka.domain import qr
from kopilka.domain.identifiers import make_card_number
from kopilka.services import cabinet, member_auth
from kopilka.services.errors import ServiceError
from kopilka.services.member_auth import MemberSession
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Clock, Member, receipt


def frozen(clock: Clock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))


async def last_code(rt: Runtime, program_id: int, phone: str) -> str:
    """The code in the newest ``sms.send`` outbox event (before the worker redacts it)."""
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(t.outbox.c.payload)
                .where(t.outbox.c.program_id == program_id, t.outbox.c.topic == "sms.send")
                .order_by(t.outbox.c.id.desc())
            )
        ).all()
    for (payload,) in rows:
        doc = orjson.loads(payload)
        if doc.get("to") == phone:
            return str(doc["code"])
    raise AssertionError(f"no code sent to {phone}")


async def audit_rows(rt: Runtime, program_id: int) -> list[Any]:
    a = t.audit_log
    async with rt.engine.connect() as conn:
        return list(
            (
                await conn.execute(select(a).where(a.c.program_id == program_id).order_by(a.c.id))
            ).all()
        )


async def sign_in(rt: Runtime, program_id: int, member: Member) -> MemberSession:
    await member_auth.request_code(rt, program_id, member.phone)
    code = await last_code(rt, program_id, member.phone)
    _, session = await member_auth.verify_code(rt, program_id, member.phone, code)
    return session


async def test_a_code_signs_in_once_and_the_session_is_the_members(
    make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    frozen(clock)
    shop = await make_shop()
    m = await shop.customer()
    phone = await member_auth.request_code(rt, shop.program_id, m.phone[1:])  # without "+"
    assert phone == m.phone
    code = await last_code(rt, shop.program_id, m.phone)
    async with rt.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(t.phone_codes.c.code_hash).where(
                    t.phone_codes.c.customer_id == m.customer_id
                )
            )
        ).scalar_one()
    assert code not in stored and len(stored) == 64  # hashed

    token, session = await member_auth.verify_code(rt, shop.program_id, m.phone, code)
    assert session.customer_id == m.customer_id
    again = await member_auth.session_by_token(rt, token)
    assert again is not None and again.customer_id == m.customer_id
    with pytest.raises(ServiceError) as used:
        await member_auth.verify_code(rt, shop.program_id, m.phone, code)
    assert used.value.code == "invalid_code"  # single use

    await member_auth.logout(rt, session)
    assert await member_auth.session_by_token(rt, token) is None


async def test_an_unknown_phone_gets_the_same_answer_and_no_sms(
    make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    assert await member_auth.request_code(rt, shop.program_id, "+79990001122") == "+79990001122"
    async with rt.engine.connect() as conn:
        n = (
            await conn.execute(
                select(t.outbox.c.id).where(
                    t.outbox.c.program_id == shop.program_id, t.outbox.c.topic == "sms.send"
                )
            )
        ).all()
    assert n == []
    with pytest.raises(ServiceError) as err:
        await member_auth.request_code(rt, shop.program_id, "12")
    assert err.value.field == "phone"


async def test_expired_code_is_refused_and_resend_is_throttled(
    make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    frozen(clock)
    shop = await make_shop()
    m = await shop.customer()
    await member_auth.request_code(rt, shop.program_id, m.phone)
    code = await last_code(rt, shop.program_id, m.phone)
    with pytest.raises(ServiceError) as soon:
        await member_auth.request_code(rt, shop.program_id, m.phone)
    assert soon.value.code == "too_many_attempts" and soon.value.field == "phone"
    clock.advance(minutes=5, seconds=1)
    with pytest.raises(ServiceError) as late:
        await member_auth.verify_code(rt, shop.program_id, m.phone, code)
    assert late.value.code == "code_expired"
    await member_auth.request_code(rt, shop.program_id, m.phone)  # a new one may go now
    fresh = await last_code(rt, shop.program_id, m.phone)
    await member_auth.verify_code(rt, shop.program_id, m.phone, fresh)


async def test_five_wrong_codes_lock_the_phone_and_the_sixth_try_fails_even_when_right(
    make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    frozen(clock)
    shop = await make_shop()
    m = await shop.customer()
    await member_auth.request_code(rt, shop.program_id, m.phone)
    code = await last_code(rt, shop.program_id, m.phone)
    wrong = "000000" if code != "000000" else "111111"
    answers = []
    for _ in range(5):
        with pytest.raises(ServiceError) as err:
            await member_auth.verify_code(rt, shop.program_id, m.phone, wrong)
        answers.append(err.value.code)
    with pytest.raises(ServiceError) as sixth:
        await member_auth.verify_code(rt, shop.program_id, m.phone, code)

    assert answers == ["invalid_code"] * 4 + ["too_many_attempts"]  # the 5th says so
    assert sixth.value.code == "too_many_attempts" and "hour" in sixth.value.detail
    clock.advance(minutes=30)
    with pytest.raises(ServiceError) as still:
        await member_auth.request_code(rt, shop.program_id, m.phone)
    assert still.value.code == "too_many_attempts"
    clock.advance(hours=1)  # the lockout is over
    await member_auth.request_code(rt, shop.program_id, m.phone)
    code = await last_code(rt, shop.program_id, m.phone)
    await member_auth.verify_code(rt, shop.program_id, m.phone, code)


async def test_a_used_code_does_not_sign_in_twice(
    make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    frozen(clock)
    shop = await make_shop()
    m = await shop.customer()
    await member_auth.request_code(rt, shop.program_id, m.phone)
    code = await last_code(rt, shop.program_id, m.phone)
    await member_auth.verify_code(rt, shop.program_id, m.phone, code)

    with pytest.raises(ServiceError) as again:
        await member_auth.verify_code(rt, shop.program_id, m.phone, code)

    assert again.value.code == "invalid_code"
    async with rt.engine.connect() as conn:
        stored = (
            (
                await conn.execute(
                    select(t.phone_codes.c.code_hash).where(
                        t.phone_codes.c.customer_id == m.customer_id
                    )
                )
            )
            .scalars()
            .all()
        )
    assert code not in stored and hashlib.sha256(code.encode()).hexdigest() in stored


async def test_the_member_sees_balance_expiring_points_receipts_and_movements(
    make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop(earn_percent="10", expiry_days=30)
    m = await shop.customer(points=50)
    s = await sign_in(rt, shop.program_id, m)
    calc = await shop.post("/purchases/calculate", receipt("c1", m.card, ("a", 1, "1000.00")))
    assert calc.status_code == 200, calc.text
    assert (await shop.post("/purchases/c1/confirm")).status_code == 200

    ov = await cabinet.overview(rt, s)
    assert ov.balance.available == Decimal("150.00")
    assert ov.card_number == m.card
    assert sum(p for _, p in ov.expiring) >= Decimal("100.00")
    receipts, total = await cabinet.receipts_page(rt, s)
    assert total == 1 and receipts[0]["pos_receipt_id"] == "c1"
    assert receipts[0]["points_earned"] == Decimal("100.00")
    moves, n = await cabinet.movements_page(rt, s, ov.account_id)
    assert n >= 2 and moves[0]["amount"] == Decimal("100.00")


async def test_profile_and_consents_are_saved_and_audited_with_the_member_as_actor(
    make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    m = await shop.customer()
    s = await sign_in(rt, shop.program_id, m)
    with pytest.raises(ServiceError) as bad:
        cabinet.parse_profile({"email": "not-mail"})
    assert bad.value.field == "email"
    p = cabinet.parse_profile(
        {
            "first_name": "Аня",
            "last_name": "Смирнова",
            "email": "a@example.org",
            "consent_sms": "on",
        }
    )
    await cabinet.do_update_profile(rt, s, p)
    ov = await cabinet.overview(rt, s)
    assert (ov.first_name, ov.email, ov.consent_sms, ov.consent_email) == (
        "Аня",
        "a@example.org",
        True,
        False,
    )
    [row] = await audit_rows(rt, shop.program_id)
    assert (row.action, row.actor_kind, row.actor_id, row.object_id) == (
        "customer.consent",
        "member",
        m.customer_id,
        str(m.customer_id),
    )
    assert orjson.loads(row.after) == {
        "first_name": "Аня",
        "email": "a@example.org",
        "consent_sms": True,
    }


async def test_a_plastic_card_joins_the_account_and_is_refused_when_taken(
    make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop()
    m, other = await shop.customer(), await shop.customer()
    s = await sign_in(rt, shop.program_id, m)
    plastic = make_card_number("26", shop.program_id * 1000 + 7)
    await cabinet.do_attach_card(rt, s, plastic)
    ov = await cabinet.overview(rt, s)
    assert [c.kind for c in ov.cards] == ["plastic", "plastic"]
    r = await shop.get("/customers/lookup", params={"identifier": plastic})
    assert r.status_code == 200 and r.json()["customer"]["id"] == m.customer_id
    with pytest.raises(ServiceError) as taken:
        await cabinet.do_attach_card(rt, s, other.card)
    assert taken.value.code == "card_taken"
    with pytest.raises(ServiceError) as bad:
        await cabinet.do_attach_card(rt, s, "1234567890123")
    assert bad.value.field == "number"


async def test_the_rotating_qr_token_identifies_the_member_at_the_till_for_a_minute(
    make_shop: Any, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOPILKA_QR_SECRET", "test-secret-0123456789")
    shop = await make_shop()
    m = await shop.customer(points=10)
    secret = qr.configured_secret()
    assert secret is not None
    now = datetime.now(UTC)
    token = qr.token(m.card, secret, now)
    r = await shop.get("/customers/lookup", params={"identifier": token})
    assert r.status_code == 200, r.text
    assert r.json()["customer"]["id"] == m.customer_id
    old = qr.token(m.card, secret, datetime.fromtimestamp(now.timestamp() - 180, UTC))
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad in (old, forged):
        r = await shop.get("/customers/lookup", params={"identifier": bad})
        assert r.status_code == 404, bad


async def test_export_then_delete_personal_data_keeps_the_ledger(
    make_shop: Any, rt: Runtime
) -> None:
    shop = await make_shop(earn_percent="10")
    m = await shop.customer(points=30)
    s = await sign_in(rt, shop.program_id, m)
    doc = await cabinet.export_personal_data(rt, s)
    assert doc["customer"]["phone"] == m.phone
    assert doc["balance"]["available"] == "30.00"
    orjson.dumps(doc)  # JSON-ready

    with pytest.raises(ServiceError) as unconfirmed:
        await cabinet.do_delete_personal_data(rt, s, "yes")
    assert unconfirmed.value.field == "confirm"
    await cabinet.do_delete_personal_data(rt, s, "delete")
    async with rt.engine.connect() as conn:
        cust = (
            await conn.execute(select(t.customers).where(t.customers.c.id == m.customer_id))
        ).one()
        entries = (
            await conn.execute(
                select(t.ledger_entries.c.id).where(t.ledger_entries.c.account_id == m.account_id)
            )
        ).all()
    assert (cust.last_name, cust.phone, cust.status) == ("", None, "deleted")
    assert cust.first_name.startswith("erased-") and len(cust.first_name) == 19  # a pseudonym
    assert cust.consent_sms is False or cust.consent_sms == 0
    assert entries  # the ledger stays
    assert await member_auth.session_by_token(rt, "whatever") is None
    r = await shop.get("/customers/lookup", params={"identifier": m.phone})
    assert r.status_code == 404  # the phone no longer identifies anybody
    rows = await audit_rows(rt, shop.program_id)
    assert [r.action for r in rows] == ["customer.delete_personal_data"]


async def test_a_plastic_card_registered_in_the_cabinet_earns_the_programs_points_once(
    make_shop: Any, rt: Runtime
) -> None:
    from tests.api.test_promotions_at_till import publish

    shop = await make_shop()
    await publish(shop, [], activities={"card_registered": {"points": 50}})
    m = await shop.customer()
    s = await sign_in(rt, shop.program_id, m)
    first = make_card_number("26", shop.program_id * 1000 + 11)
    second = make_card_number("26", shop.program_id * 1000 + 12)
    assert await cabinet.do_attach_card(rt, s, first) is True
    assert await cabinet.do_attach_card(rt, s, second) is False  # once per customer
    ov = await cabinet.overview(rt, s)
    assert ov.balance.available == Decimal("50.00")
