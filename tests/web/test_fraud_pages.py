"""The fraud pages in both languages (in-process, no browser): the queue with filters and
exports, an alert with its evidence and the officer's actions (post/redirect/get, the
refusal shown at the field), the thresholds form; who may see and who may act."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kopilka.services import fraud, users
from tests.conftest import Shop, receipt
from tests.web.conftest import MakeUser


async def session(
    shop: Shop, make_user: MakeUser, role: str, locale: str = "en"
) -> tuple[dict[str, str], str]:
    who = await make_user(role, shop, locale=locale, name=f"{role} person")
    token, s = await users.login(shop.rt, who.login, who.password, ip="127.0.0.1", user_agent="t")
    return {"Cookie": f"kopilka_session={token}"}, s.csrf_token


async def _alert(shop: Shop) -> tuple[int, str]:
    card = await shop.customer()
    for i in range(5):
        r = await shop.post(
            "/purchases", receipt(f"c{i}", card.card, ("a", 1, "100.00"), cashier_id="k-1")
        )
        assert r.status_code == 200, r.text
    await fraud.scan(shop.rt, program_id=shop.program_id)
    async with shop.rt.engine.connect() as conn:
        from sqlalchemy import select

        from kopilka.store import tables as t

        aid = (
            await conn.execute(
                select(t.fraud_alerts.c.id).where(t.fraud_alerts.c.program_id == shop.program_id)
            )
        ).scalar_one()
    return int(aid), card.card


@pytest.mark.parametrize("locale", ["en", "ru"])
async def test_every_fraud_page_renders(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any, locale: str
) -> None:
    shop = await make_shop()
    aid, card = await _alert(shop)
    h, _ = await session(shop, make_user, "security", locale)

    pages = {
        url: await client.get(url, headers=h)
        for url in (
            "/admin/fraud",
            "/admin/fraud?rule=cashier_card&state=open",
            "/admin/fraud?state=resolved",
            "/admin/fraud?rule=bogus",
            f"/admin/fraud/{aid}",
            "/admin/fraud/settings",
        )
    }
    csv = await client.get("/admin/fraud/export?format=csv", headers=h)
    xlsx = await client.get("/admin/fraud/export?format=xlsx&rule=cashier_card", headers=h)

    assert {u: r.status_code for u, r in pages.items()} == {u: 200 for u in pages}
    queue = pages["/admin/fraud"].text
    title = (
        "Одна карта на многих чеках одного кассира"
        if locale == "ru"
        else ("One card on many receipts of one cashier")
    )
    assert title in queue and card in queue
    assert card not in pages["/admin/fraud?state=resolved"].text
    detail = pages[f"/admin/fraud/{aid}"].text
    assert all(f">c{i}<" in detail for i in range(5))
    assert ("Заблокировать карту" in detail) == (locale == "ru")
    found = (
        "чеков этой карты у кассира k-1: 5"
        if locale == "ru"
        else f"card {card}: 5 receipts by cashier k-1 within 24 h"
    )
    assert f'data-testid="found">{found}<' in detail
    assert csv.status_code == 200 and card in csv.content.decode("utf-8-sig")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


async def test_the_officer_acts_from_the_alert_page(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    aid, card = await _alert(shop)
    h, csrf = await session(shop, make_user, "security")
    url = f"/admin/fraud/{aid}"

    forged = await client.post(f"{url}/assign", data={}, headers=h)
    took = await client.post(f"{url}/assign", data={"csrf": csrf}, headers=h)
    short = await client.post(f"{url}/block", data={"csrf": csrf, "reason": "x"}, headers=h)
    blocked = await client.post(
        f"{url}/block", data={"csrf": csrf, "reason": "own card"}, headers=h
    )
    no_note = await client.post(f"{url}/resolve", data={"csrf": csrf, "note": ""}, headers=h)
    done = await client.post(f"{url}/resolve", data={"csrf": csrf, "note": "talked"}, headers=h)
    page = (await client.get(url, headers=h)).text
    till = await shop.post("/purchases", receipt("late", card, ("a", 1, "1.00")))

    assert forged.status_code == 403
    assert took.status_code == 303 and took.headers["location"] == url
    assert short.status_code == 422 and "at least 3 characters" in short.text
    assert 'aria-invalid="true"' in short.text
    assert blocked.status_code == 303
    assert no_note.status_code == 422 and "at least 3 characters" in no_note.text
    assert done.status_code == 303
    assert 'data-testid="state">Resolved<' in page and "talked" in page
    assert till.json()["code"] == "card_blocked"


async def test_support_sees_no_queue_and_an_analyst_cannot_act(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    aid, _ = await _alert(shop)
    support, _ = await session(shop, make_user, "support")
    owner, _ = await session(shop, make_user, "owner")
    marketer, mcsrf = await session(shop, make_user, "marketer")

    hidden = await client.get("/admin/fraud", headers=support)
    refused = await client.post(
        f"/admin/fraud/{aid}/assign", data={"csrf": mcsrf}, headers=marketer
    )
    owner_ok = await client.get(f"/admin/fraud/{aid}", headers=owner)

    assert hidden.status_code == 403
    assert refused.status_code == 403
    assert owner_ok.status_code == 200 and "Assign to me" in owner_ok.text


async def test_thresholds_form_keeps_what_was_typed_and_names_the_field(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    h, csrf = await session(shop, make_user, "security", "ru")
    form = {
        "csrf": csrf,
        "cashier_card_receipts": "7",
        "refund_days": "400",
        "on": ["cashier_card"],
    }

    bad = await client.post("/admin/fraud/settings", data=form, headers=h)
    ok = await client.post("/admin/fraud/settings", data={**form, "refund_days": "5"}, headers=h)
    saved = await fraud.load_settings(shop.rt, shop.program_id)

    assert bad.status_code == 422
    assert 'value="400"' in bad.text and 'value="7"' in bad.text
    assert "целое число дней от 1 до 365" in bad.text
    assert ok.status_code == 303
    assert (saved.cashier_card_receipts, saved.refund_days) == (7, 5)
    assert "terminal_burst" in saved.disabled and "cashier_card" not in saved.disabled


def _row(rule: str, subject_type: str = "card", label: str = "x") -> Any:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 1, tzinfo=UTC)
    return fraud.AlertRow(
        1, rule, "medium", subject_type, "1", label, None, None, None, None, "en", "open",
        None, now, now, 0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "subject", "evidence", "text"),
    [
        (
            "earn_then_burn",
            "card",
            [
                {"kind": "receipt", "role": "earned", "points_earned": "100.00", "at": "a"},
                {"kind": "receipt", "role": "earned", "points_earned": "50.00", "at": "b"},
                {"kind": "receipt", "role": "burned", "points_redeemed": "150.00", "at": "c"},
            ],
            "начислено 150.00 баллов по 2 чекам на одной кассе, списано 150.00",
        ),
        (
            "refund_after_burn",
            "card",
            [{"kind": "receipt"}, {"kind": "refund"}, {"kind": "receipt"}, {"kind": "refund"}],
            "возвратов чеков, оплаченных баллами: 2",
        ),
        ("phone_cards", "customer", [{"kind": "card"}] * 4, "карт на один телефон: 4"),
        (
            "phone_cards",
            "device",
            [{"kind": "customer"}] * 5,
            "клиентов, зарегистрированных с одного устройства: 5",
        ),
        (
            "terminal_burst",
            "terminal",
            [
                {"kind": "receipt", "at": "2026-12-01T10:00:00+00:00"},
                {"kind": "receipt", "at": "2026-12-01T10:07:30+00:00"},
            ],
            "чеков с картой на кассе: 2 за 8 мин",
        ),
        (
            "big_adjustment",
            "user",
            [{"kind": "adjustment", "amount": "5000.00"}],
            "x: ручные корректировки на 5000.00 баллов",
        ),
        (
            "pin_guessing",
            "gift_card",
            [{"kind": "pin_failures", "failures": 3}, {"kind": "pin_failures", "failures": 7}],
            "неверных PIN за час: 7",
        ),
    ],
)
def test_what_was_found_in_russian(
    rule: str, subject: str, evidence: list[dict[str, Any]], text: str
) -> None:
    from kopilka.web.fraud import describe_ru

    assert describe_ru(_row(rule, subject), evidence) == text


async def test_the_reports_index_links_the_queue_for_those_who_may_see_it(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any
) -> None:
    shop = await make_shop()
    security, _ = await session(shop, make_user, "security")
    analyst, _ = await session(shop, make_user, "analyst")

    seen = (await client.get("/admin/reports", headers=security)).text
    unseen = (await client.get("/admin/reports", headers=analyst)).text

    link = '<li><a href="/admin/fraud"><strong>Fraud alerts</strong></a>'
    assert link in seen
    assert 'href="/admin/fraud"' not in unseen  # neither in the list nor in the menu
