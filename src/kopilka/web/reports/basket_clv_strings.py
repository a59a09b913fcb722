"""Russian for the basket and CLV pages (English is the source)."""

from __future__ import annotations

RU: dict[str, str] = {
    "Baskets": "Корзины",
    "Which goods are bought together: itemsets and association rules": (
        "Какие товары покупают вместе: частые наборы и ассоциативные правила"
    ),
    "Customer lifetime value": "Пожизненная ценность клиента (CLV)",
    "Who is still buying, how much they will buy: BG/NBD and Gamma-Gamma": (
        "Кто ещё покупает и сколько купит: BG/NBD и Gamma-Gamma"
    ),
    "Frequently bought together: a receipt is the set of its SKUs; support is the share of "
    "receipts with every SKU of the set.": (
        "Что покупают вместе: чек — это множество его артикулов; поддержка — доля чеков, "
        "в которых есть все артикулы набора."
    ),
    "Minimum support": "Минимальная поддержка",
    "a share of receipts, 0 < S ≤ 1": "доля чеков, 0 < S ≤ 1",
    "Minimum confidence": "Минимальная достоверность",
    "0 ≤ C ≤ 1": "0 ≤ C ≤ 1",
    "Most SKUs in a rule": "Наибольшее число артикулов в правиле",
    "All stores": "Все магазины",
    "Show": "Показать",
    "Receipts": "Чеки",
    "Frequent itemsets": "Частые наборы",
    "Rules": "Правила",
    "Seconds": "Секунд",
    "Save the rules for the cashier screen": "Сохранить правила для экрана кассира",
    "Rules saved for the cashier screen": "Правила сохранены для экрана кассира",
    "Support and confidence of the rules": "Поддержка и достоверность правил",
    "A dot is a rule; the bigger the dot, the higher the lift.": (
        "Точка — правило; чем крупнее точка, тем выше лифт."
    ),
    "Tables": "Таблицы",
    "Nothing reaches these thresholds; try a lower minimum support.": (
        "Ничто не проходит эти пороги; попробуйте меньшую минимальную поддержку."
    ),
    "Itemset": "Набор",
    "Support": "Поддержка",
    "SKUs": "Артикулов",
    "Who buys": "Кто покупает",
    "also buys": "покупает и",
    "Confidence": "Достоверность",
    "Lift": "Лифт",
    "Check this value": "Проверьте значение",
    "BG/NBD (who is still buying, how often) and Gamma-Gamma (how much per purchase), fitted "
    "on members' confirmed receipts up to the as-of date.": (
        "BG/NBD (кто ещё покупает и как часто) и Gamma-Gamma (сколько за покупку), обученные "
        "на подтверждённых чеках участников по дату отчёта включительно."
    ),
    "As of": "На дату",
    "Time unit": "Единица времени",
    "week": "неделя",
    "day": "день",
    "Horizon, in time units": "Горизонт прогноза, в единицах времени",
    "default: 52 weeks or 365 days": "по умолчанию 52 недели или 365 дней",
    "Penalizer": "Штраф (penalizer)",
    "default 0; try 0.001 if a model does not converge": (
        "по умолчанию 0; если модель не сходится, попробуйте 0.001"
    ),
    "Monthly discount rate": "Месячная ставка дисконтирования",
    "for CLV, default 0.01": "для CLV, по умолчанию 0.01",
    "CLV months": "Месяцев CLV",
    "default 12": "по умолчанию 12",
    "Fit": "Рассчитать",
    "Fitted parameters": "Параметры моделей",
    "customers": "клиентов",
    "bought again": "купили повторно",
    "purchases": "покупок",
    "s": "с",
    "Probability alive": "Вероятность, что клиент активен",
    "Expected value in the horizon": "Ожидаемая выручка за горизонт",
    "Repeat purchases": "Повторных покупок",
    "Mean repeat value": "Средний повторный чек",
    "Expected purchases": "Ожидаемые покупки",
    "Expected value": "Ожидаемая выручка",
}
