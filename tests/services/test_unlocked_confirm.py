"""The confirm without a transaction (PostgreSQL, ADR 0037) when something else writes
between its read and its write: the account changes, the receipt is cancelled, or the
same confirm finishes first.  The guarded write must then write nothing and the confirm
must come out exactly as the locking one would.

Each scenario runs on both databases: on PostgreSQL the other write is made at the
worst moment (after the confirm read, before it writes: ``_settle`` is wrapped); SQLite
confirms under its write lock, so there the other write simply comes first.  Either way
the till sees the same answers and the ledger verifies.

On PostgreSQL each runs twice (``start``): the confirm starting from what the calculate
of this process read (ADR 0038: the other write lands between the calculate and the
confirm's one statement), and the confirm reading for itself (the calculate was done by
another process: what it read is not here).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from kopilka.services import purchases
from kopilka.services.accounts import do_adjust
from kopilka.store import tables as t
from tests.conftest import Shop, receipt
from tests.services.conftest import MakeShop, discrepancies, receipt_pk
from tests.services.test_concurrency import balance, entries_of, outcome


def meanwhile(
    monkeypatch: pytest.MonkeyPatch, shop: Shop, other: Callable[[], Awaitable[Any]]
) -> list[str]:
    """Run ``other`` between the confirm's read and its write (PostgreSQL), or before the
    confirm (SQLite).  Returns a list that records where it ran."""
    ran: list[str] = []
    real = purchases._settle

    async def settle(*args: Any, **kw: Any) -> bytes:
        if kw.get("unlocked") is not None and not ran:
            ran.append("between the read and the write")
            await other()
        return await real(*args, **kw)

    monkeypatch.setattr(purchases, "_settle", settle)
    return ran


def relocked(reason: str) -> float:
    """``kopilka_confirm_relocked_total{reason}`` of this process."""
    return REGISTRY.get_sample_value("kopilka_confirm_relocked_total", {"reason": reason}) or 0.0


def from_calculate(result: str) -> float:
    """``kopilka_confirm_from_calculate_total{result}`` of this process."""
    labels = {"result": result}
    return REGISTRY.get_sample_value("kopilka_confirm_from_calculate_total", labels) or 0.0


@pytest.fixture(params=["calculate", "read"])
def start(request: pytest.FixtureRequest) -> str:
    """Where a PostgreSQL confirm starts: the calculate's read kept in this process, or
    a read of its own."""
    return str(request.param)


class Counts:
    """The two counters' growth over a confirm."""

    def __init__(self) -> None:
        self.relocked, self.stale = relocked("changed"), from_calculate("changed")

    def grown(self) -> tuple[float, float]:
        return relocked("changed") - self.relocked, from_calculate("changed") - self.stale


def expected(shop: Shop, start: str) -> tuple[int, int]:
    """(relocked, stale) growth of a confirm that lost its race: on PostgreSQL, starting
    from the calculate's read it reads again (and then wins); reading for itself it is
    done again locked."""
    if shop.rt.sqlite:
        return (0, 0)
    return (0, 1) if start == "calculate" else (1, 0)


async def confirm(shop: Shop, receipt_id: str, ran: list[str], other: Any, start: str) -> Any:
    if shop.rt.sqlite:
        ran.append("before the confirm")
        await other()
    elif start == "read":  # as if another process had calculated it
        term = await shop.rt.terminal_by_key(shop.key)
        assert term is not None
        assert shop.rt.take_calculated(term.id, receipt_id) is not None
    return await shop.post(f"/purchases/{receipt_id}/confirm")


async def test_an_account_changed_after_the_read_is_confirmed_from_what_it_is_now(
    make_shop: MakeShop, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    shop = await make_shop(burn_max_percent="100", earn_percent="10")
    member = await shop.customer(points=100)
    calc = await shop.post(
        "/purchases/calculate", receipt("u1", member.card, ("a", 1, "100.00"), redeem_points="60")
    )
    assert calc.status_code == 200, calc.text

    async def other() -> None:  # points credited elsewhere meanwhile
        await do_adjust(shop.rt, member.account_id, Decimal(25), program_id=shop.program_id)

    ran = meanwhile(monkeypatch, shop, other)
    counts = Counts()
    answer = await confirm(shop, "u1", ran, other, start)

    assert outcome(answer) == "200", answer.text
    assert ran == ["before the confirm" if shop.rt.sqlite else "between the read and the write"]
    # 100 + 25 - 60 burned + 4 earned (10 % of the 40.00 paid): nothing counted twice, the
    # adjustment not overwritten by a balance computed before it
    # (the 25 show as pending in the answer: credited after the confirm's clock was read)
    shown = answer.json()["balance"]
    assert Decimal(shown["available"]) + Decimal(shown["pending"]) == Decimal("69.00")
    assert await shop.balance(member) == balance("69.00")
    assert [k for k, _ in await entries_of(shop, "u1")] == ["hold", "burn", "earn"]
    # on PostgreSQL the operator sees the lost race in /metrics
    assert counts.grown() == expected(shop, start)
    assert await discrepancies(shop) == []


async def test_a_receipt_cancelled_after_the_read_is_not_confirmed(
    make_shop: MakeShop, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    shop = await make_shop(burn_max_percent="100")
    member = await shop.customer(points=100)
    calc = await shop.post(
        "/purchases/calculate", receipt("u2", member.card, ("a", 1, "100.00"), redeem_points="60")
    )
    assert calc.status_code == 200, calc.text
    term = await shop.rt.terminal_by_key(shop.key)
    assert term is not None

    async def other() -> None:  # the till's other request: cancel
        await purchases.do_cancel(shop.rt, term, "u2")

    ran = meanwhile(monkeypatch, shop, other)
    counts = Counts()
    answer = await confirm(shop, "u2", ran, other, start)

    assert outcome(answer) == "409 receipt_cancelled"
    assert len(ran) == 1
    assert await shop.balance(member) == balance("100.00")
    assert [k for k, _ in await entries_of(shop, "u2")] == ["hold", "release"]
    assert counts.grown() == expected(shop, start)
    assert await discrepancies(shop) == []


async def test_a_guests_receipt_confirmed_meanwhile_answers_the_first_confirm_once(
    make_shop: MakeShop, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    shop = await make_shop()
    lines = [(f"sku{i}", 1, "10.00") for i in range(20)]
    assert (await shop.post("/purchases/calculate", receipt("u3", None, *lines))).status_code == 200
    term = await shop.rt.terminal_by_key(shop.key)
    assert term is not None
    first: list[bytes] = []

    async def other() -> None:  # the same confirm, retried by the till, finishes first
        first.append(await purchases.do_confirm(shop.rt, term, "u3"))

    ran = meanwhile(monkeypatch, shop, other)
    answer = await confirm(shop, "u3", ran, other, start)

    assert outcome(answer) == "200"
    assert answer.content == first[0]
    pk = await receipt_pk(shop, "u3")
    async with shop.rt.engine.connect() as conn:
        lines_stored = (
            await conn.execute(
                select(func.count())
                .select_from(t.receipt_lines)
                .where(t.receipt_lines.c.receipt_pk == pk)
            )
        ).scalar_one()
    assert lines_stored == 20
