"""Restricted lots and holds across partners (ADR 0024, guarantee 8): the pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.domain.ledger import (
    InsufficientPoints,
    Lot,
    balance_at,
    balance_of,
    burn_cap,
    holds_payable,
    plan_burn,
    plan_take_back,
    spendable_at,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
A, B, C = 1, 2, 3


def lot(
    lot_id: int, points: int, burn_at: int | None = None, *, days: int = 100, funder: int = A
) -> Lot:
    return Lot(
        lot_id, D(points), NOW - timedelta(days=1), NOW + timedelta(days=days), burn_at, funder
    )


def test_restricted_lots_count_only_at_their_partner() -> None:
    lots = [lot(1, 50), lot(2, 10, A)]

    at_a = spendable_at(lots, at=A, held_at={}, now=NOW)
    at_b = spendable_at(lots, at=B, held_at={}, now=NOW)
    program = spendable_at(lots, at=None, held_at={}, now=NOW)

    assert (at_a, at_b, program) == (D(60), D(50), D(50))


def test_a_hold_at_a_is_paid_from_as_own_lot_first() -> None:
    """A's hold of 10 fits in A's restricted lot: B still sees all 40 unrestricted."""
    lots = [lot(1, 40), lot(2, 10, A)]
    held = {A: D(10)}

    assert spendable_at(lots, at=B, held_at=held, now=NOW) == D(40)
    assert spendable_at(lots, at=A, held_at=held, now=NOW) == D(40)


def test_a_hold_beyond_the_restricted_lot_spills_onto_unrestricted_points() -> None:
    lots = [lot(1, 40), lot(2, 10, A)]
    held = {A: D(25)}

    assert spendable_at(lots, at=B, held_at=held, now=NOW) == D(25)  # 40 - (25 - 10)
    assert spendable_at(lots, at=A, held_at=held, now=NOW) == D(25)  # 50 - 25


def test_a_burn_never_takes_unrestricted_points_that_another_partners_hold_needs() -> None:
    """B holds 30 of the 40 unrestricted points; A burns 20 (its own 10 expire later):
    FIFO would take 20 unrestricted points, the cap takes 10 and A's lot the rest."""
    lots = [lot(1, 40, days=10), lot(2, 10, A, days=300)]
    held = {B: D(30)}
    cap = burn_cap(lots, at=A, held_at=held, now=NOW)

    takes = plan_burn(lots, D(20), now=NOW, at=A, unrestricted_cap=cap)

    assert cap == D(10)
    assert [(x.lot_id, x.amount) for x in takes] == [(1, D(10)), (2, D(10))]


def test_burning_at_b_refuses_points_restricted_to_a() -> None:
    lots = [lot(1, 5), lot(2, 10, A)]

    try:
        plan_burn(lots, D(6), now=NOW, at=B)
        raise AssertionError("burned points restricted to another partner")
    except InsufficientPoints as exc:
        refused = exc.available

    assert refused == D(5)


def test_take_back_leaves_what_holds_need() -> None:
    """A hold at A needs 25: 10 from A's lot and 15 unrestricted; of 40 unrestricted only
    25 can be taken back, and A's lot gives nothing."""
    lots = [lot(1, 40), lot(2, 10, A)]

    plan = plan_take_back(
        lots,
        D(50),
        held=D(25),
        held_at={A: D(25)},
        debt=D(0),
        debt_limit=D(0),
        now=NOW,
    )

    assert [(x.lot_id, x.amount) for x in plan.takes] == [(1, D(25))]
    assert plan.uncollected == D(25)


def test_without_restricted_lots_the_balance_is_the_classic_one() -> None:
    lots = [lot(1, 40), lot(2, 30, days=5)]

    at = balance_at(lots, at=B, held=D(20), held_at=None, debt=D(0), now=NOW)

    assert at == balance_of(lots, held=D(20), debt=D(0), now=NOW)


# --- the property: holds stay payable whatever is held, burned or confirmed where ----------

WHERE = st.sampled_from([None, A, B, C])
LOTS = st.lists(
    st.tuples(st.integers(1, 60), st.sampled_from([None, None, A, B]), st.integers(1, 300)),
    min_size=1,
    max_size=6,
)
STEPS = st.lists(
    st.tuples(st.sampled_from(["hold", "burn", "confirm"]), WHERE, st.integers(1, 100)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(LOTS, STEPS)
def test_holds_stay_payable_and_spendable_is_exact(
    raw: list[tuple[int, int | None, int]], steps: list[tuple[str, int | None, int]]
) -> None:
    """Holds take at most what ``spendable_at`` shows; one-shot burns too, under
    ``burn_cap``; confirming a hold burns it under ``burn_cap``.  After every step every
    active hold is still payable from lots burnable where it was made, the shown amount
    is never negative, and a confirm never runs short."""
    lots = [lot(i + 1, pts, where, days=days) for i, (pts, where, days) in enumerate(raw)]
    holds: list[tuple[int | None, D]] = []

    def held_at() -> dict[int | None, D]:
        out: dict[int | None, D] = {}
        for where, amount in holds:
            out[where] = out.get(where, D(0)) + amount
        return out

    def apply(takes: list[tuple[int, D]]) -> None:
        by_id = dict(takes)
        for i, x in enumerate(lots):
            if x.id in by_id:
                lots[i] = Lot(
                    x.id,
                    x.remaining - by_id[x.id],
                    x.activates_at,
                    x.expires_at,
                    x.burn_partner_id,
                    x.funding_partner_id,
                )
                assert lots[i].remaining >= 0

    for kind, where, pct in steps:
        shown = spendable_at(lots, at=where, held_at=held_at(), now=NOW)
        assert shown >= 0
        here = sum((x.remaining for x in lots if x.burns_at(where)), D(0))
        if shown < here:  # exact: a cent more held here would leave some hold unpaid
            more = {**held_at()}
            more[where] = more.get(where, D(0)) + shown + D("0.01")
            assert not holds_payable(lots, more, now=NOW)
        amount = (shown * pct / 100).quantize(D(1))
        if kind == "hold" and amount > 0:
            holds.append((where, amount))
        elif kind == "burn" and amount > 0:
            cap = burn_cap(lots, at=where, held_at=held_at(), now=NOW)
            takes = plan_burn(lots, amount, now=NOW, at=where, unrestricted_cap=cap)
            apply([(x.lot_id, x.amount) for x in takes])
        elif kind == "confirm" and holds:
            where, amount = holds[pct % len(holds)]
            cap = burn_cap(lots, at=where, held_at=held_at(), now=NOW)
            takes = plan_burn(
                lots, amount, now=NOW, held_before=True, at=where, unrestricted_cap=cap
            )
            holds.remove((where, amount))
            apply([(x.lot_id, x.amount) for x in takes])
        assert holds_payable(lots, held_at(), now=NOW), (kind, where, amount, lots, holds)


# --- the program document's coalition keys -------------------------------------------------


def test_a_partner_funded_promotion_must_name_its_partner() -> None:
    from kopilka.domain.rules.model import DocumentInvalid, validate_document

    doc = {"code": "c", "name": "C", "promotions": []}
    bad = {"id": "p", "name": "P", "effects": [{"kind": "fixed_points", "points": 5}]}

    problems = []
    for extra in ({"funded_by": "partner"}, {"burn_at": "partner"}):
        try:
            validate_document({**doc, "promotions": [{**bad, **extra}]})
        except DocumentInvalid as exc:
            problems.append([path for path, _ in exc.problems])
    ok = validate_document(
        {
            **doc,
            "promotions": [
                {**bad, "when": {"all": [{"partner": ["a"]}, {"weekday": ["mon"]}]}}
                | {"funded_by": "partner", "burn_at": "partner"}
            ],
        }
    )

    assert problems == [["promotions[0].funded_by"], ["promotions[0].burn_at"]]
    assert (ok.promotions[0].funded_by, ok.promotions[0].burn_at) == ("partner", "partner")
    assert ok.points.base_funded_by == "partner"
