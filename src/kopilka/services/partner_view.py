"""What a partner sees of a program (issue 9): the receipts at its stores with their
customers' activity, personal data masked, and the promotions restricted to it.

The same functions serve every role with ``stores.read``: a caller scoped to a partner or
a store gets its own rows (``services.scope``), a program-wide caller the program's.
Whoever lacks ``customers.read`` sees a customer as initials and a masked phone
(``А. С.``, ``+7 9** ***-**-12``) and the card's last four digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from kopilka.domain.identifiers import mask_card
from kopilka.domain.roles import Perm, mask_initials, mask_phone_partner
from kopilka.services import scope
from kopilka.services.audit import Actor
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

r, st, pt, cu, cd = t.receipts, t.stores, t.partners, t.customers, t.cards


@dataclass(frozen=True)
class ReceiptRow:
    id: int
    pos_receipt_id: str
    store_code: str
    store_name: str
    partner_code: str
    state: str
    occurred_at: datetime
    amount: Decimal
    discount: Decimal
    points_earned: Decimal
    points_redeemed: Decimal
    customer_id: int | None
    customer: str  # a name, or initials when masked
    phone: str
    card: str


@dataclass(frozen=True)
class PartnerPromotion:
    id: str
    name: str
    partners: tuple[str, ...]
    starts_at: str | None
    ends_at: str | None


def _customer(row: Any, *, masked: bool) -> tuple[str, str, str]:
    if row.customer_id is None:
        return "", "", ""
    card = row.card_number or ""
    if masked:
        return (
            mask_initials(row.first_name or "", row.last_name or ""),
            mask_phone_partner(row.phone),
            mask_card(card) if card else "",
        )
    name = " ".join(x for x in (row.first_name, row.last_name) if x)
    return name, row.phone or "", card


async def list_receipts(
    rt: Runtime,
    actor: Actor,
    program_id: int,
    *,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[ReceiptRow], int]:
    """The receipts at the stores the caller reaches, newest first, and how many."""
    actor.require(Perm.STORES_READ)
    scope.check_program(actor, program_id, field="program")
    masked = not actor.can(Perm.CUSTOMERS_READ)
    where = (r.c.program_id == program_id) & scope.store_filter(actor, r.c.store_id, r.c.partner_id)
    q = (
        select(
            r.c.id,
            r.c.pos_receipt_id,
            st.c.code.label("store_code"),
            st.c.name.label("store_name"),
            pt.c.code.label("partner_code"),
            r.c.state,
            r.c.occurred_at,
            r.c.amount,
            r.c.discount,
            r.c.points_earned,
            r.c.points_redeemed,
            r.c.customer_id,
            cu.c.first_name,
            cu.c.last_name,
            cu.c.phone,
            cd.c.number.label("card_number"),
        )
        .join(st, st.c.id == r.c.store_id)
        .join(pt, pt.c.id == r.c.partner_id)
        .outerjoin(cu, cu.c.id == r.c.customer_id)
        .outerjoin(cd, cd.c.id == r.c.card_id)
        .where(where)
        .order_by(r.c.occurred_at.desc(), r.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(r).where(where))).scalar_one()
        rows = (await conn.execute(q)).all()
    out = []
    for x in rows:
        name, phone, card = _customer(x, masked=masked)
        out.append(
            ReceiptRow(
                x.id,
                x.pos_receipt_id,
                x.store_code,
                x.store_name,
                x.partner_code,
                x.state,
                x.occurred_at,
                Decimal(x.amount),
                Decimal(x.discount),
                Decimal(x.points_earned),
                Decimal(x.points_redeemed),
                x.customer_id,
                name,
                phone,
                card,
            )
        )
    return out, int(total)


async def partner_promotions(
    rt: Runtime, actor: Actor, program_id: int, document: dict[str, Any]
) -> list[PartnerPromotion]:
    """The promotions of ``document`` (the program's current one) restricted to partners
    (``when: {partner: [...]}``); a partner-scoped caller gets those naming its partner."""
    actor.require(Perm.STORES_READ)
    scope.check_program(actor, program_id, field="program")
    mine: str | None = None
    if actor.partner_id is not None or actor.store_id is not None:
        q = select(pt.c.code)
        if actor.partner_id is not None:
            q = q.where(pt.c.id == actor.partner_id)
        else:
            q = q.join(st, st.c.partner_id == pt.c.id).where(st.c.id == actor.store_id)
        async with rt.engine.connect() as conn:
            mine = (await conn.execute(q)).scalar_one_or_none() or ""
    out = []
    for p in document.get("promotions", []):
        partners = tuple((p.get("when") or {}).get("partner") or ())
        if not partners or (mine is not None and mine not in partners):
            continue
        out.append(
            PartnerPromotion(
                str(p.get("id")),
                str(p.get("name", "")),
                partners if mine is None else (mine,),  # not the other partners' codes
                p.get("starts_at"),
                p.get("ends_at"),
            )
        )
    return out
