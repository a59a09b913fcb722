"""Coupon codes: readable, unguessable, with a check character.

- The alphabet has 30 characters: digits and capital letters without the look-alikes
  (0 O, 1 I L, U V kept apart: U dropped), so a code read aloud or typed from paper
  comes out right.
- A code is ``length`` random characters (``secrets`` or a recorded seed) and one check
  character: Luhn mod 30 over the alphabet, which catches every single wrong character
  and every swap of two neighbours but one ("2" and "Z", the alphabet's first and last,
  like 0 and 9 for Luhn's digits).  10 random characters give 30**10 ≈ 5.9e14 codes per
  series; with a million codes issued a guess hits one in 590 million.
- Codes are shown in groups of four (``K7Q2-9XWD-M3``); what was typed is normalised
  (case, spaces and dashes) before it is looked up.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
N = len(ALPHABET)


def normalise(code: str) -> str:
    """What was typed, as stored: upper case, without spaces and dashes."""
    return "".join(ch for ch in code.upper() if ch not in " -_\t")


def check_char(body: str) -> str:
    """Luhn mod N check character for ``body`` (characters of the alphabet)."""
    factor = 2
    total = 0
    for ch in reversed(body):
        addend = factor * _INDEX[ch]
        factor = 1 if factor == 2 else 2
        total += addend // N + addend % N
    return ALPHABET[(N - total % N) % N]


def is_well_formed(code: str) -> bool:
    """A normalised code of the alphabet whose last character checks the rest."""
    if len(code) < 4 or any(ch not in _INDEX for ch in code):
        return False
    return check_char(code[:-1]) == code[-1]


def make_code(rng: random.Random | None = None, *, length: int = 10) -> str:
    """A new code: ``length`` random characters and the check character."""
    if rng is None:
        body = "".join(secrets.choice(ALPHABET) for _ in range(length))
    else:
        body = "".join(rng.choice(ALPHABET) for _ in range(length))
    return body + check_char(body)


def make_codes(count: int, *, seed: str | None = None, length: int = 10) -> Iterator[str]:
    """``count`` distinct codes; reproducible when a ``seed`` is given (and recorded)."""
    rng = random.Random(seed) if seed is not None else None
    seen: set[str] = set()
    while len(seen) < count:
        code = make_code(rng, length=length)
        if code not in seen:
            seen.add(code)
            yield code


def display(code: str) -> str:
    """``K7Q29XWDM3`` -> ``K7Q2-9XWD-M3``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
