"""Card numbers with a check digit, phone numbers in E.164, masking of personal data."""

from __future__ import annotations

import re

CARD_RE = re.compile(r"^\d{8,19}$")


def ean13_check_digit(payload12: str) -> str:
    """The GS1 check digit of a 12-digit payload (EAN-13, as printed under card barcodes)."""
    if len(payload12) != 12 or not _ascii_digits(payload12):
        raise ValueError("payload must be 12 digits")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(payload12))
    return str((10 - total % 10) % 10)


def make_card_number(prefix: str, serial: int) -> str:
    """A 13-digit card number: ``prefix`` + zero-padded serial + check digit."""
    payload = f"{prefix}{serial:0{12 - len(prefix)}d}"
    return payload + ean13_check_digit(payload)


def _ascii_digits(text: str) -> bool:
    """0-9 only: ``str.isdigit`` also admits "²" (which ``int`` refuses) and "٣" (which
    no card carries)."""
    return text.isascii() and text.isdigit()


def is_valid_card_number(number: str) -> bool:
    return (
        len(number) == 13 and _ascii_digits(number) and ean13_check_digit(number[:12]) == number[12]
    )


def mask_name(first: str, last: str) -> str:
    """ "Иван П." — enough for a cashier to greet, not enough to identify."""
    first = first.strip()
    last = last.strip()
    if first and last:
        return f"{first} {last[0]}."
    return first or (f"{last[0]}." if last else "")


def mask_card(number: str) -> str:
    return "*" * max(len(number) - 4, 0) + number[-4:]


def mask_phone(e164: str) -> str:
    if len(e164) < 6:
        return "*" * len(e164)
    return e164[:2] + "*" * (len(e164) - 6) + e164[-4:]
