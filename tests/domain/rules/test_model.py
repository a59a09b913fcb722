"""The program document: every kind of mistake names its path and says what is wrong, and
a valid document survives a trip through JSON unchanged."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from kopilka.domain.rules.model import DocumentInvalid, ProgramDoc, validate_document

BASE = {"code": "shop", "name": "Shop"}


def promotion(**keys: Any) -> dict[str, Any]:
    return {
        "id": "p1",
        "name": "Ten percent",
        "effects": [{"kind": "line_discount", "percent": "10"}],
        **keys,
    }


def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(DocumentInvalid) as caught:
        validate_document(doc)
    return caught.value.problems


def with_promotion(**keys: Any) -> dict[str, Any]:
    return {**BASE, "promotions": [promotion(**keys)]}


MISTAKES = [
    pytest.param(
        with_promotion(effects=[{"kind": "line_discount", "percent": "150"}]),
        [("promotions[0].effects[0].percent", "must be between 0 and 100")],
        id="percent-over-100",
    ),
    pytest.param(
        with_promotion(effects=[{"kind": "earn_percent", "percent": "-1"}]),
        [("promotions[0].effects[0].percent", "must be between 0 and 100")],
        id="negative-earn-percent",
    ),
    pytest.param(
        {**BASE, "max_discount_percent": "100.5"},
        [("max_discount_percent", "must be between 0 and 100")],
        id="max-discount-percent-over-100",
    ),
    pytest.param(
        {
            **BASE,
            "tiers": {
                "levels": [
                    {"code": "base", "name": "B", "threshold": "0", "burn_max_percent": "120"}
                ]
            },
        },
        [("tiers.levels[0].burn_max_percent", "must be between 0 and 100")],
        id="tier-burn-limit-over-100",
    ),
    pytest.param(
        with_promotion(effects=[{"kind": "line_discount", "percent": "10.12345"}]),
        [("promotions[0].effects[0].percent", "at most 4 decimals")],
        id="percent-with-five-decimals",
    ),
    pytest.param(
        with_promotion(effects=[{"kind": "line_discount", "amount": "-5"}]),
        [("promotions[0].effects[0].amount", "must be at least 0")],
        id="negative-amount",
    ),
    pytest.param(
        {**BASE, "colour": "red"},
        [("colour", "unknown field")],
        id="unknown-top-level-field",
    ),
    pytest.param(
        with_promotion(discount="5%"),
        [("promotions[0].discount", "unknown field")],
        id="unknown-promotion-field",
    ),
    pytest.param(
        with_promotion(effects=[{"kind": "line_discount", "percent": "5", "upto": "9"}]),
        [("promotions[0].effects[0].upto", "unknown field")],
        id="unknown-effect-field",
    ),
    pytest.param(
        with_promotion(when={"sku": ["a"], "colour": "red"}),
        [("promotions[0].when.colour", "unknown field")],
        id="unknown-condition-key",
    ),
    pytest.param(
        with_promotion(effects=[{"kind": "teleport"}]),
        [
            (
                "promotions[0].effects[0]",
                "unknown kind 'teleport'; one of 'earn_percent', 'earn_multiplier', "
                "'fixed_points', 'points_per_unit', 'line_discount', 'basket_discount', "
                "'price_override', 'cheapest_free', 'bundle_price', 'gift', "
                "'receipt_message', 'cashier_message', 'draw_tickets'",
            )
        ],
        id="unknown-effect-kind",
    ),
    pytest.param(
        with_promotion(effects=[{"kind": "line_discount"}]),
        [("promotions[0].effects[0]", "give either percent or amount")],
        id="line-discount-without-value",
    ),
    pytest.param(
        with_promotion(effects=[{"kind": "basket_discount", "percent": "5", "amount": "5"}]),
        [("promotions[0].effects[0]", "give either percent or amount")],
        id="basket-discount-with-both-values",
    ),
    pytest.param(
        with_promotion(effects=[{"kind": "cheapest_free", "every": 3, "free": 3}]),
        [("promotions[0].effects[0]", "free must be less than every")],
        id="cheapest-free-all-free",
    ),
    pytest.param(
        with_promotion(effects=[]),
        [("promotions[0].effects", "must not be empty")],
        id="no-effects",
    ),
    pytest.param(
        with_promotion(id="ten percent"),
        [("promotions[0].id", "letters, digits, '_', '.', '-' only (up to 64)")],
        id="id-with-a-space",
    ),
    pytest.param(
        {"name": "Shop"},
        [("code", "required")],
        id="missing-code",
    ),
    pytest.param(
        with_promotion(when={"sku_list": ["milk"]}),
        [("promotions[0].when.sku_list", "unknown list 'milk'")],
        id="unknown-sku-list",
    ),
    pytest.param(
        with_promotion(lines={"brand": ["acme"]}),
        [("promotions[0].lines.brand", "unknown brand 'acme'")],
        id="unknown-brand-in-lines",
    ),
    pytest.param(
        with_promotion(when={"segment": ["sleeping"]}),
        [("promotions[0].when.segment", "unknown segment 'sleeping'")],
        id="unknown-segment",
    ),
    pytest.param(
        with_promotion(when={"tier": ["gold"]}),
        [("promotions[0].when.tier", "unknown tier 'gold'")],
        id="unknown-tier",
    ),
    pytest.param(
        with_promotion(when={"all": [{"member": True}, {"any": [{"sku_list": ["x"]}]}]}),
        [("promotions[0].when.all[1].any[0].sku_list", "unknown list 'x'")],
        id="unknown-list-deep-in-the-tree",
    ),
    pytest.param(
        with_promotion(when={"not": {"basket": {"amount": {"min": 1}, "lines": {"brand": ["z"]}}}}),
        [("promotions[0].when.not.basket.lines.brand", "unknown brand 'z'")],
        id="unknown-brand-under-not-and-basket",
    ),
    pytest.param(
        {**BASE, "type": "discount", "discount": {"percent": "5", "exclude": {"sku_list": ["x"]}}},
        [("discount.exclude.sku_list", "unknown list 'x'")],
        id="unknown-list-in-discount-exclude",
    ),
    pytest.param(
        {**BASE, "promotions": [promotion(), promotion(name="again")]},
        [("promotions[1].id", "'p1' repeats")],
        id="repeated-promotion-id",
    ),
    pytest.param(
        {**BASE, "categories": [{"code": "a", "parent": "b"}, {"code": "b", "parent": "a"}]},
        [
            ("categories[0].parent", "'a' is its own ancestor"),
            ("categories[1].parent", "'b' is its own ancestor"),
        ],
        id="category-cycle",
    ),
    pytest.param(
        {
            **BASE,
            "categories": [
                {"code": "leaf", "parent": "a"},
                {"code": "a", "parent": "a"},
            ],
        },
        [("categories[1].parent", "'a' is its own ancestor")],
        id="category-its-own-parent-leaf-below-is-not-reported",
    ),
    pytest.param(
        {**BASE, "categories": [{"code": "milk", "parent": "food"}]},
        [("categories[0].parent", "unknown category 'food'")],
        id="unknown-parent-category",
    ),
    pytest.param(
        {**BASE, "categories": [{"code": "milk"}, {"code": "milk"}]},
        [("categories", "a category code repeats")],
        id="repeated-category",
    ),
    pytest.param(
        with_promotion(when={"hours": ["25:00-26:00"]}),
        [("promotions[0].when.hours[0]", "must look like 10:00-14:00")],
        id="hour-25",
    ),
    pytest.param(
        with_promotion(when={"hours": ["10-14"]}),
        [("promotions[0].when.hours[0]", "must look like 10:00-14:00")],
        id="hours-without-minutes",
    ),
    pytest.param(
        with_promotion(when={"hours": ["24:30-01:00"]}),
        [("promotions[0].when.hours[0]", "hours go up to 24:00")],
        id="hours-past-24",
    ),
    pytest.param(
        with_promotion(when={"hours": ["09:00-18:00", "10:00-10:00"]}),
        [("promotions[0].when.hours[1]", "an empty range of hours")],
        id="empty-hour-range",
    ),
    pytest.param(
        with_promotion(when={"weekday": ["mon", "fun"]}),
        [
            (
                "promotions[0].when.weekday[1]",
                "Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'",
            )
        ],
        id="unknown-weekday",
    ),
    pytest.param(
        with_promotion(when={"dates": {"from": "2026-12-02", "to": "2026-12-01"}}),
        [("promotions[0].when.dates", "from is after to")],
        id="dates-backwards",
    ),
    pytest.param(
        with_promotion(when={"basket": {"amount": {"min": "1000", "max": "500"}}}),
        [("promotions[0].when.basket.amount", "min is greater than max")],
        id="basket-range-backwards",
    ),
    pytest.param(
        with_promotion(when={"basket": {"lines": {"sku": ["a"]}}}),
        [("promotions[0].when.basket", "give amount, quantity or both")],
        id="basket-without-threshold",
    ),
    pytest.param(
        with_promotion(starts_at="2026-12-02T00:00:00+03:00", ends_at="2026-12-01T00:00:00+03:00"),
        [("promotions[0].ends_at", "must be after starts_at")],
        id="starts-after-ends",
    ),
    pytest.param(
        with_promotion(starts_at="2026-12-01T00:00:00+03:00", ends_at="2026-12-01T00:00:00+03:00"),
        [("promotions[0].ends_at", "must be after starts_at")],
        id="starts-when-ends",
    ),
    pytest.param(
        with_promotion(starts_at="2026-12-01T00:00:00"),
        [("promotions[0].starts_at", "give a time zone offset, e.g. 2026-12-01T00:00:00+03:00")],
        id="tz-naive-starts-at",
    ),
    pytest.param(
        with_promotion(ends_at="2026-12-31T23:59:59"),
        [("promotions[0].ends_at", "give a time zone offset, e.g. 2026-12-01T00:00:00+03:00")],
        id="tz-naive-ends-at",
    ),
    pytest.param(
        with_promotion(lines={"store": ["s1"]}),
        [
            (
                "promotions[0].lines",
                "only sku, sku_list, category, brand (with all/any/not) select lines",
            )
        ],
        id="store-in-lines",
    ),
    pytest.param(
        with_promotion(lines={"any": [{"sku": ["a"]}, {"not": {"member": True}}]}),
        [
            (
                "promotions[0].lines",
                "only sku, sku_list, category, brand (with all/any/not) select lines",
            )
        ],
        id="member-deep-in-lines",
    ),
    pytest.param(
        {**BASE, "type": "discount", "discount": {"exclude": {"tier": ["gold"]}}},
        [("discount.exclude", "only sku, sku_list, category, brand select lines")],
        id="tier-in-discount-exclude",
    ),
    pytest.param(
        {**BASE, "type": "discount"},
        [("discount", "a discount program needs its discount rule")],
        id="discount-program-without-discount",
    ),
    pytest.param(
        {**BASE, "type": "cumulative"},
        [("cumulative", "a cumulative program needs its levels")],
        id="cumulative-program-without-levels",
    ),
    pytest.param(
        {
            **BASE,
            "type": "cumulative",
            "cumulative": {
                "levels": [{"from": "0", "percent": "3"}, {"from": "0", "percent": "5"}]
            },
        },
        [("cumulative", "levels must go up by from, without repeats")],
        id="cumulative-levels-repeat",
    ),
    pytest.param(
        {**BASE, "tiers": {"levels": [{"code": "silver", "name": "S", "threshold": "100"}]}},
        [("tiers", "the first tier must have threshold 0")],
        id="first-tier-above-zero",
    ),
    pytest.param(
        with_promotion(when={}),
        [("promotions[0].when", "an empty condition; give at least one key")],
        id="empty-condition",
    ),
    pytest.param(
        with_promotion(when={"sku": None}),
        [("promotions[0].when", "an empty condition; give at least one key")],
        id="condition-of-nulls-only",
    ),
    pytest.param(
        {**BASE, "segments": {"all": {"rfm": None}}},
        [("segments.all", "give customers or a filter (rfm, tag, days_since_last_purchase)")],
        id="segment-of-nulls-only",
    ),
    pytest.param(
        {**BASE, "timezone": "Mars/Olympus"},
        [("timezone", "unknown time zone 'Mars/Olympus'")],
        id="unknown-time-zone",
    ),
    pytest.param(
        {**BASE, "price_floors": [{"min_price": "10"}]},
        [("price_floors[0]", "give either sku or category")],
        id="floor-without-target",
    ),
]


@pytest.mark.parametrize(("doc", "expected"), MISTAKES)
def test_each_mistake_names_its_path_and_says_what_is_wrong(
    doc: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    found = problems(doc)

    assert found == expected


def test_every_problem_is_reported_at_once() -> None:
    doc = {
        **BASE,
        "colour": "red",
        "promotions": [promotion(effects=[{"kind": "line_discount", "percent": "150"}])],
    }

    found = problems(doc)

    assert found == [
        ("promotions[0].effects[0].percent", "must be between 0 and 100"),
        ("colour", "unknown field"),
    ]


def test_the_message_of_the_exception_lists_the_problems() -> None:
    with pytest.raises(DocumentInvalid, match=r"^promotions\[1\]\.id: 'p1' repeats$"):
        validate_document({**BASE, "promotions": [promotion(), promotion()]})


def test_a_coupon_condition_is_either_a_flag_or_codes() -> None:
    as_flag = validate_document(with_promotion(when={"coupon": True}))
    as_codes = validate_document(with_promotion(when={"coupon": ["WINTER"]}))

    assert as_flag.promotions[0].when is not None
    assert as_flag.promotions[0].when.coupon is True
    assert as_codes.promotions[0].when is not None
    assert as_codes.promotions[0].when.coupon == ["WINTER"]


def test_amounts_given_as_numbers_or_strings_are_the_same_decimal() -> None:
    as_string = validate_document(with_promotion(max_discount="150.50"))
    as_number = validate_document(with_promotion(max_discount=150.5))

    assert as_string.promotions[0].max_discount == Decimal("150.50")
    assert as_number.promotions[0].max_discount == Decimal("150.5")


FULL: dict[str, Any] = {
    "code": "family-market",
    "name": "Family market card",
    "type": "mixed",
    "timezone": "Asia/Yekaterinburg",
    "points": {
        "earn_percent": "3",
        "burn_max_percent": "50",
        "point_value": "1",
        "points_step": "1",
        "earn_rounding": "floor",
        "min_payment": "1.00",
        "activation_delay_days": 14,
        "expiry_days": 180,
        "hold_ttl_s": 600,
        "negative_balance_limit": "0",
    },
    "discount": {
        "percent": "2",
        "groups": {"staff": "15", "pensioner": "5"},
        "exclude": {"any": [{"sku_list": ["tobacco"]}, {"category": ["alcohol"]}]},
    },
    "cumulative": {
        "basis": "rolling",
        "window_days": 365,
        "levels": [
            {"from": "0", "percent": "0"},
            {"from": "10000", "percent": "3"},
            {"from": "50000", "percent": "5"},
        ],
        "decay": {"drop": "2", "inactive_days": 90, "min_month_amount": "1000"},
    },
    "tiers": {
        "qualify_by": "spend",
        "period_days": 365,
        "levels": [
            {"code": "base", "name": "Base", "threshold": "0"},
            {"code": "silver", "name": "Silver", "threshold": "15000", "earn_percent": "5"},
            {
                "code": "gold",
                "name": "Gold",
                "threshold": "60000",
                "earn_percent": "7",
                "burn_max_percent": "70",
                "discount_percent": "3",
            },
        ],
    },
    "earn_on": "before_discount",
    "categories": [
        {"code": "food", "name": "Food"},
        {"code": "dairy", "name": "Dairy", "parent": "food"},
        {"code": "cheese", "parent": "dairy"},
        {"code": "alcohol"},
    ],
    "sku_lists": {"tobacco": ["4600000000011", "4600000000028"], "coffee": ["c1", "c2"]},
    "brands": {"prostokvashino": ["m1", "m2"]},
    "segments": {
        "sleeping": {"days_since_last_purchase": {"min": "60"}},
        "vip": {"customers": ["+79990001122", "2000000000017"]},
        "champions": {"rfm": ["555", "554"], "tag": ["family"]},
    },
    "price_floors": [
        {"sku": ["m1"], "min_price": "49.90"},
        {"category": ["alcohol"], "min_price": "199.00"},
    ],
    "max_discount_percent": "50",
    "stacking": {
        "groups": {"weekly": {"mode": "best"}, "coupons": {"mode": "first"}},
        "default_group_mode": "stack",
        "exclusive": "first",
    },
    "promotions": [
        {
            "id": "morning-coffee",
            "name": "Coffee before 11",
            "description": "Mornings on weekdays",
            "starts_at": "2026-12-01T00:00:00+05:00",
            "ends_at": "2027-01-01T00:00:00+05:00",
            "when": {
                "all": [
                    {"weekday": ["mon", "tue", "wed", "thu", "fri"]},
                    {"hours": ["07:00-11:00"]},
                    {"not": {"tier": ["base"]}},
                ],
                "store": ["s1", "s2"],
            },
            "lines": {"sku_list": ["coffee"]},
            "effects": [{"kind": "line_discount", "percent": "20"}],
            "priority": 10,
            "group": "weekly",
            "max_discount": "500.00",
            "limits": [{"count": 1, "period": "day"}, {"count": 10, "period": "month"}],
            "budget": {"money": "100000.00"},
        },
        {
            "id": "cheese-3-for-2",
            "name": "Cheese 3 for 2",
            "lines": {"category": ["cheese"]},
            "effects": [{"kind": "cheapest_free", "every": 3, "free": 1}],
            "group": "weekly",
        },
        {
            "id": "breakfast-set",
            "name": "Breakfast set",
            "effects": [
                {
                    "kind": "bundle_price",
                    "items": [{"sku": ["c1"]}, {"category": ["dairy"], "quantity": 2}],
                    "price": "399.00",
                }
            ],
            "exclusive": True,
        },
        {
            "id": "birthday",
            "name": "Birthday",
            "when": {"birthday": {"days_before": 3, "days_after": 3}, "member": True},
            "effects": [
                {"kind": "earn_multiplier", "factor": "2"},
                {"kind": "receipt_message", "text": "Happy birthday!"},
            ],
        },
        {
            "id": "welcome",
            "name": "Welcome",
            "when": {"first_purchase": True, "coupon": ["HELLO"]},
            "effects": [
                {"kind": "fixed_points", "points": "200"},
                {"kind": "gift", "sku": "bag", "name": "Shopping bag", "quantity": 1},
                {"kind": "cashier_message", "text": "Give the shopping bag"},
            ],
            "personal": False,
            "budget": {"points": "50000"},
        },
        {
            "id": "brand-week",
            "name": "Prostokvashino week",
            "when": {
                "dates": {"from": "2026-12-07", "to": "2026-12-13"},
                "segment": ["champions"],
                "basket": {"amount": {"min": "500"}, "lines": {"brand": ["prostokvashino"]}},
                "city": ["Yekaterinburg"],
                "region": ["66"],
                "partner": ["own"],
            },
            "lines": {"brand": ["prostokvashino"]},
            "effects": [
                {"kind": "points_per_unit", "points": "10"},
                {"kind": "earn_percent", "percent": "10"},
            ],
        },
        {
            "id": "staff-price",
            "name": "Staff price",
            "when": {"tag": ["staff"], "gift_card_payment": False, "personal_offer": True},
            "lines": {"sku": ["m2"]},
            "effects": [{"kind": "price_override", "price": "59.90"}],
            "personal": True,
            "enabled": False,
        },
        {
            "id": "big-basket",
            "name": "500 off 5000",
            "when": {
                "basket": {"amount": {"min": "5000"}, "quantity": {"max": "100"}},
                "days_since_last_purchase": {"min": "30", "max": "365"},
            },
            "effects": [
                {"kind": "basket_discount", "amount": "500"},
                {"kind": "line_discount", "amount": "1.50"},
            ],
            "group": "coupons",
            "priority": -5,
            "limits": [{"count": 1, "period": "ever"}],
        },
    ],
}


def test_a_full_document_round_trips_through_json_unchanged() -> None:
    doc = validate_document(FULL)

    dumped = doc.model_dump(mode="json", by_alias=True)
    again = validate_document(json.loads(json.dumps(dumped)))

    assert again == doc
    assert again.model_dump(mode="json", by_alias=True) == dumped


def test_the_full_document_keeps_what_was_written() -> None:
    doc = validate_document(FULL)

    assert isinstance(doc, ProgramDoc)
    assert doc.cumulative is not None
    assert [lv.from_amount for lv in doc.cumulative.levels] == [0, 10000, 50000]
    assert doc.promotions[0].when is not None
    assert doc.promotions[0].when.all is not None
    assert doc.promotions[0].when.all[2].not_ is not None
    assert doc.promotions[5].when is not None
    assert doc.promotions[5].when.dates is not None
    assert str(doc.promotions[5].when.dates.from_) == "2026-12-07"
    assert doc.promotions[0].starts_at is not None
    assert doc.promotions[0].starts_at.utcoffset() is not None
    assert doc.promotions[0].starts_at.isoformat() == "2026-12-01T00:00:00+05:00"
