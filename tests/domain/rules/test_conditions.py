"""Each condition of a promotion's ``when``, holding and failing, with what the engine
says when asked why (``explain=True``).

The promotion ``P`` gives 10% off.  Unless a row says otherwise: one line, SKU ``a`` in
category ``cheese`` (under ``dairy`` under ``food``), 1 x 100.00; store ``s1`` of partner
``p1`` in Moscow (region ``msk``); Monday 23 November 2026, 12:15 Moscow time; the
customer is a silver member tagged ``family``, RFM 555, known by ``+79990001122``, last
bought on 24 October (30 days ago), 3 purchases before, born on 25 November 1990.
When ``P`` holds it gives 10.00; when it fails, nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from kopilka.domain.rules.facts import CustomerContext, StoreContext
from tests.domain.rules.kit import line, member, percent_off, price, program, promo

HOLDS = "applied"
SILVER = member(
    tier="silver",
    tags=frozenset({"family"}),
    rfm="555",
    keys=frozenset({"+79990001122"}),
    last_purchase_on=date(2026, 10, 24),
    purchases=3,
    birthday=date(1990, 11, 25),
)
DOC: dict[str, Any] = {
    "categories": [
        {"code": "food"},
        {"code": "dairy", "parent": "food"},
        {"code": "cheese", "parent": "dairy"},
        {"code": "meat", "parent": "food"},
    ],
    "sku_lists": {"cheeses": ["a"], "drinks": ["cola"]},
    "brands": {"acme": ["a"], "other": ["b"]},
    "tiers": {
        "levels": [
            {"code": "base", "name": "Base", "threshold": "0"},
            {"code": "silver", "name": "Silver", "threshold": "10000"},
            {"code": "gold", "name": "Gold", "threshold": "50000"},
        ]
    },
    "segments": {
        "vip": {"customers": ["+79990001122"]},
        "strangers": {"customers": ["+70000000000"]},
        "champions": {"rfm": ["555", "554"]},
        "at-risk": {"rfm": ["155"]},
        "families": {"tag": ["family"]},
        "sleeping": {"days_since_last_purchase": {"min": "60"}},
        "recent": {"days_since_last_purchase": {"max": "30"}},
    },
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def outcome(
    when: dict[str, Any],
    *,
    customer: CustomerContext | None = SILVER,
    at: datetime | None = None,
    store: StoreContext | None = None,
    lines: tuple[Any, ...] = (line("a", "1", "100.00", "cheese"),),
    promotion: dict[str, Any] | None = None,
    **basket: Any,
) -> tuple[str, str]:
    """(what explain says about P, the receipt's discount)."""
    p = promo("P", percent_off("10"), when=when, **(promotion or {}))
    doc = program(**DOC, promotions=[p])
    keys: dict[str, Any] = {"customer": customer, "store": store, "explain": True, **basket}
    if at is not None:
        keys["at"] = at

    receipt = price(doc, *lines, **keys)

    assert receipt.explanations is not None
    return receipt.explanations["P"], str(receipt.discount)


def holds(when: dict[str, Any], id: str, **setup: Any) -> Any:
    return pytest.param(when, setup, HOLDS, id=f"{id}-holds")


def fails(when: dict[str, Any], why: str, id: str, **setup: Any) -> Any:
    return pytest.param(when, setup, why, id=f"{id}-fails")


YEKATERINBURG = StoreContext("e1", "p1", "Yekaterinburg", "66", "Asia/Yekaterinburg")

ROWS = [
    # --- lines ---------------------------------------------------------------------
    holds({"sku": ["a", "b"]}, "sku"),
    fails({"sku": ["b"]}, "no line with these SKUs", "sku"),
    holds({"sku_list": ["cheeses"]}, "sku-list"),
    fails({"sku_list": ["drinks"]}, "no line with these SKUs", "sku-list"),
    holds({"brand": ["acme"]}, "brand"),
    fails({"brand": ["other"]}, "no line with these SKUs", "brand"),
    holds({"category": ["cheese"]}, "category-itself"),
    holds({"category": ["food"]}, "category-by-its-ancestor"),
    fails({"category": ["meat"]}, "no line in meat", "category-sibling"),
    holds(
        {"category": ["snacks"]},
        "category-not-in-the-tree-matches-itself",
        lines=(line("x", "1", "100.00", "snacks"),),
    ),
    # --- where ---------------------------------------------------------------------
    holds({"store": ["s1", "s2"]}, "store"),
    fails({"store": ["s2", "s3"]}, "store is s1, needs s2, s3", "store"),
    holds({"partner": ["p1"]}, "partner"),
    fails({"partner": ["p2"]}, "partner is p1, needs p2", "partner"),
    holds({"city": ["Moscow"]}, "city"),
    fails({"city": ["Kazan"]}, "city is Moscow, needs Kazan", "city"),
    holds({"region": ["msk"]}, "region"),
    fails({"region": ["spb"]}, "region is msk, needs spb", "region"),
    # --- when (in the store's time zone) --------------------------------------------
    holds({"dates": {"from": "2026-11-23", "to": "2026-11-23"}}, "dates-one-day-inclusive"),
    fails({"dates": {"from": "2026-12-01"}}, "date 2026-11-23 is before 2026-12-01", "dates"),
    fails({"dates": {"to": "2026-11-22"}}, "date 2026-11-23 is after 2026-11-22", "dates-ended"),
    fails(
        {"dates": {"to": "2026-11-30"}},
        "date 2026-12-01 is after 2026-11-30",
        "dates-22-30-utc-is-already-december-in-moscow",
        at=utc(2026, 11, 30, 22, 30),
    ),
    holds({"weekday": ["mon", "tue"]}, "weekday"),
    fails({"weekday": ["sat", "sun"]}, "weekday is mon, needs sat, sun", "weekday"),
    fails(
        {"weekday": ["mon"]},
        "weekday is tue, needs mon",
        "weekday-monday-23-00-utc-is-tuesday-in-moscow",
        at=utc(2026, 11, 23, 23, 0),
    ),
    holds({"hours": ["10:00-14:00"]}, "hours"),
    fails({"hours": ["18:00-22:00"]}, "time 12:15 is outside 18:00-22:00", "hours"),
    fails(
        {"hours": ["10:00-12:15"]},
        "time 12:15 is outside 10:00-12:15",
        "hours-end-is-not-included",
    ),
    holds({"hours": ["12:15-12:16"]}, "hours-start-is-included"),
    holds({"hours": ["08:00-09:00", "12:00-13:00"]}, "hours-second-range"),
    holds({"hours": ["22:00-02:00"]}, "hours-overnight", at=utc(2026, 11, 23, 20, 30)),
    fails(
        {"hours": ["22:00-02:00"]},
        "time 02:30 is outside 22:00-02:00",
        "hours-overnight",
        at=utc(2026, 11, 23, 23, 30),
    ),
    holds({"hours": ["20:00-24:00"]}, "hours-up-to-midnight", at=utc(2026, 11, 23, 20, 59)),
    fails(
        {"hours": ["10:00-14:00"]},
        "time 14:15 is outside 10:00-14:00",
        "hours-in-the-stores-own-zone",
        store=YEKATERINBURG,
    ),
    # --- who -----------------------------------------------------------------------
    holds({"tier": ["silver", "gold"]}, "tier"),
    fails({"tier": ["gold"]}, "tier is silver, needs gold", "tier"),
    fails({"tier": ["gold"]}, "tier: not a member", "tier-non-member", customer=None),
    holds({"segment": ["vip"]}, "segment-named-list"),
    fails({"segment": ["strangers"]}, "not in segment strangers", "segment-named-list"),
    holds({"segment": ["champions"]}, "segment-rfm"),
    fails({"segment": ["at-risk"]}, "not in segment at-risk", "segment-rfm"),
    holds({"segment": ["families"]}, "segment-tag"),
    holds({"segment": ["recent"]}, "segment-days-since-last-purchase"),
    fails({"segment": ["sleeping"]}, "not in segment sleeping", "segment-days-since"),
    holds({"segment": ["strangers", "families"]}, "segment-any-of-several"),
    fails({"segment": ["vip"]}, "segment vip: not a member", "segment-non-member", customer=None),
    holds({"tag": ["staff", "family"]}, "tag"),
    fails({"tag": ["staff"]}, "customer has no tag staff", "tag"),
    holds({"days_since_last_purchase": {"min": "30"}}, "days-since-last-purchase-30"),
    fails(
        {"days_since_last_purchase": {"min": "31"}},
        "days since last purchase 30 is below 31",
        "days-since-last-purchase",
    ),
    fails(
        {"days_since_last_purchase": {"max": "7"}},
        "days since last purchase 30 is above 7",
        "days-since-last-purchase-max",
    ),
    fails(
        {"days_since_last_purchase": {"min": "30"}},
        "no purchase yet",
        "days-since-last-purchase-never-bought",
        customer=replace(SILVER, last_purchase_on=None),
    ),
    holds(
        {"personal_offer": True},
        "personal-offer",
        customer=replace(SILVER, offers=frozenset({"P"})),
    ),
    fails({"personal_offer": True}, "personal offer: no", "personal-offer"),
    holds({"birthday": {"days_before": 3, "days_after": 3}}, "birthday-in-2-days"),
    fails(
        {"birthday": {"days_before": 1}},
        "birthday 25.11 is not within the window",
        "birthday-in-2-days-window-1",
    ),
    holds(
        {"birthday": {"days_after": 7}},
        "birthday-window-across-new-year",
        customer=replace(SILVER, birthday=date(1985, 12, 30)),
        at=utc(2027, 1, 3, 9, 0),
    ),
    holds(
        {"birthday": {}},
        "birthday-29-february-on-the-28th-in-a-common-year",
        customer=replace(SILVER, birthday=date(2000, 2, 29)),
        at=utc(2027, 2, 28, 9, 0),
    ),
    fails(
        {"birthday": {"days_after": 3}},
        "birthday unknown",
        "birthday-unknown",
        customer=replace(SILVER, birthday=None),
    ),
    holds({"first_purchase": True}, "first-purchase", customer=replace(SILVER, purchases=0)),
    fails({"first_purchase": True}, "first purchase: no", "first-purchase"),
    holds({"first_purchase": False}, "not-first-purchase"),
    holds({"member": True}, "member"),
    fails({"member": True}, "member: no", "member", customer=None),
    holds({"member": False}, "non-member", customer=None),
    fails({"member": False}, "member: yes", "non-member"),
    # --- what ----------------------------------------------------------------------
    holds({"basket": {"amount": {"min": "100"}}}, "basket-amount-min-inclusive"),
    fails(
        {"basket": {"amount": {"min": "500"}}},
        "basket amount 100.00 is below 500",
        "basket-amount",
    ),
    fails(
        {"basket": {"amount": {"max": "99.99"}}},
        "basket amount 100.00 is above 99.99",
        "basket-amount-max",
    ),
    holds(
        {"basket": {"quantity": {"min": "3"}}},
        "basket-quantity",
        lines=(line("a", "2", "50.00"), line("b", "1", "0.00")),
    ),
    fails(
        {"basket": {"quantity": {"min": "3"}}},
        "basket quantity 2.352 is below 3",
        "basket-quantity-with-weight-goods",
        lines=(line("a", "2", "40.00"), line("b", "0.352", "100.00")),
    ),
    holds(
        {"basket": {"amount": {"min": "100"}, "lines": {"category": ["dairy"]}}},
        "basket-of-matching-lines",
        lines=(line("a", "2", "50.00", "cheese"), line("m", "1", "900.00", "meat")),
        promotion={"lines": {"category": ["dairy"]}},
    ),
    fails(
        {"basket": {"amount": {"min": "300"}, "lines": {"category": ["dairy"]}}},
        "basket amount 100.00 is below 300",
        "basket-of-matching-lines",
        lines=(line("a", "2", "50.00", "cheese"), line("m", "1", "900.00", "meat")),
        promotion={"lines": {"category": ["dairy"]}},
    ),
    holds({"coupon": True}, "coupon-any", coupons=("X-1",)),
    fails({"coupon": True}, "coupon: no", "coupon-any"),
    holds({"coupon": ["WINTER"]}, "coupon-code-case-insensitive", coupons=("winter",)),
    fails({"coupon": ["WINTER"]}, "no matching coupon", "coupon-code", coupons=("SUMMER",)),
    holds({"gift_card_payment": True}, "gift-card-payment", gift_card_payment=True),
    fails({"gift_card_payment": True}, "paid by gift card: no", "gift-card-payment"),
    fails(
        {"gift_card_payment": False},
        "paid by gift card: yes",
        "not-paid-by-gift-card",
        gift_card_payment=True,
    ),
    # --- combinators ---------------------------------------------------------------
    holds({"store": ["s1"], "weekday": ["mon"]}, "keys-together-are-and"),
    fails({"store": ["s1"], "weekday": ["sun"]}, "weekday is mon, needs sun", "keys-and"),
    holds({"all": [{"store": ["s1"]}, {"tier": ["silver"]}]}, "all"),
    fails({"all": [{"store": ["s1"]}, {"tier": ["gold"]}]}, "tier is silver, needs gold", "all"),
    holds({"any": [{"store": ["s2"]}, {"tier": ["silver"]}]}, "any"),
    fails(
        {"any": [{"store": ["s2"]}, {"weekday": ["sun"]}]},
        "none of: store is s1, needs s2; weekday is mon, needs sun",
        "any",
    ),
    holds({"not": {"tier": ["gold"]}}, "not"),
    fails({"not": {"tier": ["silver"]}}, "an excluded condition holds", "not"),
    holds(
        {"any": [{"all": [{"member": True}, {"not": {"category": ["meat"]}}]}, {"coupon": True}]},
        "nested",
    ),
    # --- the promotion's own gates -------------------------------------------------
    fails(
        {"member": True},
        "starts at 2026-12-01T00:00:00+03:00",
        "starts-at",
        promotion={"starts_at": "2026-12-01T00:00:00+03:00"},
    ),
    fails(
        {"member": True},
        "ended at 2026-11-23T12:15:00+03:00",
        "ends-at-is-not-included",
        promotion={"ends_at": "2026-11-23T12:15:00+03:00"},
    ),
    holds(
        {"member": True},
        "between-starts-at-and-ends-at",
        promotion={
            "starts_at": "2026-11-23T12:15:00+03:00",
            "ends_at": "2026-11-23T12:16:00+03:00",
        },
    ),
    fails({"member": True}, "disabled", "enabled", promotion={"enabled": False}),
    fails(
        {"member": True},
        "a personal offer not assigned to this customer",
        "personal",
        promotion={"personal": True},
    ),
    holds(
        {"member": True},
        "personal",
        promotion={"personal": True},
        customer=replace(SILVER, offers=frozenset({"P"})),
    ),
    fails(
        {"member": True},
        "no line matches its lines",
        "lines-target",
        promotion={"lines": {"category": ["meat"]}},
    ),
]


@pytest.mark.parametrize(("when", "setup", "why"), ROWS)
def test_condition(when: dict[str, Any], setup: dict[str, Any], why: str) -> None:
    explanation, discount = outcome(when, **setup)

    assert explanation == why
    assert discount == ("10.00" if why == HOLDS else "0.00")


LIMITS = [
    pytest.param({}, [{"count": 1, "period": "day"}], HOLDS, id="never-used"),
    pytest.param(
        {"day": 1, "ever": 1},
        [{"count": 1, "period": "day"}],
        "limit reached: 1 a day per customer",
        id="once-a-day-used-today",
    ),
    pytest.param(
        {"day": 0, "week": 2, "ever": 5},
        [{"count": 1, "period": "day"}, {"count": 3, "period": "week"}],
        HOLDS,
        id="twice-this-week-of-three",
    ),
    pytest.param(
        {"day": 0, "week": 3},
        [{"count": 1, "period": "day"}, {"count": 3, "period": "week"}],
        "limit reached: 3 a week per customer",
        id="three-this-week-of-three",
    ),
    pytest.param(
        {"month": 4},
        [{"count": 4, "period": "month"}],
        "limit reached: 4 a month per customer",
        id="month",
    ),
    pytest.param(
        {"year": 12},
        [{"count": 12, "period": "year"}],
        "limit reached: 12 a year per customer",
        id="year",
    ),
    pytest.param(
        {"ever": 1},
        [{"count": 1, "period": "ever"}],
        "limit reached: 1 in all per customer",
        id="once-ever",
    ),
]


@pytest.mark.parametrize(("used", "limits", "why"), LIMITS)
def test_per_customer_limit(used: dict[str, int], limits: list[dict[str, Any]], why: str) -> None:
    customer = replace(SILVER, usage={"P": used})

    explanation, discount = outcome(
        {"member": True}, customer=customer, promotion={"limits": limits}
    )

    assert explanation == why
    assert discount == ("10.00" if why == HOLDS else "0.00")


def test_a_promotion_with_limits_is_for_members_only() -> None:
    explanation, discount = outcome(
        {"store": ["s1"]}, customer=None, promotion={"limits": [{"count": 1, "period": "day"}]}
    )

    assert explanation == "has a per-customer limit: members only"
    assert discount == "0.00"
