"""The demo data set, generated in memory from a seed: no I/O, no clock.

``DemoBuilder`` makes rows for the tables in the order the loader writes them.  Receipts
are generated for a whole year and then replayed in time order through the same domain
functions the POS path uses (``price_receipt``, ``plan_burn``, ``plan_earn``,
``plan_expire``, ``lot_dates``), each member account's ledger kept in memory, so that
the rows written satisfy the ledger guarantees exactly (``kopilka ledger verify``).

Row ids are assigned here, from the next free id of each table, so that receipts, lines,
lots and entries can refer to each other before anything is written; ids grow with time.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from kopilka.demo import data
from kopilka.domain.identifiers import ean13_check_digit, make_card_number
from kopilka.domain.ledger import (
    ZERO,
    EntryKind,
    Lot,
    Take,
    balance_of,
    plan_burn,
    plan_earn,
    plan_expire,
)
from kopilka.domain.money import MILLI, from_minor, q2
from kopilka.domain.program import ProgramSettings
from kopilka.domain.receipt import (
    MAX,
    Basket,
    BasketLine,
    PricedReceipt,
    price_receipt,
    redeem_limit,
)
from kopilka.domain.rules.facts import CustomerContext
from kopilka.services.purchases import PurchaseRequest, lot_dates

Row = dict[str, Any]

CARD_PREFIX = "20"
DEMO_CUSTOMERS = 3  # the first customers, printed by ``kopilka demo``
MEMBER_SHARE = 0.65  # of receipts; the rest are shoppers without a card
LINES_PER_CHUNK = 20_000

# Mobile codes of Russian operators (+7 9XX), all valid for ``phonenumbers``.
MOBILE_CODES = (
    *range(901, 907),
    *range(908, 940),
    *range(950, 954),
    958,
    *range(960, 970),
    977,
    978,
    *range(980, 990),
    *range(991, 1000),
)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")  # reserved: nothing is sent

_TRANSLIT_TABLE = (
    "а:a б:b в:v г:g д:d е:e ё:e ж:zh з:z и:i й:y к:k л:l м:m н:n о:o п:p р:r с:s т:t у:u ф:f "
    "х:kh ц:ts ч:ch ш:sh щ:shch ъ: ы:y ь: э:e ю:yu я:ya"
)
_TRANSLIT = {k: v for k, _, v in (p.partition(":") for p in _TRANSLIT_TABLE.split())}


def translit(text: str) -> str:
    return "".join(_TRANSLIT.get(ch, ch) for ch in text.lower())


def feminine_surname(surname: str) -> str:
    """Иванов -> Иванова, Островский -> Островская, Толстой -> Толстая; Руденко stays."""
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    if surname.endswith(("ский", "цкий")):
        return surname[:-2] + "ая"
    if surname.endswith("ой"):
        return surname[:-2] + "ая"
    return surname


def shelf_price(kopecks: int) -> int:
    """A price as a shop would print it: 49.99, 189.99, 1249.00."""
    if kopecks < 10_000:
        step, cut = 500, 1
    elif kopecks < 100_000:
        step, cut = 1000, 1
    else:
        step, cut = 5000, 100
    return max((kopecks + step // 2) // step, 1) * step - cut


def cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def pick(rng: random.Random, cum: Sequence[float], lo: int = 0, hi: int | None = None) -> int:
    """Index drawn by weight among ``lo <= i < hi``; ``cum`` holds cumulative weights."""
    hi = len(cum) if hi is None else hi
    base = cum[lo - 1] if lo > 0 else 0.0
    x = base + rng.random() * (cum[hi - 1] - base)
    return min(bisect.bisect_right(cum, x, lo, hi), hi - 1)


@dataclass(frozen=True, slots=True)
class Store:
    id: int
    terminal_id: int
    code: str
    city: data.City
    tz: ZoneInfo
    weight: float
    row: Row


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    category: str
    prices: tuple[Decimal, ...]  # per quarter of the demo year: prices go up a little
    qty_g: tuple[int, int] | None
    popularity: float
    months: tuple[int, ...]


@dataclass(slots=True)
class Customer:
    index: int
    id: int
    account_id: int
    card_id: int
    card_number: str
    phone: str
    home: int  # store index
    registered_at: datetime
    visits_per_year: float
    churn_day: int | None  # day index after which the customer stops coming
    burner: int  # 0 never burns, 1 sometimes a round amount, 2 always the most allowed
    lots: list[Lot] = field(default_factory=list)
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    at: datetime
    day: int  # index into the demo year
    store: int
    customer: int  # -1: no card shown


@dataclass
class IdBase:
    """The next free id of each table the builder assigns ids in."""

    stores: int = 1
    terminals: int = 1
    customers: int = 1
    accounts: int = 1
    cards: int = 1
    receipts: int = 1
    lots: int = 1
    ledger_entries: int = 1


class DemoBuilder:
    """Generates the demo data for one program; deterministic for (seed, now, sizes, ids)."""

    def __init__(
        self,
        *,
        seed: int,
        now: datetime,
        program: ProgramSettings,
        program_id: int,
        partner_id: int,
        ids: IdBase,
        customers: int = 3000,
        days: int = 365,
    ) -> None:
        assert now.tzinfo is not None and customers >= DEMO_CUSTOMERS and days >= 28
        self.rng = random.Random(seed)
        self.now = now
        self.program = program
        self.program_id = program_id
        self.partner_id = partner_id
        self.ids = ids
        self.n_customers = customers
        self.program_tz = ZoneInfo(program.timezone)
        last = now.astimezone(self.program_tz).date()
        self.days = [last - timedelta(days=days - 1 - i) for i in range(days)]
        self.day_cum = cumulative([_day_weight(d) for d in self.days])
        self.day_starts = [self._day_start(i) for i in range(days)]
        self.hour_cum = cumulative([w for _, w in data.HOUR_WEIGHTS])
        self.stores = self._make_stores()
        self.store_cum = cumulative([s.weight for s in self.stores])
        self.products = self._make_catalogue()
        self.product_cum = [
            cumulative([p.popularity * (4.0 if m in p.months else 1.0) for p in self.products])
            for m in range(1, 13)
        ]
        self.customers = self._make_customers()
        # its own generator: adding the members' towns changed nothing else the seed makes
        self.town_rng = random.Random(seed * 7919 + 17)
        self.entries: list[Row] = []
        self.lot_rows: dict[int, Row] = {}
        self.expiring: list[tuple[datetime, int, int]] = []  # heap: (expires_at, lot, customer)
        self.counts: dict[str, int] = {}

    # --- stores and goods -------------------------------------------------------------

    def _make_stores(self) -> list[Store]:
        rng = self.rng
        cities = {c.code: c for c in data.CITIES}
        serial: dict[str, int] = {}
        out: list[Store] = []
        for i, site in enumerate(data.STORE_SITES):
            city = cities[site.city]
            serial[city.code] = serial.get(city.code, 0) + 1
            code = f"{city.code}-{serial[city.code]:03d}"
            sid = self.ids.stores + i
            row = {
                "id": sid,
                "program_id": self.program_id,
                "partner_id": self.partner_id,
                "code": code,
                "name": f"{data.PARTNER_NAME} «{site.district}»",
                "address": f"г. {city.name}, {site.street}, д. {rng.randint(*site.houses)}",
                "city": city.name,
                "region": city.region,
                # A few hundred metres around the district's point, rounded like a map pin.
                "latitude": round(site.latitude + rng.uniform(-0.004, 0.004), 6),
                "longitude": round(site.longitude + rng.uniform(-0.006, 0.006), 6),
                "timezone": city.timezone,
            }
            weight = city.size * rng.uniform(0.7, 1.3)
            tid = self.ids.terminals + 1 + i  # the demo terminal comes first
            out.append(Store(sid, tid, code, city, ZoneInfo(city.timezone), weight, row))
        return out

    def _make_catalogue(self) -> list[Product]:
        rng = self.rng
        skus: set[str] = set()
        out: list[Product] = []

        def new_sku(prefix: str, digits: int) -> str:
            while True:
                payload = prefix + f"{rng.randrange(10**digits):0{digits}d}"
                if payload not in skus:
                    skus.add(payload)
                    return payload + ean13_check_digit(payload)

        brand_share = (0.5, 0.3, 0.2)
        brand_factor = (1.0, 0.88, 1.22)
        for cat in data.CATALOGUE:
            for item in cat.items:
                base = int(Decimal(item.price) * 100)
                if item.qty_g is not None or not cat.brands:
                    # Weighed at the till: an in-store code (prefix 2), priced per kg.
                    name = f"{item.name}, вес."
                    variants = [(name, new_sku("22", 10), base, 1.0)]
                else:
                    n = min(rng.choice((1, 2, 3, 3)), len(cat.brands))
                    brands = rng.sample(range(len(cat.brands)), n)
                    variants = [
                        (
                            f"{item.name} «{cat.brands[b]}» {item.pack}",
                            new_sku("46" + str(rng.randrange(10)), 9),
                            base if k == 0 else shelf_price(int(base * brand_factor[k])),
                            brand_share[k] / sum(brand_share[:n]),
                        )
                        for k, b in enumerate(brands)
                    ]
                for name, sku, price, share in variants:
                    prices = tuple(
                        from_minor(price if q == 0 else shelf_price(price * (100 + 2 * q) // 100))
                        for q in range(4)
                    )
                    out.append(
                        Product(
                            sku,
                            name,
                            cat.name,
                            prices,
                            item.qty_g,
                            item.popularity * share,
                            item.months,
                        )
                    )
        return out

    def store_rows(self) -> list[Row]:
        return [s.row for s in self.stores]

    # --- customers ----------------------------------------------------------------------

    def _make_customers(self) -> list[Customer]:
        rng = self.rng
        serials = rng.sample(range(10**9, 10**10), self.n_customers)
        phones: set[str] = set()
        out: list[Customer] = []
        n_days = len(self.days)
        start = self.day_starts[0]
        for i in range(self.n_customers):
            while True:
                phone = f"+7{rng.choice(MOBILE_CODES)}{rng.randrange(10**7):07d}"
                if phone not in phones:
                    phones.add(phone)
                    break
            demo = i < DEMO_CUSTOMERS
            if demo or rng.random() < 0.55:  # members since before the demo year
                registered = start - timedelta(days=rng.randint(10, 3 * 365))
            else:  # joined during the year: fewer late in the year than early
                day = int(n_days * rng.random() ** 1.3)
                registered = start + timedelta(days=day)
            registered += timedelta(seconds=rng.randint(9 * 3600, 21 * 3600))
            registered = min(registered, self.now - timedelta(hours=1))
            out.append(
                Customer(
                    index=i,
                    id=self.ids.customers + i,
                    account_id=self.ids.accounts + i,
                    card_id=self.ids.cards + i,
                    card_number=make_card_number(CARD_PREFIX, serials[i]),
                    phone=phone,
                    home=0 if demo else pick(rng, self.store_cum),
                    registered_at=registered,
                    visits_per_year=rng.uniform(70, 100) if demo else _visits_per_year(rng),
                    churn_day=None
                    if demo or rng.random() > 0.12
                    else rng.randrange(n_days // 4, n_days),
                    burner=(1, 0, 2)[i] if demo else rng.choices((0, 1, 2), (40, 40, 20))[0],
                )
            )
        return out

    def customer_rows(self) -> list[Row]:
        rng = self.rng
        male_cum = cumulative([w for _, w in data.MALE_NAMES])
        female_cum = cumulative([w for _, w in data.FEMALE_NAMES])
        today = self.now.date()
        rows = []
        for c in self.customers:
            female = rng.random() < 0.58
            if female:
                first = data.FEMALE_NAMES[pick(rng, female_cum)][0]
                middle = rng.choice(data.PATRONYMICS)[1]
                last = feminine_surname(rng.choice(data.SURNAMES))
            else:
                first = data.MALE_NAMES[pick(rng, male_cum)][0]
                middle = rng.choice(data.PATRONYMICS)[0]
                last = rng.choice(data.SURNAMES)
            email = None
            if rng.random() < 0.45:
                local = rng.choice(
                    (
                        f"{translit(first)}.{translit(last)}",
                        f"{translit(last)}{rng.randint(1, 99)}",
                        f"{translit(first)[0]}{translit(last)}{rng.randint(70, 2005)}",
                    )
                )
                email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
            birthday: date | None = None
            if rng.random() < 0.85:
                age = int(rng.triangular(18, 80, 38))
                birthday = date(today.year - age - 1, 1, 1) + timedelta(days=rng.randrange(365))
            rows.append(
                {
                    "id": c.id,
                    "program_id": self.program_id,
                    "first_name": first,
                    "last_name": last,
                    "middle_name": middle,
                    "phone": c.phone,
                    "email": email,
                    "birthday": birthday,
                    "gender": "f" if female else "m",
                    "consent_sms": rng.random() < 0.7,
                    "consent_email": email is not None and rng.random() < 0.55,
                    "home_store_id": self.stores[c.home].id,
                    "registered_at": c.registered_at,
                    "phone_confirmed_at": c.registered_at + timedelta(minutes=rng.randint(1, 9))
                    if rng.random() < 0.9
                    else None,
                    "status": "active",
                    "city": self._town(self.stores[c.home].city),
                }
            )
        self.counts["customers"] = len(rows)
        return rows

    def _town(self, city: data.City) -> str | None:
        """Where a member lives: unknown for 15 %, else mostly the home store's city,
        sometimes a suburb or a town farther away (the map's "far members")."""
        rng = self.town_rng
        roll = rng.random()
        if roll < 0.15:
            return None
        if roll < 0.75:
            return city.name
        towns = data.SUBURBS[city.code] if roll < 0.86 else data.FAR_TOWNS[city.code]
        return towns[pick(rng, cumulative([w for _, w in towns]))][0]

    # --- visits ---------------------------------------------------------------------------

    def _day_start(self, index: int) -> datetime:
        d = self.days[index]
        return datetime(d.year, d.month, d.day, tzinfo=self.program_tz).astimezone(UTC)

    def _visit_time(self, day: int, store: Store) -> datetime:
        rng = self.rng
        d = self.days[day]
        hour = data.HOUR_WEIGHTS[pick(rng, self.hour_cum)][0]
        local = datetime(
            d.year, d.month, d.day, hour, rng.randrange(60), rng.randrange(60), tzinfo=store.tz
        )
        at = local.astimezone(UTC)
        return at - timedelta(days=1) if at > self.now else at

    def _visits(self) -> list[Visit]:
        """Every shopping trip of the year, in time order: members' and anonymous ones."""
        rng = self.rng
        n_days = len(self.days)
        by_city: dict[str, list[int]] = {}
        for i, s in enumerate(self.stores):
            by_city.setdefault(s.city.code, []).append(i)
        visits: list[Visit] = []
        for c in self.customers:
            first = bisect.bisect_right(self.day_starts, c.registered_at)  # the day after
            last = n_days if c.churn_day is None else c.churn_day
            if first >= last:
                continue
            n = _poisson(rng, c.visits_per_year * (last - first) / n_days)
            home = self.stores[c.home]
            for _ in range(n):
                day = pick(rng, self.day_cum, first, last)
                r = rng.random()
                if r < 0.86:
                    store = c.home
                elif r < 0.96:
                    store = rng.choice(by_city[home.city.code])
                else:
                    store = pick(rng, self.store_cum)
                at = self._visit_time(day, self.stores[store])
                if at > c.registered_at:
                    visits.append(Visit(at, day, store, c.index))
        anonymous = round(len(visits) * (1 - MEMBER_SHARE) / MEMBER_SHARE)
        for _ in range(anonymous):
            store = pick(rng, self.store_cum)
            day = pick(rng, self.day_cum)
            visits.append(Visit(self._visit_time(day, self.stores[store]), day, store, -1))
        visits.sort(key=lambda v: (v.at, v.store, v.customer))
        return visits

    def _basket(self, day: int) -> list[BasketLine]:
        rng = self.rng
        month = self.days[day].month
        quarter = day * 4 // len(self.days)
        size = 1 + int(rng.expovariate(0.2) * data.MONTH_BASKET_FACTOR[month - 1])
        cum = self.product_cum[month - 1]
        chosen = dict.fromkeys(pick(rng, cum) for _ in range(min(size, 25)))
        lines = []
        for i in chosen:
            p = self.products[i]
            if p.qty_g is not None:
                qty = from_minor(rng.randint(*p.qty_g), unit=MILLI)
            else:
                qty = Decimal(rng.choices((1, 2, 3, 4, 6), (78, 15, 4, 2, 1))[0])
            price = p.prices[quarter]
            discount = ZERO
            if rng.random() < 0.06:  # the POS's own promotion on the line
                discount = q2(q2(qty * price) * rng.choice((10, 15, 20, 25, 30)) / 100)
            lines.append(BasketLine(p.sku, p.name, p.category, qty, price, discount))
        return lines

    # --- receipts and the ledger ----------------------------------------------------------

    def receipts(self) -> Iterator[tuple[list[Row], list[Row]]]:
        """Receipts and their lines in time order, in chunks; the ledger runs alongside.

        A member receipt is priced with the points the account had at that moment; points
        burned leave the lots that expire first; points earned make a lot dated by the
        program's rules; lots whose expiry comes leave by an ``expire`` entry at that time.
        """
        receipts: list[Row] = []
        lines: list[Row] = []
        serial = [0] * len(self.stores)  # receipt numbers per till
        members = 0
        for k, v in enumerate(self._visits()):
            self._expire_until(v.at)
            serial[v.store] += 1
            receipt, receipt_lines = self._receipt(self.ids.receipts + k, v, serial[v.store])
            receipts.append(receipt)
            lines += receipt_lines
            members += v.customer >= 0
            if len(lines) >= LINES_PER_CHUNK:
                yield receipts, lines
                self.counts["receipt lines"] = self.counts.get("receipt lines", 0) + len(lines)
                receipts, lines = [], []
        self._expire_until(self.now)
        if receipts:
            yield receipts, lines
        self.counts["receipts"] = sum(serial)
        self.counts["member receipts"] = members
        self.counts["receipt lines"] = self.counts.get("receipt lines", 0) + len(lines)

    def _receipt(self, rid: int, v: Visit, number: int) -> tuple[Row, list[Row]]:
        store = self.stores[v.store]
        confirmed = v.at + timedelta(seconds=self.rng.randint(2, 40))
        basket_lines = self._basket(v.day)
        c = self.customers[v.customer] if v.customer >= 0 else None
        lot_id = None
        if c is None:
            basket = Basket(tuple(basket_lines), occurred_at=v.at)
            priced = price_receipt(basket, None, self.program, v.at)
        else:
            priced, basket, lot_id = self._member_receipt(c, basket_lines, rid, v.at, confirmed)
        cashier = f"{store.code}-{self.rng.randint(1, 6):02d}"
        request = PurchaseRequest(
            f"{number:07d}", c.card_number if c else None, v.at, cashier, basket
        )
        row = {
            "id": rid,
            "program_id": self.program_id,
            "partner_id": self.partner_id,
            "store_id": store.id,
            "terminal_id": store.terminal_id,
            "pos_receipt_id": request.receipt_id,
            "account_id": c.account_id if c else None,
            "customer_id": c.id if c else None,
            "card_id": c.card_id if c else None,
            "state": "confirmed",
            "occurred_at": v.at,
            "created_at": v.at,
            "confirmed_at": confirmed,
            "cashier_id": cashier,
            "amount": priced.amount,
            "discount": priced.discount,
            "points_redeemed": priced.points_redeemed,
            "redeemed_value": priced.redeemed_value,
            "to_pay": priced.to_pay,
            "points_earned": priced.points_earned,
            "hold_id": None,
            "earned_lot_id": lot_id,
            "program_version": 1,
            # As if the till had sent it; the stored answers are left out (not replayable).
            "request_hash": request.request_hash(),
            "calc_response": None,
            "confirm_response": None,
            "source": "import",
        }
        return row, _line_rows(rid, self.program_id, basket_lines, priced)

    def _expire_until(self, now: datetime) -> None:
        """Lots whose expiry has come by ``now`` leave, each at its own expiry time."""
        while self.expiring and self.expiring[0][0] <= now:
            when, _, who = heapq.heappop(self.expiring)
            self._expire(self.customers[who], when)

    def _member_receipt(
        self,
        c: Customer,
        lines: list[BasketLine],
        rid: int,
        at: datetime,
        confirmed: datetime,
    ) -> tuple[PricedReceipt, Basket, int | None]:
        available = balance_of(c.lots, held=ZERO, debt=ZERO, now=at).available
        net = sum((ln.amount - ln.discount for ln in lines), ZERO)
        basket = Basket(tuple(lines), self._redeem_request(c, net, available), at)
        priced = price_receipt(basket, CustomerContext(c.account_id, available), self.program, at)
        if priced.points_redeemed > 0:
            takes = plan_burn(c.lots, priced.points_redeemed, now=at)
            self._take(c, takes, EntryKind.BURN, confirmed, rid)
        plan = plan_earn(priced.points_earned, debt=ZERO)
        assert plan.debt_paid == 0  # no refunds in the demo, so never a debt
        lot_id = None
        if plan.lot_amount > 0:
            activates, expires = lot_dates(at, self.program)
            lot_id = self.ids.lots + len(self.lot_rows)
            self.lot_rows[lot_id] = {
                "id": lot_id,
                "program_id": self.program_id,
                "account_id": c.account_id,
                "amount": plan.lot_amount,
                "remaining": plan.lot_amount,
                "activates_at": activates,
                "expires_at": expires,
                "receipt_pk": rid,
                "funding_partner_id": self.partner_id,
                "created_at": confirmed,
            }
            c.lots.append(Lot(lot_id, plan.lot_amount, activates, expires))
            if expires is not None:
                heapq.heappush(self.expiring, (expires, lot_id, c.index))
            self._entry(c, EntryKind.EARN, priced.points_earned, confirmed, lot_id, rid)
        c.updated_at = confirmed
        return priced, basket, lot_id

    def _redeem_request(
        self, c: Customer, net: Decimal, available: Decimal
    ) -> Decimal | str | None:
        """Some members never burn, some now and then a round sum, some always the most."""
        if c.burner == 0 or available < 100:
            return None
        limit = redeem_limit(net, available, self.program)
        if limit <= 0:
            return None
        if c.burner == 2:
            return MAX
        if self.rng.random() > 0.3:
            return None
        options = [Decimal(x) for x in (50, 100, 150, 200, 300, 500, 1000) if x <= limit]
        return self.rng.choice(options) if options else MAX

    def _expire(self, c: Customer, when: datetime) -> None:
        takes = plan_expire(c.lots, now=when)
        if takes:
            self._take(c, takes, EntryKind.EXPIRE, when, None)
            c.updated_at = when

    def _take(
        self, c: Customer, takes: Sequence[Take], kind: EntryKind, at: datetime, rid: int | None
    ) -> None:
        """Points leave lots: burned on a receipt or expired."""
        amounts = {x.lot_id: x.amount for x in takes}
        kept = []
        for lot in c.lots:
            taken = amounts.get(lot.id)
            if taken is None:
                kept.append(lot)
                continue
            left = lot.remaining - taken
            assert left >= 0, f"lot {lot.id} would go negative"
            self.lot_rows[lot.id]["remaining"] = left
            if left > 0:
                kept.append(Lot(lot.id, left, lot.activates_at, lot.expires_at))
        c.lots = kept
        for x in takes:
            self._entry(c, kind, -x.amount, at, x.lot_id, rid)

    def _entry(
        self,
        c: Customer,
        kind: EntryKind,
        amount: Decimal,
        at: datetime,
        lot_id: int | None,
        rid: int | None,
    ) -> None:
        self.entries.append(
            {
                "id": self.ids.ledger_entries + len(self.entries),
                "program_id": self.program_id,
                "account_id": c.account_id,
                "kind": kind.value,
                "amount": amount,
                "held_delta": ZERO,
                "lot_id": lot_id,
                "hold_id": None,
                "receipt_pk": rid,
                "refund_pk": None,
                "funding_partner_id": self.partner_id,
                "partner_id": self.partner_id if rid is not None else None,
                "created_at": at,
                "note": None,
            }
        )

    # --- what is left after the year: accounts, cards, lots, entries ------------------------

    def account_rows(self) -> list[Row]:
        """Accounts with their cached totals; call after ``receipts`` is exhausted.

        Checks ledger guarantee 3 on the way: balance == sum(entries) == sum(lots) - debt.
        """
        by_account: dict[int, Decimal] = {}
        for e in self.entries:
            by_account[e["account_id"]] = by_account.get(e["account_id"], ZERO) + e["amount"]
        in_lots: dict[int, Decimal] = {}
        for lot in self.lot_rows.values():
            in_lots[lot["account_id"]] = in_lots.get(lot["account_id"], ZERO) + lot["remaining"]
        rows: list[Row] = []
        for c in self.customers:
            balance = sum((x.remaining for x in c.lots), ZERO)
            assert (
                balance == by_account.get(c.account_id, ZERO) == in_lots.get(c.account_id, ZERO)
            ), f"ledger of account {c.account_id} does not add up"
            rows.append(
                {
                    "id": c.account_id,
                    "program_id": self.program_id,
                    "customer_id": c.id,
                    "balance": balance,
                    "held": ZERO,
                    "debt": ZERO,
                    "created_at": c.registered_at,
                    "updated_at": c.updated_at or c.registered_at,
                }
            )
        self.counts["points balance"] = int(sum((r["balance"] for r in rows), ZERO))
        return rows

    def card_rows(self) -> list[Row]:
        return [
            {
                "id": c.card_id,
                "program_id": self.program_id,
                "account_id": c.account_id,
                "customer_id": c.id,
                "number": c.card_number,
                "kind": "plastic",
                "status": "active",
                "created_at": c.registered_at,
            }
            for c in self.customers
        ]

    def identifier_rows(self) -> list[Row]:
        rows = []
        for c in self.customers:
            for value, kind in ((c.card_number, "card"), (c.phone, "phone")):
                rows.append(
                    {
                        "program_id": self.program_id,
                        "value": value,
                        "kind": kind,
                        "card_id": c.card_id,
                    }
                )
        return rows

    def lot_rows_list(self) -> list[Row]:
        self.counts["lots"] = len(self.lot_rows)
        return list(self.lot_rows.values())

    def entry_rows(self) -> list[Row]:
        self.counts["ledger entries"] = len(self.entries)
        return self.entries


def _line_rows(
    rid: int, program_id: int, lines: Sequence[BasketLine], priced: PricedReceipt
) -> list[Row]:
    return [
        {
            "receipt_pk": rid,
            "idx": i,
            "program_id": program_id,
            "sku": ln.sku,
            "name": ln.name,
            "category": ln.category,
            "quantity": ln.quantity,
            "price": ln.price,
            "amount": p.amount,
            "discount": p.discount,
            "points_redeemed": p.points_redeemed,
            "redeemed_value": p.redeemed_value,
            "to_pay": p.to_pay,
            "points_earned": p.points_earned,
            "refunded_quantity": ZERO,
        }
        for i, (ln, p) in enumerate(zip(lines, priced.lines, strict=True))
    ]


def _day_weight(d: date) -> float:
    special = data.SPECIAL_DAYS.get((d.month, d.day), 1.0)
    return data.MONTH_FACTOR[d.month - 1] * data.WEEKDAY_FACTOR[d.weekday()] * special


def _visits_per_year(rng: random.Random) -> float:
    """Shopping trips a year: many come rarely, a loyal few every few days."""
    kind = rng.choices(range(4), (30, 35, 25, 10))[0]
    lo, hi = ((1, 3), (4, 10), (10, 24), (24, 60))[kind]
    return rng.uniform(lo, hi)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method for small means, normal above), from ``rng`` only."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, mean**0.5)))
    limit = math.exp(-mean)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
