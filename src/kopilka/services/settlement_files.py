"""Settlement on paper and in spreadsheets: the clearing report's tables (CSV, XLSX, PDF
through ``services.exports`` / ``services.pdf``) and each party's signed PDF statement.

English is the source; ``RU`` translates (the console registers it too)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from kopilka.domain.settlement import FIGURES_RU, Clearing, Party, Position
from kopilka.services import exports, pdf, signing
from kopilka.services.runtime import Runtime
from kopilka.services.settlement import Report, scoped

RU: dict[str, str] = {
    **FIGURES_RU,
    "Settlement statement": "Акт взаиморасчётов",
    "Clearing report": "Клиринговый отчёт",
    "Program": "Программа",
    "Period": "Период",
    "closed": "закрыт",
    "by": "кем",
    "preliminary: the period is open": "предварительный: период не закрыт",
    "Terms": "Условия",
    "roubles per point": "руб. за балл",
    "operator's fee": "комиссия оператора",
    "Figures SHA-256": "SHA-256 показателей",
    "Party": "Сторона",
    "operator": "оператор",
    "INN": "ИНН",
    "KPP": "КПП",
    "OGRN": "ОГРН",
    "Address": "Адрес",
    "Bank": "Банк",
    "Account": "Р/с",
    "BIK": "БИК",
    "Corr. account": "К/с",
    "E-mail": "E-mail",
    "Points": "Баллы",
    "Movement": "Движение",
    "issued (earned at your expense)": "начислено за ваш счёт",
    "burned at you": "списано у вас",
    "your points burned at others": "ваши баллы, списанные у других",
    "expired (breakage)": "сгорело",
    "earned points taken back by refunds": "отозвано возвратами (начисленные баллы)",
    "burned points given back by refunds at you": "восстановлено покупателям при возвратах у вас",
    "adjusted by hand": "ручные корректировки",
    "Obligations": "Обязательства",
    "Counterparty": "Контрагент",
    "Direction": "Направление",
    "you owe": "вы должны",
    "owed to you": "вам должны",
    "Roubles": "Рубли",
    "Fee": "Комиссия",
    "To settle": "К расчёту",
    "Totals": "Итоги",
    "you pay (as issuer)": "вы платите (как эмитент)",
    "you receive (as acceptor), after the fee": (
        "вы получаете (как принимающая сторона) за вычетом комиссии"
    ),
    "fee withheld": "удержанная комиссия",
    "net: you receive from the operator": "сальдо: вы получаете от оператора",
    "net: you pay to the operator": "сальдо: вы платите оператору",
    "Net with each counterparty (before fees)": "Сальдо с каждым контрагентом (до комиссии)",
    "Amount": "Сумма",
    "Positions": "Позиции",
    "Between partners": "Между партнёрами",
    "Signed with the electronic signature of": "Подписан электронной подписью",
    "Issued": "Начислено",
    "A owes B, points": "A должен B, баллы",
    "A owes B, ₽": "A должен B, ₽",
    "certificate SHA-256": "сертификат SHA-256",
}


def tr(lang: str, text: str) -> str:
    return RU.get(text, text) if lang == "ru" else text


def _days(rep: Report) -> str:
    zone = ZoneInfo(rep.program.settings.timezone)
    first = rep.start.astimezone(zone).date()
    last = (rep.end.astimezone(zone) - timedelta(seconds=1)).date()
    return f"{first:%d.%m.%Y}–{last:%d.%m.%Y} ({rep.program.settings.timezone})"


def _status(rep: Report, lang: str) -> str:
    if rep.closed and rep.closed_at is not None:
        when = f"{rep.closed_at:%Y-%m-%d %H:%M} UTC"
        return f"{tr(lang, 'closed')} {when}, {tr(lang, 'by')} {rep.closed_by}"
    return tr(lang, "preliminary: the period is open")


def header_lines(rep: Report, lang: str) -> list[str]:
    c = rep.clearing
    fee = tr(lang, "operator's fee")
    lines = [
        f"{tr(lang, 'Program')}: {rep.program.name} ({rep.program.code})",
        f"{tr(lang, 'Period')}: {rep.label}, {_days(rep)}; {_status(rep, lang)}",
        f"{tr(lang, 'Terms')}: {c.terms.rate} {tr(lang, 'roubles per point')}, "
        f"{fee} {c.terms.fee_percent} %",
    ]
    if rep.figures_sha256:
        lines.append(f"{tr(lang, 'Figures SHA-256')}: {rep.figures_sha256}")
    return lines


def party_lines(rep: Report, party: Party, lang: str) -> list[str]:
    if party is None:
        return [f"{tr(lang, 'Party')}: {tr(lang, 'operator')} — {rep.program.name}"]
    p = rep.partners.get(party)
    if p is None:
        return [f"{tr(lang, 'Party')}: #{party}"]
    g = p.legal
    out = [f"{tr(lang, 'Party')}: {g['legal_name'] or p.name} ({p.code})"]
    ids = [
        f"{tr(lang, k)} {g[f]}"
        for k, f in (("INN", "inn"), ("KPP", "kpp"), ("OGRN", "ogrn"))
        if g[f]
    ]
    if ids:
        out.append(", ".join(ids))
    if g["legal_address"]:
        out.append(f"{tr(lang, 'Address')}: {g['legal_address']}")
    bank = [
        f"{tr(lang, k)} {g[f]}"
        for k, f in (
            ("Bank", "bank_name"),
            ("Account", "bank_account"),
            ("BIK", "bank_bik"),
            ("Corr. account", "bank_corr_account"),
        )
        if g[f]
    ]
    if bank:
        out.append(", ".join(bank))
    if g["contact_email"]:
        out.append(f"{tr(lang, 'E-mail')}: {g['contact_email']}")
    return out


def statement_tables(rep: Report, party: Party, lang: str) -> list[pdf.PdfTable]:
    """One party's statement: its points, its obligations by counterparty, its totals."""
    p = rep.clearing.position(party)

    def name(x: Party) -> str:
        return tr(lang, "operator") if x is None else rep.name(x)

    points = pdf.PdfTable(
        tr(lang, "Points"),
        [tr(lang, "Movement"), tr(lang, "Points")],
        [
            [tr(lang, "issued (earned at your expense)"), p.issued],
            [tr(lang, "burned at you"), p.burned],
            [tr(lang, "your points burned at others"), p.burned_elsewhere],
            [tr(lang, "expired (breakage)"), p.expired],
            [tr(lang, "earned points taken back by refunds"), p.taken_back],
            [tr(lang, "burned points given back by refunds at you"), p.given_back],
            [tr(lang, "adjusted by hand"), p.adjusted],
        ],
    )
    rows = []
    for o in rep.clearing.obligations:
        if o.issuer == party:
            # the issuer pays in full: the fee is the acceptor's, not shown here
            rows.append(
                [name(o.acceptor), tr(lang, "you owe"), o.points, o.roubles, None, -o.roubles]
            )
        elif o.acceptor == party:
            rows.append(
                [
                    name(o.issuer),
                    tr(lang, "owed to you"),
                    o.points,
                    o.roubles,
                    o.fee,
                    o.to_acceptor,
                ]
            )
    obligations = pdf.PdfTable(
        tr(lang, "Obligations"),
        [
            tr(lang, "Counterparty"),
            tr(lang, "Direction"),
            tr(lang, "Points"),
            tr(lang, "Roubles"),
            tr(lang, "Fee"),
            tr(lang, "To settle"),
        ],
        rows,
    )
    net_label = (
        "net: you receive from the operator" if p.net >= 0 else "net: you pay to the operator"
    )
    totals = pdf.PdfTable(
        tr(lang, "Totals"),
        [tr(lang, "Movement"), tr(lang, "Amount")],
        [
            [tr(lang, "you pay (as issuer)"), p.pays],
            [tr(lang, "you receive (as acceptor), after the fee"), p.receives],
            [tr(lang, "fee withheld"), p.fee],
            [tr(lang, net_label), abs(p.net)],
        ],
    )
    return [points, obligations, totals]


def statement_pdf(
    rep: Report, party: Party, lang: str = "ru", *, key: signing.SigningKey | None = None
) -> bytes:
    """The party's statement as an unsigned PDF; ``key``: the key that will sign it,
    named under the header so that a reader knows which certificate to trust."""
    lines = [*header_lines(rep, lang), *party_lines(rep, party, lang)]
    if key is not None:
        lines.append(
            f"{tr(lang, 'Signed with the electronic signature of')} {key.subject}, "
            f"{tr(lang, 'certificate SHA-256')} {key.fingerprint}"
        )
    subtitle = "\n".join(lines)
    return pdf.pdf_bytes(
        tr(lang, "Settlement statement"),
        subtitle=subtitle,
        tables=statement_tables(rep, party, lang),
        lang=lang,
    )


async def signed_statement(rt: Runtime, rep: Report, party: Party, lang: str = "ru") -> bytes:
    """The party's statement signed with the installation's key (made on first use)."""
    key = await signing.current_key(rt)
    assert key is not None
    reason = f"{tr(lang, 'Settlement statement')} {rep.program.code} {rep.label}"
    return await signing.sign_pdf(statement_pdf(rep, party, lang, key=key), key, reason=reason)


def statement_maker(rt: Runtime, lang: str = "ru") -> Callable[[Report, Party], Awaitable[bytes]]:
    """What ``settlement.do_close`` calls for each party's statement."""

    async def make(rep: Report, party: Party) -> bytes:
        return await signed_statement(rt, rep, party, lang)

    return make


# --- the clearing report as tables ------------------------------------------------------------


def _figures(p: Position) -> list[object]:
    """A party's position figures in the positions table's column order (shared by the
    CSV/XLSX report and the PDF statement)."""
    return [getattr(p, n) for n in POSITION_FIGURES]


POSITION_FIGURES = (
    "issued",
    "burned",
    "burned_elsewhere",
    "expired",
    "taken_back",
    "given_back",
    "adjusted",
    "pays",
    "receives",
    "fee",
    "net",
)


def report_tables(rep: Report, *, party: Party | int = -1, lang: str = "en") -> list[exports.Table]:
    """Positions, obligations and nets between partners (``party`` >= 0 or None: only
    what that party sees; -1: everything)."""
    c: Clearing = rep.clearing if party == -1 else scoped(rep.clearing, party)  # type: ignore[arg-type]
    positions = [[rep.code(p.party), rep.name(p.party), *_figures(p)] for p in c.positions]
    obligations = [
        [rep.code(o.issuer), rep.code(o.acceptor), o.points, o.roubles, o.fee, o.to_acceptor]
        for o in c.obligations
    ]
    pairs = [[rep.code(x.a), rep.code(x.b), x.points, x.roubles] for x in c.pairs]
    return [
        exports.Table(tr(lang, "Positions"), POSITION_HEADER, exports.rows_of(positions)),
        exports.Table(tr(lang, "Obligations"), OBLIGATION_HEADER, exports.rows_of(obligations)),
        exports.Table(tr(lang, "Between partners"), PAIR_HEADER, exports.rows_of(pairs)),
    ]


# What people read in the PDF of the report (the CSV and XLSX keep the column names above).
HUMAN_HEADERS: dict[str, Sequence[str]] = {
    "Positions": (
        "Party",
        "Issued",
        "Burned here",
        "Burned elsewhere",
        "Expired",
        "Taken back",
        "Given back",
        "Adjusted",
        "Pays, ₽",
        "Receives, ₽",
        "Fee, ₽",
        "Net, ₽",
    ),
    "Obligations": ("Issuer", "Acceptor", "Points", "Roubles", "Fee, ₽", "To the acceptor, ₽"),
    "Between partners": ("A", "B", "A owes B, points", "A owes B, ₽"),
}


def report_pdf(rep: Report, *, party: Party | int = -1, lang: str = "en") -> bytes:
    """The clearing report as a PDF for people: the header lines, then the positions,
    the obligations and the nets between pairs, with the parties' names."""
    c: Clearing = rep.clearing if party == -1 else scoped(rep.clearing, party)  # type: ignore[arg-type]

    def name(x: Party) -> str:
        return tr(lang, "operator") if x is None else rep.name(x)

    def head(key: str) -> list[str]:
        return [tr(lang, h) for h in HUMAN_HEADERS[key]]

    tables = [
        pdf.PdfTable(
            tr(lang, "Positions"),
            head("Positions"),
            [[name(p.party), *_figures(p)] for p in c.positions],
        ),
        pdf.PdfTable(
            tr(lang, "Obligations"),
            head("Obligations"),
            [
                [name(o.issuer), name(o.acceptor), o.points, o.roubles, o.fee, o.to_acceptor]
                for o in c.obligations
            ],
        ),
        pdf.PdfTable(
            tr(lang, "Between partners"),
            head("Between partners"),
            [[name(x.a), name(x.b), x.points, x.roubles] for x in c.pairs],
        ),
    ]
    return pdf.pdf_bytes(
        tr(lang, "Clearing report"),
        subtitle="\n".join(header_lines(rep, lang)),
        tables=tables,
        lang=lang,
    )


POSITION_HEADER: Sequence[str] = (
    "party",
    "name",
    "issued_points",
    "burned_points",
    "burned_elsewhere_points",
    "expired_points",
    "taken_back_points",
    "given_back_points",
    "adjusted_points",
    "pays_rub",
    "receives_rub",
    "fee_rub",
    "net_rub",
)
OBLIGATION_HEADER: Sequence[str] = (
    "issuer",
    "acceptor",
    "points",
    "roubles",
    "fee_rub",
    "to_acceptor_rub",
)
PAIR_HEADER: Sequence[str] = ("a", "b", "a_owes_b_points", "a_owes_b_rub")
