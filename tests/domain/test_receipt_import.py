"""Rows of a historical receipts file: the header, each row's rules, a receipt's rows.

Expected values are worked out by hand in the comments, or by ``Decimal`` arithmetic
independent of the parser's integer fast path (the property tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.domain.receipt_import import (
    HeaderError,
    ImportLine,
    ReceiptError,
    RowError,
    assemble,
    delimiter_of,
    parse_row,
    read_header,
    scaled,
)

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HEADER = "receipt_id,occurred_at,store,customer,sku,name,category,quantity,price,amount"
COLS = read_header(HEADER.split(","))


def row(**kw: str) -> list[str]:
    base = {
        "receipt_id": "R1",
        "occurred_at": "2025-03-01T10:15:00",
        "store": "msk-1",
        "customer": "C1",
        "sku": "100",
        "name": "Молоко",
        "category": "dairy",
        "quantity": "1",
        "price": "89.90",
        "amount": "",
    }
    base.update(kw)
    return [base[c] for c in HEADER.split(",")]


def parse(**kw: str) -> ImportLine:
    return parse_row(row(**kw), COLS, tz=MSK, now=NOW)


# --- the header ---------------------------------------------------------------------------


def test_columns_are_found_by_name_in_any_order_case_and_spaces_ignored() -> None:
    cols = read_header(
        [" Amount", "SKU ", "quantity", "customer", "store", "occurred_at", "receipt_id"]
    )

    assert (cols.amount, cols.sku, cols.quantity, cols.receipt_id) == (0, 1, 2, 6)
    assert (cols.name, cols.category, cols.price) == (None, None, None)


def test_a_header_without_sku_and_without_amount_or_price_names_both() -> None:
    with pytest.raises(HeaderError) as e:
        read_header(["receipt_id", "occurred_at", "store", "customer", "quantity", "name"])

    assert str(e.value) == "missing columns: sku, amount (or price)"


def test_price_alone_is_enough_for_the_amount() -> None:
    cols = read_header(
        ["receipt_id", "occurred_at", "store", "customer", "sku", "quantity", "price"]
    )

    assert cols.amount is None and cols.price == 6


def test_a_column_twice_is_refused() -> None:
    with pytest.raises(HeaderError, match="'sku' appears twice"):
        read_header([*HEADER.split(","), "sku"])


@pytest.mark.parametrize(
    ("line", "delimiter"),
    [(HEADER, ","), (HEADER.replace(",", ";"), ";"), ("a;b,c", ","), ("single", ",")],
)
def test_semicolon_only_when_the_header_has_no_comma(line: str, delimiter: str) -> None:
    assert delimiter_of(line) == delimiter


# --- one row --------------------------------------------------------------------------------


def test_amount_absent_is_quantity_times_price_rounded_half_up() -> None:
    # 0.5 x 99.99 = 49.995 -> 50.00 (half up); 1.234 x 99.99 = 123.38766 -> 123.39
    assert parse(quantity="0.5", price="99.99").amount_cents == 5000
    assert parse(quantity="1.234", price="99.99").amount_cents == 12339
    assert parse(quantity="3", price="10.00").amount_cents == 3000


def test_amount_given_is_what_was_paid_and_price_is_kept() -> None:
    x = parse(quantity="2", price="89.90", amount="150.00")

    assert (x.quantity_milli, x.price_cents, x.amount_cents) == (2000, 8990, 15000)


def test_price_with_more_decimals_is_allowed_with_an_amount_and_rounded_half_up() -> None:
    # 33.335 -> 33.34 (half up), the amount stands as paid
    x = parse(quantity="0.333", price="33.335", amount="11.10")

    assert (x.price_cents, x.amount_cents) == (3334, 1110)


def test_no_price_gives_amount_over_quantity_rounded_half_up() -> None:
    # 10.00 / 3 = 3.333... -> 3.33;  0.05 / 2 = 0.025 -> 0.03
    assert parse(quantity="3", price="", amount="10.00").price_cents == 333
    assert parse(quantity="2", price="", amount="0.05").price_cents == 3


def test_decimal_comma_and_digit_group_spaces_are_read() -> None:
    x = parse(quantity="1,5", price="1 234,50", amount="")

    # 1.5 x 1234.50 = 1851.75
    assert (x.quantity_milli, x.price_cents, x.amount_cents) == (1500, 123450, 185175)


def test_trailing_zeros_beyond_the_kopeck_are_not_extra_decimals() -> None:
    assert parse(amount="12.500", price="").amount_cents == 1250


def test_a_date_alone_is_local_midnight_and_a_naive_time_is_local() -> None:
    assert parse(occurred_at="2025-03-01").occurred_at == datetime(2025, 2, 28, 21, tzinfo=UTC)
    assert parse(occurred_at="2025-03-01 10:15").occurred_at == datetime(
        2025, 3, 1, 7, 15, tzinfo=UTC
    )
    assert parse(occurred_at="2025-03-01T10:15:00+05:00").occurred_at == datetime(
        2025, 3, 1, 5, 15, tzinfo=UTC
    )
    assert parse(occurred_at="2025-03-01T10:15:00Z").occurred_at == datetime(
        2025, 3, 1, 10, 15, tzinfo=UTC
    )


def test_empty_category_is_none_and_missing_optional_columns_are_empty() -> None:
    cols = read_header(
        ["receipt_id", "occurred_at", "store", "customer", "sku", "quantity", "amount"]
    )

    x = parse_row(["R", "2025-01-01", "", "", "S", "1", "5"], cols, tz=MSK, now=NOW)

    assert (x.name, x.category, x.price_cents, x.amount_cents, x.store) == ("", None, 500, 500, "")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"quantity": "-1"}, "quantity must be > 0 (returns are not imported)"),
        ({"quantity": "0"}, "quantity is 0"),
        ({"quantity": ""}, "quantity is empty"),
        ({"quantity": "1.2345"}, "quantity 1.2345 has more than 3 decimals"),
        ({"quantity": "two"}, "quantity 'two' is not a number"),
        ({"quantity": "NaN"}, "quantity 'NaN' is not a number"),
        ({"price": "-1"}, "price must be >= 0"),
        ({"amount": "-0.01"}, "amount must be >= 0"),
        ({"amount": "10.005"}, "amount 10.005 has more than 2 decimals"),
        ({"price": "10.005"}, "price 10.005 has more than 2 decimals and no amount is given"),
        ({"price": ""}, "amount is empty and there is no price to compute it"),
        ({"occurred_at": "01.03.2025"}, "occurred_at '01.03.2025' is not an ISO date or date-time"),
        ({"occurred_at": ""}, "occurred_at is empty"),
        (
            {"occurred_at": "2026-12-01T15:00:01"},
            "occurred_at '2026-12-01T15:00:01' is in the future",
        ),
        ({"sku": " "}, "sku is empty"),
        ({"receipt_id": ""}, "receipt_id is empty"),
        ({"sku": "x" * 65}, "sku is longer than 64 characters"),
        ({"name": "я" * 301}, "name is longer than 300 characters"),
        ({"category": "c" * 101}, "category is longer than 100 characters"),
        ({"customer": "7" * 65}, "customer is longer than 64 characters"),
        ({"amount": "1e13"}, "amount 1e13 is too large"),
    ],
)
def test_a_bad_row_is_refused_with_its_reason(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(RowError) as e:
        parse(**fields)

    assert str(e.value) == reason


def test_now_in_moscow_is_not_the_future() -> None:
    # NOW is 12:00 UTC = 15:00 in Moscow
    assert parse(occurred_at="2026-12-01T15:00:00").occurred_at == NOW


def test_a_row_with_the_wrong_number_of_fields_is_refused() -> None:
    with pytest.raises(RowError, match="9 fields where the header has 10"):
        parse_row(row()[:-1], COLS, tz=MSK, now=NOW)


# --- a receipt of rows ----------------------------------------------------------------------


def test_a_receipt_is_its_rows_in_file_order_and_costs_their_sum() -> None:
    a, b = parse(sku="1", amount="10.10"), parse(sku="2", amount="0.90")

    r = assemble([(2, a), (7, b)])

    assert [x.sku for x in r.lines] == ["1", "2"]
    assert r.amount_cents == 1100


def test_rows_that_disagree_on_the_store_name_the_line() -> None:
    with pytest.raises(ReceiptError) as e:
        assemble([(2, parse()), (3, parse()), (9, parse(store="spb-1"))])

    assert (e.value.line, str(e.value)) == (9, "store differs from line 2 of the same receipt")


# --- properties: never a kopeck lost ---------------------------------------------------------


def _text(value: Decimal, places: int, style: int) -> str:
    text = f"{value:.{places}f}"
    if style == 1:  # decimal comma, as a Russian spreadsheet writes it
        text = text.replace(".", ",")
    elif style == 2:  # trailing zeros
        text += "00"
    elif style == 3 and value >= 1000:  # digit groups
        whole, _, frac = text.partition(".")
        text = f"{int(whole):,}".replace(",", " ") + "." + frac
    return text


@given(
    cents=st.integers(min_value=0, max_value=10**13),
    style=st.integers(min_value=0, max_value=3),
)
def test_an_amount_is_read_to_the_exact_kopeck(cents: int, style: int) -> None:
    value = Decimal(cents).scaleb(-2)

    assert scaled(_text(value, 2, style), 2, "amount") == cents


@given(
    milli=st.integers(min_value=1, max_value=10**7),
    cents=st.integers(min_value=0, max_value=10**9),
)
def test_quantity_times_price_is_rounded_half_up_like_decimal(milli: int, cents: int) -> None:
    q, p = Decimal(milli).scaleb(-3), Decimal(cents).scaleb(-2)
    expected = (q * p).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    x = parse(quantity=f"{q:.3f}", price=f"{p:.2f}", amount="")

    assert Decimal(x.amount_cents).scaleb(-2) == expected


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30))
def test_a_receipt_costs_exactly_the_sum_of_its_paid_amounts(amounts: list[int]) -> None:
    rows = [
        (i + 2, parse(sku=str(i), amount=f"{Decimal(a).scaleb(-2):.2f}"))
        for i, a in enumerate(amounts)
    ]

    r = assemble(rows)

    assert Decimal(r.amount_cents).scaleb(-2) == sum(Decimal(a).scaleb(-2) for a in amounts)
