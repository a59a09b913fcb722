"""Phone numbers to E.164 with Google's libphonenumber (Russia as the default region)."""

from __future__ import annotations

import phonenumbers


def to_e164(raw: str, *, region: str = "RU") -> str | None:
    """The number in E.164, or None if it is not a valid phone number."""
    text = raw.strip()
    if not text or len(text) > 32 or not any(ch.isdigit() for ch in text):
        return None
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    return str(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164))
