"""Time and memory of the basket and CLV computations on generated data, without a
database (docs/analytics/basket.md and clv.md quote its figures).

    .venv/bin/python bench/basket_clv.py basket --receipts 25000 --skus 4000 --min-support 0.01
    .venv/bin/python bench/basket_clv.py basket --receipts 1000000 --skus 4000 --min-support 0.01
    .venv/bin/python bench/basket_clv.py clv --customers 20000

Baskets: 1-12 SKUs a receipt, SKUs drawn with Zipf-like weights (1/rank^0.9), plus three
planted habits (A with B, C with D, E with F and G) so that rules exist.  CLV: customers
buy at a gamma-distributed rate and drop out after a geometric number of purchases
(the BG/NBD story), values gamma-distributed around a personal mean.  Peak memory is the
process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import time
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baskets(n: int, skus: int, seed: int) -> Iterator[list[str]]:
    rnd = random.Random(seed)
    names = [f"46{i:011d}" for i in range(skus)]
    weights = list(itertools.accumulate(1 / (i + 1) ** 0.9 for i in range(skus)))
    habits = [(names[0], [names[1]]), (names[2], [names[3]]), (names[4], [names[5], names[6]])]
    for _ in range(n):
        tx = rnd.choices(names, cum_weights=weights, k=rnd.randint(1, 12))
        for head, tail in habits:
            if head in tx and rnd.random() < 0.6:
                tx.extend(tail)
        yield tx


def bench_basket(args: argparse.Namespace) -> None:
    from kopilka.domain import basket as b

    t0 = time.perf_counter()
    txs = [tuple(set(tx)) for tx in baskets(args.receipts, args.skus, args.seed)]
    t1 = time.perf_counter()
    rss_data = _rss_mb()
    m = b.mine(txs, b.Params(args.min_support, args.min_confidence, args.max_len))
    t2 = time.perf_counter()
    print(
        f"basket: {m.receipts} receipts x {args.skus} SKUs, S={args.min_support} "
        f"C={args.min_confidence} K={args.max_len}: {len(m.itemsets)} itemsets, "
        f"{len(m.rules)} rules; generated {t1 - t0:.1f} s, counted {t2 - t1:.2f} s; "
        f"peak RSS {rss_data:.0f} MB with the receipts, {_rss_mb():.0f} MB after counting"
    )


def purchases(n: int, seed: int, as_of: date) -> list[object]:
    from kopilka.domain import clv

    rnd = random.Random(seed)
    out = []
    for c in range(n):
        rate = rnd.gammavariate(0.5, 1 / 10)  # purchases a day
        p_drop = rnd.betavariate(1.0, 3.0)
        mean = rnd.gammavariate(6.0, 150.0)
        day = rnd.randint(0, 180)
        while day <= 365:
            value = Decimal(str(round(rnd.gammavariate(6.0, mean / 6.0), 2)))
            out.append(clv.Purchase(f"C{c:06d}", as_of - timedelta(days=365 - day), value))
            if rnd.random() < p_drop:
                break
            day += max(1, int(rnd.expovariate(rate or 1e-6)))
    return out


def bench_clv(args: argparse.Namespace) -> None:
    from kopilka.domain import clv

    as_of = date(2026, 11, 30)
    data = purchases(args.customers, args.seed, as_of)
    for unit in ("week", "day"):
        t0 = time.perf_counter()
        f = clv.fit(data, clv.Settings(as_of, unit, clv.HORIZON_DEFAULT[unit], args.penalizer))
        t1 = time.perf_counter()
        params = " ".join(f"{k}={v:.4g}" for k, v in f.params.items())
        print(
            f"clv ({unit}): {len(f.customers)} customers, {len(data)} purchases, "
            f"{f.repeaters} repeat customers: {t1 - t0:.1f} s; {params}; "
            f"peak RSS {_rss_mb():.0f} MB"
        )


async def _load(args: argparse.Namespace) -> None:
    """A program ``bench`` with generated receipts: baskets as above, a customer for
    each receipt's habits (1 in 3 receipts anonymous), dates over the last year."""
    from sqlalchemy import insert

    from kopilka.services import setup
    from kopilka.services.runtime import Runtime
    from kopilka.store import tables as t
    from kopilka.store.queries import insert_id

    rt = Runtime.from_url(args.db)
    rnd = random.Random(args.seed)
    await setup.do_create_program(rt, code=args.program, name="Bench", changes={})
    now = rt.now()
    async with rt.engine.begin() as conn:
        pid = await setup.program_id(conn, args.program)
        partner = await insert_id(conn, t.partners, {"program_id": pid, "code": "b", "name": "B"})
        store = await insert_id(
            conn, t.stores, {"program_id": pid, "partner_id": partner, "code": "b1", "name": "B1"}
        )
        term = await insert_id(
            conn,
            t.terminals,
            {
                "program_id": pid,
                "store_id": store,
                "name": "t",
                "key_hash": f"bench-{args.seed}-{args.program}",
                "key_prefix": "bench",
                "created_at": now,
            },
        )
        customers = [
            await insert_id(
                conn,
                t.customers,
                {"program_id": pid, "registered_at": now, "external_id": f"B{i:06d}"},
            )
            for i in range(args.receipts // 8)
        ]
    zero = Decimal(0)
    gen = baskets(args.receipts, args.skus, args.seed)
    for start in range(0, args.receipts, 5000):
        async with rt.engine.begin() as conn:
            rows = []
            for i in range(start, min(start + 5000, args.receipts)):
                at = now - timedelta(minutes=rnd.randint(1, 365 * 24 * 60))
                paid = Decimal(rnd.randint(5000, 500000)) / 100
                rows.append(
                    {
                        "program_id": pid,
                        "partner_id": partner,
                        "store_id": store,
                        "terminal_id": term,
                        "pos_receipt_id": f"b{i}",
                        "state": "confirmed",
                        "customer_id": rnd.choice(customers) if rnd.random() < 0.67 else None,
                        "occurred_at": at,
                        "created_at": at,
                        "amount": paid,
                        "discount": zero,
                        "points_redeemed": zero,
                        "redeemed_value": zero,
                        "to_pay": paid,
                        "points_earned": zero,
                        "request_hash": "b",
                        "source": "import",
                    }
                )
            got = await conn.execute(
                insert(t.receipts).returning(t.receipts.c.id, sort_by_parameter_order=True), rows
            )
            lines = [
                {
                    "receipt_pk": pk,
                    "idx": k,
                    "program_id": pid,
                    "sku": sku,
                    "name": sku,
                    "quantity": Decimal(1),
                    "price": Decimal(10),
                    "amount": Decimal(10),
                    "discount": zero,
                    "points_redeemed": zero,
                    "redeemed_value": zero,
                    "to_pay": Decimal(10),
                    "points_earned": zero,
                }
                for pk in got.scalars()
                for k, sku in enumerate(next(gen))
            ]
            await conn.execute(insert(t.receipt_lines), lines)
    await rt.close()
    print(f"loaded {args.receipts} receipts into program {args.program!r}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    bp = sub.add_parser("basket")
    bp.add_argument("--receipts", type=int, default=25_000)
    bp.add_argument("--skus", type=int, default=4000)
    bp.add_argument("--min-support", type=float, default=0.01)
    bp.add_argument("--min-confidence", type=float, default=0.2)
    bp.add_argument("--max-len", type=int, default=3)
    bp.add_argument("--seed", type=int, default=1)
    cp = sub.add_parser("clv")
    cp.add_argument("--customers", type=int, default=20_000)
    cp.add_argument("--penalizer", type=float, default=0.0)
    cp.add_argument("--seed", type=int, default=1)
    lp = sub.add_parser("load", help="write generated receipts into a database")
    lp.add_argument("--db", required=True)
    lp.add_argument("--program", default="bench")
    lp.add_argument("--receipts", type=int, default=25_000)
    lp.add_argument("--skus", type=int, default=4000)
    lp.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.what == "load":
        import asyncio

        asyncio.run(_load(args))
    else:
        bench_basket(args) if args.what == "basket" else bench_clv(args)


if __name__ == "__main__":
    main()
