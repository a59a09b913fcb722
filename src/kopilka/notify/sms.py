"""How long an SMS is and how many parts it costs: a pure function.

GSM 03.38 (GSM-7) carries 160 septets in one message and 153 per part of a concatenated
one (the user-data header takes 7); the characters of the extension table (``{ } [ ] ~ \\
| ^ €`` and form feed) take two septets (escape + code) and are never split across parts.
Any other character makes the whole message UCS-2: 70 UTF-16 code units in one message,
67 per part; a character outside the BMP (an emoji) takes two units and is never split.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True, slots=True)
class SmsLength:
    """``encoding``: ``gsm7`` or ``ucs2``; ``units``: septets (GSM-7) or UTF-16 code units
    (UCS-2) the text takes; ``segments``: messages billed (0 for an empty text);
    ``per_segment``: the capacity of one part at this length (160/153 or 70/67)."""

    encoding: str
    units: int
    segments: int
    per_segment: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _unit_sizes(text: str, gsm7: bool) -> list[int]:
    if gsm7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def _pack(sizes: list[int], capacity: int) -> int:
    """Parts needed when no character is split across two parts."""
    parts, used = 1, 0
    for size in sizes:
        if used + size > capacity:
            parts, used = parts + 1, 0
        used += size
    return parts


def sms_length(text: str) -> SmsLength:
    """The encoding, length and number of parts of ``text`` as an SMS."""
    gsm7 = is_gsm7(text)
    single, part = (GSM7_SINGLE, GSM7_PART) if gsm7 else (UCS2_SINGLE, UCS2_PART)
    sizes = _unit_sizes(text, gsm7)
    units = sum(sizes)
    encoding = "gsm7" if gsm7 else "ucs2"
    if units == 0:
        return SmsLength(encoding, 0, 0, single)
    if units <= single:
        return SmsLength(encoding, units, 1, single)
    return SmsLength(encoding, units, _pack(sizes, part), part)
