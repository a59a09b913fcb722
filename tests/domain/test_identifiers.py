"""Card numbers with an EAN-13 check digit; masking of what the cashier sees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.domain.identifiers import (
    ean13_check_digit,
    is_valid_card_number,
    make_card_number,
    mask_card,
    mask_name,
    mask_phone,
)


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("4006381333931", id="gs1-textbook"),
        pytest.param("5901234123457", id="gs1-sample"),
        pytest.param("9780306406157", id="isbn-13"),
        pytest.param("0012345678905", id="upc-a-as-ean-13"),
    ],
)
def test_check_digit_of_known_barcodes(number: str) -> None:
    digit = ean13_check_digit(number[:12])

    assert digit == number[12]
    assert is_valid_card_number(number) is True


def test_check_digit_weights_odd_positions_three_times() -> None:
    # 2x1 + 7x3 + 0 ... + 1x3 = 26; 10 - 6 = 4
    payload = "270000000001"

    digit = ean13_check_digit(payload)

    assert digit == "4"


def test_check_digit_is_zero_when_the_sum_is_a_multiple_of_ten() -> None:
    payload = "000000000000"

    digit = ean13_check_digit(payload)

    assert digit == "0"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("40063813339", id="11-digits"),
        pytest.param("4006381333931", id="13-digits"),
        pytest.param("40063813339a", id="a-letter"),
        pytest.param("", id="empty"),
    ],
)
def test_check_digit_needs_exactly_twelve_digits(payload: str) -> None:
    with pytest.raises(ValueError, match="12 digits"):
        ean13_check_digit(payload)


def test_card_number_is_prefix_serial_and_check_digit() -> None:
    number = make_card_number("27", 1)

    assert number == "2700000000014"


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("4006381333932", id="wrong-check-digit"),
        pytest.param("4006381333913", id="two-digits-swapped"),
        pytest.param("400638133393", id="12-digits"),
        pytest.param("40063813339310", id="14-digits"),
        pytest.param("400638133393a", id="a-letter"),
        pytest.param("", id="empty"),
    ],
)
def test_a_mistyped_card_number_is_invalid(number: str) -> None:
    valid = is_valid_card_number(number)

    assert valid is False


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.sampled_from(["2", "27", "29", "460"]),
    serial=st.integers(min_value=0, max_value=10**9 - 1),
    position=st.integers(min_value=0, max_value=12),
    delta=st.integers(min_value=1, max_value=9),
)
def test_every_card_number_made_is_valid_and_any_one_digit_typo_is_caught(
    prefix: str, serial: int, position: int, delta: int
) -> None:
    number = make_card_number(prefix, serial)
    typo = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]

    assert len(number) == 13 and number.startswith(prefix)
    assert is_valid_card_number(number) is True
    assert is_valid_card_number(typo) is False


@pytest.mark.parametrize(
    ("first", "last", "masked"),
    [
        pytest.param("Иван", "Петров", "Иван П.", id="first-and-initial"),
        pytest.param("  Иван ", " Петров", "Иван П.", id="trimmed"),
        pytest.param("Иван", "", "Иван", id="first-only"),
        pytest.param("", "Петров", "П.", id="last-only"),
        pytest.param(" ", " ", "", id="nothing"),
    ],
)
def test_a_name_is_shown_as_first_name_and_initial(first: str, last: str, masked: str) -> None:
    shown = mask_name(first, last)

    assert shown == masked


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        pytest.param("2000000000017", "*********0017", id="13-digits"),
        pytest.param("1234", "1234", id="4-digits"),
        pytest.param("123", "123", id="shorter"),
    ],
)
def test_a_card_shows_only_its_last_four_digits(number: str, masked: str) -> None:
    shown = mask_card(number)

    assert shown == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        pytest.param("+79031234567", "+7******4567", id="russian-mobile"),
        pytest.param("+442071838750", "+4*******8750", id="london"),
        pytest.param("+7903", "*****", id="too-short-to-show-anything"),
    ],
)
def test_a_phone_shows_country_and_last_four_digits(phone: str, masked: str) -> None:
    shown = mask_phone(phone)

    assert shown == masked
