"""The offline verification library on its own: what a till checks without the center.

Tokens are built here byte by byte from the format in docs/pos-integration.md (struct
layout written out again, not taken from the module), then signed with a fresh key.
"""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka import offline_verify as ov

ISSUED = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
PUB = base64.urlsafe_b64encode(KEY.public_key().public_bytes_raw()).decode().rstrip("=")


def make(
    *,
    key_id: int = 7,
    program: int = 3,
    account: int = 42,
    card: int = 2700000000017,
    cap_hundredths: int = 30000,
    issued: datetime = ISSUED,
    ttl_s: int = 900,
    tid: bytes = bytes(range(12)),
    key: Ed25519PrivateKey = KEY,
    version: int = 1,
) -> str:
    body = (
        bytes([version])
        + key_id.to_bytes(4, "big")
        + program.to_bytes(4, "big")
        + account.to_bytes(8, "big")
        + card.to_bytes(8, "big")
        + cap_hundredths.to_bytes(8, "big")
        + int(issued.timestamp()).to_bytes(4, "big")
        + (int(issued.timestamp()) + ttl_s).to_bytes(4, "big")
        + tid
    )
    assert len(body) == 53
    raw = body + key.sign(body)
    return "KO" + base64.b32encode(raw).decode().rstrip("=")


def check(
    text: str, *, at: datetime = ISSUED + timedelta(minutes=5), **kw: object
) -> ov.OfflineToken:
    return ov.verify(text, {7: PUB}, program_id=3, at=at, **kw)  # type: ignore[arg-type]


def refusal(text: str, **kw: object) -> str:
    with pytest.raises(ov.TokenRefused) as exc:
        check(text, **kw)  # type: ignore[arg-type]
    return exc.value.code


def test_a_genuine_token_gives_its_fields_and_cap() -> None:
    token = check(make())

    assert token.cap == Decimal("300.00")
    assert (token.key_id, token.program_id, token.account_id) == (7, 3, 42)
    assert token.card_number == "2700000000017"
    assert token.expires_at == datetime(2026, 12, 7, 9, 15, tzinfo=UTC)
    assert token.token_id == "000102030405060708090a0b"
    assert len(make()) == 190


def test_the_module_packs_the_same_bytes_as_the_documented_layout() -> None:
    packed = ov.pack(
        key_id=7,
        program_id=3,
        account_id=42,
        card_number="2700000000017",
        cap=Decimal("300"),
        issued_at=ISSUED,
        expires_at=ISSUED + timedelta(seconds=900),
        token_id=bytes(range(12)),
    )

    assert ov.encode(packed, KEY.sign(packed)) == make()


@pytest.mark.parametrize(
    ("when", "code"),
    [
        (ISSUED + timedelta(minutes=15, seconds=120), None),  # within the clock skew
        (ISSUED + timedelta(minutes=15, seconds=121), "expired"),
        (ISSUED - timedelta(seconds=120), None),
        (ISSUED - timedelta(seconds=121), "not_yet_valid"),
    ],
    ids=["skew-after", "expired", "skew-before", "not-yet"],
)
def test_expiry_allows_two_minutes_of_clock_skew(when: datetime, code: str | None) -> None:
    if code is None:
        assert check(make(), at=when).cap == Decimal("300.00")
    else:
        assert refusal(make(), at=when) == code


def test_every_flipped_byte_is_refused() -> None:
    body = make()[2:]
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    codes = set()
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        text = "KO" + base64.b32encode(bytes(bad)).decode().rstrip("=")
        codes.add(refusal(text))

    # version byte -> malformed; key id -> unknown key; everything else -> signature
    assert codes == {"malformed", "unknown_key", "bad_signature"}


def test_every_changed_character_is_refused() -> None:
    text = make()
    for i in range(len(text)):
        other = "A" if text[i] != "A" else "B"
        with pytest.raises(ov.TokenRefused):
            check(text[:i] + other + text[i + 1 :])


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "malformed"),
        ("2700000000017", "malformed"),
        (make()[:-1], "malformed"),
        (make().lower(), "malformed"),
        (make(version=2), "malformed"),
        (make(key_id=8), "unknown_key"),
        (make(key=Ed25519PrivateKey.generate()), "bad_signature"),
        (make(program=4), "wrong_program"),
    ],
    ids=["empty", "card", "short", "lower", "version", "key", "forged", "program"],
)
def test_refusals_name_what_is_wrong(text: str, code: str) -> None:
    assert refusal(text) == code


def test_a_till_may_burn_up_to_the_cap_not_beyond() -> None:
    assert check(make(), points=Decimal("300.00")).cap == Decimal("300.00")
    assert refusal(make(), points=Decimal("300.01")) == "over_cap"


@settings(max_examples=60, deadline=None)
@given(
    account=st.integers(0, 2**64 - 1),
    card=st.integers(0, 10**13 - 1),
    cap=st.integers(0, 2**63),
    ttl=st.integers(60, 86400),
    tid=st.binary(min_size=12, max_size=12),
)
def test_any_token_reads_back_what_was_signed(
    account: int, card: int, cap: int, ttl: int, tid: bytes
) -> None:
    text = make(account=account, card=card, cap_hundredths=cap, ttl_s=ttl, tid=tid)

    token = check(text, at=ISSUED)

    assert token.account_id == account
    assert token.card_number == f"{card:013d}"
    assert token.cap == (Decimal(cap) / 100).quantize(Decimal("0.01"))
    assert token.expires_at - token.issued_at == timedelta(seconds=ttl)
    assert bytes.fromhex(token.token_id) == tid
    assert struct.calcsize(">BIIQQQII12s") + 64 == 117


def test_the_library_needs_nothing_of_kopilka() -> None:
    import ast
    from pathlib import Path

    tree = ast.parse(Path(ov.__file__).read_text())
    imported = {
        (n.module or "").split(".")[0] if isinstance(n, ast.ImportFrom) else a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }

    assert imported <= {
        "__future__",
        "base64",
        "binascii",
        "struct",
        "collections",
        "dataclasses",
        "datetime",
        "decimal",
        "cryptography",
    }
