"""Partners' webhook endpoints: /admin/webhooks (``audit.read`` to see; the owner
(``users.manage``) adds them, rotates a secret, switches one off)."""

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
READ = Depends(console(Perm.AUDIT_READ))
MANAGE = Depends(console(Perm.USERS_MANAGE))


async def _page(
    request: Request,
    c: Console,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    secret: tuple[int, str] | None = None,
    status: int = 200,
) -> Response:
    prog = c.need_program()
    rows = await notify_admin.list_webhooks(c.rt, c.actor, prog.id)
    return render(
        request,
        "notify/webhooks.html",
        {
            "rows": rows,
            "values": values or {"topics": "*"},
            "errors": errors or {},
            "secret": secret,
        },
        status=status,
    )


@router.get("/admin/webhooks")
async def webhook_list(request: Request, c: Annotated[Console, READ]) -> Response:
    return await _page(request, c)


@router.post("/admin/webhooks")
async def webhook_add(request: Request, c: Annotated[Console, MANAGE]) -> Response:
    prog = c.need_program()
    values, _ = await form_values(request)
    try:
        wid, secret = await notify_admin.add_webhook(
            c.rt, c.actor, prog.id, url=values.get("url", ""), topics=values.get("topics", "")
        )
    except ServiceError as exc:
        if exc.status == 403:
            raise
        return await _page(
            request, c, values=values, errors=field_errors(c, exc, "url"), status=422
        )
    # the secret is shown on this answer only, never again
    return await _page(request, c, secret=(wid, secret))


@router.post("/admin/webhooks/{webhook_id}/rotate")
async def webhook_rotate(
    request: Request, webhook_id: int, c: Annotated[Console, MANAGE]
) -> Response:
    prog = c.need_program()
    secret = await notify_admin.rotate_secret(c.rt, c.actor, prog.id, webhook_id)
    return await _page(request, c, secret=(webhook_id, secret))


@router.post("/admin/webhooks/{webhook_id}/{action}")
async def webhook_switch(
    request: Request, webhook_id: int, action: str, c: Annotated[Console, MANAGE]
) -> Response:
    prog = c.need_program()
    if action not in ("disable", "enable"):
        return redirect("/admin/webhooks")
    await notify_admin.set_disabled(c.rt, c.actor, prog.id, webhook_id, action == "disable")
    done = "Webhook switched off." if action == "disable" else "Webhook switched on."
    return redirect("/admin/webhooks", flash=message(c, done))
