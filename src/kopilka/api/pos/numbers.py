"""JSON numbers that pydantic would read through a float, found before they are rounded.

pydantic-core parses a JSON number with a fraction or an exponent as a float and makes
the ``Decimal`` of that float (pydantic issue 9180, open): ``1.000000000000000000001``
becomes ``1`` and ``1e-400`` becomes ``0``, accepted, where POS_API.md promises that
more decimals are refused, never rounded.  Every value our schemas accept has at most 13
significant digits (``1 000 000 000.00``), which a float keeps exactly, so a number the
float changes is one the schema must refuse: ``too_many_decimals``.

The check costs a second parse, so it runs only on bodies that can hold such a number
(a run of 16 digits or dots, or an exponent); anything else passes untouched.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_RISKY = re.compile(rb"[0-9.]{16}|[0-9.][eE][-+]?[0-9]")


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
    if not _RISKY.search(raw):
        return []
    try:
        doc = json.loads(raw, parse_float=Decimal)
    except ValueError:  # not JSON: the schema says so
        return []
    out: list[str] = []
    _walk(doc, "", out)
    return out
