"""Rows of a historical receipts file, read and checked (``kopilka import receipts``).

Pure: no I/O, no clock (``now`` and the time zone come in).  One CSV row is one receipt
line; rows with the same ``receipt_id`` form one receipt.  The rules (ADR 0014):

- columns are found by header name, in any order, case and surrounding spaces ignored;
  ``name``, ``category`` and ``price`` may be missing from the header, ``amount`` too when
  ``price`` is there;
- ``occurred_at``: an ISO date or date-time; without an offset it is local time of ``tz``,
  a date alone is local midnight; stored in UTC; never in the future;
- ``quantity`` > 0 with at most 3 decimals (returns are not imported);
- ``amount`` is what was paid for the line: >= 0, at most 2 decimals; when absent it is
  ``quantity x price`` rounded half up to the kopeck, and then ``price`` must have at most
  2 decimals; ``price`` may have more decimals only when ``amount`` is given (it is then
  stored rounded half up to the kopeck; with no price at all the stored price is
  ``amount / quantity`` rounded the same way);
- a decimal comma is accepted (``12,50``), and spaces between digit groups;
- text fits its column (receipt id, store, customer and sku 64 characters, name 300,
  category 100).

Amounts leave this module as integers of minor units (kopecks, thousandths), exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from kopilka.domain.money import KOPECK

REQUIRED = ("receipt_id", "occurred_at", "store", "customer", "sku", "quantity")
OPTIONAL = ("name", "category", "price", "amount")
LIMITS = {"receipt_id": 64, "store": 64, "customer": 64, "sku": 64, "name": 300, "category": 100}
# Far above any real receipt, far below BIGINT minor units: a typo, not a purchase.
MONEY_MAX = Decimal("1000000000000")
QUANTITY_MAX = Decimal("1000000000")
_NUMBER_SPACES = str.maketrans("", "", " \u00a0\u202f")


class HeaderError(ValueError):
    """The file cannot be read as a receipts file (the message says why)."""


class RowError(ValueError):
    """One row is refused; the message is the reason written to the rejects file."""


@dataclass(frozen=True, slots=True)
class Columns:
    """Where each field is in a row (``None``: not in the file)."""

    receipt_id: int
    occurred_at: int
    store: int
    customer: int
    sku: int
    quantity: int
    name: int | None
    category: int | None
    price: int | None
    amount: int | None
    width: int


def delimiter_of(header_line: str) -> str:
    """A comma, or ``;`` when the header line has no comma (spreadsheets in Russia)."""
    return "," if "," in header_line or ";" not in header_line else ";"


def read_header(fields: Sequence[str]) -> Columns:
    """The columns of a header row; ``HeaderError`` names every missing column."""
    names = [f.strip().lstrip("\ufeff").strip().lower() for f in fields]
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in index and name in REQUIRED + OPTIONAL:
            raise HeaderError(f"column {name!r} appears twice in the header")
        index.setdefault(name, i)
    missing = [c for c in REQUIRED if c not in index]
    if "amount" not in index and "price" not in index:
        missing.append("amount (or price)")
    if missing:
        raise HeaderError(
            "missing column" + ("s" if len(missing) > 1 else "") + ": " + ", ".join(missing)
        )
    return Columns(
        receipt_id=index["receipt_id"],
        occurred_at=index["occurred_at"],
        store=index["store"],
        customer=index["customer"],
        sku=index["sku"],
        quantity=index["quantity"],
        name=index.get("name"),
        category=index.get("category"),
        price=index.get("price"),
        amount=index.get("amount"),
        width=len(fields),
    )


@dataclass(slots=True)
class ImportLine:
    """One checked row: money in kopecks, quantity in thousandths, time in UTC.
    (Not frozen: a frozen dataclass costs a third of the parse; nothing mutates it.)"""

    receipt_id: str
    occurred_at: datetime
    store: str
    customer: str
    sku: str
    name: str
    category: str | None
    quantity_milli: int
    price_cents: int
    amount_cents: int


def parse_row(fields: Sequence[str], cols: Columns, *, tz: tzinfo, now: datetime) -> ImportLine:
    """One row checked by the rules above; ``RowError`` with the reason otherwise.

    The hot loop of an import (tens of thousands of rows a second): the fields are read
    inline and plain numbers are scaled to integers without a ``Decimal``."""
    if len(fields) != cols.width and (
        len(fields) < cols.width or any(x.strip() for x in fields[cols.width :])
    ):  # empty fields after the last column (a trailing delimiter) are harmless
        raise RowError(f"{len(fields)} fields where the header has {cols.width}")
    receipt_id = fields[cols.receipt_id].strip()
    sku = fields[cols.sku].strip()
    store = fields[cols.store].strip()
    customer = fields[cols.customer].strip()
    name = fields[cols.name].strip() if cols.name is not None else ""
    category = fields[cols.category].strip() if cols.category is not None else ""
    if not receipt_id:
        raise RowError("receipt_id is empty")
    if not sku:
        raise RowError("sku is empty")
    if (
        len(receipt_id) > 64
        or len(sku) > 64
        or len(store) > 64
        or len(customer) > 64
        or len(name) > 300
        or len(category) > 100
    ):
        _too_long(receipt_id, sku, store, customer, name, category)
    quantity = _quantity(fields[cols.quantity])
    amount, price = amount_and_price(
        fields[cols.amount] if cols.amount is not None else "",
        fields[cols.price] if cols.price is not None else "",
        quantity,
    )
    return ImportLine(
        receipt_id,
        parse_when(fields[cols.occurred_at], tz, now),
        store,
        customer,
        sku,
        name,
        category or None,
        quantity,
        price,
        amount,
    )


def _too_long(*values: str) -> None:
    names = ("receipt_id", "sku", "store", "customer", "name", "category")
    for column, value in zip(names, values, strict=True):
        if len(value) > LIMITS[column]:
            raise RowError(f"{column} is longer than {LIMITS[column]} characters")


@lru_cache(maxsize=4096)
def parse_when(text: str, tz: tzinfo, now: datetime) -> datetime:
    """An ISO date or date-time as aware UTC; naive means local time of ``tz``.
    (Cached: the rows of a receipt, and often of many, share their time.)"""
    raw = text.strip()
    if not raw:
        raise RowError("occurred_at is empty")
    try:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        value = value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise RowError(f"occurred_at {raw!r} is not an ISO date or date-time") from None
    if value > now:
        raise RowError(f"occurred_at {raw!r} is in the future")
    return value


class TooPrecise(RowError):
    """More decimals than the column keeps."""


@lru_cache(maxsize=65536)
def scaled(text: str, places: int, column: str) -> int | None:
    """The number in ``text`` times ``10**places``, exact (``None`` when empty);
    ``TooPrecise`` when it has more decimals than ``places``.

    Plain numbers (``123``, ``123.45``) take a fast path of string and integer
    operations; anything else (a sign, a decimal comma, spaces, an exponent) goes
    through ``Decimal``.  Both give the same value (a property test checks it).  Cached:
    prices and quantities repeat all over a file."""
    raw = text.strip()
    if not raw:
        return None
    whole, _, frac = raw.partition(".")
    if whole.isascii() and whole.isdigit() and (not frac or (frac.isascii() and frac.isdigit())):
        frac = frac.rstrip("0")
        if len(frac) > places:
            raise TooPrecise(f"{column} {raw} has more than {places} decimals")
        if len(whole.lstrip("0")) > 18:  # far beyond any limit (and int() of 4300+ digits fails)
            raise RowError(f"{column} {raw[:20]}... is too large")
        value_int: int = int(whole) * 10**places
        return value_int + (int(frac) * 10 ** (places - len(frac)) if frac else 0)
    value = parse_number(raw, column)
    assert value is not None
    if abs(value) > MONEY_MAX:
        raise RowError(f"{column} {raw} is too large")
    unit = Decimal(1).scaleb(-places)
    if value.quantize(unit) != value:
        raise TooPrecise(f"{column} {raw} has more than {places} decimals")
    return int(value.scaleb(places))


def parse_number(text: str, column: str) -> Decimal | None:
    """A decimal as written in the file (``None`` when empty); a decimal comma is fine."""
    raw = text.strip()
    if not raw:
        return None
    raw = raw.translate(_NUMBER_SPACES)
    if "," in raw and "." not in raw:
        raw = raw.replace(",", ".")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise RowError(f"{column} {text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise RowError(f"{column} {text.strip()!r} is not a number")
    # An exponent far out of range ("1e999999999") overflows Decimal's arithmetic.
    if value.adjusted() > 20:
        raise RowError(f"{column} {text.strip()[:20]!r} is too large")
    if value and value.adjusted() < -20:
        raise TooPrecise(f"{column} {text.strip()[:20]!r} has too many decimals")
    return value


_QUANTITY_MAX = int(QUANTITY_MAX) * 1000
_MONEY_MAX = int(MONEY_MAX) * 100


@lru_cache(maxsize=4096)
def _quantity(text: str) -> int:
    """Thousandths, > 0 (cached: "1", "2" and "0.500" are most of a file)."""
    q = scaled(text, 3, "quantity")
    if q is None:
        raise RowError("quantity is empty")
    if q <= 0:
        raise RowError("quantity must be > 0 (returns are not imported)" if q else "quantity is 0")
    if q > _QUANTITY_MAX:
        raise RowError(f"quantity {text.strip()} is too large")
    return q


def _cents(value: int | None, column: str) -> int | None:
    if value is not None and not 0 <= value <= _MONEY_MAX:
        raise RowError(f"{column} must be >= 0" if value < 0 else f"{column} is too large")
    return value


@lru_cache(maxsize=65536)
def amount_and_price(amount_text: str, price_text: str, quantity: int) -> tuple[int, int]:
    """(amount paid, price) in kopecks, exact; see the module's rules.  (Cached: a
    product sold by the piece repeats its price, quantity and amount all over a file.)"""
    amount = _cents(scaled(amount_text, 2, "amount"), "amount")
    if amount is None:
        try:
            price = _cents(scaled(price_text, 2, "price"), "price")
        except TooPrecise:
            raise RowError(
                f"price {price_text.strip()} has more than 2 decimals and no amount is given"
            ) from None
        if price is None:
            raise RowError("amount is empty and there is no price to compute it")
        # quantity x price, half up to the kopeck: thousandths x kopecks / 1000
        amount = (quantity * price + 500) // 1000
        if amount > _MONEY_MAX:
            raise RowError("amount (quantity x price) is too large")
        return amount, price
    try:
        price = _cents(scaled(price_text, 2, "price"), "price")
    except TooPrecise:  # allowed with an amount: what was paid is the amount
        exact = parse_number(price_text, "price")
        assert exact is not None
        if abs(exact) > MONEY_MAX:  # before quantize, which fails past 28 digits
            raise RowError("price is too large") from None
        price = _cents(int(exact.quantize(KOPECK, rounding=ROUND_HALF_UP).scaleb(2)), "price")
    if price is None:  # amount / quantity, half up to the kopeck
        price = (2 * amount * 1000 + quantity) // (2 * quantity)
    return amount, price


@dataclass(frozen=True, slots=True)
class ImportReceipt:
    """The rows of one receipt, in file order, checked to agree with each other."""

    receipt_id: str
    occurred_at: datetime
    store: str
    customer: str
    lines: tuple[ImportLine, ...]

    @property
    def amount_cents(self) -> int:
        """What the receipt cost: the sum of its lines' paid amounts."""
        return sum(x.amount_cents for x in self.lines)


class ReceiptError(RowError):
    """A row that disagrees with the receipt's first row (``line``: the row's file line)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line


def assemble(numbered: Sequence[tuple[int, ImportLine]]) -> ImportReceipt:
    """The receipt of its checked rows (file line, row); ``ReceiptError`` when a row
    disagrees with the first on when, where or who (a receipt has one of each)."""
    first_no, first = numbered[0]
    for line_no, x in numbered[1:]:
        if (x.occurred_at, x.store, x.customer) == (first.occurred_at, first.store, first.customer):
            continue
        column = "occurred_at" if x.occurred_at != first.occurred_at else "store"
        if x.occurred_at == first.occurred_at and x.store == first.store:
            column = "customer"
        raise ReceiptError(line_no, f"{column} differs from line {first_no} of the same receipt")
    return ImportReceipt(
        first.receipt_id,
        first.occurred_at,
        first.store,
        first.customer,
        tuple(x for _, x in numbered),
    )
