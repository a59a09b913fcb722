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

__all__ = ["DEFAULT", "LANGS", "RU", "add", "gettext", "money", "number", "plural", "points"]

RU: dict[str, str] = {}


def add(translations: dict[str, str]) -> None:
    """Register an area's Russian strings (English key → Russian)."""
    RU.update(translations)


def gettext(lang: str, text: str) -> str:
    if lang == "ru":
        return RU.get(text, text)
    return text


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
