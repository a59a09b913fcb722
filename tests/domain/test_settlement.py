"""Pricing the obligations matrix: hand-checked cells, and properties over any ledger."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.domain.settlement import Flow, Terms, clear

D = Decimal


def test_the_issuer_pays_in_full_and_the_acceptor_gets_it_less_the_fee() -> None:
    flows = [Flow("burn", 1, 2, D("-333.33"))]  # partner 1's points burned at partner 2

    c = clear(flows, Terms(D("0.3"), D("1.5")))

    # 333.33 x 0.3 = 99.999 -> 100.00 roubles; 1.5 % of it = 1.50
    (o,) = c.obligations
    assert (o.roubles, o.fee) == (D("100.00"), D("1.50"))
    assert (c.position(1).net, c.position(2).net, c.position(None).net) == (
        D("-100.00"),
        D("98.50"),
        D("1.50"),
    )


def test_points_burned_where_they_were_issued_owe_nobody_anything() -> None:
    c = clear([Flow("burn", 1, 1, D("-50"))], Terms(D("1"), D("2")))

    assert c.obligations == []
    assert c.position(1).burned == D("50")
    assert c.position(1).net == 0


def test_a_give_back_in_full_undoes_the_obligation() -> None:
    terms = Terms(D("0.45"), D("2.5"))
    burn = clear([Flow("burn", None, 3, D("-77.77"))], terms)
    back = clear([Flow("refund_in", None, 3, D("77.77"))], terms)

    assert [(o.roubles, o.fee) for o in back.obligations] == [
        (-o.roubles, -o.fee) for o in burn.obligations
    ]
    assert back.position(3).net == -burn.position(3).net


parties = st.one_of(st.none(), st.integers(1, 4))
points = st.decimals(min_value=D("0.01"), max_value=D("99999.99"), places=2)
flows = st.lists(
    st.tuples(st.sampled_from(["burn", "refund_in", "earn", "expire"]), parties, parties, points),
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(
    flows,
    st.decimals(min_value=D("0.01"), max_value=D("10"), places=4),
    st.decimals(min_value=D("0"), max_value=D("30"), places=2),
)
def test_nets_always_sum_to_zero_and_fees_are_the_operator_s(
    raw: list[tuple[str, int | None, int | None, Decimal]], rate: Decimal, fee: Decimal
) -> None:
    fl = [Flow(k, i, a, -p if k in ("burn", "expire") else p) for k, i, a, p in raw]

    c = clear(fl, Terms(rate, fee))

    assert sum(p.net for p in c.positions) == 0
    fees = sum((o.fee for o in c.obligations), D(0))
    partners_fee = sum(p.fee for p in c.positions if p.party is not None)
    operator = c.position(None)
    assert operator.net == operator.receives - operator.pays + fees
    assert partners_fee + operator.fee == fees
    for o in c.obligations:
        assert o.issuer != o.acceptor
        assert abs(o.roubles - o.points * rate) <= D("0.005")
