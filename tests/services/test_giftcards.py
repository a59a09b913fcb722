"""Gift cards on both databases: series, activation, PIN checks and their limits, tender
holds (and two tills holding the last money at once), confirm, cancel, refunds,
expiry and breakage, verification."""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kopilka import giftcard_cli
from kopilka.domain.giftcards import is_valid_gift_card_number, make_gift_card_number
from kopilka.services import giftcards as gc
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime, Terminal
from kopilka.store import tables as t
from tests.conftest import Clock, Shop, receipt
from tests.services.conftest import add_tills, receipt_pk

D = Decimal
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


async def program_code(shop: Shop) -> str:
    async with shop.rt.engine.connect() as conn:
        code: str = (
            await conn.execute(select(t.programs.c.code).where(t.programs.c.id == shop.program_id))
        ).scalar_one()
    return code


async def terminal(shop: Shop) -> Terminal:
    term = await shop.rt.terminal_by_key(shop.key)
    assert term is not None
    return term


async def sold_cards(
    shop: Shop, n: int = 1, nominal: str = "1000.00", valid_days: int | None = 365
) -> list[tuple[str, str]]:
    """``n`` cards of a new series, activated at the shop's till."""
    cards = await gc.do_create_series(
        shop.rt,
        await program_code(shop),
        code=f"S{secrets.token_hex(3)}",
        name="Подарочная карта",
        nominal=D(nominal),
        count=n,
        valid_days=valid_days,
    )
    term = await terminal(shop)
    for number, _ in cards:
        await gc.do_activate(shop.rt, term, number)
    return cards


async def card_state(rt: Runtime, number: str) -> tuple[str, Decimal, Decimal]:
    g = t.gift_cards
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(select(g.c.state, g.c.balance, g.c.held).where(g.c.number == number))
        ).one()
    return row.state, Decimal(row.balance), Decimal(row.held)


async def clean(shop: Shop) -> list[Any]:
    return await gc.verify_cards(shop.rt, program_id=shop.program_id)


def new_receipt() -> int:
    """A receipt key for entries (the entries table has no foreign key to receipts)."""
    return 10**12 + secrets.randbelow(10**12)


async def hold(
    shop: Shop, cards: list[tuple[str, str, str]], *, receipt_pk: int, now: datetime
) -> list[dict[str, Any]]:
    term = await terminal(shop)
    tenders = [gc.Tender(n, p, D(a)) for n, p, a in cards]
    verified = await gc.check_tenders(shop.rt, term, tenders, now=now)
    async with shop.rt.hot.tx() as tx:
        return await gc.hold_tenders(
            tx,
            program_id=term.program_id,
            terminal_id=term.id,
            receipt_pk=receipt_pk,
            tenders=verified,
            now=now,
        )


# --- series and activation --------------------------------------------------------------


async def test_a_series_stores_hashes_and_returns_the_pins_once(make_shop: Any) -> None:
    shop = await make_shop()

    cards = await gc.do_create_series(
        shop.rt, await program_code(shop), code="NY", name="New Year", nominal=D("500"), count=25
    )

    g = t.gift_cards
    async with shop.rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(g.c.number, g.c.pin_hash, g.c.state, g.c.balance).where(
                    g.c.program_id == shop.program_id
                )
            )
        ).all()
    stored = {r.number: r for r in rows}
    assert len(cards) == len(stored) == 25
    assert all(is_valid_gift_card_number(n) and len(n) == 13 for n, _ in cards)
    for number, pin in cards:
        assert len(pin) == 4 and stored[number].pin_hash.startswith("pbkdf2_sha256$10000$")
        assert gc.pin_matches(pin, stored[number].pin_hash) is True
        assert (stored[number].state, Decimal(stored[number].balance)) == ("issued", D("0"))


async def test_the_same_series_code_twice_is_refused(make_shop: Any) -> None:
    shop = await make_shop()
    code = await program_code(shop)
    await gc.do_create_series(shop.rt, code, code="A", name="A", nominal=D("100"), count=1)

    with pytest.raises(ServiceError) as exc:
        await gc.do_create_series(shop.rt, code, code="A", name="A", nominal=D("100"), count=1)

    assert (exc.value.code, exc.value.status) == ("gift_card_series_exists", 409)


async def test_activation_makes_the_nominal_usable_until_the_validity_ends(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(T0)
    shop = await make_shop()
    [(number, _)] = await gc.do_create_series(
        shop.rt, await program_code(shop), code="V", name="V", nominal=D("1500"), count=1
    )
    term = await terminal(shop)

    view = await gc.do_activate(shop.rt, term, number)

    assert view == {
        "number": "*********" + number[-4:],
        "state": "active",
        "nominal": "1500.00",
        "balance": "1500.00",
        "held": "0.00",
        "available": "1500.00",
        "activated_at": "2026-05-04T10:00:00Z",
        "expires_at": "2027-05-04T10:00:00Z",
    }
    assert await gc.do_activate(shop.rt, term, number) == view  # a retry: the same answer
    other = dataclasses.replace(term, id=(await terminal((await add_tills(shop, 2))[1])).id)
    with pytest.raises(ServiceError) as exc:
        await gc.do_activate(shop.rt, other, number)
    assert (exc.value.code, exc.value.status) == ("gift_card_already_active", 409)
    assert await clean(shop) == []


async def test_an_issued_card_cannot_pay(make_shop: Any) -> None:
    shop = await make_shop()
    [(number, pin)] = await gc.do_create_series(
        shop.rt, await program_code(shop), code="I", name="I", nominal=D("100"), count=1
    )

    with pytest.raises(ServiceError) as exc:
        await hold(shop, [(number, pin, "10.00")], receipt_pk=new_receipt(), now=T0)

    assert (exc.value.code, exc.value.field) == ("gift_card_not_active", "gift_cards[0].amount")


# --- PINs and their limits ----------------------------------------------------------------


async def test_five_wrong_pins_lock_the_card_for_the_hour_even_for_the_right_pin(
    make_shop: Any,
) -> None:
    shop = await make_shop()
    [(number, pin)] = await sold_cards(shop)
    wrong = "0000" if pin != "0000" else "1111"
    answers = []

    for _ in range(5):
        with pytest.raises(ServiceError) as exc:
            await hold(shop, [(number, wrong, "1.00")], receipt_pk=new_receipt(), now=T0)
        answers.append((exc.value.code, exc.value.extra.get("attempts_left")))
    with pytest.raises(ServiceError) as locked:
        await hold(shop, [(number, pin, "1.00")], receipt_pk=new_receipt(), now=T0)

    assert answers == [("gift_card_wrong_pin", n) for n in (4, 3, 2, 1, 0)]
    assert (locked.value.code, locked.value.status, locked.value.extra["scope"]) == (
        "gift_card_locked",
        429,
        "card",
    )
    assert locked.value.extra["retry_after_s"] == 3600  # T0 is on the hour
    shown = await hold(
        shop, [(number, pin, "1.00")], receipt_pk=new_receipt(), now=T0 + timedelta(hours=1)
    )
    assert shown[0]["amount"] == "1.00"


async def test_twenty_failures_lock_the_terminal_not_the_others(make_shop: Any) -> None:
    shop = await make_shop()
    [(number, pin)] = await sold_cards(shop)
    _, other_till = await add_tills(shop, 2)
    term = await terminal(shop)
    unknown = [make_gift_card_number("71", 10_000 + i) for i in range(20)]

    for n in unknown:  # unknown numbers count for the terminal
        with pytest.raises(ServiceError) as exc:
            await gc.check_tenders(shop.rt, term, [gc.Tender(n, "1234", D("1"))], now=T0)
        assert exc.value.code == "gift_card_not_found"
    with pytest.raises(ServiceError) as locked:
        await gc.check_tenders(shop.rt, term, [gc.Tender(number, pin, D("1"))], now=T0)

    assert (locked.value.code, locked.value.extra["scope"]) == ("gift_card_locked", "terminal")
    ok = await gc.check_tenders(
        shop.rt, await terminal(other_till), [gc.Tender(number, pin, D("1"))], now=T0
    )
    assert [v.number for v in ok] == [number]


# --- tenders: hold, confirm, cancel, refund ----------------------------------------------


async def test_hold_confirm_and_refund_back_to_the_card(make_shop: Any) -> None:
    shop = await make_shop()
    [(number, pin)] = await sold_cards(shop)
    rpk = new_receipt()

    shown = await hold(shop, [(number, pin, "600.00")], receipt_pk=rpk, now=T0)
    held = await card_state(shop.rt, number)
    async with shop.rt.hot.tx() as tx:
        confirmed = await gc.confirm_tenders(tx, receipt_pk=rpk, now=T0)
        again = await gc.confirm_tenders(tx, receipt_pk=rpk, now=T0)
    debited = await card_state(shop.rt, number)
    async with shop.rt.hot.tx() as tx:
        first = await gc.refund_tenders(tx, receipt_pk=rpk, refund_pk=1, amount=D("100"), now=T0)
        second = await gc.refund_tenders(tx, receipt_pk=rpk, refund_pk=2, amount=D("900"), now=T0)

    masked = "*********" + number[-4:]
    assert shown == [{"number": masked, "amount": "600.00", "balance_after": "400.00"}]
    assert held == ("active", D("1000.00"), D("600.00"))
    assert confirmed == [{"number": masked, "amount": "600.00", "balance_after": "400.00"}]
    assert again == []
    assert debited == ("active", D("400.00"), D("0.00"))
    assert first["returned"] == "100.00" and first["not_returned"] == "0.00"
    assert (second["returned"], second["not_returned"]) == ("500.00", "400.00")
    assert await card_state(shop.rt, number) == ("active", D("1000.00"), D("0.00"))
    assert await clean(shop) == []


async def test_refund_goes_to_the_last_used_card_first(make_shop: Any) -> None:
    shop = await make_shop()
    (n1, p1), (n2, p2) = await sold_cards(shop, 2, nominal="500.00")
    rpk = new_receipt()
    await hold(shop, [(n1, p1, "500.00"), (n2, p2, "200.00")], receipt_pk=rpk, now=T0)
    async with shop.rt.hot.tx() as tx:
        await gc.confirm_tenders(tx, receipt_pk=rpk, now=T0)
    used = await card_state(shop.rt, n1)

    async with shop.rt.hot.tx() as tx:
        out = await gc.refund_tenders(tx, receipt_pk=rpk, refund_pk=7, amount=D("300"), now=T0)

    assert used == ("used", D("0.00"), D("0.00"))
    assert [c["amount"] for c in out["cards"]] == ["200.00", "100.00"]
    assert await card_state(shop.rt, n2) == ("active", D("500.00"), D("0.00"))
    assert await card_state(shop.rt, n1) == ("active", D("100.00"), D("0.00"))
    assert await clean(shop) == []


async def test_cancel_releases_the_hold_once(make_shop: Any) -> None:
    shop = await make_shop()
    [(number, pin)] = await sold_cards(shop)
    rpk = new_receipt()
    await hold(shop, [(number, pin, "250.00")], receipt_pk=rpk, now=T0)

    async with shop.rt.hot.tx() as tx:
        released = await gc.release_tenders(tx, receipt_pk=rpk, now=T0)
        twice = await gc.release_tenders(tx, receipt_pk=rpk, now=T0)

    assert (released, twice) == (D("250.00"), D("0"))
    assert await card_state(shop.rt, number) == ("active", D("1000.00"), D("0.00"))
    assert await clean(shop) == []


async def test_confirm_after_the_hold_expired_takes_it_again_or_refuses(make_shop: Any) -> None:
    shop = await make_shop()
    [(number, pin)] = await sold_cards(shop)
    late, lost = new_receipt(), new_receipt()
    await hold(shop, [(number, pin, "300.00")], receipt_pk=late, now=T0)
    await hold(shop, [(number, pin, "400.00")], receipt_pk=lost, now=T0)
    async with shop.rt.hot.tx() as tx:
        await gc.release_tenders(tx, receipt_pk=late, now=T0)
        await gc.release_tenders(tx, receipt_pk=lost, now=T0)
    await hold(shop, [(number, pin, "500.00")], receipt_pk=new_receipt(), now=T0)

    async with shop.rt.hot.tx() as tx:
        retaken = await gc.confirm_tenders(tx, receipt_pk=late, now=T0)
    with pytest.raises(ServiceError) as exc:
        async with shop.rt.hot.tx() as tx:
            await gc.confirm_tenders(tx, receipt_pk=lost, now=T0)

    assert retaken[0]["balance_after"] == "700.00"
    assert (exc.value.code, exc.value.status) == ("hold_expired", 409)
    assert await card_state(shop.rt, number) == ("active", D("700.00"), D("500.00"))
    assert await clean(shop) == []


async def test_two_tills_holding_the_last_money_at_once_exactly_one_wins(
    make_shop: Any,
) -> None:
    shop = await make_shop()
    [(number, pin)] = await sold_cards(shop, nominal="300.00")
    tills = await add_tills(shop, 2)

    async def pay(till: Shop) -> str:
        term = await terminal(till)
        verified = await gc.check_tenders(
            till.rt, term, [gc.Tender(number, pin, D("300.00"))], now=T0
        )
        try:
            async with till.rt.hot.tx() as tx:
                await gc.hold_tenders(
                    tx,
                    program_id=term.program_id,
                    terminal_id=term.id,
                    receipt_pk=new_receipt(),
                    tenders=verified,
                    now=T0,
                )
                await asyncio.sleep(0.05)  # keep the lock while the other till tries
        except ServiceError as exc:
            return exc.code
        return "held"

    results = await asyncio.gather(*(pay(till) for till in tills))

    assert sorted(results) == ["gift_card_insufficient", "held"]
    assert await card_state(shop.rt, number) == ("active", D("300.00"), D("300.00"))
    assert await clean(shop) == []


# --- expiry, breakage, verification ------------------------------------------------------


async def test_expiry_turns_the_rest_into_breakage_and_reports_it(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(T0)
    shop = await make_shop()
    (n1, p1), (n2, p2), _ = await sold_cards(shop, 3, nominal="1000.00", valid_days=30)
    rpk = new_receipt()
    await hold(shop, [(n1, p1, "350.00")], receipt_pk=rpk, now=T0)
    async with shop.rt.hot.tx() as tx:
        await gc.confirm_tenders(tx, receipt_pk=rpk, now=T0)
    await hold(shop, [(n2, p2, "100.00")], receipt_pk=new_receipt(), now=T0)  # still held

    n, breakage = await gc.expire_cards(shop.rt, now=T0 + timedelta(days=30))
    report = await gc.breakage_report(shop.rt, await program_code(shop))

    assert (n, breakage) == (2, D("1650.00"))
    assert await card_state(shop.rt, n1) == ("expired", D("0.00"), D("0.00"))
    assert await card_state(shop.rt, n2) == ("active", D("1000.00"), D("100.00"))
    [row] = report
    assert (row.cards_expired, row.breakage, row.activated, row.redeemed, row.outstanding) == (
        2,
        D("1650.00"),
        D("3000.00"),
        D("350.00"),
        D("1000.00"),
    )
    assert await clean(shop) == []


async def test_a_tender_without_a_pin_is_refused_and_not_counted(make_shop: Any) -> None:
    shop = await make_shop()
    [(number, pin)] = await sold_cards(shop)
    term = await terminal(shop)

    for _ in range(6):
        with pytest.raises(ServiceError) as exc:
            await gc.check_tenders(shop.rt, term, [gc.Tender(number, None, D("1"))], now=T0)
        assert (exc.value.code, exc.value.field) == ("gift_card_pin_required", "gift_cards[0].pin")
    ok = await gc.check_tenders(shop.rt, term, [gc.Tender(number, pin, D("1"))], now=T0)

    assert [v.number for v in ok] == [number]


async def test_the_cli_issues_a_series_to_csv_reports_breakage_and_verifies(
    make_shop: Any, db_url: str, tmp_path: Path
) -> None:
    shop = await make_shop()
    code = await program_code(shop)
    out = tmp_path / "cards.csv"

    def run(*argv: str) -> int:
        parser = argparse.ArgumentParser()
        parser.add_argument("--db", default=db_url)
        giftcard_cli.add_parser(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(list(argv))
        code: int = args.fn(args)
        return code

    created = await asyncio.to_thread(
        run, "giftcard", "series", "create", "--program", code, "--code", "XMAS",
        "--name", "Новогодняя", "--nominal", "3000", "--count", "3", "--out", str(out),
    )  # fmt: skip
    verified = await asyncio.to_thread(run, "giftcard", "verify")
    report = await asyncio.to_thread(run, "giftcard", "breakage", "--program", code)

    rows = list(csv.reader(out.read_text().splitlines()))
    assert (created, verified, report) == (0, 0, 0)
    assert rows[0] == ["number", "pin"] and len(rows) == 4
    g = t.gift_cards
    async with shop.rt.engine.connect() as conn:
        stored = set(
            (await conn.execute(select(g.c.number).where(g.c.program_id == shop.program_id)))
            .scalars()
            .all()
        )
    assert {r[0] for r in rows[1:]} == stored


async def test_parallel_guesses_get_no_more_pin_checks_than_the_limit(make_shop: Any) -> None:
    shop = await make_shop()
    [(number, pin)] = await sold_cards(shop)
    tills = await add_tills(shop, 3)
    wrong = "0000" if pin != "0000" else "1111"

    async def guess(till: Shop) -> str:
        try:
            await gc.check_tenders(
                till.rt, await terminal(till), [gc.Tender(number, wrong, D("1"))], now=T0
            )
        except ServiceError as exc:
            return exc.code
        return "accepted"

    results = await asyncio.gather(*(guess(tills[i % 3]) for i in range(12)))

    assert sorted(results) == ["gift_card_locked"] * 7 + ["gift_card_wrong_pin"] * 5


async def test_holds_of_a_receipt_left_calculated_are_released_after_the_hold_time(
    make_shop: Any, clock: Clock
) -> None:
    clock.set(T0)
    shop = await make_shop(hold_ttl_s=600)
    [(number, pin)] = await sold_cards(shop)
    r = await shop.post("/purchases/calculate", receipt("gc-1", None, ("A", 1, "900.00")))
    assert r.status_code == 200, r.text
    rpk = await receipt_pk(shop, "gc-1")
    await hold(shop, [(number, pin, "900.00")], receipt_pk=rpk, now=T0)

    clock.advance(seconds=599)
    early = await gc.expire_tender_holds(shop.rt)
    clock.advance(seconds=1)
    due = await gc.expire_tender_holds(shop.rt)

    assert (early, due) == (0, 1)
    assert await card_state(shop.rt, number) == ("active", D("1000.00"), D("0.00"))
    assert await clean(shop) == []


async def test_cards_together_may_not_pay_more_than_the_receipt(make_shop: Any) -> None:
    shop = await make_shop()
    (n1, p1), (n2, p2) = await sold_cards(shop, 2)
    term = await terminal(shop)
    verified = await gc.check_tenders(
        shop.rt, term, [gc.Tender(n1, p1, D("600")), gc.Tender(n2, p2, D("400.01"))], now=T0
    )

    with pytest.raises(ServiceError) as exc:
        async with shop.rt.hot.tx() as tx:
            await gc.hold_tenders(
                tx,
                program_id=term.program_id,
                terminal_id=term.id,
                receipt_pk=new_receipt(),
                tenders=verified,
                now=T0,
                to_pay=D("1000.00"),
            )

    assert (exc.value.code, exc.value.extra["to_pay"]) == ("gift_cards_exceed_total", "1000.00")
    assert await card_state(shop.rt, n1) == ("active", D("1000.00"), D("0.00"))


async def test_a_blocked_card_refuses_new_holds_but_its_open_receipt_confirms(
    make_shop: Any,
) -> None:
    shop = await make_shop()
    [(number, pin)] = await sold_cards(shop)
    rpk = new_receipt()
    await hold(shop, [(number, pin, "100.00")], receipt_pk=rpk, now=T0)

    view = await gc.do_block(shop.rt, await program_code(shop), number)
    again = await gc.do_block(shop.rt, await program_code(shop), number)
    with pytest.raises(ServiceError) as exc:
        await hold(shop, [(number, pin, "1.00")], receipt_pk=new_receipt(), now=T0)
    async with shop.rt.hot.tx() as tx:
        confirmed = await gc.confirm_tenders(tx, receipt_pk=rpk, now=T0)

    assert (view["state"], view["balance"], again == view) == ("blocked", "1000.00", True)
    assert exc.value.code == "gift_card_blocked"
    assert confirmed[0]["balance_after"] == "900.00"
    assert await card_state(shop.rt, number) == ("blocked", D("900.00"), D("0.00"))
    assert await clean(shop) == []


async def test_two_refunds_of_one_receipt_at_once_return_no_more_than_it_took(
    make_shop: Any,
) -> None:
    shop = await make_shop()
    [(number, pin)] = await sold_cards(shop)
    rpk = new_receipt()
    await hold(shop, [(number, pin, "600.00")], receipt_pk=rpk, now=T0)
    async with shop.rt.hot.tx() as tx:
        await gc.confirm_tenders(tx, receipt_pk=rpk, now=T0)

    async def refund(refund_pk: int) -> str:
        async with shop.rt.hot.tx() as tx:
            out = await gc.refund_tenders(
                tx, receipt_pk=rpk, refund_pk=refund_pk, amount=D("600.00"), now=T0
            )
            await asyncio.sleep(0.05)  # keep the locks while the other refund tries
        returned: str = out["returned"]
        return returned

    results = await asyncio.gather(refund(1), refund(2))

    assert sorted(results) == ["0.00", "600.00"]
    assert await card_state(shop.rt, number) == ("active", D("1000.00"), D("0.00"))
    assert await clean(shop) == []
