"""Two languages: English in the source, Russian from dictionaries each area registers.

Templates and views write ``_("Customers")``; ``gettext("ru", ...)`` finds the Russian.
A missing translation shows the English (a test lists every string without one).
Russian plurals and number formats come from Babel (1 балл, 3 балла, 11 баллов;
``1 234,50``).
"""

from __future__ import annotations

# Number, money and points formats live in a neutral module: the notifications format
# amounts in SMS and e-mail exactly as the console shows them.
from kopilka.formatting import DEFAULT, LANGS, money, number, plural, points

__all__ = [
    "DEFAULT",
    "LANGS",
    "RU",
    "add",
    "gettext",
    "known",
    "money",
    "number",
    "plural",
    "points",
]

RU: dict[str, str] = {}


# An area's own words: "Held" is «Заморожено» for points and «Удержание» for a gift card.
# A template of the area (``mechanics/…``) looks in its area's dictionary first.
AREAS: dict[str, dict[str, str]] = {}
CONFLICTS: list[tuple[str, str, str]] = []  # (English, first Russian, other Russian)


def add(translations: dict[str, str], *, area: str | None = None) -> None:
    """Register Russian strings (English key → Russian), shared or for one ``area``.
    Within one dictionary an English string has one translation; a second, different one
    is recorded (a test lists them)."""
    target = RU if area is None else AREAS.setdefault(area, {})
    for en, ru in translations.items():
        if en in target and target[en] != ru:
            CONFLICTS.append((en, target[en], ru))
        else:
            target[en] = ru


def gettext(lang: str, text: str, area: str | None = None) -> str:
    if lang != "ru":
        return text
    if area is not None and text in AREAS.get(area, {}):
        return AREAS[area][text]
    if text in RU:
        return RU[text]
    for words in AREAS.values():  # a view's flash of an area's string
        if text in words:
            return words[text]
    return text


def known(text: str) -> bool:
    """Whether ``text`` has a Russian translation anywhere."""
    return text in RU or any(text in words for words in AREAS.values())


add(
    {
        "Sign in": "Вход",
        "Log in": "Войти",
        "Log out": "Выйти",
        "Login": "Логин",
        "Password": "Пароль",
        "wrong login or password": "неверный логин или пароль",
        "Too many failed logins. Try again after": (
            "Слишком много неудачных попыток. Повторите после"
        ),
        "The form has expired; please try again.": "Форма устарела, попробуйте ещё раз.",
        "Home": "Главная",
        "Programs": "Программы",
        "Promotions": "Акции",
        "Simulator": "Симулятор",
        "Customers": "Клиенты",
        "Coupons": "Купоны",
        "Gift cards": "Подарочные карты",
        "Draws": "Розыгрыши",
        "Rewards": "Каталог наград",
        "Stores": "Магазины",
        "Receipts": "Чеки",
        "Terminals": "Кассы",
        "Users": "Пользователи",
        "Audit log": "Журнал аудита",
        "Cashier screen": "Экран кассира",
        "Program": "Программа",
        "Language": "Язык",
        "Save": "Сохранить",
        "Cancel": "Отмена",
        "Search": "Найти",
        "Back": "Назад",
        "Next": "Далее",
        "Previous": "Назад",
        "Page": "Страница",
        "of": "из",
        "Nothing found.": "Ничего не найдено.",
        "Reason": "Причина",
        "Export CSV": "Выгрузить CSV",
        "Export Excel": "Выгрузить Excel",
        "Status": "Статус",
        "Name": "Название",
        "Code": "Код",
        "Created": "Создан",
        "Actions": "Действия",
        "active": "активен",
        "blocked": "заблокирован",
        "disabled": "отключён",
        "You do not have access to this page.": "У вас нет доступа к этой странице.",
        "Access denied": "Доступ запрещён",
        "Not found": "Не найдено",
        "The page or object does not exist.": "Страница или объект не существует.",
        "Something went wrong": "Что-то пошло не так",
        "Fix the highlighted fields.": "Исправьте отмеченные поля.",
        "Saved.": "Сохранено.",
        "Welcome": "Добро пожаловать",
        "Members": "Участники",
        "Active cards": "Активные карты",
        "Receipts today": "Чеков сегодня",
        "Points outstanding": "Баллов на счетах",
        "Active promotions": "Активных акций",
        "Role": "Роль",
        "owner": "владелец",
        "marketer": "маркетолог",
        "analyst": "аналитик",
        "support": "поддержка",
        "security": "служба безопасности",
        "store_manager": "директор магазина",
        "partner": "партнёр",
        "cashier": "кассир",
        "Loyalty processing center": "Процессинговый центр лояльности",
    }
)
