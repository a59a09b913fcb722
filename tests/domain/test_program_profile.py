"""A program's own name of its points and the profile's validation (issue 9): pure."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.domain.program import ProfileInvalid, ProgramProfile, check_profile
from kopilka.formatting import points

MILES = ProgramProfile(points_ru=("миля", "мили", "миль"), points_en=("mile", "miles"))


def russian_form(n: int) -> int:
    """The school rule, written independently of Babel: 0 one, 1 few, 2 many."""
    if n % 10 == 1 and n % 100 != 11:
        return 0
    if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
        return 1
    return 2


@given(st.integers(min_value=0, max_value=10**9))
def test_whole_miles_take_the_russian_plural_of_the_school_rule(n: int) -> None:
    text = points("ru", Decimal(n), MILES.points_forms("ru"))

    assert text.endswith(" " + MILES.points_ru[russian_form(n)])


@pytest.mark.parametrize(
    ("value", "ru", "en"),
    [
        ("1", "1 миля", "1 mile"),
        ("3", "3 мили", "3 miles"),
        ("11", "11 миль", "11 miles"),
        ("21", "21 миля", "21 miles"),
        ("1.5", "1,50 мили", "1.50 miles"),
        ("100.00", "100 миль", "100 miles"),
    ],
)
def test_a_programs_unit_in_both_languages(value: str, ru: str, en: str) -> None:
    assert points("ru", Decimal(value), MILES.points_forms("ru")).replace("\xa0", " ") == ru
    assert points("en", Decimal(value), MILES.points_forms("en")) == en


def test_without_a_profile_points_are_balls_as_before() -> None:
    assert points("ru", Decimal(3)) == "3 балла"
    assert points("ru", Decimal(3), ProgramProfile().points_forms("ru")) == "3 балла"


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ProfileInvalid) as err:
        check_profile(
            {
                "points_ru": ["миля", ""],
                "sms_sender": "Very-Long-Sender",
                "primary_colour": "red",
                "language": "de",
                "support_url": "http://example.ru",
                "support_email": "nobody",
                "colour": "#000000",
            }
        )

    assert sorted(f for f, _ in err.value.problems) == [
        "colour",
        "language",
        "points_ru",
        "primary_colour",
        "sms_sender",
        "support_email",
        "support_url",
    ]


@pytest.mark.parametrize(
    ("sender", "ok"),
    [("MILES", True), ("Kopilka 24", True), ("A", True), ("12345", False), ("Миля", False),
     ("TwelveChars1", False), (" Lead", False)],
)  # fmt: skip
def test_sms_sender_names_follow_the_operators_rules(sender: str, ok: bool) -> None:
    if ok:
        assert check_profile({"sms_sender": sender}).sms_sender == sender
    else:
        with pytest.raises(ProfileInvalid):
            check_profile({"sms_sender": sender})


def test_empty_values_clear_the_optional_fields_and_colour_is_kept_lower_case() -> None:
    p = check_profile({"primary_colour": "#1E6FD9", "sms_sender": "MILES", "language": "en"})

    cleared = check_profile({"primary_colour": "", "sms_sender": "", "language": ""}, p)

    assert (p.primary_colour, p.sms_sender, p.language) == ("#1e6fd9", "MILES", "en")
    assert (cleared.primary_colour, cleared.sms_sender, cleared.language) == (None, None, None)
