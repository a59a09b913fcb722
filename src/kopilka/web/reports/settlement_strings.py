"""Russian for the settlement page (English is the source); the statement's own words
are in ``services.settlement_files.RU``."""

from __future__ import annotations

from kopilka.domain.settlement import FIGURES_RU

RU: dict[str, str] = {
    **FIGURES_RU,
    "Settlement": "Взаиморасчёты",
    "points burned at another partner: who owes whom, per month; closing and signed statements": (
        "баллы, списанные у другого партнёра: кто кому должен за месяц; закрытие периода и "
        "подписанные акты"
    ),
    "Points issued by one partner and burned at another are owed by the issuer to the "
    "acceptor at the settlement rate; the operator keeps its fee. A month is the program's "
    "local month; an entry belongs to the month it was booked in.": (
        "Баллы, начисленные одним партнёром и списанные у другого, эмитент оплачивает "
        "принявшему по расчётному курсу; оператор удерживает комиссию. Месяц — по времени "
        "программы; операция относится к месяцу, в котором проведена."
    ),
    "Month": "Месяц",
    "a month such as 2026-11": "месяц, например 2026-11",
    "Show": "Показать",
    "Export CSV": "Выгрузить CSV",
    "Export Excel": "Выгрузить Excel",
    "Download PDF": "Выгрузить PDF",
    "Closed months": "Закрытые месяцы",
    "none yet": "пока нет",
    "Open: figures are preliminary and follow the ledger.": (
        "Открыт: показатели предварительные и меняются вместе с операциями."
    ),
    "Closed": "Закрыт",
    "figures frozen": "показатели заморожены",
    "Rate": "Курс",
    "₽ per point": "₽ за балл",
    "Party": "Сторона",
    "Points issued": "Начислено",
    "Points": "Баллы",
    "Roubles": "Рубли",
    "Obligations": "Обязательства",
    "No points were burned at another party in this month.": (
        "В этом месяце баллы не списывались у другой стороны."
    ),
    "Net between parties: who owes whom (before fees)": (
        "Сальдо между сторонами: кто кому должен (до комиссии)"
    ),
    "Signed statements": "Подписанные акты",
    "Close the month": "Закрыть месяц",
    "Closing freezes the figures and signs each party's statement; a later refund goes "
    "into the month it is booked in.": (
        "Закрытие замораживает показатели и подписывает акт каждой стороны; более поздний "
        "возврат попадёт в месяц, в котором он проведён."
    ),
    "Type the month to confirm": "Введите месяц для подтверждения",
    "type the month to close it, e.g. 2026-11": (
        "введите месяц, чтобы закрыть его, например 2026-11"
    ),
    "The month is not over yet.": "Месяц ещё не закончился.",
    "The month is already closed.": "Месяц уже закрыт.",
    "The month is closed; its statements are signed.": "Месяц закрыт, акты подписаны.",
    "operator": "оператор",
}
