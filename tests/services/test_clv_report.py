"""The CLV report on a database (both databases): CDNOW's published BG/NBD fit, lifetimes'
weekly and daily summaries counted by hand, how customers are named, and refusals."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from kopilka.services import audit, clv
from kopilka.services.errors import ServiceError
from kopilka.store import tables as t
from tests.inprocess import kopilka_async
from tests.services.receipts_data import Sale, add_customers, add_sales

# shipped with lifetimes (found without importing it)
CDNOW = Path(find_spec("lifetimes").origin or "").parent / "datasets" / "CDNOW_sample.txt"
MSK_NOON = timedelta(hours=9)  # 12:00 in Moscow, the stores' time zone


def _cdnow() -> list[tuple[str, date, Decimal]]:
    """CDNOW's 1/10 sample: customer id, date of purchase, dollars."""
    out = []
    for line in CDNOW.read_text().splitlines():
        cid, _, day, _, value = line.split()
        out.append((cid, date(int(day[:4]), int(day[4:6]), int(day[6:])), Decimal(value)))
    return out


def _at(on: date) -> datetime:
    return datetime(on.year, on.month, on.day, tzinfo=UTC) + MSK_NOON


def kopilka(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kopilka.cli", "--db", db_url, "report", "clv", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


async def test_cdnow_gives_the_published_bgnbd_parameters(make_shop: Any, db_url: str) -> None:
    shop = await make_shop()
    data = _cdnow()
    ids = await add_customers(shop, sorted({cid for cid, _, _ in data}))
    await add_sales(shop, [Sale(_at(on), paid=v, customer_id=ids[cid]) for cid, on, v in data])

    # the calibration period of Fader, Hardie & Lee (2005): 1997-01-01 .. 1997-09-30, in days
    res = kopilka(db_url, "--program", shop.code, "--as-of", "1997-09-30", "--time-unit", "day")
    lines = res.stdout.splitlines()
    params = dict(line.split("=") for line in lines[:7])

    assert res.returncode == 0, res.stderr
    assert list(params) == ["r", "alpha", "a", "b", "p", "q", "v"]
    # published (weeks): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426; alpha scales with
    # the time unit, r, a and b do not
    assert float(params["r"]) == pytest.approx(0.243, abs=0.001)
    assert float(params["alpha"]) / 7 == pytest.approx(4.414, abs=0.005)
    assert float(params["a"]) == pytest.approx(0.793, abs=0.001)
    assert float(params["b"]) == pytest.approx(2.426, abs=0.005)
    assert lines[7] == ""
    assert lines[8] == ",".join(clv.HEADER)
    assert len(lines) == 9 + 2357
    assert "clv: 2357 customers" in res.stderr


async def _weekly_shop(make_shop: Any) -> Any:
    """Customer A, counted by hand below, among 30 regular customers the models can fit."""
    shop = await make_shop()
    names = ["A", *(f"R{i:02d}" for i in range(30))]
    ids = await add_customers(shop, names)
    sales = [
        Sale(_at(date(2026, 1, 5)), paid=Decimal("10.00"), customer_id=ids["A"]),  # Monday
        Sale(_at(date(2026, 1, 6)), paid=Decimal("20.00"), customer_id=ids["A"]),
        Sale(_at(date(2026, 1, 20)), paid=Decimal("30.00"), customer_id=ids["A"]),
        Sale(_at(date(2026, 3, 2)), paid=Decimal("99.00"), customer_id=ids["A"]),  # after as-of
    ]
    for i in range(30):
        first = date(2026, 1, 1) + timedelta(days=i % 7)
        for k in range(i % 5 + 1):
            on = first + timedelta(days=9 * k + i % 3)
            sales.append(
                Sale(
                    _at(on), paid=Decimal(20 + (i * 7 + k * 13) % 50), customer_id=ids[f"R{i:02d}"]
                )
            )
    await add_sales(shop, sales)
    return shop


def _a(rep: clv.ClvReport) -> Any:
    return next(c for c in rep.fitted.customers if c.customer == "A")


async def test_weekly_and_daily_summaries_are_lifetimes_definitions(make_shop: Any) -> None:
    shop = await _weekly_shop(make_shop)

    week = await clv.run_report(
        shop.rt,
        audit.CLI,
        shop.program_id,
        clv.parse_query({"as_of": "2026-03-01", "penalizer": "0.001"}),
    )
    day = await clv.run_report(
        shop.rt,
        audit.CLI,
        shop.program_id,
        clv.parse_query(
            {"as_of": "2026-03-01", "time_unit": "day", "horizon": "30", "penalizer": "0.001"}
        ),
    )

    # weeks end on Sunday: Jan 5-11 (10 + 20), Jan 19-25 (30), ..., Feb 23-Mar 1 (as-of)
    a = _a(week)
    assert (a.frequency, a.recency, a.T, a.monetary_value) == (1, 2, 7, 30.0)
    assert week.settings.horizon == 52
    # days: Jan 5, 6, 20; the as-of date is 55 days after the first
    b = _a(day)
    assert (b.frequency, b.recency, b.T, b.monetary_value) == (2, 15, 55, 25.0)
    assert 0 < b.p_alive <= 1
    assert b.expected_value == pytest.approx(
        b.expected_purchases * _gamma_gamma_mean(day, b.frequency, b.monetary_value)
    )
    assert len(week.fitted.customers) == 31
    assert week.purchases == 3 + sum(i % 5 + 1 for i in range(30))


def _gamma_gamma_mean(rep: clv.ClvReport, x: int, m: float) -> float:
    """E(M | x, m) of Fader, Hardie & Lee's Gamma-Gamma note, eq. 5, by hand."""
    p, q, v = (rep.fitted.params[k] for k in ("p", "q", "v"))
    # a weighted mean of the population mean v*p/(q-1) and the customer's own mean m
    return (q - 1) / (p * x + q - 1) * (v * p / (q - 1)) + (p * x) / (p * x + q - 1) * m


async def test_customers_are_named_by_external_id_then_oldest_card_then_id(
    make_shop: Any, clock: Any
) -> None:
    shop = await make_shop()
    clock.set(datetime(2026, 1, 1, tzinfo=UTC))
    carded = await shop.customer()
    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            insert(t.cards),
            {
                "program_id": shop.program_id,
                "account_id": carded.account_id,
                "customer_id": carded.customer_id,
                "number": "2700000000017",
                "created_at": clock(),
            },
        )
        bare = (
            await conn.execute(
                insert(t.customers).returning(t.customers.c.id),
                {"program_id": shop.program_id, "registered_at": clock()},
            )
        ).scalar_one()
    named = await add_customers(shop, ["EXT-1"])

    async with shop.rt.engine.connect() as conn:
        names = await clv.customer_names(conn, shop.program_id)

    assert names[carded.customer_id] == carded.card  # the older of the two cards
    assert names[named["EXT-1"]] == "EXT-1"
    assert bare not in names  # the report writes "#<id>"


async def test_too_little_data_is_a_clear_error(
    make_shop: Any, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = await make_shop()
    ids = await add_customers(shop, ["only"])
    await add_sales(
        shop,
        [Sale(_at(date(2026, 1, d)), customer_id=ids["only"]) for d in (1, 5, 9)],
    )

    with pytest.raises(ServiceError) as exc:
        await clv.run_report(
            shop.rt, audit.CLI, shop.program_id, clv.parse_query({"as_of": "2026-02-01"})
        )
    res = kopilka(db_url, "--program", shop.code, "--as-of", "2026-02-01")
    clv_args = ("report", "clv", "--program", shop.code)  # in this process: tests.inprocess
    bad = await kopilka_async(
        capsys, db_url, *clv_args, "--as-of", "2026-02-01", "--time-unit", "hour"
    )
    no_date = await kopilka_async(capsys, db_url, *clv_args, "--as-of", "01.02.2026")

    assert exc.value.field == "as_of"
    assert "need at least 3" in exc.value.detail
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr.startswith("error: as_of: 1 customers bought again")
    assert bad.returncode == 2
    assert (no_date.returncode, no_date.stderr.strip()) == (
        2,
        "error: as_of: expected a date as YYYY-MM-DD, got '01.02.2026'",
    )
