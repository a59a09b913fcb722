"""The incremental effect of a promotion: a difference of means with its confidence
interval, and the return on what the promotion cost.

Pure statistics.  Money sums are ``Decimal`` where they are read; a mean per customer,
an interval and a ratio are estimates and are ``float``.

- ``welch``: mean(a) - mean(b) with Welch's t interval (unequal variances):
  ``se = sqrt(var_a/n_a + var_b/n_b)`` (sample variances, n - 1), the Welch-Satterthwaite
  degrees of freedom ``df = se^4 / ((var_a/n_a)^2/(n_a-1) + (var_b/n_b)^2/(n_b-1))`` and
  ``estimate +- t(1 - alpha/2, df) * se``.
- Held-out control: ``welch(sales of treatment members, sales of control members)``.
- Matched pre-period (difference in differences): each customer's change
  ``d = sales(promotion period) - sales(pre-period of equal length)``;
  ``welch(d of participants, d of comparable non-participants)``.
- ``roi``: with a margin ``(incremental revenue x margin - cost) / cost``, without one
  ``incremental revenue / cost``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

LEVEL = 0.95


@dataclass(frozen=True, slots=True)
class Estimate:
    """A difference of means ``a - b`` and its two-sided interval at ``level``.

    ``low``/``high`` are None when a group has fewer than two members (no variance)."""

    estimate: float
    low: float | None
    high: float | None
    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    df: float | None = None

    def contains(self, value: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= value <= self.high


def _mean_var(xs: Sequence[float]) -> tuple[float, float]:
    n = len(xs)
    mean = math.fsum(xs) / n
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    return mean, var


def welch(a: Sequence[float], b: Sequence[float], *, level: float = LEVEL) -> Estimate | None:
    """mean(a) - mean(b) with Welch's t interval; None when a group is empty."""
    if not a or not b:
        return None
    mean_a, var_a = _mean_var(a)
    mean_b, var_b = _mean_var(b)
    est = mean_a - mean_b
    if len(a) < 2 or len(b) < 2:
        return Estimate(est, None, None, mean_a, mean_b, len(a), len(b))
    wa, wb = var_a / len(a), var_b / len(b)
    se2 = wa + wb
    if se2 == 0.0:  # every value equal within each group: no spread, the interval is a point
        return Estimate(est, est, est, mean_a, mean_b, len(a), len(b))
    df = welch_df(wa, wb, len(a), len(b))
    from scipy import stats  # imported when first needed: it takes a while to load

    half = float(stats.t.ppf(1 - (1 - level) / 2, df)) * math.sqrt(se2)
    return Estimate(est, est - half, est + half, mean_a, mean_b, len(a), len(b), df)


def welch_df(wa: float, wb: float, na: int, nb: int) -> float:
    """Welch-Satterthwaite degrees of freedom of ``var_a/n_a`` = ``wa`` and ``wb``.

    Mathematically it lies between ``min(n_a, n_b) - 1`` and ``n_a + n_b - 2``; it is
    clamped there so that tiny variances (whose squares underflow) still give a
    usable value."""
    low, high = float(min(na, nb) - 1), float(na + nb - 2)
    den = wa**2 / (na - 1) + wb**2 / (nb - 1)
    if den <= 0.0:
        return high
    return min(max((wa + wb) ** 2 / den, low), high)


def diff_in_diff(
    participants: Sequence[tuple[float, float]],
    comparables: Sequence[tuple[float, float]],
    *,
    level: float = LEVEL,
) -> Estimate | None:
    """Each pair is (sales in the promotion period, sales in the pre-period) of one
    customer.  The estimate is the participants' mean change minus the comparables'."""
    return welch(
        [post - pre for post, pre in participants],
        [post - pre for post, pre in comparables],
        level=level,
    )


def roi(incremental: Decimal, cost: Decimal, margin: Decimal | None) -> float | None:
    """Return on the promotion's cost (a ratio: 0.5 is +50 %); None when it cost nothing.

    ``margin`` is a fraction (0.25 for 25 %): ``(incremental x margin - cost) / cost``;
    without one, ``incremental / cost`` (revenue per rouble spent)."""
    if cost <= 0:
        return None
    if margin is None:
        return float(incremental / cost)
    return float((incremental * margin - cost) / cost)
