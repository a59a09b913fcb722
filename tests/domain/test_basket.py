"""Baskets, the pure part: itemsets and rules against a hand-worked textbook example and a
brute-force count over every subset of small random data."""

from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.domain import basket as b

# Tan, Steinbach & Kumar, "Introduction to Data Mining", table 6.1 (the market basket).
TEXTBOOK = [
    ["bread", "milk"],
    ["bread", "diapers", "beer", "eggs"],
    ["milk", "diapers", "beer", "cola"],
    ["bread", "milk", "diapers", "beer"],
    ["bread", "milk", "diapers", "cola"],
]


def _rule(m: b.Mined, a: str, c: str) -> b.Rule:
    found = [
        r for r in m.rules if b.items_text(r.antecedents) == a and b.items_text(r.consequents) == c
    ]
    assert len(found) == 1, (a, c)
    return found[0]


def test_textbook_itemsets_are_those_in_two_of_five_receipts() -> None:
    m = b.mine(TEXTBOOK, b.Params(0.4, 0.6, 3))

    got = {b.items_text(i.items): i.count for i in m.itemsets}

    # counted by hand: eggs (1) is out; bread+cola, beer+cola (1 each) are out
    assert got == {
        "bread": 4,
        "milk": 4,
        "diapers": 4,
        "beer": 3,
        "cola": 2,
        "bread milk": 3,
        "bread diapers": 3,
        "beer bread": 2,
        "diapers milk": 3,
        "beer milk": 2,
        "cola milk": 2,
        "beer diapers": 3,
        "cola diapers": 2,
        "bread diapers milk": 2,
        "beer bread diapers": 2,
        "beer diapers milk": 2,
        "cola diapers milk": 2,
    }
    assert m.receipts == 5
    assert m.itemsets[0].support == pytest.approx(0.8)


def test_textbook_rule_milk_diapers_then_beer() -> None:
    m = b.mine(TEXTBOOK, b.Params(0.4, 0.6, 3))

    r = _rule(m, "diapers milk", "beer")

    assert r.support == pytest.approx(2 / 5)
    assert r.confidence == pytest.approx(2 / 3)
    assert r.lift == pytest.approx((2 / 3) / (3 / 5))  # 10/9


def test_textbook_multi_item_consequent_and_confidence_cut() -> None:
    m = b.mine(TEXTBOOK, b.Params(0.4, 0.6, 3))

    beer = _rule(m, "beer", "diapers milk")  # 2 of the 3 beer receipts
    texts = {(b.items_text(r.antecedents), b.items_text(r.consequents)) for r in m.rules}

    assert beer.confidence == pytest.approx(2 / 3)
    assert beer.lift == pytest.approx((2 / 3) / (3 / 5))
    assert ("diapers", "beer milk") not in texts  # 2 of 4: 0.5 < 0.6
    assert ("cola", "diapers milk") in texts  # 2 of 2
    assert _rule(m, "cola", "diapers milk").lift == pytest.approx(1 / (3 / 5))


def test_max_len_two_keeps_pairs_only() -> None:
    m = b.mine(TEXTBOOK, b.Params(0.4, 0.0, 2))

    assert max(len(i.items) for i in m.itemsets) == 2
    assert all(len(r.antecedents) + len(r.consequents) == 2 for r in m.rules)
    # 8 frequent pairs, two directions each
    assert len(m.rules) == 16


def test_rules_are_ordered_by_lift_then_confidence_then_support() -> None:
    m = b.mine(TEXTBOOK, b.Params(0.4, 0.0, 3))

    keys = [(-r.lift, -r.confidence, -r.support) for r in m.rules]

    assert keys == sorted(keys)


def test_a_sku_on_two_lines_counts_once() -> None:
    m = b.mine([["a", "a", "b"], ["a"], ["b"]], b.Params(0.5, 0.0, 2))

    got = {b.items_text(i.items): i.count for i in m.itemsets}

    assert got == {"a": 2, "b": 2}


def test_nothing_frequent_still_counts_the_receipts() -> None:
    m = b.mine([["a"], ["b"], ["c"]], b.Params(0.5, 0.0, 3))

    assert (m.receipts, m.itemsets, m.rules) == (3, [], [])


@pytest.mark.parametrize(
    ("s", "c", "k", "field"),
    [
        ("0", "0.5", "3", "min_support"),
        ("1.5", "0.5", "3", "min_support"),
        ("abc", "0.5", "3", "min_support"),
        ("0.1", "-0.1", "3", "min_confidence"),
        ("0.1", "nan", "3", "min_confidence"),
        ("0.1", "0.5", "1", "max_len"),
        ("0.1", "0.5", "x", "max_len"),
    ],
)
def test_bad_thresholds_name_their_field(s: str, c: str, k: str, field: str) -> None:
    with pytest.raises(b.Invalid) as exc:
        b.parse_params(s, c, k)

    assert exc.value.field == field


def test_numbers_are_plain_decimals() -> None:
    assert b.number_text(0.25) == "0.25"
    assert b.number_text(1 / 3) == "0.3333333333333333"
    assert b.number_text(2e-05) == "0.00002"
    assert b.number_text(10.0) == "10.0"


def test_suggest_one_sku_not_in_the_basket_whose_antecedents_all_are() -> None:
    rules = [
        b.Rule(("a",), ("b",), 1, 0.1, 0.5, 3.0),
        b.Rule(("a",), ("c",), 1, 0.1, 0.5, 2.0),
        b.Rule(("a", "x"), ("d",), 1, 0.1, 0.9, 9.0),  # x is not in the basket
        b.Rule(("c",), ("e",), 1, 0.1, 0.5, 5.0),
        b.Rule(("a",), ("e",), 1, 0.1, 0.5, 1.5),  # e again, lower lift
        b.Rule(("a",), ("f",), 1, 0.1, 0.5, 1.1),
        b.Rule(("a",), ("g", "h"), 1, 0.1, 0.5, 8.0),  # two SKUs: not a suggestion
        b.Rule(("c",), ("k",), 1, 0.1, 0.9, 1.0),  # lift 1: no association
    ]

    got = b.suggest(rules, ["a", "c"])

    assert [(r.consequents, r.lift) for r in got] == [(("e",), 5.0), (("b",), 3.0), (("f",), 1.1)]


# --- against a brute force count over every subset ---------------------------------------

ITEMS = ["p", "q", "r", "s", "t"]


def _brute(txs: list[set[str]], s: float, c: float, k: int) -> dict[tuple[str, str], tuple]:
    n = len(txs)

    def count(xs: tuple[str, ...]) -> int:
        return sum(1 for tx in txs if set(xs) <= tx)

    out = {}
    for size in range(2, k + 1):
        for full in combinations(ITEMS, size):
            if count(full) / n < s:
                continue
            for cut in range(1, size):
                for ante in combinations(full, cut):
                    cons = tuple(x for x in full if x not in ante)
                    conf = count(full) / count(ante)
                    if conf >= c:
                        lift = conf / (count(cons) / n)
                        out[(" ".join(ante), " ".join(cons))] = (count(full) / n, conf, lift)
    return out


@settings(max_examples=150, deadline=None)
@given(
    txs=st.lists(st.sets(st.sampled_from(ITEMS), min_size=1), min_size=1, max_size=25),
    s=st.sampled_from([0.05, 0.1, 0.2, 0.3, 0.5]),
    c=st.sampled_from([0.0, 0.3, 0.5, 0.8, 1.0]),
    k=st.integers(min_value=2, max_value=5),
)
def test_rules_equal_a_brute_force_count(txs: list[set[str]], s: float, c: float, k: int) -> None:
    m = b.mine(txs, b.Params(s, c, k))

    got = {
        (b.items_text(r.antecedents), b.items_text(r.consequents)): (
            r.support,
            r.confidence,
            r.lift,
        )
        for r in m.rules
    }
    want = _brute(txs, s, c, k)

    assert got.keys() == want.keys()
    for key, (sup, conf, lift) in want.items():
        assert got[key] == pytest.approx((sup, conf, lift))
