"""The world the access matrix runs in (issues 9 and 10): two programs; in program 1 two
partners (A, B), in program 2 one (C); for each a store, a terminal, a customer with a
receipt, a fraud alert, a saved report, a webhook; per program a coupon series, a gift
card, a draw, a reward and an order, a campaign, a promotion.

Everything partner B owns carries the marker ``ZQPARTB`` in its name, everything of
program 2 ``ZQPROGTWO``: an answer allowed to a caller who must not see them must not
contain the marker (``forbidden_markers``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from argon2 import PasswordHasher
from sqlalchemy import insert, select, update

from kopilka.domain.roles import Role
from kopilka.services import admin, offline, settlement, settlement_files, signing, users
from kopilka.services.audit import CLI
from kopilka.services.runtime import Runtime, hash_key
from kopilka.store import tables as t
from kopilka.store.queries import insert_id
from tests.conftest import Clock, Member, Shop, new_shop, receipt

MARK_B = "ZQPARTB"
MARK_P2 = "ZQPROGTWO"
API = "/api/admin/v1"
SCOPES = ("own", "other_partner", "other_program")
PARTNER_SCOPED = frozenset({Role.PARTNER, Role.STORE_MANAGER, Role.CASHIER})


def forbidden_markers(role: Role) -> tuple[str, ...]:
    """What an answer to this role must never contain: every caller is limited to
    program 1; the partner-scoped ones also to partner A (or its store)."""
    return (MARK_P2, MARK_B) if role in PARTNER_SCOPED else (MARK_P2,)


@dataclass
class Side:
    """The objects of one scope: partner A ("own"), partner B, program 2."""

    shop: Shop
    partner_id: int
    partner_code: str
    store_id: int
    store_code: str
    terminal_id: int
    key: str
    member: Member
    pos_receipt: str = ""
    alert_id: int = 0
    report_id: int = 0
    schedule_id: int = 0
    webhook_id: int = 0


@dataclass
class Program:
    code: str
    id: int
    series: str = ""
    coupon: str = ""
    gift_card: str = ""
    draw: str = ""
    reward: str = ""
    order_id: int = 0
    campaign_id: int = 0
    promotion: str = ""
    user_id: int = 0  # a console user of the program (an object to manage)
    version: int = 0
    period: str = ""  # a closed settlement month, its statements signed
    offline_key: str = ""  # the public key of the program's offline burn tokens


@dataclass
class Caller:
    role: Role
    token: str  # admin API key
    login: str
    password: str
    cookie: str = ""
    csrf: str = ""


@dataclass
class World:
    rt: Runtime
    a: Side
    b: Side
    c: Side
    p1: Program
    p2: Program
    callers: dict[Role, Caller] = field(default_factory=dict)
    member_cookie: str = ""
    member_csrf: str = ""
    roles: frozenset[Role] = frozenset()  # the roles the matrix calls

    def side(self, scope: str) -> Side:
        return {"own": self.a, "other_partner": self.b, "other_program": self.c}[scope]

    def program(self, scope: str) -> Program:
        return self.p2 if scope == "other_program" else self.p1

    def pos_markers(self, scope: str) -> tuple[str, ...]:
        """What an answer to a till of this scope must never contain: the other
        program's objects (its marker, its offline burn key)."""
        if scope == "other_program":
            return (self.p1.offline_key,)
        return (MARK_P2, self.p2.offline_key)


async def _second_partner(
    rt: Runtime, shop: Shop, mark: str
) -> tuple[int, str, int, str, int, str]:
    tag = secrets.token_hex(3)
    async with rt.engine.begin() as conn:
        partner = await insert_id(
            conn,
            t.partners,
            {"program_id": shop.program_id, "code": f"b{tag}", "name": f"Partner {mark}"},
        )
        code = f"SB{tag}"
        store = await insert_id(
            conn,
            t.stores,
            {
                "program_id": shop.program_id,
                "partner_id": partner,
                "code": code,
                "name": f"Store {mark}",
                "city": "Казань",
            },
        )
        key = f"kp_test_{secrets.token_hex(12)}"
        term = await insert_id(
            conn,
            t.terminals,
            {
                "program_id": shop.program_id,
                "store_id": store,
                "name": f"till {mark}",
                "key_hash": hash_key(key),
                "key_prefix": key[:10],
                "created_at": rt.now(),
            },
        )
    return partner, f"b{tag}", store, code, term, key


async def _side(rt: Runtime, shop: Shop, *, mark: str, second: bool) -> Side:
    if second:
        partner, pcode, store, scode, term, key = await _second_partner(rt, shop, mark)
    else:
        async with rt.engine.begin() as conn:
            partner, pcode = shop.partner_id, "main"
            store = (
                await conn.execute(select(t.stores.c.id).where(t.stores.c.code == shop.store_code))
            ).scalar_one()
            scode, key = shop.store_code, shop.key
            term = (
                await conn.execute(select(t.terminals.c.id).where(t.terminals.c.store_id == store))
            ).scalar_one()
            if mark:
                # a code of its own: a console URL naming it in program 1 finds nothing
                pcode = f"c{secrets.token_hex(3)}"
                await conn.execute(
                    update(t.partners)
                    .where(t.partners.c.id == partner)
                    .values(name=f"Partner {mark}", code=pcode)
                )
                await conn.execute(
                    update(t.stores).where(t.stores.c.id == store).values(name=f"Store {mark}")
                )
    member = await shop.customer(200, first_name="Пётр", last_name=f"Иванов{mark}")
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == member.customer_id)
            .values(home_store_id=store)
        )
    side = Side(shop, partner, pcode, store, scode, term, key, member)
    # a confirmed receipt at the store
    headers = {"Authorization": f"Bearer {key}"}
    rid = f"m{secrets.token_hex(4)}"
    r = await shop.client.post(
        "/api/pos/v1/purchases/calculate",
        json=receipt(rid, member.card, ("sku1", 1, "500.00")),
        headers=headers,
    )
    assert r.status_code == 200, r.text
    r = await shop.client.post(f"/api/pos/v1/purchases/{rid}/confirm", headers=headers)
    assert r.status_code == 200, r.text
    side.pos_receipt = rid
    now = rt.now()
    async with rt.engine.begin() as conn:
        side.alert_id = await insert_id(
            conn,
            t.fraud_alerts,
            {
                "program_id": shop.program_id,
                "rule": "cashier_share",
                "severity": "high",
                "subject_type": "store",
                "subject_id": str(store),
                "subject_label": f"Store {mark}",
                "store_id": store,
                "summary": f"alert at {mark or 'A'}",
                "evidence": "{}",
                "dedup_key": f"matrix:{store}:{secrets.token_hex(4)}",
                "state": "open",
                "created_at": now,
                "updated_at": now,
            },
        )
        side.webhook_id = await insert_id(
            conn,
            t.webhook_endpoints,
            {
                "program_id": shop.program_id,
                "partner_id": partner,
                "url": f"https://hooks.example/{mark or 'A'}",
                "secret": secrets.token_hex(16),
                "topics": "*",
                "created_at": now,
            },
        )
    return side


async def _token(rt: Runtime, role: Role, program: str, side: Side | None = None) -> str:
    return await admin.do_add_token(
        rt,
        name=f"matrix-{role.value}-{secrets.token_hex(3)}",
        program_code=program,
        role=role.value,
        partner_code=side.partner_code if side and role == Role.PARTNER else None,
        store_code=side.store_code if side and role in (Role.STORE_MANAGER, Role.CASHIER) else None,
    )


async def _console_user(rt: Runtime, role: Role, side: Side, *, name: str = "") -> Caller:
    login = f"mx-{role.value.replace('_', '-')}-{secrets.token_hex(4)}"
    password = "pw-" + secrets.token_hex(8)
    await users.do_create_user(
        rt,
        CLI,
        login=login,
        name=name or f"Matrix {role.value}",
        password=password,
        role=role.value,
        locale="en",
        program_id=side.shop.program_id,
        partner_id=side.partner_id if role == Role.PARTNER else None,
        store_id=side.store_id if role in (Role.STORE_MANAGER, Role.CASHIER) else None,
    )
    token, session = await users.login(rt, login, password, ip="127.0.0.1", user_agent="matrix")
    key = await _token(rt, role, side.shop.code, side)
    return Caller(role, key, login, password, token, session.csrf_token)


async def _program_objects(
    client: httpx.AsyncClient, rt: Runtime, side: Side, mark: str
) -> Program:
    code = side.shop.code
    prog = Program(code, side.shop.program_id)
    owner = {"Authorization": f"Bearer {await _token(rt, Role.OWNER, code)}"}
    base = f"{API}/programs/{code}"

    async def call(method: str, path: str, body: Any = None, status: int = 201) -> Any:
        r = await client.request(method, base + path, json=body, headers=owner)
        assert r.status_code == status, (path, r.text)
        return r.json()

    prog.promotion = f"promo-{mark.lower() or 'one'}"
    doc = {
        "code": code,
        "name": f"Program {mark}",
        "points": {"earn_percent": 5, "offline_cap_max": 100},
        "promotions": [
            {
                "id": prog.promotion,
                "name": f"Promotion {mark}",
                "effects": [{"kind": "earn_multiplier", "factor": 2}],
            }
        ],
    }
    r = await client.put(base, json=doc, headers=owner)
    assert r.status_code in (200, 201), r.text
    prog.version = int(r.json()["version"])
    prog.series = f"CS{mark[:3] or 'ONE'}"
    prog.coupon = f"CPN{secrets.token_hex(3).upper()}"
    await call(
        "POST",
        "/coupon-series",
        {"code": prog.series, "name": f"Coupons {mark}", "codes": [prog.coupon]},
    )
    await call(
        "POST",
        "/gift-card-series",
        {"code": f"G{mark[:3] or 'ONE'}", "name": f"Gift {mark}", "nominal": 1000, "count": 1},
    )
    cards = await call("GET", "/gift-cards", status=200)
    items = cards.get("items") or cards.get("cards") or []
    prog.gift_card = items[0]["number"]
    now = rt.now()
    prog.draw = f"draw{mark[:3].lower() or 'one'}"
    await call(
        "POST",
        "/draws",
        {
            "code": prog.draw,
            "name": f"Draw {mark}",
            "period_start": (now - timedelta(days=1)).isoformat(),
            "period_end": (now + timedelta(days=30)).isoformat(),
            "rules": {"prizes": [{"name": "1000", "points": 1000}], "tickets_per_purchase": 1},
        },
    )
    prog.reward = f"mug{mark[:3].lower() or 'one'}"
    await call("POST", "/rewards", {"code": prog.reward, "name": f"Mug {mark}", "price_points": 10})
    order = await call(
        "POST",
        "/reward-orders",
        {
            "customer": {"card": side.member.card},
            "reward": prog.reward,
            "idempotency_key": secrets.token_hex(4),
        },
    )
    prog.order_id = order["id"]
    camp = await call(
        "POST",
        "/campaigns",
        {
            "name": f"Campaign {mark}",
            "channel": "sms",
            "body": "{{ name }}, hello",
            "audience": {"listed": [side.member.phone]},
            "control_percent": 0,
        },
    )
    prog.campaign_id = camp["id"]
    prog.user_id = await users.do_create_user(
        rt,
        CLI,
        login=f"mx-object-{secrets.token_hex(4)}",
        name=f"Object user {mark}",
        password="pw-" + secrets.token_hex(8),
        role="analyst",
        program_id=prog.id,
    )
    return prog


async def _saved_report(client: httpx.AsyncClient, token: str, code: str, mark: str) -> int:
    r = await client.post(
        f"{API}/reports/custom",
        params={"program": code},
        json={
            "name": f"Report {mark}",
            "definition": {"dimensions": ["city"], "measures": ["sales"]},
            "shared_roles": [r.value for r in Role],
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def _close_month(rt: Runtime, *programs: Program) -> None:
    """Close this month of each program (its receipts: partner A's and B's in program 1, C's
    in program 2), the statements signed: the clock is moved past the month's end for the
    close only."""
    clock = rt.clock
    assert isinstance(clock, Clock)
    await signing.current_key(rt)  # the signing key made at real time
    try:
        for prog in programs:
            found = await settlement.find_program(rt, prog.code)
            tz = ZoneInfo(found.settings.timezone)
            prog.period = f"{rt.now().astimezone(tz):%Y-%m}"
            _, end = settlement.month_window(prog.period, found.settings.timezone)
            clock.set(end + timedelta(minutes=1))
            await settlement.do_close(
                rt,
                found,
                prog.period,
                actor=CLI,
                statements=settlement_files.statement_maker(rt, "en"),
            )
            clock.frozen = None
    finally:
        clock.frozen = None


async def build_world(rt: Runtime, client: httpx.AsyncClient) -> World:
    """The world; its users' passwords hashed with argon2's cheapest parameters: the matrix
    is about what a signed-in caller reaches, not passwords (20 hashes at the defaults and
    8 logins: ~2 s of each database's build on the shared machine)."""
    hasher = users._hasher
    users._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    try:
        return await _build_world(rt, client)
    finally:
        users._hasher = hasher


async def _build_world(rt: Runtime, client: httpx.AsyncClient) -> World:
    shop1 = await new_shop(rt, client)
    shop2 = await new_shop(rt, client)
    a = await _side(rt, shop1, mark="", second=False)
    b = await _side(rt, shop1, mark=MARK_B, second=True)
    c = await _side(rt, shop2, mark=MARK_P2, second=False)
    p1 = await _program_objects(client, rt, a, "")
    p2 = await _program_objects(client, rt, c, MARK_P2)
    world = World(rt, a, b, c, p1, p2)
    for prog in (p1, p2):
        prog.offline_key = (await offline.do_rotate_keys(rt, program_id=prog.id)).public_key
    await _close_month(rt, p1, p2)
    for role in Role:
        world.callers[role] = await _console_user(rt, role, a)
    # saved reports owned by a partner of each side (partner-scoped, shared with every role)
    for side, mark in ((a, ""), (b, MARK_B), (c, MARK_P2)):
        key = await _token(rt, Role.PARTNER, side.shop.code, side)
        side.report_id = await _saved_report(client, key, side.shop.code, mark or "A")
    # the member cabinet: a session of partner A's customer in program 1
    token = secrets.token_urlsafe(32)
    world.member_csrf = secrets.token_urlsafe(24)
    now = rt.now()
    async with rt.engine.begin() as conn:
        await conn.execute(
            insert(t.member_sessions),
            {
                "token_hash": hash_key(token),
                "program_id": shop1.program_id,
                "customer_id": a.member.customer_id,
                "csrf_token": world.member_csrf,
                "created_at": now,
                "last_seen_at": now,
                "expires_at": now + timedelta(hours=2),
            },
        )
    world.member_cookie = token
    return world
