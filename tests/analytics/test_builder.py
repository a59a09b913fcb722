"""The report builder on a small shop, both databases: every expected value below is
computed by hand from the receipts in ``november`` (see the table in its docstring)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from kopilka.analytics import builder
from kopilka.domain import report_builder as rb
from kopilka.services import saved_reports
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from tests.analytics.conftest import NOV, Till, till_for, utc

D = Decimal


def owner(till: Till) -> Actor:
    return Actor("user", 1, "Owner", role="owner", program_id=till.shop.program_id)


async def run(till: Till, **definition: Any) -> list[tuple[Any, ...]]:
    d = saved_reports.parse_definition({"period": NOV, **definition})
    res = await saved_reports.run_definition(till.rt, owner(till), till.shop.program_id, d)
    return res.rows


async def test_receipt_level_measures_by_city(november: Till) -> None:
    rows = await run(
        november,
        dimensions=["city"],
        measures=["sales", "receipts", "avg_receipt", "items", "members"],
    )

    # Казань: R3 + R5; Москва: R1 + R2 (R4 cancelled, R6 is December locally)
    assert rows == [
        ("Казань", D("591.00"), 2, D("295.50"), D("6.5"), 1),
        ("Москва", D("200.49"), 2, D("100.25"), D("4"), 1),  # 200.49 / 2 = 100.245 -> 100.25
    ]


async def test_line_dimension_counts_each_receipt_once_and_sums_lines(november: Till) -> None:
    rows = await run(
        november,
        dimensions=["category"],
        measures=["sales", "receipts", "items", "discount", "points_earned", "points_burned"],
    )

    # dairy: lines of R1, R2, R3 (two lines) -> 3 receipts, not 4; bakery: R1, R3, R5
    assert rows == [
        ("dairy", D("599.99"), 3, D("6.5"), D("25.00"), D("55.00"), D("80.00")),
        ("bakery", D("191.50"), 3, D("4"), D("5.00"), D("15.15"), D("20.00")),
    ]


async def test_a_category_filter_alone_reads_lines(november: Till) -> None:
    rows = await run(november, measures=["sales", "receipts"], filters={"categories": ["bakery"]})

    assert rows == [(D("191.50"), 3)]


async def test_totals_without_dimensions(november: Till) -> None:
    rows = await run(
        november,
        measures=[
            "sales",
            "receipts",
            "items",
            "members",
            "points_earned",
            "points_burned",
            "discount",
        ],
    )

    assert rows == [(D("791.49"), 4, D("10.5"), 2, D("70.15"), D("100.00"), D("30.00"))]


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        # R1 is 2 November in UTC but 3 November in Moscow; R5 is 31 October in UTC
        (
            "day",
            [
                (date(2026, 11, 1), D("40.00")),
                (date(2026, 11, 3), D("200.49")),
                (date(2026, 11, 10), D("551.00")),
            ],
        ),
        # 1 November 2026 is a Sunday: its week starts on Monday 26 October
        (
            "week",
            [
                (date(2026, 10, 26), D("40.00")),
                (date(2026, 11, 2), D("200.49")),
                (date(2026, 11, 9), D("551.00")),
            ],
        ),
        ("month", [(date(2026, 11, 1), D("791.49"))]),
    ],
)
async def test_days_weeks_and_months_are_local(
    november: Till, unit: str, expected: list[Any]
) -> None:
    rows = await run(november, dimensions=[unit], measures=["sales"])

    assert rows == expected


async def test_days_across_a_daylight_saving_change(make_shop: Any) -> None:
    # Berlin leaves summer time at 01:00 UTC on 25 October 2026 (UTC+2 -> UTC+1)
    shop = await make_shop(timezone="Europe/Berlin")
    till = await till_for(shop)
    await till.store("A", name="Mitte", city="Berlin", region="Berlin")
    line = [("x", "c", "1", "10.00", "0", "0", "0")]
    await till.receipt("A", utc(2026, 10, 24, 22, 30), line)  # 25 Oct 00:30 CEST
    await till.receipt("A", utc(2026, 10, 25, 22, 30), line)  # 25 Oct 23:30 CET
    await till.receipt("A", utc(2026, 10, 25, 23, 30), line)  # 26 Oct 00:30 CET
    actor = Actor("user", 1, "Owner", role="owner")
    d = saved_reports.parse_definition(
        {
            "dimensions": ["day"],
            "measures": ["receipts"],
            "period": {"from": "2026-10-20", "to": "2026-10-31"},
        }
    )

    res = await saved_reports.run_definition(till.rt, actor, shop.program_id, d)

    assert res.rows == [(date(2026, 10, 25), 2), (date(2026, 10, 26), 1)]


@pytest.mark.parametrize(
    ("filters", "sales"),
    [
        ({"member": False}, "49.99"),  # R2
        ({"member": True}, "741.50"),
        ({"tiers": ["gold"]}, "150.50"),  # m1: R1
        ({"segments": ["champions"]}, "150.50"),
        ({"stores": ["B"]}, "591.00"),
        ({"regions": ["Татарстан"]}, "591.00"),
        ({"cashiers": ["c2"]}, "89.99"),  # R2 + R5
        ({"cities": ["Москва"], "cashiers": ["c1"]}, "150.50"),
    ],
)
async def test_filters(november: Till, filters: dict[str, Any], sales: str) -> None:
    rows = await run(november, measures=["sales"], filters=filters)

    assert rows == [(D(sales),)]


async def test_member_and_tier_dimensions_with_sort_and_limit(november: Till) -> None:
    rows = await run(
        november,
        dimensions=["member", "tier"],
        measures=["sales", "members"],
        sort={"by": "sales", "desc": False},
    )
    assert rows == [
        ("non-member", "—", D("49.99"), 0),
        ("member", "gold", D("150.50"), 1),
        ("member", "—", D("591.00"), 1),
    ]

    top = await run(november, dimensions=["sku"], measures=["sales"], limit=2)
    # milk 100 + 49.99 + 150 = 299.99; cheese 300; bread 50.50 + 101 + 40 = 191.50
    assert top == [("cheese", D("300.00")), ("milk", D("299.99"))]


async def test_store_and_cashier_by_average_receipt(november: Till) -> None:
    rows = await run(
        november,
        dimensions=["store", "cashier"],
        measures=["avg_receipt"],
        sort={"by": "avg_receipt"},
    )

    assert rows == [
        ("Баумана", "c1", D("551.00")),
        ("Тверская", "c1", D("150.50")),
        ("Тверская", "c2", D("49.99")),
        ("Баумана", "c2", D("40.00")),
    ]


async def test_a_partner_sees_only_its_own_receipts(november: Till, make_shop: Any) -> None:
    other = Actor(
        "user", 2, "Partner", role="partner", partner_id=november.shop.partner_id + 10_000
    )
    d = saved_reports.parse_definition({"measures": ["sales"], "period": NOV})

    res = await saved_reports.run_definition(november.rt, other, november.shop.program_id, d)

    assert res.rows == [(D("0.00"),)]


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"measures": []}, "measures"),
        ({"measures": ["profit"]}, "measures[0]"),
        ({"measures": ["sales"], "dimensions": ["day", "week"]}, "definition"),
        ({"measures": ["sales"], "dimensions": ["a", "b", "c", "d"]}, "dimensions"),
        ({"measures": ["sales"], "period": {"from": "2026-11-05", "to": "2026-11-01"}}, "period"),
        ({"measures": ["sales"], "period": {"relative": "next week"}}, "period.relative"),
        ({"measures": ["sales"], "chart": "pie"}, "definition"),
        ({"measures": ["sales"], "limit": 0}, "limit"),
        ({"measures": ["sales"], "filters": {"colour": ["red"]}}, "filters.colour"),
        ({"measures": ["sales"], "sort": {"by": "city"}}, "definition"),
    ],
)
def test_invalid_definitions_name_the_field(definition: dict[str, Any], field: str) -> None:
    with pytest.raises(ServiceError) as err:
        saved_reports.parse_definition(definition)

    assert err.value.code == "validation_failed"
    assert err.value.field == field


def test_the_chart_of_two_dimensions() -> None:
    d = rb.Definition.model_validate(
        {"dimensions": ["city", "category"], "measures": ["sales"], "chart": "stacked_bar"}
    )
    res = builder.Result(
        d,
        date(2026, 11, 1),
        date(2026, 11, 30),
        ["city", "category", "sales"],
        [
            ("Москва", "dairy", D("149.99")),
            ("Казань", "dairy", D("450")),
            ("Москва", "bakery", D("50.50")),
        ],
        False,
    )

    option = builder.chart_option(res)

    assert option is not None
    assert option["xAxis"]["data"] == ["Москва", "Казань"]
    assert [(s["name"], s["data"]) for s in option["series"]] == [
        ("dairy", [149.99, 450.0]),
        ("bakery", [50.5, None]),
    ]
