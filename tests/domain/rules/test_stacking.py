"""How promotions combine (``engine._select``), by a table of scenarios computed by hand.

One line unless a row says otherwise: SKU ``a``, 1 piece at 1000.00, a non-member (so only
discounts count), no program discount.  Every row gives the promotions, the stacking
settings, each promotion's discount and what ``explain=True`` says about each.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.domain.rules.kit import D, line, member, percent_off, price, program, promo

WON = "applied"


def scenario(
    promotions: list[dict[str, Any]],
    *,
    stacking: dict[str, Any] | None = None,
    **doc: Any,
) -> tuple[dict[str, str], dict[str, str], str]:
    """(discount per rule, explanation per promotion, receipt discount)."""
    keys: dict[str, Any] = {"promotions": promotions, **doc}
    if stacking is not None:
        keys["stacking"] = stacking

    receipt = price(program(**keys), line("a", "1", "1000.00"), explain=True)

    given = {a.rule: str(a.discount) for a in receipt.applied}
    assert receipt.explanations is not None
    return given, receipt.explanations, str(receipt.discount)


ROWS = [
    pytest.param(
        [promo("A", percent_off("10"), priority=10), promo("B", percent_off("5"))],
        None,
        {},
        # A: 10% of 1000.00 = 100.00; B on the rest: 5% of 900.00 = 45.00.
        {"A": "100.00", "B": "45.00"},
        {"A": WON, "B": WON},
        "145.00",
        id="no-group-stacks-in-priority-order-10-then-5-on-the-rest",
    ),
    pytest.param(
        [
            promo("A", {"kind": "line_discount", "amount": "100"}, priority=10),
            promo("B", percent_off("10")),
        ],
        None,
        {},
        # A first: 100.00 off, then 10% of 900.00 = 90.00.
        {"A": "100.00", "B": "90.00"},
        {"A": WON, "B": WON},
        "190.00",
        id="amount-before-percent-by-priority",
    ),
    pytest.param(
        [
            promo("A", {"kind": "line_discount", "amount": "100"}),
            promo("B", percent_off("10"), priority=10),
        ],
        None,
        {},
        # B first: 10% of 1000.00 = 100.00, then A's 100.00 off: 200.00 in all.
        {"B": "100.00", "A": "100.00"},
        {"A": WON, "B": WON},
        "200.00",
        id="percent-before-amount-by-priority",
    ),
    pytest.param(
        [promo("B", percent_off("5")), promo("A", percent_off("10"))],
        None,
        {},
        # Equal priority: by id, A then B, whatever the order in the document.
        {"A": "100.00", "B": "45.00"},
        {"A": WON, "B": WON},
        "145.00",
        id="equal-priority-runs-by-id",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10, group="g"),
            promo("B", percent_off("15"), group="g"),
        ],
        None,
        {},
        # Best in a group: A would give 100.00, B 150.00; B applies alone.
        {"B": "150.00"},
        {"A": "lost to B in group g (best for the customer)", "B": WON},
        "150.00",
        id="group-best-keeps-the-one-worth-most",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10, group="g"),
            promo("B", percent_off("15"), group="g"),
        ],
        {"groups": {"g": {"mode": "first"}}},
        {},
        # First in a group: A has the higher priority and gives something.
        {"A": "100.00"},
        {"A": WON, "B": "lost to A in group g (first by priority)"},
        "100.00",
        id="group-first-keeps-the-highest-priority",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10, group="g", lines={"sku": ["zzz"]}),
            promo("B", percent_off("15"), group="g"),
        ],
        {"groups": {"g": {"mode": "first"}}},
        {},
        # A needs a line that is not in the basket, so it never enters the group.
        {"B": "150.00"},
        {"A": "no line matches its lines", "B": WON},
        "150.00",
        id="group-first-skips-a-member-that-does-not-match",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10, group="g"),
            promo("B", percent_off("15"), group="g"),
        ],
        {"groups": {"g": {"mode": "stack"}}},
        {},
        # Stack: 100.00, then 15% of 900.00 = 135.00.
        {"A": "100.00", "B": "135.00"},
        {"A": WON, "B": WON},
        "235.00",
        id="group-stack-applies-all",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10, group="g"),
            promo("B", percent_off("15"), group="g"),
        ],
        {"default_group_mode": "stack"},
        {},
        {"A": "100.00", "B": "135.00"},
        {"A": WON, "B": WON},
        "235.00",
        id="default-group-mode-stack",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10, group="g"),
            promo("C", percent_off("5"), priority=5),
            promo("B", percent_off("15"), group="g"),
        ],
        None,
        {},
        # The group is decided at its first member's place (priority 10): B's 150.00,
        # then C: 5% of 850.00 = 42.50.
        {"B": "150.00", "C": "42.50"},
        {"A": "lost to B in group g (best for the customer)", "B": WON, "C": WON},
        "192.50",
        id="group-runs-at-its-first-members-place",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10),
            promo("B", percent_off("5")),
            promo("X", percent_off("12"), exclusive=True),
        ],
        None,
        {},
        # Stack 145.00 against X alone 120.00: the stack is worth more.
        {"A": "100.00", "B": "45.00"},
        {"A": WON, "B": WON, "X": "lost to the other promotions (exclusive)"},
        "145.00",
        id="exclusive-best-loses-to-the-stack",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10),
            promo("B", percent_off("5")),
            promo("X", percent_off("20"), exclusive=True),
        ],
        None,
        {},
        # X alone 200.00 against the stack's 145.00: X applies, alone.
        {"X": "200.00"},
        {
            "A": "an exclusive promotion X applied",
            "B": "an exclusive promotion X applied",
            "X": WON,
        },
        "200.00",
        id="exclusive-best-beats-the-stack",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10),
            promo("B", percent_off("5")),
            promo("X", percent_off("14.5"), exclusive=True),
        ],
        None,
        {},
        # A tie (145.00 each) keeps the stack.
        {"A": "100.00", "B": "45.00"},
        {"A": WON, "B": WON, "X": "lost to the other promotions (exclusive)"},
        "145.00",
        id="exclusive-best-tie-keeps-the-stack",
    ),
    pytest.param(
        [
            promo("X", percent_off("20"), exclusive=True),
            promo("Y", percent_off("30"), exclusive=True),
        ],
        None,
        {},
        # Two exclusive ones, best: Y's 300.00 over X's 200.00.
        {"Y": "300.00"},
        {"X": "lost to Y (exclusive)", "Y": WON},
        "300.00",
        id="exclusive-best-among-exclusives",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10),
            promo("X", percent_off("5"), exclusive=True, priority=5),
            promo("Y", percent_off("30"), exclusive=True),
        ],
        {"exclusive": "first"},
        {},
        # First: the highest-priority exclusive one that gives something applies alone,
        # though the stack (100.00) and Y (300.00) are worth more.
        {"X": "50.00"},
        {"A": "an exclusive promotion X applied", "X": WON, "Y": "lost to X (exclusive)"},
        "50.00",
        id="exclusive-first-takes-the-highest-priority-exclusive",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10),
            promo("B", percent_off("5")),
        ],
        None,
        {"max_discount_percent": "12"},
        # Cap 12% of 1000.00 = 120.00: A 100.00, B only the 20.00 left of its 45.00.
        {"A": "100.00", "B": "20.00"},
        {"A": WON, "B": WON},
        "120.00",
        id="max-discount-percent-cuts-the-later-promotion",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10),
            promo("B", percent_off("5")),
        ],
        None,
        {"price_floors": [{"sku": ["a"], "min_price": "880.00"}]},
        # Floor 880.00: A 100.00 leaves 900.00; B may take only 20.00 of its 45.00.
        {"A": "100.00", "B": "20.00"},
        {"A": WON, "B": WON},
        "120.00",
        id="price-floor-cuts-the-later-promotion",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10),
            promo("B", percent_off("5")),
        ],
        None,
        {"price_floors": [{"sku": ["a"], "min_price": "900.00"}]},
        # Floor 900.00: nothing is left for B.
        {"A": "100.00"},
        {"A": WON, "B": "gave nothing on this basket (price floor or limits)"},
        "100.00",
        id="price-floor-leaves-nothing-for-the-later-promotion",
    ),
    pytest.param(
        [
            promo("A", percent_off("10"), priority=10, max_discount="30.00"),
            promo("B", percent_off("5")),
        ],
        None,
        {},
        # A's own cap: 30.00 of its 100.00; B: 5% of 970.00 = 48.50.
        {"A": "30.00", "B": "48.50"},
        {"A": WON, "B": WON},
        "78.50",
        id="promotion-max-discount",
    ),
]


@pytest.mark.parametrize(("promotions", "stacking", "doc", "given", "why", "discount"), ROWS)
def test_stacking(
    promotions: list[dict[str, Any]],
    stacking: dict[str, Any] | None,
    doc: dict[str, Any],
    given: dict[str, str],
    why: dict[str, str],
    discount: str,
) -> None:
    got_given, got_why, got_discount = scenario(promotions, stacking=stacking, **doc)

    assert got_given == given
    assert got_why == why
    assert got_discount == discount


def test_group_best_counts_points_at_their_rouble_value() -> None:
    # A member earning 5%.  "triple points" would earn 15% of 1000.00 = 150 points, 100
    # more than the base 50; "10% off" gives 100.00 but the base then earns 5% of 900.00
    # = 45, 5 fewer: worth 95.00.  Triple points wins.
    doc = program(
        promotions=[
            promo("triple", {"kind": "earn_multiplier", "factor": "3"}, group="g"),
            promo("ten-off", percent_off("10"), group="g"),
        ]
    )

    receipt = price(doc, line("a", "1", "1000.00"), customer=member(), explain=True)

    assert str(receipt.discount) == "0.00"
    assert receipt.points_earned == D("150")
    assert {a.rule: str(a.points) for a in receipt.applied} == {
        "triple": "100.00",
        "base_earn": "50.00",
    }
    assert receipt.explanations == {
        "ten-off": "lost to triple in group g (best for the customer)",
        "triple": WON,
    }


def test_an_exclusive_promotion_applies_after_the_card_discount() -> None:
    # Card 5%: 50.00 off 1000.00; the exclusive 10% on the 950.00 left: 95.00.
    doc = program(
        type="discount",
        discount={"percent": "5"},
        promotions=[promo("X", percent_off("10"), exclusive=True)],
    )

    receipt = price(doc, line("a", "1", "1000.00"), customer=member())

    assert {a.rule: str(a.discount) for a in receipt.applied} == {
        "program_discount": "50.00",
        "X": "95.00",
    }
    assert str(receipt.to_pay) == "855.00"


@pytest.mark.parametrize(
    ("earn_on", "winner", "loser", "discount", "earned"),
    [
        # Earning on the paid amount, 10% off costs 5% of 100.00 = 5 points: worth 95.00,
        # less than the 97.5 more points of x2.95 (5% -> 14.75% of 1000.00 = 147.5 -> 147).
        pytest.param("paid", "more-points", "ten-off", "0.00", "147", id="paid"),
        # Earning before the discount, 10% off costs no points: worth 100.00, more than
        # 97.5; points stay 5% of 1000.00 = 50.
        pytest.param("before_discount", "ten-off", "more-points", "100.00", "50", id="before"),
    ],
)
def test_group_best_counts_points_on_what_they_are_earned_on(
    earn_on: str, winner: str, loser: str, discount: str, earned: str
) -> None:
    doc = program(
        type="mixed",
        discount={"percent": "0"},
        earn_on=earn_on,
        promotions=[
            promo("more-points", {"kind": "earn_multiplier", "factor": "2.95"}, group="g"),
            promo("ten-off", percent_off("10"), group="g"),
        ],
    )

    receipt = price(doc, line("a", "1", "1000.00"), customer=member(), explain=True)

    assert receipt.explanations == {
        winner: WON,
        loser: f"lost to {winner} in group g (best for the customer)",
    }
    assert str(receipt.discount) == discount
    assert str(receipt.points_earned) == earned
