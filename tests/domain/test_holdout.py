"""Held-out control groups: deterministic, of the declared share, never given the promotion."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.domain.holdout import BUCKETS, holdout_bucket, holdout_cut, is_held_out
from kopilka.domain.rules.compiler import compile_program
from kopilka.domain.rules.describe import describe_promotion
from kopilka.domain.rules.model import DocumentInvalid
from tests.domain.rules.kit import line, percent_off, price, program, promo

D = Decimal


@given(
    salt=st.text(min_size=1, max_size=20),
    pid=st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True),
    customer=st.integers(min_value=1, max_value=10**12),
)
def test_the_bucket_is_a_pure_function_of_salt_promotion_and_customer(
    salt: str, pid: str, customer: int
) -> None:
    first = holdout_bucket(salt, pid, customer)

    again = holdout_bucket(salt, pid, customer)

    assert first == again
    assert 0 <= first < BUCKETS


@settings(max_examples=15, deadline=None)
@given(percent=st.integers(min_value=1, max_value=50), salt=st.sampled_from(["p1", "shop", "x"]))
def test_the_held_out_share_is_the_declared_percent(percent: int, salt: str) -> None:
    n = 20_000
    cut = holdout_cut(D(percent))

    held = sum(is_held_out(salt, "autumn", c, cut) for c in range(1, n + 1))

    # a binomial count: within 4.5 standard deviations of n * p
    p = percent / 100
    sd = (n * p * (1 - p)) ** 0.5
    assert abs(held - n * p) < 4.5 * sd


def test_groups_of_two_promotions_are_drawn_independently() -> None:
    n = 20_000
    cut = holdout_cut(D(50))

    both = sum(is_held_out("s", "a", c, cut) and is_held_out("s", "b", c, cut) for c in range(n))

    # independent halves overlap in a quarter (sd = sqrt(n * 0.25 * 0.75) ~ 61)
    assert abs(both - n / 4) < 300


@pytest.mark.parametrize(
    ("percent", "cut"), [("0", 0), ("12.5", 1250), ("50", 5000), ("0.01", 1)], ids=str
)
def test_a_percent_is_a_number_of_buckets(percent: str, cut: int) -> None:
    assert holdout_cut(D(percent)) == cut


def test_nobody_is_held_out_at_zero_percent() -> None:
    assert not any(is_held_out("s", "a", c, 0) for c in range(1000))


@pytest.mark.parametrize("bad", ["-1", "50.01", "75", "0.001"])
def test_holdout_percent_outside_0_to_50_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(DocumentInvalid) as err:
        program(promotions=[promo("p", percent_off("10"), holdout_percent=bad)])

    assert [path for path, _ in err.value.problems] == ["promotions[0].holdout_percent"]


def _customer(cid: int):  # type: ignore[no-untyped-def]
    from kopilka.domain.rules.facts import CustomerContext

    return CustomerContext(cid, D(0), customer_id=cid)


def test_the_engine_never_gives_a_held_out_member_the_promotion() -> None:
    doc = program(promotions=[promo("half", percent_off("10"), holdout_percent="50")])
    compiled = compile_program(doc)
    cut = holdout_cut(D(50))

    given_to = set()
    explained = {}
    for cid in range(1, 201):
        r = price(compiled, line("A", "1", "100"), customer=_customer(cid), explain=["half"])
        if "half" in {a.rule for a in r.applied}:
            given_to.add(cid)
        explained[cid] = r.explanations["half"]

    held = {c for c in range(1, 201) if is_held_out("test", "half", c, cut)}
    assert given_to == set(range(1, 201)) - held
    assert 60 < len(held) < 140  # half of 200, give or take 4.5 sd (~7)
    for cid in held:
        assert explained[cid] == "held out: the customer is in its control group"
    for cid in given_to:
        assert explained[cid] == "applied"


def test_the_treatment_group_gets_the_full_discount() -> None:
    doc = program(promotions=[promo("half", percent_off("10"), holdout_percent="50")])
    compiled = compile_program(doc)
    cid = next(c for c in range(1, 100) if not is_held_out("test", "half", c, 5000))

    r = price(compiled, line("A", "2", "150"), customer=_customer(cid))

    assert r.discount == D("30.00")


def test_a_non_member_receipt_is_outside_the_experiment_and_gets_it() -> None:
    doc = program(promotions=[promo("half", percent_off("10"), holdout_percent="50")])

    r = price(doc, line("A", "1", "100"))

    assert r.discount == D("10.00")


def test_the_salt_redraws_the_groups() -> None:
    cut = holdout_cut(D(50))
    ids = range(1, 201)
    plain = {c for c in ids if is_held_out("test", "half", c, cut)}
    doc = program(
        holdout_salt="2027", promotions=[promo("half", percent_off("10"), holdout_percent="50")]
    )
    compiled = compile_program(doc)

    held = {
        c
        for c in ids
        if price(compiled, line("A", "1", "100"), customer=_customer(c)).discount == 0
    }

    assert held == {c for c in ids if is_held_out("2027", "half", c, cut)}
    assert held != plain


def test_the_description_says_who_is_held_out() -> None:
    p = program(promotions=[promo("half", percent_off("10"), holdout_percent="20")]).promotions[0]

    assert "20% of members are held out as a control group." in describe_promotion(p)
    assert "20% участников не получают её (контрольная группа)." in describe_promotion(p, "ru")
