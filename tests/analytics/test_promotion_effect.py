"""The promotion-effect report on scenarios whose effect is known by construction: the
receipts go through the POS API (so the engine decides who gets the promotion and writes
what it gave), then the report must find the effect that was put in.

The spends are laid out so that both groups have the same spread of base spends: within
each group, the member of rank r spends 100 + 10 x (r mod 10) roubles, and every tenth
(r mod 10 == 9) buys nothing.  Then the difference of the groups' means is the effect put
in, give or take the incomplete last cycle of ten (at most 4.5 roubles)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from kopilka.analytics import promotions as report
from kopilka.domain.holdout import holdout_cut, is_held_out
from kopilka.services import programs
from kopilka.services.runtime import Runtime
from tests.conftest import Clock, Member, Shop, receipt

D = Decimal
MSK = "+03:00"
IN_OCTOBER = f"2026-10-15T12:00:00{MSK}"
IN_SEPTEMBER = f"2026-09-15T12:00:00{MSK}"


def promotion(pid: str, *, holdout: str = "0", sku: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "id": pid,
        "name": f"Promotion {pid}",
        "starts_at": f"2026-10-01T00:00:00{MSK}",
        "ends_at": f"2026-11-01T00:00:00{MSK}",
        "effects": [{"kind": "fixed_points", "points": "10"}],
        "holdout_percent": holdout,
    }
    if sku is not None:
        p["lines"] = {"sku": [sku]}
    return p


async def apply(rt: Runtime, shop: Shop, *promos: dict[str, Any]) -> None:
    doc = programs.check_document(
        {"code": shop.code, "name": "Effect test", "type": "bonus", "promotions": list(promos)}
    )
    await programs.do_apply(rt, doc, author="test")


async def members(shop: Shop, clock: Clock, n: int) -> list[Member]:
    clock.set(datetime(2026, 8, 1, tzinfo=UTC))  # registered long before the promotion
    out = [await shop.customer() for _ in range(n)]
    clock.set(datetime(2026, 11, 20, tzinfo=UTC))  # now: after every receipt below
    return out


async def buy(shop: Shop, m: Member, sku: str, price: Decimal, at: str, tag: str) -> None:
    rid = f"{tag}-{m.customer_id}"
    r = await shop.post("/purchases", receipt(rid, m.card, (sku, 1, str(price)), occurred_at=at))
    assert r.status_code == 200, r.text


def base_spend(rank: int) -> Decimal | None:
    return None if rank % 10 == 9 else D(100 + 10 * (rank % 10))


async def holdout_scenario(
    rt: Runtime, shop: Shop, clock: Clock, *, lift: Decimal
) -> dict[str, Any]:
    """200 members, half held out; treatment members spend ``lift`` more."""
    await apply(rt, shop, promotion("autumn", holdout="50"))
    people = await members(shop, clock, 200)
    cut = holdout_cut(D(50))
    ranks = {True: 0, False: 0}
    expected: dict[str, Any] = {"treatment": 0, "control": 0, "buyers": 0, "sales": D(0)}
    spent = {True: D(0), False: D(0)}
    for m in people:
        held = is_held_out(shop.code, "autumn", m.customer_id, cut)
        rank = ranks[held]
        ranks[held] += 1
        expected["control" if held else "treatment"] += 1
        spend = base_spend(rank)
        if spend is None:
            continue
        if not held:
            spend += lift
            expected["buyers"] += 1
            expected["sales"] += spend
        spent[held] += spend
        await buy(shop, m, "A", spend, IN_OCTOBER, "oct")
    # the difference of the groups' mean spends, as put in
    expected["difference"] = float(
        spent[False] / expected["treatment"] - spent[True] / expected["control"]
    )
    return expected


async def test_a_holdout_finds_the_lift_put_in_and_its_cost(
    rt: Runtime, make_shop: Any, clock: Clock
) -> None:
    shop = await make_shop()
    expected = await holdout_scenario(rt, shop, clock, lift=D(50))

    rep = await report.promotion_effects(
        rt,
        program_id=shop.program_id,
        day_from=date(2026, 10, 1),
        day_to=date(2026, 10, 31),
        margin=D("0.25"),
    )

    [row] = rep.rows
    assert row.promotion_id == "autumn"
    # what the treatment group got: 10 points on each of its receipts, a point = 1 rouble
    assert row.participants == expected["buyers"]
    assert row.receipts == expected["buyers"]
    assert row.sales == expected["sales"]
    assert row.discount == D("0.00")
    assert row.points == D(10) * expected["buyers"]
    assert row.cost == D(10) * expected["buyers"]
    e = row.effect
    assert e is not None and e.method == report.HOLDOUT
    assert (e.sales.n_a, e.sales.n_b) == (expected["treatment"], expected["control"])
    assert 70 < expected["treatment"] < 130  # half of 200, by the hash (sd 7)
    assert e.sales.estimate == pytest.approx(expected["difference"])
    # nine in ten treatment members bought 50 more: the true effect per member is 45
    assert e.sales.contains(45.0) and not e.sales.contains(0.0)
    # everyone buys with the same probability in both groups
    assert e.rate is not None and e.rate.contains(0.0)
    # incremental revenue = effect per member x treatment members; ROI at 25 % margin
    inc = D(repr(e.sales.estimate)) * expected["treatment"]
    assert abs(e.incremental - inc) <= D("0.01")
    assert e.roi == pytest.approx(float((e.incremental * D("0.25") - row.cost) / row.cost))


async def test_a_holdout_without_lift_gives_an_interval_around_zero(
    rt: Runtime, make_shop: Any, clock: Clock
) -> None:
    shop = await make_shop()
    expected = await holdout_scenario(rt, shop, clock, lift=D(0))

    rep = await report.promotion_effects(
        rt, program_id=shop.program_id, day_from=date(2026, 10, 1), day_to=date(2026, 10, 31)
    )

    e = rep.rows[0].effect
    assert e is not None and e.method == report.HOLDOUT
    assert e.sales.estimate == pytest.approx(expected["difference"])
    assert abs(e.sales.estimate) <= 9  # only the incomplete cycles of ten differ
    assert e.sales.contains(0.0)
    assert e.roi == pytest.approx(float(e.incremental / rep.rows[0].cost))  # no margin


SWING = (-20, -10, 0, 10, 20)


async def pre_period_scenario(rt: Runtime, shop: Shop, clock: Clock) -> None:
    """40 members: the first 20 buy the promoted SKU "P" in October (10 points each),
    spending 50 more than in September give or take a swing; the other 20 change by
    the same swings only.  The true effect is +50 per participant, 1000 in all, for a
    cost of 200 points (= 200 roubles)."""
    await apply(rt, shop, promotion("promo-sku", sku="P"))
    people = await members(shop, clock, 40)
    for i, m in enumerate(people):
        before = D(200 + 10 * i)
        after = before + SWING[i % 5] + (50 if i < 20 else 0)
        await buy(shop, m, "A", before, IN_SEPTEMBER, "sep")
        await buy(shop, m, "P" if i < 20 else "A", after, IN_OCTOBER, "oct")


async def test_without_a_holdout_the_pre_period_difference_in_differences_finds_the_lift(
    rt: Runtime, make_shop: Any, clock: Clock
) -> None:
    # 20 participants buy the promoted SKU in October, spending 50 more than in
    # September give or take a swing; 20 others change by the same swings only.
    shop = await make_shop()
    await pre_period_scenario(rt, shop, clock)

    rep = await report.promotion_effects(
        rt,
        program_id=shop.program_id,
        day_from=date(2026, 10, 1),
        day_to=date(2026, 10, 31),
        margin=D("0.25"),
    )

    [row] = rep.rows
    assert (row.participants, row.receipts, row.points) == (20, 20, D(200))
    e = row.effect
    assert e is not None and e.method == report.PRE_PERIOD
    assert (e.sales.n_a, e.sales.n_b) == (20, 20)
    # each group's mean change: +50 and 0 exactly (four whole cycles of the swings)
    assert e.sales.estimate == pytest.approx(50.0)
    # Welch: both variances 4 x 1000 / 19 = 210.53 (the swings' squares), equal groups of
    # 20 -> df = 38; se = sqrt(210.53 / 20 x 2) = 4.588; t(0.975, 38) = 2.024 (t table)
    # -> 50 +- 9.29
    assert e.sales.low == pytest.approx(40.71, abs=0.01)
    assert e.sales.high == pytest.approx(59.29, abs=0.01)
    assert e.incremental == D("1000.00")  # 50 x 20 participants
    assert e.roi == pytest.approx(0.25)  # (1000 x 0.25 - 200) / 200


async def test_a_promotion_nobody_got_has_figures_of_zero_and_no_effect(
    rt: Runtime, make_shop: Any, clock: Clock
) -> None:
    shop = await make_shop()
    await apply(rt, shop, promotion("unused", sku="NOPE"), promotion("held", holdout="10"))
    await members(shop, clock, 3)

    rep = await report.promotion_effects(
        rt, program_id=shop.program_id, day_from=date(2026, 10, 1), day_to=date(2026, 10, 31)
    )

    # a promotion with a holdout is listed even when nobody bought: its groups exist
    assert [r.promotion_id for r in rep.rows] == ["held"]
    assert rep.rows[0].participants == 0


async def test_the_daily_chart_shows_each_groups_sales_per_member_on_its_local_day(
    rt: Runtime, make_shop: Any, clock: Clock
) -> None:
    shop = await make_shop()
    await pre_period_scenario(rt, shop, clock)

    d = await report.promotion_daily(
        rt,
        program_id=shop.program_id,
        promotion_id="promo-sku",
        day_from=date(2026, 10, 1),
        day_to=date(2026, 10, 31),
    )

    assert d is not None and d.method == report.PRE_PERIOD
    # the pre-period (31 days from 31 August) and October, day by day
    assert (d.days[0], d.days[-1], len(d.days)) == (date(2026, 8, 31), date(2026, 10, 31), 62)
    assert d.period_start == date(2026, 10, 1)
    by_day = dict(zip(d.days, zip(d.a, d.b, strict=True), strict=True))
    # participants (i < 20): September sum(200 + 10 i) = 5900, October 6900; per 20
    # others (i >= 20): 4000 + 10 x 590 = 9900 in both months (the swings sum to 0); per 20
    assert by_day[date(2026, 9, 15)] == (D("295.00"), D("495.00"))
    assert by_day[date(2026, 10, 15)] == (D("345.00"), D("495.00"))
    assert sum(d.a) + sum(d.b) == D("295.00") + D("495.00") + D("345.00") + D("495.00")


def test_a_receipt_counts_on_its_day_in_the_programs_time_zone() -> None:
    from zoneinfo import ZoneInfo

    msk = ZoneInfo("Europe/Moscow")
    span = report.Window(
        datetime(2026, 9, 30, 21, tzinfo=UTC), datetime(2026, 10, 2, 21, tzinfo=UTC)
    )
    rows = [
        (1, datetime(2026, 10, 1, 22, 30, tzinfo=UTC), D("100"), D("0")),  # 2 Oct, 01:30 MSK
        (2, datetime(2026, 10, 1, 20, 30, tzinfo=UTC), D("90"), D("10")),  # 1 Oct, 23:30 MSK
    ]

    d = report._daily(report.HOLDOUT, rows, [1], [2], span, msk, date(2026, 10, 1))

    assert d.days == [date(2026, 10, 1), date(2026, 10, 2)]
    assert (d.a, d.b) == ([D("0.00"), D("100.00")], [D("80.00"), D("0.00")])
