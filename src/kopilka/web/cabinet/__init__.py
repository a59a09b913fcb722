"""The customer cabinet (``/my/{program}/…``, docs/cabinet.md): a member signs in with a
one-time SMS code and sees his points, receipts, cards, offers; edits his profile and
consents; exports or deletes his personal data.  Mobile first, no inline scripts.

A member's session is a ``member_sessions`` row behind the HttpOnly cookie
``kopilka_member`` (path ``/my``), apart from the console's.  Every POST carries a CSRF
token: the session's once signed in, a double-submit cookie on the login forms before.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from markupsafe import Markup
from starlette.responses import Response

from kopilka import formatting
from kopilka.services import cabinet, member_auth, offline, program_profile, programs
from kopilka.services.errors import ServiceError
from kopilka.services.member_auth import MemberSession
from kopilka.services.runtime import Runtime
from kopilka.web.auth import client_ip, runtime
from kopilka.web.cabinet import strings  # noqa: F401  (registers the Russian strings)
from kopilka.web.cabinet.barcode import ean13_svg
from kopilka.web.templating import lang_of, redirect, render

router = APIRouter(include_in_schema=False)

MEMBER_COOKIE = "kopilka_member"
LOGIN_CSRF_COOKIE = "kopilka_my_csrf"
PAGE = 10

# What a refusal says to the member, by the services' codes.
MESSAGES = {
    "invalid_code": "The code is wrong.",
    "code_expired": "The code has expired; ask for a new one.",
    "card_taken": "This card belongs to another customer.",
}


# How a ledger entry's kind reads to a member.
KINDS = {
    "earn": "Earned",
    "burn": "Spent",
    "hold": "Held for a purchase",
    "release": "Hold released",
    "refund": "Returned with a refund",
    "expire": "Expired",
    "adjust": "Adjustment",
    "activity": "Bonus",
}


class MemberLoginRequired(Exception):
    def __init__(self, program: str) -> None:
        self.program = program


class MemberCsrfFailed(Exception):
    pass


@dataclass
class Member:
    rt: Runtime
    session: MemberSession
    program: programs.ProgramSummary
    ip: str | None

    @property
    def csrf(self) -> str:
        return self.session.csrf_token

    @property
    def base(self) -> str:
        return f"/my/{self.program.code}"


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _program(request: Request, code: str) -> programs.ProgramSummary:
    """The program of the path, its branding and language for the page (the program's
    language unless the visitor chose one)."""
    rt = runtime(request)
    prog = await cabinet.program_by_code(rt, code)
    b = await program_profile.brand(rt, prog.id)
    request.state.brand = b
    if b.profile.language and "kopilka_lang" not in request.cookies:
        request.state.lang = b.profile.language
    return prog


async def _member(request: Request, program: str) -> Member:
    rt = runtime(request)
    prog = await _program(request, program)
    session = await member_auth.session_by_token(rt, request.cookies.get(MEMBER_COOKIE, ""))
    if session is None or session.program_id != prog.id:
        raise MemberLoginRequired(prog.code)
    if request.method != "GET":
        given = (await _form(request)).get("csrf", "")
        if not hmac.compare_digest(given, session.csrf_token):
            raise MemberCsrfFailed
    m = Member(rt, session, prog, client_ip(request))
    request.state.member = m
    return m


Me = Annotated[Member, Depends(_member)]


def _page(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    b: program_profile.Brand | None = getattr(request.state, "brand", None)
    extra: dict[str, Any] = {"brand": b}
    if b is not None:  # the program's own name of its points: "3 мили"
        lang = lang_of(request)
        forms = b.profile.points_forms(lang)
        extra["points"] = lambda v: formatting.points(lang, v, forms)
    return render(request, f"cabinet/{name}", {**extra, **ctx}, status=status)


def _message(exc: ServiceError) -> str:
    return MESSAGES.get(exc.code, exc.detail)


# --- which program ------------------------------------------------------------------------


@router.get("/my")
@router.get("/my/")
async def my_root(request: Request) -> Response:
    """The configured default program (``KOPILKA_CABINET_PROGRAM``), the only one, or a
    list to choose from."""
    rt = runtime(request)
    default = os.environ.get("KOPILKA_CABINET_PROGRAM")
    rows = await programs.list_programs(rt, code=default) if default else []
    rows = rows or await programs.list_programs(rt)
    if len(rows) == 1:
        return redirect(f"/my/{rows[0].code}/")
    return _page(request, "choose.html", {"programs": rows})


@router.get("/my/{program}/brand.css")
async def brand_css(request: Request, program: str) -> Response:
    await _program(request, program)
    colour = request.state.brand.profile.primary_colour
    return Response(
        program_profile.brand_css(colour) if colour else "",
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/my/{program}/logo")
async def logo(request: Request, program: str) -> Response:
    prog = await cabinet.program_by_code(runtime(request), program)
    found = await program_profile.logo_of(runtime(request), prog.id)
    if found is None:
        return Response(status_code=404)
    return Response(
        found.data,
        media_type=found.content_type,
        headers={
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
            "ETag": f'"{found.sha256}"',
        },
    )


@router.get("/my/{program}/lang/{lang}")
async def set_lang(request: Request, program: str, lang: str) -> Response:
    back = urlsplit(request.headers.get("referer") or "").path  # our own path only
    resp = redirect(back if back.startswith(f"/my/{program}/") else f"/my/{program}/")
    if lang in ("ru", "en"):
        resp.set_cookie("kopilka_lang", lang, path="/", samesite="lax", max_age=365 * 86400)
    return resp


# --- login ----------------------------------------------------------------------------------


def _login_csrf(request: Request) -> str:
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def _with_login_csrf(resp: Response, token: str) -> Response:
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, path="/my", httponly=True, samesite="strict")
    return resp


async def _login_form_ok(request: Request) -> dict[str, str]:
    form = await _form(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(form.get("csrf", ""), cookie):
        raise MemberCsrfFailed
    return form


@router.get("/my/{program}/login")
async def login_page(request: Request, program: str) -> Response:
    prog = await _program(request, program)
    token = _login_csrf(request)
    resp = _page(
        request, "login.html", {"program": prog, "csrf": token, "values": {}, "errors": {}}
    )
    return _with_login_csrf(resp, token)


@router.post("/my/{program}/login")
async def login_send(request: Request, program: str) -> Response:
    rt = runtime(request)
    prog = await _program(request, program)
    form = await _login_form_ok(request)
    token = form["csrf"]
    try:
        phone = await member_auth.request_code(
            rt, prog.id, form.get("phone", ""), ip=request.client.host if request.client else None
        )
    except ServiceError as exc:
        if exc.code == "too_many_attempts" and exc.field == "phone":
            # a code went out a moment ago: go on to the code form, it is still valid
            phone = member_auth.normalise_phone(form.get("phone", ""))
            ctx = {"program": prog, "csrf": token, "phone": phone, "errors": {}}
            ctx["note"] = "A code was sent recently; wait a minute before asking for another."
            return _page(request, "code.html", ctx)
        # a wrong number, or the phone locked out after wrong codes: said at the phone
        ctx = {"program": prog, "csrf": token, "values": form, "errors": {"phone": _message(exc)}}
        return _page(request, "login.html", ctx, status=422)
    ctx = {"program": prog, "csrf": token, "phone": phone, "errors": {}, "note": None}
    return _page(request, "code.html", ctx)


@router.post("/my/{program}/login/code")
async def login_code(request: Request, program: str) -> Response:
    rt = runtime(request)
    prog = await _program(request, program)
    form = await _login_form_ok(request)
    phone = form.get("phone", "")
    try:
        token, _ = await member_auth.verify_code(
            rt,
            prog.id,
            phone,
            form.get("code", ""),
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
    except ServiceError as exc:
        ctx = {
            "program": prog,
            "csrf": form["csrf"],
            "phone": phone,
            "errors": {"code": _message(exc)},
            "note": None,
            "locked": exc.code == "too_many_attempts",
        }
        return _page(request, "code.html", ctx, status=exc.status)
    resp = redirect(f"/my/{prog.code}/")
    resp.set_cookie(
        MEMBER_COOKIE,
        token,
        path="/my",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=int(member_auth.SESSION_TTL.total_seconds()),
    )
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/my")
    return resp


@router.post("/my/{program}/logout")
async def logout(request: Request, me: Me) -> Response:
    await member_auth.logout(me.rt, me.session)
    resp = redirect(f"{me.base}/login")
    resp.delete_cookie(MEMBER_COOKIE, path="/my")
    return resp


# --- pages ----------------------------------------------------------------------------------


@router.get("/my/{program}/")
async def home(request: Request, me: Me) -> Response:
    ov = await cabinet.overview(me.rt, me.session)
    recent, _ = await cabinet.receipts_page(me.rt, me.session, limit=3)
    ctx = {"me": me, "ov": ov, "recent": recent, "tab": "home"}
    return _page(request, "home.html", ctx)


def _offset(request: Request, name: str) -> int:
    raw = request.query_params.get(name, "1")
    page = int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1
    return page


@router.get("/my/{program}/history")
async def history(request: Request, me: Me) -> Response:
    ov = await cabinet.overview(me.rt, me.session)
    rp, mp = _offset(request, "rp"), _offset(request, "mp")
    receipts, rtotal = await cabinet.receipts_page(
        me.rt, me.session, offset=(rp - 1) * PAGE, limit=PAGE
    )
    moves, mtotal = await cabinet.movements_page(
        me.rt, me.session, ov.account_id, offset=(mp - 1) * PAGE, limit=PAGE
    )
    ctx = {
        "me": me,
        "ov": ov,
        "receipts": receipts,
        "moves": moves,
        "rp": rp,
        "mp": mp,
        "rpages": max(1, -(-rtotal // PAGE)),
        "mpages": max(1, -(-mtotal // PAGE)),
        "kinds": KINDS,
        "tab": "history",
    }
    return _page(request, "history.html", ctx)


def qr_svg(token: str) -> str:
    """The till code as an SVG QR code (segno: pure Python, no files, no network)."""
    import segno

    svg: str = segno.make(token, error="m").svg_inline(scale=5, border=2)
    return svg


async def _card_ctx(me: Member, **extra: Any) -> dict[str, Any]:
    ov = await cabinet.overview(me.rt, me.session)
    number = ov.card_number
    secret = cabinet.qr_secret()
    ctx: dict[str, Any] = {
        "me": me,
        "ov": ov,
        "barcode": Markup(ean13_svg(number)) if number else None,  # our own SVG
        "qr": cabinet.qr_token(number, secret, me.rt.now()) if number and secret else None,
        "window_s": cabinet.QR_WINDOW_S,
        "invite": await cabinet.invite_code(me.rt, me.session),
        "values": {},
        "errors": {},
        "tab": "card",
    }
    ctx["qr_svg"] = Markup(qr_svg(ctx["qr"])) if ctx["qr"] else None  # our own SVG
    tok = await _offline_token(me, ov, channel="cabinet")
    ctx["offline"] = tok
    ctx["offline_svg"] = Markup(qr_svg(tok.token)) if tok else None  # our own SVG
    ctx.update(extra)
    return ctx


async def _offline_token(
    me: Member, ov: cabinet.Overview, *, channel: str
) -> offline.IssuedToken | None:
    """The member's offline burn token (the same one while it is fresh); None when the
    program issues none or nothing can be promised."""
    number = ov.card_number
    if not (number.isdigit() and len(number) == 13):
        return None
    try:
        return await offline.do_issue_token(
            me.rt,
            program_id=me.session.program_id,
            account_id=ov.account_id,
            card_number=number,
            channel=channel,
        )
    except ServiceError:
        return None


@router.get("/my/{program}/card")
async def card(request: Request, me: Me) -> Response:
    return _page(request, "card.html", await _card_ctx(me))


@router.get("/my/{program}/card/qr")
async def card_qr(request: Request, me: Me) -> Response:
    """The current rotating token (the page's script fetches it every window)."""
    ov = await cabinet.overview(me.rt, me.session)
    secret = cabinet.qr_secret()
    token = cabinet.qr_token(ov.card_number, secret, me.rt.now()) if secret else ""
    return Response(
        orjson.dumps(
            {
                "token": token,
                "svg": qr_svg(token) if token else "",
                "window_s": cabinet.QR_WINDOW_S,
            }
        ),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/my/{program}/card/offline-token")
async def card_offline_token(request: Request, me: Me) -> Response:
    """For the mobile app: the member's offline burn token (docs/cabinet.md), the same one
    while it has half its life; 404 when the program issues none or nothing can be
    promised now."""
    ov = await cabinet.overview(me.rt, me.session)
    tok = await _offline_token(me, ov, channel="app")
    if tok is None:
        return Response(
            orjson.dumps({"code": "offline_token_unavailable"}),
            status_code=404,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )
    return Response(
        orjson.dumps(
            {
                "token": tok.token,
                "token_id": tok.token_id,
                "key_id": tok.key_id,
                "cap": f"{tok.cap:.2f}",
                "issued_at": tok.issued_at.isoformat(),
                "expires_at": tok.expires_at.isoformat(),
                "svg": qr_svg(tok.token),
            }
        ),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@router.post("/my/{program}/card")
async def card_attach(request: Request, me: Me) -> Response:
    form = await _form(request)
    try:
        awarded = await cabinet.do_attach_card(me.rt, me.session, form.get("number", ""), ip=me.ip)
    except ServiceError as exc:
        ctx = await _card_ctx(me, values=form, errors={exc.field or "number": _message(exc)})
        return _page(request, "card.html", ctx, status=exc.status)
    msg = (
        "The card is registered; welcome points are on your account."
        if awarded
        else ("The card is registered.")
    )
    from kopilka.web.i18n import gettext
    from kopilka.web.templating import lang_of

    return redirect(f"{me.base}/card", flash=gettext(lang_of(request), msg, "cabinet"))


@router.get("/my/{program}/profile")
async def profile(request: Request, me: Me) -> Response:
    ov = await cabinet.overview(me.rt, me.session)
    values = {
        "first_name": ov.first_name,
        "last_name": ov.last_name,
        "email": ov.email or "",
        "birthday": "" if ov.birthday is None else ov.birthday.isoformat(),
        "consent_sms": "on" if ov.consent_sms else "",
        "consent_email": "on" if ov.consent_email else "",
    }
    return _page(
        request,
        "profile.html",
        {"me": me, "ov": ov, "values": values, "errors": {}, "tab": "profile"},
    )


@router.post("/my/{program}/profile")
async def profile_save(request: Request, me: Me) -> Response:
    form = await _form(request)
    try:
        p = cabinet.parse_profile(form)
        await cabinet.do_update_profile(me.rt, me.session, p, ip=me.ip)
    except ServiceError as exc:
        ov = await cabinet.overview(me.rt, me.session)
        ctx = {
            "me": me,
            "ov": ov,
            "values": form,
            "errors": {exc.field or "": _message(exc)},
            "tab": "profile",
        }
        return _page(request, "profile.html", ctx, status=exc.status)
    from kopilka.web.i18n import gettext
    from kopilka.web.templating import lang_of

    return redirect(f"{me.base}/profile", flash=gettext(lang_of(request), "Saved.", "cabinet"))


@router.get("/my/{program}/data")
async def data(request: Request, me: Me) -> Response:
    return _page(request, "data.html", {"me": me, "values": {}, "errors": {}, "tab": "profile"})


@router.get("/my/{program}/data/export.json")
async def data_export(request: Request, me: Me) -> Response:
    doc = await cabinet.export_personal_data(me.rt, me.session)
    return Response(
        orjson.dumps(doc, option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="my-data.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/my/{program}/data/delete")
async def data_delete(request: Request, me: Me) -> Response:
    form = await _form(request)
    try:
        await cabinet.do_delete_personal_data(me.rt, me.session, form.get("confirm", ""), ip=me.ip)
    except ServiceError as exc:
        ctx = {"me": me, "values": form, "errors": {"confirm": _message(exc)}, "tab": "profile"}
        return _page(request, "data.html", ctx, status=exc.status)
    resp = _page(request, "deleted.html", {"program": me.program})
    resp.delete_cookie(MEMBER_COOKIE, path="/my")
    return resp


def install_handlers(app: FastAPI) -> None:
    """A member without a session goes to the program's login page; a stale form is a
    403 page."""

    @app.exception_handler(MemberLoginRequired)
    async def _login(request: Request, exc: MemberLoginRequired) -> Response:
        return redirect(f"/my/{exc.program}/login")

    @app.exception_handler(MemberCsrfFailed)
    async def _csrf(request: Request, exc: MemberCsrfFailed) -> Response:
        ctx = {"title": "Access denied", "detail": "The form has expired; please try again."}
        return render(request, "error.html", ctx, status=403)
