"""A member's calculate right after the till's lookup (PostgreSQL, ADR 0040) starts from
what the lookup read and writes guarded by the rows' versions.  Whatever changed in
between (the card blocked or replaced, points credited, the customer renamed) must show
in the calculate exactly as if it had read for itself.

Each scenario runs on both databases: SQLite keeps nothing from the lookup (the calculate
always reads), so the answers there are the reference the PostgreSQL ones must match.
"""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import REGISTRY
from sqlalchemy import update

from kopilka.domain.identifiers import make_card_number
from kopilka.services import customer_admin as ca
from kopilka.services.accounts import do_adjust
from kopilka.services.audit import Actor
from kopilka.store import tables as t
from tests.conftest import Member, Shop, receipt
from tests.services.conftest import MakeShop, discrepancies
from tests.services.test_concurrency import entries_of


def from_lookup(result: str) -> float:
    """``kopilka_calculate_from_lookup_total{result}`` of this process."""
    labels = {"result": result}
    return REGISTRY.get_sample_value("kopilka_calculate_from_lookup_total", labels) or 0.0


class Counts:
    def __init__(self) -> None:
        self.written, self.changed = from_lookup("written"), from_lookup("changed")

    def grown(self) -> tuple[float, float]:
        return from_lookup("written") - self.written, from_lookup("changed") - self.changed


def expected(shop: Shop, *, changed: bool) -> tuple[int, int]:
    """(written, changed) growth: PostgreSQL writes from the lookup's read when nothing
    changed, and reads again when something did; SQLite never keeps the read."""
    if shop.rt.sqlite:
        return (0, 0)
    return (0, 1) if changed else (1, 0)


def support(shop: Shop) -> Actor:
    return Actor("user", 1, "Sam support", "support", "127.0.0.1", shop.program_id)


async def looked_up(shop: Shop, identifier: str) -> None:
    r = await shop.get("/customers/lookup", params={"identifier": identifier})
    assert r.status_code == 200, r.text


async def member_after_lookup(
    make_shop: MakeShop, points: int, **settings: str
) -> tuple[Shop, Member]:
    """A program, a member with ``points``, and the till's lookup of the member's card."""
    shop = await make_shop(**settings)
    member = await shop.customer(points=points)
    await looked_up(shop, member.card)
    return shop, member


async def test_with_nothing_changed_the_calculate_answers_as_one_that_reads(
    make_shop: MakeShop,
) -> None:
    shop = await make_shop(burn_max_percent="50", earn_percent="5")
    member = await shop.customer(points=300)
    basket = [("milk", 2, "89.90"), ("cheese", "0.350", "1290.00")]

    await looked_up(shop, member.card)
    counts = Counts()
    first = await shop.post("/purchases/calculate", receipt("l1", member.card, *basket))
    grown = counts.grown()
    second = await shop.post("/purchases/calculate", receipt("l2", member.card, *basket))

    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    assert grown == expected(shop, changed=False)
    one, two = first.json(), second.json()
    assert one.pop("receipt_id") == "l1" and two.pop("receipt_id") == "l2"
    assert one == two
    # 300 + 5 % of 631.30 (179.80 + 451.50) = 31.565, rounded down to whole points
    assert one["balance_after"]["available"] == "331.00"


async def test_a_card_blocked_after_the_lookup_is_refused(make_shop: MakeShop) -> None:
    shop, member = await member_after_lookup(make_shop, 50)

    await ca.block_card(shop.rt, support(shop), shop.program_id, member.card, reason="stolen")
    counts = Counts()
    r = await shop.post("/purchases/calculate", receipt("b1", member.card, ("a", 1, "10.00")))

    assert r.status_code == 422 and r.json()["code"] == "card_blocked", r.text
    assert r.json()["field"] == "identifier"
    assert counts.grown() == expected(shop, changed=True)


async def test_points_credited_after_the_lookup_are_burned_and_shown(
    make_shop: MakeShop,
) -> None:
    shop, member = await member_after_lookup(
        make_shop, 100, burn_max_percent="100", earn_percent="10"
    )

    await do_adjust(shop.rt, member.account_id, Decimal(25), program_id=shop.program_id)
    counts = Counts()
    r = await shop.post(
        "/purchases/calculate",
        receipt("p1", member.card, ("a", 1, "200.00"), redeem_points="max"),
    )

    assert r.status_code == 200, r.text
    assert counts.grown() == expected(shop, changed=True)
    body = r.json()
    # all 125 points (the lookup saw 100) burned; 10 % of the 75.00 paid, 7.5, rounded
    # down to whole points, is earned
    assert body["points_redeemed"] == "125.00"
    assert body["balance_after"] == {"available": "7.00", "pending": "0.00", "held": "0.00"}
    assert await entries_of(shop, "p1") == [("hold", Decimal(0))]
    assert await discrepancies(shop) == []


async def test_a_burning_calculate_with_nothing_changed_holds_from_the_lookups_read(
    make_shop: MakeShop,
) -> None:
    shop, member = await member_after_lookup(
        make_shop, 100, burn_max_percent="100", earn_percent="10"
    )

    counts = Counts()
    r = await shop.post(
        "/purchases/calculate",
        receipt("h1", member.card, ("a", 1, "100.00"), redeem_points="60"),
    )
    grown = counts.grown()
    c = await shop.post("/purchases/h1/confirm")

    assert r.status_code == 200 and c.status_code == 200, (r.text, c.text)
    assert grown == expected(shop, changed=False)
    assert r.json()["points_redeemed"] == "60.00"
    # 100 - 60 burned + 4 earned (10 % of the 40.00 paid)
    assert (await shop.balance(member))["available"] == "44.00"
    assert [k for k, _ in await entries_of(shop, "h1")] == ["hold", "burn", "earn"]
    assert await discrepancies(shop) == []


async def test_a_customer_renamed_after_the_lookup_is_shown_by_the_new_name(
    make_shop: MakeShop,
) -> None:
    shop = await make_shop()
    member = await shop.customer(points=10, first_name="Анна", last_name="Смирнова")
    await looked_up(shop, member.card)

    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == member.customer_id)
            .values(first_name="Мария", last_name="Иванова")
        )
    counts = Counts()
    r = await shop.post("/purchases/calculate", receipt("n1", member.card, ("a", 1, "10.00")))

    assert r.status_code == 200, r.text
    assert r.json()["customer"]["name"] == "Мария И."
    assert counts.grown() == expected(shop, changed=True)


async def test_a_phone_moved_to_a_new_card_after_the_lookup_names_the_new_card(
    make_shop: MakeShop,
) -> None:
    shop = await make_shop()
    member: Member = await shop.customer(points=10)
    await looked_up(shop, member.phone)

    new = make_card_number("28", shop.program_id * 1000 + 11)
    await ca.replace_card(shop.rt, support(shop), shop.program_id, member.card, new, reason="lost")
    counts = Counts()
    r = await shop.post("/purchases/calculate", receipt("m1", member.phone, ("a", 1, "10.00")))

    assert r.status_code == 200, r.text
    assert r.json()["customer"]["card"].endswith(new[-4:])
    assert counts.grown() == expected(shop, changed=True)


async def test_points_credited_after_the_lookup_show_in_a_calculate_burning_nothing(
    make_shop: MakeShop,
) -> None:
    shop, member = await member_after_lookup(make_shop, 100, earn_percent="10")

    await do_adjust(shop.rt, member.account_id, Decimal(25), program_id=shop.program_id)
    counts = Counts()
    r = await shop.post("/purchases/calculate", receipt("q1", member.card, ("a", 1, "50.00")))

    assert r.status_code == 200, r.text
    # 100 + 25 credited after the lookup + 10 % of 50.00
    assert r.json()["balance_after"]["available"] == "130.00"
    assert counts.grown() == expected(shop, changed=True)


async def test_a_card_unblocked_after_the_lookup_is_served(make_shop: MakeShop) -> None:
    """A refusal computed from the lookup's read is not given: the calculate reads for
    itself and answers from what is there now."""
    shop = await make_shop()
    member = await shop.customer(points=50)
    await ca.block_card(shop.rt, support(shop), shop.program_id, member.card, reason="stolen")
    await looked_up(shop, member.card)  # the cashier sees the card blocked

    await ca.unblock_card(shop.rt, support(shop), shop.program_id, member.card, reason="found")
    refused = from_lookup("refused")
    r = await shop.post("/purchases/calculate", receipt("u1", member.card, ("a", 1, "10.00")))

    assert r.status_code == 200, r.text
    assert from_lookup("refused") - refused == (0 if shop.rt.sqlite else 1)


async def test_points_spent_elsewhere_after_the_lookup_refuse_with_todays_balance(
    make_shop: MakeShop,
) -> None:
    shop, member = await member_after_lookup(make_shop, 100, burn_max_percent="100")

    await do_adjust(shop.rt, member.account_id, Decimal(-70), program_id=shop.program_id)
    r = await shop.post(
        "/purchases/calculate", receipt("s1", member.card, ("a", 1, "100.00"), redeem_points="50")
    )

    assert r.status_code == 422 and r.json()["code"] == "insufficient_points", r.text
    assert r.json()["redeem_max"] == "30.00"
    assert await shop.balance(member) == {
        "available": "30.00",
        "pending": "0.00",
        "held": "0.00",
        "debt": "0.00",
    }
