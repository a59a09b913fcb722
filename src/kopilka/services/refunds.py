"""Refunds: full or partial, several per receipt, exact and never more than was bought.

For a line of quantity ``q`` that earned ``e`` points and redeemed ``p``, returning
``k`` more units after ``j`` were returned gives back ``prorate(x, j+k, q) -
prorate(x, j, q)`` of each amount: cumulative rounding, so that returning the whole
line, in any number of refunds, gives back exactly what the line had.

Earned points are taken back from the receipt's own lot first, then from the lots that
expire first; what the account cannot give goes to a debt (negative balance) up to the
program's limit, and the rest is reported as ``points_uncollected``.  Redeemed points
go back to the lots they were burned from, latest expiry first.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from kopilka.domain.ledger import ZERO, EntryKind, Take, balance_at, plan_take_back
from kopilka.domain.money import KOPECK, MILLI, allocate, fmt2, fmt3, from_minor, prorate, to_minor
from kopilka.services import giftcards, views
from kopilka.services.coupons import return_coupons
from kopilka.services.errors import ServiceError
from kopilka.services.purchases import lot_dates
from kopilka.services.runtime import Runtime, Terminal
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from kopilka.store.queries.accounts import Posting, held_at, load_account
from kopilka.store.raw import SATx

r = t.receipts
rl = t.receipt_lines
le = t.ledger_entries


@dataclass(frozen=True, slots=True)
class RefundLine:
    index: int
    quantity: Decimal | None  # None: the whole remaining quantity of the line


@dataclass(frozen=True, slots=True)
class RefundRequest:
    refund_id: str
    lines: tuple[RefundLine, ...] | None  # None: the whole receipt

    def request_hash(self) -> str:
        body = (
            "*"
            if self.lines is None
            else ";".join(
                f"{x.index}:{'' if x.quantity is None else f'{x.quantity:.3f}'}" for x in self.lines
            )
        )
        return hashlib.sha256(f"{self.refund_id}|{body}".encode()).hexdigest()


def _part(
    total: Decimal, after: Decimal, before: Decimal, whole: Decimal, unit: Decimal = KOPECK
) -> Decimal:
    w = to_minor(whole, unit=MILLI)
    tot = to_minor(total, unit=unit)
    a = prorate(tot, to_minor(after, unit=MILLI), w)
    b = prorate(tot, to_minor(before, unit=MILLI), w)
    return from_minor(a - b, unit=unit)


async def do_refund(rt: Runtime, term: Terminal, receipt_id: str, req: RefundRequest) -> bytes:
    """Return goods of a confirmed receipt; one transaction, locks receipt and account."""
    program = await rt.program(term.program_id)
    now = rt.now()
    digest = req.request_hash()
    try:
        async with rt.engine.begin() as conn:
            rec = await _find_receipt(conn, term, receipt_id)
            prior = (
                await conn.execute(
                    select(t.refunds.c.request_hash, t.refunds.c.response).where(
                        t.refunds.c.receipt_pk == rec.id, t.refunds.c.pos_refund_id == req.refund_id
                    )
                )
            ).first()
            if prior is not None:
                if prior.request_hash != digest:
                    raise ServiceError(
                        "idempotency_conflict",
                        f"refund_id {req.refund_id!r} was already used with a different request",
                        field="refund_id",
                    )
                return bytes(prior.response)
            if rec.state != "confirmed":
                raise ServiceError(
                    "receipt_not_confirmed",
                    f"only a confirmed receipt can be refunded (it is {rec.state})",
                    field="receipt_id",
                )
            lines = (
                await conn.execute(select(rl).where(rl.c.receipt_pk == rec.id).order_by(rl.c.idx))
            ).all()
            plan = _plan_lines(lines, req)
            taken_total = sum((p["points_taken_back"] for p in plan), ZERO)
            returned_total = sum((p["points_returned"] for p in plan), ZERO)
            amount_total = sum((p["amount"] for p in plan), ZERO)
            refund_pk = await insert_id(
                conn,
                t.refunds,
                {
                    "program_id": term.program_id,
                    "receipt_pk": rec.id,
                    "pos_refund_id": req.refund_id,
                    "terminal_id": term.id,
                    "request_hash": digest,
                    "response": b"",
                    "amount": amount_total,
                    "points_taken_back": ZERO,
                    "points_returned": returned_total,
                    "points_uncollected": ZERO,
                    "created_at": now,
                },
            )
            # Past this point the refund must succeed: only writes follow.
            uncollected = ZERO
            taken = ZERO
            balance = None
            if rec.account_id is not None and (taken_total or returned_total):
                account = await load_account(SATx(conn), rec.account_id, lock=True)
                # Entries carry the funder of the lot they touch and the refund's partner
                # (ADR 0024); a debt is the program's.
                posting = Posting(account, now, receipt_pk=rec.id, refund_pk=refund_pk)
                posting.partner_id = term.partner_id
                own_lots = await _own_lots(conn, rec.id)
                if returned_total:
                    takes, funders, owed = await _return_plan(conn, rec.id, returned_total)
                    posting.lot_funders.update(funders)
                    posting.give_back(takes)
                    if owed:  # an offline burn's part that was booked as debt (ADR 0030)
                        _, expires = lot_dates(now, program)
                        posting.credit(owed, expires_at=expires, kind=EntryKind.REFUND)
                holds = await held_at(SATx(conn), account)
                tb = plan_take_back(
                    account.lots,
                    taken_total,
                    own_lot_ids=own_lots,
                    held=account.held,
                    debt=account.debt,
                    debt_limit=program.negative_balance_limit,
                    now=now,
                    held_at=holds,
                )
                posting.take(tb.takes, EntryKind.REFUND)
                posting.add_debt(tb.debt_added, EntryKind.REFUND)
                uncollected = tb.uncollected
                taken = taken_total - uncollected
                await posting.flush(SATx(conn))
                balance = balance_at(
                    account.lots,
                    at=term.partner_id,
                    held=account.held,
                    held_at=holds,
                    debt=account.debt,
                    now=now,
                )
            elif rec.account_id is not None:
                account = await load_account(SATx(conn), rec.account_id, lock=False)
                balance = balance_at(
                    account.lots,
                    at=term.partner_id,
                    held=account.held,
                    held_at=await held_at(SATx(conn), account),
                    debt=account.debt,
                    now=now,
                )
            # What could not be taken back is spread over the lines by what each owed
            # (largest remainder), so the lines add up to the totals.
            short = _spread_short(uncollected, [p["points_taken_back"] for p in plan])
            for p, miss in zip(plan, short, strict=True):
                p["points_uncollected"] = miss
                p["points_taken_back"] -= miss
            # The whole receipt is back: its coupons are returned (when their series says
            # so), to be used again.
            after = {p["idx"]: p["refunded_after"] for p in plan}
            fully = all(after.get(ln.idx, ln.refunded_quantity) >= ln.quantity for ln in lines)
            coupons_back = (
                await return_coupons(SATx(conn), receipt_pk=rec.id, now=now) if fully else 0
            )
            # Money paid by gift cards goes back to them first (never more than each
            # card paid for this receipt); the rest the till pays back another way.
            gift = await giftcards.refund_tenders(
                SATx(conn), receipt_pk=rec.id, refund_pk=refund_pk, amount=amount_total, now=now
            )
            body = views.dumps(
                {
                    "receipt_id": receipt_id,
                    "refund_id": req.refund_id,
                    "lines": [
                        {
                            "index": p["idx"],
                            "quantity": fmt3(p["quantity"]),
                            "amount": fmt2(p["amount"]),
                            "points_taken_back": fmt2(p["points_taken_back"]),
                            "points_uncollected": fmt2(p["points_uncollected"]),
                            "points_returned": fmt2(p["points_returned"]),
                        }
                        for p in plan
                    ],
                    "amount": fmt2(amount_total),
                    "points_taken_back": fmt2(taken),
                    "points_returned": fmt2(returned_total),
                    "points_uncollected": fmt2(uncollected),
                    "balance": None if balance is None else views.balance_view(balance),
                    "coupons_returned": coupons_back,
                    "gift_cards": gift["cards"],
                    "gift_cards_returned": gift["returned"],
                }
            )
            await conn.execute(
                update(t.refunds)
                .where(t.refunds.c.id == refund_pk)
                .values(response=body, points_taken_back=taken, points_uncollected=uncollected)
            )
            await conn.execute(
                insert(t.refund_lines),
                [
                    {
                        "refund_pk": refund_pk,
                        "idx": p["idx"],
                        "quantity": p["quantity"],
                        "amount": p["amount"],
                        "points_taken_back": p["points_taken_back"],
                        "points_returned": p["points_returned"],
                    }
                    for p in plan
                ],
            )
            await conn.execute(
                update(rl)
                .where(rl.c.receipt_pk == bindparam("b_pk"), rl.c.idx == bindparam("b_idx"))
                .values(refunded_quantity=bindparam("b_q")),
                [{"b_pk": rec.id, "b_idx": p["idx"], "b_q": p["refunded_after"]} for p in plan],
            )
            if uncollected:
                await conn.execute(
                    insert(t.outbox),
                    {
                        "program_id": term.program_id,
                        "topic": "refund.uncollected",
                        "created_at": now,
                        "payload": orjson.dumps(
                            {
                                "receipt_pk": rec.id,
                                "refund_pk": refund_pk,
                                "account_id": rec.account_id,
                                "points": fmt2(uncollected),
                            }
                        ).decode(),
                    },
                )
            return body
    except IntegrityError:
        # The same refund_id sent twice at once: the loser reads the winner's answer.
        async with rt.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.refunds.c.request_hash, t.refunds.c.response)
                    .join(r, r.c.id == t.refunds.c.receipt_pk)
                    .where(
                        r.c.terminal_id == term.id,
                        r.c.pos_receipt_id == receipt_id,
                        t.refunds.c.pos_refund_id == req.refund_id,
                    )
                )
            ).first()
        if row is None or row.request_hash != digest:
            raise ServiceError(
                "idempotency_conflict", "refund_id was already used", field="refund_id"
            ) from None
        return bytes(row.response)


def _spread_short(total: Decimal, owed: list[Decimal]) -> list[Decimal]:
    if total == 0 or sum(owed, ZERO) == 0:
        return [ZERO] * len(owed)
    parts = allocate(to_minor(total), [to_minor(x) for x in owed])
    return [from_minor(x) for x in parts]


async def _find_receipt(conn: Any, term: Terminal, receipt_id: str) -> Any:
    """The receipt to refund, locked: sold at this terminal, or else at another terminal
    of the same store (goods are often returned at another till).  A receipt id that
    several tills of the store used is ambiguous (409)."""
    cols = (r.c.id, r.c.state, r.c.account_id, r.c.earned_lot_id, r.c.partner_id)
    rec = (
        await conn.execute(
            select(*cols)
            .where(r.c.terminal_id == term.id, r.c.pos_receipt_id == receipt_id)
            .with_for_update()
        )
    ).first()
    if rec is not None:
        return rec
    found = (
        await conn.execute(
            select(*cols)
            .where(r.c.store_id == term.store_id, r.c.pos_receipt_id == receipt_id)
            .limit(2)
            .with_for_update()
        )
    ).all()
    if not found:
        raise ServiceError(
            "receipt_not_found", f"no receipt {receipt_id!r} in this store", field="receipt_id"
        )
    if len(found) > 1:
        raise ServiceError(
            "ambiguous_receipt_id",
            f"several tills of this store used receipt "
            f"id {receipt_id!r}; refund it at the till that sold it",
            field="receipt_id",
        )
    return found[0]


def _plan_lines(lines: Sequence[Any], req: RefundRequest) -> list[dict[str, Any]]:
    by_idx = {ln.idx: ln for ln in lines}
    wanted: list[tuple[int, Decimal | None, str]] = []
    if req.lines is None:
        wanted = [
            (ln.idx, None, f"lines[{ln.idx}]")
            for ln in lines
            if ln.quantity - ln.refunded_quantity > 0
        ]
        if not wanted:
            raise ServiceError(
                "refund_exceeds_purchase",
                "everything on this receipt was already returned",
                field="lines",
            )
    else:
        seen: set[int] = set()
        for pos, x in enumerate(req.lines):
            if x.index not in by_idx:
                raise ServiceError(
                    "unknown_line",
                    f"the receipt has no line {x.index}",
                    field=f"lines[{pos}].index",
                )
            if x.index in seen:
                raise ServiceError(
                    "unknown_line", f"line {x.index} is listed twice", field=f"lines[{pos}].index"
                )
            seen.add(x.index)
            wanted.append((x.index, x.quantity, f"lines[{pos}].quantity"))
    plan = []
    for idx, qty, fld in wanted:
        ln = by_idx[idx]
        left = ln.quantity - ln.refunded_quantity
        q = left if qty is None else qty
        if q > left:
            raise ServiceError(
                "refund_exceeds_purchase",
                f"line {idx}: {fmt3(q)} requested, {fmt3(left)} left to return",
                field=fld,
                returnable=fmt3(left),
            )
        before = ln.refunded_quantity
        after = before + q
        plan.append(
            {
                "idx": idx,
                "quantity": q,
                "refunded_after": after,
                "amount": _part(ln.to_pay, after, before, ln.quantity),
                "points_taken_back": _part(ln.points_earned, after, before, ln.quantity),
                "points_returned": _part(ln.points_redeemed, after, before, ln.quantity),
            }
        )
    return plan


async def _own_lots(conn: Any, receipt_pk: int) -> list[int]:
    """The lots the receipt's earned points made (one per funder and restriction)."""
    rows = await conn.execute(
        select(le.c.lot_id).where(
            le.c.receipt_pk == receipt_pk,
            le.c.kind == EntryKind.EARN.value,
            le.c.lot_id.is_not(None),
        )
    )
    return sorted({int(x) for x in rows.scalars()})


async def _return_plan(
    conn: Any, receipt_pk: int, amount: Decimal
) -> tuple[list[Take], dict[int, int | None], Decimal]:
    """Which lots the redeemed points go back to: those they were burned from, net of
    earlier returns, the lot that expires last first; those lots' funders; and what no lot
    gave, which was the account's debt (an offline burn beyond the balance, ADR 0030): it
    is credited back, paying the debt first."""
    rows = (
        await conn.execute(
            select(le.c.lot_id, le.c.kind, le.c.amount).where(
                le.c.receipt_pk == receipt_pk,
                le.c.kind.in_([EntryKind.BURN.value, EntryKind.REFUND.value]),
                le.c.lot_id.is_not(None),
            )
        )
    ).all()
    # Out of each lot: burned (negative burn entries) minus already returned (positive
    # refund entries).  Negative refund entries are take-backs of earned points: not ours.
    burned: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for x in rows:
        if x.kind == EntryKind.BURN.value or x.amount > 0:
            burned[x.lot_id] -= x.amount
    lot_rows = {}
    if burned:
        lot_rows = {
            x.id: x
            for x in (
                await conn.execute(
                    select(t.lots.c.id, t.lots.c.expires_at, t.lots.c.funding_partner_id).where(
                        t.lots.c.id.in_(list(burned))
                    )
                )
            ).all()
        }
    far = "9999"
    takes = []
    left = amount
    order = sorted(
        (k for k, v in burned.items() if v > 0),
        key=lambda k: (str(lot_rows[k].expires_at or far), k),
        reverse=True,
    )
    for lot_id in order:
        if left <= 0:
            break
        part = min(burned[lot_id], left)
        takes.append(Take(lot_id, part))
        left -= part
    if left > 0:
        owed = (
            await conn.execute(
                select(t.offline_burns.c.debt).where(t.offline_burns.c.receipt_pk == receipt_pk)
            )
        ).scalar_one_or_none() or ZERO
        assert left <= owed, f"redeemed points to return exceed what was burned by {left}"
    return takes, {k: x.funding_partner_id for k, x in lot_rows.items()}, left
