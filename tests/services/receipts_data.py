"""Historical receipts for the analytics tests, written straight into the tables with
SQLAlchemy Core (as an import would leave them): confirmed, with lines."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select

from kopilka.store import tables as t
from tests.conftest import Shop

_serial = itertools.count(1)
ZERO = Decimal(0)


@dataclass
class Sale:
    at: datetime  # aware
    skus: Sequence[str] = ()
    paid: Decimal = Decimal("100.00")
    customer_id: int | None = None
    state: str = "confirmed"
    names: dict[str, str] = field(default_factory=dict)


async def add_customers(shop: Shop, external_ids: Sequence[str]) -> dict[str, int]:
    """Customers without cards, named by the chain's id; answers id by external id."""
    rows = [
        {"program_id": shop.program_id, "registered_at": shop.rt.now(), "external_id": e}
        for e in external_ids
    ]
    async with shop.rt.engine.begin() as conn:
        got = await conn.execute(
            insert(t.customers).returning(
                t.customers.c.id, t.customers.c.external_id, sort_by_parameter_order=True
            ),
            rows,
        )
        return {str(e): int(i) for i, e in got}


async def add_sales(shop: Shop, sales: Sequence[Sale], *, store_id: int | None = None) -> None:
    async with shop.rt.engine.begin() as conn:
        term = (
            await conn.execute(
                select(t.terminals.c.id, t.terminals.c.store_id).where(
                    t.terminals.c.program_id == shop.program_id
                )
            )
        ).first()
        assert term is not None
        tag = secrets.token_hex(3)
        rows = []
        for s in sales:
            rows.append(
                {
                    "program_id": shop.program_id,
                    "partner_id": shop.partner_id,
                    "store_id": store_id or term[1],
                    "terminal_id": term[0],
                    "pos_receipt_id": f"h{tag}-{next(_serial)}",
                    "customer_id": s.customer_id,
                    "state": s.state,
                    "occurred_at": s.at,
                    "created_at": s.at,
                    "confirmed_at": s.at,
                    "amount": s.paid,
                    "discount": ZERO,
                    "points_redeemed": ZERO,
                    "redeemed_value": ZERO,
                    "to_pay": s.paid,
                    "points_earned": ZERO,
                    "request_hash": "x",
                    "source": "import",
                }
            )
        pks = [
            int(x)
            for x in (
                await conn.execute(
                    insert(t.receipts).returning(t.receipts.c.id, sort_by_parameter_order=True),
                    rows,
                )
            ).scalars()
        ]
        lines = [
            {
                "receipt_pk": pk,
                "idx": i,
                "program_id": shop.program_id,
                "sku": sku,
                "name": s.names.get(sku, f"item {sku}"),
                "quantity": Decimal(1),
                "price": Decimal("10.00"),
                "amount": Decimal("10.00"),
                "discount": ZERO,
                "points_redeemed": ZERO,
                "redeemed_value": ZERO,
                "to_pay": Decimal("10.00"),
                "points_earned": ZERO,
            }
            for pk, s in zip(pks, sales, strict=True)
            for i, sku in enumerate(s.skus)
        ]
        if lines:
            await conn.execute(insert(t.receipt_lines), lines)
