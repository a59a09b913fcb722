"""Russian for the RFM report page (English is the source)."""

from __future__ import annotations

RU: dict[str, str] = {
    "RFM segments": "RFM-сегменты",
    "Customers by recency, frequency and monetary value: scores, segments, migration.": (
        "Покупатели по давности, частоте и сумме покупок: баллы, сегменты, переходы."
    ),
    "As of": "На дату",
    "Window, days": "Окно, дней",
    "Window": "Окно",
    "Show": "Показать",
    "Compare": "Сравнить",
    "days": "дн.",
    "to": "по",
    "Code": "Код",
    "Customer": "Покупатель",
    "Customers": "Покупатели",
    "Customers with a purchase in the window": "Покупателей с покупками в окне",
    "Customers by recency score (rows) and frequency score (columns); 5 is best.": (
        "Покупатели по баллу давности (строки) и частоты (столбцы); 5 — лучший."
    ),
    "Export CSV": "Выгрузить CSV",
    "Export Excel": "Выгрузить Excel",
    "First date": "Первая дата",
    "Second date": "Вторая дата",
    "Last purchase": "Последняя покупка",
    "Migration between two dates": "Переходы между сегментами за две даты",
    "No purchases in the window.": "В окне нет покупок.",
    "Paid": "Оплачено",
    "Receipts": "Чеки",
    "Recency, days": "Давность, дней",
    "Revenue": "Выручка",
    "Rows: the segment on the first date; columns: on the second. The diagonal stayed put.": (
        "Строки — сегмент на первую дату, столбцы — на вторую. По диагонали — кто остался."
    ),
    "Save segments": "Сохранить сегменты",
    "Segment grid": "Сетка сегментов",
    "Segment sizes and revenue": "Размер и выручка сегментов",
    "Segment": "Сегмент",
    "Share": "Доля",
    "no purchase": "нет покупок",
    "Write every customer’s segment for campaigns and promotions": (
        "Записать сегмент каждого покупателя для рассылок и акций"
    ),
    "Segments saved as of %(date)s: %(n)s customers in segments, %(changed)s changed.": (
        "Сегменты на %(date)s сохранены: в сегментах %(n)s покупателей, изменилось %(changed)s."
    ),
    "The segment file is invalid; the built-in map is used:": (
        "Файл сегментов с ошибкой, используется встроенная карта:"
    ),
    "The segment file is invalid:": "Файл сегментов с ошибкой:",
    "give a date as YYYY-MM-DD": "укажите дату в виде ГГГГ-ММ-ДД",
    "give a whole number of days": "укажите целое число дней",
    "give 1 to 36500 days": "укажите от 1 до 36500 дней",
}
