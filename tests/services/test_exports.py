"""Exports (CSV, XLSX) and the console's queries of coupons, gift cards, draws and rewards
on both databases: what the files say matches the database, states and counts are
right, blocking is audited in the same transaction."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from kopilka.services import coupons, draws, exports, giftcards, rewards
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.store import tables as t
from tests.conftest import Clock, Shop

D = Decimal
MARKETER = Actor("user", 1, "Mary Marketer", "marketer")
ANALYST = Actor("user", 2, "Ann Analyst", "analyst")


async def rows_of(gen: Any) -> list[Any]:
    return [r async for r in gen]


def table(rows: list[Any]) -> exports.Table:
    async def gen() -> Any:
        for r in rows:
            yield r

    return exports.Table("Test", ("text", "amount", "at", "n"), gen())


async def test_csv_writes_amounts_as_text_and_defuses_formulas() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    rows = [("=HYPERLINK(1)", D("1234.50"), at, 7), ("Анна", D("-0.10"), None, None)]

    data = await exports.csv_bytes(table(rows))

    text = data.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [
        ["text", "amount", "at", "n"],
        ["'=HYPERLINK(1)", "1234.50", "2026-03-01T09:30:00Z", "7"],
        ["Анна", "-0.10", "", ""],
    ]


async def test_xlsx_has_numeric_money_cells_with_a_number_format_and_no_formulas() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    rows = [("=1+1", D("1234.50"), at, 7), ("plain", D("0.07"), None, None)]

    data = await exports.xlsx_bytes(table(rows))

    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws.title == "Test"
    got = [[c.value for c in r] for r in ws.iter_rows()]
    assert got == [
        ["text", "amount", "at", "n"],
        ["=1+1", 1234.5, datetime(2026, 3, 1, 9, 30), 7],
        ["plain", 0.07, None, None],
    ]
    assert ws["A2"].data_type == "s"
    assert ws["B2"].number_format == exports.MONEY_FORMAT
    # The file carries the decimal text itself, never a binary float's expansion.
    import zipfile

    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<v>1234.50</v>" in sheet and "<v>0.07</v>" in sheet


async def test_chunked_reads_every_row_once_by_key() -> None:
    data = list(range(1, 12))
    calls: list[Any] = []

    async def fetch(after: int | None, size: int) -> list[tuple[int]]:
        calls.append(after)
        return [(x,) for x in data if after is None or x > after][:size]

    got = await rows_of(exports.chunked(fetch, key=lambda r: r[0], size=4))

    assert [r[0] for r in got] == data
    assert calls == [None, 4, 8]


async def series(shop: Shop, n: int = 5, **kw: Any) -> str:
    code = f"S{secrets.token_hex(3).upper()}"
    await coupons.do_create_series(
        shop.rt, program_code=shop.code, code=code, name="Spring", count=n, actor=MARKETER, **kw
    )
    return code


async def test_coupon_codes_export_matches_the_database_in_both_formats(make_shop: Any) -> None:
    shop = await make_shop()
    code = await series(shop, 2500)  # more than one chunk
    found = await coupons.series_by_code(shop.rt, program_id=shop.program_id, code=code)
    async with shop.rt.engine.connect() as conn:
        stored = set(
            (
                await conn.execute(
                    select(t.coupons.c.code).where(t.coupons.c.series_id == found.id)
                )
            ).scalars()
        )

    csv_data = await exports.csv_bytes(
        coupons.codes_table(shop.rt, program_id=shop.program_id, series=found)
    )
    xlsx_data = await exports.xlsx_bytes(
        coupons.codes_table(shop.rt, program_id=shop.program_id, series=found)
    )

    csv_rows = list(csv.reader(io.StringIO(csv_data.decode("utf-8-sig"))))
    assert csv_rows[0] == list(
        (
            "code",
            "series",
            "state",
            "uses",
            "max_uses",
            "customer_id",
            "created_at",
        )
    )
    assert {r[0].replace("-", "") for r in csv_rows[1:]} == stored
    assert {r[2] for r in csv_rows[1:]} == {"active"}
    ws = openpyxl.load_workbook(io.BytesIO(xlsx_data)).active
    xlsx_codes = [r[0].value for r in ws.iter_rows(min_row=2)]
    assert len(xlsx_codes) == 2500
    assert {c.replace("-", "") for c in xlsx_codes} == stored


async def test_series_counts_by_state_and_blocking_is_audited(make_shop: Any, clock: Clock) -> None:
    shop = await make_shop()
    now = shop.rt.now()
    code = await series(shop, 4, valid_until=now + timedelta(days=1))
    codes, total = await coupons.list_codes(shop.rt, program_id=shop.program_id, series=code)
    assert total == 4

    blocked = await coupons.do_set_coupon_status(
        shop.rt, MARKETER, program_id=shop.program_id, code=codes[0].code, blocked=True
    )
    again = await coupons.do_set_coupon_status(
        shop.rt, MARKETER, program_id=shop.program_id, code=codes[0].code, blocked=True
    )

    assert blocked.state == again.state == "blocked"
    s = await coupons.series_by_code(shop.rt, program_id=shop.program_id, code=code)
    assert (s.issued, s.used, s.expired, s.blocked, s.active) == (4, 0, 0, 1, 3)
    only, n = await coupons.list_codes(
        shop.rt, program_id=shop.program_id, series=code, state="blocked"
    )
    assert (n, [x.code for x in only]) == (1, [codes[0].code])
    async with shop.rt.engine.connect() as conn:
        audit = (
            await conn.execute(
                select(t.audit_log.c.action, t.audit_log.c.actor_name, t.audit_log.c.object_id)
                .where(t.audit_log.c.program_id == shop.program_id)
                .order_by(t.audit_log.c.id)
            )
        ).all()
    assert [tuple(a) for a in audit] == [
        ("coupon_series.create", "Mary Marketer", code),
        ("coupon.block", "Mary Marketer", codes[0].code.replace("-", "")),
    ]

    changed = await coupons.do_set_series_status(
        shop.rt, MARKETER, program_id=shop.program_id, series=code, blocked=True
    )
    assert changed == 3
    clock.set(now + timedelta(days=2))
    s = await coupons.series_by_code(shop.rt, program_id=shop.program_id, code=code)
    assert (s.blocked, s.expired) == (4, 0)  # blocked comes before expired


async def test_a_read_only_role_cannot_block(make_shop: Any) -> None:
    shop = await make_shop()
    code = await series(shop, 1)
    codes, _ = await coupons.list_codes(shop.rt, program_id=shop.program_id, series=code)

    with pytest.raises(ServiceError) as err:
        await coupons.do_set_coupon_status(
            shop.rt, ANALYST, program_id=shop.program_id, code=codes[0].code, blocked=True
        )

    assert (err.value.code, err.value.status) == ("forbidden", 403)


async def test_gift_cards_list_block_unblock_and_export(make_shop: Any) -> None:
    shop = await make_shop()
    cards = await giftcards.do_create_series(
        shop.rt, shop.code, code="GC1", name="Gift", nominal=D("500.00"), count=3, actor=MARKETER
    )
    term = await shop.rt.terminal_by_key(shop.key)
    assert term is not None
    await giftcards.do_activate(shop.rt, term, cards[0][0])

    listed, total = await giftcards.list_gift_series(shop.rt, program_id=shop.program_id)
    assert total == 1
    assert (listed[0].cards, listed[0].by_state, listed[0].outstanding) == (
        3,
        {"active": 1, "issued": 2},
        D("500.00"),
    )
    await giftcards.do_block(shop.rt, shop.code, cards[0][0], actor=MARKETER, reason="lost")
    rows, n = await giftcards.list_cards(shop.rt, program_id=shop.program_id, state="blocked")
    assert (n, rows[0].number, rows[0].balance) == (1, cards[0][0], D("500.00"))
    back = await giftcards.do_unblock(
        shop.rt, shop.code, cards[0][0], actor=MARKETER, reason="found"
    )
    assert back["state"] == "active"
    card, moves = await giftcards.card_detail(
        shop.rt, program_id=shop.program_id, number=cards[0][0]
    )
    assert card.state == "active"
    assert [m.kind for m in moves] == ["unblock", "block", "activate"]
    assert await giftcards.verify_cards(shop.rt, program_id=shop.program_id) == []

    data = await exports.xlsx_bytes(giftcards.cards_table(shop.rt, program_id=shop.program_id))
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    got = {r[0].value: (r[2].value, r[4].value) for r in ws.iter_rows(min_row=2)}
    assert got == {
        cards[0][0]: ("active", 500),
        cards[1][0]: ("issued", 0),
        cards[2][0]: ("issued", 0),
    }
    async with shop.rt.engine.connect() as conn:
        actions = (
            (
                await conn.execute(
                    select(t.audit_log.c.action)
                    .where(t.audit_log.c.program_id == shop.program_id)
                    .order_by(t.audit_log.c.id)
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["gift_card_series.create", "gift_card.block", "gift_card.unblock"]


async def test_draws_and_reward_orders_are_listed_in_pages(make_shop: Any) -> None:
    shop = await make_shop()
    now = shop.rt.now()
    await draws.do_create_draw(
        shop.rt,
        program_code=shop.code,
        code="D1",
        name="March",
        period_start=now - timedelta(days=1),
        period_end=now + timedelta(days=1),
        rules={"prizes": [{"count": 1, "points": "100"}]},
        actor=MARKETER,
    )
    listed, total = await draws.list_draws(shop.rt, program_id=shop.program_id)
    assert (total, listed[0].code, listed[0].state, listed[0].members) == (1, "D1", "open", 0)

    await rewards.do_add_reward(
        shop.rt,
        program_id=shop.program_id,
        code="MUG",
        name="Mug",
        price_points=D("50"),
        stock=2,
        actor=MARKETER,
    )
    member = await shop.customer(200, first_name="Olga", last_name="Petrova")
    made = await rewards.do_order(
        shop.rt,
        program_id=shop.program_id,
        account_id=member.account_id,
        reward_code="MUG",
        idempotency_key=f"k-{secrets.token_hex(3)}",
    )
    page, n = await rewards.list_orders(shop.rt, program_id=shop.program_id, state="ordered")
    assert (n, page[0].order.id, page[0].first_name) == (1, made.id, "Olga")

    issued = await rewards.do_issue(shop.rt, made.id, actor=MARKETER)

    assert issued.state == "issued"
    items, _ = await rewards.list_rewards_page(shop.rt, program_id=shop.program_id)
    assert [(r.reward.code, r.reward.stock, r.orders) for r in items] == [("MUG", 1, 1)]
    async with shop.rt.engine.connect() as conn:
        last = (
            await conn.execute(
                select(t.audit_log.c.action, t.audit_log.c.object_id, t.audit_log.c.after)
                .where(t.audit_log.c.program_id == shop.program_id)
                .order_by(t.audit_log.c.id.desc())
                .limit(1)
            )
        ).one()
    assert (last.action, last.object_id) == ("reward_order.issue", str(made.id))
    assert '"state":"issued"' in last.after


def test_a_russian_file_name_downloads_under_its_own_name() -> None:
    headers = exports.attachment("Сводка 2026-11", "xlsx")

    value = headers["Content-Disposition"]
    value.encode("latin-1")  # a header that cannot be sent would fail here (it used to)
    assert value == (
        'attachment; filename="_______2026-11.xlsx"; '
        "filename*=UTF-8''%D0%A1%D0%B2%D0%BE%D0%B4%D0%BA%D0%B0%202026-11.xlsx"
    )
