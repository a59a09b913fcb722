"""The cashier screen's Russian strings."""

from __future__ import annotations

from kopilka.web import i18n

i18n.add(
    {
        # the screen
        "Cashier screen": "Экран кассира",
        "Store": "Магазин",
        "Choose the store": "Выберите магазин",
        "Open": "Открыть",
        "You are not bound to a store; ask the owner to set your store.": (
            "Вы не привязаны к магазину; попросите владельца указать ваш магазин."
        ),
        "This program has no stores yet.": "В программе ещё нет магазинов.",
        "Choose the store you are working in.": "Выберите магазин, в котором работаете.",
        "Card, QR or phone": "Карта, QR-код или телефон",
        "Scan the card or type the phone": "Отсканируйте карту или введите телефон",
        "Find": "Найти",
        "Other actions": "Другие действия",
        "New customer": "Новый покупатель",
        "Check a coupon": "Проверить купон",
        "Check a gift card": "Проверить подарочную карту",
        # the customer
        "(no name)": "(без имени)",
        "card": "карта",
        "discount": "скидка",
        "The card is blocked.": "Карта заблокирована.",
        "Points cannot be earned or spent with it; the customer can ask support to replace it.": (
            "Баллы по ней не начисляются и не списываются; покупатель может обратиться "
            "в поддержку, чтобы заменить карту."
        ),
        "The card was replaced by a new one.": "Карта заменена на новую.",
        "Ask for the new card, or find the customer by phone.": (
            "Попросите новую карту или найдите покупателя по телефону."
        ),
        "Available": "Доступно",
        "Pending": "Ожидают начисления",
        "Held": "Заморожено",
        "Personal offers": "Персональные предложения",
        "until": "до",
        "from": "с",
        "Recommend": "Предложите",
        "buys": "покупает",
        "for tier": "для уровня",
        "for segment": "для сегмента",
        "for group": "для группы",
        "any purchase": "на любую покупку",
        "birthday": "день рождения",
        "Last purchases": "Последние покупки",
        "Date": "Дата",
        "Amount": "Сумма",
        "Points": "Баллы",
        "No purchases yet.": "Покупок ещё не было.",
        # refusals
        "No customer with this card or phone.": (
            "Покупатель с такой картой или телефоном не найден."
        ),
        "No such coupon.": "Такого купона нет.",
        "Too many unknown coupon codes; wait a minute.": (
            "Слишком много неизвестных кодов купонов; подождите минуту."
        ),
        "No gift card with this number.": "Подарочной карты с таким номером нет.",
        "The cashier screen is disabled in this store.": "Экран кассира в этом магазине отключён.",
        "A customer with this phone is already registered.": (
            "Покупатель с таким телефоном уже зарегистрирован."
        ),
        "This card belongs to another customer.": "Эта карта принадлежит другому покупателю.",
        "The code is wrong.": "Неверный код.",
        "The code has expired; ask for a new one.": "Срок действия кода истёк; запросите новый.",
        "Too many attempts; try again later.": "Слишком много попыток; попробуйте позже.",
        "The phone is already confirmed.": "Телефон уже подтверждён.",
        "scan the card or type the phone": "отсканируйте карту или введите телефон",
        "type or scan the coupon code": "введите или отсканируйте код купона",
        "scan the gift card": "отсканируйте подарочную карту",
        "at most 64 characters": "не больше 64 символов",
        "unexpected characters": "недопустимые символы",
        "the cashier screen is disabled in this store (see the store's terminals)": (
            "экран кассира в этом магазине отключён (см. терминалы магазина)"
        ),
        # registration
        "Phone": "Телефон",
        "Card number (optional)": "Номер карты (необязательно)",
        "Scan a plastic card to attach it; empty: a virtual card is issued": (
            "Отсканируйте пластиковую карту, чтобы привязать её; без номера будет выпущена "
            "виртуальная карта"
        ),
        "First name": "Имя",
        "Last name": "Фамилия",
        "Consents": "Согласия",
        "SMS messages": "SMS-рассылки",
        "E-mail messages": "Рассылки по e-mail",
        "Register": "Зарегистрировать",
        "enter the customer's phone": "введите телефон покупателя",
        "not a valid phone number": "неверный номер телефона",
        "enter the customer's first name": "введите имя покупателя",
        "at most 100 characters": "не больше 100 символов",
        "a card number has 13 digits": "в номере карты 13 цифр",
        "the card number's check digit is wrong": "неверная контрольная цифра номера карты",
        "card number check digit is wrong": "неверная контрольная цифра номера карты",
        "the code has 6 digits": "в коде 6 цифр",
        "Customer registered": "Покупатель зарегистрирован",
        "The phone is confirmed.": "Телефон подтверждён.",
        "An SMS with a code was sent to the customer's phone. Type the code to confirm "
        "the phone (it can also be done later).": (
            "На телефон покупателя отправлено SMS с кодом. Введите код, чтобы подтвердить "
            "телефон (это можно сделать и позже)."
        ),
        "Code from the SMS": "Код из SMS",
        "Confirm the phone": "Подтвердить телефон",
        "Show the customer": "Показать покупателя",
        # coupon
        "Coupon code": "Код купона",
        "Check": "Проверить",
        "valid": "действует",
        "not valid": "не действует",
        "The coupon is blocked.": "Купон заблокирован.",
        "The coupon is not valid yet.": "Купон ещё не действует.",
        "The coupon has expired.": "Срок действия купона истёк.",
        "The coupon has been used.": "Купон уже использован.",
        "The coupon belongs to another customer.": "Купон выдан другому покупателю.",
        "The coupon cannot be used.": "Купон нельзя использовать.",
        "Gives": "Что даёт",
        "no running promotion uses this coupon": "ни одна действующая акция не использует купон",
        "Valid": "Срок действия",
        "no time limit": "без ограничения",
        "Uses": "Использований",
        "Personal": "Персональный",
        "only for the customer it was issued to": "только для покупателя, которому выдан",
        # gift card
        "Gift card number": "Номер подарочной карты",
        "not sold yet": "ещё не продана",
        "ready to use": "можно оплатить",
        "used up": "израсходована",
        "blocked": "заблокирована",
        "expired": "истёк срок",
        "Balance": "Баланс",
        "Available to pay": "Можно оплатить",
        "held": "заморожено",
        "Nominal": "Номинал",
        "Expires": "Действует до",
        "no expiry": "бессрочно",
        # what else to offer (basket rules, docs/analytics/basket.md)
        "What else to offer": "Что ещё предложить",
        "SKUs in the basket": "Артикулы в корзине",
        "scan or type them, one per line or separated by spaces": (
            "отсканируйте или введите, по одному в строке или через пробел"
        ),
        "Suggest": "Подсказать",
        "Customers who buy": "Покупатели, которые берут",
        "also buy it": "берут и это",
        "lift": "лифт",
        "Nothing to suggest for this basket.": "Для этой корзины подсказок нет.",
        "at most 200 SKUs": "не больше 200 артикулов",
    },
    area="cashier",
)
