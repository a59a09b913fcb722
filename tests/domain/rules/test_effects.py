"""Each effect, program type, floor, cap and budget by a worked example computed by hand.

Unless a row says otherwise: a bonus program earning 5% of the paid amount, floored to
whole points, at most 30% of a receipt paid with points, a point worth 1 rouble; the
promotion ``P`` applies to every line; the customer is a member with no points.
Every row states the per-line discount, to_pay and points earned, and the receipt's
totals; the arithmetic is in the row's comment.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from kopilka.domain.receipt import BasketLine
from kopilka.domain.rules.facts import BudgetLeft, CustomerContext
from tests.domain.rules.kit import column, line, member, percent_off, price, program, promo

MEMBER = member()
TIERS = {
    "levels": [
        {"code": "base", "name": "Base", "threshold": "0"},
        {
            "code": "gold",
            "name": "Gold",
            "threshold": "50000",
            "earn_percent": "7",
            "burn_max_percent": "50",
        },
        {"code": "vip", "name": "VIP", "threshold": "150000", "discount_percent": "3"},
    ]
}
DAIRY = [
    {"code": "food"},
    {"code": "dairy", "parent": "food"},
    {"code": "cheese", "parent": "dairy"},
]


@dataclass(frozen=True)
class Case:
    doc: dict[str, Any]
    lines: tuple[BasketLine, ...]
    discount: list[str]
    to_pay: list[str]
    points: list[str]  # per line
    earned: str  # the receipt's points
    customer: CustomerContext | None = MEMBER
    basket: tuple[tuple[str, Any], ...] = ()


def one(*effects: dict[str, Any], **keys: Any) -> dict[str, Any]:
    """A document with the single promotion ``P``."""
    doc_keys = {k: keys.pop(k) for k in list(keys) if k not in PROMOTION_KEYS}
    return {"promotions": [promo("P", *effects, **keys)], **doc_keys}


PROMOTION_KEYS = {"lines", "when", "budget", "max_discount", "group", "priority"}
NONE = ["0.00"]

CASES = [
    pytest.param(
        Case(
            one(percent_off("15")),
            (line("a", "2", "149.90"),),
            # 299.80 x 15% = 44.97; 254.83 x 5% = 12.7415 -> 12
            ["44.97"],
            ["254.83"],
            ["12.00"],
            "12",
        ),
        id="line-discount-percent",
    ),
    pytest.param(
        Case(
            one({"kind": "line_discount", "amount": "30"}),
            (line("a", "3", "99.90"),),
            # 30.00 per piece x 3 = 90.00; 209.70 x 5% = 10.485 -> 10
            ["90.00"],
            ["209.70"],
            ["10.00"],
            "10",
        ),
        id="line-discount-amount-per-piece",
    ),
    pytest.param(
        Case(
            one(percent_off("20")),
            (line("cheese", "0.352", "899.00"),),
            # 0.352 kg x 899.00 = 316.448 -> 316.45; 20% = 63.29; 253.16 x 5% = 12.658 -> 12
            ["63.29"],
            ["253.16"],
            ["12.00"],
            "12",
        ),
        id="weight-goods-line-discount-percent",
    ),
    pytest.param(
        Case(
            one({"kind": "line_discount", "amount": "100"}),
            (line("cheese", "0.352", "899.00"),),
            # 100.00 per kg x 0.352 = 35.20; 316.45 - 35.20 = 281.25; x 5% = 14.0625 -> 14
            ["35.20"],
            ["281.25"],
            ["14.00"],
            "14",
        ),
        id="weight-goods-line-discount-amount-per-kg",
    ),
    pytest.param(
        Case(
            one({"kind": "line_discount", "amount": "150"}),
            (line("a", "1", "99.90"),),
            # 150.00 off a 99.90 line: never more than the line
            ["99.90"],
            ["0.00"],
            ["0.00"],
            "0",
        ),
        id="line-discount-never-exceeds-the-line",
    ),
    pytest.param(
        Case(
            one({"kind": "basket_discount", "amount": "100"}),
            (line("a", "1", "300.00"), line("b", "2", "100.00"), line("c", "1", "500.00")),
            # 100.00 over 300 : 200 : 500 -> 30.00, 20.00, 50.00
            ["30.00", "20.00", "50.00"],
            ["270.00", "180.00", "450.00"],
            [],
            "0",
            customer=None,
        ),
        id="basket-discount-amount-spread-by-line",
    ),
    pytest.param(
        Case(
            one({"kind": "basket_discount", "amount": "100"}),
            (line("b", "1", "100.00"), line("c", "1", "100.00"), line("a", "1", "100.00")),
            # 10000 kopecks / 3 = 3333 each, 1 left over: to the first by content (a),
            # wherever it stands in the basket
            ["33.33", "33.33", "33.34"],
            ["66.67", "66.67", "66.66"],
            [],
            "0",
            customer=None,
        ),
        id="basket-discount-largest-remainder-by-content",
    ),
    pytest.param(
        Case(
            one(
                {"kind": "basket_discount", "percent": "10"},
                lines={"category": ["dairy"]},
                categories=DAIRY,
            ),
            (
                line("m1", "1", "89.90", "dairy"),
                line("c1", "1", "45.50", "cheese"),
                line("x", "1", "1000.00"),
            ),
            # 10% of (89.90 + 45.50 = 135.40) = 13.54, spread 8990 : 4550 -> 8.99, 4.55
            ["8.99", "4.55", "0.00"],
            ["80.91", "40.95", "1000.00"],
            [],
            "0",
            customer=None,
        ),
        id="basket-discount-percent-on-a-category-and-its-children",
    ),
    pytest.param(
        Case(
            one({"kind": "basket_discount", "amount": "500"}),
            (line("a", "1", "120.00"), line("b", "1", "80.00")),
            # 500.00 off a 200.00 basket: everything, nothing more
            ["120.00", "80.00"],
            ["0.00", "0.00"],
            [],
            "0",
            customer=None,
        ),
        id="basket-discount-never-exceeds-the-basket",
    ),
    pytest.param(
        Case(
            one({"kind": "price_override", "price": "79.90"}),
            (line("milk", "2", "99.90"), line("kefir", "1", "59.90")),
            # milk: 199.80 -> 2 x 79.90 = 159.80, 40.00 off; kefir is cheaper already
            ["40.00", "0.00"],
            ["159.80", "59.90"],
            [],
            "0",
            customer=None,
        ),
        id="price-override-never-raises-a-price",
    ),
    pytest.param(
        Case(
            one({"kind": "price_override", "price": "799.00"}),
            (line("cheese", "0.352", "899.00"),),
            # 316.45 -> 0.352 x 799.00 = 281.248 -> 281.25; 35.20 off
            ["35.20"],
            ["281.25"],
            [],
            "0",
            customer=None,
        ),
        id="price-override-weight-goods",
    ),
    pytest.param(
        Case(
            one({"kind": "cheapest_free", "every": 3}),
            (
                line("a", "1", "300.00"),
                line("b", "2", "200.00"),
                line("c", "2", "120.00"),
                line("d", "1", "90.00"),
            ),
            # 6 pieces -> 2 free: the cheapest, d (90.00) and one c (120.00)
            ["0.00", "0.00", "120.00", "90.00"],
            ["300.00", "400.00", "120.00", "0.00"],
            [],
            "0",
            customer=None,
        ),
        id="three-for-two-cheapest-free-over-several-lines",
    ),
    pytest.param(
        Case(
            one({"kind": "cheapest_free", "every": 3}),
            (line("a", "1", "300.00"), line("b", "2", "200.00"), line("c", "2", "120.00")),
            # 5 pieces -> 1 free: one c
            ["0.00", "0.00", "120.00"],
            ["300.00", "400.00", "120.00"],
            [],
            "0",
            customer=None,
        ),
        id="three-for-two-five-pieces-one-free",
    ),
    pytest.param(
        Case(
            one({"kind": "cheapest_free", "every": 5, "free": 2}),
            (line("a", "5", "100.00"), line("b", "5", "60.00")),
            # "3+2": 10 pieces -> 4 free, all b: 4 x 60.00 = 240.00
            ["0.00", "240.00"],
            ["500.00", "60.00"],
            [],
            "0",
            customer=None,
        ),
        id="n-plus-m-free",
    ),
    pytest.param(
        Case(
            one({"kind": "cheapest_free", "every": 3}),
            (line("a", "2", "100.00"), line("w", "0.352", "50.00"), line("b", "1", "80.00")),
            # weight goods are not pieces: 3 pieces (a, a, b), b free; w not counted
            ["0.00", "0.00", "80.00"],
            ["200.00", "17.60", "0.00"],
            [],
            "0",
            customer=None,
        ),
        id="cheapest-free-counts-pieces-not-kilograms",
    ),
    pytest.param(
        Case(
            one({"kind": "cheapest_free", "every": 3}),
            (
                line("a", "1", "100.00"),
                line("b", "1", "100.00"),
                line("c", "1", "100.00", discount="30.00"),
            ),
            # c is cheapest after the POS's discount (70.00): free; its discount 30 + 70
            ["0.00", "0.00", "100.00"],
            ["100.00", "100.00", "0.00"],
            [],
            "0",
            customer=None,
        ),
        id="cheapest-free-after-the-pos-discount",
    ),
    pytest.param(
        Case(
            one(
                {
                    "kind": "bundle_price",
                    "items": [{"sku": ["c1"]}, {"category": ["dairy"], "quantity": 2}],
                    "price": "399.00",
                },
                categories=DAIRY,
            ),
            (line("c1", "1", "299.00"), line("m1", "3", "89.90", "dairy")),
            # one set: c1 299.00 + 2 x 89.90 = 478.80 for 399.00 -> 79.80 off, spread over
            # 29900 : 17980 -> 4983.33 : 2996.67 -> 4983 + 2997 (larger remainder)
            ["49.83", "29.97"],
            ["249.17", "239.73"],
            [],
            "0",
            customer=None,
        ),
        id="bundle-price-one-set",
    ),
    pytest.param(
        Case(
            one(
                {
                    "kind": "bundle_price",
                    "items": [{"sku": ["c1"]}, {"category": ["dairy"], "quantity": 2}],
                    "price": "399.00",
                },
                categories=DAIRY,
            ),
            (line("c1", "2", "299.00"), line("m1", "4", "89.90", "cheese")),
            # two sets: 598.00 + 359.60 = 957.60 for 798.00 -> 159.60 over 59800 : 35960
            # -> 9966.67 : 5993.33 -> 9967 + 5993
            ["99.67", "59.93"],
            ["498.33", "299.67"],
            [],
            "0",
            customer=None,
        ),
        id="bundle-price-two-sets-child-category",
    ),
    pytest.param(
        Case(
            one(
                {
                    "kind": "bundle_price",
                    "items": [{"sku": ["c1"]}, {"sku": ["m1"], "quantity": 2}],
                    "price": "399.00",
                }
            ),
            (line("c1", "1", "299.00"), line("m1", "1", "89.90")),
            # an incomplete set: nothing
            ["0.00", "0.00"],
            ["299.00", "89.90"],
            [],
            "0",
            customer=None,
        ),
        id="bundle-price-incomplete-set",
    ),
    pytest.param(
        Case(
            one({"kind": "earn_percent", "percent": "10"}, lines={"sku": ["cheese"]}),
            (line("cheese", "1", "200.00"), line("bread", "1", "50.00")),
            # 200.00 x 10% = 20 + 50.00 x 5% = 2.5 -> 22.5 -> 22; spread 20 : 2.5
            # -> 19.555 : 2.444 -> 19.56 + 2.44
            ["0.00", "0.00"],
            ["200.00", "50.00"],
            ["19.56", "2.44"],
            "22",
        ),
        id="earn-percent-on-some-lines",
    ),
    pytest.param(
        Case(
            one({"kind": "earn_percent", "percent": "0"}, lines={"sku": ["tobacco"]}),
            (line("tobacco", "1", "200.00"), line("bread", "1", "100.00")),
            # no points on tobacco: 0 + 100.00 x 5% = 5
            ["0.00", "0.00"],
            ["200.00", "100.00"],
            ["0.00", "5.00"],
            "5",
        ),
        id="earn-percent-zero-takes-the-base-rate-away",
    ),
    pytest.param(
        Case(
            one({"kind": "earn_multiplier", "factor": "2"}),
            (line("a", "1", "1234.50"),),
            # 5% x 2 = 10% of 1234.50 = 123.45 -> 123
            ["0.00"],
            ["1234.50"],
            ["123.00"],
            "123",
        ),
        id="earn-multiplier",
    ),
    pytest.param(
        Case(
            one({"kind": "fixed_points", "points": "100"}),
            (line("a", "1", "300.00"), line("b", "1", "100.00")),
            # base 15 + 5; 100 points over to_pay 300 : 100 -> 75 + 25; 90 + 30 = 120
            ["0.00", "0.00"],
            ["300.00", "100.00"],
            ["90.00", "30.00"],
            "120",
        ),
        id="fixed-points-spread-over-lines",
    ),
    pytest.param(
        Case(
            one({"kind": "points_per_unit", "points": "10"}, lines={"sku": ["a"]}),
            (line("a", "3", "50.00"), line("b", "1", "100.00")),
            # per unit exact: a 3 x 10 = 30; rates 7.5 + 5 = 12.5 -> 12, spread 7.5 : 5
            # -> 7.20 + 4.80; a = 37.20, b = 4.80, 42 in all
            ["0.00", "0.00"],
            ["150.00", "100.00"],
            ["37.20", "4.80"],
            "42",
        ),
        id="points-per-piece",
    ),
    pytest.param(
        Case(
            one({"kind": "points_per_unit", "points": "10"}),
            (line("w", "0.352", "1000.00"),),
            # 0.352 kg x 10 = 3.52 + 352.00 x 5% = 17.6 -> 21.12 -> 21
            ["0.00"],
            ["352.00"],
            ["21.00"],
            "21",
        ),
        id="points-per-kilogram",
    ),
    pytest.param(
        Case(
            one({"kind": "earn_multiplier", "factor": "3"}),
            (line("a", "1", "1000.00"),),
            # a non-member earns nothing, promotions or not
            ["0.00"],
            ["1000.00"],
            ["0.00"],
            "0",
            customer=None,
        ),
        id="no-points-for-a-non-member",
    ),
    # --- tiers ---------------------------------------------------------------------
    pytest.param(
        Case(
            {"tiers": TIERS},
            (line("a", "1", "1000.00"),),
            # gold earns 7%: 70
            ["0.00"],
            ["1000.00"],
            ["70.00"],
            "70",
            customer=member("1000", tier="gold"),
        ),
        id="tier-earn-rate",
    ),
    pytest.param(
        Case(
            {"tiers": TIERS},
            (line("a", "1", "1000.00"),),
            # gold may pay 50% with points: 500; earns 7% of 500.00 = 35
            ["0.00"],
            ["500.00"],
            ["35.00"],
            "35",
            customer=member("1000", tier="gold"),
            basket=(("redeem_points", "max"),),
        ),
        id="tier-burn-limit",
    ),
    pytest.param(
        Case(
            {"tiers": TIERS},
            (line("a", "1", "1000.00"),),
            # base tier: the program's 30%: 300; earns 5% of 700.00 = 35
            ["0.00"],
            ["700.00"],
            ["35.00"],
            "35",
            customer=member("1000", tier="base"),
            basket=(("redeem_points", "max"),),
        ),
        id="base-tier-burn-limit",
    ),
    pytest.param(
        Case(
            {"tiers": TIERS},
            (line("a", "1", "1000.00"),),
            # vip: 3% off (30.00) and the base 5% of 970.00 = 48.5 -> 48
            ["30.00"],
            ["970.00"],
            ["48.00"],
            "48",
            customer=member(tier="vip"),
        ),
        id="tier-discount",
    ),
    # --- program types -------------------------------------------------------------
    pytest.param(
        Case(
            {"type": "discount", "discount": {"percent": "5"}},
            (line("a", "1", "1000.00"), line("b", "0.352", "899.00")),
            # 5% of 1000.00 = 50.00; of 316.45 = 15.8225 -> 15.82; no points
            ["50.00", "15.82"],
            ["950.00", "300.63"],
            ["0.00", "0.00"],
            "0",
        ),
        id="discount-program",
    ),
    pytest.param(
        Case(
            {"type": "discount", "discount": {"percent": "5", "groups": {"staff": "15"}}},
            (line("a", "1", "1000.00"),),
            # a customer in the staff group: 15%
            ["150.00"],
            ["850.00"],
            ["0.00"],
            "0",
            customer=member(tags=frozenset({"staff"})),
        ),
        id="discount-program-group-percent",
    ),
    pytest.param(
        Case(
            {
                "type": "discount",
                "discount": {"percent": "5", "exclude": {"sku_list": ["tobacco"]}},
                "sku_lists": {"tobacco": ["t1"]},
            },
            (line("t1", "1", "200.00"), line("b", "1", "100.00")),
            # no discount on tobacco
            ["0.00", "5.00"],
            ["200.00", "95.00"],
            ["0.00", "0.00"],
            "0",
        ),
        id="discount-program-excludes-a-list",
    ),
    pytest.param(
        Case(
            {"type": "discount", "discount": {"percent": "5"}},
            (line("a", "1", "1000.00"),),
            # no card, no discount
            ["0.00"],
            ["1000.00"],
            [],
            "0",
            customer=None,
        ),
        id="discount-program-non-member",
    ),
    pytest.param(
        Case(
            {
                "type": "cumulative",
                "cumulative": {
                    "levels": [{"from": "0", "percent": "3"}, {"from": "10000", "percent": "7"}]
                },
            },
            (line("a", "1", "1000.00"),),
            # his level (kept by the job): 7%
            ["70.00"],
            ["930.00"],
            ["0.00"],
            "0",
            customer=member(discount_percent=Decimal("7")),
        ),
        id="cumulative-program",
    ),
    pytest.param(
        Case(
            {"type": "mixed", "discount": {"percent": "10"}, "earn_on": "paid"},
            (line("a", "1", "1000.00"),),
            # 10% off, 5% of the 900.00 paid: 45
            ["100.00"],
            ["900.00"],
            ["45.00"],
            "45",
        ),
        id="mixed-earn-on-paid",
    ),
    pytest.param(
        Case(
            {"type": "mixed", "discount": {"percent": "10"}, "earn_on": "before_discount"},
            (line("a", "1", "1000.00"),),
            # 10% off, 5% of 1000.00 before the discount: 50
            ["100.00"],
            ["900.00"],
            ["50.00"],
            "50",
        ),
        id="mixed-earn-on-before-discount",
    ),
    pytest.param(
        Case(
            {"type": "mixed", "discount": {"percent": "10"}, "earn_on": "paid"},
            (line("a", "1", "1000.00"),),
            # 100 points pay 100.00 of the 900.00: 5% of 800.00 = 40
            ["100.00"],
            ["800.00"],
            ["40.00"],
            "40",
            customer=member("500"),
            basket=(("redeem_points", "100"),),
        ),
        id="mixed-earn-on-paid-with-points-burned",
    ),
    pytest.param(
        Case(
            {"type": "mixed", "discount": {"percent": "10"}, "earn_on": "before_discount"},
            (line("a", "1", "1000.00"),),
            # points pay 100.00: 5% of 1000.00 - 100.00 = 45 (burned points earn nothing)
            ["100.00"],
            ["800.00"],
            ["45.00"],
            "45",
            customer=member("500"),
            basket=(("redeem_points", "100"),),
        ),
        id="mixed-earn-on-before-discount-with-points-burned",
    ),
    # --- floors and caps -----------------------------------------------------------
    pytest.param(
        Case(
            one(percent_off("10"), price_floors=[{"sku": ["a"], "min_price": "95.00"}]),
            (line("a", "1", "100.00"),),
            # 10.00 wanted, the floor leaves room for 5.00
            ["5.00"],
            ["95.00"],
            [],
            "0",
            customer=None,
        ),
        id="price-floor-by-sku",
    ),
    pytest.param(
        Case(
            one(
                percent_off("50"),
                categories=DAIRY,
                price_floors=[{"category": ["dairy"], "min_price": "80.00"}],
            ),
            (line("c", "0.352", "100.00", "cheese"),),
            # 35.20; floor 0.352 x 80.00 = 28.16; 50% = 17.60 wanted, 7.04 room
            ["7.04"],
            ["28.16"],
            [],
            "0",
            customer=None,
        ),
        id="price-floor-by-parent-category-weight-goods",
    ),
    pytest.param(
        Case(
            one(percent_off("10"), price_floors=[{"sku": ["a"], "min_price": "95.00"}]),
            (line("a", "1", "90.00"),),
            # the POS already sells below the floor: left as it is, never raised
            ["0.00"],
            ["90.00"],
            [],
            "0",
            customer=None,
        ),
        id="price-floor-pos-price-below-it",
    ),
    pytest.param(
        Case(
            one(percent_off("10"), price_floors=[{"sku": ["a"], "min_price": "95.00"}]),
            (line("a", "1", "100.00", discount="10.00"),),
            # the POS's own discount already passes the floor: kept, nothing more
            ["10.00"],
            ["90.00"],
            [],
            "0",
            customer=None,
        ),
        id="price-floor-pos-discount-past-it",
    ),
    pytest.param(
        Case(
            {
                "type": "discount",
                "discount": {"percent": "10"},
                "price_floors": [{"sku": ["a"], "min_price": "95.00"}],
            },
            (line("a", "1", "100.00"),),
            # the card discount respects the floor too
            ["5.00"],
            ["95.00"],
            [],
            "0",
        ),
        id="price-floor-card-discount",
    ),
    pytest.param(
        Case(
            one(percent_off("50"), max_discount_percent="30"),
            (line("a", "1", "600.00"), line("b", "1", "400.00")),
            # cap 30% of 1000.00 = 300.00; 50% would be 300 + 200; spread 300 over
            # 300 : 200 -> 180.00 + 120.00
            ["180.00", "120.00"],
            ["420.00", "280.00"],
            [],
            "0",
            customer=None,
        ),
        id="max-discount-percent",
    ),
    pytest.param(
        Case(
            one(percent_off("50"), max_discount_percent="30"),
            (line("a", "1", "1000.00", discount="200.00"),),
            # the POS's 200.00 counts: 100.00 left under the 300.00 cap
            ["300.00"],
            ["700.00"],
            [],
            "0",
            customer=None,
        ),
        id="max-discount-percent-counts-the-pos-discount",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_effect(case: Case) -> None:
    receipt = price(program(**case.doc), *case.lines, customer=case.customer, **dict(case.basket))

    assert column(receipt, "discount") == case.discount
    assert column(receipt, "to_pay") == case.to_pay
    if case.points:
        assert column(receipt, "points_earned") == case.points
    assert str(receipt.points_earned) == case.earned
    assert receipt.discount == sum(Decimal(x) for x in case.discount)
    assert receipt.to_pay == sum(Decimal(x) for x in case.to_pay)


def test_gift_and_messages() -> None:
    doc = program(
        promotions=[
            promo(
                "P",
                {"kind": "gift", "sku": "bag", "name": "Shopping bag"},
                {"kind": "receipt_message", "text": "Thank you!"},
                {"kind": "cashier_message", "text": "Hand over the bag"},
                when={"basket": {"amount": {"min": "1000"}}},
            )
        ]
    )

    receipt = price(doc, line("a", "1", "1000.00"), customer=MEMBER)

    assert receipt.gifts == (("bag", "Shopping bag", "1"),)
    assert receipt.messages == ("Thank you!",)
    assert receipt.cashier_messages == ("Hand over the bag",)
    assert [(a.rule, a.discount, a.points) for a in receipt.applied] == [
        ("P", 0, 0),
        ("base_earn", 0, 50),
    ]
    assert str(receipt.discount) == "0.00"


BUDGETS = [
    pytest.param({"money": "100000"}, None, "applied", "100.00", id="budget-untouched"),
    pytest.param(
        {"money": "100000"},
        BudgetLeft(money=Decimal("150")),
        "applied",
        "100.00",
        id="enough-left",
    ),
    pytest.param(
        {"money": "100000"},
        BudgetLeft(money=Decimal("100")),
        "applied",
        "100.00",
        id="exactly-enough-left",
    ),
    pytest.param(
        {"money": "100000"},
        BudgetLeft(money=Decimal("50")),
        "budget spent",
        "0.00",
        id="less-left-than-it-would-give",
    ),
    pytest.param(
        {"money": "100000"}, BudgetLeft(money=Decimal("0")), "budget spent", "0.00", id="spent"
    ),
    pytest.param({"money": "80"}, None, "budget spent", "0.00", id="whole-budget-too-small"),
]


@pytest.mark.parametrize(("budget", "left", "why", "discount"), BUDGETS)
def test_budget(budget: dict[str, str], left: BudgetLeft | None, why: str, discount: str) -> None:
    doc = program(promotions=[promo("P", percent_off("10"), budget=budget)])
    budgets = None if left is None else {"P": left}

    receipt = price(doc, line("a", "1", "1000.00"), budgets=budgets, explain=True)

    assert receipt.explanations == {"P": why}
    assert str(receipt.discount) == discount


def test_points_budget() -> None:
    doc = program(
        promotions=[promo("P", {"kind": "fixed_points", "points": "200"}, budget={"points": "1e6"})]
    )

    enough = price(
        doc,
        line("a", "1", "100.00"),
        customer=MEMBER,
        budgets={"P": BudgetLeft(points=Decimal("200"))},
    )
    short = price(
        doc,
        line("a", "1", "100.00"),
        customer=MEMBER,
        budgets={"P": BudgetLeft(points=Decimal("199"))},
        explain=["P"],
    )

    assert str(enough.points_earned) == "205"  # 200 + 5% of 100.00
    assert str(short.points_earned) == "5"
    assert short.explanations == {"P": "budget spent"}


def test_excluded_promotions_are_not_applied() -> None:
    doc = program(promotions=[promo("P", percent_off("10"))])

    receipt = price(doc, line("a", "1", "1000.00"), explain=True, excluded=["P"])

    assert receipt.explanations == {"P": "budget spent"}
    assert str(receipt.discount) == "0.00"


@pytest.mark.parametrize(
    ("doc", "customer", "why"),
    [
        pytest.param({}, None, "points are for members only", id="non-member"),
        pytest.param(
            {"type": "discount", "discount": {"percent": "5"}},
            MEMBER,
            "this program has no points",
            id="discount-program",
        ),
        pytest.param({}, MEMBER, "applied", id="member-of-a-bonus-program"),
    ],
)
def test_why_a_points_promotion_gave_nothing(
    doc: dict[str, Any], customer: CustomerContext | None, why: str
) -> None:
    compiled = program(**doc, promotions=[promo("P", {"kind": "earn_multiplier", "factor": "2"})])

    receipt = price(compiled, line("a", "1", "100.00"), customer=customer, explain=True)

    assert receipt.explanations == {"P": why}


@pytest.mark.parametrize(
    ("earn_on", "left", "why", "earned"),
    [
        # 10% off 1000.00; the promotion lifts 5% to 10%.  Earning on the paid 900.00 it
        # gives 45 points, within 47 left: 90 in all.
        pytest.param("paid", "47", "applied", "90", id="paid-45-of-47"),
        # Earning before the discount it would give 5% of 1000.00 = 50 > 47: refused,
        # and the base 5% of 1000.00 = 50 stays.
        pytest.param("before_discount", "47", "budget spent", "50", id="before-discount-50-of-47"),
        pytest.param("before_discount", "50", "applied", "100", id="before-discount-50-of-50"),
    ],
)
def test_a_points_budget_counts_points_on_what_they_are_earned_on(
    earn_on: str, left: str, why: str, earned: str
) -> None:
    doc = program(
        type="mixed",
        discount={"percent": "10"},
        earn_on=earn_on,
        promotions=[
            promo("P", {"kind": "earn_percent", "percent": "10"}, budget={"points": "1000"})
        ],
    )

    receipt = price(
        doc,
        line("a", "1", "1000.00"),
        customer=MEMBER,
        budgets={"P": BudgetLeft(points=Decimal(left))},
        explain=True,
    )

    assert receipt.explanations == {"P": why}
    assert str(receipt.points_earned) == earned
