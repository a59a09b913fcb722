"""The basket report on a database: which receipts count, the CLI's CSV, saved rules and
the cashier's suggestions (both databases)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from kopilka.services import audit, basket
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.inprocess import kopilka_async
from tests.services.receipts_data import Sale, add_sales

# Tan, Steinbach & Kumar, table 6.1
TEXTBOOK = [
    ["bread", "milk"],
    ["bread", "diapers", "beer", "eggs"],
    ["milk", "diapers", "beer", "cola"],
    ["bread", "milk", "diapers", "beer"],
    ["bread", "milk", "diapers", "cola"],
]
DAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 12:00 in Moscow

# S = 0.4, C = 0.6, K = 2, counted by hand from the table: (antecedents, consequents,
# support, confidence, lift) in the report's order.
EXPECTED = [
    ("beer", "diapers", 0.6, 1.0, 1.25),
    ("cola", "diapers", 0.4, 1.0, 1.25),
    ("cola", "milk", 0.4, 1.0, 1.25),
    ("diapers", "beer", 0.6, 0.75, 1.25),
    ("bread", "diapers", 0.6, 0.75, 0.9375),
    ("bread", "milk", 0.6, 0.75, 0.9375),
    ("diapers", "bread", 0.6, 0.75, 0.9375),
    ("diapers", "milk", 0.6, 0.75, 0.9375),
    ("milk", "bread", 0.6, 0.75, 0.9375),
    ("milk", "diapers", 0.6, 0.75, 0.9375),
    ("beer", "bread", 0.4, 2 / 3, 2 / 3 / 0.8),
    ("beer", "milk", 0.4, 2 / 3, 2 / 3 / 0.8),
]


async def _textbook_shop(make_shop: Any) -> Any:
    shop = await make_shop()
    sales = [Sale(DAY + timedelta(minutes=i), skus) for i, skus in enumerate(TEXTBOOK)]
    sales[0].skus = ["bread", "milk", "milk"]  # a SKU on two lines counts once
    noise = [
        Sale(DAY, ["eggs", "cola", "beer"], state="cancelled"),
        Sale(DAY, ["eggs", "cola", "beer"], state="calculated"),
        # 2026-03-01 23:30 in Moscow: the day before
        Sale(datetime(2026, 3, 1, 20, 30, tzinfo=UTC), ["eggs", "cola", "beer"]),
        # 2026-03-03 00:30 in Moscow: the day after
        Sale(datetime(2026, 3, 2, 21, 30, tzinfo=UTC), ["eggs", "cola", "beer"]),
    ]
    await add_sales(shop, sales + noise)
    return shop


def _q(**kw: str) -> basket.BasketQuery:
    values = {"min_support": "0.4", "min_confidence": "0.6", "max_len": "2"}
    values.update(kw)
    return basket.parse_query(values)


def _approx_rows(rows: list[tuple[str, str, float, float, float]]) -> list[Any]:
    return [
        (a, c, pytest.approx(s), pytest.approx(cf), pytest.approx(lf)) for a, c, s, cf, lf in rows
    ]


async def test_rules_of_one_local_day_match_the_hand_count(make_shop: Any) -> None:
    shop = await _textbook_shop(make_shop)

    rep = await basket.run_report(
        shop.rt, audit.CLI, shop.program_id, _q(**{"from": "2026-03-02", "to": "2026-03-02"})
    )
    got = [basket.rule_row(r) for r in rep.mined.rules]

    assert rep.mined.receipts == 5
    assert [(a, c, float(s), float(cf), float(lf)) for a, c, s, cf, lf in got] == _approx_rows(
        EXPECTED
    )


async def test_without_dates_every_confirmed_receipt_counts(make_shop: Any) -> None:
    shop = await _textbook_shop(make_shop)

    rep = await basket.run_report(shop.rt, audit.CLI, shop.program_id, _q())
    eggs = [i for i in rep.mined.itemsets if i.items == ("eggs",)]

    assert rep.mined.receipts == 7
    assert eggs[0].count == 3  # the textbook's one and the two other days'


async def test_another_store_is_left_out_and_an_unknown_store_is_an_error(make_shop: Any) -> None:
    shop = await _textbook_shop(make_shop)
    async with shop.rt.engine.begin() as conn:
        other = (
            await conn.execute(
                insert(t.stores).returning(t.stores.c.id),
                {
                    "program_id": shop.program_id,
                    "partner_id": shop.partner_id,
                    "code": "other",
                    "name": "Other",
                },
            )
        ).scalar_one()
    await add_sales(shop, [Sale(DAY, ["x", "y"])] * 3, store_id=other)

    mine = await basket.run_report(shop.rt, audit.CLI, shop.program_id, _q(store=shop.store_code))
    theirs = await basket.run_report(shop.rt, audit.CLI, shop.program_id, _q(store="other"))
    with pytest.raises(ServiceError) as exc:
        await basket.run_report(shop.rt, audit.CLI, shop.program_id, _q(store="nope"))

    assert (mine.mined.receipts, theirs.mined.receipts) == (7, 3)
    assert [basket.rule_row(r)[:2] for r in theirs.mined.rules] == [("x", "y"), ("y", "x")]
    assert exc.value.field == "store"


def kopilka(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kopilka.cli", "--db", db_url, "report", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_writes_the_rules_csv_and_saves_them_for_the_cashier(
    make_shop: Any, db_url: str, rt: Runtime
) -> None:
    shop = await _textbook_shop(make_shop)

    res = kopilka(
        db_url,
        "basket",
        "--program",
        shop.code,
        "--min-support",
        "0.4",
        "--min-confidence",
        "0.6",
        "--max-len",
        "2",
        "--from",
        "2026-03-02",
        "--to",
        "2026-03-02",
        "--save",
    )
    rows = list(csv.reader(io.StringIO(res.stdout)))
    tips = await basket.suggestions(rt, shop.program_id, ["beer"])

    assert res.returncode == 0, res.stderr
    assert rows[0] == ["antecedents", "consequents", "support", "confidence", "lift"]
    got = [(a, c, float(s), float(cf), float(lf)) for a, c, s, cf, lf in rows[1:]]
    assert got == _approx_rows(EXPECTED)
    assert "basket: 5 receipts" in res.stderr
    assert "12 rules saved" in res.stderr
    # beer -> bread and beer -> milk have a lift of 0.83: no association worth telling
    assert [(x.skus, x.names, x.because) for x in tips] == [
        (("diapers",), ("item diapers",), ("beer",)),
    ]
    cola = await basket.suggestions(rt, shop.program_id, ["cola", "eggs"])
    assert [(x.skus, x.because, x.lift) for x in cola] == [
        (("diapers",), ("cola",), pytest.approx(1.25)),
        (("milk",), ("cola",), pytest.approx(1.25)),
    ]
    assert await basket.suggestions(rt, shop.program_id, ["beer", "diapers"]) == []


async def test_cli_itemsets_and_bad_input(
    make_shop: Any, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = await _textbook_shop(make_shop)

    res = kopilka(
        db_url, "basket", "--program", shop.code, "--min-support", "0.5", "--what", "itemsets"
    )
    # the refusals: `cli.main` in this process (tests.inprocess), the same exit code and text
    basket_args = ("report", "basket", "--program", shop.code)
    bad = await kopilka_async(capsys, db_url, *basket_args, "--min-support", "2")
    bad_date = await kopilka_async(
        capsys, db_url, *basket_args, "--min-support", "0.5", "--from", "2026-13-01"
    )

    assert res.returncode == 0, res.stderr
    # 7 receipts: bread 4, milk 4, diapers 4, beer 5, cola 4, eggs 3 (3/7 < 0.5)
    lines = res.stdout.splitlines()
    assert lines[0] == "itemset,support,length"
    assert sorted(lines[1:]) == sorted(
        [f"beer,{5 / 7!r},1", *(f"{x},{4 / 7!r},1" for x in ("bread", "cola", "diapers", "milk"))]
    )
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.startswith("error: min_support:")
    assert bad_date.returncode == 2
    assert bad_date.stderr.startswith("error: from:")


async def test_daily_refresh_keeps_the_saved_thresholds_and_counts_new_receipts(
    make_shop: Any, rt: Runtime, clock: Any
) -> None:
    shop = await _textbook_shop(make_shop)
    clock.set(datetime(2026, 3, 10, tzinfo=UTC))
    rep = await basket.run_report(rt, audit.CLI, shop.program_id, _q())
    await basket.do_save_rules(rt, shop.program_id, rep)
    # three more receipts of cola and eggs: cola -> eggs becomes a rule with lift > 1
    await add_sales(shop, [Sale(DAY, ["cola", "eggs"])] * 3)

    done = await basket.refresh_all(rt, actor=audit.SYSTEM)
    tips = await basket.suggestions(rt, shop.program_id, ["cola"])

    assert await basket.saved_params(rt, shop.program_id) == {
        "min_support": "0.4",
        "min_confidence": "0.6",
        "max_len": "2",
    }
    assert done[shop.program_id] > 0
    # 10 receipts: cola 7, eggs 6, both 5: confidence 5/7, lift (5/7)/(6/10)
    eggs = [x for x in tips if x.skus == ("eggs",)]
    assert eggs[0].lift == pytest.approx((5 / 7) / (6 / 10))
