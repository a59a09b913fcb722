"""The customers pages' words in Russian, and refusals said in the viewer's language."""

from __future__ import annotations

from kopilka.services.errors import ServiceError
from kopilka.web import i18n


def message(lang: str, exc: ServiceError) -> str:
    """A service's refusal as a sentence for the field it names."""
    code, field = exc.code, exc.field
    if code == "insufficient_points":
        available = exc.extra.get("available")
        text = i18n.gettext(lang, "More than the customer has available")
        return f"{text}: {available}" if available else text
    key = {
        ("validation_failed", "reason"): "Say why (at least 3 characters).",
        ("validation_failed", "amount"): (
            "Type a non-zero number of points, e.g. 150 or 20.5 (two decimals at most)."
        ),
        ("validation_failed", "new"): "The card number's check digit is wrong.",
        ("validation_failed", "other"): "Choose another customer.",
        ("validation_failed", "confirm"): "Type the absorbed customer's number to confirm.",
        ("card_taken", "new"): "This card number belongs to another customer.",
        ("unknown_identifier", "number"): "No such card.",
        ("card_blocked", "number"): "The card was replaced; it cannot be changed.",
        ("customer_not_found", "other"): "No such customer (type its number, card or phone).",
        ("invalid_city", "city"): "A town's name: up to 100 characters, no digits.",
    }.get((code, field or ""))
    if key is None and code == "conflict":
        key = {
            "number": "The card is not in a state that allows this.",
            "old": "The card was replaced already.",
            "other": "This customer cannot be merged now (merged already, or points held).",
            "customer_id": "This customer cannot be changed now (merged, or points held).",
        }.get(field or "")
    if key is None and code == "forbidden":
        key = "You may not do this."
    return i18n.gettext(lang, key) if key else exc.detail


RU = {
    # search
    "Find a customer": "Поиск клиента",
    "Phone, card, QR, name or e-mail": "Телефон, карта, QR, фамилия или e-mail",
    "Type a phone, a card number, a last name (at least 2 letters) or an e-mail.": (
        "Введите телефон, номер карты, фамилию (не меньше 2 букв) или e-mail."
    ),
    "Type at least 2 letters of the last name.": "Введите не меньше 2 букв фамилии.",
    "Found by phone": "Найдено по телефону",
    "Found by card or identifier": "Найдено по карте или идентификатору",
    "Found by e-mail": "Найдено по e-mail",
    "Found by last name": "Найдено по фамилии",
    "Customer": "Клиент",
    "Phone": "Телефон",
    "E-mail": "E-mail",
    "Card": "Карта",
    "Balance": "Баланс",
    "Registered": "Зарегистрирован",
    "merged": "объединён",
    "replaced": "заменена",
    "Open": "Открыть",
    # customer page
    "Identity": "Данные клиента",
    "Birthday": "День рождения",
    "Consents": "Согласия",
    "SMS": "SMS",
    "yes": "да",
    "no": "нет",
    "Phone confirmed": "Телефон подтверждён",
    "Available": "Доступно",
    "Pending": "Ожидает начисления",
    "Held": "Заблокировано покупкой",
    "Debt": "Долг",
    "Tier": "Уровень",
    "Discount": "Скидка",
    "Segment": "Сегмент",
    "External id": "Код во внешней системе",
    "Tags": "Метки",
    "Cards": "Карты",
    "Number": "Номер",
    "Kind": "Тип",
    "plastic": "пластиковая",
    "virtual": "виртуальная",
    "Issued": "Выпущена",
    "Block": "Заблокировать",
    "Unblock": "Разблокировать",
    "Replace": "Заменить",
    "replaced by": "заменена на",
    "Receipts": "Чеки",
    "Movements": "Движения баллов",
    "Lots": "Партии баллов",
    "History": "История изменений",
    "Date": "Дата",
    "Store": "Магазин",
    "Receipt": "Чек",
    "Amount": "Сумма",
    "To pay": "К оплате",
    "Earned": "Начислено",
    "Redeemed": "Списано",
    "State": "Состояние",
    "Points": "Баллы",
    "Note": "Примечание",
    "Remaining": "Остаток",
    "Funded by": "За чей счёт",
    "Can be spent": "Где списываются",
    "only at": "только у партнёра",
    "anywhere": "везде",
    "Activates": "Активируются",
    "Expires": "Сгорают",
    "never": "никогда",
    "Series": "Серия",
    "Uses": "Использований",
    "Valid until": "Действует до",
    "Who": "Кто",
    "What": "Что",
    "Before": "До",
    "After": "После",
    "Adjust points": "Начислить или списать баллы",
    "Issue a virtual card": "Выпустить виртуальную карту",
    "Merge a duplicate": "Объединить с дублем",
    "Change consents": "Изменить согласия",
    "Consent history": "История согласий",
    "When": "Когда",
    "Consent": "Согласие",
    "Given or withdrawn": "Дано или отозвано",
    "Where": "Где",
    "Text version": "Версия текста",
    "Personal data processing": "Обработка персональных данных",
    "given": "дано",
    "withdrawn": "отозвано",
    "till": "касса",
    "cabinet": "личный кабинет",
    "console / admin API": "консоль / admin API",
    "import": "импорт",
    "Erase personal data": "Удалить персональные данные",
    "Erase": "Удалить",
    "The name, phone, e-mail, birthday, city and device are erased and replaced by a pseudonym; the cards stop identifying the customer; consents are withdrawn. Points, receipts and the ledger stay under the pseudonym. This cannot be undone.": "Имя, телефон, e-mail, дата рождения, город и устройство удаляются и заменяются псевдонимом; карты больше не узнают участника; согласия отзываются. Баллы, чеки и журнал операций остаются под псевдонимом. Отменить нельзя.",  # noqa: E501
    "Type the customer number again to confirm": "Введите номер участника ещё раз для подтверждения",  # noqa: E501
    "type the customer number again to confirm": "введите номер участника ещё раз для подтверждения",  # noqa: E501
    "Personal data erased; the customer is now {pseudonym}.": "Персональные данные удалены; участник теперь {pseudonym}.",  # noqa: E501
    "This customer was merged into": "Клиент объединён с клиентом",
    "No receipts yet.": "Чеков пока нет.",
    "No movements yet.": "Движений пока нет.",
    "No points.": "Баллов нет.",
    "No coupons.": "Купонов нет.",
    "No changes recorded.": "Изменений не было.",
    # ledger entry kinds
    "earn": "начисление",
    "burn": "списание",
    "hold": "блокировка",
    "release": "разблокировка",
    "refund": "возврат",
    "expire": "сгорание",
    "adjust": "корректировка",
    "confirmed": "подтверждён",
    "cancelled": "отменён",
    "calculated": "рассчитан",
    "used": "использован",
    # action forms
    "Credit": "Начислить",
    "Debit": "Списать",
    "Direction": "Операция",
    "Reason (required, seen in the audit log)": "Причина (обязательно, видна в журнале аудита)",
    "Adjust": "Провести",
    "The card stops identifying the customer at the till; the balance stays on the account.": (
        "Карта перестанет опознавать клиента на кассе; баллы остаются на счёте."
    ),
    "The card identifies the customer at the till again.": (
        "Карта снова опознаёт клиента на кассе."
    ),
    "New card number": "Номер новой карты",
    "The new card joins the same account: the balance stays with the customer. The phone, QR and RFID move to the new card; the old card is refused at the till.": (  # noqa: E501
        "Новая карта привязывается к тому же счёту: баланс остаётся у клиента. Телефон, QR "
        "и RFID переходят на новую карту; старая карта на кассе отклоняется."
    ),
    "Issue": "Выпустить",
    "A new virtual card (number 29…) on the same account.": (
        "Новая виртуальная карта (номер 29…) на тот же счёт."
    ),
    "Duplicate customer (number, card or phone)": "Дубль (номер клиента, карта или телефон)",
    "Type the duplicate's customer number again to confirm": (
        "Повторите номер клиента-дубля для подтверждения"
    ),
    "Merge": "Объединить",
    "The duplicate's points (lot by lot, with their expiry), cards and coupons move to this customer; the duplicate is marked merged. This cannot be undone.": (  # noqa: E501
        "Баллы дубля (с их сроками сгорания), карты и купоны переходят этому клиенту; дубль "
        "помечается как объединённый. Отменить нельзя."
    ),
    "SMS messages": "SMS-рассылки",
    "E-mail messages": "Рассылки по e-mail",
    "City": "Город",
    "Change": "Изменить",
    "Change the city": "Изменить город",
    "City where the member lives": "Город, где живёт клиент",
    "Used by the territorial map to find members who live far from every store. Empty: unknown.": (
        "По нему территориальная карта находит клиентов, живущих далеко от магазинов. "
        "Пусто — неизвестен."
    ),
    # flashes and refusals
    "Points adjusted. Available now: {available}.": "Баллы скорректированы. Доступно: {available}.",
    "Consents saved.": "Согласия сохранены.",
    "City saved.": "Город сохранён.",
    "A town's name: up to 100 characters, no digits.": (
        "Название населённого пункта: до 100 символов, без цифр."
    ),
    "Virtual card {number} issued.": "Виртуальная карта {number} выпущена.",
    "Customer {other} merged into this one: {points} points moved.": (
        "Клиент {other} объединён с этим: перенесено баллов: {points}."
    ),
    "Card {number} blocked.": "Карта {number} заблокирована.",
    "Card {number} unblocked.": "Карта {number} разблокирована.",
    "Card {number} replaced; the balance stays with the customer.": (
        "Карта {number} заменена; баланс остался у клиента."
    ),
    "More than the customer has available": "Больше, чем доступно клиенту",
    "Say why (at least 3 characters).": "Укажите причину (не короче 3 символов).",
    "Type a non-zero number of points, e.g. 150 or 20.5 (two decimals at most).": (
        "Введите ненулевое число баллов, например 150 или 20,5 (не больше двух знаков после "
        "запятой)."
    ),
    "The card number's check digit is wrong.": "Неверная контрольная цифра номера карты.",
    "Choose another customer.": "Выберите другого клиента.",
    "Type the absorbed customer's number to confirm.": (
        "Введите номер клиента-дубля для подтверждения."
    ),
    "This card number belongs to another customer.": "Этот номер карты уже у другого клиента.",
    "No such card.": "Такой карты нет.",
    "The card was replaced; it cannot be changed.": "Карта заменена; её нельзя изменить.",
    "No such customer (type its number, card or phone).": (
        "Нет такого клиента (введите номер, карту или телефон)."
    ),
    "The card is not in a state that allows this.": "Состояние карты не позволяет это сделать.",
    "The card was replaced already.": "Карта уже заменена.",
    "This customer cannot be merged now (merged already, or points held).": (
        "Этого клиента сейчас нельзя объединить (уже объединён или баллы заблокированы покупкой)."
    ),
    "This customer cannot be changed now (merged, or points held).": (
        "Этого клиента сейчас нельзя изменить (объединён или баллы заблокированы покупкой)."
    ),
    "You may not do this.": "У вас нет прав на это действие.",
}


def register() -> None:
    i18n.add(RU, area="customers")
