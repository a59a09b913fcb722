"""Coalition ledger (issue 9, ADR 0024) on both databases, through the POS API: who funds
every movement and where it happened, partner promo points restricted to their partner,
refunds that reverse what they caused, and a hypothesis property over random purchases
and refunds at three partners checked against a model written here."""

from __future__ import annotations

import dataclasses
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from kopilka.services.runtime import hash_key
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from tests.api.test_promotions_at_till import publish
from tests.conftest import Member, Shop, receipt
from tests.services.conftest import MakeShop, count_rows, discrepancies, receipt_pk

D = Decimal


async def add_partner(shop: Shop, code: str) -> Shop:
    """Another partner of the shop's program with a store and a till: its own Shop."""
    now = shop.rt.now()
    async with shop.rt.engine.begin() as conn:
        partner = await insert_id(
            conn, t.partners, {"program_id": shop.program_id, "code": code, "name": code}
        )
        store_code = f"S{code}-{secrets.token_hex(3)}"
        store = await insert_id(
            conn,
            t.stores,
            {
                "program_id": shop.program_id,
                "partner_id": partner,
                "code": store_code,
                "name": f"Store {code}",
                "city": "Москва",
            },
        )
        key = f"kp_test_{secrets.token_hex(12)}"
        await conn.execute(
            insert(t.terminals),
            {
                "program_id": shop.program_id,
                "store_id": store,
                "name": f"till {code}",
                "key_hash": hash_key(key),
                "key_prefix": key[:10],
                "created_at": now,
            },
        )
    return dataclasses.replace(shop, partner_id=partner, store_code=store_code, key=key)


POINTS = {"burn_max_percent": 100, "expiry_days": 365}
# Partner A's own promotion: 10 points at its stores, at its cost, burnable only there.
A_BONUS = {
    "id": "a-bonus",
    "name": "A: +10",
    "when": {"partner": ["main"]},
    "effects": [{"kind": "fixed_points", "points": 10}],
    "funded_by": "partner",
    "burn_at": "partner",
}
# Partner C's own promotion, burnable anywhere; the program's own promotion at B.
C_BONUS = {
    "id": "c-bonus",
    "name": "C: +7",
    "when": {"partner": ["c"]},
    "effects": [{"kind": "fixed_points", "points": 7}],
    "funded_by": "partner",
}
B_PROGRAM = {
    "id": "b-program",
    "name": "At B: +3 from the program",
    "when": {"partner": ["b"]},
    "effects": [{"kind": "fixed_points", "points": 3}],
}


async def coalition(make_shop: MakeShop, promotions: list[dict[str, Any]]) -> list[Shop]:
    a = await make_shop()
    b = await add_partner(a, "b")
    c = await add_partner(a, "c")
    await publish(a, promotions, points=POINTS)
    return [a, b, c]


async def entries(shop: Shop, receipt_id: str, at: Shop | None = None) -> list[tuple[Any, ...]]:
    """(kind, amount, funding_partner_id, partner_id) of a receipt's entries, in order."""
    pk = await receipt_pk(at or shop, receipt_id)
    le = t.ledger_entries
    async with shop.rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(le.c.kind, le.c.amount, le.c.funding_partner_id, le.c.partner_id)
                .where(le.c.receipt_pk == pk, le.c.amount != 0)
                .order_by(le.c.id)
            )
        ).all()
    return [(k, D(a), f, p) for k, a, f, p in rows]


async def available(shop: Shop, member: Member) -> str:
    return (await shop.balance(member))["available"]


async def test_points_earned_at_a_and_burned_at_b_stay_funded_by_a(make_shop: MakeShop) -> None:
    a, b, _ = await coalition(make_shop, [])
    anna = await a.customer()
    await a.post("/purchases", receipt("r1", anna.card, ("x", 1, "1000.00")))

    calc = await b.post(
        "/purchases/calculate", receipt("r2", anna.card, ("y", 1, "100.00"), redeem_points="30")
    )
    confirm = await b.post("/purchases/r2/confirm")

    assert calc.status_code == 200 and confirm.status_code == 200, (calc.text, confirm.text)
    assert await entries(a, "r1") == [("earn", D("50.00"), a.partner_id, a.partner_id)]
    assert await entries(b, "r2") == [
        ("burn", D("-30.00"), a.partner_id, b.partner_id),  # A's points, burned at B
        ("earn", D("3.00"), b.partner_id, b.partner_id),  # 5 % of 70.00 at B: B's
    ]
    assert await available(b, anna) == "23.00"
    assert await discrepancies(a) == []


async def test_a_partners_restricted_promo_points_burn_only_at_that_partner(
    make_shop: MakeShop,
) -> None:
    a, b, _ = await coalition(make_shop, [A_BONUS])
    anna = await a.customer()
    bought = await a.post("/purchases", receipt("r1", anna.card, ("x", 1, "1000.00")))

    at_a, at_b = await available(a, anna), await available(b, anna)
    too_much = await b.post(
        "/purchases/calculate", receipt("r2", anna.card, ("y", 1, "100.00"), redeem_points="51")
    )
    calc_b = await b.post("/purchases/calculate", receipt("r3", anna.card, ("y", 1, "100.00")))
    at_a_burn = await a.post(
        "/purchases", receipt("r4", anna.card, ("x", 1, "100.00"), redeem_points="60")
    )

    assert bought.json()["points_earned"] == "60.00"  # 50 base + 10 of A's promotion
    assert await entries(a, "r1") == [
        ("earn", D("50.00"), a.partner_id, a.partner_id),
        ("earn", D("10.00"), a.partner_id, a.partner_id),
    ]
    assert (at_a, at_b) == ("60.00", "50.00")
    assert too_much.status_code == 422, too_much.text
    assert too_much.json()["code"] == "insufficient_points"
    assert calc_b.json()["redeem_max"] == "50.00"
    assert at_a_burn.status_code == 200, at_a_burn.text
    burns = [e for e in await entries(a, "r4") if e[0] == "burn"]
    assert sum(e[1] for e in burns) == D("-60.00")
    assert {(e[2], e[3]) for e in burns} == {(a.partner_id, a.partner_id)}
    # All 60 burned; r4 earned 2 (5 % of 40.00, anywhere) and A's 10 (only at A).
    assert (await available(a, anna), await available(b, anna)) == ("12.00", "2.00")
    assert await discrepancies(a) == []


async def test_a_hold_at_a_on_restricted_points_leaves_b_its_own_points(
    make_shop: MakeShop,
) -> None:
    """Held points are reserved against the lots burnable where the hold was made: a
    hold at A is paid from A's restricted lot first, so B still sees the unrestricted
    points; a hold at B then leaves A only what both holds do not need."""
    a, b, _ = await coalition(make_shop, [A_BONUS])
    anna = await a.customer(points=40)  # the program's points, burnable anywhere
    await a.post("/purchases", receipt("r1", anna.card, ("x", 1, "0.01")))  # A's 10

    hold_a = await a.post(
        "/purchases/calculate", receipt("r2", anna.card, ("x", 1, "100.00"), redeem_points="10")
    )
    seen_at_b = await available(b, anna)
    hold_b = await b.post(
        "/purchases/calculate", receipt("r3", anna.card, ("y", 1, "100.00"), redeem_points="40")
    )
    seen_at_a = await available(a, anna)
    confirm_a = await a.post("/purchases/r2/confirm")
    confirm_b = await b.post("/purchases/r3/confirm")

    assert hold_a.status_code == 200 and hold_b.status_code == 200, (hold_a.text, hold_b.text)
    assert seen_at_b == "40.00"
    assert seen_at_a == "0.00"
    assert confirm_a.status_code == 200 and confirm_b.status_code == 200, confirm_b.text
    burned_a = [e for e in await entries(a, "r2") if e[0] == "burn"]
    burned_b = [e for e in await entries(b, "r3") if e[0] == "burn"]
    assert burned_a == [("burn", D("-10.00"), a.partner_id, a.partner_id)]
    assert burned_b == [("burn", D("-40.00"), None, b.partner_id)]
    assert await discrepancies(a) == []


async def test_refunds_reverse_what_the_receipt_did_with_its_funders(make_shop: MakeShop) -> None:
    a, b, _ = await coalition(make_shop, [A_BONUS])
    anna = await a.customer()
    await a.post("/purchases", receipt("r1", anna.card, ("x", 1, "1000.00")))  # 50 + 10 (A)
    await b.post("/purchases", receipt("r2", anna.card, ("y", 1, "100.00"), redeem_points="20"))

    back_b = await b.post("/purchases/r2/refunds", {"refund_id": "f1"})
    back_a = await a.post("/purchases/r1/refunds", {"refund_id": "f2"})

    assert back_b.status_code == 200 and back_a.status_code == 200, (back_b.text, back_a.text)
    refund_b = [e for e in await entries(b, "r2") if e[0] == "refund"]
    assert sorted(refund_b, key=lambda e: e[1]) == [
        ("refund", D("-4.00"), b.partner_id, b.partner_id),  # B's 4 points taken back
        ("refund", D("20.00"), a.partner_id, b.partner_id),  # A's 20 given back, at B
    ]
    refund_a = [e for e in await entries(a, "r1") if e[0] == "refund"]
    assert sum(e[1] for e in refund_a) == D("-60.00")
    assert {(e[2], e[3]) for e in refund_a} == {(a.partner_id, a.partner_id)}
    assert await available(a, anna) == "0.00"
    assert await discrepancies(a) == []


async def test_base_points_can_be_the_programs(make_shop: MakeShop) -> None:
    a = await make_shop()
    await publish(a, [], points={**POINTS, "base_funded_by": "program"})
    anna = await a.customer()

    await a.post("/purchases", receipt("r1", anna.card, ("x", 1, "200.00")))

    assert await entries(a, "r1") == [("earn", D("10.00"), None, a.partner_id)]


# --- the property: random purchases and refunds at three partners, against a model ---------


@dataclass
class ModelLot:
    seq: int  # creation order: the burn order (same expiry day, same activation time)
    funder: int
    burn_at: int | None
    remaining: Decimal


@dataclass
class ModelReceipt:
    rid: str
    till: int  # index of the partner
    own: list[ModelLot]
    burned: list[tuple[ModelLot, Decimal]]
    earned: Decimal
    refunded: bool = False


@dataclass
class Model:
    """What the ledger should hold, computed from the program's rules by hand: 5 % of what
    is paid (floor to a point), +10 at A restricted to A (A's), +3 at B (the program's),
    +7 at C burnable anywhere (C's); burns take eligible lots oldest first; a refund
    gives burned points back and takes earned points from the receipt's own lots first."""

    lots: list[ModelLot] = field(default_factory=list)
    receipts: list[ModelReceipt] = field(default_factory=list)

    def spendable(self, pid: int) -> Decimal:
        return sum((x.remaining for x in self.lots if x.burn_at in (None, pid)), Decimal("0.00"))

    def by_funder(self) -> dict[int | None, Decimal]:
        out: dict[int | None, Decimal] = defaultdict(lambda: Decimal("0.00"))
        for x in self.lots:
            out[x.funder] += x.remaining
        return {k: v for k, v in out.items() if v}


def earned_parts(
    idx: int, pids: list[int], paid: Decimal
) -> list[tuple[int | None, int | None, Decimal]]:
    base = (paid * D("0.05")).quantize(D(1), rounding=ROUND_FLOOR)
    me = pids[idx]
    parts: list[tuple[int | None, int | None, Decimal]] = [(me, None, base)]
    if idx == 0:
        parts.append((me, me, D(10)))
    elif idx == 1:
        parts.append((None, None, D(3)))
    else:
        parts[0] = (me, None, base + 7)  # C's promotion and base points share a lot
    return [p for p in parts if p[2] > 0]


OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("buy"),
            st.integers(0, 2),
            st.integers(1, 20).map(lambda n: D(n * 100)),
            st.sampled_from([D(0), D("0.3"), D(1)]),
        ),
        st.tuples(st.just("refund"), st.integers(0, 7), st.just(D(0)), st.just(D(0))),
    ),
    min_size=1,
    max_size=8,
)


async def funded_in_db(shop: Shop, member: Member) -> tuple[dict[Any, Decimal], dict[Any, Decimal]]:
    """Per funder: the sum of the entries it funded, and the remainder of its lots."""
    le, lt = t.ledger_entries, t.lots
    async with shop.rt.engine.connect() as conn:
        ent = (
            await conn.execute(
                select(le.c.funding_partner_id, func.sum(le.c.amount))
                .where(le.c.account_id == member.account_id)
                .group_by(le.c.funding_partner_id)
            )
        ).all()
        lots = (
            await conn.execute(
                select(lt.c.funding_partner_id, func.sum(lt.c.remaining))
                .where(lt.c.account_id == member.account_id)
                .group_by(lt.c.funding_partner_id)
            )
        ).all()
    return (
        {k: D(v) for k, v in ent if v and D(v) != 0},
        {k: D(v) for k, v in lots if v and D(v) != 0},
    )


async def run_sequence(tills: list[Shop], ops: list[tuple[str, int, Decimal, Decimal]]) -> None:
    a = tills[0]
    pids = [x.partner_id for x in tills]
    anna = await a.customer()
    model = Model()
    for n, (op, i, price, share) in enumerate(ops):
        if op == "buy":
            till = tills[i]
            redeem = min(model.spendable(pids[i]), price) * share
            redeem = redeem.quantize(D(1), rounding=ROUND_FLOOR)
            extra = {"redeem_points": str(redeem)} if redeem else {}
            rid = f"a{anna.account_id}r{n}"
            r = await till.post(
                "/purchases", receipt(rid, anna.card, ("x", 1, str(price)), **extra)
            )
            assert r.status_code == 200, r.text
            burned: list[tuple[ModelLot, Decimal]] = []
            left = redeem
            for lot in sorted(model.lots, key=lambda x: x.seq):
                if left <= 0:
                    break
                if lot.burn_at in (None, pids[i]) and lot.remaining > 0:
                    part = min(lot.remaining, left)
                    lot.remaining -= part
                    left -= part
                    burned.append((lot, part))
            own = []
            for funder, burn_at, amount in earned_parts(i, pids, price - redeem):
                lot = ModelLot(len(model.lots), funder, burn_at, amount)
                model.lots.append(lot)
                own.append(lot)
            earned = sum((x.remaining for x in own), D(0))
            model.receipts.append(ModelReceipt(rid, i, own, burned, earned))
            assert D(r.json()["points_earned"]) == earned
        else:
            open_ = [x for x in model.receipts if not x.refunded]
            if not open_:
                continue
            rec = open_[i % len(open_)]
            r = await tills[rec.till].post(f"/purchases/{rec.rid}/refunds", {"refund_id": "f"})
            assert r.status_code == 200, r.text
            rec.refunded = True
            owed = rec.earned
            # Take back from the lots as they were before the give-back: own lots first.
            snapshot = [x for x in model.lots if x.remaining > 0]
            order = sorted(snapshot, key=lambda x: (x not in rec.own, x.seq))
            takes = []
            left = owed
            for lot in order:
                if left <= 0:
                    break
                part = min(lot.remaining, left)
                takes.append((lot, part))
                left -= part
            for lot, part in rec.burned:
                lot.remaining += part
            for lot, part in takes:
                lot.remaining -= part
            assert D(r.json()["points_uncollected"]) == left
            assert D(r.json()["points_taken_back"]) == owed - left
        for j, till in enumerate(tills):
            assert D(await available(till, anna)) == model.spendable(pids[j]), (j, ops[: n + 1])
        ent, lots = await funded_in_db(a, anna)
        assert ent == lots == model.by_funder(), ops[: n + 1]
    assert await discrepancies(a) == []


async def test_per_funder_conservation_over_random_sequences(make_shop: MakeShop) -> None:
    """For every funder: the entries it funded add up to what its lots still hold (issued
    - burned - expired +- refunds), equal to the model's; every till sees as spendable
    exactly the model's lots burnable there; ``ledger verify`` finds nothing.

    Hypothesis draws the sequences (derandomized: the same ones every run); each runs
    against the database for a new member.  The services are async, so the sequences
    are drawn first and run after (no shrinking: a failure names its whole sequence).
    """
    tills = await coalition(make_shop, [A_BONUS, B_PROGRAM, C_BONUS])
    drawn: list[list[tuple[str, int, Decimal, Decimal]]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(OPS)
    def draw(ops: list[tuple[str, int, Decimal, Decimal]]) -> None:
        drawn.append(ops)

    draw()
    for ops in drawn:
        await run_sequence(tills, ops)


EXAMPLES = 12


async def test_a_receipt_making_two_lots_costs_no_more_round_trips(
    make_shop: MakeShop, rt: Any
) -> None:
    """Calculate and confirm with points burned, at C (one lot: base and C's promotion
    share it) and at A (base + A's restricted lot), for a member who already holds a
    restricted lot: PostgreSQL runs the same statements (the confirm's writes are one
    statement whatever the number of lots); SQLite, in-process, one insert per lot."""
    from tests.api.test_statement_count import counting, data_statements

    a, _, c = await coalition(make_shop, [A_BONUS, C_BONUS])
    anna = await a.customer(points=1000)
    await a.post("/purchases", receipt("warm", anna.card, ("x", 1, "100.00")))  # A's lot

    with counting(rt):  # warm the terminal and program caches of both tills
        for till in (a, c):
            await till.get("/customers/lookup", params={"identifier": anna.card})
    seen = {}
    for till, rid in ((c, "at-c"), (a, "at-a")):
        with counting(rt) as calc:
            r = await till.post(
                "/purchases/calculate",
                receipt(rid, anna.card, ("x", 1, "1000.00"), redeem_points="100"),
            )
        with counting(rt) as conf:
            k = await till.post(f"/purchases/{rid}/confirm")
        assert r.status_code == 200 and k.status_code == 200, (r.text, k.text)
        seen[rid] = (data_statements(calc), data_statements(conf))

    lt = t.lots
    made = {}
    for till, rid in ((c, "at-c"), (a, "at-a")):
        pk = await receipt_pk(till, rid)
        made[rid] = await count_rows(till, lt, lt.c.receipt_pk == pk)
    assert made == {"at-c": 1, "at-a": 2}
    assert seen["at-a"][0] == seen["at-c"][0]
    if rt.sqlite:
        extra = list(seen["at-a"][1])
        extra.remove("INSERT")
        assert extra == seen["at-c"][1]
    else:
        assert seen["at-a"][1] == seen["at-c"][1]
        # read (receipt, account, lots, hold), then the guarded write (ADR 0037)
        assert seen["at-a"][1] == ["WITH", "WITH"]


async def test_ledger_verify_names_an_entry_whose_funder_is_not_its_lots(
    make_shop: MakeShop,
) -> None:
    a, b, _ = await coalition(make_shop, [])
    anna = await a.customer()
    await a.post("/purchases", receipt("r1", anna.card, ("x", 1, "1000.00")))
    lt, le = t.lots, t.ledger_entries
    async with a.rt.engine.begin() as conn:
        lot_id = (
            await conn.execute(select(lt.c.id).where(lt.c.account_id == anna.account_id))
        ).scalar_one()
        bad = await insert_id(  # zero points: only the funder is wrong
            conn,
            le,
            {
                "program_id": a.program_id,
                "account_id": anna.account_id,
                "kind": "adjust",
                "amount": D(0),
                "held_delta": D(0),
                "lot_id": lot_id,
                "funding_partner_id": b.partner_id,
                "created_at": a.rt.now(),
            },
        )

    found = await discrepancies(a)

    assert [(d.what, d.cached, d.recomputed) for d in found] == [
        (f"entry {bad} funder is not its lot {lot_id}'s", D(b.partner_id), D(a.partner_id))
    ]


async def test_the_admin_api_shows_each_lots_funder_and_restriction(make_shop: MakeShop) -> None:
    from tests.api.test_admin_customers import API, token

    a, _, _ = await coalition(make_shop, [A_BONUS])
    anna = await a.customer(points=5)  # the program's
    await a.post("/purchases", receipt("r1", anna.card, ("x", 1, "1000.00")))  # 50 + 10 (A)
    h = await token(a.rt, a)

    got = await a.client.get(f"{API}/programs/{a.code}/customers/{anna.customer_id}", headers=h)

    assert got.status_code == 200, got.text
    lots = sorted((x["remaining"], x["funded_by"], x["burn_at"]) for x in got.json()["lots"])
    assert lots == [("10.00", "main", "main"), ("5.00", None, None), ("50.00", "main", None)]
