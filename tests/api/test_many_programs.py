"""Issue 9: one installation, two programs, no cross-talk.  Both databases.

Two programs hold the SAME card number, phone, coupon codes, gift-card numbers, receipt
ids and store codes (the schema keys them all by program).  Everything done through
program A's terminal, admin token or cabinet sees and changes A's objects only; B's key
on A's receipt gets the documented 404 ``receipt_not_found``; afterwards every row of
the hot tables agrees with its account's program, and the ledger verifies.
Expected balances are computed by hand in the comments (earn 5 %, floor, 1 point = 1 ₽).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import orjson
from sqlalchemy import func, insert, select

from kopilka.domain.identifiers import make_card_number
from kopilka.services import coupons, giftcards, member_auth
from kopilka.services.accounts import do_adjust
from kopilka.services.admin import do_add_token
from kopilka.services.customers import create_account_and_card
from kopilka.services.errors import ServiceError
from kopilka.services.ledger_jobs import verify_ledger
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import Member, Shop, receipt

SHARED_PHONE_TAIL = 7654321


async def twin(shop: Shop, *, card: str, phone: str, points: int, name: str) -> Member:
    """A member of ``shop``'s program with the given card number and phone."""
    async with shop.rt.engine.begin() as conn:
        cid = (
            await conn.execute(
                insert(t.customers).returning(t.customers.c.id),
                {
                    "program_id": shop.program_id,
                    "first_name": name,
                    "last_name": "Twin",
                    "phone": phone,
                    "registered_at": shop.rt.now(),
                },
            )
        ).scalar_one()
        _, card_id = await create_account_and_card(
            conn,
            program_id=shop.program_id,
            customer_id=cid,
            now=shop.rt.now(),
            card_number=card,
            phone=phone,
        )
        acc = (
            await conn.execute(select(t.cards.c.account_id).where(t.cards.c.id == card_id))
        ).scalar_one()
    await do_adjust(shop.rt, acc, Decimal(points), program_id=shop.program_id)
    return Member(card, phone, acc, cid)


async def two_programs(make_shop: Any) -> tuple[Shop, Shop, Member, Member]:
    a, b = await make_shop(), await make_shop()
    # the same card number and phone in both programs (unique per program only)
    card = make_card_number("29", a.program_id * 1000 + b.program_id)
    phone = f"+7916{(a.program_id * 7 + SHARED_PHONE_TAIL) % 10_000_000:07d}"
    ma = await twin(a, card=card, phone=phone, points=100, name="Anna")
    mb = await twin(b, card=card, phone=phone, points=500, name="Boris")
    return a, b, ma, mb


async def hot_rows_agree_with_their_program(rt: Runtime) -> dict[str, int]:
    """Rows whose program differs from the program of what they point at (expected: none)."""
    a, c, r = t.accounts, t.cards, t.receipts
    checks = {
        "cards": select(func.count())
        .select_from(c.join(a, a.c.id == c.c.account_id))
        .where(c.c.program_id != a.c.program_id),
        "identifiers": select(func.count())
        .select_from(t.identifiers.join(c, c.c.id == t.identifiers.c.card_id))
        .where(t.identifiers.c.program_id != c.c.program_id),
        "ledger_entries": select(func.count())
        .select_from(t.ledger_entries.join(a, a.c.id == t.ledger_entries.c.account_id))
        .where(t.ledger_entries.c.program_id != a.c.program_id),
        "lots": select(func.count())
        .select_from(t.lots.join(a, a.c.id == t.lots.c.account_id))
        .where(t.lots.c.program_id != a.c.program_id),
        "holds": select(func.count())
        .select_from(t.holds.join(a, a.c.id == t.holds.c.account_id))
        .where(t.holds.c.program_id != a.c.program_id),
        "receipts/account": select(func.count())
        .select_from(r.join(a, a.c.id == r.c.account_id))
        .where(r.c.program_id != a.c.program_id),
        "receipts/terminal": select(func.count())
        .select_from(r.join(t.terminals, t.terminals.c.id == r.c.terminal_id))
        .where(r.c.program_id != t.terminals.c.program_id),
        "receipt_lines": select(func.count())
        .select_from(t.receipt_lines.join(r, r.c.id == t.receipt_lines.c.receipt_pk))
        .where(t.receipt_lines.c.program_id != r.c.program_id),
        "refunds": select(func.count())
        .select_from(t.refunds.join(r, r.c.id == t.refunds.c.receipt_pk))
        .where(t.refunds.c.program_id != r.c.program_id),
        "coupon_uses": select(func.count())
        .select_from(t.coupon_uses.join(t.coupons, t.coupons.c.id == t.coupon_uses.c.coupon_id))
        .where(t.coupon_uses.c.program_id != t.coupons.c.program_id),
        "gift_card_entries": select(func.count())
        .select_from(
            t.gift_card_entries.join(
                t.gift_cards, t.gift_cards.c.id == t.gift_card_entries.c.card_id
            )
        )
        .where(t.gift_card_entries.c.program_id != t.gift_cards.c.program_id),
    }
    async with rt.engine.connect() as conn:
        return {k: int((await conn.execute(q)).scalar_one()) for k, q in checks.items()}


async def test_same_card_and_phone_each_till_sees_and_changes_only_its_own(
    rt: Runtime, make_shop: Any
) -> None:
    a, b, ma, mb = await two_programs(make_shop)

    by_card = [await s.get("/customers/lookup", params={"identifier": ma.card}) for s in (a, b)]
    by_phone = [await s.get("/customers/lookup", params={"identifier": ma.phone}) for s in (a, b)]
    assert [r.json()["balance"]["available"] for r in by_card] == ["100.00", "500.00"]
    assert [r.json()["balance"]["available"] for r in by_phone] == ["100.00", "500.00"]

    # the same receipt id in both programs: two receipts, no idempotency conflict
    body_a = receipt("R-1", ma.card, ("milk", 1, "1000.00"), redeem_points="50")
    body_b = receipt("R-1", mb.card, ("milk", 1, "1000.00"))
    calc_a = await a.post("/purchases/calculate", body_a)
    calc_b = await b.post("/purchases/calculate", body_b)
    assert (calc_a.status_code, calc_b.status_code) == (200, 200), (calc_a.text, calc_b.text)
    # A: 1000 - 50 paid by points = 950 paid, 5 % = 47.5 -> 47 points; B: 1000 -> 50
    assert (calc_a.json()["points_earned"], calc_b.json()["points_earned"]) == ("47.00", "50.00")

    # B's key on A's receipt (B has no R-2): the documented 404, and A's receipt untouched
    only_a = await a.post("/purchases/calculate", receipt("R-2", ma.card, ("tea", 1, "200.00")))
    assert only_a.status_code == 200, only_a.text
    for path in ("/purchases/R-2/confirm", "/purchases/R-2/cancel"):
        wrong = await b.post(path)
        assert wrong.status_code == 404, wrong.text
        assert wrong.headers["content-type"] == "application/problem+json"
        assert wrong.json()["code"] == "receipt_not_found"
    assert (await a.post("/purchases/R-2/confirm")).status_code == 200  # 200 -> 10 points

    # each confirms its own R-1; B's refund of A's R-2 is refused the same way
    assert (await a.post("/purchases/R-1/confirm")).status_code == 200
    assert (await b.post("/purchases/R-1/confirm")).status_code == 200
    refund = {"refund_id": "F-1"}  # the whole receipt
    wrong = await b.post("/purchases/R-2/refunds", refund)
    assert (wrong.status_code, wrong.json()["code"]) == (404, "receipt_not_found")

    # A: 100 - 50 + 47 + 10 = 107; B: 500 + 50 = 550
    assert (await a.balance(ma))["available"] == "107.00"
    assert (await b.balance(mb))["available"] == "550.00"

    # A's own refund of R-2 takes back A's 10 points only
    ok = await a.post("/purchases/R-2/refunds", refund)
    assert ok.status_code == 200, ok.text
    assert (await a.balance(ma))["available"] == "97.00"
    assert (await b.balance(mb))["available"] == "550.00"

    mismatched = await hot_rows_agree_with_their_program(rt)
    assert mismatched == dict.fromkeys(mismatched, 0)
    bad = [d for d in await verify_ledger(rt) if d.account_id in (ma.account_id, mb.account_id)]
    assert bad == []


async def test_same_coupon_codes_and_gift_card_numbers_stay_apart(
    rt: Runtime, make_shop: Any
) -> None:
    a, b = await make_shop(), await make_shop()
    # generated with the same seed: the same codes and numbers in both programs
    codes = {
        s.code: await coupons.do_create_series(
            rt, program_code=s.code, code="GIFT100", name="100 points", count=2,
            seed="same", points=Decimal("100"),
        )
        for s in (a, b)
    }  # fmt: skip
    cards = {
        s.code: await giftcards.do_create_series(
            rt, s.code, code="G1000", name="Gift", nominal=Decimal("1000"), count=1, seed=7
        )
        for s in (a, b)
    }
    assert codes[a.code] == codes[b.code]
    assert [n for n, _ in cards[a.code]] == [n for n, _ in cards[b.code]]  # PINs differ
    [code, _] = codes[a.code]
    [(number, _pin)] = cards[a.code]

    # A's till redeems the points code and sells the gift card
    ma = await a.customer()
    spent = await a.post(f"/coupons/{code}/redeem", {"identifier": ma.card})
    assert spent.status_code == 200, spent.text
    sold = await a.post(f"/gift-cards/{number}/activate", {"receipt_id": "G-1"})
    assert sold.status_code == 200, sold.text

    # in B the same code is still unused and the same card still unsold
    seen_b = await b.get(f"/coupons/{code}")
    assert seen_b.status_code == 200, seen_b.text
    assert seen_b.json()["valid"] is True
    card_b = await b.get(f"/gift-cards/{number}")
    assert (card_b.json()["state"], card_b.json()["balance"]) == ("issued", "0.00")
    again_a = await a.get(f"/coupons/{code}")
    assert again_a.json()["valid"] is False
    assert (await a.balance(ma))["available"] == "100.00"

    mismatched = await hot_rows_agree_with_their_program(rt)
    assert mismatched == dict.fromkeys(mismatched, 0)


async def test_cabinet_login_with_the_same_phone_opens_only_its_program(
    rt: Runtime, make_shop: Any, client: httpx.AsyncClient
) -> None:
    a, b, ma, mb = await two_programs(make_shop)

    await member_auth.request_code(rt, a.program_id, ma.phone)
    async with rt.engine.connect() as conn:
        payload = (
            (
                await conn.execute(
                    select(t.outbox.c.payload)
                    .where(t.outbox.c.program_id == a.program_id, t.outbox.c.topic == "sms.send")
                    .order_by(t.outbox.c.id.desc())
                )
            )
            .scalars()
            .first()
        )
    code = orjson.loads(payload)["code"]

    # A's code does not open B's cabinet for the same phone
    try:
        await member_auth.verify_code(rt, b.program_id, mb.phone, code)
        raise AssertionError("program B accepted program A's code")
    except ServiceError as exc:
        assert exc.code == "invalid_code"
    token, session = await member_auth.verify_code(rt, a.program_id, ma.phone, code)
    assert (session.program_id, session.customer_id) == (a.program_id, ma.customer_id)

    cookies = {"kopilka_member": token, "kopilka_lang": "en"}
    own = await client.get(f"/my/{a.code}/", cookies=cookies)
    other = await client.get(f"/my/{b.code}/", cookies=cookies)
    assert own.status_code == 200
    assert "100 points" in own.text and "500" not in own.text
    assert other.status_code == 303
    assert other.headers["location"].endswith(f"/my/{b.code}/login")


async def test_admin_token_of_one_program_reads_and_exports_only_it(
    rt: Runtime, make_shop: Any, client: httpx.AsyncClient
) -> None:
    a, b, ma, mb = await two_programs(make_shop)
    for s in (a, b):
        await giftcards.do_create_series(
            rt, s.code, code="G500", name="Gift", nominal=Decimal("500"), count=2, seed=11
        )
    key = await do_add_token(rt, name="A's analyst", program_code=a.code, role="owner")
    auth = {"Authorization": f"Bearer {key}"}

    found = await client.get(
        f"/api/admin/v1/programs/{a.code}/customers", params={"q": ma.phone}, headers=auth
    )
    assert found.status_code == 200, found.text
    assert [(c["id"], c["balance"]) for c in found.json()["customers"]] == [
        (ma.customer_id, "100.00")
    ]

    export = await client.get(f"/api/admin/v1/programs/{a.code}/gift-cards/export", headers=auth)
    assert export.status_code == 200, export.text
    assert len(export.text.strip().splitlines()) == 1 + 2  # header + A's two cards

    for path, params in (
        (f"/api/admin/v1/programs/{b.code}/customers", {"q": mb.phone}),
        (f"/api/admin/v1/programs/{b.code}/gift-cards/export", {}),
        (f"/api/admin/v1/programs/{b.code}/settings", {}),
        (
            "/api/admin/v1/reports/summary",
            {"program": b.code, "from": "2026-01-01", "to": "2026-01-31"},
        ),
    ):
        refused = await client.get(path, params=params, headers=auth)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["code"] == "forbidden"

    # B's terminal key is no key for the admin API, nor A's admin token for the till
    assert (await client.get("/api/admin/v1/programs", headers=b.headers)).status_code == 401
    till = await client.get(
        "/api/pos/v1/customers/lookup", params={"identifier": ma.card}, headers=auth
    )
    assert till.status_code == 401
