"""Channels: where a delivery leaves the system.

A channel's ``send`` takes one ``Outgoing`` message and returns the provider's reference
(or None); it raises ``Retry`` when trying again later may help (the provider is down,
times out, answers 5xx or 429) and ``Reject`` when it will not (the recipient is invalid,
the provider refused the message for good).  Every message carries its ``key``: the same
key on every attempt, passed to providers that deduplicate by it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file an e-mail carries (a scheduled report); other channels ignore it."""

    filename: str
    content_type: str  # "application/pdf"
    data: bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    channel: str  # sms | email | webhook
    recipient: str  # phone (+7...), e-mail address or URL
    body: str
    key: str  # the delivery key: the same on every attempt
    subject: str | None = None
    topic: str = ""
    secret: str | None = None  # webhooks: the endpoint's signing secret
    extra: dict[str, str] = field(default_factory=dict)
    attachment: Attachment | None = None


class Retry(Exception):
    """The send failed in a way that trying again later may fix."""


class Reject(Exception):
    """The send failed for good: trying again will not help."""


class Channel(Protocol):
    async def send(self, msg: Outgoing) -> str | None: ...
