"""Customers and cards for support (services/customer_admin.py), on both databases:
search, adjustment with a reason and its audit row, block/unblock, replace, virtual
card, consents, merge (the total kept, the ledger verified), refusals by role."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from kopilka.domain.identifiers import make_card_number
from kopilka.services import cards
from kopilka.services import customer_admin as ca
from kopilka.services.audit import Actor, AuditFilter, list_audit
from kopilka.services.errors import ServiceError
from kopilka.services.ledger_jobs import verify_ledger
from kopilka.store import tables as t
from tests.conftest import receipt


def support(shop: Any, role: str = "support") -> Actor:
    return Actor("user", 1, f"Sam {role}", role, "127.0.0.1", shop.program_id)


async def test_search_by_phone_card_name_and_email_stays_in_the_program(make_shop: Any) -> None:
    shop = await make_shop()
    other = await make_shop()
    m = await shop.customer(10, first_name="Пётр", last_name="Кузнецов")
    await other.customer(first_name="Пётр", last_name="Кузнецов")
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            t.customers.update()
            .where(t.customers.c.id == m.customer_id)
            .values(email="petr@example.org")
        )
    local = "8" + m.phone[2:5] + " " + m.phone[5:8] + "-" + m.phone[8:10] + "-" + m.phone[10:]

    for q, kind in [
        (local, "phone"),
        (m.card, "identifier"),
        ("кузн", "name"),
        ("Кузнецов пёт", "name"),
        ("PETR@example.org", "email"),
    ]:
        found = await ca.search(shop.rt, shop.program_id, q)
        assert found.kind == kind, q
        assert [x.id for x in found.items] == [m.customer_id], q
        assert found.items[0].balance == Decimal("10.00")
    assert (await ca.search(shop.rt, shop.program_id, "ив")).total == 0
    assert (await ca.search(shop.rt, shop.program_id, "к")).kind == "short"
    assert (await ca.search(shop.rt, shop.program_id, "")).kind == "empty"


async def test_an_adjustment_needs_a_reason_and_writes_the_audit_row(make_shop: Any) -> None:
    shop = await make_shop()
    m = await shop.customer(100)
    who = support(shop)

    with pytest.raises(ServiceError) as no_reason:
        await ca.adjust(shop.rt, who, shop.program_id, m.customer_id, Decimal("50"), reason=" ")
    with pytest.raises(ServiceError) as too_much:
        await ca.adjust(
            shop.rt, who, shop.program_id, m.customer_id, Decimal("-100.01"), reason="typo"
        )
    out = await ca.adjust(
        shop.rt, who, shop.program_id, m.customer_id, Decimal("-30.5"), reason="goodwill fix"
    )
    view = await ca.get_customer(shop.rt, shop.program_id, m.customer_id)
    rows, _ = await list_audit(
        shop.rt, AuditFilter(object_type="account", object_id=str(m.account_id))
    )

    assert no_reason.value.field == "reason"
    assert too_much.value.code == "insufficient_points" and too_much.value.field == "amount"
    assert out["after"]["available"] == "69.50"
    assert view.balance.available == Decimal("69.50")
    assert [(r.action, r.reason, r.actor_name) for r in rows] == [
        ("points.adjust", "goodwill fix", "Sam support")
    ]
    assert '"available":"100.00"' in (rows[0].before or "")
    assert '"available":"69.50"' in (rows[0].after or "")
    moves, total = await ca.movements(shop.rt, shop.program_id, m.account_id)
    assert total == 2 and moves[0].amount == Decimal("-30.50") and moves[0].kind == "adjust"


async def test_roles_without_the_permission_are_refused_and_nothing_changes(
    make_shop: Any,
) -> None:
    shop = await make_shop()
    m = await shop.customer(10)
    for role, action in [
        (
            "analyst",
            ca.adjust(
                shop.rt,
                support(shop, "analyst"),
                shop.program_id,
                m.customer_id,
                Decimal(5),
                reason="because",
            ),
        ),
        (
            "security",
            ca.adjust(
                shop.rt,
                support(shop, "security"),
                shop.program_id,
                m.customer_id,
                Decimal(5),
                reason="because",
            ),
        ),
        (
            "marketer",
            ca.block_card(
                shop.rt, support(shop, "marketer"), shop.program_id, m.card, reason="because"
            ),
        ),
    ]:
        with pytest.raises(ServiceError) as refused:
            await action
        assert refused.value.code == "forbidden", role
    # the security officer may block (and unblock) but not adjust
    await ca.block_card(shop.rt, support(shop, "security"), shop.program_id, m.card, reason="fraud")
    # a user of another program is refused
    elsewhere = Actor("user", 2, "x", "support", None, shop.program_id + 100000)
    with pytest.raises(ServiceError) as scoped:
        await ca.unblock_card(shop.rt, elsewhere, shop.program_id, m.card, reason="because")
    assert scoped.value.code == "forbidden"
    assert (await ca.get_customer(shop.rt, shop.program_id, m.customer_id)).total == 10


async def test_block_unblock_and_replace_keep_the_balance_on_the_account(make_shop: Any) -> None:
    shop = await make_shop(earn_percent="10")
    m = await shop.customer(25)
    who = support(shop)

    await ca.block_card(shop.rt, who, shop.program_id, m.card, reason="lost in the metro")
    blocked = await shop.post("/purchases/calculate", receipt("b1", m.card, ("a", 1, "1.00")))
    with pytest.raises(ServiceError) as twice:
        await ca.block_card(shop.rt, who, shop.program_id, m.card, reason="again")
    await ca.unblock_card(shop.rt, who, shop.program_id, m.card, reason="found it")
    open_again = await shop.post("/purchases/calculate", receipt("b2", m.card, ("a", 1, "1.00")))

    new = make_card_number("28", shop.program_id * 1000 + 7)
    with pytest.raises(ServiceError) as bad:
        await ca.replace_card(
            shop.rt,
            who,
            shop.program_id,
            m.card,
            new[:-1] + "0" if new[-1] != "0" else new[:-1] + "1",
            reason="lost",
        )
    await ca.replace_card(shop.rt, who, shop.program_id, m.card, new, reason="lost card")
    old = await shop.post("/purchases/calculate", receipt("b3", m.card, ("a", 1, "1.00")))
    fresh = await shop.get("/customers/lookup", params={"identifier": new})
    by_phone = await shop.get("/customers/lookup", params={"identifier": m.phone})
    view = await ca.get_customer(shop.rt, shop.program_id, m.customer_id)
    log, total = await ca.history(shop.rt, shop.program_id, m.customer_id)

    assert blocked.status_code == 422 and blocked.json()["code"] == "card_blocked"
    assert twice.value.code == "conflict"
    assert open_again.status_code == 200, open_again.text
    assert bad.value.field == "new"
    assert old.status_code == 422 and old.json()["code"] == "card_blocked"
    assert fresh.json()["balance"]["available"] == "25.00"
    assert by_phone.json()["card"]["number"].endswith(new[-4:])
    assert [(c.number, c.status) for c in view.cards] == [(new, "active"), (m.card, "replaced")]
    assert view.cards[1].replaced_by == new
    assert [r.action for r in log] == ["card.replace", "card.unblock", "card.block"]
    assert total == 3


async def test_a_virtual_card_and_consents(make_shop: Any) -> None:
    shop = await make_shop()
    m = await shop.customer(5)
    who = support(shop)
    number = await ca.issue_virtual_card(
        shop.rt, who, shop.program_id, m.customer_id, reason="asked in the app"
    )
    await ca.set_consents(
        shop.rt, who, shop.program_id, m.customer_id, sms=True, email=False, reason="by phone"
    )
    lookup = await shop.get("/customers/lookup", params={"identifier": number})
    view = await ca.get_customer(shop.rt, shop.program_id, m.customer_id)

    assert number.startswith("29") and len(number) == 13
    assert lookup.json()["balance"]["available"] == "5.00"
    assert {c.kind for c in view.cards} == {"virtual", "plastic"}
    assert view.consent_sms and not view.consent_email
    log, _ = await ca.history(shop.rt, shop.program_id, m.customer_id)
    consent = next(r for r in log if r.action == "customer.consents")
    assert '"consent_sms":false' in (consent.before or "")
    assert '"consent_sms":true' in (consent.after or "")


async def test_a_merge_keeps_the_total_and_the_ledger_verifies(make_shop: Any) -> None:
    shop = await make_shop(earn_percent="10")
    keep = await shop.customer(40)
    dup = await shop.customer(60)
    bought = await shop.post("/purchases", receipt("m1", dup.card, ("a", 1, "100.00")))
    assert bought.status_code == 200, bought.text
    who = support(shop)
    dup_lots = {
        (x.remaining, x.activates_at, x.expires_at)
        for x in (await ca.get_customer(shop.rt, shop.program_id, dup.customer_id)).lots
    }

    out = await ca.merge(
        shop.rt, who, shop.program_id, keep.customer_id, dup.customer_id, reason="same person"
    )
    kept = await ca.get_customer(shop.rt, shop.program_id, keep.customer_id)
    gone = await ca.get_customer(shop.rt, shop.program_id, dup.customer_id)
    by_old_card = await shop.get("/customers/lookup", params={"identifier": dup.card})
    with pytest.raises(ServiceError) as again:
        await ca.merge(
            shop.rt, who, shop.program_id, keep.customer_id, dup.customer_id, reason="again"
        )

    assert out["points_moved"] == "70.00"
    assert kept.total == Decimal("110.00") and gone.total == Decimal("0.00")
    assert gone.status == "merged" and gone.merged_into_id == keep.customer_id
    # each lot arrives whole, activating and expiring when it would have
    assert dup_lots <= {(x.remaining, x.activates_at, x.expires_at) for x in kept.lots}
    assert len(dup_lots) == 2
    assert {c.number for c in kept.cards} == {keep.card, dup.card}
    assert by_old_card.json()["customer"]["id"] == keep.customer_id
    assert by_old_card.json()["balance"]["available"] == "110.00"
    assert again.value.code == "conflict"
    bad = [
        d for d in await verify_ledger(shop.rt) if d.account_id in (keep.account_id, dup.account_id)
    ]
    assert bad == []


async def test_a_merge_is_refused_while_points_are_held(make_shop: Any) -> None:
    shop = await make_shop(earn_percent="10")
    keep = await shop.customer(10)
    dup = await shop.customer(50)
    held = await shop.post(
        "/purchases/calculate", receipt("h1", dup.card, ("a", 1, "100.00"), redeem_points="20")
    )
    assert held.status_code == 200, held.text
    async with shop.rt.engine.connect() as conn:
        holds = (
            await conn.execute(
                select(t.holds.c.id).where(
                    t.holds.c.account_id == dup.account_id, t.holds.c.state == "active"
                )
            )
        ).all()
    assert holds
    with pytest.raises(ServiceError) as refused:
        await ca.merge(
            shop.rt,
            support(shop),
            shop.program_id,
            keep.customer_id,
            dup.customer_id,
            reason="same person",
        )
    assert refused.value.code == "conflict" and refused.value.field == "other"


async def test_two_merges_the_other_way_round_do_not_deadlock(make_shop: Any) -> None:
    shop = await make_shop()
    a = await shop.customer(10)
    b = await shop.customer(20)
    who = support(shop)
    results = await asyncio.gather(
        ca.merge(shop.rt, who, shop.program_id, a.customer_id, b.customer_id, reason="dup a"),
        ca.merge(shop.rt, who, shop.program_id, b.customer_id, a.customer_id, reason="dup b"),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, ServiceError)]
    assert len(ok) == 1 and len(refused) == 1 and refused[0].code == "conflict", results
    bad = [d for d in await verify_ledger(shop.rt) if d.account_id in (a.account_id, b.account_id)]
    assert bad == []


async def test_the_cli_still_blocks_and_replaces_with_its_own_actor(make_shop: Any) -> None:
    shop = await make_shop()
    m = await shop.customer(3)
    await cards.do_block_card(shop.rt, m.card, reason="lost")
    rows, _ = await list_audit(shop.rt, AuditFilter(object_type="card", object_id=m.card))
    assert [(r.action, r.actor_kind) for r in rows] == [("card.block", "cli")]
