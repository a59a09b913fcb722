"""Jinja2 pages: one environment, the request's language, formatting filters, flashes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from kopilka.web import i18n

TEMPLATES = Path(__file__).parent / "templates"
FLASH_COOKIE = "kopilka_flash"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def lang_of(request: Request) -> str:
    lang = getattr(request.state, "lang", None) or request.cookies.get("kopilka_lang")
    return lang if lang in i18n.LANGS else i18n.DEFAULT


def local_time(
    value: datetime | None, tz: str = "Europe/Moscow", fmt: str = "%d.%m.%Y %H:%M"
) -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page (or, for htmx, a partial) in the request's language."""
    lang = lang_of(request)
    area = template.split("/", 1)[0] if "/" in template else None
    ctx: dict[str, Any] = {
        "request": request,
        "lang": lang,
        "_": lambda s: i18n.gettext(lang, s, area),
        "plural": lambda n, **forms: i18n.plural(lang, n, forms),
        "money": lambda v: i18n.money(lang, v),
        "points": lambda v: i18n.points(lang, v),
        "number": lambda v, places=2: i18n.number(lang, v, places),
        "dt": local_time,
        "flashes": _flashes(request),
        "c": getattr(request.state, "console", None),
    }
    ctx.update(context or {})
    html = env.get_template(template).render(ctx)
    resp = HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})
    if ctx["flashes"]:
        resp.delete_cookie(FLASH_COOKIE, path="/")
    return resp


def _flashes(request: Request) -> list[str]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    from urllib.parse import unquote

    return [m for m in unquote(raw).split("\n") if m][:5]


def redirect(url: str, *, flash: str | None = None) -> Response:
    """Post/redirect/get: 303 to ``url``, with a message shown once on the next page.

    For an htmx request the redirect is told through ``HX-Redirect``.
    """
    resp = RedirectResponse(url, status_code=303)
    if flash:
        resp.set_cookie(FLASH_COOKIE, quote(flash[:300]), path="/", httponly=True, samesite="lax")
    return resp


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def dec(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")
