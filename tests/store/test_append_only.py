"""The ledgers are append-only in the database itself: an UPDATE, DELETE (or, on
PostgreSQL, TRUNCATE) of a ledger row fails whoever sends it, and the balances and
`kopilka ledger verify` stay as they were."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from kopilka.store import tables as t
from tests.conftest import receipt
from tests.services.conftest import MakeShop, discrepancies
from tests.services.test_giftcards import sold_cards


async def _entries(shop: Any, table: Any, where: Any) -> list[tuple[Any, ...]]:
    async with shop.rt.engine.connect() as conn:
        rows = (await conn.execute(select(table).where(where))).all()
    return [tuple(r) for r in rows]


async def _refused(shop: Any, statement: Any) -> str:
    with pytest.raises(DBAPIError) as exc:
        async with shop.rt.engine.begin() as conn:
            await conn.execute(statement)
    return str(exc.value)


async def test_ledger_entries_cannot_be_changed_or_deleted(make_shop: MakeShop) -> None:
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    calc = await shop.post("/purchases/calculate", receipt("ao-1", member.card, ("a", 1, "500")))
    assert calc.status_code == 200, calc.text
    assert (await shop.post("/purchases/ao-1/confirm")).status_code == 200
    mine = t.ledger_entries.c.account_id == member.account_id
    before = await _entries(shop, t.ledger_entries, mine)

    changed = await _refused(
        shop, update(t.ledger_entries).where(mine).values(amount=Decimal("1000000"))
    )
    deleted = await _refused(shop, delete(t.ledger_entries).where(mine))

    assert "append-only" in changed and "append-only" in deleted
    assert len(before) == 1 and await _entries(shop, t.ledger_entries, mine) == before
    assert (await shop.balance(member))["available"] == "50.00"
    assert await discrepancies(shop) == []
    if not shop.rt.sqlite:  # SQLite has no TRUNCATE (its DELETE is refused above)
        truncated = await _refused(shop, text("TRUNCATE ledger_entries CASCADE"))
        assert "append-only" in truncated
        assert await _entries(shop, t.ledger_entries, mine) == before


async def test_gift_card_entries_cannot_be_changed_or_deleted(make_shop: MakeShop) -> None:
    shop = await make_shop()
    await sold_cards(shop)
    ours = t.gift_card_entries.c.program_id == shop.program_id
    before = await _entries(shop, t.gift_card_entries, ours)

    changed = await _refused(shop, update(t.gift_card_entries).where(ours).values(amount=0))
    deleted = await _refused(shop, delete(t.gift_card_entries).where(ours))

    assert "append-only" in changed and "append-only" in deleted
    assert before and await _entries(shop, t.gift_card_entries, ours) == before
