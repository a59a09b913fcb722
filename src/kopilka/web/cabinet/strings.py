"""Russian for the customer cabinet's pages (English is the source)."""

from __future__ import annotations

from kopilka.web import i18n

i18n.add(
    {
        "My points": "Мои баллы",
        "Support": "Поддержка",
        "Log out": "Выйти",
        "Sections": "Разделы",
        "Points": "Баллы",
        "History": "История",
        "Card": "Карта",
        "Profile": "Профиль",
        "Choose your loyalty program": "Выберите программу лояльности",
        "Sign in": "Вход",
        "Enter the phone number you gave at registration; we will send you a code by SMS.": (
            "Введите номер телефона, указанный при регистрации: мы пришлём код в SMS."
        ),
        "Phone": "Телефон",
        "Get a code": "Получить код",
        "Enter the code": "Введите код",
        "We sent a code by SMS to": "Мы отправили код в SMS на номер",
        "It is valid for 5 minutes.": "Код действует 5 минут.",
        "Code from SMS": "Код из SMS",
        "Send a new code": "Прислать новый код",
        "A code was sent recently; wait a minute before asking for another.": (
            "Код уже отправлен; новый можно запросить через минуту."
        ),
        "Balance": "Баланс",
        "Your points": "Ваши баллы",
        "Pending": "Ожидают начисления",
        "Held": "Заморожено",
        "Expiring points": "Сгорание баллов",
        "Spend them by the day shown.": "Потратьте их до указанного дня включительно.",
        "Tier": "Уровень",
        "To reach": "До уровня",
        "buy for": "покупки на",
        "more purchases": "покупок",
        "within": "за",
        "days": "дней",
        "You are at the top tier.": "У вас высший уровень.",
        "Recent purchases": "Последние покупки",
        "Receipt": "Чек",
        "All history": "Вся история",
        "No purchases yet.": "Покупок пока нет.",
        "Coupons and offers": "Купоны и предложения",
        "Coupon": "Купон",
        "until": "до",
        "No coupons or personal offers right now.": (
            "Сейчас нет купонов и персональных предложений."
        ),
        "Pages": "Страницы",
        "Newer": "Новее",
        "Older": "Старше",
        "Receipts": "Чеки",
        "Point movements": "Движение баллов",
        "No point movements yet.": "Движений баллов пока нет.",
        "Earned": "Начислено",
        "Spent": "Списано",
        "Held for a purchase": "Заморожено для покупки",
        "Hold released": "Разморожено",
        "Returned with a refund": "Возврат",
        "Expired": "Сгорело",
        "Adjustment": "Корректировка",
        "Bonus": "Бонус",
        "Your card": "Ваша карта",
        "Show the barcode at the till, or tell the cashier your phone number.": (
            "Покажите штрихкод на кассе или назовите кассиру номер телефона."
        ),
        "One-minute code for the till": "Код для кассы на одну минуту",
        "Pay with points when the till is offline": "Оплата баллами, когда касса без связи",
        "Up to": "До",
        "valid until": "действует до",
        "Points spent with this code are taken from your account when the till is back "
        "online.": "Баллы, потраченные по этому коду, спишутся со счёта, когда касса снова "
        "будет на связи.",
        "It changes every minute; a photo of it is useless later.": (
            "Он меняется каждую минуту: его фотография потом бесполезна."
        ),
        "Your cards": "Ваши карты",
        "virtual": "виртуальная",
        "plastic": "пластиковая",
        "blocked": "заблокирована",
        "replaced": "заменена",
        "Plastic card number": "Номер пластиковой карты",
        "Register the card": "Привязать карту",
        "The card is registered.": "Карта привязана.",
        "The card is registered; welcome points are on your account.": (
            "Карта привязана, приветственные баллы уже на счёте."
        ),
        "Invite a friend": "Пригласите друга",
        "Your friend gives this code when registering; you both get points after the friend's first purchase.": (  # noqa: E501
            "Друг называет этот код при регистрации; после его первой покупки баллы "
            "получите вы оба."
        ),
        "First name": "Имя",
        "Last name": "Фамилия",
        "E-mail": "Эл. почта",
        "Birthday": "День рождения",
        "Consents": "Согласия",
        "News and offers by SMS": "Новости и предложения в SMS",
        "News and offers by e-mail": "Новости и предложения по эл. почте",
        "Save": "Сохранить",
        "Saved.": "Сохранено.",
        "Personal data": "Персональные данные",
        "Download or delete my personal data": "Скачать или удалить мои персональные данные",
        "Download my data": "Скачать мои данные",
        "Everything we keep about you: profile, cards, balance, receipts, point movements.": (
            "Всё, что мы храним о вас: профиль, карты, баланс, чеки, движение баллов."
        ),
        "Download (JSON)": "Скачать (JSON)",
        "Delete my personal data": "Удалить мои персональные данные",
        "Your name, phone, e-mail and birthday will be erased and you will be signed out. Points and receipts stay in the accounts without your name, as the law on accounting requires. This cannot be undone.": (  # noqa: E501
            "Имя, телефон, эл. почта и день рождения будут стёрты, вы выйдете из кабинета. "
            "Баллы и чеки останутся в учёте без вашего имени, как требует закон о бухгалтерском "
            "учёте. Отменить это нельзя."
        ),
        "Type DELETE to confirm": "Для подтверждения введите DELETE",
        "Your personal data is deleted": "Ваши персональные данные удалены",
        "You are signed out. Thank you for having been with us.": (
            "Вы вышли из кабинета. Спасибо, что были с нами."
        ),
        # the services' refusals shown next to a field
        "The code is wrong.": "Неверный код.",
        "The code has expired; ask for a new one.": "Срок действия кода истёк; запросите новый.",
        "This card belongs to another customer.": "Эта карта принадлежит другому покупателю.",
        "enter a mobile phone number": "введите номер мобильного телефона",
        "too many wrong codes for this phone; try again in an hour": (
            "слишком много неверных кодов для этого телефона; попробуйте через час"
        ),
        "too many wrong codes; ask for a new code": "слишком много неверных кодов; запросите новый",
        "a code was sent recently; wait before asking for another": (
            "код недавно отправлен; подождите, прежде чем запрашивать новый"
        ),
        "13 digits with a correct check digit": "13 цифр с верной контрольной цифрой",
        "at most 100 characters": "не более 100 символов",
        "not an e-mail address": "это не адрес эл. почты",
        "not a date": "это не дата",
        "not a plausible birthday": "неправдоподобная дата рождения",
        "type DELETE to confirm": "введите DELETE для подтверждения",
    },
    area="cabinet",
)
