"""Calls that really run at the same time, on both databases and on a served app.

Every call goes through its own pooled connection (the in-process app takes one per
request; the served app runs two worker processes on PostgreSQL), so the database's
locks, not the event loop, decide who wins.  SQLite serialises transactions, and must
still give the same answers.

Each scenario is a plain coroutine run twice: against the in-process app on both
databases (``make_shop``) and against ``kopilka serve --workers 2`` on PostgreSQL
(``make_served_shop``).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from kopilka.services.accounts import do_adjust
from kopilka.store import tables as t
from tests.conftest import Member, Shop, receipt
from tests.services.conftest import (
    MakeShop,
    add_tills,
    count_rows,
    discrepancies,
    receipt_pk,
)

le = t.ledger_entries


def outcome(r: httpx.Response) -> str:
    """``"200"`` or ``"422 insufficient_points"``: one comparable word per answer."""
    if r.status_code == 200:
        return "200"
    return f"{r.status_code} {r.json().get('code')}"


def balance(available: str, held: str = "0.00", pending: str = "0.00") -> dict[str, str]:
    return {"available": available, "pending": pending, "held": held, "debt": "0.00"}


async def entries_of(shop: Shop, receipt_id: str) -> list[tuple[str, Decimal]]:
    """The receipt's ledger entries as (kind, amount), in order."""
    pk = await receipt_pk(shop, receipt_id)
    async with shop.rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(le.c.kind, le.c.amount).where(le.c.receipt_pk == pk).order_by(le.c.id)
            )
        ).all()
    return [(r.kind, Decimal(r.amount)) for r in rows]


async def lots_of(shop: Shop, member: Member) -> list[Decimal]:
    async with shop.rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(t.lots.c.remaining)
                .where(t.lots.c.account_id == member.account_id)
                .order_by(t.lots.c.id)
            )
        ).all()
    return [Decimal(r.remaining) for r in rows]


# --- (a) tills burning the same account at the same moment never overdraw it ------------


async def calculates_never_overdraw(shop: Shop, n: int) -> None:
    member = await shop.customer(points=100)
    tills = await add_tills(shop, n)
    bodies = [
        receipt(f"r{i}", member.card, ("a", 1, "100.00"), redeem_points="60") for i in range(n)
    ]

    answers = await asyncio.gather(
        *(till.post("/purchases/calculate", body) for till, body in zip(tills, bodies, strict=True))
    )
    held = await shop.balance(member)
    winner = next(i for i, a in enumerate(answers) if a.status_code == 200)
    confirmed = await tills[winner].post(f"/purchases/r{winner}/confirm")
    after = await shop.balance(member)

    assert sorted(map(outcome, answers)) == ["200"] + ["422 insufficient_points"] * (n - 1)
    assert held == balance("40.00", held="60.00")
    assert confirmed.status_code == 200, confirmed.text
    assert after == balance("42.00")  # 100 - 60 + 5% of the 40.00 paid
    assert await count_rows(shop, t.holds, t.holds.c.account_id == member.account_id) == 1
    assert await discrepancies(shop) == []


async def one_shot_purchases_never_overdraw(shop: Shop, n: int) -> None:
    member = await shop.customer(points=100)
    tills = await add_tills(shop, n)
    bodies = [
        receipt(f"p{i}", member.card, ("a", 1, "100.00"), redeem_points="60") for i in range(n)
    ]

    answers = await asyncio.gather(
        *(till.post("/purchases", body) for till, body in zip(tills, bodies, strict=True))
    )
    after = await shop.balance(member)

    assert {
        "answers": sorted(map(outcome, answers)),
        "balance": after,
        "lots": await lots_of(shop, member),
        "ledger": await discrepancies(shop),
    } == {
        "answers": ["200"] + ["422 insufficient_points"] * (n - 1),
        "balance": balance("42.00"),  # 100 - 60 + 5% of the 40.00 paid
        "lots": [Decimal("40.00"), Decimal("2.00")],
        "ledger": [],
    }


async def confirms_of_two_holds_burn_each_lot_once(shop: Shop) -> None:
    """Two receipts hold 50 points each of an account with two 50-point lots; confirmed
    at the same moment, each lot gives its 50 once: none is left, none goes negative."""
    member = await shop.customer(points=50)
    await do_adjust(shop.rt, member.account_id, Decimal(50), program_id=shop.program_id)
    tills = await add_tills(shop, 2)
    for i, till in enumerate(tills):
        calc = await till.post(
            "/purchases/calculate",
            receipt(f"h{i}", member.card, ("a", 1, "100.00"), redeem_points="50"),
        )
        assert calc.status_code == 200, calc.text

    answers = await asyncio.gather(
        *(till.post(f"/purchases/h{i}/confirm") for i, till in enumerate(tills))
    )
    after = await shop.balance(member)

    assert {
        "answers": [outcome(a) for a in answers],
        "balance": after,
        "lots": await lots_of(shop, member),
        "ledger": await discrepancies(shop),
    } == {
        "answers": ["200", "200"],
        "balance": balance("5.00"),  # 2 x 5% of the 50.00 paid
        "lots": [Decimal("0.00"), Decimal("0.00"), Decimal("2.50"), Decimal("2.50")],
        "ledger": [],
    }


@pytest.mark.parametrize("n", [2, 8])
async def test_tills_calculating_at_once_never_overdraw(make_shop: MakeShop, n: int) -> None:
    await calculates_never_overdraw(await make_shop(burn_max_percent="100"), n)


@pytest.mark.parametrize("n", [2, 8])
async def test_tills_buying_at_once_never_overdraw(make_shop: MakeShop, n: int) -> None:
    await one_shot_purchases_never_overdraw(await make_shop(burn_max_percent="100"), n)


async def test_two_confirms_at_once_burn_each_lot_once(make_shop: MakeShop) -> None:
    await confirms_of_two_holds_burn_each_lot_once(
        await make_shop(burn_max_percent="100", points_step="0.01")
    )


@pytest.mark.parametrize("n", [2, 8])
async def test_served_tills_calculating_at_once_never_overdraw(
    make_served_shop: MakeShop, n: int
) -> None:
    await calculates_never_overdraw(await make_served_shop(burn_max_percent="100"), n)


@pytest.mark.parametrize("n", [2, 8])
async def test_served_tills_buying_at_once_never_overdraw(
    make_served_shop: MakeShop, n: int
) -> None:
    await one_shot_purchases_never_overdraw(await make_served_shop(burn_max_percent="100"), n)


async def test_served_two_confirms_at_once_burn_each_lot_once(make_served_shop: MakeShop) -> None:
    await confirms_of_two_holds_burn_each_lot_once(
        await make_served_shop(burn_max_percent="100", points_step="0.01")
    )


# --- (b) the same confirm sent several times at once applies once ------------------------


async def same_confirm_applies_once(shop: Shop, k: int) -> None:
    member = await shop.customer(points=100)
    calc = await shop.post(
        "/purchases/calculate",
        receipt("r1", member.card, ("a", 1, "100.00"), redeem_points="60"),
    )
    assert calc.status_code == 200, calc.text

    answers = await asyncio.gather(*(shop.post("/purchases/r1/confirm") for _ in range(k)))
    after = await shop.balance(member)
    pk = await receipt_pk(shop, "r1")

    assert [a.status_code for a in answers] == [200] * k, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    assert answers[0].json()["balance"] == {"available": "42.00", "pending": "0.00", "held": "0.00"}
    assert after == balance("42.00")
    assert await entries_of(shop, "r1") == [
        ("hold", Decimal("0.00")),
        ("burn", Decimal("-60.00")),
        ("earn", Decimal("2.00")),
    ]
    assert await count_rows(shop, t.holds, t.holds.c.receipt_pk == pk) == 1
    assert await count_rows(shop, t.receipt_lines, t.receipt_lines.c.receipt_pk == pk) == 1
    assert await discrepancies(shop) == []


@pytest.mark.parametrize("k", [2, 10])
async def test_same_confirm_sent_at_once_applies_once(make_shop: MakeShop, k: int) -> None:
    await same_confirm_applies_once(await make_shop(burn_max_percent="100"), k)


@pytest.mark.parametrize("k", [2, 10])
async def test_served_same_confirm_sent_at_once_applies_once(
    make_served_shop: MakeShop, k: int
) -> None:
    await same_confirm_applies_once(await make_served_shop(burn_max_percent="100"), k)


# --- (c) the same calculate (or one-shot purchase) sent several times at once -------------


async def same_calculate_applies_once(shop: Shop, k: int, redeem: str) -> None:
    """Retries of one calculate: one receipt, one hold, the first answer every time."""
    member = await shop.customer(points=100)
    body = receipt("r1", member.card, ("a", 1, "100.00"), redeem_points=redeem)

    answers = await asyncio.gather(*(shop.post("/purchases/calculate", body) for _ in range(k)))
    late = await shop.post("/purchases/calculate", body)
    after = await shop.balance(member)
    pk = await receipt_pk(shop, "r1")

    assert [outcome(a) for a in [*answers, late]] == ["200"] * (k + 1)
    assert len({a.content for a in [*answers, late]}) == 1
    assert after == balance(f"{100 - int(redeem)}.00", held=f"{redeem}.00")
    assert await count_rows(shop, t.receipts, t.receipts.c.id == pk) == 1
    assert await count_rows(shop, t.holds, t.holds.c.account_id == member.account_id) == 1
    assert await entries_of(shop, "r1") == [("hold", Decimal("0.00"))]
    assert await discrepancies(shop) == []


async def same_purchase_applies_once(shop: Shop, k: int, redeem: str) -> None:
    """Retries of one calculate-and-confirm: one receipt, one burn, one earn."""
    member = await shop.customer(points=100)
    body = receipt("p1", member.card, ("a", 1, "100.00"), redeem_points=redeem)

    answers = await asyncio.gather(*(shop.post("/purchases", body) for _ in range(k)))
    late = await shop.post("/purchases", body)
    after = await shop.balance(member)
    earned = {"30": "3.00", "60": "2.00"}[redeem]  # 5% of what was paid, floored to 1

    assert [outcome(a) for a in [*answers, late]] == ["200"] * (k + 1)
    assert len({a.content for a in [*answers, late]}) == 1
    assert after == balance(f"{100 - int(redeem) + int(earned[0])}.00")
    assert await entries_of(shop, "p1") == [
        ("burn", Decimal(f"-{redeem}.00")),
        ("earn", Decimal(earned)),
    ]
    assert await discrepancies(shop) == []


# 30 of 100 points leaves enough for a second pricing; 60 does not, and a retry must
# still get the first answer, not a refusal computed from the balance the first call left.
@pytest.mark.parametrize("redeem", ["30", "60"])
@pytest.mark.parametrize("k", [2, 8])
async def test_same_calculate_sent_at_once_applies_once(
    make_shop: MakeShop, k: int, redeem: str
) -> None:
    await same_calculate_applies_once(await make_shop(burn_max_percent="100"), k, redeem)


@pytest.mark.parametrize("redeem", ["30", "60"])
@pytest.mark.parametrize("k", [2, 8])
async def test_same_purchase_sent_at_once_applies_once(
    make_shop: MakeShop, k: int, redeem: str
) -> None:
    await same_purchase_applies_once(await make_shop(burn_max_percent="100"), k, redeem)


@pytest.mark.parametrize("redeem", ["30", "60"])
async def test_served_same_calculate_sent_at_once_applies_once(
    make_served_shop: MakeShop, redeem: str
) -> None:
    await same_calculate_applies_once(await make_served_shop(burn_max_percent="100"), 8, redeem)


@pytest.mark.parametrize("redeem", ["30", "60"])
async def test_served_same_purchase_sent_at_once_applies_once(
    make_served_shop: MakeShop, redeem: str
) -> None:
    await same_purchase_applies_once(await make_served_shop(burn_max_percent="100"), 8, redeem)


# --- (d) the same refund sent several times at once applies once ------------------------


async def same_refund_applies_once(shop: Shop, k: int) -> None:
    member = await shop.customer(points=100)
    bought = await shop.post(
        "/purchases",
        receipt("p1", member.card, ("a", 3, "100.00"), ("b", 1, "50.00"), redeem_points="70"),
    )
    assert bought.status_code == 200, bought.text
    assert (await shop.balance(member))["available"] == "44.00"  # 100 - 70 + 5% of 280.00
    body = {"refund_id": "x1", "lines": [{"index": 0, "quantity": 2}]}

    answers = await asyncio.gather(*(shop.post("/purchases/p1/refunds", body) for _ in range(k)))
    late = await shop.post("/purchases/p1/refunds", body)
    after = await shop.balance(member)
    pk = await receipt_pk(shop, "p1")

    assert [outcome(a) for a in [*answers, late]] == ["200"] * (k + 1)
    assert len({a.content for a in [*answers, late]}) == 1
    first = answers[0].json()
    # Line 0 paid 300.00 - 60.00 of points (70 spread 300:50) and earned 12 of the 14.
    assert (first["points_taken_back"], first["points_returned"]) == ("8.00", "40.00")
    assert after == balance("76.00")  # 44 - 8 + 40
    assert await count_rows(shop, t.refunds, t.refunds.c.receipt_pk == pk) == 1
    assert await discrepancies(shop) == []


@pytest.mark.parametrize("k", [2, 8])
async def test_same_refund_sent_at_once_applies_once(make_shop: MakeShop, k: int) -> None:
    await same_refund_applies_once(await make_shop(burn_max_percent="100"), k)


async def test_served_same_refund_sent_at_once_applies_once(make_served_shop: MakeShop) -> None:
    await same_refund_applies_once(await make_served_shop(burn_max_percent="100"), 8)


@pytest.mark.parametrize("path", ["/purchases/calculate", "/purchases"])
async def test_retry_after_spending_most_points_gets_the_first_answer(
    make_shop: MakeShop, path: str
) -> None:
    """A retry must not be priced again against the balance the first call left."""
    shop = await make_shop(burn_max_percent="100")
    member = await shop.customer(points=100)
    body = receipt("r1", member.card, ("a", 1, "100.00"), redeem_points="60")

    first = await shop.post(path, body)
    again = await shop.post(path, body)

    assert (outcome(first), outcome(again)) == ("200", "200")
    assert again.content == first.content


async def refunds_of_everything_at_once_return_it_once(shop: Shop, k: int) -> None:
    """``k`` different refunds of the whole receipt at once: one returns it, the others
    find nothing left to return."""
    member = await shop.customer(points=100)
    bought = await shop.post(
        "/purchases",
        receipt("p1", member.card, ("a", 3, "100.00"), ("b", 1, "50.00"), redeem_points="70"),
    )
    assert bought.status_code == 200, bought.text

    answers = await asyncio.gather(
        *(shop.post("/purchases/p1/refunds", {"refund_id": f"x{i}"}) for i in range(k))
    )
    pk = await receipt_pk(shop, "p1")

    assert sorted(map(outcome, answers)) == ["200"] + ["422 refund_exceeds_purchase"] * (k - 1)
    assert await shop.balance(member) == balance("100.00")  # 44 - 14 earned + 70 redeemed
    assert await count_rows(shop, t.refunds, t.refunds.c.receipt_pk == pk) == 1
    assert await discrepancies(shop) == []


@pytest.mark.parametrize("k", [2, 8])
async def test_different_refunds_of_everything_at_once_return_it_once(
    make_shop: MakeShop, k: int
) -> None:
    await refunds_of_everything_at_once_return_it_once(await make_shop(burn_max_percent="100"), k)


async def test_served_different_refunds_of_everything_at_once_return_it_once(
    make_served_shop: MakeShop,
) -> None:
    await refunds_of_everything_at_once_return_it_once(
        await make_served_shop(burn_max_percent="100"), 8
    )


# --- confirm racing cancel: exactly one of them happens ---------------------------------


async def confirm_and_cancel_at_once_resolve_the_hold_once(shop: Shop) -> None:
    member = await shop.customer(points=100)
    calc = await shop.post(
        "/purchases/calculate",
        receipt("r1", member.card, ("a", 1, "100.00"), redeem_points="60"),
    )
    assert calc.status_code == 200, calc.text

    confirmed, cancelled = await asyncio.gather(
        shop.post("/purchases/r1/confirm"), shop.post("/purchases/r1/cancel")
    )
    after = await shop.balance(member)
    entries = [kind for kind, _ in await entries_of(shop, "r1")]

    if confirmed.status_code == 200:
        assert outcome(cancelled) == "409 receipt_confirmed"
        assert after == balance("42.00")
        assert entries == ["hold", "burn", "earn"]
    else:
        assert (outcome(confirmed), outcome(cancelled)) == ("409 receipt_cancelled", "200")
        assert after == balance("100.00")
        assert entries == ["hold", "release"]
    assert await discrepancies(shop) == []


async def test_confirm_and_cancel_at_once_resolve_the_hold_once(make_shop: MakeShop) -> None:
    await confirm_and_cancel_at_once_resolve_the_hold_once(await make_shop(burn_max_percent="100"))


async def test_served_confirm_and_cancel_at_once_resolve_the_hold_once(
    make_served_shop: MakeShop,
) -> None:
    await confirm_and_cancel_at_once_resolve_the_hold_once(
        await make_served_shop(burn_max_percent="100")
    )


# --- a confirm that waited for the account's lock reads the lots as the lock left them ---


async def test_a_confirm_that_waited_for_the_lock_burns_the_lots_as_they_are_now(
    make_shop: MakeShop,
) -> None:
    """Another transaction holds the account and empties its first lot; the till's confirm
    arrives meanwhile and waits.  Once the other commits, the confirm must burn the second
    lot: the lots it read before waiting are stale (on PostgreSQL, a read in the locking
    statement sees the statement's snapshot; the hot path reads them fresh)."""
    from sqlalchemy import insert, update

    shop = await make_shop(burn_max_percent="100", points_step="0.01")
    member = await shop.customer(points=50)
    await do_adjust(shop.rt, member.account_id, Decimal(50), program_id=shop.program_id)
    calc = await shop.post(
        "/purchases/calculate", receipt("w1", member.card, ("a", 1, "100.00"), redeem_points="50")
    )
    assert calc.status_code == 200, calc.text
    async with shop.rt.engine.connect() as conn:
        first_lot = (
            await conn.execute(
                select(t.lots.c.id)
                .where(t.lots.c.account_id == member.account_id)
                .order_by(t.lots.c.id)
                .limit(1)
            )
        ).scalar_one()

    async with shop.rt.engine.begin() as other:
        # the other transaction takes the account first (SQLite: the write lock)
        await other.execute(
            update(t.accounts)
            .where(t.accounts.c.id == member.account_id)
            .values(balance=t.accounts.c.balance - Decimal(50))
        )
        await other.execute(
            update(t.lots).where(t.lots.c.id == first_lot).values(remaining=Decimal(0))
        )
        await other.execute(
            insert(t.ledger_entries).values(
                program_id=shop.program_id,
                account_id=member.account_id,
                kind="adjust",
                amount=Decimal(-50),
                held_delta=Decimal(0),
                lot_id=first_lot,
                created_at=shop.rt.now(),
                note="test: spent elsewhere meanwhile",
            )
        )
        confirm = asyncio.ensure_future(shop.post("/purchases/w1/confirm"))
        await asyncio.sleep(0.5)  # the confirm is waiting for the account
        assert not confirm.done()
    answer = await confirm

    assert outcome(answer) == "200"
    assert await lots_of(shop, member) == [Decimal("0.00"), Decimal("0.00"), Decimal("2.50")]
    assert await discrepancies(shop) == []
