"""A bonus program's settings: what the calculation and the ledger need to know.

The full rules engine (tiers, promotions) grows on top of this; these settings stay the
program's base rule: how points are earned and burned, what a point is worth, how long
points take to activate and how long they live.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class ProgramSettings:
    """Base earn/burn rule of a bonus program.

    - ``earn_percent``: points earned per 100 roubles actually paid (after discounts and
      after points burned), e.g. 5 -> 5 points for 100 roubles.
    - ``burn_max_percent``: the largest share of the receipt (after discounts) that
      points may pay, in percent.
    - ``point_value``: roubles one point is worth when burned.
    - ``points_step`` and ``earn_rounding``: earned points are rounded once per receipt
      to this step (1 or 0.01) with this mode (``floor`` or ``half_up``); burned points
      must be a multiple of the step.
    - ``min_payment``: roubles the customer must pay in money whatever points he has.
    - ``activation_delay_days``: earned points are pending this many days (0: at once).
    - ``expiry_days``: points expire this many days after activation (None: never).
    - ``hold_ttl_s``: how long a calculated receipt keeps its redeemed points held.
    - ``negative_balance_limit``: how far a refund may take an account below zero.
    - ``timezone``: the program's day boundary for activation and expiry dates.
    - ``offline_cap_max``: the most points an offline burn token may allow (0: the
      program issues no offline tokens; ADR 0030).
    - ``offline_token_ttl_s``: how long an offline burn token is valid.
    """

    earn_percent: Decimal = Decimal("5")
    burn_max_percent: Decimal = Decimal("30")
    point_value: Decimal = Decimal("1")
    points_step: Decimal = Decimal("1")
    earn_rounding: str = "floor"
    min_payment: Decimal = Decimal("0")
    activation_delay_days: int = 0
    expiry_days: int | None = 365
    hold_ttl_s: int = 900
    negative_balance_limit: Decimal = Decimal("0")
    timezone: str = "Europe/Moscow"
    offline_cap_max: Decimal = Decimal("0")
    offline_token_ttl_s: int = 900


# --- how a program presents itself (issue 9, ADR 0027) -------------------------------------

LANGUAGES = ("ru", "en")
_SENDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._&-]{0,10}")
_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{4,24}")


@dataclass(frozen=True, slots=True)
class ProgramProfile:
    """What a program calls its points and how it presents itself; no calculation reads it.

    - ``points_ru``: the Russian forms for 1, 3 and 11 (``балл``/``балла``/``баллов``,
      ``миля``/``мили``/``миль``); a fraction takes the second (``1,5 балла``).
    - ``points_en``: the English singular and plural (``point``/``points``).
    - ``language``: ``ru`` or ``en``, the cabinet's and the customer messages' default
      (None: the installation's, ``NOTIFY_LOCALE``).
    - ``sms_sender``: the alphanumeric sender name, 1–11 Latin letters, digits, space,
      ``. _ & -``, starting with a letter or digit (None: the provider account's default).
    - ``brand_name``: the cabinet's heading ("" : the program's name).
    - ``primary_colour``: ``#RRGGBB`` of the cabinet's buttons and links (None: default).
    - ``support_phone``, ``support_email``, ``support_url``: shown in the cabinet's footer.
    """

    points_ru: tuple[str, str, str] = ("балл", "балла", "баллов")
    points_en: tuple[str, str] = ("point", "points")
    language: str | None = None
    sms_sender: str | None = None
    brand_name: str = ""
    primary_colour: str | None = None
    support_phone: str = ""
    support_email: str = ""
    support_url: str = ""

    def points_forms(self, lang: str) -> dict[str, str]:
        """The unit's forms by CLDR plural category, for ``formatting.points``."""
        if lang == "ru":
            one, few, many = self.points_ru
            return {"one": one, "few": few, "many": many, "other": few}
        one, other = self.points_en
        return {"one": one, "other": other}

    def to_json(self) -> dict[str, Any]:
        return {
            "points_ru": list(self.points_ru),
            "points_en": list(self.points_en),
            "language": self.language,
            "sms_sender": self.sms_sender,
            "brand_name": self.brand_name,
            "primary_colour": self.primary_colour,
            "support_phone": self.support_phone,
            "support_email": self.support_email,
            "support_url": self.support_url,
        }


DEFAULT_PROFILE = ProgramProfile()
PROFILE_FIELDS = tuple(DEFAULT_PROFILE.to_json())


class ProfileInvalid(ValueError):
    """Bad profile values: ``problems`` is a list of (field, message), every one found."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))
        self.problems = problems


def _text(value: Any, name: str, limit: int, problems: list[tuple[str, str]]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append((name, "must be a string"))
        return ""
    text = " ".join(value.split())
    if len(text) > limit:
        problems.append((name, f"at most {limit} characters"))
    return text


def _forms(value: Any, name: str, n: int, problems: list[tuple[str, str]]) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or len(value) != n:
        what = "one, few, many (балл, балла, баллов)" if n == 3 else "singular, plural"
        problems.append((name, f"must be {n} forms: {what}"))
        return ()
    out = []
    for i, form in enumerate(value):
        text = _text(form, f"{name}[{i}]", 30, problems)
        if not text:
            problems.append((f"{name}[{i}]", "must not be empty"))
        out.append(text)
    return tuple(out)


def profile_from_json(data: Mapping[str, Any] | None) -> ProgramProfile:
    """A profile from its stored JSON (already validated); unknown keys are ignored and
    missing ones take the defaults."""
    if not data:
        return DEFAULT_PROFILE
    return check_profile({k: v for k, v in data.items() if k in PROFILE_FIELDS})


def check_profile(
    data: Mapping[str, Any], base: ProgramProfile = DEFAULT_PROFILE
) -> ProgramProfile:
    """``base`` with the given fields changed, every field checked; raises
    ``ProfileInvalid`` naming each bad field.  An empty string clears an optional one."""
    problems: list[tuple[str, str]] = []
    unknown = sorted(set(data) - set(PROFILE_FIELDS))
    for name in unknown:
        problems.append((name, "unknown setting; known: " + ", ".join(PROFILE_FIELDS)))
    changes: dict[str, Any] = {}
    if "points_ru" in data:
        changes["points_ru"] = _forms(data["points_ru"], "points_ru", 3, problems)
    if "points_en" in data:
        changes["points_en"] = _forms(data["points_en"], "points_en", 2, problems)
    if "language" in data:
        lang = data["language"] or None
        if lang is not None and lang not in LANGUAGES:
            problems.append(("language", "must be ru or en (or empty: the installation's)"))
        changes["language"] = lang
    if "sms_sender" in data:
        sender = data["sms_sender"] or None
        if sender is not None and (
            not isinstance(sender, str) or _SENDER.fullmatch(sender) is None
        ):
            problems.append(
                (
                    "sms_sender",
                    "1 to 11 Latin letters, digits, space or . _ & -, "
                    "starting with a letter or digit",
                )
            )
        elif sender is not None and sender.isdigit():
            problems.append(("sms_sender", "must contain a letter (operators refuse digits only)"))
        changes["sms_sender"] = sender
    if "primary_colour" in data:
        colour = data["primary_colour"] or None
        if colour is not None and (not isinstance(colour, str) or not _COLOUR.fullmatch(colour)):
            problems.append(("primary_colour", "must be #RRGGBB, e.g. #1E6FD9"))
        changes["primary_colour"] = colour.lower() if isinstance(colour, str) else None
    if "brand_name" in data:
        changes["brand_name"] = _text(data["brand_name"], "brand_name", 80, problems)
    if "support_phone" in data:
        phone = _text(data["support_phone"], "support_phone", 25, problems)
        if phone and not _PHONE.fullmatch(phone):
            problems.append(("support_phone", "digits, spaces, ( ) - and a leading +"))
        changes["support_phone"] = phone
    if "support_email" in data:
        email = _text(data["support_email"], "support_email", 254, problems)
        if email and not _EMAIL.fullmatch(email):
            problems.append(("support_email", "must be an e-mail address"))
        changes["support_email"] = email
    if "support_url" in data:
        url = _text(data["support_url"], "support_url", 300, problems)
        if url and not url.startswith("https://"):
            problems.append(("support_url", "must start with https://"))
        changes["support_url"] = url
    if problems:
        raise ProfileInvalid(problems)
    return replace(base, **changes)
