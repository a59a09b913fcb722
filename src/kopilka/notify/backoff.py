"""When to try a failed delivery again: exponential backoff with jitter (pure)."""

from __future__ import annotations

import random
from datetime import timedelta


def retry_delay(
    attempts: int,
    *,
    base_s: float = 30.0,
    cap_s: float = 3600.0,
    rng: random.Random | None = None,
) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (1, 2, ...): ``base * 2**(n-1)``
    capped at ``cap``, of which a random half is kept ("equal jitter": between 50% and
    100% of the step), so that many messages failing together do not retry together."""
    if attempts < 1:
        raise ValueError("attempts counts from 1")
    step = min(cap_s, base_s * 2 ** min(attempts - 1, 60))
    r = (rng or random).random()
    return timedelta(seconds=step / 2 + r * step / 2)
