"""Every route × every role × every scope: allowed or refused as declared, and an allowed
answer carries nothing of a scope the caller may not see (issues 9 and 10, ADR 0026).

One app in-process (httpx ASGI transport), one world (``access_world``), the declarations
in ``access_matrix``.  The expected decision is computed from the declaration and the
role's permissions (``domain/roles.py``), never from what the code answers:

- the role lacks the permission → 403;
- the URL names another program → 403; an object of another program → 404;
- an object of another partner, for a partner-scoped role → 404;
- otherwise allowed: neither 401, 403, 404 nor a 5xx, and no marker of a hidden scope.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from kopilka.api.app import create_app
from kopilka.domain.roles import Role, can
from kopilka.services.runtime import Runtime
from kopilka.web.auth import SESSION_COOKIE
from kopilka.web.cabinet import MEMBER_COOKIE
from tests.api.access_matrix import (
    MEMBER,
    NONE,
    PARTNER,
    PARTNER_WIDE,
    POS,
    PUBLIC,
    ROUTES,
    Rule,
)
from tests.api.access_world import PARTNER_SCOPED, SCOPES, World, build_world, forbidden_markers

DENIED = (401, 403, 404)
# On PostgreSQL the suite calls the roles whose answers the SQL scope filters cut (the
# partner-scoped ones) and the owner; KOPILKA_MATRIX_FULL=1 calls every role there too.
# SQLite always runs every cell.  (Time: the whole suite must stay under 15 minutes.)
PG_ROLES = frozenset({Role.OWNER, Role.PARTNER, Role.STORE_MANAGER, Role.CASHIER})
FULL = os.environ.get("KOPILKA_MATRIX_FULL") == "1"
STORE_SCOPED = frozenset({Role.STORE_MANAGER, Role.CASHIER})


def app_routes() -> set[str]:
    app = create_app(Runtime.from_url("sqlite:////nonexistent/never-opened.db"), sweep_every_s=0)
    out = set()
    for rc in iter_route_contexts(app.routes):
        methods = rc.methods or {"MOUNT"}
        for m in methods - {"HEAD"}:
            out.add(f"{m} {rc.path}")
    return out


def test_every_route_is_declared() -> None:
    routes = app_routes()

    undeclared = sorted(routes - ROUTES.keys())
    stale = sorted(ROUTES.keys() - routes)

    assert undeclared == [], "declare these routes in tests/api/access_matrix.py"
    assert stale == [], "these declared routes no longer exist"


@pytest.fixture(scope="module")
async def world(rt: Runtime) -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    app = create_app(rt, sweep_every_s=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        started = time.perf_counter()
        w = await build_world(rt, c)
        print(f"\naccess world: {time.perf_counter() - started:.1f} s")
        yield w, c


@dataclass
class Cell:
    route: str
    who: str  # a role, a terminal or the member
    scope: str
    expected: str  # "allow" | "403" | "404"
    status: int = 0
    leak: str = ""

    @property
    def ok(self) -> bool:
        if self.status >= 500 or self.leak:
            return False
        if self.expected == "allow":
            return self.status not in DENIED
        return str(self.status) == self.expected


def values(w: World, scope: str) -> dict[str, str]:
    side, prog = w.side(scope), w.program(scope)
    return {
        "code": prog.code,
        "program": prog.code,
        "store_code": side.store_code,
        "store_id": str(side.store_id),
        "terminal_id": str(side.terminal_id),
        "customer_id": str(side.member.customer_id),
        "card": side.member.card,
        "phone": side.member.phone,
        "alert_id": str(side.alert_id),
        "report_id": str(side.report_id),
        "webhook_id": str(side.webhook_id),
        "receipt_id": side.pos_receipt,
        "series": prog.series,
        "coupon": prog.coupon,
        "gift_card": prog.gift_card,
        "draw": prog.draw,
        "reward": prog.reward,
        "order_id": str(prog.order_id),
        "campaign_id": str(prog.campaign_id),
        "promotion": prog.promotion,
        "promotion_id": prog.promotion,
        "pid": prog.promotion,
        "version": str(prog.version),
        "user_id": str(prog.user_id),
        "token": "x",
        "schedule_id": "1",
        "lang": "en",
        "period": prog.period,
        "partner": side.partner_code,
    }


def fill(template: str, vals: dict[str, str]) -> str:
    for k, v in vals.items():
        template = template.replace("{" + k + "}", v)
    return template


def fill_any(value: Any, vals: dict[str, str]) -> Any:
    if isinstance(value, str):
        return fill(value, vals)
    if isinstance(value, dict):
        return {k: fill_any(v, vals) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_any(v, vals) for v in value]
    return value


def url_of(route: str, rule: Rule, vals: dict[str, str]) -> tuple[str, str]:
    method, path = route.split(" ", 1)
    for name, value in rule.params.items():
        path = path.replace("{" + name + "}", fill(value, vals))
    return method, fill(path, vals)


def names_program(route: str, rule: Rule) -> bool:
    """The URL (path, query) or the body names the program: another one is refused 403."""
    if not rule.named:
        return False
    text = route + repr(rule.query) + repr(rule.body)
    return "{code}" in route or "{program}" in text


def expect(route: str, rule: Rule, role: Role, scope: str) -> str:
    if rule.perm is not None and not can(role.value, rule.perm):
        return "403"
    if rule.also is not None and not can(role.value, rule.also):
        return "403"
    if rule.whole_program and role in PARTNER_SCOPED:
        return "403"
    if rule.partner_level and role in STORE_SCOPED:
        return "403"
    if scope == "other_program":
        return "403" if names_program(route, rule) else "404"
    if scope == "other_partner" and rule.obj in (PARTNER, PARTNER_WIDE) and role in PARTNER_SCOPED:
        return "404"
    if rule.obj == PARTNER_WIDE and role in STORE_SCOPED:
        return "404"
    # past the scope: what only some roles may do to an object they see (edit a report)
    if rule.roles is not None and role.value not in rule.roles:
        return "403"
    return "allow"


def lacks(rule: Rule, role: Role) -> bool:
    return any(p is not None and not can(role.value, p) for p in (rule.perm, rule.also))


def skipped(rule: Rule, role: Role, scope: str) -> bool:
    """Cells that would repeat another cell's code path (time: the suite's 15 minutes).
    Another partner's object in the caller's own program is decided by the caller's
    partner or store scope alone (``services/scope.py``): it is called for the owner (no
    scope) and the partner-scoped roles; the other unscoped roles answer it as the owner
    does.  A role lacking the permission is refused before any scope is looked at: its
    own-program and other-program cells show that, the other partner's adds nothing."""
    if scope != "other_partner":
        return False
    return lacks(rule, role) or (role not in PARTNER_SCOPED and role != Role.OWNER)


def scopes_of(route: str, rule: Rule) -> tuple[str, ...]:
    if rule.obj in (PARTNER, PARTNER_WIDE):
        return SCOPES
    if names_program(route, rule) or rule.obj != NONE:
        return ("own", "other_program")
    return ("own",)


POS_OBJECTS = ("{code}", "{number}", "{customer_id}", "{receipt_id}", "lookup")


async def send(
    c: httpx.AsyncClient,
    method: str,
    url: str,
    rule: Rule,
    vals: dict[str, str],
    *,
    headers: dict[str, str],
    cookies: dict[str, str] | None = None,
    form: bool = False,
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    query = {k: fill(v, vals) for k, v in rule.query.items()}
    c.cookies.clear()
    for k, v in (cookies or {}).items():
        c.cookies.set(k, v)
    if method == "GET":
        return await c.get(url, params=query, headers=headers)
    body: Any = rule.body if rule.body is not None else {}
    if isinstance(body, dict):
        body = fill_any({**body, **(extra or {})}, vals)
    if form:
        return await c.request(method, url, params=query, data=body, headers=headers)
    return await c.request(method, url, params=query, json=body, headers=headers)


def leak_in(resp: httpx.Response, markers: tuple[str, ...]) -> str:
    text = resp.text
    return next((m for m in markers if m in text), "")


async def run_matrix(w: World, c: httpx.AsyncClient) -> list[Cell]:
    cells: list[Cell] = []
    w.roles = frozenset(w.callers) if FULL or w.rt.engine.dialect.name == "sqlite" else PG_ROLES
    for route, rule in sorted(ROUTES.items()):
        if not rule.run or rule.obj == PUBLIC:
            continue
        t0 = time.perf_counter()
        await route_cells(w, c, route, rule, cells)
        TIMES[route] = time.perf_counter() - t0
    return cells


TIMES: dict[str, float] = {}
POS_DENIED: dict[str, int] = {}


async def route_cells(
    w: World, c: httpx.AsyncClient, route: str, rule: Rule, cells: list[Cell]
) -> None:
    method, path = route.split(" ", 1)
    console = not path.startswith("/api/")
    del method
    for scope in scopes_of(route, rule) if rule.obj not in (POS, MEMBER) else SCOPES:
        vals = values(w, scope)
        m, url = url_of(route, rule, vals)
        if rule.obj == POS:
            # the own terminal's objects with another terminal's key: program 1's
            # customers and mechanics are the whole program's, a receipt is its till's
            key = {"own": w.a.key, "other_partner": w.b.key, "other_program": w.c.key}[scope]
            own = values(w, "own")
            m, url = url_of(route, rule, own)
            resp = await send(c, m, url, rule, own, headers={"Authorization": f"Bearer {key}"})
            # program 1's objects with a till of program 2: not found; a receipt is
            # its own till's; a route of no object serves the till's own program
            has_object = any(x in path for x in POS_OBJECTS)
            exp = "404" if has_object and scope == "other_program" else "allow"
            if "{receipt_id}" in path and scope == "other_partner":
                exp = "404"
            if rule.deny_only and exp == "allow":
                continue
            own["scope"] = scope
            cell = Cell(route, "terminal", scope, exp, resp.status_code)
            if resp.status_code not in DENIED:
                cell.leak = leak_in(resp, w.pos_markers(scope))
            POS_DENIED[route + " " + scope] = resp.status_code
            cells.append(cell)
            continue
        if rule.obj == MEMBER:
            if scope == "other_partner":
                continue
            resp = await send(
                c,
                m,
                url,
                rule,
                {**vals, "csrf": w.member_csrf},
                headers={},
                cookies={MEMBER_COOKIE: w.member_cookie},
                form=True,
                extra={"csrf": w.member_csrf},
            )
            exp = "allow" if scope == "own" else "login"
            refused = resp.status_code == 303 and "/login" in resp.headers.get("location", "")
            cells.append(
                Cell(
                    route,
                    "member",
                    scope,
                    "allow" if exp == "allow" else "403",
                    403 if refused else resp.status_code,
                )
            )
            continue
        for role, caller in w.callers.items():
            if role not in w.roles or skipped(rule, role, scope):
                continue
            exp = expect(route, rule, role, scope)
            if rule.deny_only and exp == "allow":
                continue
            vals["who"] = role.value
            if console:
                resp = await send(
                    c,
                    m,
                    url,
                    rule,
                    vals,
                    headers={"X-CSRF-Token": caller.csrf},
                    cookies={SESSION_COOKIE: caller.cookie},
                    form=True,
                )
            else:
                resp = await send(
                    c, m, url, rule, vals, headers={"Authorization": f"Bearer {caller.token}"}
                )
            cell = Cell(route, role.value, scope, exp, resp.status_code)
            if resp.status_code not in DENIED:
                cell.leak = leak_in(resp, forbidden_markers(role))
            cells.append(cell)


async def test_every_route_refuses_other_scopes_and_allows_its_own(
    world: tuple[World, httpx.AsyncClient],
) -> None:
    w, c = world
    started = time.perf_counter()

    cells = await run_matrix(w, c)

    took = time.perf_counter() - started
    bad = [x for x in cells if not x.ok]
    print(f"\naccess matrix: {len(cells)} cells, {len(bad)} mismatches, {took:.1f} s")
    for route, spent in sorted(TIMES.items(), key=lambda x: -x[1])[:10]:
        print(f"  {spent:6.2f} s  {route}")
    for what, status in sorted(POS_DENIED.items()):
        print(f"  POS {what}: {status}")
    listing = "\n".join(
        f"{x.route} | {x.who} | {x.scope} | expected {x.expected} | got {x.status} {x.leak}"
        for x in bad
    )
    assert bad == [], f"{len(bad)} mismatches:\n{listing}"
