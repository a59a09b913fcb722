"""``kopilka import receipts`` on both databases: what lands, what is refused and why,
and that a second run changes nothing.

Expected amounts are worked out by hand next to each file."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from kopilka.services.customers import create_account_and_card
from kopilka.services.errors import ServiceError
from kopilka.services.receipt_import import (
    ImportFileError,
    Summary,
    do_import_receipts,
    in_thread,
)
from kopilka.store import tables as t
from tests.conftest import Member, Shop
from tests.services.conftest import discrepancies

HEADER = "receipt_id,occurred_at,store,customer,sku,name,category,quantity,price,amount"


def write(tmp_path: Path, text: str, *, name: str = "receipts.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


async def run(shop: Shop, path: Path, **kw: Any) -> Summary:
    return await do_import_receipts(shop.rt, path, program=shop.code, **kw)


def cells(text: str) -> list[str]:
    return text.split(",")


def rejects(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


@dataclass
class Got:
    receipt_id: str
    store: str
    terminal: str
    terminal_status: str
    customer_id: int | None
    account_id: int | None
    card_id: int | None
    occurred_at: datetime
    state: str
    source: str
    amount: Decimal
    to_pay: Decimal
    lines: list[tuple[str, str, str | None, Decimal, Decimal, Decimal]]


async def receipts_of(shop: Shop) -> dict[str, Got]:
    r, tm = t.receipts, t.terminals
    async with shop.rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(r, t.stores.c.code.label("store"), tm.c.name.label("tname"), tm.c.status)
                .join(t.stores, t.stores.c.id == r.c.store_id)
                .join(tm, tm.c.id == r.c.terminal_id)
                .where(r.c.program_id == shop.program_id)
            )
        ).all()
        out = {}
        for x in rows:
            lines = (
                await conn.execute(
                    select(t.receipt_lines)
                    .where(t.receipt_lines.c.receipt_pk == x.id)
                    .order_by(t.receipt_lines.c.idx)
                )
            ).all()
            assert all(ln.to_pay == ln.amount and ln.discount == 0 for ln in lines)
            out[x.pos_receipt_id] = Got(
                x.pos_receipt_id,
                x.store,
                x.tname,
                x.status,
                x.customer_id,
                x.account_id,
                x.card_id,
                x.occurred_at,
                x.state,
                x.source,
                x.amount,
                x.to_pay,
                [(ln.sku, ln.name, ln.category, ln.quantity, ln.price, ln.amount) for ln in lines],
            )
    return out


async def counts(shop: Shop) -> dict[str, Any]:
    """Rows of the shop's program in every table an import writes, and the money."""
    pid = shop.program_id
    out: dict[str, Any] = {}
    async with shop.rt.engine.connect() as conn:
        for table in (
            t.receipts,
            t.receipt_lines,
            t.customers,
            t.accounts,
            t.cards,
            t.identifiers,
            t.stores,
            t.terminals,
            t.imported_receipts,
            t.ledger_entries,
        ):
            q = select(func.count()).select_from(table).where(table.c.program_id == pid)
            out[table.name] = (await conn.execute(q)).scalar_one()
        out["amount"] = (
            await conn.execute(
                select(func.sum(t.receipts.c.amount)).where(t.receipts.c.program_id == pid)
            )
        ).scalar_one()
        out["lines amount"] = (
            await conn.execute(
                select(func.sum(t.receipt_lines.c.amount)).where(
                    t.receipt_lines.c.program_id == pid
                )
            )
        ).scalar_one()
    return out


async def customer(shop: Shop, customer_id: int) -> Any:
    async with shop.rt.engine.connect() as conn:
        return (
            await conn.execute(select(t.customers).where(t.customers.c.id == customer_id))
        ).one()


def main_file(m: Member) -> str:
    """Every rule once.  Lines (header = 1):
    2,4  A1: two rows with B1 between them; new customer EXT-1 (by external id)
         2 x 89.90 = 179.80; 0.5 x 99.99 = 49.995 -> 50.00; receipt 229.80
    3    B1: a date alone, no store (-> the default store), no customer; paid 40.00
    5    C1: the member's card, +05:00 offset, no price: price = amount = 150.00
    6    C2: the member's phone written another way; 3 x 10.00 = 30.00
    7,8  D1: the second row is a return: the whole receipt is refused
    9    E1: in the future
    10   F1: quantity with 4 decimals
    11   G1: price with 3 decimals and no amount
    12   H1: a new phone: price 33.335 with an amount -> price 33.34, paid 11.10
    """
    local_phone = "8 (" + m.phone[2:5] + ") " + m.phone[5:8] + "-" + m.phone[8:]
    return (
        HEADER
        + "\n"
        + "\n".join(
            [
                "A1,2025-03-01T10:15:00,msk-1,EXT-1,100,Молоко,dairy,2,89.90,",
                'B1,2025-03-01,,,200,"Хлеб ""Бородинский"", нарезка",bakery,1,45.00,40.00',
                "A1,2025-03-01T10:15:00,msk-1,EXT-1,300,Яблоки,fruit,0.5,99.99,",
                f"C1,2025-03-02T12:00:00+05:00,spb-1,{m.card},400,,,1,,150.00",
                f"C2,2025-03-02T13:00:00,spb-1,{local_phone},500,,,3,10.00,",
                "D1,2025-03-03T09:00:00,msk-1,EXT-2,600,,,1,10.00,",
                "D1,2025-03-03T09:00:00,msk-1,EXT-2,601,,,-1,10.00,",
                "E1,2099-01-01,msk-1,,700,,,1,10,",
                "F1,2025-03-04T10:00:00,msk-1,+7 916 555-12-34,800,,,1.2345,10,",
                "G1,2025-03-05T10:00:00,msk-1,+7 916 555-12-36,900,,,1,10.005,",
                "H1,2025-03-05T10:00:00,msk-1,+7 916 555-12-35,901,,,0.333,33.335,11.10",
            ]
        )
        + "\n"
    )


async def test_every_rule_of_a_file_lands_as_described(make_shop: Any, tmp_path: Path) -> None:
    shop = await make_shop()
    m = await shop.customer()
    path = write(tmp_path, main_file(m))

    s = await run(shop, path)

    assert (s.imported, s.imported_lines, s.skipped) == (5, 6, 0)
    assert (s.rejected, s.rejected_lines, s.new_stores, s.new_customers) == (4, 5, 3, 2)
    assert s.line() == (
        "imported 5 receipts (6 lines), skipped 0 already imported, "
        f"rejected 4 receipts (5 lines) -> {tmp_path / 'receipts.rejects.csv'}"
    )
    got = await receipts_of(shop)
    assert sorted(got) == ["A1", "B1", "C1", "C2", "H1"]
    for g in got.values():
        assert (g.state, g.source, g.terminal, g.terminal_status) == (
            "confirmed",
            "import",
            "import",
            "disabled",
        )
        assert g.to_pay == g.amount == sum(x[5] for x in g.lines)
    a1 = got["A1"]
    assert a1.amount == Decimal("229.80")
    assert a1.lines == [
        ("100", "Молоко", "dairy", Decimal("2.000"), Decimal("89.90"), Decimal("179.80")),
        ("300", "Яблоки", "fruit", Decimal("0.500"), Decimal("99.99"), Decimal("50.00")),
    ]
    assert a1.occurred_at == datetime(2025, 3, 1, 7, 15, tzinfo=UTC)  # 10:15 in Moscow
    assert a1.store == "msk-1"
    new = await customer(shop, a1.customer_id or 0)
    assert (new.external_id, new.phone, new.registered_at) == ("EXT-1", None, a1.occurred_at)
    assert a1.account_id is not None and a1.card_id is not None
    b1 = got["B1"]
    assert (b1.store, b1.customer_id, b1.account_id, b1.amount) == (
        "import",
        None,
        None,
        Decimal("40.00"),
    )
    assert b1.occurred_at == datetime(2025, 2, 28, 21, tzinfo=UTC)  # midnight in Moscow
    assert b1.lines[0][1:5] == (
        'Хлеб "Бородинский", нарезка',
        "bakery",
        Decimal("1.000"),
        Decimal("45.00"),
    )
    c1, c2 = got["C1"], got["C2"]
    assert (c1.customer_id, c1.account_id) == (m.customer_id, m.account_id)
    assert (c2.customer_id, c2.account_id) == (m.customer_id, m.account_id)
    assert c1.occurred_at == datetime(2025, 3, 2, 7, tzinfo=UTC)
    assert c1.lines[0][3:] == (Decimal("1.000"), Decimal("150.00"), Decimal("150.00"))
    assert c2.amount == Decimal("30.00")
    h1 = got["H1"]
    assert h1.lines[0][3:] == (Decimal("0.333"), Decimal("33.34"), Decimal("11.10"))
    assert (await customer(shop, h1.customer_id or 0)).phone == "+79165551235"
    assert rejects(tmp_path / "receipts.rejects.csv") == [
        ["line", "receipt_id", "reason", *HEADER.split(",")],
        [
            "7",
            "D1",
            "another line of this receipt was refused (line 8)",
            *cells("D1,2025-03-03T09:00:00,msk-1,EXT-2,600,,,1,10.00,"),
        ],
        [
            "8",
            "D1",
            "quantity must be > 0 (returns are not imported)",
            *cells("D1,2025-03-03T09:00:00,msk-1,EXT-2,601,,,-1,10.00,"),
        ],
        [
            "9",
            "E1",
            "occurred_at '2099-01-01' is in the future",
            *cells("E1,2099-01-01,msk-1,,700,,,1,10,"),
        ],
        [
            "10",
            "F1",
            "quantity 1.2345 has more than 3 decimals",
            *cells("F1,2025-03-04T10:00:00,msk-1,+7 916 555-12-34,800,,,1.2345,10,"),
        ],
        [
            "11",
            "G1",
            "price 10.005 has more than 2 decimals and no amount is given",
            *cells("G1,2025-03-05T10:00:00,msk-1,+7 916 555-12-36,900,,,1,10.005,"),
        ],
    ]
    # refused receipts leave nothing behind: no customer EXT-2, no phone of F1 or G1
    async with shop.rt.engine.connect() as conn:
        ext = (
            await conn.execute(
                select(t.customers.c.external_id).where(
                    t.customers.c.program_id == shop.program_id,
                    t.customers.c.external_id.is_not(None),
                )
            )
        ).scalars()
        assert sorted(ext) == ["+7 916 555-12-35", "EXT-1"]
    assert await discrepancies(shop) == []


async def test_a_second_run_changes_nothing(make_shop: Any, tmp_path: Path) -> None:
    shop = await make_shop()
    m = await shop.customer(25)
    path = write(tmp_path, main_file(m))
    await run(shop, path)
    before = await counts(shop)
    first_rejects = (tmp_path / "receipts.rejects.csv").read_bytes()

    s = await run(shop, path)

    assert s.line() == (
        "imported 0 receipts (0 lines), skipped 5 already imported, "
        f"rejected 4 receipts (5 lines) -> {tmp_path / 'receipts.rejects.csv'}"
    )
    assert (s.skipped_lines, s.new_customers, s.new_stores) == (6, 0, 0)
    assert await counts(shop) == before
    assert before["amount"] == Decimal("460.90")  # 229.80 + 40 + 150 + 30 + 11.10
    assert before["lines amount"] == before["amount"]
    assert (tmp_path / "receipts.rejects.csv").read_bytes() == first_rejects
    assert await shop.balance(m) == {
        "available": "25.00",
        "pending": "0.00",
        "held": "0.00",
        "debt": "0.00",
    }


async def test_a_receipt_whose_rows_disagree_is_refused_whole(
    make_shop: Any, tmp_path: Path
) -> None:
    shop = await make_shop()
    path = write(
        tmp_path,
        HEADER + "\n"
        "R1,2025-01-10T10:00:00,s1,,1,,,1,1.00,\n"
        "R2,2025-01-10T10:00:00,s1,,1,,,1,2.00,\n"
        "R1,2025-01-10T10:00:00,s2,,2,,,1,3.00,\n",
    )

    s = await run(shop, path, rejects=tmp_path / "bad.csv")

    assert (s.imported, s.rejected, s.rejected_lines) == (1, 1, 2)
    assert [r[:3] for r in rejects(tmp_path / "bad.csv")[1:]] == [
        ["2", "R1", "another line of this receipt was refused (line 4)"],
        ["4", "R1", "store differs from line 2 of the same receipt"],
    ]
    assert sorted(await receipts_of(shop)) == ["R2"]


async def test_bom_semicolons_decimal_commas_and_a_short_header(
    make_shop: Any, tmp_path: Path
) -> None:
    shop = await make_shop()
    path = write(
        tmp_path,
        "customer;sku;quantity;amount;occurred_at;store;receipt_id\r\n"
        ";4601;1,5;123,45;2025-06-01 18:30;Магазин 1;Ч-1\r\n"
        ";4602;2;0,10;2025-06-01 18:30;Магазин 1;Ч-1\r\n",
        bom=True,
    )

    s = await run(shop, path)

    assert (s.imported, s.imported_lines, s.rejected) == (1, 2, 0)
    r = (await receipts_of(shop))["Ч-1"]
    assert r.store == "Магазин 1"
    # no price column: price = amount / quantity = 123.45 / 1.5 = 82.30; 0.10 / 2 = 0.05
    assert r.lines == [
        ("4601", "", None, Decimal("1.500"), Decimal("82.30"), Decimal("123.45")),
        ("4602", "", None, Decimal("2.000"), Decimal("0.05"), Decimal("0.10")),
    ]
    assert r.amount == Decimal("123.55")
    assert not (tmp_path / "receipts.rejects.csv").exists()


async def test_customers_by_external_id_then_identifier_then_new(
    make_shop: Any, tmp_path: Path
) -> None:
    shop = await make_shop()
    m = await shop.customer()
    async with shop.rt.engine.begin() as conn:
        known = (
            await conn.execute(
                insert(t.customers).returning(t.customers.c.id),
                {
                    "program_id": shop.program_id,
                    "external_id": "OLD-7",
                    "registered_at": shop.rt.now(),
                },
            )
        ).scalar_one()
        await create_account_and_card(
            conn,
            program_id=shop.program_id,
            customer_id=known,
            now=shop.rt.now(),
            card_number=None,
            phone=None,
        )
    path = write(
        tmp_path,
        HEADER + "\n"
        "R1,2025-01-10,s,OLD-7,1,,,1,1.00,\n"
        f"R2,2025-01-11,s,{m.phone},1,,,1,1.00,\n"
        "R3,2025-01-12,s,+7 (916) 700-00-01,1,,,1,1.00,\n"
        "R4,2025-01-13,s,89167000001,1,,,1,1.00,\n"
        "R5,2025-01-09,s,NEW-1,1,,,1,1.00,\n",
    )

    s = await run(shop, path)

    got = await receipts_of(shop)
    assert got["R1"].customer_id == known
    assert got["R2"].customer_id == m.customer_id
    # one phone written two ways in one file is one new customer, found by phone
    assert got["R3"].customer_id == got["R4"].customer_id
    assert got["R3"].customer_id not in (known, m.customer_id, got["R5"].customer_id)
    assert s.new_customers == 2
    phone_customer = await customer(shop, got["R3"].customer_id or 0)
    assert (phone_customer.external_id, phone_customer.phone) == (
        "+7 (916) 700-00-01",
        "+79167000001",
    )
    # the new customers can be found at the till like anyone else
    r = await shop.get("/customers/lookup", params={"identifier": "+79167000001"})
    assert r.status_code == 200, r.text
    assert r.json()["customer"]["id"] == got["R3"].customer_id
    assert [x["receipt_id"] for x in r.json()["last_purchases"]] == ["R4", "R3"]


async def test_a_file_without_a_required_column_is_refused(make_shop: Any, tmp_path: Path) -> None:
    shop = await make_shop()
    path = write(
        tmp_path, "receipt_id,occurred_at,store,customer,quantity,price\nR,2025-01-01,,,1,1\n"
    )

    with pytest.raises(ImportFileError, match="missing column: sku"):
        await run(shop, path)

    assert (await counts(shop))["receipts"] == 0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus' (e.g. Europe/Moscow)"),
        ({"default_store": ""}, "the default store code must be 1 to 64 characters"),
        ({"program": "no-such-program"}, "no program 'no-such-program'"),
    ],
)
async def test_bad_options_are_named(
    make_shop: Any, tmp_path: Path, kw: dict[str, str], message: str
) -> None:
    shop = await make_shop()
    path = write(tmp_path, HEADER + "\n")

    with pytest.raises(ServiceError) as e:
        await do_import_receipts(shop.rt, path, **{"program": shop.code, **kw})

    assert e.value.detail == message


async def test_tz_option_and_default_store_option(make_shop: Any, tmp_path: Path) -> None:
    shop = await make_shop()
    path = write(tmp_path, HEADER + "\nR1,2025-01-10 12:00,,,1,,,1,1.00,\n")

    await run(shop, path, tz="Asia/Yekaterinburg", default_store="old-system")

    r = (await receipts_of(shop))["R1"]
    assert (r.store, r.occurred_at) == ("old-system", datetime(2025, 1, 10, 7, tzinfo=UTC))


async def test_small_batches_and_rows_spread_over_the_file(make_shop: Any, tmp_path: Path) -> None:
    """Receipts complete in many batches; a receipt's rows far apart still make one."""
    shop = await make_shop()
    rows = [
        f"R{i % 7},2025-02-0{1 + i % 7},s{i % 7 % 2},C{i % 7 % 4},{i},,,1,{i}.00,"
        for i in range(70)
    ]
    path = write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n")

    s = await run(shop, path, batch_lines=3)

    assert (s.imported, s.imported_lines, s.rejected) == (7, 70, 0)
    got = await receipts_of(shop)
    # receipt Rk has rows i = k, k+7, ..., k+63: amount = sum(i) = 10k + 315
    assert {k: g.amount for k, g in got.items()} == {
        f"R{k}": Decimal(10 * k + 315) for k in range(7)
    }
    assert [x[0] for x in got["R3"].lines] == [str(i) for i in range(3, 70, 7)]


async def test_two_imports_of_one_file_at_once_import_it_once(
    make_shop: Any, tmp_path: Path
) -> None:
    """Both runs read the file before either writes; the import key and the customers'
    external-id key make the later batch roll back and try again, finding it done."""
    shop = await make_shop()
    m = await shop.customer()
    path = write(tmp_path, main_file(m))
    alone = await make_shop()
    await run(alone, write(tmp_path, main_file(await alone.customer()), name="alone.csv"))

    a, b = await asyncio.gather(
        run(shop, path, rejects=tmp_path / "a.csv"), run(shop, path, rejects=tmp_path / "b.csv")
    )

    assert a.imported + b.imported == 5
    assert a.skipped + b.skipped == 5
    mine, theirs = await counts(shop), await counts(alone)
    assert mine["receipts"] == theirs["receipts"] == 5
    assert (mine["receipt_lines"], mine["amount"]) == (6, Decimal("460.90"))
    assert mine["customers"] == theirs["customers"] == 3  # the member, EXT-1, H1's phone


async def test_rows_read_in_a_thread_arrive_in_order_and_errors_reach_the_caller() -> None:
    def numbers() -> Iterator[int]:
        yield from range(5)
        raise ValueError("line 6: broken")

    got: list[int] = []
    with pytest.raises(ValueError, match="line 6: broken"):
        async for x in in_thread(numbers()):
            got.append(x)

    assert got == [0, 1, 2, 3, 4]


async def test_leaving_early_stops_the_reading_thread() -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    async for x in in_thread(endless(), depth=2):
        if x == 3:
            break

    await asyncio.sleep(0.3)
    assert len(produced) <= 3 + 2 + 2  # what was read ahead, never more


async def test_line_numbers_count_quoted_line_breaks_and_blank_lines(
    make_shop: Any, tmp_path: Path
) -> None:
    shop = await make_shop()
    path = write(
        tmp_path,
        "receipt_id,occurred_at,store,customer,sku,name,quantity,price\n"  # 1
        "\n"  # 2
        'R1,2025-01-01,s,,1,"two\nlines",1,1.00\n'  # 3-4
        "\n"  # 5
        "R2,2025-01-01,s,,1,x,-1,1.00\n"  # 6
        "R3,2025-01-01,s,,1,x,1,1.00,,\n"  # 7: a trailing delimiter is harmless
        "R4,2025-01-01,s,,1,x,1,1.00,,9\n",  # 8: an extra value is not
    )

    s = await run(shop, path)

    assert (s.imported, s.rejected) == (2, 2)
    assert [r[:3] for r in rejects(tmp_path / "receipts.rejects.csv")[1:]] == [
        ["6", "R2", "quantity must be > 0 (returns are not imported)"],
        ["8", "R4", "10 fields where the header has 8"],
    ]
    assert (await receipts_of(shop))["R1"].lines[0][1] == "two\nlines"


async def test_a_file_that_is_not_utf8_names_its_first_bad_line(
    make_shop: Any, tmp_path: Path
) -> None:
    shop = await make_shop()
    path = tmp_path / "cp1251.csv"
    path.write_bytes(
        b"receipt_id,occurred_at,store,customer,sku,name,quantity,price\r\n"
        + "R1,2025-01-01,s,,1,Молоко,1,1.00\r\n".encode("cp1251")
    )

    with pytest.raises(ImportFileError) as e:
        await run(shop, path)

    assert str(e.value) == "the file is not UTF-8 text (line 2): save it as CSV in UTF-8"


async def test_a_header_alone_imports_nothing_and_refuses_nothing(
    make_shop: Any, tmp_path: Path
) -> None:
    shop = await make_shop()

    s = await run(shop, write(tmp_path, HEADER + "\n"))

    assert s.line() == (
        "imported 0 receipts (0 lines), skipped 0 already imported, rejected 0 receipts (0 lines)"
    )


async def test_an_old_id_of_a_merged_duplicate_buys_as_the_customer_who_absorbed_it(
    make_shop: Any, tmp_path: Path
) -> None:
    shop = await make_shop()
    m = await shop.customer()
    async with shop.rt.engine.begin() as conn:
        await conn.execute(
            insert(t.customers),
            {
                "program_id": shop.program_id,
                "external_id": "OLD-9",
                "registered_at": shop.rt.now(),
                "status": "merged",
                "merged_into_id": m.customer_id,
            },
        )

    await run(shop, write(tmp_path, HEADER + "\nR1,2025-01-10,s,OLD-9,1,,,1,1.00,\n"))

    r = (await receipts_of(shop))["R1"]
    assert (r.customer_id, r.account_id) == (m.customer_id, m.account_id)


async def test_imported_days_reach_the_reports_summary_tables_at_once(
    make_shop: Any, tmp_path: Path
) -> None:
    from kopilka.analytics import facts

    shop = await make_shop()
    # the worker has run: this program's tables are built and there is a watermark (as
    # tests/web/test_reports_summary.py does; a whole refresh would aggregate every other
    # test's program in the session's database: ~10 s in the full run)
    await facts.rebuild(shop.rt, program_ids=[shop.program_id])
    await facts.set_watermark(shop.rt, shop.rt.now())
    path = write(
        tmp_path,
        f"""{HEADER}
h-1,2024-03-05T10:00:00,,,tea,,,2,50.00,
h-2,2024-03-05T23:30:00,,,tea,,,1,,70.00
h-3,2024-03-06,,,tea,,,1,,30.00
""",
    )

    await run(shop, path)  # times without an offset: Moscow, the program's zone
    sd = t.sales_daily
    async with shop.rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(sd.c.day, func.sum(sd.c.receipts), func.sum(sd.c.to_pay))
                .where(sd.c.program_id == shop.program_id)
                .group_by(sd.c.day)
                .order_by(sd.c.day)
            )
        ).all()

    assert [(str(d), int(n), Decimal(v)) for d, n, v in rows] == [
        ("2024-03-05", 2, Decimal("170.00")),  # 2 × 50 + 70
        ("2024-03-06", 1, Decimal("30.00")),
    ]
