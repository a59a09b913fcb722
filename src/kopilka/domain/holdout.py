"""Held-out control groups: which members a promotion deliberately does not give to.

A promotion may declare ``holdout_percent`` (0-50).  Each member falls in one of 10 000
buckets by a hash of (the program's salt, the promotion id, the customer id); the
members in the buckets below ``holdout_percent x 100`` are the control group and never
get the promotion.  The assignment is deterministic (the same member is in the same group
on every till, on every receipt, and in the promotion-effect report), independent
between promotions (the promotion id is part of the hash) and needs no storage.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

BUCKETS = 10_000  # a bucket is 0.01 % of the members


def holdout_bucket(salt: str, promotion_id: str, customer_id: int) -> int:
    """The member's bucket for this promotion, in ``[0, BUCKETS)``: the first 8 bytes of
    SHA-256 of ``salt \\x1f promotion_id \\x1f customer_id`` as an integer, mod BUCKETS
    (the bias of the modulo is below 1e-15)."""
    key = f"{salt}\x1f{promotion_id}\x1f{customer_id}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % BUCKETS


def holdout_cut(percent: Decimal) -> int:
    """``holdout_percent`` as a number of buckets (12.5 % -> 1250)."""
    return int(percent * BUCKETS / 100)


def is_held_out(salt: str, promotion_id: str, customer_id: int, cut: int) -> bool:
    """True when the member is in the promotion's control group (``cut`` buckets)."""
    return cut > 0 and holdout_bucket(salt, promotion_id, customer_id) < cut
