"""JSON numbers that pydantic would read through a float, found before they are rounded.

pydantic-core parses a JSON number with a fraction or an exponent as a float and makes
the ``Decimal`` of that float (pydantic issue 9180, open): ``1.000000000000000000001``
becomes ``1`` and ``1e-400`` becomes ``0``, accepted, where POS_API.md promises that
more decimals are refused, never rounded.  Every value our schemas accept has at most 13
significant digits (``1 000 000 000.00``), which a float keeps exactly, so a number the
float changes is one the schema must refuse: ``too_many_decimals``.

The check costs a second parse, so it runs only on bodies that can hold such a number
(a run of 16 digits or dots, or an exponent, outside the body's strings: a card number
is text); anything else passes untouched.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


# ``[0-9.]{16}|[0-9.][eE][-+]?[0-9]`` without a regular expression (which cost ~90 µs on a
# 20-line receipt, more than validating it): the body's bytes mapped to classes, then
# substring searches.  Runs: digits and dots -> 0, anything else -> space.  Exponents:
# digit -> 0, dot -> ., e/E -> e, sign -> +, anything else -> space.
def _classes(pairs: dict[bytes, int]) -> bytes:
    table = bytearray(b" " * 256)
    for chars, cls in pairs.items():
        for b in chars:
            table[b] = cls
    return bytes(table)


_RUNS = _classes({b"0123456789.": ord("0")})
_EXPONENTS = _classes({b"0123456789": ord("0"), b".": ord("."), b"eE": ord("e"), b"+-": ord("+")})
_LONG_RUN = b"0" * 16


def _risky(raw: bytes) -> bool:
    """A run of 16 digits or dots, or an exponent after a digit or a dot."""
    if _LONG_RUN in raw.translate(_RUNS):
        return True
    exp = raw.translate(_EXPONENTS)
    return any(p in exp for p in (b"0e0", b".e0", b"0e+0", b".e+0"))


def _outside_strings(raw: bytes) -> bytes:
    """The body without the contents of its JSON strings (a 16-digit card number or a
    SKU is text, never rounded), or the whole body when it has a backslash (an escaped
    quote would shift where strings begin: scanning more is only slower, never wrong)."""
    if b"\\" in raw:
        return raw
    return b" ".join(raw.split(b'"')[0::2])


def _changed_by_float(value: Decimal) -> bool:
    as_float = float(value)
    return as_float != as_float or Decimal(repr(as_float)) != value  # NaN, or rounded


def _walk(node: Any, path: str, out: list[str]) -> None:
    if isinstance(node, Decimal):
        if _changed_by_float(node):
            out.append(path or "body")
    elif isinstance(node, dict):
        for key, item in node.items():
            _walk(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, f"{path}[{i}]", out)


def rounded_numbers(raw: bytes) -> list[str]:
    """The fields (``lines[0].price``) whose JSON number a float would change."""
    if not _risky(_outside_strings(raw)):
        return []
    try:
        doc = json.loads(raw, parse_float=Decimal)
    except ValueError:  # not JSON: the schema says so
        return []
    out: list[str] = []
    _walk(doc, "", out)
    return out
