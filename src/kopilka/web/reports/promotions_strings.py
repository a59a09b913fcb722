"""Russian for the promotion-effect pages (English is the source)."""

from __future__ import annotations

RU: dict[str, str] = {
    "Promotion effect": "Эффект акций",
    "what each promotion cost and the sales it added, against a control group": (
        "во что обошлась каждая акция и сколько продаж она добавила относительно контрольной группы"
    ),
    "What each promotion gave and cost, and the sales it added per member against a "
    "control: its held-out group, or else the same customers' pre-period of equal length "
    "minus the change among comparable non-participants. Intervals are 95% (Welch's t).": (
        "Что дала и во что обошлась каждая акция и сколько продаж на участника она добавила "
        "относительно контроля: её контрольной группы, а если её нет — того же периода такой "
        "же длины до акции у тех же покупателей за вычетом изменения у сопоставимых "
        "неучастников. Интервалы 95 % (t-критерий Уэлча)."
    ),
    "Margin, %": "Маржа, %",
    "for ROI; empty: revenue per rouble of cost": "для ROI; пусто — выручка на рубль затрат",
    "Show": "Показать",
    "Effect on sales per member, with its 95% interval": (
        "Прирост продаж на участника с 95 % интервалом"
    ),
    "Method": "Метод",
    "Participants": "Участники",
    "participants": "участники",
    "Sales": "Продажи",
    "Points cost": "Стоимость баллов",
    "Cost": "Затраты",
    "Effect per member": "Прирост на участника",
    "Purchase rate": "Доля купивших",
    "Incremental revenue": "Дополнительная выручка",
    "ROI": "ROI",
    "held out": "контроль",
    "not enough data": "мало данных",
    "held-out control group": "контрольная группа",
    "matched pre-period": "сравнение с периодом до акции",
    "Effect per member: mean sales (after discounts) of the treatment group minus the "
    "control's, over the promotion's days in the period; purchase rate: the difference in "
    "the share of members who bought, in percentage points. Incremental revenue = effect × "
    "members it applies to. ROI = (incremental revenue × margin − cost) / cost.": (
        "Прирост на участника: средние продажи (после скидок) группы с акцией минус "
        "контрольной за дни акции в периоде; доля купивших — разница долей купивших "
        "участников в процентных пунктах. Дополнительная выручка = прирост × число "
        "участников, к которым он относится. ROI = (дополнительная выручка × маржа − "
        "затраты) / затраты."
    ),
    "No promotion gave anything in this period.": "За этот период акции ничего не дали.",
    "This promotion gave nothing in this period.": "За этот период акция ничего не дала.",
    "receipts": "чеков",
    "members": "участников",
    "per member": "на участника",
    "Treatment": "С акцией",
    "Control (held out)": "Контрольная группа",
    "control (held out)": "контрольная группа",
    "Purchase rate difference": "Разница в доле купивших",
    "Change from the pre-period per customer": "Изменение к периоду до акции на покупателя",
    "comparable non-participants": "сопоставимые неучастники",
    "Comparable non-participants": "Сопоставимые неучастники",
    "Sales per member by day": "Продажи на участника по дням",
    "95% interval": "95 % интервал",
    "promotion starts": "начало акции",
    "a date such as 2026-11-01": "дата, например 2026-11-01",
    "a date such as 2026-11-30, not before the first day": (
        "дата, например 2026-11-30, не раньше первого дня"
    ),
    "a percent from 0 to 100, e.g. 25": "процент от 0 до 100, например 25",
}
