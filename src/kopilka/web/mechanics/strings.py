"""The mechanics pages' Russian strings."""

from __future__ import annotations

from kopilka.web import i18n

RU = {
    # form checks
    "Required": "Обязательное поле",
    "At most": "Не длиннее",
    "A whole number": "Целое число",
    "From": "С",
    "to": "до",
    "To": "По",
    "A number, such as 500 or 99.90": "Число, например 500 или 99,90",
    "Above 0, at most two decimals": "Больше 0, не более двух знаков после запятой",
    "A date and time": "Дата и время",
    "Moscow time": "Московское время",
    "Must be after the start": "Должно быть позже начала",
    "Letters, digits and _ . - only": "Только буквы, цифры и _ . -",
    "Refused": "Отказ",
    "Say why (at least 3 characters)": "Укажите причину (не короче 3 символов)",
    # states (shown through _(state))
    "active": "активен",
    "used": "использован",
    "expired": "истёк",
    "blocked": "заблокирован",
    "held": "удержано",
    # card, draw, order states and card movements (``mlabel(kind, value)`` in templates)
    "not sold yet": "не продана",
    "spent": "израсходована",
    "sold (activated)": "продажа (активация)",
    "held by a receipt": "резерв по чеку",
    "hold released": "резерв снят",
    "paid": "оплата",
    "refunded": "возврат",
    "balance expired": "остаток сгорел",
    "unblocked": "разблокирована",
    "open": "открыт",
    "seed committed": "зерно зафиксировано",
    "drawn": "проведён",
    "ordered": "заказан",
    "handed over": "выдан",
    "cancelled": "отменён",
    "yes": "да",
    "no": "нет",
    "unlimited": "без ограничений",
    "points": "баллов",
    "All states": "Все состояния",
    "State": "Состояние",
    # coupons
    "Coupon series": "Серии купонов",
    "New series": "Новая серия",
    "New coupon series": "Новая серия купонов",
    "Series code": "Код серии",
    "Promotions name it: when coupon is this code": (
        "На него ссылаются акции: условие «купон» с этим кодом"
    ),
    "Codes": "Коды",
    "Generate codes": "Сгенерировать коды",
    "Import my codes": "Загрузить свои коды",
    "How many codes": "Сколько кодов",
    "Seed (optional)": "Зерно (необязательно)",
    "The same seed makes the same codes again": "С тем же зерном получатся те же коды",
    "Imported codes, one a line": "Свои коды, по одному в строке",
    "Paste the codes, one a line": "Вставьте коды, по одному в строке",
    "Uses per code": "Применений на код",
    "Empty: unlimited": "Пусто — без ограничений",
    "Valid from": "Действует с",
    "Valid until": "Действует до",
    "Valid": "Срок",
    "Points code: points credited": "Код на баллы: сколько начислить",
    "Only for a code redeemed for points, not used on a receipt": (
        "Только для кода, который обменивают на баллы, а не применяют в чеке"
    ),
    "Give the coupon back when its receipt is refunded": (
        "Возвращать купон при полном возврате чека"
    ),
    "Series": "Серия",
    "Create series": "Создать серию",
    "A series with this code exists already": "Серия с таким кодом уже есть",
    "A code is already a coupon of this program": "Такой код уже есть в программе",
    "Series created": "Серия создана",
    "Issued": "Выпущено",
    "Active": "Активные",
    "Used": "Использованы",
    "Expired": "Истекли",
    "Blocked": "Заблокированы",
    "No coupon series yet.": "Серий купонов пока нет.",
    "Points code": "Код на баллы",
    "Returned on refund": "Возвращается при возврате",
    "Seed": "Зерно",
    "Export XLSX": "Выгрузить XLSX",
    "Block the whole series": "Заблокировать всю серию",
    "Every code of the series stops working at the tills. Type the series code to confirm": (
        "Все коды серии перестанут приниматься на кассах. Для подтверждения введите код серии"
    ),
    "Unblock the series": "Разблокировать серию",
    "Type the series code to confirm": "Для подтверждения введите код серии",
    "Uses": "Применения",
    "Customer": "Клиент",
    "Block": "Заблокировать",
    "Unblock": "Разблокировать",
    "No codes in this state.": "Нет кодов в этом состоянии.",
    "Codes blocked": "Заблокировано кодов",
    "Codes unblocked": "Разблокировано кодов",
    "Coupon blocked": "Купон заблокирован",
    "Coupon unblocked": "Купон разблокирован",
    # gift cards
    "Gift card series": "Серии подарочных карт",
    "Gift card": "Подарочная карта",
    "All cards": "Все карты",
    "New gift card series": "Новая серия подарочных карт",
    "Nominal": "Номинал",
    "Nominal, roubles": "Номинал, ₽",
    "How many cards": "Сколько карт",
    "At most 1000 at a time": "Не более 1000 за раз",
    "Valid, days from sale": "Срок действия, дней с продажи",
    "Valid, days": "Срок, дней",
    "Empty: never expires": "Пусто — бессрочно",
    "The PINs are shown once, on the next page: print or save them there.": (
        "ПИН-коды будут показаны один раз на следующей странице: распечатайте или сохраните их."
    ),
    "These PINs are shown only now: only their hashes are stored. Print or save this page "
    "before leaving it.": (
        "ПИН-коды показаны только сейчас: хранятся лишь их хэши. "
        "Распечатайте или сохраните страницу, прежде чем уйти с неё."
    ),
    "Number": "Номер",
    "Done: see the cards": "Готово: к картам",
    "Cards": "Карты",
    "Outstanding": "Остаток",
    "Outstanding on live cards": "Остаток на действующих картах",
    "Sold (activated)": "Продано (активировано)",
    "Redeemed": "Оплачено картами",
    "Breakage (expired unspent)": "Сгорело (неизрасходованный остаток)",
    "Breakage": "Сгорело",
    "Breakage by series": "Сгорание по сериям",
    "Cards expired": "Карт истекло",
    "No gift card series yet.": "Серий подарочных карт пока нет.",
    "Card number": "Номер карты",
    "Balance": "Баланс",
    "Sold": "Продана",
    "Expires": "Истекает",
    "No gift cards found.": "Подарочные карты не найдены.",
    "Held by open receipts": "Удержано открытыми чеками",
    "Block the card": "Заблокировать карту",
    "Unblock the card": "Разблокировать карту",
    "Movements": "Движения",
    "When": "Когда",
    "What": "Что",
    "Amount": "Сумма",
    "Held": "Удержание",
    "Receipt": "Чек",
    "No movements to show.": "Движений нет.",
    "Only the movements at your stores are shown.": "Показаны только движения в ваших магазинах.",
    "Gift card blocked": "Подарочная карта заблокирована",
    "Gift card unblocked": "Подарочная карта разблокирована",
    # draws
    "Prize draws": "Розыгрыши призов",
    "New draw": "Новый розыгрыш",
    "No draws yet.": "Розыгрышей пока нет.",
    "Members": "Участники",
    "Tickets": "Билеты",
    "Winners": "Победители",
    "Draw code": "Код розыгрыша",
    "Purchases from": "Покупки с",
    "Purchases until (exclusive)": "Покупки до (не включая)",
    "Tickets per purchase": "Билетов за покупку",
    "One ticket per roubles paid": "Один билет за каждые ₽ оплаты",
    "Empty: not by amount": "Пусто — не по сумме",
    "Minimum purchase, roubles": "Минимальная покупка, ₽",
    "Prizes, one a line, from the main prize down": "Призы, по одному в строке, начиная с главного",
    "COUNT:points:AMOUNT or COUNT:goods:NAME, e.g. 1:points:5000 or 3:goods:Coffee machine": (
        "КОЛИЧЕСТВО:points:БАЛЛЫ или КОЛИЧЕСТВО:goods:НАЗВАНИЕ, "
        "например 1:points:5000 или 3:goods:Кофемашина"
    ),
    "One prize per member": "Не больше одного приза на участника",
    "Create draw": "Создать розыгрыш",
    "A prize line is wrong": "Ошибка в строке приза",
    "Draw created": "Розыгрыш создан",
    "Period": "Период",
    "Members with tickets": "Участников с билетами",
    "Prizes": "Призы",
    "Tickets so far: what a run now would count.": (
        "Билеты на сейчас: столько насчитал бы розыгрыш, проведённый в эту минуту."
    ),
    "Fairness": "Честность",
    "Seed hash": "Хэш зерна",
    "not committed yet": "ещё не зафиксировано",
    "Commit the seed": "Зафиксировать зерно",
    "Run the draw": "Провести розыгрыш",
    "Winners are drawn and points credited once. Type the draw code to confirm": (
        "Победители выбираются, а баллы начисляются один раз. Для подтверждения введите код "
        "розыгрыша"
    ),
    "The period has not ended yet": "Период ещё не закончился",
    "Place": "Место",
    "Card": "Карта",
    "Prize": "Приз",
    "Nobody had a ticket.": "Ни у кого не было билетов.",
    "Seed committed: publish its hash": "Зерно зафиксировано: опубликуйте его хэш",
    "The draw has been run": "Розыгрыш проведён",
    # rewards
    "Rewards catalogue": "Каталог наград",
    "Orders": "Заказы",
    "New reward": "Новая награда",
    "Edit reward": "Изменить награду",
    "Price": "Цена",
    "Price, points": "Цена, баллы",
    "Stock": "Остаток",
    "On sale": "В продаже",
    "On sale: members may order it": "В продаже: участники могут заказать",
    "A new price applies to new orders": "Новая цена действует для новых заказов",
    "Edit": "Изменить",
    "The catalogue is empty.": "Каталог пуст.",
    "Reward added": "Награда добавлена",
    "Reward saved": "Награда сохранена",
    "Reward orders": "Заказы наград",
    "Order": "Заказ",
    "Reward": "Награда",
    "Points": "Баллы",
    "Ordered": "Заказан",
    "Issue": "Выдать",
    "Cancel order": "Отменить заказ",
    "No orders.": "Заказов нет.",
    "Order issued": "Заказ выдан",
    "Order cancelled": "Заказ отменён",
}


# English labels of stored values, by kind; templates show ``_(mlabel(kind, value))``.
LABELS: dict[str, dict[str, str]] = {
    "card": {
        "issued": "not sold yet",
        "active": "active",
        "used": "spent",
        "expired": "expired",
        "blocked": "blocked",
    },
    "move": {
        "activate": "sold (activated)",
        "hold": "held by a receipt",
        "release": "hold released",
        "debit": "paid",
        "refund": "refunded",
        "expire": "balance expired",
        "block": "blocked",
        "unblock": "unblocked",
    },
    "draw": {"open": "open", "committed": "seed committed", "drawn": "drawn"},
    "order": {"ordered": "ordered", "issued": "handed over", "cancelled": "cancelled"},
}


def label(kind: str, value: str) -> str:
    return LABELS.get(kind, {}).get(value, value)


def register() -> None:
    from kopilka.web.templating import env

    i18n.add(RU, area="mechanics")
    env.globals["mlabel"] = label
