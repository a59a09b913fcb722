"""The summary, stores and cohorts reports on a small shop whose figures are worked out by
hand, on both databases; and the summary tables kept incrementally equal a rebuild."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, update

from kopilka.analytics import cohorts, facts, stores, summary
from kopilka.analytics.summary import Filters
from kopilka.domain.summary import Period
from kopilka.services.audit import Actor
from kopilka.services.runtime import Runtime, hash_key
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from tests.conftest import Clock, Shop, new_shop, receipt

D = Decimal
MSK_NOON = timedelta(hours=9)  # 12:00 in Moscow


def at(day: str, hours: float = 0) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC) + MSK_NOON + timedelta(hours=hours)


async def second_store(shop: Shop, *, city: str, partner: bool = False) -> tuple[Shop, int, int]:
    """Another store (and till) of the shop's program, in ``city``; under a partner of its
    own when ``partner``.  Returns the till as a Shop, the store id and its partner id."""
    rt = shop.rt
    tag = secrets.token_hex(3)
    async with rt.engine.begin() as conn:
        partner_id = shop.partner_id
        if partner:
            partner_id = await insert_id(
                conn, t.partners, {"program_id": shop.program_id, "code": f"pa{tag}", "name": "P"}
            )
        store = await insert_id(
            conn,
            t.stores,
            {"program_id": shop.program_id, "partner_id": partner_id, "code": f"S2{tag}",
             "name": "Second", "city": city},
        )  # fmt: skip
        key = f"kp_test_{secrets.token_hex(12)}"
        await conn.execute(
            insert(t.terminals),
            {"program_id": shop.program_id, "store_id": store, "name": "till 2",
             "key_hash": hash_key(key), "key_prefix": key[:10], "created_at": rt.now()},
        )  # fmt: skip
    till = Shop(rt, shop.client, shop.program_id, partner_id, f"S2{tag}", key, shop.code)
    return till, store, partner_id


async def buy(shop: Shop, rid: str, card: str | None, *lines: Any, **kw: Any) -> None:
    r = await shop.post("/purchases", receipt(rid, card, *lines, **kw))
    assert r.status_code == 200, r.text


async def refund(shop: Shop, rid: str) -> None:
    r = await shop.post(f"/purchases/{rid}/refunds", {"refund_id": f"f-{rid}"})
    assert r.status_code == 200, r.text


async def hand_shop(make_shop: Any, clock: Clock) -> tuple[Shop, Any, Any]:
    """The shop of the hand-worked figures (earn 5 %, whole points, floor):

    03-08  A buys 1 x 400.00                  (earns 20)      previous period
    03-10  A buys 2 x 500.00 at cashier c1    (earns 50)
    03-10  a guest buys 1 x 300.00 + 1.5 x 100.00 (no points)
    03-11  B buys 1 x 250.00                  (earns 12: 12.5 floored)
    03-12  A's receipt of 03-10 is refunded   (1000.00 back, 50 points taken back)
    """
    clock.set(at("2026-03-08", -1))
    shop = await make_shop(earn_percent="5", points_step="1")
    a = await shop.customer()
    b = await shop.customer()
    clock.set(at("2026-03-08"))
    await buy(shop, "p1", a.card, ("x", 1, "400.00"))
    clock.set(at("2026-03-10"))
    await buy(shop, "r1", a.card, ("x", 2, "500.00"), cashier_id="c1")
    await buy(shop, "r2", None, ("y", 1, "300.00"), ("z", "1.5", "100.00"))
    clock.set(at("2026-03-11"))
    await buy(shop, "r3", b.card, ("x", 1, "250.00"))
    clock.set(at("2026-03-12"))
    await refund(shop, "r1")
    clock.set(at("2026-03-13"))
    await facts.rebuild(shop.rt, program_ids=[shop.program_id])
    return shop, a, b


PERIOD = Period(date(2026, 3, 10), date(2026, 3, 12))


async def test_kpis_of_a_small_shop_worked_by_hand(make_shop: Any, clock: Clock) -> None:
    shop, _, _ = await hand_shop(make_shop, clock)

    rep = await summary.summary_report(shop.rt, program_id=shop.program_id, period=PERIOD)
    k = {name: c.value for name, c in rep.kpis.items()}

    assert k["receipts"] == 3
    assert k["sales"] == D("700.00")  # 1000 + 450 + 250 - 1000 refunded
    assert k["member_sales"] == D("250.00")  # 1000 + 250 - 1000
    assert k["members_share"] == D("35.7")  # 250 / 700
    assert k["average_receipt"] == D("233.33")  # 700 / 3
    assert k["items_per_receipt"] == D("1.33")  # 4 lines / 3
    assert k["units_per_receipt"] == D("1.83")  # (2 + 2.5 + 1) / 3
    assert k["members"] == 2
    assert k["members_total"] == 2
    assert (k["cards_issued"], k["registered"], k["phones_confirmed"]) == (0, 0, 0)
    assert (k["refunds"], k["refund_amount"]) == (1, D("1000.00"))
    assert k["points_earned"] == D("12")  # 50 + 12 - 50 taken back
    assert k["points_burned"] == D("0")
    assert k["liability"] == D("32.00")  # 20 + 50 + 12 - 50, a point is worth 1 rouble


async def test_previous_period_of_the_same_length_is_compared(make_shop: Any, clock: Clock) -> None:
    shop, _, _ = await hand_shop(make_shop, clock)

    rep = await summary.summary_report(shop.rt, program_id=shop.program_id, period=PERIOD)

    assert rep.previous == Period(date(2026, 3, 7), date(2026, 3, 9))
    sales = rep.kpis["sales"]
    assert (sales.previous, sales.change, sales.change_pct) == (D("400.00"), D("300.00"), D("75.0"))
    receipts = rep.kpis["receipts"]
    assert (receipts.previous, receipts.change, receipts.change_pct) == (1, 2, D("200.0"))
    cards = rep.kpis["cards_issued"]
    assert (cards.value, cards.previous, cards.change, cards.change_pct) == (0, 2, -2, D("-100.0"))
    refunds = rep.kpis["refunds"]
    assert (refunds.previous, refunds.change_pct) == (0, None)  # nothing to compare with
    assert rep.kpis["liability"].previous == D("20.00")


async def test_series_has_every_day_and_the_refund_on_its_own_day(
    make_shop: Any, clock: Clock
) -> None:
    shop, _, _ = await hand_shop(make_shop, clock)

    rep = await summary.summary_report(shop.rt, program_id=shop.program_id, period=PERIOD)

    got = [(r["bucket"], r["receipts"], r["sales"], r["points_earned"]) for r in rep.series]
    assert got == [
        (date(2026, 3, 10), 2, D("1450.00"), D("50")),
        (date(2026, 3, 11), 1, D("250.00"), D("12")),
        (date(2026, 3, 12), 0, D("-1000.00"), D("-50")),
    ]


async def test_the_tables_and_the_receipts_give_the_same_report(
    make_shop: Any, clock: Clock
) -> None:
    shop, _, _ = await hand_shop(make_shop, clock)

    kw: dict[str, Any] = {"program_id": shop.program_id, "period": PERIOD, "granularity": "week"}
    fast = await summary.summary_report(shop.rt, **kw)
    slow = await summary.summary_report(shop.rt, use_tables=False, **kw)

    assert fast.kpis == slow.kpis and fast.series == slow.series
    assert (fast.source, slow.source) == ("summary tables", "receipts")


async def test_store_city_and_customer_group_filters(make_shop: Any, clock: Clock) -> None:
    shop, a, _ = await hand_shop(make_shop, clock)
    till2, store2, _ = await second_store(shop, city="Казань")
    clock.set(at("2026-03-11", 1))
    await buy(till2, "k1", None, ("x", 1, "99.90"))
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers).where(t.customers.c.id == a.customer_id).values(tags='["staff"]')
        )
    await facts.rebuild(shop.rt, program_ids=[shop.program_id])
    kw: dict[str, Any] = {"program_id": shop.program_id, "period": PERIOD}

    kazan = await summary.summary_report(shop.rt, filters=Filters(city="Казань"), **kw)
    by_store = await summary.summary_report(shop.rt, filters=Filters(stores=(store2,)), **kw)
    staff = await summary.summary_report(shop.rt, filters=Filters(tag="staff"), **kw)
    everyone = await summary.summary_report(shop.rt, **kw)

    assert kazan.kpis == by_store.kpis
    assert (kazan.kpis["receipts"].value, kazan.kpis["sales"].value) == (1, D("99.90"))
    assert kazan.kpis["liability"].value is None  # the balance belongs to no store
    assert everyone.kpis["sales"].value == D("799.90")
    # A's receipt of 03-10 and its refund: nothing left, the points taken back
    assert staff.source == "receipts"
    assert (staff.kpis["receipts"].value, staff.kpis["sales"].value) == (1, D("0.00"))
    assert (staff.kpis["refunds"].value, staff.kpis["points_earned"].value) == (1, D("0"))
    assert staff.kpis["liability"].value == D("20.00")  # A's 20 from 03-08


async def test_a_partner_sees_only_its_stores(make_shop: Any, clock: Clock) -> None:
    shop, _, _ = await hand_shop(make_shop, clock)
    till2, _, partner2 = await second_store(shop, city="Казань", partner=True)
    clock.set(at("2026-03-11", 1))
    await buy(till2, "k1", None, ("x", 2, "10.00"), cashier_id="k")
    await facts.rebuild(shop.rt, program_ids=[shop.program_id])
    partner = Actor("user", 7, "partner", role="partner", program_id=shop.program_id,
                    partner_id=partner2)  # fmt: skip

    rep = await summary.summary_report(
        shop.rt, program_id=shop.program_id, period=PERIOD, actor=partner
    )
    rows = await stores.store_rows(
        shop.rt, program_id=shop.program_id, period=PERIOD, actor=partner
    )

    assert (rep.kpis["receipts"].value, rep.kpis["sales"].value) == (1, D("20.00"))
    assert [(r.code, r.cashier, r.everyone.receipts) for r in rows] == [
        (till2.store_code, None, 1),
        (till2.store_code, "k", 1),
    ]


async def test_stores_and_cashiers_rows(make_shop: Any, clock: Clock) -> None:
    shop, _, _ = await hand_shop(make_shop, clock)

    rows = await stores.store_rows(shop.rt, program_id=shop.program_id, period=PERIOD)
    got = [
        {k: v for k, v in r.values().items() if k not in ("store", "city", "store_code")}
        for r in rows
    ]

    assert got == [
        {"cashier": "", "receipts": 3, "sales": D("700.00"), "member_sales": D("250.00"),
         "members_share": D("35.7"), "points_earned": D("62.00"),
         "points_per_receipt": D("20.67"), "refunds": 1, "refund_amount": D("1000.00")},
        {"cashier": "—", "receipts": 2, "sales": D("700.00"), "member_sales": D("250.00"),
         "members_share": D("35.7"), "points_earned": D("12.00"),
         "points_per_receipt": D("6.00"), "refunds": 0, "refund_amount": D("0.00")},
        {"cashier": "c1", "receipts": 1, "sales": D("0.00"), "member_sales": D("0.00"),
         "members_share": None, "points_earned": D("50.00"),
         "points_per_receipt": D("50.00"), "refunds": 1, "refund_amount": D("1000.00")},
    ]  # fmt: skip


async def test_cohorts_by_month_of_first_purchase(make_shop: Any, clock: Clock) -> None:
    clock.set(datetime(2026, 1, 5, 9, tzinfo=UTC))
    shop = await make_shop()
    a, b, c = await shop.customer(), await shop.customer(), await shop.customer()
    visits = [(a, "2026-01-05"), (b, "2026-01-20"), (a, "2026-02-03"), (a, "2026-04-10"),
              (c, "2026-02-14"), (b, "2026-03-01"), (c, "2026-03-02")]  # fmt: skip
    for n, (who, day) in enumerate(visits):
        clock.set(at(day))
        await buy(shop, f"v{n}", who.card, ("x", 1, "10.00"))
    await facts.rebuild(shop.rt, program_ids=[shop.program_id])

    rows = await cohorts.cohort_rows(
        shop.rt, program_id=shop.program_id, period=Period(date(2026, 1, 1), date(2026, 2, 28)),
        as_of=date(2026, 4, 15),
    )  # fmt: skip

    assert [(r.month, r.size, r.active) for r in rows] == [
        (date(2026, 1, 1), 2, (2, 1, 1, 1)),  # a: Jan Feb Apr, b: Jan Mar
        (date(2026, 2, 1), 1, (1, 1, 0)),  # c: Feb Mar
    ]
    assert [rows[0].retention(k) for k in range(4)] == [D("100.0"), D("50.0"), D("50.0"), D("50.0")]


# --- the incremental maintenance equals a rebuild, whatever the order of events ----------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(0, 2), st.integers(1, 500_000), st.booleans()),
        st.tuples(st.just("confirm"), st.integers(0, 5)),
        st.tuples(st.just("refund"), st.integers(0, 5)),
        st.tuples(st.just("wait"), st.integers(1, 40)),
        st.just(("refresh",)),
    ),
    min_size=1,
    max_size=14,
)


async def _snapshot(rt: Runtime, program_id: int) -> dict[str, list[Any]]:
    out = {}
    async with rt.engine.connect() as conn:
        for table in (t.sales_daily, t.points_daily, t.customer_days):
            q = select(table).where(table.c.program_id == program_id)
            out[table.name] = sorted(tuple(x) for x in await conn.execute(q))
    return out


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(ops=OPS)
async def test_incremental_maintenance_equals_a_rebuild(
    rt: Runtime, client: Any, clock: Clock, ops: list[tuple[Any, ...]]
) -> None:
    clock.set(datetime(2027, 6, 1, 20, tzinfo=UTC))  # late evening: days turn over often
    shop = await new_shop(rt, client)
    members = [None, (await shop.customer()).card, (await shop.customer()).card]
    await facts.set_watermark(rt, rt.now())
    pending: list[str] = []
    confirmed: list[str] = []
    for n, op in enumerate(ops):
        if op[0] == "buy":
            rid, body = f"h{n}", receipt(f"h{n}", members[op[1]], ("x", 1, str(D(op[2]) / 100)))
            r = await shop.post("/purchases" if op[3] else "/purchases/calculate", body)
            assert r.status_code == 200, r.text
            (confirmed if op[3] else pending).append(rid)
        elif op[0] == "confirm" and pending:
            rid = pending.pop(op[1] % len(pending))  # a late confirm: days after calculate
            assert (await shop.post(f"/purchases/{rid}/confirm")).status_code == 200
            confirmed.append(rid)
        elif op[0] == "refund" and confirmed:
            await refund(shop, confirmed.pop(op[1] % len(confirmed)))
        elif op[0] == "wait":
            clock.advance(hours=op[1])
        elif op[0] == "refresh":
            await facts.refresh(rt)
    await facts.refresh(rt)
    kept = await _snapshot(rt, shop.program_id)

    await facts.rebuild(rt, program_ids=[shop.program_id])

    assert kept == await _snapshot(rt, shop.program_id)
