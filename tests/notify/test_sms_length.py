"""SMS length and parts: GSM-7 160/153, UCS-2 70/67, escapes and surrogates never split."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from kopilka.notify.sms import GSM7_BASIC, GSM7_EXTENSION, sms_length

basic = st.text(alphabet=sorted(GSM7_BASIC))
gsm = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION))
# at least one Cyrillic letter: that alone makes the whole text UCS-2
cyrillic = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВ"),
    st.text(alphabet="абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВ ,.!0123456789"),
)


def test_a_latin_text_of_160_characters_is_one_sms_and_161_are_two() -> None:
    assert sms_length("a" * 160) == sms_length("a" * 160).__class__("gsm7", 160, 1, 160)
    assert (sms_length("a" * 161).segments, sms_length("a" * 161).per_segment) == (2, 153)
    assert sms_length("a" * 306).segments == 2
    assert sms_length("a" * 307).segments == 3


def test_a_russian_text_of_70_characters_is_one_sms_and_71_are_two() -> None:
    assert (sms_length("я" * 70).encoding, sms_length("я" * 70).segments) == ("ucs2", 1)
    assert sms_length("я" * 71).segments == 2
    assert sms_length("я" * 134).segments == 2
    assert sms_length("я" * 135).segments == 3


def test_extension_characters_take_two_septets_and_the_euro_stays_whole() -> None:
    assert sms_length("€" * 80).units == 160
    assert sms_length("€" * 80).segments == 1
    # 152 septets then an escape pair: it does not fit the first part's last septet
    assert sms_length("a" * 152 + "€" + "a" * 10).segments == 2
    assert sms_length("a" * 152 + "€" * 77).segments == 3


def test_an_emoji_takes_two_units_and_makes_the_text_ucs2() -> None:
    got = sms_length("Привет 🎉")
    assert (got.encoding, got.units, got.segments) == ("ucs2", 9, 1)


def test_empty_text_costs_nothing() -> None:
    assert sms_length("").segments == 0


@given(basic)
def test_basic_gsm_text_costs_one_part_up_to_160_then_153_each(text: str) -> None:
    got = sms_length(text)
    n = len(text)
    expected = 0 if n == 0 else 1 if n <= 160 else math.ceil(n / 153)
    assert (got.encoding, got.units, got.segments) == ("gsm7", n, expected)


@given(cyrillic)
def test_cyrillic_text_costs_one_part_up_to_70_then_67_each(text: str) -> None:
    got = sms_length(text)
    n = len(text)
    assert (got.encoding, got.units) == ("ucs2", n)
    assert got.segments == (1 if n <= 70 else math.ceil(n / 67))


@given(gsm, gsm)
def test_adding_text_never_makes_a_message_cheaper(a: str, b: str) -> None:
    assert sms_length(a + b).segments >= sms_length(a).segments


@given(st.text())
def test_parts_always_hold_the_text(text: str) -> None:
    got = sms_length(text)
    assert got.segments * got.per_segment >= got.units
    assert (got.segments == 0) == (text == "")
    assert got.encoding == (
        "gsm7" if all(c in GSM7_BASIC | GSM7_EXTENSION for c in text) else "ucs2"
    )
