"""The cabinet's rotating QR token for the till (docs/cabinet.md): pure HMAC arithmetic.

``KQ<13-digit card><window hex><10 hex of HMAC-SHA256(secret, "<card>.<window>")>``, the
window being Unix time // 60.  The till's lookup turns a genuine token of the current or
the previous window into the card number before the index probe: nothing is stored or
written when the token rotates.  The secret is ``KOPILKA_QR_SECRET`` (the same on every
server process); without it the cabinet shows no rotating token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime

PREFIX = "KQ"
WINDOW_S = 60
_MAC = 10


def configured_secret() -> bytes | None:
    raw = os.environ.get("KOPILKA_QR_SECRET", "")
    return raw.encode() if len(raw) >= 16 else None


def _mac(secret: bytes, card: str, window: int) -> str:
    return hmac.new(secret, f"{card}.{window}".encode(), hashlib.sha256).hexdigest()[:_MAC]


def token(card_number: str, secret: bytes, now: datetime) -> str:
    window = int(now.timestamp()) // WINDOW_S
    return f"{PREFIX}{card_number}{window:x}{_mac(secret, card_number, window)}"


def card_of(value: str, secret: bytes | None, now: datetime) -> str | None:
    """The card number a genuine, fresh token names; None for anything else."""
    if secret is None or not value.startswith(PREFIX) or len(value) < 2 + 13 + 1 + _MAC:
        return None
    card, rest = value[2:15], value[15:]
    if not card.isdigit():
        return None
    try:
        window = int(rest[:-_MAC], 16)
    except ValueError:
        return None
    current = int(now.timestamp()) // WINDOW_S
    if window not in (current, current - 1):
        return None
    return card if hmac.compare_digest(_mac(secret, card, window), rest[-_MAC:]) else None
