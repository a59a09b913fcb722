"""The RFM report on both databases: a dozen customers computed by hand, the window's
edges in the program's time zone, refunds, non-members, merges, the naming rule, the
migration matrix, saving segments for campaigns and promotions, and the CLI."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select, update

from kopilka.analytics import rfm as report
from kopilka.domain import campaigns as dc
from kopilka.domain import rfm
from kopilka.services import audit, campaigns
from kopilka.services import rfm as service
from kopilka.services.errors import ServiceError
from kopilka.store import tables as t
from tests.api.test_promotions_at_till import publish
from tests.conftest import Member, Shop, receipt
from tests.inprocess import kopilka_sync

MSK = ZoneInfo("Europe/Moscow")
AS_OF = date(2026, 6, 30)
_n = itertools.count(1)


def local(day: str, hm: str = "12:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=MSK)


async def _till(shop: Shop) -> tuple[int, int]:
    async with shop.rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(t.terminals.c.store_id, t.terminals.c.id).where(
                    t.terminals.c.program_id == shop.program_id
                )
            )
        ).one()
    return int(row[0]), int(row[1])


async def buy(
    shop: Shop,
    who: Member | None,
    when: datetime,
    to_pay: str,
    *,
    state: str = "confirmed",
    refunds: tuple[tuple[str, datetime], ...] = (),
) -> int:
    """A receipt as `kopilka import receipts` or the till leaves it, with its refunds."""
    store_id, terminal_id = await _till(shop)
    n = next(_n)
    async with shop.rt.engine.begin() as conn:
        pk = (
            await conn.execute(
                insert(t.receipts).returning(t.receipts.c.id),
                {
                    "program_id": shop.program_id,
                    "partner_id": shop.partner_id,
                    "store_id": store_id,
                    "terminal_id": terminal_id,
                    "pos_receipt_id": f"r{n}",
                    "account_id": who.account_id if who else None,
                    "customer_id": who.customer_id if who else None,
                    "state": state,
                    "occurred_at": when,
                    "created_at": when,
                    "amount": D(to_pay),
                    "discount": D(0),
                    "points_redeemed": D(0),
                    "redeemed_value": D(0),
                    "to_pay": D(to_pay),
                    "points_earned": D(0),
                    "request_hash": "x",
                    "source": "import",
                },
            )
        ).scalar_one()
        for i, (amount, at) in enumerate(refunds):
            await conn.execute(
                insert(t.refunds),
                {
                    "program_id": shop.program_id,
                    "receipt_pk": pk,
                    "pos_refund_id": f"f{i}",
                    "terminal_id": terminal_id,
                    "request_hash": "x",
                    "response": b"{}",
                    "amount": D(amount),
                    "points_taken_back": D(0),
                    "points_returned": D(0),
                    "points_uncollected": D(0),
                    "created_at": at,
                },
            )
    return int(pk)


async def set_customer(shop: Shop, who: Member, **values: Any) -> None:
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers).where(t.customers.c.id == who.customer_id).values(**values)
        )


async def add_card(shop: Shop, who: Member, number: str, when: datetime) -> None:
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            insert(t.cards),
            {
                "program_id": shop.program_id,
                "account_id": who.account_id,
                "customer_id": who.customer_id,
                "number": number,
                "status": "active",
                "created_at": when,
            },
        )


async def cardless(shop: Shop) -> Member:
    async with shop.rt.engine.begin() as conn:
        cid = (
            await conn.execute(
                insert(t.customers).returning(t.customers.c.id),
                {"program_id": shop.program_id, "registered_at": shop.rt.now()},
            )
        ).scalar_one()
    return Member("", "", 0, int(cid))


async def dozen(shop: Shop, clock: Any) -> dict[str, Member]:
    """Twelve customers (A-L) and the purchases of the hand-computed example."""
    clock.set(local("2024-01-01", "09:00"))  # cards older than any purchase
    m = {k: await shop.customer() for k in "ABCDEFGHIJKL"}
    merged = await shop.customer()
    await set_customer(shop, m["A"], external_id="EXT-A")
    await set_customer(shop, merged, status="merged", merged_into_id=m["H"].customer_id)
    plan: dict[str, list[tuple[str, str]]] = {
        "A": [("2026-06-30", "1000.00"), ("2026-06-01", "500.00"), ("2026-05-01", "500.00")],
        "B": [("2026-06-29", "300.00")],
        "C": [("2026-03-10", "2500.00"), ("2025-12-01", "2500.00"), ("2025-09-01", "2500.00")],
        "D": [("2026-06-10", "150.50")],
        "E": [("2026-05-31", "800.00"), ("2026-04-01", "700.00")],
        "F": [("2026-04-01", "60.00"), ("2026-01-15", "40.00")],
        "H": [("2026-01-01", "200.00"), ("2025-10-01", "200.00"), ("2025-08-01", "200.00")],
        "I": [("2025-10-03", "1200.00")],
        "K": [("2025-09-05", "400.00"), ("2025-09-06", "400.00")],
        "L": [(f"2026-06-{d}", "1000.00") for d in (16, 17, 18, 19)] + [("2026-06-15", "3000.00")],
    }
    for key, buys in plan.items():
        for day, paid in buys:
            await buy(shop, m[key], local(day), paid)
    # C: 500.00 refunded before the as-of date counts; G: a refund after it does not.
    await buy(
        shop, m["C"], local("2026-06-20"), "2500.00", refunds=(("500.00", local("2026-06-25")),)
    )
    await buy(
        shop, m["G"], local("2026-03-02"), "5000.00", refunds=(("1000.00", local("2026-07-02")),)
    )
    # The window's edges, in Moscow time: 2025-07-01 00:05 is in (UTC: 2025-06-30 21:05),
    # 2025-06-30 23:30 is out (N = 365 days before), 2026-07-01 00:10 is after the as-of
    # date although its UTC date is still 2026-06-30.
    await buy(shop, m["J"], local("2025-07-01", "00:05"), "90.00")
    await buy(shop, m["J"], local("2025-06-30", "23:30"), "999.00")
    await buy(shop, m["A"], local("2026-07-01", "00:10"), "999.00")
    # Not purchases: a non-member's receipt, a calculated and a cancelled one.
    await buy(shop, None, local("2026-06-30"), "10000.00")
    await buy(shop, m["D"], local("2026-06-30"), "999.00", state="calculated")
    await buy(shop, m["D"], local("2026-06-30"), "999.00", state="cancelled")
    # The merged customer's purchase is H's: his last purchase moves to 2026-02-01.
    await buy(shop, merged, local("2026-02-01"), "100.00")
    return m


# (last_purchase, recency_days, frequency, monetary, r, f, m, segment) of A-L.
# Worked out by hand, n = 12, score = 1 + floor(5w/12) with w = customers strictly worse:
# recency 0 1 10 11 20 30 90 120 149 270 297 364 (A B C L D E F G H I K J): w = 11..0 ->
#   r = 5 5 4 4 3 3 3 2 2 1 1 1;
# frequency 1 x5 (B D G I J): w 0 -> 1; 2 x3 (E F K): w 5 -> 3; 3 (A): w 8 -> 4;
#   4 x2 (C H, H with the merged customer's receipt): w 9 -> 4; 5 (L): w 11 -> 5;
# monetary 90 100 150.50 300 700 800 1200 1500 2000 5000 7000 9500 (J F D B H K I E A G L C):
#   w = 0..11 -> m = 1 1 1 2 2 3 3 3 4 4 5 5 (C: 4 x 2500 - 500 refunded; G: the refund
#   came after the as-of date; H: 3 x 200 + 100 of the merged customer);
# segments on (r, f) by the default map (docs/analytics/rfm.md).
EXPECTED = {
    "A": ("2026-06-30", 0, 3, "2000.00", 5, 4, 4, "Champions"),
    "B": ("2026-06-29", 1, 1, "300.00", 5, 1, 2, "New customers"),
    "C": ("2026-06-20", 10, 4, "9500.00", 4, 4, 5, "Loyal"),
    "D": ("2026-06-10", 20, 1, "150.50", 3, 1, 1, "About to sleep"),
    "E": ("2026-05-31", 30, 2, "1500.00", 3, 3, 3, "Need attention"),
    "F": ("2026-04-01", 90, 2, "100.00", 3, 3, 1, "Need attention"),
    "G": ("2026-03-02", 120, 1, "5000.00", 2, 1, 4, "Hibernating"),
    "H": ("2026-02-01", 149, 4, "700.00", 2, 4, 2, "At risk"),
    "I": ("2025-10-03", 270, 1, "1200.00", 1, 1, 3, "Lost"),
    "J": ("2025-07-01", 364, 1, "90.00", 1, 1, 1, "Lost"),
    "K": ("2025-09-06", 297, 2, "800.00", 1, 3, 3, "At risk"),
    "L": ("2026-06-19", 11, 5, "7000.00", 4, 5, 5, "Loyal"),
}


def expected_rows(m: dict[str, Member]) -> list[tuple[Any, ...]]:
    name = {k: ("EXT-A" if k == "A" else v.card) for k, v in m.items()}
    rows = [
        (name[k], day, rec, freq, D(money), r, f, mm, seg)
        for k, (day, rec, freq, money, r, f, mm, seg) in EXPECTED.items()
    ]
    return sorted(rows, key=lambda row: str(row[0]))


async def test_a_dozen_customers_computed_by_hand(make_shop: Any, clock: Any) -> None:
    shop = await make_shop()
    m = await dozen(shop, clock)

    rep = await report.compute(shop.rt, shop.program_id, as_of=AS_OF)

    assert [report.row_values(r) for r in rep.rows] == expected_rows(m)
    sizes = {s.segment.code: (s.customers, s.revenue) for s in rep.totals}
    assert sizes["loyal"] == (2, D("16500.00"))
    assert sizes["lost"] == (2, D("1290.00"))
    assert sizes["potential_loyalist"] == (0, D("0.00"))
    assert rep.grid[5, 4] == 1 and rep.grid[1, 1] == 2 and sum(rep.grid.values()) == 12


async def test_a_short_window_keeps_only_its_days(make_shop: Any, clock: Any) -> None:
    shop = await make_shop()
    m = await dozen(shop, clock)

    rep = await report.compute(shop.rt, shop.program_id, as_of=AS_OF, window_days=11)

    # (2026-06-19, 2026-06-30]: A's 06-30, B's 06-29, C's 06-20; L's 06-19 is out.
    got = {r.customer: (r.frequency, r.monetary) for r in rep.rows}
    assert got == {
        "EXT-A": (1, D("1000.00")),
        m["B"].card: (1, D("300.00")),
        m["C"].card: (1, D("2000.00")),
    }


async def test_the_customer_is_named_by_external_id_then_active_card_then_id(
    make_shop: Any, clock: Any
) -> None:
    shop = await make_shop()
    clock.set(local("2026-01-01"))
    blocked, two_active, ext = await shop.customer(), await shop.customer(), await shop.customer()
    nobody = await cardless(shop)
    await set_customer(shop, ext, external_id="CRM-0042")
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.cards).where(t.cards.c.number == blocked.card).values(status="blocked")
        )
    await add_card(shop, blocked, "9990000000011", local("2026-02-01"))
    await add_card(shop, two_active, "1110000000011", local("2026-02-01"))  # newer
    for who in (blocked, two_active, ext, nobody):
        await buy(shop, who, local("2026-06-01"), "10.00")

    rep = await report.compute(shop.rt, shop.program_id, as_of=AS_OF)

    assert {r.customer_id: r.customer for r in rep.rows} == {
        blocked.customer_id: "9990000000011",  # the active card, not the older blocked one
        two_active.customer_id: two_active.card,  # the oldest active card
        ext.customer_id: "CRM-0042",
        nobody.customer_id: f"#{nobody.customer_id}",
    }


async def test_a_refund_through_the_till_lowers_monetary(make_shop: Any, clock: Any) -> None:
    shop = await make_shop()
    anna = await shop.customer()
    clock.set(local("2026-06-10"))
    body = receipt("t1", anna.card, ("milk", 2, "90.00"), ("bread", 1, "45.50"))
    assert (await shop.post("/purchases/calculate", body)).status_code == 200
    assert (await shop.post("/purchases/t1/confirm")).status_code == 200
    r = await shop.post(
        "/purchases/t1/refunds", {"refund_id": "R1", "lines": [{"index": 0, "quantity": 1}]}
    )
    assert r.status_code == 200, r.text

    rep = await report.compute(shop.rt, shop.program_id, as_of=AS_OF)

    (row,) = rep.rows
    assert (row.customer, row.frequency, row.monetary) == (anna.card, 1, D("135.50"))
    assert (row.last_purchase, row.recency_days) == (date(2026, 6, 10), 20)


async def test_the_migration_matrix_between_two_dates(make_shop: Any, clock: Any) -> None:
    shop = await make_shop()
    m = await dozen(shop, clock)

    mig = await report.migration(
        shop.rt, shop.program_id, a=date(2026, 6, 15), b=AS_OF, window_days=30
    )

    # A = 2026-06-15, 30 days (05-17..06-15): L 06-15, D 06-10, A 06-01, E 05-31, once each;
    #   recency 0, 5, 14, 15 -> w = 3, 2, 1, 0 of n = 4 -> r = 4, 3, 2, 1; f = 1 for all:
    #   L promising, D about to sleep, A hibernating, E lost.
    # B = 2026-06-30 (06-01..06-30): A 06-30 + 06-01, B 06-29, C 06-20, L 06-15..19, D 06-10;
    #   recency A 0, B 1, C 10, L 11, D 20 -> r = 5, 4, 3, 2, 1;
    #   frequency A 2, L 5, others 1 -> f: A 1 + floor(5*3/5) = 4, L 5, others 1:
    #   A champions, B promising, C about to sleep, L can't lose them, D lost.
    assert mig.cells == {
        ("hibernating", "champions"): 1,  # A
        ("lost", rfm.NONE): 1,  # E
        ("promising", "cant_lose"): 1,  # L
        ("about_to_sleep", "lost"): 1,  # D
        (rfm.NONE, "promising"): 1,  # B
        (rfm.NONE, "about_to_sleep"): 1,  # C
    }
    table = report.migration_table(mig)
    assert table.header[0] == "2026-06-15 \\ 2026-06-30"
    assert table.header[-1] == "no purchase"
    rows = [r async for r in table.rows]
    assert rows[0] == ("Champions", *([0] * 12))
    assert rows[-1][0] == "no purchase" and sum(rows[-1][1:]) == 2
    assert len(m) == 12


# --- saving segments: campaigns and promotions see them -----------------------------------------


async def segment_of(shop: Shop, who: Member) -> str | None:
    async with shop.rt.engine.connect() as conn:
        value = (
            await conn.execute(
                select(t.customers.c.rfm_segment).where(t.customers.c.id == who.customer_id)
            )
        ).scalar_one()
    return None if value is None else str(value)


async def test_saved_segments_reach_the_campaign_audience_and_promotions(
    make_shop: Any, clock: Any
) -> None:
    shop = await make_shop()
    m = await dozen(shop, clock)
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.program_id == shop.program_id)
            .values(consent_sms=True)
        )
    marketer = audit.Actor("user", 7, "Marketer Masha", role="marketer")

    saved = await service.do_save_segments(shop.rt, marketer, shop.program_id, as_of=AS_OF)

    assert (saved.customers, saved.changed) == (12, 12)
    assert saved.sizes == {
        "champions": 1,
        "new_customers": 1,
        "loyal": 2,
        "about_to_sleep": 1,
        "need_attention": 2,
        "hibernating": 1,
        "at_risk": 2,
        "lost": 2,
    }
    owner = audit.Actor("user", 1, "Owner", role="owner")

    async def audience(*codes: str) -> int:
        aud = dc.parse_audience({"rfm": ", ".join(codes)})
        return await campaigns.audience_count(shop.rt, owner, shop.program_id, aud, "sms")

    assert await audience("champions") == 1
    assert await audience("loyal", "lost") == 4
    assert await segment_of(shop, m["L"]) == "loyal"
    async with shop.rt.engine.connect() as conn:
        log = (
            await conn.execute(
                select(t.audit_log.c.actor_name, t.audit_log.c.after).where(
                    t.audit_log.c.action == "rfm.save",
                    t.audit_log.c.program_id == shop.program_id,
                )
            )
        ).one()
    assert log[0] == "Marketer Masha" and '"as_of":"2026-06-30"' in log[1]

    # A promotion for the segment "champions": A gets it, B (new customers) does not.
    await publish(
        shop,
        [
            {
                "id": "champions-10",
                "name": "Champions -10%",
                "when": {"segment": ["best"]},
                "effects": [{"kind": "line_discount", "percent": 10}],
            }
        ],
        segments={"best": {"rfm": ["champions"]}},
    )
    clock.set(local("2026-07-01"))
    body_a = receipt("pa", m["A"].card, ("tea", 1, "200.00"))
    body_b = receipt("pb", m["B"].card, ("tea", 1, "200.00"))
    got_a = (await shop.post("/purchases/calculate", body_a)).json()
    got_b = (await shop.post("/purchases/calculate", body_b)).json()
    assert (got_a["discount"], got_b["discount"]) == ("20.00", "0.00")


async def test_saving_again_clears_customers_without_purchases_in_the_window(
    make_shop: Any, clock: Any
) -> None:
    shop = await make_shop()
    m = await dozen(shop, clock)
    cli = audit.Actor("cli", None, "ops")
    await service.do_save_segments(shop.rt, cli, shop.program_id, as_of=AS_OF)

    again = await service.do_save_segments(
        shop.rt, cli, shop.program_id, as_of=AS_OF, window_days=11
    )

    # Only A, B, C bought in (06-19, 06-30], once each: recency 0, 1, 10 of n = 3 ->
    # r = 1 + floor(5*2/3) = 4, 1 + floor(5/3) = 2, 1; f = 1 for all.
    assert [await segment_of(shop, m[k]) for k in "ABC"] == ["promising", "hibernating", "lost"]
    assert [await segment_of(shop, m[k]) for k in "DEFGHIJKL"] == [None] * 9
    assert (again.customers, again.changed) == (3, 12)  # 3 moved, 9 cleared


async def test_only_whole_program_readers_may_see_the_report(make_shop: Any) -> None:
    shop = await make_shop()
    partner = audit.Actor("user", 3, "P", role="partner", partner_id=shop.partner_id)
    analyst = audit.Actor("user", 4, "A", role="analyst")

    with pytest.raises(ServiceError) as err:
        service.check_access(partner, shop.program_id)
    assert err.value.code == "forbidden"
    with pytest.raises(ServiceError):
        await service.do_save_segments(shop.rt, analyst, shop.program_id, as_of=AS_OF)
    service.check_access(analyst, shop.program_id)  # may read


# --- the command line ---------------------------------------------------------------------------


def kopilka(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kopilka.cli", "--db", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


async def test_the_cli_prints_the_report_as_csv_and_saves_with_the_actor(
    make_shop: Any, clock: Any
) -> None:
    shop = await make_shop()
    m = await dozen(shop, clock)
    args = ["report", "rfm", "--as-of", "2026-06-30", "--program", shop.code]

    out = await asyncio.to_thread(kopilka, shop.rt.url, *args, "--save", "--actor", "ops-olga")

    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "customer,last_purchase,recency_days,frequency,monetary,r,f,m,segment"
    assert lines[1:] == [",".join(map(str, row)) for row in expected_rows(m)]
    assert "saved: 12 customers with a segment, 12 changed" in out.stderr
    async with shop.rt.engine.connect() as conn:
        who = (
            await conn.execute(
                select(t.audit_log.c.actor_kind, t.audit_log.c.actor_name).where(
                    t.audit_log.c.action == "rfm.save",
                    t.audit_log.c.program_id == shop.program_id,
                )
            )
        ).one()
    assert tuple(who) == ("cli", "ops-olga")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "2026-13-01"], "error: --as-of: give a date as YYYY-MM-DD"),
        (
            ["--as-of", "2026-06-30", "--window-days", "0"],
            "error: --window-days: give 1 to 36500 days",
        ),
        (
            ["--as-of", "2026-06-30", "--window-days", "year"],
            "error: --window-days: give a whole number of days",
        ),
        (["--as-of", "2026-06-30", "--format", "xlsx"], "error: --format xlsx needs --out FILE"),
    ],
)
def test_bad_cli_input_is_an_error_naming_the_option(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `cli.main` in this process (tests.inprocess): the tests around run `kopilka report
    # rfm` in processes of their own, these four refusals need no interpreter each
    out = kopilka_sync(capsys, f"sqlite:///{tmp_path}/none.db", "report", "rfm", *args)

    assert (out.returncode, out.stderr.strip(), out.stdout) == (2, message, "")


def test_a_bad_segment_file_is_an_error_naming_the_file_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "segments.yaml"
    bad.write_text("segments:\n  - {code: top, name: Top, r: 4-5}\n  - {code: x, name: X, f: 7}\n")

    out = kopilka(
        f"sqlite:///{tmp_path}/none.db",
        "report",
        "rfm",
        "--as-of",
        "2026-06-30",
        "--segments",
        str(bad),
    )

    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"error: --segments: {bad}: segments[1].f: give a score 1-5 or a range such as 4-5"
    )


async def test_the_workers_daily_refresh_saves_segments_as_of_today(
    make_shop: Any, clock: Any
) -> None:
    shop = await make_shop()
    m = await dozen(shop, clock)
    clock.set(local("2026-06-30", "23:59"))  # still the 30th in Moscow (20:59 UTC)

    saved = dict(await service.refresh_all(shop.rt))

    assert saved[shop.program_id].as_of == AS_OF
    assert saved[shop.program_id].customers == 12
    assert await segment_of(shop, m["A"]) == "champions"
    assert await segment_of(shop, m["K"]) == "at_risk"
