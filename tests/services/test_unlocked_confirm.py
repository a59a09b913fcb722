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


async def test_a_burning_calculate_whose_account_changed_before_its_write_is_done_locked(
    make_shop: MakeShop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two tills burn the same account at the same moment (ADR 0038): the other till's
    hold lands between this calculate's unlocked read and its guarded write.  The guarded
    write writes nothing (no receipt, hold or entry of this call), the calculate is done
    again with the account locked, and refuses: 60 of 100 are held by the other till.
    On SQLite the other till simply holds first."""
    shop = await make_shop(burn_max_percent="100")
    member = await shop.customer(points=100)
    term = await shop.rt.terminal_by_key(shop.key)
    assert term is not None
    ran: list[str] = []

    async def other() -> None:
        body = receipt("b1", member.card, ("a", 1, "100.00"), redeem_points="60")
        first = await shop.post("/purchases/calculate", body)
        assert first.status_code == 200, first.text

    real = purchases._calc_answer

    async def hook() -> None:
        if not ran:
            ran.append("between the read and the write")
            await other()

    def calc_answer(*args: Any, **kw: Any) -> Any:
        pending.append(hook())
        return real(*args, **kw)

    # _calc_answer is synchronous: its hook runs where the calculate awaits next (the write)
    pending: list[Any] = []
    real_fetch = None
    if not shop.rt.sqlite:
        from kopilka.store import raw

        real_fetch = raw.PgTx.fetch

        async def fetch(self: Any, sql: str, *args: Any) -> Any:
            while pending:
                await pending.pop()
            assert real_fetch is not None
            return await real_fetch(self, sql, *args)

        monkeypatch.setattr(purchases, "_calc_answer", calc_answer)
        monkeypatch.setattr(raw.PgTx, "fetch", fetch)
    else:
        ran.append("before the calculate")
        await other()
    before = REGISTRY.get_sample_value("kopilka_calculate_relocked_total") or 0.0

    mine = await shop.post(
        "/purchases/calculate",
        receipt("b2", member.card, ("a", 1, "100.00"), redeem_points="60"),
    )

    assert len(ran) == 1
    assert mine.status_code == 422 and mine.json()["field"] == "redeem_points", mine.text
    assert await shop.balance(member) == balance("40.00", held="60.00")
    async with shop.rt.engine.connect() as conn:  # nothing of the refused calculate
        rows = await conn.execute(
            select(t.receipts.c.pos_receipt_id).where(t.receipts.c.account_id == member.account_id)
        )
        assert sorted(r[0] for r in rows) == ["b1"]
    grown = (REGISTRY.get_sample_value("kopilka_calculate_relocked_total") or 0.0) - before
    assert grown == (0 if shop.rt.sqlite else 1)
    assert await discrepancies(shop) == []
