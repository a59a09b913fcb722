"""Russian for the org pages (English is the source)."""

from __future__ import annotations

RU: dict[str, str] = {
    # receipts: a partner's view of its stores (issue 9)
    "Receipts at your stores": "Чеки в ваших магазинах",
    "Receipts at the program's stores": "Чеки в магазинах программы",
    "Customers' personal data are masked for your role.": (
        "Персональные данные покупателей для вашей роли скрыты."
    ),
    "Promotions for your stores": "Акции для ваших магазинов",
    "Promotions restricted to partners": "Акции, ограниченные партнёрами",
    "Receipt": "Чек",
    "Customer": "Покупатель",
    "Amount": "Сумма",
    "Earned": "Начислено",
    "Redeemed": "Списано",
    "State": "Состояние",
    "No receipts yet.": "Чеков пока нет.",
    "Phone": "Телефон",
    "Card": "Карта",
    "No promotions restricted to partners.": "Нет акций, ограниченных партнёрами.",
    "The user switches between the programs checked; each page works within the one shown.": (
        "Пользователь переключается между отмеченными программами; каждая страница работает в "
        "показанной."
    ),
    "Grant programs": "Выдать программы",
    "Programs granted.": "Программы выданы.",
    # stores
    "New store": "Новый магазин",
    "Edit store": "Изменить магазин",
    "Edit": "Изменить",
    "code, name or address": "код, название или адрес",
    "City": "Город",
    "All cities": "Все города",
    "Partner": "Партнёр",
    "All partners": "Все партнёры",
    "Find": "Найти",
    "Address": "Адрес",
    "Region": "Регион",
    "Active terminals": "Активных касс",
    "Time zone": "Часовой пояс",
    "Latitude": "Широта",
    "Longitude": "Долгота",
    "Coordinates": "Координаты",
    "What the till and promotions call the store": "Так магазин называют касса и акции",
    "e.g. Europe/Moscow, Asia/Yekaterinburg": "например, Europe/Moscow, Asia/Yekaterinburg",
    "degrees, -90 to 90, e.g. 55.7558": "градусы, от -90 до 90, например 55.7558",
    "degrees, -180 to 180, e.g. 37.6173": "градусы, от -180 до 180, например 37.6173",
    "Store created.": "Магазин создан.",
    "The key of the new terminal": "Ключ новой кассы",
    "Copy it into the till's settings now: it is shown only this once and cannot be seen again.": (
        "Скопируйте его в настройки кассы сейчас: он показан только один раз и больше не будет"
        " виден."
    ),
    "Key": "Ключ",
    "Last seen": "Последний выход на связь",
    "never": "никогда",
    "Disable": "Отключить",
    "The till will be refused at once. Type the key prefix to confirm:": (
        "Касса сразу перестанет обслуживаться. Для подтверждения введите начало ключа:"
    ),
    "Times in the store's time zone; last seen is updated about every 30 seconds.": (
        "Время — в часовом поясе магазина; связь с кассой обновляется примерно раз в 30 секунд."
    ),
    "No terminals yet.": "Касс пока нет.",
    "New terminal's name": "Название новой кассы",
    "Add terminal": "Добавить кассу",
    "The terminal is disabled; its key no longer works.": (
        "Касса отключена, её ключ больше не действует."
    ),
    # service refusals shown next to fields
    "the store's name is required": "укажите название магазина",
    "letters, digits, '-', '_' or '.', up to 64, starting with a letter or digit": (
        "буквы, цифры, «-», «_» или «.», до 64 знаков, начиная с буквы или цифры"
    ),
    "unknown time zone (e.g. Europe/Moscow)": "неизвестный часовой пояс (например, Europe/Moscow)",
    "not a number": "это не число",
    "must be between -90 and 90": "должно быть от -90 до 90",
    "must be between -180 and 180": "должно быть от -180 до 180",
    "at most 7 decimal places": "не больше 7 знаков после запятой",
    "give both coordinates or neither": "укажите обе координаты или ни одной",
    "choose the partner": "выберите партнёра",
    "no such partner in the program": "в программе нет такого партнёра",
    "no such store in the program": "в программе нет такого магазина",
    "no such program": "нет такой программы",
    "name the till (e.g. 'till 2')": "назовите кассу (например, «касса 2»)",
    "the terminal is already disabled": "касса уже отключена",
    "at most 200 characters": "не больше 200 знаков",
    "letters, digits, dots and hyphens, up to 64": "буквы, цифры, точки и дефисы, до 64 знаков",
    "the person's name is required": "укажите имя",
    "at least 10 characters": "не меньше 10 знаков",
    "a partner user needs its partner": "для пользователя партнёра выберите партнёра",
    "not an e-mail address": "это не адрес e-mail",
    "you cannot disable yourself or change your own role": (
        "нельзя отключить себя или изменить свою роль"
    ),
    "you may only give users your own program": "можно давать пользователям только свою программу",
    # users
    "New user": "Новый пользователь",
    "login, name or e-mail": "логин, имя или e-mail",
    "All roles": "Все роли",
    "Person": "Сотрудник",
    "Scope": "Доступ",
    "Last login": "Последний вход",
    "all programs": "все программы",
    "locked": "заблокирован",
    "Store": "Магазин",
    "A partner user needs its partner; a store manager or a cashier, its store.": (
        "Пользователю партнёра нужен его партнёр, директору магазина и кассиру — их магазин."
    ),
    "letters, digits, dots and hyphens": "буквы, цифры, точки и дефисы",
    "Person's name": "Имя сотрудника",
    "E-mail": "E-mail",
    "Create user": "Создать пользователя",
    "User created.": "Пользователь создан.",
    "Locked until": "Заблокирован до",
    "Profile and role": "Профиль и роль",
    "You cannot change your own role.": "Свою роль изменить нельзя.",
    "New password": "Новый пароль",
    "at least 10 characters; the user's sessions end": (
        "не меньше 10 знаков; сеансы пользователя завершатся"
    ),
    "Set password": "Сменить пароль",
    "Access": "Доступ",
    "Unlock": "Разблокировать",
    "The user will be signed out. Type the login to confirm:": (
        "Пользователь будет отключён. Для подтверждения введите логин:"
    ),
    "Disable user": "Отключить пользователя",
    "Enable user": "Включить пользователя",
    "The user is enabled.": "Пользователь включён.",
    "The user is disabled; their sessions ended.": "Пользователь отключён, его сеансы завершены.",
    "The password is changed; the user's sessions ended.": (
        "Пароль изменён, сеансы пользователя завершены."
    ),
    "The login is unlocked.": "Вход разблокирован.",
    # audit
    "Who": "Кто",
    "part of the name": "часть имени",
    "Action": "Действие",
    "a prefix: card. finds every card action": "начало: card. найдёт все действия с картами",
    "Object type": "Тип объекта",
    "e.g. user, store, card": "например, user, store, card",
    "Object id": "Номер объекта",
    "From": "С",
    "To": "По",
    "Filter": "Показать",
    "Reset": "Сбросить",
    "When": "Когда",
    "Object": "Объект",
    "Changes": "Изменения",
    "a date such as 2026-11-23": "дата вида 2026-11-23",
}
