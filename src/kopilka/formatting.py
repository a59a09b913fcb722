"""Numbers, money and points as people read them, in Russian and English.

Shared by the console (``kopilka.web.i18n`` re-exports these) and the notifications, so
that an SMS says ``1 234,50 ₽`` and ``3 балла`` exactly as the console does.  Values are
``Decimal``; nothing here is a float.
"""

from __future__ import annotations

from decimal import Decimal

from babel import Locale
from babel.numbers import format_decimal

LANGS = ("ru", "en")
DEFAULT = "ru"
_LOCALES = {lang: Locale.parse(lang) for lang in LANGS}


def plural(lang: str, n: int | Decimal, forms: dict[str, str]) -> str:
    """``forms`` by CLDR category: ru ``one``/``few``/``many``, en ``one``/``other``."""
    category = _LOCALES.get(lang, _LOCALES[DEFAULT]).plural_form(abs(Decimal(n)))
    return forms.get(category) or forms.get("other") or forms.get("many") or ""


def number(lang: str, value: Decimal | int | None, places: int = 2) -> str:
    if value is None:
        return ""
    fmt = "#,##0" + ("." + "0" * places if places else "")
    return str(format_decimal(value, format=fmt, locale=_LOCALES.get(lang, _LOCALES[DEFAULT])))


def money(lang: str, value: Decimal | None) -> str:
    return "" if value is None else number(lang, value) + " ₽"


def points(lang: str, value: Decimal | None) -> str:
    """Points with their unit in the right plural: ``1 234,5 балла``."""
    if value is None:
        return ""
    whole = value == value.to_integral_value()
    text = number(lang, value, 0 if whole else 2)
    if lang == "ru":
        unit = plural(
            "ru", value if whole else 2, {"one": "балл", "few": "балла", "many": "баллов"}
        )
        if not whole:
            unit = "балла"
        return f"{text} {unit}"
    return f"{text} " + ("point" if value == 1 else "points")
