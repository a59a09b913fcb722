"""Personal offers: a promotion assigned to a customer (``personal: true`` promotions, or
the ``personal_offer`` condition), shown to the cashier at lookup and applied at the till
while valid."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from kopilka.domain.rules.compiler import CompiledProgram
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.raw import Tx, parse_ts, ts


def _check_promotion(compiled: CompiledProgram, promotion_id: str) -> None:
    if promotion_id not in compiled.by_id:
        raise ServiceError(
            "promotion_not_found",
            f"no promotion {promotion_id!r} in the program's current version",
            field="promotion",
        )


async def do_assign(
    rt: Runtime,
    *,
    program_id: int,
    customer_id: int,
    promotion_id: str,
    valid_until: datetime | None = None,
) -> dict[str, Any]:
    """Assign (or re-assign, with a new validity) a promotion to a customer."""
    _check_promotion(await rt.compiled(program_id), promotion_id)
    now = rt.now()
    po = t.personal_offers
    async with rt.engine.begin() as conn:
        await conn.execute(
            delete(po).where(
                po.c.program_id == program_id,
                po.c.customer_id == customer_id,
                po.c.promotion_id == promotion_id,
            )
        )
        await conn.execute(
            insert(po),
            {
                "program_id": program_id,
                "customer_id": customer_id,
                "promotion_id": promotion_id,
                "valid_until": valid_until,
                "created_at": now,
            },
        )
    return {
        "customer_id": customer_id,
        "promotion": promotion_id,
        "valid_until": None if valid_until is None else valid_until.isoformat(),
    }


async def do_withdraw(rt: Runtime, *, program_id: int, customer_id: int, promotion_id: str) -> bool:
    po = t.personal_offers
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            delete(po).where(
                po.c.program_id == program_id,
                po.c.customer_id == customer_id,
                po.c.promotion_id == promotion_id,
            )
        )
    return bool(res.rowcount)


async def offers_view(
    tx: Tx, compiled: CompiledProgram, *, program_id: int, customer_id: int, now: datetime
) -> list[dict[str, Any]]:
    """The customer's valid offers of enabled promotions, for the cashier (one read)."""
    rows = await tx.fetch(
        "SELECT promotion_id, valid_until FROM personal_offers WHERE program_id = ? "
        "AND customer_id = ? AND (valid_until IS NULL OR valid_until > ?) ORDER BY promotion_id",
        program_id,
        customer_id,
        ts(tx, now),
    )
    out = []
    for pid, until in rows:
        p = compiled.by_id.get(pid)
        if p is None or not p.enabled:
            continue
        valid_until = parse_ts(until)
        out.append(
            {
                "promotion": pid,
                "name": p.name,
                "valid_until": None if valid_until is None else valid_until.isoformat(),
            }
        )
    return out


async def customer_in_program(rt: Runtime, *, program_id: int, customer_id: int) -> None:
    async with rt.engine.connect() as conn:
        found = (
            await conn.execute(
                select(t.customers.c.id).where(
                    t.customers.c.id == customer_id, t.customers.c.program_id == program_id
                )
            )
        ).first()
    if found is None:
        raise ServiceError("customer_not_found", "no such customer", field="customer")
