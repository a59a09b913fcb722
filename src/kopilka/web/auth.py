"""Who is looking: the console session behind every page, its permissions and CSRF check.

Every console route depends on ``console(perm)``; it resolves the session cookie (or
sends the browser to the login page), refuses a role without ``perm`` (403 page) and,
for any method that changes something, checks the CSRF token (a ``csrf`` form field or
the ``X-CSRF-Token`` header htmx sends).
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from kopilka.domain.roles import Perm
from kopilka.services import programs, users
from kopilka.services.audit import Actor
from kopilka.services.runtime import Runtime
from kopilka.web import i18n

SESSION_COOKIE = "kopilka_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class Forbidden(Exception):
    pass


class CsrfFailed(Exception):
    pass


@dataclass(frozen=True)
class ProgramRef:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    perm: Perm | None


# The console's menu; an item shows when the role has its permission.
NAV = (
    NavItem("/admin/programs", "Programs", Perm.PROGRAMS_READ),
    NavItem("/admin/simulator", "Simulator", Perm.SIMULATE),
    NavItem("/admin/customers", "Customers", Perm.CUSTOMERS_READ),
    NavItem("/admin/coupons", "Coupons", Perm.MECHANICS_READ),
    NavItem("/admin/gift-cards", "Gift cards", Perm.MECHANICS_READ),
    NavItem("/admin/draws", "Draws", Perm.MECHANICS_READ),
    NavItem("/admin/rewards", "Rewards", Perm.MECHANICS_READ),
    NavItem("/admin/campaigns", "Campaigns", Perm.PROGRAMS_READ),
    NavItem("/admin/message-templates", "Message templates", Perm.PROGRAMS_READ),
    NavItem("/admin/outbox", "Outbox", Perm.AUDIT_READ),
    NavItem("/admin/webhooks", "Webhooks", Perm.AUDIT_READ),
    NavItem("/admin/reports", "Reports", Perm.REPORTS_READ),
    NavItem("/admin/stores", "Stores", Perm.STORES_READ),
    NavItem("/admin/receipts", "Receipts", Perm.STORES_READ),
    NavItem("/admin/users", "Users", Perm.USERS_MANAGE),
    NavItem("/admin/audit", "Audit log", Perm.AUDIT_READ),
    NavItem("/admin/fraud", "Fraud alerts", Perm.AUDIT_READ),
    NavItem("/cashier", "Cashier screen", Perm.CASHIER),
)


@dataclass
class Console:
    """What a console page knows about its viewer; ``request.state.console``."""

    rt: Runtime
    session: users.Session
    actor: Actor
    program: ProgramRef | None
    programs: list[ProgramRef] = field(default_factory=list)

    @property
    def user(self) -> users.User:
        return self.session.user

    @property
    def csrf(self) -> str:
        return self.session.csrf_token

    @property
    def lang(self) -> str:
        return self.user.locale if self.user.locale in i18n.LANGS else i18n.DEFAULT

    def can(self, perm: Perm | str) -> bool:
        return self.actor.can(Perm(perm))

    def nav(self, path: str) -> list[tuple[str, str, bool]]:
        """(href, label, is current) of the menu items this role may open."""
        return [
            (n.href, n.label, path.startswith(n.href))
            for n in NAV
            if n.perm is None or self.actor.can(n.perm)
        ]

    def need_program(self) -> ProgramRef:
        if self.program is None:
            raise Forbidden
        return self.program


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _csrf_ok(request: Request, expected: str) -> bool:
    given = request.headers.get("X-CSRF-Token")
    if given is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # cached on the request: the view reads it again
            value = form.get("csrf")
            given = value if isinstance(value, str) else None
    return given is not None and hmac.compare_digest(given, expected)


def console(perm: Perm | None = None) -> Callable[[Request], Awaitable[Console]]:
    """A route dependency: the viewer's console, with ``perm`` required."""

    async def dependency(request: Request) -> Console:
        rt = runtime(request)
        session = await users.session_by_token(rt, request.cookies.get(SESSION_COOKIE, ""))
        if session is None:
            nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(nxt)
        request.state.lang = session.user.locale
        if request.method not in SAFE_METHODS and not await _csrf_ok(request, session.csrf_token):
            raise CsrfFailed
        actor = session.user.actor(client_ip(request))
        rows = await programs.list_programs(rt)
        granted = await users.granted_programs(rt, session.user)
        refs = [
            ProgramRef(p.id, p.code, p.name) for p in rows if granted is None or p.id in granted
        ]
        current = next((p for p in refs if p.id == session.program_id), refs[0] if refs else None)
        if granted is not None:
            # a user of several programs acts, on each page, within the one it shows
            # (0: none granted exists, nothing is reached)
            actor = dataclasses.replace(actor, program_id=current.id if current else 0)
        c = Console(rt, session, actor, current, refs)
        request.state.console = c
        if perm is not None and not actor.can(perm):
            raise Forbidden
        return c

    return dependency
