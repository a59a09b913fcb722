"""Message templates per program and language: /admin/message-templates, with a live
preview (sample values, the SMS length and parts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.services import notify_admin
from kopilka.services.errors import ServiceError
from kopilka.web.auth import Console, console
from kopilka.web.notify.common import field_errors, form_values, message
from kopilka.web.templating import redirect, render

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.PROGRAMS_READ))
WRITE = Depends(console(Perm.PROGRAMS_WRITE))
BASE = "/admin/message-templates"
LABELS = {
    "purchase_confirmed": "Points for a purchase",
    "welcome": "Welcome",
    "login_code": "Login code",
    "points_expiring": "Points expiring soon",
    "tier_changed": "New tier",
    "discount_changed": "New discount",
    "birthday": "Birthday",
    "coupon_issued": "Coupon issued",
    "giftcard_balance": "Gift card balance",
    "draw_won": "Draw won",
}


@router.get(BASE)
async def template_list(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    rows = await notify_admin.list_templates(c.rt, c.actor, prog.id)
    lang = request.query_params.get("lang", "")
    if lang in notify_admin.LOCALES:
        rows = [r for r in rows if r.locale == lang]
    return render(request, "notify/templates.html", {"rows": rows, "lang": lang, "labels": LABELS})


async def _edit(
    request: Request,
    c: Console,
    name: str,
    channel: str,
    locale: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    prog = c.need_program()
    tpl, own = await notify_admin.get_template(c.rt, c.actor, prog.id, name, channel, locale)
    values = values or {"body": tpl.body, "subject": tpl.subject or ""}
    preview, preview_error = _preview(c, name, channel, locale, values, prog.name)
    return render(
        request,
        "notify/template_edit.html",
        {
            "name": name,
            "channel": channel,
            "locale": locale,
            "own": own,
            "values": values,
            "errors": errors or {},
            "preview": preview,
            "preview_error": preview_error,
            "base": BASE,
            "label": LABELS.get(name, name),
        },
        status=status,
    )


def _preview(
    c: Console, name: str, channel: str, locale: str, values: dict[str, str], program: str
) -> tuple[object | None, str | None]:
    try:
        return (
            notify_admin.check(
                name, channel, locale, values.get("body", ""), values.get("subject"), program
            ),
            None,
        )
    except ServiceError as exc:
        return None, message(c, exc)


@router.get(BASE + "/{name}/{channel}/{locale}")
async def template_edit(
    request: Request, name: str, channel: str, locale: str, c: Annotated[Console, READ]
) -> Response:
    return await _edit(request, c, name, channel, locale)


@router.post(BASE + "/{name}/{channel}/{locale}/preview")
async def template_preview(
    request: Request, name: str, channel: str, locale: str, c: Annotated[Console, READ]
) -> Response:
    prog = c.need_program()
    values, _ = await form_values(request)
    preview, preview_error = _preview(c, name, channel, locale, values, prog.name)
    return render(
        request,
        "notify/_template_preview.html",
        {"preview": preview, "preview_error": preview_error},
    )


@router.post(BASE + "/{name}/{channel}/{locale}")
async def template_save(
    request: Request, name: str, channel: str, locale: str, c: Annotated[Console, WRITE]
) -> Response:
    prog = c.need_program()
    values, _ = await form_values(request)
    try:
        await notify_admin.save_template(
            c.rt,
            c.actor,
            prog.id,
            name,
            channel,
            locale,
            body=values.get("body", ""),
            subject=values.get("subject"),
            program=prog.name,
        )
    except ServiceError as exc:
        if exc.status in (403, 404):
            raise
        errors = field_errors(c, exc, "body")
        return await _edit(
            request, c, name, channel, locale, values=values, errors=errors, status=422
        )
    return redirect(f"{BASE}/{name}/{channel}/{locale}", flash=message(c, "Template saved."))


@router.post(BASE + "/{name}/{channel}/{locale}/reset")
async def template_reset(
    request: Request, name: str, channel: str, locale: str, c: Annotated[Console, WRITE]
) -> Response:
    prog = c.need_program()
    await notify_admin.reset_template(c.rt, c.actor, prog.id, name, channel, locale)
    return redirect(
        f"{BASE}/{name}/{channel}/{locale}", flash=message(c, "The standard text is back.")
    )
