"""Properties of the rules engine for random programs and random baskets.

Programs of every type with up to eight random promotions (every condition family and
every effect kind, random lines filters, priorities, groups, exclusivity, caps and
budgets), random price floors and a random ``max_discount_percent``; baskets of 1-8
lines of piece and weight goods, some with the POS's own discount; members of random
tiers with random balances, or no card.
"""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kopilka.domain.money import q2
from kopilka.domain.receipt import Basket, BasketLine, PricedLine, PricedReceipt
from kopilka.domain.rules.compiler import CompiledProgram, compile_program
from kopilka.domain.rules.engine import price_receipt
from kopilka.domain.rules.facts import BudgetLeft, CustomerContext, StoreContext
from kopilka.domain.rules.model import validate_document
from tests.domain.rules.kit import NOW

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ZERO = Decimal("0")
SKUS = ["a", "b", "c", "d", "e", "f"]
CATEGORIES = ["cheese", "milk", "dairy", "meat", "food"]
TREE = [
    {"code": "food"},
    {"code": "dairy", "parent": "food"},
    {"code": "cheese", "parent": "dairy"},
    {"code": "milk", "parent": "dairy"},
    {"code": "meat", "parent": "food"},
]
STORE = StoreContext("s1", "p1", "Moscow", "msk")


def money(lo: int, hi: int) -> st.SearchStrategy[str]:
    """An amount in kopecks from ``lo`` to ``hi``, as the string a document holds."""
    return st.integers(lo, hi).map(lambda n: str(Decimal(n) / 100))


percents = st.integers(0, 10_000).map(lambda n: str(Decimal(n) / 100))
some_skus = st.lists(st.sampled_from(SKUS), min_size=1, max_size=3, unique=True)
some_cats = st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True)

line_filters = st.one_of(
    st.fixed_dictionaries({"sku": some_skus}),
    st.fixed_dictionaries({"category": some_cats}),
    st.fixed_dictionaries({"sku_list": st.just(["list1"])}),
    st.fixed_dictionaries({"brand": st.just(["acme"])}),
    st.fixed_dictionaries({"not": st.fixed_dictionaries({"sku": some_skus})}),
    st.fixed_dictionaries(
        {
            "any": st.tuples(
                st.fixed_dictionaries({"sku": some_skus}),
                st.fixed_dictionaries({"category": some_cats}),
            ).map(list)
        }
    ),
)

receipt_conditions = st.one_of(
    line_filters,
    st.fixed_dictionaries({"store": st.sampled_from([["s1"], ["s2"], ["s1", "s2"]])}),
    st.fixed_dictionaries({"weekday": st.sampled_from([["mon"], ["sat", "sun"]])}),
    st.fixed_dictionaries({"hours": st.sampled_from([["10:00-14:00"], ["22:00-02:00"]])}),
    st.fixed_dictionaries({"member": st.booleans()}),
    st.fixed_dictionaries({"tier": st.sampled_from([["silver"], ["gold", "silver"]])}),
    st.fixed_dictionaries({"coupon": st.sampled_from([True, False, ["WINTER"]])}),
    st.fixed_dictionaries(
        {
            "basket": st.fixed_dictionaries(
                {"amount": st.fixed_dictionaries({"min": money(0, 300_000)})}
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "basket": st.fixed_dictionaries(
                {
                    "quantity": st.fixed_dictionaries({"min": st.sampled_from(["1", "3", "5"])}),
                    "lines": line_filters,
                }
            )
        }
    ),
)

effects = st.one_of(
    st.fixed_dictionaries({"kind": st.just("line_discount"), "percent": percents}),
    st.fixed_dictionaries({"kind": st.just("line_discount"), "amount": money(0, 100_000)}),
    st.fixed_dictionaries({"kind": st.just("basket_discount"), "percent": percents}),
    st.fixed_dictionaries({"kind": st.just("basket_discount"), "amount": money(0, 500_000)}),
    st.fixed_dictionaries({"kind": st.just("price_override"), "price": money(0, 300_000)}),
    st.integers(2, 6).flatmap(
        lambda every: st.fixed_dictionaries(
            {
                "kind": st.just("cheapest_free"),
                "every": st.just(every),
                "free": st.integers(1, every - 1),
            }
        )
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("bundle_price"),
            "items": st.lists(
                st.one_of(
                    st.fixed_dictionaries({"sku": some_skus, "quantity": st.integers(1, 3)}),
                    st.fixed_dictionaries({"category": some_cats, "quantity": st.integers(1, 3)}),
                ),
                min_size=1,
                max_size=3,
            ),
            "price": money(0, 500_000),
        }
    ),
    st.fixed_dictionaries({"kind": st.just("earn_percent"), "percent": percents}),
    st.fixed_dictionaries(
        {"kind": st.just("earn_multiplier"), "factor": st.sampled_from(["0.5", "2", "3.5"])}
    ),
    st.fixed_dictionaries({"kind": st.just("fixed_points"), "points": money(0, 50_000)}),
    st.fixed_dictionaries({"kind": st.just("points_per_unit"), "points": money(0, 5_000)}),
    st.just({"kind": "gift", "sku": "bag", "name": "Bag"}),
    st.just({"kind": "receipt_message", "text": "Thanks"}),
    st.just({"kind": "cashier_message", "text": "Hand the bag"}),
)


@st.composite
def promotions(draw: st.DrawFn, pid: str) -> dict[str, Any]:
    p: dict[str, Any] = {
        "id": pid,
        "name": pid,
        "effects": draw(st.lists(effects, min_size=1, max_size=3)),
        "priority": draw(st.integers(-3, 3)),
    }
    if draw(st.booleans()):
        p["when"] = draw(receipt_conditions)
    if draw(st.booleans()):
        p["lines"] = draw(line_filters)
    group = draw(st.sampled_from([None, None, "g1", "g2", "g3"]))
    if group:
        p["group"] = group
    if draw(st.integers(0, 4)) == 0:
        p["exclusive"] = True
    if draw(st.integers(0, 3)) == 0:
        p["max_discount"] = draw(money(0, 100_000))
    if draw(st.integers(0, 4)) == 0:
        p["budget"] = draw(
            st.sampled_from([{"money": "500"}, {"points": "100"}, {"money": "50", "points": "10"}])
        )
    return p


@st.composite
def programs(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["bonus", "discount", "cumulative", "mixed"]))
    doc: dict[str, Any] = {
        "code": "random",
        "name": "Random",
        "type": kind,
        "categories": TREE,
        "sku_lists": {"list1": draw(some_skus)},
        "brands": {"acme": draw(some_skus)},
        "earn_on": draw(st.sampled_from(["paid", "before_discount"])),
        "points": {
            "earn_percent": draw(percents),
            "burn_max_percent": draw(percents),
            "point_value": draw(st.sampled_from(["1", "0.5", "0.1", "2"])),
            "points_step": draw(st.sampled_from(["1", "0.01"])),
            "earn_rounding": draw(st.sampled_from(["floor", "half_up"])),
            "min_payment": draw(money(0, 10_000)),
        },
        "stacking": {
            "groups": {"g1": {"mode": "best"}, "g2": {"mode": "first"}, "g3": {"mode": "stack"}},
            "default_group_mode": draw(st.sampled_from(["best", "first", "stack"])),
            "exclusive": draw(st.sampled_from(["best", "first"])),
        },
        "tiers": {
            "levels": [
                {"code": "base", "name": "Base", "threshold": "0"},
                {
                    "code": "silver",
                    "name": "Silver",
                    "threshold": "1000",
                    "earn_percent": draw(percents),
                    "burn_max_percent": draw(percents),
                },
                {
                    "code": "gold",
                    "name": "Gold",
                    "threshold": "5000",
                    "discount_percent": draw(percents),
                },
            ]
        },
    }
    if kind in ("discount", "mixed") or draw(st.booleans()):
        doc["discount"] = {
            "percent": draw(percents),
            "groups": {"staff": draw(percents)},
        }
        if draw(st.booleans()):
            doc["discount"]["exclude"] = draw(line_filters)
    if kind == "cumulative":
        doc["cumulative"] = {
            "levels": [{"from": "0", "percent": "3"}, {"from": "1000", "percent": "7"}]
        }
    floors = draw(
        st.lists(
            st.one_of(
                st.fixed_dictionaries({"sku": some_skus, "min_price": money(0, 300_000)}),
                st.fixed_dictionaries({"category": some_cats, "min_price": money(0, 300_000)}),
            ),
            max_size=3,
        )
    )
    if floors:
        doc["price_floors"] = floors
    if draw(st.booleans()):
        doc["max_discount_percent"] = draw(percents)
    count = draw(st.integers(0, 8))
    doc["promotions"] = [draw(promotions(f"p{i}")) for i in range(count)]
    return doc


@st.composite
def basket_lines(draw: st.DrawFn) -> BasketLine:
    sku = draw(st.sampled_from(SKUS))
    category = draw(st.sampled_from([*CATEGORIES, None]))
    if draw(st.booleans()):
        quantity = Decimal(draw(st.integers(1, 6)))
    else:
        quantity = Decimal(draw(st.integers(1, 5_000))) / 1000
    unit_price = Decimal(draw(st.integers(0, 500_000))) / 100
    amount = q2(quantity * unit_price)
    discount = ZERO
    if draw(st.integers(0, 3)) == 0:
        discount = Decimal(draw(st.integers(0, int(amount * 100)))) / 100
    return BasketLine(sku, f"item {sku}", category, quantity, unit_price, discount)


@st.composite
def customers(draw: st.DrawFn) -> CustomerContext | None:
    if draw(st.integers(0, 4)) == 0:
        return None
    return CustomerContext(
        1,
        Decimal(draw(st.integers(0, 1_000_000))) / 100,
        tier=draw(st.sampled_from([None, "base", "silver", "gold"])),
        tags=draw(st.sampled_from([frozenset(), frozenset({"staff"})])),
        discount_percent=draw(st.sampled_from([None, Decimal("3"), Decimal("7")])),
    )


@st.composite
def situations(
    draw: st.DrawFn,
) -> tuple[CompiledProgram, Basket, CustomerContext | None, dict[str, BudgetLeft]]:
    doc = validate_document(draw(programs()))
    lines = tuple(draw(st.lists(basket_lines(), min_size=1, max_size=8)))
    customer = draw(customers())
    redeem = None
    if customer is not None and doc.points_enabled():
        redeem = draw(st.sampled_from([None, "max"]))
    basket = Basket(
        lines,
        redeem_points=redeem,
        coupons=draw(st.sampled_from([(), ("winter",), ("X",)])),
        gift_card_payment=draw(st.booleans()),
    )
    budgets = {}
    for p in doc.promotions:
        if p.budget is not None and draw(st.booleans()):
            budgets[p.id] = BudgetLeft(
                money=Decimal(draw(st.integers(0, 100_000))) / 100,
                points=Decimal(draw(st.integers(0, 10_000))) / 100,
            )
    return compile_program(doc), basket, customer, budgets


def priced(
    compiled: CompiledProgram,
    basket: Basket,
    customer: CustomerContext | None,
    budgets: dict[str, BudgetLeft],
    **keys: Any,
) -> PricedReceipt:
    return price_receipt(basket, customer, compiled, NOW, store=STORE, budgets=budgets, **keys)


def figures(x: PricedLine | PricedReceipt) -> tuple[Decimal, ...]:
    return (x.amount, x.discount, x.points_redeemed, x.redeemed_value, x.to_pay, x.points_earned)


Situation = tuple[CompiledProgram, Basket, CustomerContext | None, dict[str, BudgetLeft]]


@PROPERTY
@given(situations())
def test_discount_stays_within_the_line_and_to_pay_is_never_negative(s: Situation) -> None:
    receipt = priced(*s)

    for x in receipt.lines:
        assert 0 <= x.discount <= x.amount
        assert 0 <= x.redeemed_value <= x.amount - x.discount
        assert x.to_pay >= 0
        assert x.to_pay == x.amount - x.discount - x.redeemed_value
        assert x.points_earned >= 0
    assert receipt.to_pay >= 0


@PROPERTY
@given(situations())
def test_no_line_is_sold_below_its_floor_unless_the_pos_already_did(s: Situation) -> None:
    compiled, basket, _, _ = s

    receipt = priced(*s)

    for bl, x in zip(basket.lines, receipt.lines, strict=True):
        lf = compile_facts(compiled, bl)
        floor = q2(compiled.floor_of(lf) * bl.quantity)
        net = x.amount - x.discount
        assert net >= min(floor, x.amount - bl.discount)


def compile_facts(compiled: CompiledProgram, bl: BasketLine) -> Any:
    from kopilka.domain.rules.compiler import LineFacts

    return LineFacts(bl.sku, compiled.ancestors(bl.category), bl.quantity, bl.amount)


@PROPERTY
@given(situations())
def test_lines_add_up_to_the_receipt_to_the_kopeck(s: Situation) -> None:
    receipt = priced(*s)

    sums = [sum(col, ZERO) for col in zip(*(figures(x) for x in receipt.lines), strict=True)]
    assert sums == list(figures(receipt))


@PROPERTY
@given(situations())
def test_what_applied_adds_up_to_the_discount_and_the_points(s: Situation) -> None:
    _, basket, _, _ = s
    pos = sum((ln.discount for ln in basket.lines), ZERO)

    receipt = priced(*s)

    given_away = sum((a.discount for a in receipt.applied if a.rule != "redeem"), ZERO)
    earned = sum((a.points for a in receipt.applied if a.rule != "redeem"), ZERO)
    assert given_away == receipt.discount - pos
    assert earned == receipt.points_earned
    for bl, x in zip(basket.lines, receipt.lines, strict=True):
        assert sum((a.discount for a in x.applied if a.rule != "redeem"), ZERO) == (
            x.discount - bl.discount
        )
        assert sum((a.points for a in x.applied if a.rule != "redeem"), ZERO) == x.points_earned


@PROPERTY
@given(situations())
def test_the_discount_stays_within_max_discount_percent(s: Situation) -> None:
    compiled, basket, _, _ = s
    cap_percent = compiled.doc.max_discount_percent
    pos = sum((ln.discount for ln in basket.lines), ZERO)

    receipt = priced(*s)

    if cap_percent is not None:
        cap = q2(receipt.amount * cap_percent / 100)
        assert receipt.discount <= max(cap, pos)


@PROPERTY
@given(situations(), st.randoms(use_true_random=False))
def test_the_order_of_the_lines_does_not_matter(s: Situation, rnd: random.Random) -> None:
    compiled, basket, customer, budgets = s
    shuffled = list(basket.lines)
    rnd.shuffle(shuffled)

    first = priced(compiled, basket, customer, budgets)
    second = priced(compiled, Basket(tuple(shuffled), *_rest(basket)), customer, budgets)

    def by_content(b: Basket, r: PricedReceipt) -> Counter[tuple[Any, ...]]:
        return Counter(
            (bl, figures(x), tuple(sorted((a.rule, a.discount, a.points) for a in x.applied)))
            for bl, x in zip(b.lines, r.lines, strict=True)
        )

    assert figures(first) == figures(second)
    assert by_content(basket, first) == by_content(Basket(tuple(shuffled)), second)
    assert sorted(first.applied, key=repr) == sorted(second.applied, key=repr)


def _rest(b: Basket) -> tuple[Any, ...]:
    return (b.redeem_points, b.occurred_at, b.coupons, b.gift_card_payment)


@PROPERTY
@given(situations())
def test_asking_why_changes_nothing(s: Situation) -> None:
    plain = priced(*s)
    explained = priced(*s, explain=True)

    assert figures(plain) == figures(explained)
    assert [figures(x) for x in plain.lines] == [figures(x) for x in explained.lines]
    assert plain.applied == explained.applied
    # With no promotions at all there is nothing to explain (None).
    assert set(explained.explanations or {}) == {p.id for p in s[0].promotions}
