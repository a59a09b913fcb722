"""Every string the console shows through ``_()`` has its Russian translation."""

from __future__ import annotations

import re
from pathlib import Path

import kopilka.web
from kopilka.web import i18n

WEB = Path(kopilka.web.__file__).parent
# _("text") / _('text') in templates and views; c.t("text") style is not used.
CALL = re.compile(r"""\b_\(\s*(["'])((?:(?!\1).)+)\1\s*\)""")


def _strings() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in [*WEB.rglob("*.html"), *WEB.rglob("*.py")]:
        for m in CALL.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(2), set()).add(str(path.relative_to(WEB)))
    return found


def test_every_console_string_has_a_russian_translation() -> None:
    import kopilka.api.app  # noqa: F401  (imports every area, which registers its strings)
    from kopilka.domain.roles import Role
    from kopilka.web.auth import NAV

    strings = _strings()
    assert len(strings) > 15  # the scan finds the console's strings at all
    for item in NAV:  # shown through _(label)
        strings.setdefault(item.label, set()).add("auth.py NAV")
    for role in Role:
        strings.setdefault(role.value, set()).add("roles.py")
    missing = {s: sorted(where) for s, where in strings.items() if not i18n.known(s)}
    assert missing == {}


def test_russian_plurals_and_numbers() -> None:
    from decimal import Decimal

    assert i18n.points("ru", Decimal(1)) == "1 балл"
    assert i18n.points("ru", Decimal(3)) == "3 балла"
    assert i18n.points("ru", Decimal(11)) == "11 баллов"
    assert i18n.points("ru", Decimal(21)) == "21 балл"
    assert i18n.money("ru", Decimal("1234.5")) == "1\xa0234,50 ₽"
    assert i18n.points("en", Decimal(1)) == "1 point"
    assert i18n.money("en", Decimal("1234.5")) == "1,234.50 ₽"


def test_no_english_string_has_two_russian_translations() -> None:
    import kopilka.api.app  # noqa: F401

    assert i18n.CONFLICTS == []
