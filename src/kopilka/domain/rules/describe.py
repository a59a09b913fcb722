"""A promotion in plain words, Russian and English (the console's preview).

"10% off coffee at stores in Moscow on weekends for Gold members" /
«Скидка 10% на кофе в магазинах г. Москва по выходным для уровня Gold».

Pure: a ``Promotion`` (and, for the names of tiers and categories, its ``ProgramDoc``)
in, a sentence out.  The sentence is a reading aid, not the rule: the document and the
simulator are the truth, so a condition the words cannot say briefly is still named.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal

from kopilka.domain.rules.model import (
    BasketCondition,
    BasketDiscount,
    BundlePrice,
    CashierMessage,
    CheapestFree,
    Condition,
    DateRange,
    DrawTickets,
    EarnMultiplier,
    EarnPercent,
    FixedPoints,
    Gift,
    LineDiscount,
    PointsPerUnit,
    PriceOverride,
    ProgramDoc,
    Promotion,
    Range,
    ReceiptMessage,
)

LANGS = ("en", "ru")
WEEKDAY_NAMES = {
    "en": dict(mon="Mon", tue="Tue", wed="Wed", thu="Thu", fri="Fri", sat="Sat", sun="Sun"),
    "ru": dict(mon="пн", tue="вт", wed="ср", thu="чт", fri="пт", sat="сб", sun="вс"),
}
PERIODS = {
    "en": dict(day="a day", week="a week", month="a month", year="a year", ever="in all"),
    "ru": dict(day="в день", week="в неделю", month="в месяц", year="в год", ever="всего"),
}
# Where each kind of condition goes in the sentence: what, where, when, who, the rest.
ORDER = {
    **dict.fromkeys(("sku", "sku_list", "category", "brand"), 0),
    **dict.fromkeys(("store", "partner", "city", "region"), 1),
    **dict.fromkeys(("dates", "weekday", "hours"), 2),
    **dict.fromkeys(("tier", "segment", "tag", "member", "first_purchase", "birthday"), 3),
    **dict.fromkeys(("days_since_last_purchase", "personal_offer"), 3),
}


def num(value: Decimal | int, lang: str = "en") -> str:
    """``1234.50`` -> ``1 234.5`` (``1 234,5`` in Russian); no trailing zeros."""
    d = Decimal(value)
    text = format(d.normalize(), "f")
    whole, _, frac = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    whole = whole.lstrip("-")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    sep = "\u00a0" if lang == "ru" else ","
    out = sign + sep.join(groups)
    if frac:
        out += ("," if lang == "ru" else ".") + frac
    return out


def ru_plural(n: Decimal | int, one: str, few: str, many: str) -> str:
    d = Decimal(n)
    if d != d.to_integral_value():
        return few
    k = int(abs(d))
    if k % 10 == 1 and k % 100 != 11:
        return one
    if 2 <= k % 10 <= 4 and not 12 <= k % 100 <= 14:
        return few
    return many


def _day(d: date | datetime) -> str:
    return d.strftime("%d.%m.%Y")


class _Words:
    """The sentence builder of one language."""

    def __init__(self, lang: str, doc: ProgramDoc | None) -> None:
        self.lang = lang if lang in LANGS else "en"
        self.ru = self.lang == "ru"
        self.doc = doc

    # --- names ---------------------------------------------------------------------------

    def money(self, v: Decimal) -> str:
        """``1 000 ₽``, ``499,90 ₽``: kopecks only when there are some, then both digits."""
        if v == v.to_integral_value():
            return f"{num(v, self.lang)} ₽"
        cents = format(v.quantize(Decimal("0.01")), "f")[-2:]
        return f"{num(int(v), self.lang)}{',' if self.ru else '.'}{cents} ₽"

    def pct(self, v: Decimal) -> str:
        return f"{num(v, self.lang)}%"

    def points(self, v: Decimal) -> str:
        if self.ru:
            return f"{num(v, 'ru')} {ru_plural(v, 'балл', 'балла', 'баллов')}"
        return f"{num(v)} point" + ("" if v == 1 else "s")

    def join(self, items: list[str], word: str | None = None) -> str:
        word = word or ("и" if self.ru else "and")
        if len(items) <= 1:
            return "".join(items)
        return ", ".join(items[:-1]) + f" {word} " + items[-1]

    def either(self, items: list[str]) -> str:
        return self.join(items, "или" if self.ru else "or")

    def category(self, code: str) -> str:
        for c in self.doc.categories if self.doc else ():
            if c.code == code and c.name:
                return c.name
        return code

    def tier(self, code: str) -> str:
        if self.doc is not None and self.doc.tiers is not None:
            for t in self.doc.tiers.levels:
                if t.code == code:
                    return t.name
        return code

    def goods(self, c: Condition) -> str:
        """What lines a line-only condition selects: "coffee", "SKU 1001 or 1002"."""
        parts: list[str] = []
        if c.category:
            parts.append(self.either([self.category(x) for x in c.category]))
        if c.sku:
            parts.append(("артикул " if self.ru else "SKU ") + self.either(c.sku))
        if c.sku_list:
            parts.append(("список " if self.ru else "list ") + self.either(c.sku_list))
        if c.brand:
            parts.append(("бренд " if self.ru else "brand ") + self.either(c.brand))
        for key in ("all", "any"):
            subs = [self.goods(x) for x in getattr(c, key) or ()]
            if subs:
                parts.append(self.join(subs) if key == "all" else self.either(subs))
        if c.not_ is not None:
            parts.append(("кроме " if self.ru else "except ") + self.goods(c.not_))
        return self.join(parts)

    # --- effects -------------------------------------------------------------------------

    def effect(self, e: object, on: str) -> str:
        ru = self.ru
        if isinstance(e, LineDiscount | BasketDiscount):
            if e.percent is not None:
                head = f"скидка {self.pct(e.percent)}" if ru else f"{self.pct(e.percent)} off"
            else:
                assert e.amount is not None
                each = isinstance(e, LineDiscount)
                if ru:
                    head = f"скидка {self.money(e.amount)}" + (" с каждой единицы" if each else "")
                else:
                    head = f"{self.money(e.amount)} off" + (" each unit" if each else "")
            if isinstance(e, BasketDiscount) and not on:
                head += " на чек" if ru else " the basket"
            return head + self.on(on, off=True)
        if isinstance(e, PriceOverride):
            return (
                f"цена {self.money(e.price)} за единицу" if ru else f"{self.money(e.price)} a unit"
            ) + self.on(on)
        if isinstance(e, CheapestFree):
            paid = e.every - e.free
            text = f"{e.every} по цене {paid}" if ru else f"{e.every} for the price of {paid}"
            return text + self.on(on)
        if isinstance(e, BundlePrice):
            items = []
            for it in e.items:
                what = self.either([self.category(x) for x in it.category or ()]) or (
                    ("артикул " if ru else "SKU ") + self.either(it.sku or [])
                )
                items.append(f"{it.quantity} × {what}")
            return (
                f"набор {' + '.join(items)} за {self.money(e.price)}"
                if ru
                else f"a set of {' + '.join(items)} for {self.money(e.price)}"
            )
        if isinstance(e, EarnPercent):
            return (
                f"{self.pct(e.percent)} баллами" if ru else f"{self.pct(e.percent)} back in points"
            ) + self.on(on)
        if isinstance(e, EarnMultiplier):
            return (f"баллы ×{num(e.factor, 'ru')}" if ru else f"×{num(e.factor)} points") + (
                self.on(on)
            )
        if isinstance(e, FixedPoints):
            return ("бонус " if ru else "a bonus of ") + self.points(e.points)
        if isinstance(e, PointsPerUnit):
            return (
                self.points(e.points)
                + (" за каждую единицу" if ru else " per unit")
                + (self.on(on))
            )
        if isinstance(e, Gift):
            return (f"подарок: {e.name}" if ru else f"a gift: {e.name}") + (
                f" × {e.quantity}" if e.quantity != 1 else ""
            )
        if isinstance(e, ReceiptMessage):
            return f"сообщение в чеке «{e.text}»" if ru else f"a receipt message “{e.text}”"
        if isinstance(e, CashierMessage):
            return f"подсказка кассиру «{e.text}»" if ru else f"a note to the cashier “{e.text}”"
        if isinstance(e, DrawTickets):
            if ru:
                word = ru_plural(e.tickets, "билет", "билета", "билетов")
                return f"{e.tickets} {word} розыгрыша"
            return f"{e.tickets} draw ticket" + ("" if e.tickets == 1 else "s")
        return str(getattr(e, "kind", "?"))

    def on(self, goods: str, *, off: bool = False) -> str:
        """ " on coffee" (English "10% off coffee" needs no preposition)."""
        if not goods:
            return ""
        return f" на {goods}" if self.ru else (f" {goods}" if off else f" on {goods}")

    # --- conditions ----------------------------------------------------------------------

    def parts(self, c: Condition) -> list[tuple[int, str]]:
        """(place in the sentence, words) for each key of one condition mapping."""
        out: list[tuple[int, str]] = []
        ru = self.ru
        line_keys = [k for k in ("sku", "sku_list", "category", "brand") if getattr(c, k)]
        if line_keys:
            goods = self.goods(Condition(**{k: getattr(c, k) for k in line_keys}))
            out.append((0, f"если в чеке есть {goods}" if ru else f"when the basket has {goods}"))
        if c.store:
            out.append((1, ("в магазинах " if ru else "at stores ") + self.either(c.store)))
        if c.city:
            cities = self.either(c.city)
            out.append((1, f"в магазинах г. {cities}" if ru else f"at {cities} stores"))
        if c.region:
            out.append((1, ("в регионе " if ru else "in ") + self.either(c.region)))
        if c.partner:
            out.append((1, ("у партнёра " if ru else "at partner ") + self.either(c.partner)))
        if c.dates:
            out.append((2, self.dates(c.dates)))
        if c.weekday:
            out.append((2, self.weekdays(c.weekday)))
        if c.hours:
            spans = [h.split("-") for h in c.hours]
            words = [f"с {a} до {b}" if ru else f"from {a} to {b}" for a, b in spans]
            out.append((2, self.either(words)))
        if c.tier:
            names = self.either([self.tier(x) for x in c.tier])
            out.append((3, f"для уровня {names}" if ru else f"for {names} members"))
        if c.segment:
            out.append((3, ("для сегмента " if ru else "for segment ") + self.either(c.segment)))
        if c.tag:
            tags = self.either(c.tag)
            out.append(
                (3, f"для покупателей с меткой {tags}" if ru else f"for customers tagged {tags}")
            )
        if c.member is not None:
            if c.member:
                out.append((3, "для участников программы" if ru else "for members"))
            else:
                out.append((3, "для покупателей без карты" if ru else "for non-members"))
        if c.first_purchase is not None:
            if c.first_purchase:
                out.append((3, "на первую покупку" if ru else "on the first purchase"))
            else:
                out.append((3, "не на первую покупку" if ru else "not on the first purchase"))
        if c.birthday is not None:
            b = c.birthday
            if ru:
                text = f"в день рождения (за {b.days_before} дн. до и {b.days_after} дн. после)"
            else:
                text = f"around the birthday ({b.days_before} days before, {b.days_after} after)"
            out.append((3, text))
        if c.days_since_last_purchase is not None:
            span = self.range(c.days_since_last_purchase, lambda v: num(v, self.lang))
            out.append(
                (
                    3,
                    f"если с последней покупки прошло {span} дн."
                    if ru
                    else f"when the last purchase was {span} days ago",
                )
            )
        if c.personal_offer is not None:
            if c.personal_offer:
                out.append((3, "по персональному предложению" if ru else "as a personal offer"))
            else:
                out.append(
                    (3, "без персонального предложения" if ru else "without a personal offer")
                )
        if c.basket is not None:
            out.append((4, self.basket(c.basket)))
        if c.coupon is not None:
            if c.coupon is True:
                out.append((4, "по купону" if ru else "with a coupon"))
            elif c.coupon is False:
                out.append((4, "без купона" if ru else "without a coupon"))
            else:
                out.append((4, ("по купону " if ru else "with coupon ") + self.either(c.coupon)))
        if c.gift_card_payment is not None:
            if c.gift_card_payment:
                out.append((4, "при оплате подарочной картой" if ru else "when paid by gift card"))
            else:
                out.append(
                    (4, "без оплаты подарочной картой" if ru else "when not paid by gift card")
                )
        for sub in c.all or ():
            out.extend(self.parts(sub))
        if c.any:
            alts = [self.words(x) for x in c.any]
            out.append((4, "(" + self.either(alts) + ")"))
        if c.not_ is not None:
            out.append((4, ("кроме случаев: " if ru else "except ") + self.words(c.not_)))
        return out

    def words(self, c: Condition) -> str:
        return " ".join(w for _, w in sorted(self.parts(c), key=lambda x: x[0]))

    def range(self, r: Range, show: Callable[[Decimal], str]) -> str:
        if r.min is not None and r.max is not None:
            return f"{show(r.min)}–{show(r.max)}"
        if r.min is not None:
            return ("от " if self.ru else "at least ") + show(r.min)
        assert r.max is not None
        return ("до " if self.ru else "at most ") + show(r.max)

    def basket(self, b: BasketCondition) -> str:
        ru = self.ru
        bits = []
        if b.amount is not None:
            bits.append(self.range(b.amount, self.money))
        if b.quantity is not None:
            q = self.range(b.quantity, lambda v: num(v, self.lang))
            bits.append(f"{q} шт." if ru else f"{q} items")
        text = ("при покупке " if ru else "for a purchase of ") + (" / ".join(bits))
        if b.lines is not None:
            text += (" товаров " if ru else " of ") + self.goods(b.lines)
        return text

    def dates(self, d: DateRange) -> str:
        if d.from_ and d.to:
            return (
                f"с {_day(d.from_)} по {_day(d.to)}"
                if self.ru
                else (f"from {_day(d.from_)} to {_day(d.to)}")
            )
        if d.from_:
            return ("с " if self.ru else "from ") + _day(d.from_)
        assert d.to is not None
        return ("по " if self.ru else "until ") + _day(d.to)

    def weekdays(self, days: Sequence[str]) -> str:
        s = set(days)
        if s == {"sat", "sun"}:
            return "по выходным" if self.ru else "on weekends"
        if s == {"mon", "tue", "wed", "thu", "fri"}:
            return "по будням" if self.ru else "on weekdays"
        names = WEEKDAY_NAMES[self.lang]
        order = list(names)
        listed = self.join([names[d] for d in sorted(s, key=order.index)])
        return ("по дням: " if self.ru else "on ") + listed

    # --- the whole promotion -------------------------------------------------------------

    def promotion(self, p: Promotion) -> str:
        on = self.goods(p.lines) if p.lines is not None else ""
        effects = [self.effect(e, on) for e in p.effects]
        head = self.join(effects)
        head = head[:1].upper() + head[1:]
        parts = self.parts(p.when) if p.when is not None else []
        text = " ".join([head] + [w for _, w in sorted(parts, key=lambda x: x[0])]) + "."
        extra = self.extras(p)
        return " ".join([text, *extra])

    def extras(self, p: Promotion) -> list[str]:
        ru = self.ru
        out = []
        if not p.enabled:
            out.append("Выключена." if ru else "Disabled.")
        if p.starts_at and p.ends_at:
            out.append(
                f"Действует с {_day(p.starts_at)} по {_day(p.ends_at)}."
                if ru
                else f"Runs from {_day(p.starts_at)} to {_day(p.ends_at)}."
            )
        elif p.starts_at:
            out.append(
                f"Начинается {_day(p.starts_at)}." if ru else f"Starts on {_day(p.starts_at)}."
            )
        elif p.ends_at:
            out.append(
                f"Действует до {_day(p.ends_at)}." if ru else f"Runs until {_day(p.ends_at)}."
            )
        if p.personal:
            out.append(
                "Только для покупателей, которым она предложена."
                if ru
                else "Only for customers it is offered to."
            )
        if p.holdout_percent:
            pct = self.pct(p.holdout_percent)
            out.append(
                f"{pct} участников не получают её (контрольная группа)."
                if ru
                else f"{pct} of members are held out as a control group."
            )
        if p.funded_by == "partner":  # coalitions (ADR 0024)
            if p.burn_at == "partner":
                out.append(
                    "Баллы за счёт партнёра, списываются только у него."
                    if ru
                    else "Points at the partner's cost, to be spent only at that partner."
                )
            else:
                out.append("Баллы за счёт партнёра." if ru else "Points at the partner's cost.")
        if p.exclusive:
            out.append(
                "Не суммируется с другими акциями." if ru else "Does not combine with others."
            )
        for lim in p.limits:
            per = PERIODS[self.lang][lim.period]
            if ru:
                times = ru_plural(lim.count, "раза", "раз", "раз")
                out.append(f"Не более {lim.count} {times} {per} на покупателя.")
            else:
                times = "time" if lim.count == 1 else "times"
                out.append(f"At most {lim.count} {times} {per} per customer.")
        if p.max_discount is not None:
            out.append(
                f"Скидка не более {self.money(p.max_discount)} на чек."
                if ru
                else f"At most {self.money(p.max_discount)} off a receipt."
            )
        if p.budget is not None:
            bits = []
            if p.budget.money is not None:
                bits.append(self.money(p.budget.money))
            if p.budget.points is not None:
                bits.append(self.points(p.budget.points))
            out.append(("Бюджет: " if ru else "Budget: ") + self.join(bits) + ".")
        return out


def describe_promotion(p: Promotion, lang: str = "en", doc: ProgramDoc | None = None) -> str:
    """The promotion in one or two plain sentences in ``lang`` (``en`` or ``ru``)."""
    return _Words(lang, doc).promotion(p)


def describe_condition(c: Condition, lang: str = "en", doc: ProgramDoc | None = None) -> str:
    return _Words(lang, doc).words(c)
