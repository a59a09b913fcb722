"""Exact amounts: roubles, points and quantities are ``Decimal``, never float.

Units at the storage edge are integers: kopecks for money, hundredths for points
and thousandths for quantities.  Conversions live here so that every layer agrees.

Rounding happens once, at a named step, with a named mode (``ROUND_HALF_UP`` for money,
the program's setting for points).  Allocation of a total over parts uses the
largest-remainder rule, so parts always add up to the total exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Decimal

KOPECK = Decimal("0.01")
CENT_POINT = Decimal("0.01")
MILLI = Decimal("0.001")
ZERO = Decimal("0")
HUNDRED = Decimal("100")

ROUNDING_MODES = {"floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "down": ROUND_DOWN}


def to_minor(value: Decimal, *, unit: Decimal = KOPECK) -> int:
    """Exact conversion to integer minor units; raises if ``value`` has finer digits."""
    scaled = value / unit
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more decimals than {unit}")
    return int(scaled)


def from_minor(value: int, *, unit: Decimal = KOPECK) -> Decimal:
    if unit is KOPECK:  # the hot case: an exact shift, no rounding needed
        return Decimal(value).scaleb(-2)
    return (Decimal(value) * unit).quantize(unit)


def q2(value: Decimal) -> Decimal:
    """Round to kopecks (or hundredths of a point), half up."""
    return value.quantize(KOPECK, rounding=ROUND_HALF_UP)


def fmt2(value: Decimal) -> str:
    """The API's representation: a string with exactly two decimals."""
    return str(value.quantize(KOPECK, rounding=ROUND_HALF_UP))


def fmt3(value: Decimal) -> str:
    return str(value.quantize(MILLI, rounding=ROUND_HALF_UP))


def round_points(value: Decimal, *, step: Decimal, mode: str) -> Decimal:
    """Round points to the program's step (1 or 0.01) with its mode (floor or half_up)."""
    return (value / step).to_integral_value(rounding=ROUNDING_MODES[mode]) * step


def allocate(
    total: int, weights: Sequence[int], *, tiebreak: Sequence[int] | None = None
) -> list[int]:
    """Split the integer ``total`` over ``weights`` by the largest-remainder rule.

    The result adds up to ``total`` exactly; a part is zero where its weight is zero.
    Ties in remainders go to the lowest ``tiebreak`` rank (default: the earlier index);
    a caller that ranks parts by their content gets a split that does not depend on
    the order the parts came in.  With all weights zero ``ValueError`` is raised.
    """
    weight_sum = sum(weights)
    if total == 0:
        return [0] * len(weights)
    if weight_sum <= 0:
        raise ValueError("cannot allocate over zero weights")
    if total < 0:
        return [-p for p in allocate(-total, weights, tiebreak=tiebreak)]
    floors = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    short = total - sum(floors)
    rank = tiebreak if tiebreak is not None else range(len(weights))
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], rank[i]))
    for i in order[:short]:
        floors[i] += 1
    return floors


def prorate(total: int, part: int, whole: int) -> int:
    """``total * part / whole`` in integer minor units, rounded half up.

    Used cumulatively for refunds: ``prorate(t, k, n) - prorate(t, j, n)`` for the k-th
    after the j-th returned unit, so that returning everything gives back exactly ``t``.
    """
    if whole <= 0:
        raise ValueError("whole must be positive")
    num = total * part * 2 + whole
    return num // (2 * whole)
