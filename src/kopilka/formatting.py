"""Numbers, money and points as people read them, in Russian and English.

Shared by the console (``kopilka.web.i18n`` re-exports these) and the notifications, so
that an SMS says ``1 234,50 ₽`` and ``3 балла`` exactly as the console does.  Values are
``Decimal``; nothing here is a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from babel import Locale
from babel.numbers import format_decimal

LANGS = ("ru", "en")
DEFAULT = "ru"
_LOCALES = {lang: Locale.parse(lang) for lang in LANGS}


def plural(lang: str, n: int | Decimal, forms: Mapping[str, str]) -> str:
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


def points(lang: str, value: Decimal | None, forms: Mapping[str, str] | None = None) -> str:
    """Points with their unit in the right plural: ``1 234,5 балла``; ``forms`` is a
    program's own unit by CLDR category (``ProgramProfile.points_forms``: ``миля``,
    ``мили``, ``миль``), the default ``балл``/``point`` without it.  A fraction takes the
    Russian genitive singular (``few``): ``1,5 мили``."""
    if value is None:
        return ""
    whole = value == value.to_integral_value()
    text = number(lang, value, 0 if whole else 2)
    if lang == "ru":
        f = forms or {"one": "балл", "few": "балла", "many": "баллов"}
        unit = plural("ru", int(value), f) if whole else (f.get("few") or f.get("other") or "")
        return f"{text} {unit}"
    f = forms or {"one": "point", "other": "points"}
    return f"{text} " + (f["one"] if value == 1 else f["other"])
