"""Webhooks to partners' systems, signed with HMAC-SHA256.

Each request carries:

- ``X-Kopilka-Timestamp``: Unix seconds when it was signed;
- ``X-Kopilka-Signature``: ``v1=`` + hex HMAC-SHA256 of ``"{timestamp}." + body`` under
  the endpoint's secret;
- ``X-Kopilka-Delivery`` and ``Idempotency-Key``: the delivery key, the same on every
  retry: the receiver deduplicates by it;
- ``X-Kopilka-Topic``: the event (``purchase.confirmed``, ...).

The receiver recomputes the signature over the raw body, compares in constant time and
refuses timestamps older than a few minutes (``verify``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from kopilka.notify.channels import Outgoing, Reject
from kopilka.notify.channels.http import check_status, post

TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: str,
    *,
    timestamp: str,
    signature: str,
    body: bytes,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """True when ``signature`` is ours for this body and the timestamp is fresh."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


@dataclass(frozen=True, slots=True)
class Webhook:
    timeout_s: float = 10.0

    async def send(self, msg: Outgoing) -> str | None:
        if not msg.secret:
            raise Reject("webhook endpoint has no secret")
        body = msg.body.encode()
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "kopilka-webhooks/1",
            "X-Kopilka-Timestamp": str(ts),
            "X-Kopilka-Signature": sign(msg.secret, ts, body),
            "X-Kopilka-Delivery": msg.key,
            "Idempotency-Key": msg.key,
            "X-Kopilka-Topic": msg.topic,
        }
        answer = await post(msg.recipient, body, headers, timeout_s=self.timeout_s)
        check_status(answer, "webhook")
        return None
