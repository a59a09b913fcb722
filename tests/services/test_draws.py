"""Prize draws on both databases: a monthly draw over real till receipts, the seed
commitment window, idempotent runs that credit prizes once, and the issue's required
test: rerunning a draw from its published record gives the same winners."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from kopilka.domain import draws as d
from kopilka.draw_cli import add_draw_commands
from kopilka.services import draws
from kopilka.services.errors import ServiceError
from kopilka.store import tables as t
from tests.conftest import Clock, Member, Shop, receipt
from tests.services.conftest import MakeShop, discrepancies

MARCH = datetime(2025, 3, 1, tzinfo=UTC)
APRIL = datetime(2025, 4, 1, tzinfo=UTC)
RULES: dict[str, Any] = {
    "tickets_per_purchase": 0,
    "tickets_per_amount": "500",
    "prizes": [{"points": "5000"}, {"goods": "Кофемашина"}],
}

_rid = iter(range(1, 1_000_000))


async def buy(shop: Shop, member: Member | None, paid: str) -> None:
    rid = f"d{next(_rid)}"
    calc = await shop.post(
        "/purchases/calculate", receipt(rid, member.card if member else None, ("a", 1, paid))
    )
    assert calc.status_code == 200, calc.text
    confirmed = await shop.post(f"/purchases/{rid}/confirm")
    assert confirmed.status_code == 200, confirmed.text


async def program_code(shop: Shop) -> str:
    return shop.code


async def create(shop: Shop, **rules: Any) -> str:
    """The March draw; codes are unique in the session database (every test makes one)."""
    code = f"2025-03-p{shop.program_id}"
    await draws.do_create_draw(
        shop.rt,
        program_code=await program_code(shop),
        code=code,
        name="Розыгрыш марта",
        period_start=MARCH,
        period_end=APRIL,
        rules=RULES | rules,
    )
    return code


async def balance(shop: Shop, member: Member) -> Decimal:
    async with shop.rt.engine.connect() as conn:
        value: Decimal = (
            await conn.execute(
                select(t.accounts.c.balance).where(t.accounts.c.id == member.account_id)
            )
        ).scalar_one()
    return value


async def count(shop: Shop, table: Any, *where: Any) -> int:
    async with shop.rt.engine.connect() as conn:
        n: int = (
            await conn.execute(select(func.count()).select_from(table).where(*where))
        ).scalar_one()
    return n


async def drawn_march(
    make_shop: MakeShop, clock: Clock
) -> tuple[Shop, list[Member], dict[str, Any]]:
    """Three members buying in February, March and April; the March draw run on 1 April."""
    clock.set(datetime(2025, 2, 20, 12, tzinfo=UTC))
    shop = await make_shop(earn_percent="0")
    ann, bob, eve = [await shop.customer() for _ in range(3)]
    await buy(shop, eve, "3000.00")  # February: outside the period
    code = await create(shop)
    await draws.do_commit(shop.rt, code)
    clock.set(datetime(2025, 3, 5, 12, tzinfo=UTC))
    await buy(shop, ann, "1200.00")  # 2 tickets
    await buy(shop, bob, "499.99")  # none
    await buy(shop, None, "5000.00")  # no member: no tickets for anyone
    clock.set(datetime(2025, 3, 31, 20, 59, tzinfo=UTC))
    await buy(shop, bob, "600.00")  # 1 ticket
    clock.set(APRIL)
    await buy(shop, eve, "9000.00")  # April: outside the period
    record = await draws.do_run(shop.rt, code)
    return shop, [ann, bob, eve], record


async def test_a_monthly_draw_gives_tickets_for_member_receipts_of_the_period(
    make_shop: MakeShop, clock: Clock
) -> None:
    _, (ann, bob, _), record = await drawn_march(make_shop, clock)

    tickets = [(e["account_id"], e["tickets"]) for e in record["tickets"]]
    winners = {w["account_id"]: w for w in record["winners"]}

    assert tickets == sorted([(ann.account_id, 2), (bob.account_id, 1)])
    assert record["tickets_digest"] == d.tickets_digest(tickets)
    assert record["state"] == "drawn"
    assert set(winners) == {ann.account_id, bob.account_id}  # one prize per member
    assert sorted(w["place"] for w in record["winners"]) == [1, 2]
    assert d.commitment(record["seed"]) == record["seed_hash"]


async def test_points_prizes_are_credited_once_and_goods_only_recorded(
    make_shop: MakeShop, clock: Clock
) -> None:
    shop, members, record = await drawn_march(make_shop, clock)
    by_account = {m.account_id: m for m in members}
    first = by_account[record["winners"][0]["account_id"]]
    second = by_account[record["winners"][1]["account_id"]]

    again = await draws.do_run(shop.rt, record["draw"])

    assert again == record
    assert record["winners"][0]["points"] == "5000.00"
    assert record["winners"][1]["goods"] == "Кофемашина"
    assert await balance(shop, first) == Decimal("5000.00")
    assert await balance(shop, second) == Decimal("0.00")
    assert (
        await count(
            shop, t.outbox, t.outbox.c.program_id == shop.program_id, t.outbox.c.topic == "draw.won"
        )
        == 2
    )
    assert await discrepancies(shop) == []


async def test_two_concurrent_runs_draw_once(make_shop: MakeShop, clock: Clock) -> None:
    clock.set(datetime(2025, 2, 20, tzinfo=UTC))
    shop = await make_shop(earn_percent="0")
    ann = await shop.customer()
    code = await create(shop, prizes=[{"points": "100"}])
    await draws.do_commit(shop.rt, code)
    clock.set(datetime(2025, 3, 2, tzinfo=UTC))
    await buy(shop, ann, "500.00")
    clock.set(APRIL)

    results = await asyncio.gather(
        draws.do_run(shop.rt, code), draws.do_run(shop.rt, code), return_exceptions=True
    )

    records = [r for r in results if isinstance(r, dict)]
    busy = [r for r in results if isinstance(r, ServiceError)]
    assert len(records) + len(busy) == 2 and records
    assert all(r == records[0] for r in records)
    assert [b.code for b in busy] in ([], ["draw_busy"])
    assert await balance(shop, ann) == Decimal("100.00")
    draw_id = (
        select(t.draws.c.id)
        .where(t.draws.c.program_id == shop.program_id, t.draws.c.code == code)
        .scalar_subquery()
    )
    assert await count(shop, t.draw_winners, t.draw_winners.c.draw_id == draw_id) == 1


async def test_rerunning_a_draw_from_its_published_record_gives_the_same_winners(
    make_shop: MakeShop, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's required test: anyone with the published record reruns the draw."""
    shop, _, drawn = await drawn_march(make_shop, clock)
    published = await draws.publish(shop.rt, drawn["draw"])
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(published, ensure_ascii=False), encoding="utf-8")

    record = json.loads(path.read_text(encoding="utf-8"))
    rules = d.rules_from_dict(record["rules"])
    tickets = [(e["account_id"], e["tickets"]) for e in record["tickets"]]
    rerun = d.select_winners(record["seed"], tickets, rules)
    status = draw_cli(["draw", "verify", str(path)])

    assert [(w.place, w.account_id) for w in rerun] == [
        (w["place"], w["account_id"]) for w in published["winners"]
    ]
    assert draws.verify_published(record) is True
    assert status == 0
    assert capsys.readouterr().out.startswith("OK: 2 winners")


async def test_a_tampered_record_fails_verification(
    make_shop: MakeShop, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shop, _, drawn = await drawn_march(make_shop, clock)
    record = await draws.publish(shop.rt, drawn["draw"])
    record["winners"] = list(reversed(record["winners"]))
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(record), encoding="utf-8")

    status = draw_cli(["draw", "verify", str(path)])

    assert draws.verify_published(record) is False
    assert status == 1
    assert capsys.readouterr().out == "FAILED: rerunning the draw gives other winners\n"


async def test_before_the_draw_the_record_shows_the_hash_but_not_the_seed(
    make_shop: MakeShop, clock: Clock
) -> None:
    clock.set(datetime(2025, 2, 20, tzinfo=UTC))
    shop = await make_shop()
    code = await create(shop)

    open_record = await draws.publish(shop.rt, code)
    seed_hash = await draws.do_commit(shop.rt, code)
    again = await draws.do_commit(shop.rt, code)
    committed = await draws.publish(shop.rt, code)

    assert (open_record["state"], open_record["seed_hash"]) == ("open", None)
    assert again == seed_hash
    assert committed["state"] == "committed"
    assert committed["seed_hash"] == seed_hash
    assert committed["seed"] is None
    assert "winners" not in committed and "tickets" not in committed
    assert draws.verify_published(committed) is False


@pytest.mark.parametrize(
    ("commit_at", "run_at", "refusal"),
    [
        (datetime(2025, 4, 1, tzinfo=UTC), None, "draw_period_ended"),
        (
            datetime(2025, 3, 31, 23, 59, tzinfo=UTC),
            datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC),
            "draw_period_not_ended",
        ),
        (None, datetime(2025, 4, 2, tzinfo=UTC), "draw_not_committed"),
    ],
    ids=["commit-after-the-period", "run-before-the-period-ends", "run-without-a-seed"],
)
async def test_commit_and_run_outside_their_window_are_refused(
    make_shop: MakeShop,
    clock: Clock,
    commit_at: datetime | None,
    run_at: datetime | None,
    refusal: str,
) -> None:
    clock.set(datetime(2025, 2, 20, tzinfo=UTC))
    shop = await make_shop()
    code = await create(shop)

    with pytest.raises(ServiceError) as refused:
        if commit_at is not None:
            clock.set(commit_at)
            await draws.do_commit(shop.rt, code)
        if run_at is not None:
            clock.set(run_at)
            await draws.do_run(shop.rt, code)

    assert refused.value.code == refusal


@pytest.mark.parametrize(
    ("rules", "field"),
    [({"prizes": []}, "rules"), ({"tickets_per_amount": "-1"}, "rules")],
    ids=["no-prizes", "negative-step"],
)
async def test_invalid_rules_are_refused_at_creation(
    make_shop: MakeShop, rules: dict[str, Any], field: str
) -> None:
    shop = await make_shop()

    with pytest.raises(ServiceError) as refused:
        await create(shop, **rules)

    assert (refused.value.code, refused.value.field) == ("validation_failed", field)


async def test_a_draw_code_is_unique_in_its_program(make_shop: MakeShop) -> None:
    shop = await make_shop()
    await create(shop)

    with pytest.raises(ServiceError) as refused:
        await create(shop)

    assert refused.value.code == "draw_exists"


async def test_the_cli_creates_runs_shows_and_verifies_a_draw(
    make_shop: MakeShop,
    clock: Clock,
    rt_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI runs on the real clock: January 2020 is over, so its commit is refused and
    the service commits with the test's clock, in January."""
    clock.set(datetime(2020, 1, 10, tzinfo=UTC))
    shop = await make_shop(earn_percent="0")
    ann = await shop.customer()
    base = ["--db", rt_url, "draw"]
    code = f"cli{shop.program_id}"
    create_args = ["create", "--program", await program_code(shop), "--code", code]
    create_args += ["--name", "CLI", "--from", "2020-01-01T00:00:00+03:00"]
    create_args += ["--to", "2020-02-01T00:00:00+03:00", "--per-amount", "100"]
    create_args += ["--prize", "1:points:50", "--prize", "2:goods:Кружка"]

    created = await asyncio.to_thread(draw_cli, [*base, *create_args])
    refused = await asyncio.to_thread(draw_cli, [*base, "commit", code])
    await draws.do_commit(shop.rt, code)
    await buy(shop, ann, "250.00")
    ran = await asyncio.to_thread(draw_cli, [*base, "run", code])
    capsys.readouterr()
    shown = await asyncio.to_thread(draw_cli, [*base, "show", code, "--json"])
    path = tmp_path / "cli.json"
    path.write_text(capsys.readouterr().out, encoding="utf-8")
    verified = draw_cli(["draw", "verify", str(path)])

    assert (created, refused, ran, shown, verified) == (0, 2, 0, 0, 0)
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["rules"]["prizes"] == [
        {"name": "50 points", "count": 1, "points": "50", "goods": None},
        {"name": "Кружка", "count": 2, "points": None, "goods": "Кружка"},
    ]
    assert record["tickets"] == [{"account_id": ann.account_id, "tickets": 2}]
    assert [(w["place"], w["account_id"]) for w in record["winners"]] == [(1, ann.account_id)]
    assert await balance(shop, ann) == Decimal("50.00")


@pytest.fixture
def rt_url(rt: Any) -> str:
    url: str = rt.url
    return url


def draw_cli(argv: list[str]) -> int:
    """``kopilka draw ...`` through the same parser wiring cli.build_parser uses."""
    p = argparse.ArgumentParser(prog="kopilka")
    p.add_argument("--db", default=None)
    sub = p.add_subparsers(dest="command", required=True)
    add_draw_commands(sub)
    args = p.parse_args(argv)
    status: int = args.fn(args)
    return status


async def test_a_promotion_gives_bonus_tickets_to_members_only(
    make_shop: MakeShop, clock: Clock
) -> None:
    from tests.api.test_promotions_at_till import publish

    clock.set(datetime(2025, 2, 20, 12, tzinfo=UTC))
    shop = await make_shop(earn_percent="0")
    await publish(
        shop,
        [
            {
                "id": "coffee-tickets",
                "name": "Coffee: 3 bonus tickets",
                "lines": {"sku": ["coffee"]},
                "effects": [{"kind": "draw_tickets", "tickets": 3}],
            }
        ],
    )
    ann, bob = await shop.customer(), await shop.customer()
    code = await create(shop)
    await draws.do_commit(shop.rt, code)
    clock.set(datetime(2025, 3, 5, 12, tzinfo=UTC))
    for member, sku, paid in ((ann, "coffee", "100.00"), (bob, "tea", "600.00")):
        rid = f"d{next(_rid)}"
        r = await shop.post("/purchases", receipt(rid, member.card, (sku, 1, paid)))
        assert r.status_code == 200, r.text
    anon = await shop.post("/purchases", receipt(f"d{next(_rid)}", None, ("coffee", 1, "9.00")))
    clock.set(APRIL)

    record = await draws.do_run(shop.rt, code)

    tickets = dict((e["account_id"], e["tickets"]) for e in record["tickets"])
    # Ann: 100.00 earns none by amount (1 per 500) + 3 bonus; Bob: 600.00 -> 1
    assert tickets == {ann.account_id: 3, bob.account_id: 1}
    assert anon.json()["lines"][0]["promotions"] == []  # no member, no tickets


async def test_the_worker_commits_a_seed_when_the_period_begins_and_draws_after_the_grace(
    make_shop: MakeShop, clock: Clock
) -> None:
    clock.set(datetime(2025, 2, 20, 12, tzinfo=UTC))
    shop = await make_shop(earn_percent="0")
    ann = await shop.customer()
    code = await create(shop, prizes=[{"points": "100"}])

    before = await draws.run_due(shop.rt, program_id=shop.program_id)  # not begun yet
    clock.set(datetime(2025, 3, 1, 0, 5, tzinfo=UTC))
    started = await draws.run_due(shop.rt, program_id=shop.program_id)
    hash_shown = (await draws.publish(shop.rt, code, program_code=shop.code))["seed_hash"]
    await buy(shop, ann, "500.00")
    clock.set(datetime(2025, 4, 1, 0, 30, tzinfo=UTC))  # ended, inside the hour's grace
    in_grace = await draws.run_due(shop.rt, program_id=shop.program_id)
    clock.set(datetime(2025, 4, 1, 1, 0, tzinfo=UTC))
    after = await draws.run_due(shop.rt, program_id=shop.program_id)
    again = await draws.run_due(shop.rt, program_id=shop.program_id)
    record = await draws.publish(shop.rt, code, program_code=shop.code)

    assert (before, started, in_grace, after, again) == ((0, 0), (1, 0), (0, 0), (0, 1), (0, 0))
    assert record["state"] == "drawn" and record["seed_hash"] == hash_shown
    assert d.commitment(record["seed"]) == hash_shown
    assert await balance(shop, ann) == Decimal("100.00")
