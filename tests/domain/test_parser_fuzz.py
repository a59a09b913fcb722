"""Fuzzing the parsers of text from outside: whatever arrives, the answer is a value or a
clean refusal, never an exception escaping (which the API turns into a 500 and the
import into a crash).

Each parser gets arbitrary text (hypothesis's unicode, which reaches superscript and
Arabic-Indic digits, exponents and huge numbers) and text shaped like its input.  The
``@example`` rows are the inputs that broke a parser once (issue 10).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kopilka.api.pos.numbers import rounded_numbers
from kopilka.api.pos.routes import _body
from kopilka.api.pos.schemas import PurchaseIn
from kopilka.api.problems import validation_errors
from kopilka.domain import coupons, qr
from kopilka.domain.giftcards import is_valid_gift_card_number, luhn_check_digit
from kopilka.domain.identifiers import ean13_check_digit, is_valid_card_number
from kopilka.domain.receipt_import import (
    RowError,
    amount_and_price,
    parse_number,
    parse_row,
    parse_when,
    read_header,
    scaled,
)
from kopilka.services.errors import ServiceError
from kopilka.services.phones import to_e164
from kopilka.services.purchases import identifier_values

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

# Digits of every kind str.isdigit() admits: ASCII, Arabic-Indic (Nd), superscripts and
# circled digits (No: isdigit() is true, int() refuses them).
DIGITS = "0123456789" + "٠١٢٣٤٥٦٧٨٩" + "²³¹⁰" + "①②"
digit_text = st.text(alphabet=DIGITS, min_size=0, max_size=21)
number_like = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789.,-+eE _\u00a0", max_size=30),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
    st.integers().map(str),
    st.sampled_from(["NaN", "sNaN", "-Infinity", "inf", "1e400", "1E-400", "0e999999999"]),
)


# --- the POS money parser (pydantic, strict, JSON number or string) --------------------


def _as_json(text: str) -> list[bytes]:
    """The value as a JSON string, and as a bare JSON number when it looks like one."""
    out = [orjson.dumps(text)]
    if re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?", text):
        out.append(text.encode())
    return out


FIELDS = [  # (field, where it sits in a calculate body, lowest, highest, decimals)
    ("lines[0].price", ("lines", 0, "price"), Decimal("0"), Decimal("100000000"), 2),
    ("lines[0].quantity", ("lines", 0, "quantity"), None, Decimal("100000"), 3),
    ("redeem_points", ("redeem_points",), Decimal("0"), Decimal("1000000000"), 2),
    ("gift_cards[0].amount", ("gift_cards", 0, "amount"), Decimal("0"), Decimal("100000000"), 2),
]


def _calculate_body(where: tuple[str | int, ...], raw: bytes) -> bytes:
    body: dict[str, Any] = {
        "receipt_id": "r1",
        "lines": [{"sku": "a", "quantity": "1", "price": "10.00"}],
        "gift_cards": [{"number": "1000000000009", "pin": "1234", "amount": "1.00"}],
    }
    node: Any = body
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = "@@"
    return orjson.dumps(body).replace(b'"@@"', raw)


@pytest.mark.parametrize(("name", "where", "low", "high", "places"), FIELDS, ids=lambda x: x)
@settings(max_examples=80)
@given(text=number_like)
@example(text="1e400")
@example(text="12,50")
@example(text="1" * 5000)
@example(text="1E+5")
@example(text="100000000.001")
@example(text="1E-400")  # was read as 0 (pydantic reads a JSON number through a float)
@example(text="1.000000000000000000001")  # was read as 1
@example(text="99999999.999999999999")  # was read as 100000000
def test_an_amount_is_the_exact_decimal_written_or_a_validation_error_naming_it(
    name: str,
    where: tuple[str | int, ...],
    low: Decimal | None,
    high: Decimal,
    places: int,
    text: str,
) -> None:
    for raw in _as_json(text):
        try:
            parsed = _body(PurchaseIn, _calculate_body(where, raw))
        except ValidationError as exc:
            errors = {e["field"]: e["code"] for e in validation_errors(exc)}
            if len(raw) > 4000:  # beyond the JSON parser's number: 400 malformed_json
                assert errors == {"body": "malformed_json"} or name in errors
            else:
                assert name in errors, (raw[:80], errors)
            continue
        except ServiceError as exc:
            assert (exc.code, exc.field) == ("validation_failed", name), (raw, exc)
            continue

        value = _value(parsed, where)
        exact = Decimal(text)  # what was written, read by Decimal itself
        assert value == exact, (raw, value)
        assert value.is_finite()
        assert (exact >= low) if low is not None else (exact > 0)
        assert exact <= high
        assert exact == exact.quantize(Decimal(1).scaleb(-places))


def _value(parsed: PurchaseIn, where: tuple[str | int, ...]) -> Decimal:
    node: Any = parsed
    for key in where:
        node = node[key] if isinstance(key, int) else getattr(node, key)
    assert isinstance(node, Decimal)
    return node


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"1.000000000000000000001", "lines[0].price"),
        (b"1E-400", "lines[0].price"),
        (b"10.00000000000000000001", "lines[0].price"),
    ],
)
def test_a_batch_receipt_with_a_number_a_float_would_round_is_refused_by_name(
    raw: bytes, field: str
) -> None:
    body = b'{"receipts": [' + _calculate_body(("lines", 0, "price"), raw) + b"]}"

    assert rounded_numbers(body) == ["receipts[0]." + field]
    assert rounded_numbers(body.replace(raw, b'"' + raw + b'"')) == []


_RISKY_SPEC = re.compile(rb"[0-9.]{16}|[0-9.][eE][-+]?[0-9]")


@settings(max_examples=300)
@given(
    raw=st.binary(max_size=60)
    | st.text(alphabet='0123456789.eE+-x" ,:', max_size=60).map(str.encode)
)
@example(raw=b"510E-.+1")  # a dot is not the exponent's digit
@example(raw=b"1.000000000000000")  # 16 digits and dots
@example(raw=b"1e5")
def test_the_pre_check_finds_exactly_what_its_pattern_describes(raw: bytes) -> None:
    """The fast pre-check (no regular expression) flags a body exactly when the pattern in
    its docstring matches: a body it misses would let a float round a number."""
    from kopilka.api.pos.numbers import _risky

    assert _risky(raw) == bool(_RISKY_SPEC.search(raw))


number_token = st.from_regex(r"\A-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?\Z")


@settings(max_examples=200)
@given(
    items=st.lists(
        st.one_of(st.text(max_size=24), st.from_regex(r"\A[0-9]{12,20}\Z"), number_token),
        max_size=8,
    ),
    as_number=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_numbers_are_checked_and_strings_like_card_numbers_are_not(
    items: list[str], as_number: list[bool]
) -> None:
    """A body with a number the pattern flags always gets the full check; strings (a
    16-digit card number, a SKU) never cause it unless the body has escapes."""
    from kopilka.api.pos.numbers import _outside_strings, _risky

    tokens, numbers = [], []
    for item, numeric in zip(items, as_number, strict=False):
        if numeric and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", item):
            tokens.append(item.encode())
            numbers.append(item.encode())
        else:
            tokens.append(orjson.dumps(item))
    raw = b"[" + b",".join(tokens) + b"]"
    flagged = _risky(_outside_strings(raw))
    if any(_RISKY_SPEC.search(n) for n in numbers):
        assert flagged
    elif b"\\" not in raw:
        assert not flagged


# --- phones -----------------------------------------------------------------------------


phone_like = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789+()- .٠١٢٣٤٥٦٧٨٩x#*", max_size=24),
    st.from_regex(r"\A(\+7|8|7)?[ (]?9[0-9]{2}[) ]?[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{2}\Z"),
)


@settings(max_examples=100)
@given(raw=phone_like)
@example(raw="+7 (903) 123-45-67")
@example(raw="8 903 123 45 67")
@example(raw="+7 903 123-45-67 доб. 5")
def test_a_phone_is_a_valid_e164_number_or_none_and_normalising_again_changes_nothing(
    raw: str,
) -> None:
    phone = to_e164(raw)

    if phone is not None:
        assert E164.match(phone), phone
        assert to_e164(phone) == phone


def test_a_russian_mobile_written_any_usual_way_is_one_number() -> None:
    ways = ["+7 (903) 123-45-67", "8 903 123 45 67", "89031234567", "9031234567", "+79031234567"]

    assert {to_e164(x) for x in ways} == {"+79031234567"}


@settings(max_examples=100)
@given(raw=st.one_of(st.text(max_size=70), phone_like, digit_text))
@example(raw="KQ" + "1" * 13)
def test_a_scanned_identifier_gives_lookup_values_never_an_error(raw: str) -> None:
    values = identifier_values(raw)

    assert values[0] == raw.strip() or raw.strip().startswith(qr.PREFIX)
    assert all(isinstance(v, str) for v in values)
    assert all(E164.match(v) for v in values[1:])


# --- card numbers, gift-card numbers, QR tokens, coupon codes -----------------------------


@settings(max_examples=100)
@given(number=st.one_of(digit_text, st.text(max_size=20)))
@example(number="²" * 13)  # isdigit() but int() refuses: raised ValueError
@example(number="①" * 13)
@example(number="١٢٣٤٥٦٧٨٩٠١٢٨")
def test_a_card_number_is_valid_or_not_never_an_error(number: str) -> None:
    valid = is_valid_card_number(number)

    if valid:  # only plain ASCII digits can be on a card (and in the index)
        assert re.fullmatch(r"[0-9]{13}", number), number
        assert ean13_check_digit(number[:12]) == number[12]


@settings(max_examples=100)
@given(number=st.one_of(digit_text, st.text(max_size=20)))
@example(number="²" * 13)  # raised ValueError: a 500 for gift_cards[0].number at calculate
@example(number="①" * 16)
@example(number="١٢٣٤٥٦٧٨٩٠١٢٨")  # Arabic-Indic digits passed the check digit
def test_a_gift_card_number_is_valid_or_not_never_an_error(number: str) -> None:
    valid = is_valid_gift_card_number(number)

    if valid:
        assert re.fullmatch(r"[0-9]{8,19}", number), number
        assert luhn_check_digit(number[:-1]) == number[-1]


@pytest.mark.parametrize("check", [ean13_check_digit, luhn_check_digit])
@pytest.mark.parametrize("payload", ["²" * 12, "١" * 12, "12345678901a"])
def test_a_check_digit_of_anything_but_ascii_digits_is_refused(check: object, payload: str) -> None:
    with pytest.raises(ValueError, match="digits"):
        check(payload)  # type: ignore[operator]


SECRET = b"s" * 32


@settings(max_examples=100)
@given(
    value=st.one_of(
        st.text(max_size=64),
        st.builds(
            lambda card, rest: qr.PREFIX + card + rest,
            st.text(alphabet=DIGITS, min_size=13, max_size=13),
            st.text(alphabet="0123456789abcdefABCDEF_ +-xX", min_size=0, max_size=30),
        ),
    )
)
@example(value="KQ" + "1" * 13 + "_" * 11)
def test_a_qr_token_names_a_card_only_when_genuine(value: str) -> None:
    genuine = {qr.token(c, SECRET, NOW) for c in ["1000000000009"]}

    card = qr.card_of(value, SECRET, NOW)

    assert card is None or value in genuine


def test_a_fresh_token_names_its_card_and_one_changed_character_does_not() -> None:
    tok = qr.token("2000000000015", SECRET, NOW)
    wrong = tok[:-1] + ("0" if tok[-1] != "0" else "1")

    assert qr.card_of(tok, SECRET, NOW) == "2000000000015"
    assert qr.card_of(wrong, SECRET, NOW) is None
    assert qr.card_of(tok, None, NOW) is None


@settings(max_examples=100)
@given(
    typed=st.one_of(st.text(max_size=40), st.text(alphabet=coupons.ALPHABET + "-_ io", max_size=20))
)
@example(typed="ß" * 6)
@example(typed="ﬃ" * 5)
def test_a_typed_coupon_code_normalises_to_a_fixed_point_and_checks_without_error(
    typed: str,
) -> None:
    code = coupons.normalise(typed)

    assert coupons.normalise(code) == code
    assert isinstance(coupons.is_well_formed(code), bool)
    if coupons.is_well_formed(code):
        assert set(code) <= set(coupons.ALPHABET)


# --- the CSV import's fields ------------------------------------------------------------


@settings(max_examples=100)
@given(text=number_like, places=st.sampled_from([2, 3]))
@example(text="1" * 5000, places=2)  # int() of 4300+ digits raised ValueError
@example(text="1" * 4400 + ".5", places=3)
@example(text="1e999999999", places=2)  # abs() raised decimal.Overflow
@example(text="1e-999999999", places=2)
@example(text="-0", places=2)
def test_an_import_number_is_exact_or_refused_with_a_reason(text: str, places: int) -> None:
    try:
        value = scaled(text, places, "amount")
    except RowError as exc:
        assert str(exc)
        return

    if value is None:
        assert not text.strip()
        return
    exact = parse_number(text, "amount")
    assert exact is not None
    assert Decimal(value).scaleb(-places) == exact


@settings(max_examples=100)
@given(amount=number_like, price=number_like, milli=st.integers(1, 10**12))
@example(amount="", price="1" * 5000, milli=1000)  # int() of 4300+ digits raised
@example(amount="1", price="1" * 40 + ".555", milli=1000)  # quantize past 28 digits raised
def test_an_import_amount_and_price_are_kopecks_or_a_refusal(
    amount: str, price: str, milli: int
) -> None:
    try:
        cents = amount_and_price(amount, price, milli)
    except RowError:
        return

    amount_cents, price_cents = cents
    assert 0 <= amount_cents <= 10**14  # the import's limit, 1e12 roubles
    assert 0 <= price_cents < 2**63  # amount / 0.001 at most: fits the BIGINT column


@settings(max_examples=100)
@given(text=st.one_of(st.text(max_size=40), st.datetimes().map(str), st.dates().map(str)))
@example(text="9999-12-31T23:59:59-23:59")
@example(text="0001-01-01T00:00:00+23:59")
@example(text="0001-01-01")
def test_an_import_time_is_utc_in_the_past_or_refused(text: str) -> None:
    try:
        when = parse_when(text, MSK, NOW)
    except RowError:
        return

    assert when.tzinfo == UTC
    assert when <= NOW


HEADER = [
    "receipt_id",
    "occurred_at",
    "store",
    "customer",
    "sku",
    "name",
    "category",
    "quantity",
    "price",
    "amount",
]


@settings(max_examples=100)
@given(fields=st.lists(st.one_of(st.text(max_size=12), number_like), min_size=0, max_size=12))
def test_an_import_row_of_anything_is_a_line_or_a_reason(fields: list[str]) -> None:
    cols = read_header(HEADER)

    try:
        line = parse_row(fields, cols, tz=MSK, now=NOW)
    except RowError as exc:
        assert str(exc)
        return

    assert line.quantity_milli > 0
    assert line.amount_cents >= 0 and line.price_cents >= 0
