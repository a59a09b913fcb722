"""Customer lifetime value: BG/NBD and Gamma-Gamma fitted by lifetimes
(docs/analytics/clv.md, docs/decisions/0016-basket-clv-libraries.md).

The input is one row per purchase: the customer, the local date and the value paid.
Everything else is lifetimes' own definitions, in the chosen time unit (``day`` or
``week``, lifetimes' ``freq="D"``/``"W"``), at the end of the as-of date:

- ``frequency``: the number of periods with a purchase after the first such period;
- ``recency``: periods from the first purchase to the last; ``T``: from the first
  purchase to the as-of date; ``monetary_value``: the mean of the repeat periods' values
  (0 without a repeat purchase);
- BG/NBD (parameters ``r, alpha, a, b``) is fitted on every customer, Gamma-Gamma
  (``p, q, v``) on those with ``frequency > 0`` and ``monetary_value > 0``;
- ``p_alive``: the probability the customer is still buying; ``expected_purchases``: the
  expected number of purchases in the next ``horizon`` periods; ``expected_value``: that
  times the Gamma-Gamma expected value of one purchase (undiscounted); ``clv``: lifetimes'
  ``customer_lifetime_value`` over ``clv_months`` months at a monthly ``discount_rate``.

Pure (no I/O, no clock); pandas and lifetimes are imported when a model is fitted.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

UNITS = {"day": "D", "week": "W"}
HORIZON_DEFAULT = {"day": 365, "week": 52}
PARAM_NAMES = ("r", "alpha", "a", "b", "p", "q", "v")
REPEATERS_MIN = 3  # customers with a repeat purchase that a fit needs at the least


class Unfit(ValueError):
    """Too little data, or a model that did not converge: ``detail`` says which."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Settings:
    as_of: date
    unit: str = "week"  # day | week
    horizon: int = 52  # periods of ``unit`` ahead
    penalizer: float = 0.0  # both models' penalizer_coef
    discount_rate: float = 0.01  # monthly, for ``clv``
    clv_months: int = 12


@dataclass(frozen=True)
class Purchase:
    customer: str
    on: date  # the local date
    value: Decimal  # paid


@dataclass(frozen=True)
class CustomerValue:
    customer: str
    frequency: int
    recency: int
    T: int
    monetary_value: float
    p_alive: float
    expected_purchases: float
    expected_value: float
    clv: float


@dataclass(frozen=True)
class Fitted:
    params: dict[str, float]  # r, alpha, a, b, p, q, v in this order
    customers: list[CustomerValue]  # expected_value desc, then customer
    repeaters: int  # customers the Gamma-Gamma model was fitted on


def fit(purchases: Sequence[Purchase], s: Settings) -> Fitted:
    """Fit both models and predict for every customer; ``Unfit`` when that fails."""
    with warnings.catch_warnings():  # lifetimes sets a pandas option pandas 3 deprecates
        warnings.simplefilter("ignore")
        import pandas as pd
        from lifetimes.utils import summary_data_from_transaction_data

    if not purchases:
        raise Unfit("no purchases up to the as-of date")
    df = pd.DataFrame(
        {
            "customer": [p.customer for p in purchases],
            "date": pd.to_datetime([p.on for p in purchases]),
            "value": [float(p.value) for p in purchases],
        }
    )
    # lifetimes prints scipy's answer to standard output when a fit fails; the CLI's
    # standard output is the report, so it is swallowed (the error says what happened)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        summary = summary_data_from_transaction_data(
            df,
            "customer",
            "date",
            monetary_value_col="value",
            observation_period_end=pd.Timestamp(s.as_of),
            freq=UNITS[s.unit],
        )
        return _fit_summary(summary, s)


def _fit_summary(sm: Any, s: Settings) -> Fitted:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    repeat = sm[(sm["frequency"] > 0) & (sm["monetary_value"] > 0)]
    if len(repeat) < REPEATERS_MIN:
        raise Unfit(
            f"{len(repeat)} customers bought again with a value above zero; "
            f"the models need at least {REPEATERS_MIN}"
        )
    try:
        bgf = BetaGeoFitter(penalizer_coef=s.penalizer)
        bgf.fit(sm["frequency"], sm["recency"], sm["T"])
        ggf = GammaGammaFitter(penalizer_coef=s.penalizer)
        ggf.fit(repeat["frequency"], repeat["monetary_value"])
    except Exception as exc:  # lifetimes' ConvergenceError, scipy's and numpy's errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise Unfit(
            f"the model did not converge ({first.rstrip('.')}); try a penalizer such as 0.001"
        ) from None
    params = {k: float(bgf.params_[k]) for k in ("r", "alpha", "a", "b")}
    params.update({k: float(ggf.params_[k]) for k in ("p", "q", "v")})
    if not all(math.isfinite(x) and x > 0 for x in params.values()):
        raise Unfit(f"the model did not converge (parameters {params})")
    f, r, t, m = sm["frequency"], sm["recency"], sm["T"], sm["monetary_value"]
    p_alive = bgf.conditional_probability_alive(f, r, t)
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(s.horizon, f, r, t)
    per_purchase = ggf.conditional_expected_average_profit(f, m)
    clv = ggf.customer_lifetime_value(
        bgf, f, r, t, m, time=s.clv_months, discount_rate=s.discount_rate, freq=UNITS[s.unit]
    )
    rows = [
        CustomerValue(
            customer=str(cid),
            frequency=int(f[cid]),
            recency=int(r[cid]),
            T=int(t[cid]),
            monetary_value=float(m[cid]),
            p_alive=float(p_alive[i]) if _positional(p_alive) else float(p_alive[cid]),
            expected_purchases=float(expected[cid]),
            expected_value=float(expected[cid]) * float(per_purchase[cid]),
            clv=float(clv[cid]),
        )
        for i, cid in enumerate(sm.index)
    ]
    rows.sort(key=lambda x: (-x.expected_value, x.customer))
    return Fitted(params, rows, len(repeat))


def _positional(values: Any) -> bool:
    """lifetimes answers some predictions as a bare numpy array, others as a Series."""
    return not hasattr(values, "index")
