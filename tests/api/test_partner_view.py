"""A partner's view and a partner's system (issue 9), through the real app on both
databases: receipts at its stores with customers masked, the promotions restricted to
it, points for its own events funded by it, and console users granted several programs."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from kopilka.analytics import facts
from kopilka.domain.roles import Role
from kopilka.services import admin, users
from kopilka.services.audit import CLI
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.api.access_world import _second_partner
from tests.conftest import Shop, new_shop, receipt

API = "/api/admin/v1"


async def _confirmed(shop: Shop, key: str, rid: str, card: str, amount: str) -> None:
    h = {"Authorization": f"Bearer {key}"}
    body = receipt(rid, card, ("sku", 1, amount))
    assert (
        await shop.client.post("/api/pos/v1/purchases/calculate", json=body, headers=h)
    ).status_code == 200
    assert (
        await shop.client.post(f"/api/pos/v1/purchases/{rid}/confirm", headers=h)
    ).status_code == 200


async def _token(rt: Runtime, shop: Shop, role: Role, **scope: Any) -> dict[str, str]:
    key = await admin.do_add_token(
        rt,
        name=f"{role.value}-{secrets.token_hex(3)}",
        program_code=shop.code,
        role=role.value,
        **scope,
    )
    return {"Authorization": f"Bearer {key}"}


async def test_a_partner_sees_receipts_at_its_stores_with_customers_masked(
    rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await new_shop(rt, client)
    _, b_code, _, _, _, b_key = await _second_partner(rt, shop, "B")
    anna = await shop.customer(first_name="Анна", last_name="Смирнова")
    await _confirmed(shop, shop.key, "a-1", anna.card, "300.00")
    await _confirmed(shop, b_key, "b-1", anna.card, "700.00")
    partner = await _token(rt, shop, Role.PARTNER, partner_code="main")
    partner_b = await _token(rt, shop, Role.PARTNER, partner_code=b_code)
    support = await _token(rt, shop, Role.SUPPORT)

    mine = await client.get(f"{API}/programs/{shop.code}/receipts", headers=partner)
    theirs = await client.get(f"{API}/programs/{shop.code}/receipts", headers=partner_b)
    everyone = await client.get(f"{API}/programs/{shop.code}/receipts", headers=support)

    assert mine.status_code == 200, mine.text
    assert [(x["receipt_id"], x["amount"]) for x in mine.json()["items"]] == [("a-1", "300.00")]
    customer = mine.json()["items"][0]["customer"]
    phone_tail = anna.phone[-2:]
    assert customer == {
        "id": anna.customer_id,
        "name": "А. С.",
        "phone": f"+7 9** ***-**-{phone_tail}",
        "card": "*********" + anna.card[-4:],
    }
    assert (
        "Смирнова" not in mine.text and anna.phone not in mine.text and anna.card not in mine.text
    )
    assert [x["receipt_id"] for x in theirs.json()["items"]] == ["b-1"]
    # a role with customers.read sees the program's receipts, the customer unmasked
    assert everyone.json()["total"] == 2
    assert {x["customer"]["name"] for x in everyone.json()["items"]} == {"Анна Смирнова"}
    assert {x["customer"]["phone"] for x in everyone.json()["items"]} == {anna.phone}


async def test_a_partner_sees_the_promotions_restricted_to_it(
    rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await new_shop(rt, client)
    _, b_code, _, _, _, _ = await _second_partner(rt, shop, "B")
    owner = await _token(rt, shop, Role.OWNER)
    doc = {
        "code": shop.code,
        "name": "Coalition",
        "points": {"earn_percent": 5},
        "promotions": [
            {
                "id": "everyone",
                "name": "All",
                "effects": [{"kind": "earn_multiplier", "factor": 2}],
            },
            {
                "id": "main-only",
                "name": "Main's",
                "when": {"partner": ["main"]},
                "effects": [{"kind": "earn_multiplier", "factor": 3}],
            },
            {
                "id": "both",
                "name": "Both",
                "when": {"partner": ["main", b_code]},
                "effects": [{"kind": "earn_multiplier", "factor": 2}],
            },
        ],
    }
    assert (
        await client.put(f"{API}/programs/{shop.code}", json=doc, headers=owner)
    ).status_code in (
        200,
        201,
    )
    partner = await _token(rt, shop, Role.PARTNER, partner_code="main")

    mine = await client.get(f"{API}/programs/{shop.code}/partner/promotions", headers=partner)
    all_ = await client.get(f"{API}/programs/{shop.code}/partner/promotions", headers=owner)

    assert [(p["id"], p["partners"]) for p in mine.json()["promotions"]] == [
        ("main-only", ["main"]),
        ("both", ["main"]),  # not the other partner's code
    ]
    assert [(p["id"], p["partners"]) for p in all_.json()["promotions"]] == [
        ("main-only", ["main"]),
        ("both", ["main", b_code]),
    ]


async def test_a_partner_key_awards_points_it_funds_in_its_own_program_only(
    rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await new_shop(rt, client)
    other = await new_shop(rt, client)
    _, b_code, _, _, _, _ = await _second_partner(rt, shop, "B")
    member = await shop.customer()
    stranger = await other.customer()
    bank = await _token(rt, shop, Role.PARTNER, partner_code="main")
    cashier_store = {"store_code": shop.store_code}
    cashier = await _token(rt, shop, Role.CASHIER, **cashier_store)

    def event(key: str, **kw: Any) -> dict[str, Any]:
        return {
            "program": shop.code,
            "customer": {"card": member.card},
            "activity": "partner_event",
            "points": "15.00",
            "idempotency_key": key,
            **kw,
        }

    first = await client.post(f"{API}/events", json=event("card-spend-1"), headers=bank)
    again = await client.post(f"{API}/events", json=event("card-spend-1"), headers=bank)
    named = await client.post(
        f"{API}/events", json=event("card-spend-2", partner="main"), headers=bank
    )
    for_b = await client.post(
        f"{API}/events", json=event("card-spend-3", partner=b_code), headers=bank
    )
    elsewhere = await client.post(
        f"{API}/events",
        json=event("card-spend-4", program=other.code, customer={"card": stranger.card}),
        headers=bank,
    )
    by_cashier = await client.post(f"{API}/events", json=event("card-spend-5"), headers=cashier)

    assert (first.status_code, first.json()["points"]) == (200, "15.00")
    assert again.json() == first.json()  # idempotent: the first answer, nothing twice
    assert named.status_code == 200
    assert (for_b.status_code, for_b.json()["code"], for_b.json()["field"]) == (
        403,
        "forbidden",
        "partner",
    )
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden")
    assert (by_cashier.status_code, by_cashier.json()["code"]) == (403, "forbidden")
    async with rt.engine.connect() as conn:
        entries = (
            await conn.execute(
                select(t.ledger_entries.c.amount, t.ledger_entries.c.funding_partner_id).where(
                    t.ledger_entries.c.account_id == member.account_id,
                    t.ledger_entries.c.kind != "hold",
                    t.ledger_entries.c.amount > 0,
                )
            )
        ).all()
    assert sorted((Decimal(a), p) for a, p in entries) == [
        (Decimal("15.00"), shop.partner_id),
        (Decimal("15.00"), shop.partner_id),
    ]
    assert (await shop.balance(member))["available"] == "30.00"


async def test_a_user_granted_two_programs_works_in_the_one_it_shows(
    rt: Runtime, client: httpx.AsyncClient
) -> None:
    one = await new_shop(rt, client)
    two = await new_shop(rt, client)
    third = await new_shop(rt, client)
    owner = {"Authorization": f"Bearer {await admin.do_add_token(rt, name='root')}"}
    limited_owner = await _token(rt, one, Role.OWNER)
    login, password = f"multi-{secrets.token_hex(3)}", "pw-" + secrets.token_hex(8)
    uid = await users.do_create_user(
        rt,
        CLI,
        login=login,
        name="Multi",
        password=password,
        role="analyst",
        program_id=one.program_id,
    )
    partner_uid = await users.do_create_user(
        rt,
        CLI,
        login=f"p-{secrets.token_hex(3)}",
        name="P",
        password=password,
        role="partner",
        program_id=one.program_id,
        partner_id=one.partner_id,
    )

    granted = await client.put(
        f"{API}/users/{uid}/programs", json={"programs": [two.code]}, headers=owner
    )
    by_limited = await client.put(
        f"{API}/users/{uid}/programs", json={"programs": [two.code]}, headers=limited_owner
    )
    to_partner = await client.put(
        f"{API}/users/{partner_uid}/programs", json={"programs": [two.code]}, headers=owner
    )
    unknown = await client.put(
        f"{API}/users/{uid}/programs", json={"programs": ["nope"]}, headers=owner
    )

    assert granted.status_code == 200, granted.text
    assert sorted(granted.json()["programs"]) == sorted([one.code, two.code])
    assert (by_limited.status_code, by_limited.json()["code"]) == (403, "forbidden")
    assert (to_partner.status_code, to_partner.json()["field"]) == (422, "programs")
    assert (unknown.status_code, unknown.json()["field"]) == (422, "programs.0")

    # the console: the switcher offers the two programs, never the third; each page
    # works within the program it shows
    token, session = await users.login(rt, login, password, ip="127.0.0.1", user_agent="t")
    client.cookies.clear()
    client.cookies.set("kopilka_session", token)
    home = await client.get("/admin/stores")
    switched = await client.post(
        "/admin/program", data={"program": two.code}, headers={"X-CSRF-Token": session.csrf_token}
    )
    after = await client.get("/admin/stores")
    refused = await client.post(
        "/admin/program", data={"program": third.code}, headers={"X-CSRF-Token": session.csrf_token}
    )
    still = await client.get("/admin/stores")
    client.cookies.clear()

    assert home.status_code == 200
    assert f'value="{one.code}"' in home.text and f'value="{two.code}"' in home.text
    assert f'value="{third.code}"' not in home.text
    assert one.store_code in home.text and two.store_code not in home.text
    assert switched.status_code == 303
    assert two.store_code in after.text and one.store_code not in after.text
    assert refused.status_code in (303, 403)
    assert two.store_code in still.text and third.store_code not in still.text


async def test_an_owner_of_every_program_grants_programs_in_the_console(
    rt: Runtime, client: httpx.AsyncClient
) -> None:
    one = await new_shop(rt, client)
    two = await new_shop(rt, client)
    password = "pw-" + secrets.token_hex(8)
    root = f"root-{secrets.token_hex(3)}"
    await users.do_create_user(rt, CLI, login=root, name="Root", password=password, role="owner")
    uid = await users.do_create_user(
        rt,
        CLI,
        login=f"m-{secrets.token_hex(3)}",
        name="M",
        password=password,
        role="marketer",
        program_id=one.program_id,
    )
    token, session = await users.login(rt, root, password, ip="127.0.0.1", user_agent="t")
    client.cookies.clear()
    client.cookies.set("kopilka_session", token)

    page = await client.get(f"/admin/users/{uid}")
    saved = await client.post(
        f"/admin/users/{uid}/programs",
        data={"program": [str(two.program_id)]},
        headers={"X-CSRF-Token": session.csrf_token},
    )
    client.cookies.clear()

    assert page.status_code == 200 and 'id="grants"' in page.text
    assert saved.status_code == 303
    user = await users.get_user(rt, uid)
    assert await users.granted_programs(rt, user) == {one.program_id, two.program_id}


async def test_a_partners_summary_counts_only_its_stores(
    rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await new_shop(rt, client)
    _, b_code, _, _, _, b_key = await _second_partner(rt, shop, "B")
    anna = await shop.customer()
    await _confirmed(shop, shop.key, "a-1", anna.card, "300.00")
    await _confirmed(shop, b_key, "b-1", anna.card, "700.00")
    await facts.rebuild(rt, program_ids=[shop.program_id])
    today = rt.now().date()  # the local date may be the next one: a three-day period
    q = {
        "program": shop.code,
        "from": (today - timedelta(days=1)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
    }
    partner = await _token(rt, shop, Role.PARTNER, partner_code="main")
    partner_b = await _token(rt, shop, Role.PARTNER, partner_code=b_code)
    owner = await _token(rt, shop, Role.OWNER)

    sales = {}
    for who, h in (("a", partner), ("b", partner_b), ("owner", owner)):
        r = await client.get(f"{API}/reports/summary", params=q, headers=h)
        assert r.status_code == 200, r.text
        sales[who] = r.json()["kpis"]["sales"]["value"]

    assert sales == {"a": "300.00", "b": "700.00", "owner": "1000.00"}


async def test_a_partners_home_page_counts_its_stores_receipts_only(
    rt: Runtime, client: httpx.AsyncClient
) -> None:
    shop = await new_shop(rt, client)
    _, _, _, _, _, b_key = await _second_partner(rt, shop, "B")
    anna = await shop.customer()
    await _confirmed(shop, shop.key, "a-1", anna.card, "100.00")
    await _confirmed(shop, b_key, "b-1", anna.card, "100.00")
    await _confirmed(shop, b_key, "b-2", anna.card, "100.00")
    password = "pw-" + secrets.token_hex(8)
    login = f"p-{secrets.token_hex(3)}"
    await users.do_create_user(
        rt,
        CLI,
        login=login,
        name="P",
        password=password,
        role="partner",
        program_id=shop.program_id,
        partner_id=shop.partner_id,
    )
    token, _ = await users.login(rt, login, password, ip="127.0.0.1", user_agent="t")
    client.cookies.clear()
    client.cookies.set("kopilka_session", token)

    home = await client.get("/admin/")
    client.cookies.clear()

    assert home.status_code == 200
    big = [x.strip() for x in home.text.split('<p class="big">')[1:]]
    assert [x.split("<")[0] for x in big] == ["1"]  # receipts today at its store, nothing else
