"""The clearing report of the worked example (docs/coalition.md), on both databases.

Terms: 0.50 ₽ a point, the operator's fee 2 %.  Every expected figure below is worked out
by hand in docs/coalition.md ("A worked example")."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from kopilka.services import audit, settlement
from kopilka.services.errors import ServiceError
from kopilka.store import tables as t
from tests.conftest import Clock
from tests.settlement.conftest import Coalition, at, december

D = Decimal


async def _terms(c: Coalition) -> settlement.Program:
    program = await settlement.find_program(c.a.rt, c.a.code)
    await settlement.do_set_terms(
        c.a.rt, program, rate=D("0.50"), fee_percent=D("2"), actor=audit.CLI
    )
    return program


def _figures(rep: settlement.Report, party: Any) -> dict[str, str]:
    p = rep.clearing.position(party)
    return {
        f: str(getattr(p, f))
        for f in ("issued", "burned", "burned_elsewhere", "taken_back", "given_back", "adjusted")
    } | {"pays": str(p.pays), "receives": str(p.receives), "fee": str(p.fee), "net": str(p.net)}


async def test_november_clearing_matches_the_worked_example(
    coalition: Coalition, clock: Clock
) -> None:
    c = coalition
    program = await _terms(c)

    rep = await settlement.period_report(c.a.rt, program, "2026-11")

    a, b = c.a.partner_id, c.b_partner
    obligations = {
        (rep.code(o.issuer), rep.code(o.acceptor)): (str(o.points), str(o.roubles), str(o.fee))
        for o in rep.clearing.obligations
    }
    assert obligations == {
        ("operator", "coffee"): ("50.00", "25.00", "0.50"),
        ("apteka", "coffee"): ("70.00", "35.00", "0.70"),
        ("coffee", "apteka"): ("40.00", "20.00", "0.40"),
    }
    assert _figures(rep, a) == {
        "issued": "116.00",
        "burned": "40.00",
        "burned_elsewhere": "70.00",
        "taken_back": "0.00",
        "given_back": "0.00",
        "adjusted": "0.00",
        "pays": "35.00",
        "receives": "19.60",
        "fee": "0.40",
        "net": "-15.40",
    }
    assert _figures(rep, b) == {
        "issued": "68.00",
        "burned": "120.00",
        "burned_elsewhere": "40.00",
        "taken_back": "0.00",
        "given_back": "0.00",
        "adjusted": "0.00",
        "pays": "20.00",
        "receives": "58.80",
        "fee": "1.20",
        "net": "38.80",
    }
    op = rep.clearing.position(None)
    assert (op.adjusted, op.burned_elsewhere, op.pays, op.net) == (
        D("50.00"),
        D("50.00"),
        D("25.00"),
        D("-23.40"),
    )
    pairs = {
        (rep.code(x.a), rep.code(x.b)): (str(x.points), str(x.roubles)) for x in rep.clearing.pairs
    }
    assert pairs == {
        ("operator", "coffee"): ("50.00", "25.00"),
        ("apteka", "coffee"): ("30.00", "15.00"),
    }
    assert not rep.closed


async def test_a_december_refund_of_a_november_receipt_is_december_s(
    coalition: Coalition, clock: Clock
) -> None:
    c = coalition
    program = await _terms(c)
    clock.set(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    closed = await settlement.do_close(c.a.rt, program, "2026-11", actor=audit.CLI)

    await december(c, clock)
    nov = await settlement.period_report(c.a.rt, program, "2026-11")
    dec = await settlement.period_report(c.a.rt, program, "2026-12")

    assert nov.closed and nov.clearing == closed.clearing
    assert await settlement.check_period(c.a.rt, program, "2026-11") == []
    obligations = {
        (dec.code(o.issuer), dec.code(o.acceptor)): (str(o.points), str(o.roubles), str(o.fee))
        for o in dec.clearing.obligations
    }
    assert obligations == {
        ("operator", "coffee"): ("-50.00", "-25.00", "-0.50"),
        ("apteka", "coffee"): ("-70.00", "-35.00", "-0.70"),
    }
    b = dec.clearing.position(c.b_partner)
    assert (b.given_back, b.taken_back, b.net) == (D("120.00"), D("18.00"), D("-58.80"))
    assert dec.clearing.position(c.a.partner_id).net == D("35.00")
    assert dec.clearing.position(None).net == D("23.80")


async def test_closing_refuses_an_unfinished_or_closed_month(
    coalition: Coalition, clock: Clock
) -> None:
    c = coalition
    program = await _terms(c)
    clock.set(at(30))

    with pytest.raises(ServiceError) as early:
        await settlement.do_close(c.a.rt, program, "2026-11", actor=audit.CLI)
    clock.set(at(1, 12))
    await settlement.do_close(c.a.rt, program, "2026-11", actor=audit.CLI)
    with pytest.raises(ServiceError) as again:
        await settlement.do_close(c.a.rt, program, "2026-11", actor=audit.CLI)

    assert early.value.code == "period_not_finished"
    assert again.value.code == "period_closed"


async def test_new_terms_reprice_open_months_only(coalition: Coalition, clock: Clock) -> None:
    c = coalition
    program = await _terms(c)
    clock.set(at(2, 12))
    await settlement.do_close(c.a.rt, program, "2026-11", actor=audit.CLI)

    await settlement.do_set_terms(c.a.rt, program, rate=D("1"), fee_percent=D("0"), actor=audit.CLI)
    nov = await settlement.period_report(c.a.rt, program, "2026-11")
    view = await settlement.range_report(
        c.a.rt, program, datetime(2026, 11, 1).date(), datetime(2026, 11, 30).date()
    )

    assert nov.clearing.position(c.a.partner_id).net == D("-15.40")
    assert view.clearing.position(c.a.partner_id).net == D("-30.00")  # 70 - 40 at 1 ₽, no fee


async def test_the_grouped_query_agrees_with_the_entries_summed_one_by_one(
    coalition: Coalition, clock: Clock
) -> None:
    """The SQL aggregation against a plain loop over the month's entries, each joined by
    hand to its lot's funder and its receipt's partner."""
    c = coalition
    await december(c, clock)
    rt = c.a.rt
    le, lots, rec = t.ledger_entries.c, t.lots.c, t.receipts.c
    start, end = settlement.month_window("2026-12", "Europe/Moscow")
    async with rt.engine.connect() as conn:
        entries = (
            await conn.execute(
                select(le.kind, le.amount, le.lot_id, le.receipt_pk, le.funding_partner_id).where(
                    le.program_id == c.a.program_id, le.created_at >= start, le.created_at < end
                )
            )
        ).all()
        funder = dict((await conn.execute(select(lots.id, lots.funding_partner_id))).all())
        where = dict((await conn.execute(select(rec.id, rec.partner_id))).all())
        flows = await settlement.flows(conn, c.a.program_id, start, end)

    by_hand: dict[tuple[str, Any, Any], Decimal] = {}
    for e in entries:
        if e.kind in ("hold", "release"):
            continue
        kind = e.kind if e.kind != "refund" else ("refund_in" if e.amount > 0 else "refund_out")
        issuer = funder[e.lot_id] if e.lot_id is not None else e.funding_partner_id
        key = (kind, issuer, where.get(e.receipt_pk))
        by_hand[key] = by_hand.get(key, D(0)) + e.amount

    assert {(f.kind, f.issuer, f.acceptor): f.points for f in flows} == by_hand
    assert by_hand == {
        ("refund_in", None, c.b_partner): D("50.00"),
        ("refund_in", c.a.partner_id, c.b_partner): D("70.00"),
        ("refund_out", c.b_partner, c.b_partner): D("-18.00"),
    }


async def test_check_finds_an_entry_booked_into_a_closed_month(
    coalition: Coalition, clock: Clock
) -> None:
    c = coalition
    program = await _terms(c)
    clock.set(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    await settlement.do_close(c.a.rt, program, "2026-11", actor=audit.CLI)
    async with c.a.rt.engine.connect() as conn:
        lot = (
            await conn.execute(
                select(t.lots.c.id).where(
                    t.lots.c.account_id == c.boris.account_id,
                    t.lots.c.funding_partner_id == c.b_partner,
                )
            )
        ).scalar_one()
        receipt = (
            await conn.execute(
                select(t.receipts.c.id).where(
                    t.receipts.c.program_id == c.a.program_id,
                    t.receipts.c.pos_receipt_id == "a2",
                )
            )
        ).scalar_one()

    async with c.a.rt.engine.begin() as conn:  # a hand-made burn dated 29 November
        await conn.execute(
            t.ledger_entries.insert(),
            {
                "program_id": c.a.program_id,
                "account_id": c.boris.account_id,
                "kind": "burn",
                "amount": D("-10.00"),
                "lot_id": lot,
                "receipt_pk": receipt,
                "created_at": datetime(2026, 11, 29, 9, 0, tzinfo=UTC),
            },
        )
    diffs = await settlement.check_period(c.a.rt, program, "2026-11")
    nov = await settlement.period_report(c.a.rt, program, "2026-11")

    assert nov.clearing.position(c.a.partner_id).net == D("-15.40")  # frozen
    assert any(d.startswith("obligations: frozen") and '"points":"40.00"' in d for d in diffs)
    assert any(d.startswith("obligations: ledger") and '"points":"50.00"' in d for d in diffs)
