"""Login, logout, language, the program switcher and the home page."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from starlette.responses import Response

from kopilka.services import scope, users
from kopilka.services.errors import ServiceError
from kopilka.store import tables as t
from kopilka.web import i18n
from kopilka.web.auth import SESSION_COOKIE, Console, client_ip, console, runtime
from kopilka.web.templating import redirect, render

router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "kopilka_login_csrf"


def _safe_next(url: str | None) -> str:
    """Only a path of this site (no ``//host`` or scheme): no open redirect."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return "/admin/"


def _login_page(
    request: Request, *, error: str = "", login: str = "", status: int = 200
) -> Response:
    token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(24)
    resp = render(
        request,
        "login.html",
        {
            "error": error,
            "login": login,
            "csrf": token,
            "next": _safe_next(request.query_params.get("next")),
        },
        status=status,
    )
    resp.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", path="/admin/login")
    return resp


@router.get("/admin/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/admin/login")
async def login_submit(request: Request) -> Response:
    form = await request.form()
    login = str(form.get("login", ""))
    password = str(form.get("password", ""))
    lang = request.cookies.get("kopilka_lang", i18n.DEFAULT)
    cookie = request.cookies.get(LOGIN_CSRF, "")
    if not cookie or not hmac.compare_digest(cookie, str(form.get("csrf", ""))):
        return _login_page(
            request,
            error=i18n.gettext(lang, "The form has expired; please try again."),
            login=login,
            status=403,
        )
    try:
        token, session = await users.login(
            runtime(request),
            login,
            password,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
    except ServiceError as exc:
        message = i18n.gettext(lang, "wrong login or password")
        if exc.code == "too_many_attempts":
            until = exc.extra["locked_until"]
            message = (
                f"{i18n.gettext(lang, 'Too many failed logins. Try again after')} {until:%H:%M} UTC"
            )
        return _login_page(
            request, error=message, login=login, status=401 if exc.code == "unauthorized" else 429
        )
    resp = redirect(_safe_next(str(form.get("next", ""))))
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
        max_age=int(users.SESSION_MAX.total_seconds()),
    )
    resp.set_cookie("kopilka_lang", session.user.locale, samesite="lax", path="/")
    resp.delete_cookie(LOGIN_CSRF, path="/admin/login")
    return resp


@router.post("/admin/logout")
async def logout(request: Request, c: Annotated[Console, Depends(console())]) -> Response:
    await users.logout(c.rt, c.session)
    resp = redirect("/admin/login")
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.post("/admin/lang")
async def set_lang(request: Request, c: Annotated[Console, Depends(console())]) -> Response:
    form = await request.form()
    lang = str(form.get("lang", ""))
    if lang in i18n.LANGS:
        await users.set_locale(c.rt, c.user.id, lang)
    resp = redirect(
        _safe_next(
            request.headers.get("referer", "").split(str(request.base_url).rstrip("/"), 1)[-1]
        )
    )
    resp.set_cookie(
        "kopilka_lang", lang if lang in i18n.LANGS else c.lang, samesite="lax", path="/"
    )
    return resp


@router.post("/admin/program")
async def set_program(request: Request, c: Annotated[Console, Depends(console())]) -> Response:
    form = await request.form()
    code = str(form.get("program", ""))
    chosen = next((p for p in c.programs if p.code == code), None)
    if chosen is not None:
        await users.set_session_program(c.rt, c.session, chosen.id)
    return redirect("/admin/")


@router.get("/admin")
async def admin_root() -> Response:
    return redirect("/admin/")


@router.get("/admin/")
async def home(request: Request, c: Annotated[Console, Depends(console())]) -> Response:
    stats: dict[str, object] = {}
    if c.program is not None and scope.partner_scoped(c.actor):
        # a partner's or a store's staff: their stores' receipts, not the program's figures
        r = t.receipts
        day = c.rt.now().replace(hour=0, minute=0, second=0, microsecond=0)
        async with c.rt.engine.connect() as conn:
            stats["receipts_today"] = (
                await conn.execute(
                    select(func.count())
                    .select_from(r)
                    .where(
                        r.c.program_id == c.program.id,
                        r.c.created_at >= day,
                        scope.store_filter(c.actor, r.c.store_id, r.c.partner_id),
                    )
                )
            ).scalar_one()
    elif c.program is not None:
        pid = c.program.id
        now = c.rt.now()
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        async with c.rt.engine.connect() as conn:
            stats["members"] = (
                await conn.execute(
                    select(func.count())
                    .select_from(t.customers)
                    .where(t.customers.c.program_id == pid)
                )
            ).scalar_one()
            stats["cards"] = (
                await conn.execute(
                    select(func.count())
                    .select_from(t.cards)
                    .where(t.cards.c.program_id == pid, t.cards.c.status == "active")
                )
            ).scalar_one()
            stats["receipts_today"] = (
                await conn.execute(
                    select(func.count())
                    .select_from(t.receipts)
                    .where(t.receipts.c.program_id == pid, t.receipts.c.created_at >= day)
                )
            ).scalar_one()
            stats["points"] = (
                await conn.execute(
                    select(func.coalesce(func.sum(t.accounts.c.balance), 0)).where(
                        t.accounts.c.program_id == pid
                    )
                )
            ).scalar_one()
    return render(request, "home.html", {"stats": stats})


def login_url(next_url: str) -> str:
    return "/admin/login?next=" + quote(next_url, safe="/")
