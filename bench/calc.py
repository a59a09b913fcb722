#!/usr/bin/env python3
"""Rules engine calculation benchmark: one receipt priced in-process, no server, no database.

A seeded generator builds a realistic program (a 60-category tree in 3 levels, a
5,000-SKU catalogue, SKU lists, brands, 30 stores in 5 cities, tiers, segments, price
floors, stacking groups) with N promotions of a realistic mix, and 30-line member
baskets.  For N = 0, 10, 200 and 1000 it measures the wall time of
``rules.engine.price_receipt`` per calculation (``time.perf_counter_ns``, after a
warm-up) with the compiled program as it is (promotions indexed by SKU, category and
store) and, in the same run, with the index disabled (every promotion a candidate: the
naive loop), next to the bare base rule (0 promotions).

    .venv/bin/python bench/calc.py                    # all sizes, both modes, saved
    .venv/bin/python bench/calc.py -n 200 -n 1000 --iterations 3000 --no-save
    .venv/bin/python bench/calc.py --profile 1000     # cProfile one configuration

This is a benchmark, not a test: it prints and writes figures and never fails because one
is low.  See bench/README.md for what every figure means.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from kopilka.domain.receipt import Basket, BasketLine, PricedReceipt
from kopilka.domain.rules.compiler import CompiledProgram, LineFacts, compile_program
from kopilka.domain.rules.engine import price_receipt
from kopilka.domain.rules.facts import CustomerContext, StoreContext
from kopilka.domain.rules.model import ProgramDoc, validate_document

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SIZES = (0, 10, 200, 1000)
TZ = ZoneInfo("Europe/Moscow")
# Monday 23 November 2026, 18:30 Moscow time; baskets spread over the week around it.
NOW = datetime(2026, 11, 23, 18, 30, tzinfo=TZ)


def say(msg: str) -> None:
    print(f"[calc] {msg}", file=sys.stderr, flush=True)


# --- the catalogue --------------------------------------------------------------------------

# top level -> (second level, sold by weight, price range in roubles)
TREE: dict[str, list[tuple[str, bool, tuple[int, int]]]] = {
    "fresh": [("fruit", True, (60, 350)), ("veg", True, (40, 250)), ("meat", True, (250, 900))],
    "dairy": [
        ("milk", False, (60, 200)),
        ("cheese", True, (500, 1500)),
        ("yogurt", False, (40, 150)),
    ],
    "grocery": [
        ("cereals", False, (60, 300)),
        ("pasta", False, (50, 250)),
        ("canned", False, (70, 400)),
    ],
    "drinks": [
        ("water", False, (30, 120)),
        ("juice", False, (80, 300)),
        ("coffee_tea", False, (150, 1200)),
    ],
    "sweets": [
        ("chocolate", False, (60, 400)),
        ("cookies", False, (50, 300)),
        ("candy", False, (80, 500)),
    ],
    "home": [
        ("cleaning", False, (80, 500)),
        ("paper", False, (60, 400)),
        ("baby", False, (100, 900)),
    ],
}
CITIES = [  # (city, region, stores)
    ("moscow", "msk", 12),
    ("spb", "nw", 8),
    ("kazan", "volga", 4),
    ("ekb", "ural", 3),
    ("nsk", "siberia", 3),
]
TIERS = [("silver", 0, 3, None), ("gold", 20000, 5, 40), ("platinum", 100000, 7, 50)]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    category: str  # a leaf
    weight: bool
    price: Decimal
    brand: str | None
    popularity: float


@dataclass(frozen=True, slots=True)
class World:
    categories: list[dict[str, Any]]
    leaves: list[str]
    mids: list[str]
    tops: list[str]
    products: list[Product]
    popular: list[Product]  # the most bought 2,500, most popular first
    by_leaf: dict[str, list[Product]]
    brands: dict[str, list[str]]
    sku_lists: dict[str, list[str]]
    stores: list[StoreContext]
    cities: list[str]


def make_world(rng: random.Random, n_skus: int = 5000) -> World:
    categories: list[dict[str, Any]] = []
    leaves: list[tuple[str, bool, tuple[int, int]]] = []
    mids: list[str] = []
    for top, subs in TREE.items():
        categories.append({"code": top, "name": top.title()})
        for mid, weight, prices in subs:
            categories.append({"code": mid, "parent": top})
            mids.append(mid)
            for k in (1, 2):
                leaf = f"{mid}_{k}"
                categories.append({"code": leaf, "parent": mid})
                leaves.append((leaf, weight, prices))
    brand_names = [f"brand{b:03d}" for b in range(150)]
    products = []
    seen: set[str] = set()
    for n in range(n_skus):
        leaf, weight, (lo, hi) = leaves[rng.randrange(len(leaves))]
        while True:
            sku = f"46{rng.randrange(10**10, 10**11)}"
            if sku not in seen:
                seen.add(sku)
                break
        rub = rng.randint(lo, hi)
        kop = rng.choice((90, 99, 0, 50, rng.randint(0, 99)))
        brand = rng.choice(brand_names) if rng.random() < 0.7 else None
        # Zipf-like popularity: a few products make most of the receipts.
        products.append(
            Product(sku, leaf, weight, Decimal(f"{rub}.{kop:02d}"), brand, 1 / (n + 1) ** 0.8)
        )
    rng.shuffle(products)
    popular = sorted(products, key=lambda p: -p.popularity)[:2500]
    by_leaf: dict[str, list[Product]] = {}
    for p in products:
        by_leaf.setdefault(p.category, []).append(p)
    brands: dict[str, list[str]] = {}
    for p in products:
        if p.brand:
            brands.setdefault(p.brand, []).append(p.sku)
    sku_lists = {
        f"list{k:02d}": [p.sku for p in rng.sample(popular, rng.randint(5, 30))] for k in range(60)
    }
    stores = []
    for city, region, count in CITIES:
        for k in range(count):
            stores.append(
                StoreContext(
                    code=f"{city}-{k + 1:02d}",
                    partner="main" if k % 5 else "franchise",
                    city=city,
                    region=region,
                )
            )
    return World(
        categories=categories,
        leaves=[x[0] for x in leaves],
        mids=mids,
        tops=list(TREE),
        products=products,
        popular=popular,
        by_leaf=by_leaf,
        brands=brands,
        sku_lists=sku_lists,
        stores=stores,
        cities=[c[0] for c in CITIES],
    )


# --- the program ----------------------------------------------------------------------------


def pick_popular(rng: random.Random, w: World, k: int) -> list[Product]:
    """``k`` distinct products, the popular ones likelier (promotions go on what sells)."""
    out: dict[str, Product] = {}
    while len(out) < k:
        p = w.popular[min(int(rng.expovariate(1 / 1000)), len(w.popular) - 1)]
        out[p.sku] = p
    return list(out.values())


def money(x: Decimal | float) -> str:
    return f"{Decimal(x).quantize(Decimal('0.01'))}"


def make_promotion(rng: random.Random, w: World, i: int) -> tuple[dict[str, Any], str]:
    """One promotion document and its kind (for the mix's table)."""
    pid = f"p{i:05d}"
    p: dict[str, Any] = {"id": pid, "name": f"Promotion {i}"}
    when: dict[str, Any] = {}
    wide = False  # matches much of a basket: usually limited further (where, when, who)
    r = rng.random()
    pieces = [x for x in w.leaves if not x.startswith(("fruit", "veg", "meat", "cheese"))]
    if r < 0.48:  # a few SKUs, a line discount (percent or roubles) or a price
        prods = pick_popular(rng, w, rng.choice((1, 1, 2, 3, 5)))
        p["lines"] = {"sku": [x.sku for x in prods]}
        if rng.random() < 0.25 and len(prods) == 1:
            price = prods[0].price * Decimal(rng.choice(("0.7", "0.8", "0.9")))
            p["effects"] = [{"kind": "price_override", "price": money(price)}]
            kind = "sku price_override"
        elif rng.random() < 0.3:
            off = min(x.price for x in prods) * Decimal("0.15")
            p["effects"] = [{"kind": "line_discount", "amount": money(off)}]
            kind = "sku line_discount amount"
        else:
            pct = rng.choice((5, 10, 15, 20, 25, 30))
            p["effects"] = [{"kind": "line_discount", "percent": pct}]
            kind = "sku line_discount %"
    elif r < 0.50:  # a category (mostly a leaf), a line discount
        cat = rng.choice(w.leaves) if rng.random() < 0.8 else rng.choice(w.mids)
        p["lines"] = {"category": [cat]}
        if rng.random() < 0.2:  # but not a few of its brands' products
            p["lines"] = {"category": [cat], "not": {"brand": [rng.choice(list(w.brands))]}}
        p["effects"] = [{"kind": "line_discount", "percent": rng.choice((5, 7, 10, 15))}]
        kind = "category line_discount"
        wide = True
    elif r < 0.60:  # points multiplier on a brand, a SKU list or a category
        sel = rng.random()
        if sel < 0.25:
            p["lines"] = {"brand": [rng.choice(list(w.brands))]}
        elif sel < 0.9:
            p["lines"] = {"sku_list": [rng.choice(list(w.sku_lists))]}
        else:
            p["lines"] = {"category": [rng.choice(w.leaves)]}
            wide = True
        p["effects"] = [{"kind": "earn_multiplier", "factor": rng.choice((2, 2, 3, 5))}]
        kind = "earn_multiplier"
        if rng.random() < 0.5:
            p["group"] = "points"
    elif r < 0.72:  # a higher earn percent on a category or SKUs
        if rng.random() < 0.15:
            p["lines"] = {"category": [rng.choice(w.leaves)]}
            wide = True
        else:
            p["lines"] = {"sku": [x.sku for x in pick_popular(rng, w, 4)]}
        p["effects"] = [{"kind": "earn_percent", "percent": rng.choice((10, 15, 20))}]
        kind = "earn_percent"
        if rng.random() < 0.5:
            p["group"] = "points"
    elif r < 0.77:  # points per unit on a few SKUs
        p["lines"] = {"sku": [x.sku for x in pick_popular(rng, w, 3)]}
        p["effects"] = [{"kind": "points_per_unit", "points": rng.choice((5, 10, 25))}]
        kind = "points_per_unit"
    elif r < 0.80:  # a basket discount on a category when its lines pass a threshold
        cat = rng.choice(w.mids)
        p["lines"] = {"category": [cat]}
        when["basket"] = {"amount": {"min": rng.choice((300, 500, 1000))}, "lines": p["lines"]}
        p["effects"] = [{"kind": "basket_discount", "percent": rng.choice((5, 10))}]
        kind = "category basket_discount"
        wide = True
    elif r < 0.83:  # "3 for 2" on a piece-goods category or a SKU list
        if rng.random() < 0.3:
            p["lines"] = {"category": [rng.choice(pieces)]}
        else:
            p["lines"] = {"sku_list": [rng.choice(list(w.sku_lists))]}
        p["effects"] = [{"kind": "cheapest_free", "every": rng.choice((3, 3, 4))}]
        kind = "cheapest_free"
    elif r < 0.86:  # a bundle: one of each of two categories (or SKUs) for a price
        if rng.random() < 0.3:
            a, b = rng.sample(pieces, 2)
            items = [{"category": [a]}, {"category": [b]}]
            p["lines"] = {"category": [a, b]}
            price = Decimal(rng.choice((150, 250, 400)))
        else:
            pa, pb = pick_popular(rng, w, 2)
            items = [{"sku": [pa.sku]}, {"sku": [pb.sku]}]
            p["lines"] = {"sku": [pa.sku, pb.sku]}
            price = (pa.price + pb.price) * Decimal("0.8")
        p["effects"] = [{"kind": "bundle_price", "items": items, "price": money(price)}]
        kind = "bundle_price"
    elif r < 0.89:  # a brand's gift or a message above an amount of its products
        brand = rng.choice(list(w.brands))
        p["lines"] = {"brand": [brand]}
        when["basket"] = {"amount": {"min": 500}, "lines": {"brand": [brand]}}
        p["effects"] = [
            {"kind": "gift", "sku": "GIFT-1", "name": "A gift"},
            {"kind": "cashier_message", "text": "Hand over the gift"},
        ]
        kind = "brand gift"
    elif r < 0.92:  # store-only: a store's own promotion on everything
        when["store"] = rng.sample([s.code for s in w.stores], rng.choice((1, 1, 2, 3)))
        p["effects"] = [{"kind": "earn_multiplier", "factor": 2}]
        kind = "store-only earn_multiplier"
    elif r < 0.975:  # fixed points on a SKU list above a basket amount
        p["lines"] = {"sku_list": [rng.choice(list(w.sku_lists))]}
        when["basket"] = {"amount": {"min": rng.choice((1000, 2000))}}
        p["effects"] = [{"kind": "fixed_points", "points": rng.choice((50, 100, 200))}]
        kind = "sku_list fixed_points"
    else:  # no line condition at all: basket thresholds, birthday, first purchase
        sel = rng.random()
        if sel < 0.4:
            when["basket"] = {"amount": {"min": rng.choice((3000, 5000, 10000))}}
            p["effects"] = [{"kind": "fixed_points", "points": rng.choice((100, 300))}]
            p["group"] = "threshold"
            kind = "no-line basket threshold"
        elif sel < 0.7:
            when["birthday"] = {"days_before": 3, "days_after": 3}
            p["effects"] = [{"kind": "earn_multiplier", "factor": 2}]
            kind = "no-line birthday"
        else:
            when["first_purchase"] = True
            p["effects"] = [
                {"kind": "basket_discount", "amount": "100.00"},
                {"kind": "receipt_message", "text": "Welcome!"},
            ]
            when["basket"] = {"amount": {"min": 1000}}
            kind = "no-line first purchase"
    # Modifiers: where, when, who.
    if wide and rng.random() < 0.7:
        limit = rng.choice(("city", "weekday", "tier", "segment"))
        if limit == "city":
            when["city"] = [rng.choice(w.cities)]
        elif limit == "weekday":
            when["weekday"] = [rng.choice(WEEKDAYS)]
        elif limit == "tier":
            when["tier"] = ["platinum"]
        else:
            when["segment"] = [rng.choice(("vip", "students", "lapsed"))]
    if rng.random() < 0.30:  # regional: a city or a few stores
        if rng.random() < 0.5:
            when["city"] = rng.sample(w.cities, rng.choice((1, 2)))
        else:
            when["store"] = rng.sample([s.code for s in w.stores], rng.randint(1, 6))
    if rng.random() < 0.10:
        if rng.random() < 0.5:
            when["weekday"] = rng.sample(WEEKDAYS, rng.choice((1, 2, 5)))
        else:
            when["hours"] = [rng.choice(("08:00-12:00", "10:00-16:00", "18:00-23:00"))]
    if rng.random() < 0.10:
        if rng.random() < 0.6:
            when["tier"] = rng.choice((["gold", "platinum"], ["platinum"]))
        else:
            when["segment"] = [rng.choice(("vip", "students", "lapsed"))]
    if when:
        p["when"] = when
    # Schedule: most current, some over, some not started yet.
    s = rng.random()
    if s < 0.70:
        p["starts_at"] = (NOW - timedelta(days=rng.randint(1, 30))).isoformat()
        p["ends_at"] = (NOW + timedelta(days=rng.randint(7, 60))).isoformat()
    elif s < 0.80:
        p["starts_at"] = (NOW - timedelta(days=60)).isoformat()
        p["ends_at"] = (NOW - timedelta(days=rng.randint(1, 20))).isoformat()
    elif s < 0.85:
        p["starts_at"] = (NOW + timedelta(days=rng.randint(10, 30))).isoformat()
    p["priority"] = rng.choice((0, 0, 0, 10, 10, 50, 100))
    g = rng.random()
    if g < 0.04:
        p["exclusive"] = True
    elif g < 0.14 and "group" not in p:
        p["group"] = rng.choice(("weekly", "weekly", "coffee", "earn"))
    if rng.random() < 0.05:
        p["limits"] = [{"count": 1, "period": rng.choice(("day", "week"))}]
    if rng.random() < 0.03:
        p["budget"] = {"money": "100000.00"}
    if rng.random() < 0.05:
        p["max_discount"] = "500.00"
    return p, kind


def staples(w: World) -> list[tuple[dict[str, Any], str]]:
    """What every program has, whatever its size (the first promotions of each N)."""
    top_brand = next(p.brand for p in w.popular if p.brand)
    since = (NOW - timedelta(days=10)).isoformat()
    return [
        (
            {
                "id": "s-week-category",
                "name": "Category of the week",
                "lines": {"category": ["cheese"]},
                "effects": [{"kind": "line_discount", "percent": 10}],
                "starts_at": since,
            },
            "staple category line_discount",
        ),
        (
            {
                "id": "s-brand-x2",
                "name": "Double points on a brand",
                "lines": {"brand": [top_brand]},
                "effects": [{"kind": "earn_multiplier", "factor": 2}],
            },
            "staple brand earn_multiplier",
        ),
        (
            {
                "id": "s-threshold",
                "name": "200 points from 3000 RUB",
                "when": {"basket": {"amount": {"min": 3000}}},
                "effects": [{"kind": "fixed_points", "points": 200}],
                "group": "threshold",
            },
            "staple basket threshold",
        ),
        (
            {
                "id": "s-birthday",
                "name": "Birthday: double points",
                "when": {"birthday": {"days_before": 3, "days_after": 3}},
                "effects": [{"kind": "earn_multiplier", "factor": 2}],
            },
            "staple birthday",
        ),
        (
            {
                "id": "s-fresh-tiers",
                "name": "Gold and platinum: more points on fresh food",
                "when": {"tier": ["gold", "platinum"]},
                "lines": {"category": ["fresh"]},
                "effects": [{"kind": "earn_multiplier", "factor": "1.5"}],
            },
            "staple tier earn_multiplier",
        ),
    ]


def make_program(rng: random.Random, w: World, n: int) -> tuple[dict[str, Any], dict[str, int]]:
    promos = []
    mix: dict[str, int] = {}
    base = staples(w)
    for i in range(n):
        p, kind = base[i] if i < len(base) else make_promotion(rng, w, i)
        promos.append(p)
        mix[kind] = mix.get(kind, 0) + 1
    floors = [
        {"category": ["baby"], "min_price": "100.00"},
        {"sku": [x.sku for x in w.popular[:50:5]], "min_price": "50.00"},
    ]
    doc = {
        "code": "bench",
        "name": "Bench program",
        "type": "bonus",
        "timezone": "Europe/Moscow",
        "points": {"earn_percent": 3, "burn_max_percent": 30},
        "tiers": {
            "qualify_by": "spend",
            "levels": [
                {
                    "code": code,
                    "name": code.title(),
                    "threshold": th,
                    "earn_percent": earn,
                    **({"burn_max_percent": burn} if burn else {}),
                }
                for code, th, earn, burn in TIERS
            ],
        },
        "categories": w.categories,
        "sku_lists": w.sku_lists,
        "brands": w.brands,
        "segments": {
            "vip": {"tag": ["vip"]},
            "students": {"tag": ["student"]},
            "lapsed": {"days_since_last_purchase": {"min": 60}},
        },
        "price_floors": floors,
        "max_discount_percent": 50,
        "stacking": {
            "groups": {
                "weekly": {"mode": "best"},
                "threshold": {"mode": "best"},
                "points": {"mode": "best"},
                "coffee": {"mode": "first"},
                "earn": {"mode": "stack"},
            },
            "default_group_mode": "best",
            "exclusive": "best",
        },
        "promotions": promos,
    }
    return doc, dict(sorted(mix.items(), key=lambda kv: -kv[1]))


# --- baskets --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    basket: Basket
    customer: CustomerContext
    store: StoreContext
    at: datetime


def make_customer(rng: random.Random, k: int) -> CustomerContext:
    tier = rng.choices(("silver", "gold", "platinum"), (60, 30, 10))[0]
    tags: set[str] = set()
    if rng.random() < 0.05:
        tags.add("vip")
    if rng.random() < 0.10:
        tags.add("student")
    born = date(rng.randint(1950, 2005), 11, 1) + timedelta(days=rng.randint(0, 364))
    if rng.random() < 0.03:  # a birthday this week
        born = date(1985, NOW.month, NOW.day) + timedelta(days=rng.randint(-2, 2))
    return CustomerContext(
        account_id=k,
        available=Decimal(rng.randint(0, 5000)),
        customer_id=k,
        keys=frozenset({str(k)}),
        tier=tier,
        tags=frozenset(tags),
        rfm=rng.choice(("111", "333", "555")),
        last_purchase_on=(NOW - timedelta(days=rng.randint(1, 120))).date(),
        purchases=0 if rng.random() < 0.02 else rng.randint(1, 300),
        birthday=born,
    )


def make_cases(rng: random.Random, w: World, count: int, lines: int) -> list[Case]:
    weights = [p.popularity for p in w.products]
    cases = []
    for k in range(count):
        chosen: dict[str, Product] = {}
        while len(chosen) < lines:
            for p in rng.choices(w.products, weights, k=lines - len(chosen)):
                chosen[p.sku] = p
        blines = []
        for p in chosen.values():
            if p.weight:
                qty = Decimal(rng.randint(150, 1500)) / 1000
            else:
                qty = Decimal(rng.choices((1, 2, 3, 6), (70, 20, 8, 2))[0])
            blines.append(BasketLine(p.sku, f"Product {p.sku}", p.category, qty, p.price))
        at = NOW + timedelta(days=rng.randint(-3, 3), minutes=rng.randint(-600, 240))
        store = rng.choice(w.stores)
        redeem = "max" if rng.random() < 0.2 else None
        cases.append(
            Case(
                Basket(tuple(blines), redeem_points=redeem, occurred_at=at),
                make_customer(rng, k + 1),
                store,
                at,
            )
        )
    return cases


# --- measuring ------------------------------------------------------------------------------


def naive(prog: CompiledProgram) -> CompiledProgram:
    """The same compiled program with the index disabled: every promotion a candidate."""
    return dataclasses.replace(
        prog,
        by_sku={},
        by_cat={},
        by_store={},
        unindexed=tuple(range(len(prog.promotions))),
        ancestors_cache={},
    )


def calc(case: Case, prog: CompiledProgram) -> PricedReceipt:
    return price_receipt(case.basket, case.customer, prog, case.at, store=case.store)


def run_samples(cases: list[Case], prog: CompiledProgram, start: int, count: int) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    ncases = len(cases)
    for i in range(start, start + count):
        c = cases[i % ncases]
        t0 = clock()
        price_receipt(c.basket, c.customer, prog, c.at, store=c.store)
        out.append(clock() - t0)
    return out


def pct(sorted_ns: list[int], q: float) -> float:
    k = min(len(sorted_ns) - 1, max(0, round(q * (len(sorted_ns) - 1))))
    return sorted_ns[k] / 1e6


def summarize(
    ns: list[int], cpu_s: float, wall_s: float, by_case: list[list[int]]
) -> dict[str, Any]:
    s = sorted(ns)
    mean = statistics.fmean(ns)
    # Each basket's median, then the p99 over baskets: the slow baskets without the
    # scheduler's and the collector's pauses.
    medians = sorted(int(statistics.median(x)) for x in by_case if x)
    return {
        "n": len(ns),
        "p50_ms": round(pct(s, 0.50), 4),
        "p90_ms": round(pct(s, 0.90), 4),
        "p99_ms": round(pct(s, 0.99), 4),
        "max_ms": round(s[-1] / 1e6, 3),
        "mean_ms": round(mean / 1e6, 4),
        "p99_basket_ms": round(pct(medians, 0.99), 4),
        "calcs_per_s": round(1e9 / mean, 1),
        "cpu_share": round(cpu_s / wall_s, 3) if wall_s else None,
    }


def applied_promotions(priced: PricedReceipt, prog: CompiledProgram) -> list[str]:
    return [a.rule for a in priced.applied if a.rule in prog.by_id]


def case_stats(cases: list[Case], prog: CompiledProgram) -> dict[str, Any]:
    """Per-basket facts outside the timing: candidates, applied promotions, the discount."""
    cands = []
    applied = []
    discount = []
    points = []
    for c in cases:
        lf = [
            LineFacts(ln.sku, prog.ancestors(ln.category), ln.quantity, ln.amount)
            for ln in c.basket.lines
        ]
        cands.append(len(prog.candidates(lf, c.store.code)))
        priced = calc(c, prog)
        applied.append(len(applied_promotions(priced, prog)))
        discount.append(float(priced.discount / priced.amount * 100) if priced.amount else 0.0)
        points.append(float(priced.points_earned))
    return {
        "candidates_avg": round(statistics.fmean(cands), 1),
        "candidates_max": max(cands),
        "applied_avg": round(statistics.fmean(applied), 2),
        "applied_max": max(applied),
        "baskets_with_promotion": round(sum(1 for a in applied if a) / len(applied), 3),
        "discount_pct_avg": round(statistics.fmean(discount), 2),
        "points_avg": round(statistics.fmean(points), 1),
    }


def build(rng_seed: int, n: int, w: World) -> tuple[CompiledProgram, dict[str, Any]]:
    rng = random.Random(rng_seed * 1_000_003 + n)
    data, mix = make_program(rng, w, n)
    t0 = time.perf_counter()
    doc: ProgramDoc = validate_document(data)
    t1 = time.perf_counter()
    prog = compile_program(doc)
    t2 = time.perf_counter()
    return prog, {
        "validate_ms": round((t1 - t0) * 1000, 1),
        "compile_ms": round((t2 - t1) * 1000, 1),
        "mix": mix,
        "index": {
            "sku_keys": len(prog.by_sku),
            "category_keys": len(prog.by_cat),
            "store_keys": len(prog.by_store),
            "unindexed": len(prog.unindexed),
        },
    }


def git_info() -> dict[str, Any]:
    def git(*a: str) -> str:
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        return r.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_dirty": bool(git("status", "--porcelain", "--", "src")),
        # What this benchmark runs: the rules engine, the receipt and money helpers.
        "domain_dirty": bool(git("status", "--porcelain", "--", "src/kopilka/domain")),
    }


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "python": sys.version.split()[0],
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    mach = machine()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    w = make_world(rng)
    cases = make_cases(random.Random(args.seed + 1), w, args.baskets, args.lines)
    say(
        f"catalogue {len(w.products)} SKUs in {len(w.categories)} categories, "
        f"{len(w.stores)} stores, {len(cases)} baskets of {args.lines} lines "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    configs: list[tuple[str, int, CompiledProgram]] = []
    programs: dict[str, Any] = {}
    for n in args.sizes:
        prog, info = build(args.seed, n, w)
        programs[str(n)] = info
        say(
            f"N={n}: validated in {info['validate_ms']} ms, compiled in {info['compile_ms']} ms; "
            f"index {info['index']}"
        )
        configs.append(("indexed", n, prog))
        if n:
            configs.append(("naive", n, naive(prog)))
    # Same answers with and without the index (outside the timing).
    mismatches: dict[str, int] = {}
    stats: dict[tuple[str, int], dict[str, Any]] = {}
    by_n = {(mode, n): prog for mode, n, prog in configs}
    for mode, n, prog in configs:
        stats[(mode, n)] = case_stats(cases, prog)
        if mode == "naive":
            idx = by_n[("indexed", n)]
            mismatches[str(n)] = sum(1 for c in cases if calc(c, prog) != calc(c, idx))
    # Warm-up, then rounds that alternate the configurations, so that a change in the
    # machine's load during the run touches all of them alike.
    samples: dict[tuple[str, int], list[int]] = {(mode, n): [] for mode, n, _ in configs}
    by_case: dict[tuple[str, int], list[list[int]]] = {key: [[] for _ in cases] for key in samples}
    cpu: dict[tuple[str, int], float] = dict.fromkeys(samples, 0.0)
    wall: dict[tuple[str, int], float] = dict.fromkeys(samples, 0.0)
    for _, _, prog in configs:
        run_samples(cases, prog, 0, args.warmup)
    per_round = -(-args.iterations // args.rounds)
    for r in range(args.rounds):
        for mode, n, prog in configs:
            key = (mode, n)
            count = min(per_round, args.iterations - len(samples[key]))
            if count <= 0:
                continue
            if args.naive_cap and mode == "naive":
                count = min(count, -(-args.naive_cap // args.rounds))
            gc.collect()
            c0, w0 = time.process_time(), time.perf_counter()
            got = run_samples(cases, prog, r * per_round, count)
            samples[key] += got
            for j, ns in enumerate(got):
                by_case[key][(r * per_round + j) % len(cases)].append(ns)
            cpu[key] += time.process_time() - c0
            wall[key] += time.perf_counter() - w0
        say(f"round {r + 1}/{args.rounds} done")
    rows = []
    b0 = ("indexed", 0)
    base = summarize(samples[b0], cpu[b0], wall[b0], by_case[b0]) if b0 in samples else None
    for mode, n, _ in configs:
        key = (mode, n)
        row = {"promotions": n, "mode": "base rule" if n == 0 else mode}
        row.update(summarize(samples[key], cpu[key], wall[key], by_case[key]))
        row.update(stats[key])
        if base is not None:
            row["over_base_ms"] = round(row["mean_ms"] - base["mean_ms"], 4)
        rows.append(row)
    ratios = {}
    for n in args.sizes:
        if n == 0:
            continue
        ix = next(r for r in rows if r["promotions"] == n and r["mode"] == "indexed")
        nv = next(r for r in rows if r["promotions"] == n and r["mode"] == "naive")
        ratios[str(n)] = {
            "naive_vs_indexed_mean": round(nv["mean_ms"] / ix["mean_ms"], 2),
            "naive_vs_indexed_p50": round(nv["p50_ms"] / ix["p50_ms"], 2),
            "naive_vs_indexed_p99": round(nv["p99_ms"] / ix["p99_ms"], 2),
        }
    growth = {}
    idx_rows = {r["promotions"]: r for r in rows if r["mode"] in ("indexed", "base rule")}
    sizes = sorted(n for n in idx_rows if n)
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        growth = {
            "promotions_x": round(hi / lo, 1),
            "indexed_mean_x": round(idx_rows[hi]["mean_ms"] / idx_rows[lo]["mean_ms"], 2),
            "indexed_p99_x": round(idx_rows[hi]["p99_ms"] / idx_rows[lo]["p99_ms"], 2),
        }
        if 0 in idx_rows:
            b = idx_rows[0]["mean_ms"]
            growth["indexed_over_base_x"] = round(
                (idx_rows[hi]["mean_ms"] - b) / max(idx_rows[lo]["mean_ms"] - b, 1e-9), 2
            )
    targets = {}
    for n, limit in ((200, 1.0), (1000, 3.0)):
        row = next((r for r in rows if r["promotions"] == n and r["mode"] == "indexed"), None)
        if row is not None:
            targets[str(n)] = {
                "p99_ms": row["p99_ms"],
                "target_ms": limit,
                "met": row["p99_ms"] < limit,
                "p99_vs_target": round(row["p99_ms"] / limit, 2),
            }
    return {
        "utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git": git_info(),
        "machine": {**mach, "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
        "params": {
            "sizes": list(args.sizes),
            "iterations": args.iterations,
            "naive_cap": args.naive_cap,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "baskets": args.baskets,
            "lines": args.lines,
            "seed": args.seed,
            "catalogue_skus": len(w.products),
            "categories": len(w.categories),
            "stores": len(w.stores),
            "gc": "enabled",
        },
        "programs": programs,
        "results": rows,
        "naive_vs_indexed": ratios,
        "growth": growth,
        "targets": targets,
        "index_mismatches": mismatches,
    }


# --- output ---------------------------------------------------------------------------------

COLS = [
    ("promotions", "N", 6),
    ("mode", "mode", 9),
    ("p50_ms", "p50 ms", 8),
    ("p99_ms", "p99 ms", 8),
    ("mean_ms", "mean ms", 8),
    ("p99_basket_ms", "p99 bskt", 8),
    ("calcs_per_s", "calcs/s", 8),
    ("cpu_share", "cpu", 5),
    ("candidates_avg", "cand", 6),
    ("applied_avg", "applied", 7),
    ("baskets_with_promotion", "hit", 5),
]


def report(r: dict[str, Any]) -> str:
    g = r["git"]
    mach = r["machine"]
    out = [
        f"== rules engine, one calculation in-process ({r['params']['lines']}-line member "
        f"baskets, commit {g['commit']}{' + uncommitted src' if g['src_dirty'] else ''}, "
        f"Python {mach['python']}, {mach['cpus']} CPUs, load {mach['loadavg_start']} -> "
        f"{mach['loadavg_end']})",
        "  ".join(f"{h:>{wd}}" for _, h, wd in COLS) + "  naive/indexed(mean)",
    ]
    for row in r["results"]:
        cells = []
        for key, _, wd in COLS:
            v = row.get(key)
            cells.append(f"{v:>{wd}}")
        ratio = ""
        if row["mode"] == "naive":
            ratio = f"x{r['naive_vs_indexed'][str(row['promotions'])]['naive_vs_indexed_mean']}"
        out.append("  ".join(cells) + f"  {ratio}")
    if r["growth"]:
        gr = r["growth"]
        out.append(
            f"growth (indexed): {gr['promotions_x']}x promotions -> mean x{gr['indexed_mean_x']}, "
            f"p99 x{gr['indexed_p99_x']}"
            + (
                f"; above the base rule x{gr['indexed_over_base_x']}"
                if "indexed_over_base_x" in gr
                else ""
            )
        )
    for n, t in r["targets"].items():
        out.append(
            f"target N={n}: p99 {t['p99_ms']} ms vs {t['target_ms']} ms -> "
            f"{'met' if t['met'] else 'MISSED'} ({t['p99_vs_target']}x the target)"
        )
    bad = {n: k for n, k in r["index_mismatches"].items() if k}
    out.append(
        "index vs naive: same receipts on every basket"
        if not bad
        else f"index vs naive: DIFFERENT receipts on {bad} baskets (of {r['params']['baskets']})"
    )
    return "\n".join(out)


SECTION = "## Rules engine calculation (`bench/calc.py`)"
POS_LOAD_HEADING = "## POS load (`bench/pos_load.py`)"
SECTION_TEXT = f"""{SECTION}

One line per configuration of a run of `bench/calc.py` (in-process, one core, 30-line
member baskets; times in ms; "cand" is the promotions the index let through, "applied"
those on the receipt, both per basket on average; naive = the index disabled; "p99 bskt"
the p99 over baskets of each basket's median; "cpu" the core share the run got).
See ../README.md.

"""
SECTION_TEXT += (
    "| UTC | commit | N | mode | p50 | p99 | p99 bskt | mean | calcs/s | cpu | cand | applied "
    "| naive/indexed | file |\n" + "|---" * 14 + "|\n"
)


def save(r: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = r["utc"].replace("-", "").replace(":", "")
    path = out_dir / f"calc-{stamp}.json"
    path.write_bytes(orjson.dumps(r, option=orjson.OPT_INDENT_2) + b"\n")
    commit = r["git"]["commit"] + ("+" if r["git"]["src_dirty"] else "")
    rows = []
    for row in r["results"]:
        ratio = "-"
        if row["mode"] == "naive":
            ratio = str(r["naive_vs_indexed"][str(row["promotions"])]["naive_vs_indexed_mean"])
        cells = [
            r["utc"],
            commit,
            str(row["promotions"]),
            row["mode"],
            str(row["p50_ms"]),
            str(row["p99_ms"]),
            str(row["p99_basket_ms"]),
            str(row["mean_ms"]),
            str(row["calcs_per_s"]),
            str(row["cpu_share"]),
            str(row["candidates_avg"]),
            str(row["applied_avg"]),
            ratio,
            f"[json]({path.name})",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    add_rows(out_dir / "README.md", rows)
    return path


def add_rows(summary: Path, rows: list[str]) -> None:
    """Add rows at the end of this benchmark's table in the results README.  The section
    goes right under the file's title, above the POS load table (``pos_load.py`` appends
    its rows at the end of the file), which gets a heading of its own."""
    text = summary.read_text() if summary.exists() else "# Benchmark results\n"
    lines = text.splitlines()
    if SECTION not in lines:
        at = next((i + 1 for i, x in enumerate(lines) if x.startswith("# ")), 0)
        rest = lines[at:]
        while rest and not rest[0].strip():
            rest.pop(0)
        block = ["", *SECTION_TEXT.splitlines(), ""]
        if rest and not rest[0].startswith("## "):
            block += [POS_LOAD_HEADING, ""]
        lines[at:] = block + rest
    start = lines.index(SECTION)
    end = start + 1
    while end < len(lines) and not lines[end].startswith("|"):
        end += 1
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    lines[end:end] = rows
    summary.write_text("\n".join(lines) + "\n")


def profile(args: argparse.Namespace) -> None:
    n = args.profile
    rng = random.Random(args.seed)
    w = make_world(rng)
    cases = make_cases(random.Random(args.seed + 1), w, args.baskets, args.lines)
    prog, info = build(args.seed, n, w)
    if args.profile_naive:
        prog = naive(prog)
    mode = "naive" if args.profile_naive else "indexed"
    count = args.iterations
    run_samples(cases, prog, 0, args.warmup)
    prof = cProfile.Profile()
    prof.enable()
    run_samples(cases, prog, 0, count)
    prof.disable()
    for order in ("cumulative", "tottime"):
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf)
        st.strip_dirs().sort_stats(order).print_stats(25)
        print(f"== N={n} {mode}, {count} calculations, top 25 by {order} (cProfile)")
        print(buf.getvalue())
    print(f"index: {info['index']}; mix: {info['mix']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "-n",
        "--promotions",
        dest="sizes",
        type=int,
        action="append",
        help=f"number of promotions; repeat for several (default {', '.join(map(str, SIZES))})",
    )
    p.add_argument(
        "--iterations", type=int, default=3000, help="measured calculations per config (3000)"
    )
    p.add_argument(
        "--naive-cap",
        type=int,
        default=0,
        help="at most this many measured calculations for naive configs (0: as --iterations)",
    )
    p.add_argument("--warmup", type=int, default=200, help="calculations before measuring (200)")
    p.add_argument("--rounds", type=int, default=10, help="rounds alternating the configs (10)")
    p.add_argument("--baskets", type=int, default=250, help="distinct baskets, cycled (250)")
    p.add_argument("--lines", type=int, default=30, help="lines per basket (30)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=BENCH / "results", help="results directory")
    p.add_argument("--no-save", action="store_true", help="print only, write no results")
    p.add_argument(
        "--profile",
        type=int,
        metavar="N",
        default=None,
        help="run --iterations calculations with N promotions (indexed) under cProfile and "
        "print the top 25 functions by cumulative and by total time; nothing is saved",
    )
    p.add_argument("--profile-naive", action="store_true", help="profile the naive loop")
    args = p.parse_args(argv)
    if not args.sizes:
        args.sizes = list(SIZES)
    args.sizes = sorted(set(args.sizes))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile is not None:
        profile(args)
        return 0
    r = measure(args)
    print(report(r), flush=True)
    if not args.no_save:
        path = save(r, args.out)
        say(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
