"""Offline burn tokens: parse and verify them without the center (docs/pos-integration.md,
"Offline burn"; ADR 0030).

This module is meant to be copied into till software: it imports only the standard
library and ``cryptography`` (Ed25519), nothing else of Kopilka.

A token is the text ``KO`` + RFC 4648 base32 (upper case, no padding) of 117 bytes,
all integers big-endian::

    offset size field
    0      1    version (1)
    1      4    key_id       the program's signing key (GET /api/pos/v1/offline/keys)
    5      4    program_id
    9      8    account_id
    17     8    card         the card number, 13 digits, as an integer
    25     8    cap          points the till may burn, in hundredths of a point
    33     4    issued_at    Unix seconds
    37     4    expires_at   Unix seconds
    41     12   token_id     random; the center applies a token's burns once each
    53     64   signature    Ed25519 over bytes 0..52

Base32 keeps the text in the QR code's alphanumeric mode (190 characters, a version 8
code at level M).  Verification order, the first failure wins (``TokenRefused.code``):
``malformed > unknown_key > bad_signature > wrong_program > not_yet_valid > expired >
over_cap``.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "CLOCK_SKEW",
    "PREFIX",
    "OfflineToken",
    "TokenRefused",
    "encode",
    "pack",
    "parse",
    "public_key_from_text",
    "verify",
]

PREFIX = "KO"
VERSION = 1
_BODY = struct.Struct(">BIIQQQII12s")  # 53 bytes: everything the signature covers
SIGNED_LEN = _BODY.size
TOKEN_LEN = SIGNED_LEN + 64
TEXT_LEN = len(PREFIX) + -(-TOKEN_LEN * 8 // 5)
# A till's clock may run a little ahead of or behind the center's.
CLOCK_SKEW = timedelta(seconds=120)
_HUNDRED = Decimal(100)


class TokenRefused(ValueError):
    """The token cannot be honoured; ``code`` is stable (see the module's order)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class OfflineToken:
    version: int
    key_id: int
    program_id: int
    account_id: int
    card_number: str
    cap: Decimal  # points, two decimals
    issued_at: datetime
    expires_at: datetime
    token_id: str  # 24 hex digits
    signed: bytes  # bytes 0..52
    signature: bytes


def pack(
    *,
    key_id: int,
    program_id: int,
    account_id: int,
    card_number: str,
    cap: Decimal,
    issued_at: datetime,
    expires_at: datetime,
    token_id: bytes,
) -> bytes:
    """The 53 bytes a signing key signs (the center's side)."""
    if not (card_number.isdigit() and len(card_number) == 13):
        raise ValueError("card_number must be 13 digits")
    if len(token_id) != 12:
        raise ValueError("token_id must be 12 bytes")
    hundredths = cap * _HUNDRED
    if hundredths != hundredths.to_integral_value() or cap < 0:
        raise ValueError("cap must be a non-negative amount with at most two decimals")
    return _BODY.pack(
        VERSION,
        key_id,
        program_id,
        account_id,
        int(card_number),
        int(hundredths),
        int(issued_at.timestamp()),
        int(expires_at.timestamp()),
        token_id,
    )


def encode(signed: bytes, signature: bytes) -> str:
    """The QR text of a signed token."""
    raw = signed + signature
    if len(raw) != TOKEN_LEN:
        raise ValueError(f"a token is {TOKEN_LEN} bytes")
    return PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=")


def parse(text: str) -> OfflineToken:
    """Decode the text of a token; checks its form only (``malformed``), not its signature."""
    text = text.strip()
    if len(text) != TEXT_LEN or not text.startswith(PREFIX):
        raise TokenRefused("malformed", "not an offline burn token")
    body = text[len(PREFIX) :]
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        raise TokenRefused("malformed", "not an offline burn token") from None
    if len(raw) != TOKEN_LEN or encode(raw[:SIGNED_LEN], raw[SIGNED_LEN:]) != text:
        raise TokenRefused("malformed", "not an offline burn token")  # non-canonical text
    version, key_id, program_id, account_id, card, cap, issued, expires, tid = _BODY.unpack(
        raw[:SIGNED_LEN]
    )
    if version != VERSION:
        raise TokenRefused("malformed", f"unknown token version {version}")
    if card >= 10**13 or expires <= issued:
        raise TokenRefused("malformed", "not an offline burn token")
    return OfflineToken(
        version=version,
        key_id=key_id,
        program_id=program_id,
        account_id=account_id,
        card_number=f"{card:013d}",
        cap=(Decimal(cap) / _HUNDRED).quantize(Decimal("0.01")),
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
        token_id=tid.hex(),
        signed=raw[:SIGNED_LEN],
        signature=raw[SIGNED_LEN:],
    )


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """A public key as published by the center: base64url of its 32 raw bytes."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return Ed25519PublicKey.from_public_bytes(raw)


def verify(
    text: str,
    public_keys: Mapping[int, Ed25519PublicKey | str],
    *,
    program_id: int,
    at: datetime,
    points: Decimal | None = None,
    skew: timedelta = CLOCK_SKEW,
) -> OfflineToken:
    """Check a token for a sale at ``at``; returns it (``token.cap`` is what may be burned).

    ``public_keys``: key id -> key (or its published text) of the program.  ``points``,
    if given, is what the till wants to burn: more than the cap is ``over_cap``.  Raises
    ``TokenRefused``.
    """
    token = parse(text)
    key = public_keys.get(token.key_id)
    if key is None:
        raise TokenRefused("unknown_key", f"no public key {token.key_id} for this program")
    if isinstance(key, str):
        key = public_key_from_text(key)
    try:
        key.verify(token.signature, token.signed)
    except InvalidSignature:
        raise TokenRefused("bad_signature", "the token's signature is not valid") from None
    if token.program_id != program_id:
        raise TokenRefused("wrong_program", "the token belongs to another program")
    if at < token.issued_at - skew:
        raise TokenRefused("not_yet_valid", "the token was issued after this time")
    if at > token.expires_at + skew:
        raise TokenRefused("expired", "the token has expired")
    if points is not None and points > token.cap:
        raise TokenRefused("over_cap", f"at most {token.cap} points may be burned")
    return token
