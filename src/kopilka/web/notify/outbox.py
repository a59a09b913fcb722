"""Deliveries by state and dead letters put back in the queue: /admin/outbox
(``audit.read``: the owner and security; a retry is audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.notify.states import STATES
from kopilka.services import notify_admin
from kopilka.web.auth import Console, console
from kopilka.web.notify.common import message
from kopilka.web.tables import PageRequest
from kopilka.web.templating import redirect, render

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.AUDIT_READ))
LABELS = {
    "pending": "Waiting",
    "sending": "Sending",
    "delivered": "Delivered",
    "failed": "Refused",
    "dead": "Dead letters",
}


@router.get("/admin/outbox")
async def outbox_page(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    state = request.query_params.get("state", "")
    state = state if state in STATES else ""
    pr = PageRequest.of(
        request, sorts=notify_admin.DELIVERY_SORTS, default="id", default_dir="desc"
    )
    rows, total, by_state = await notify_admin.list_deliveries(
        c.rt,
        c.actor,
        prog.id,
        state=state,
        sort=pr.sort,
        descending=pr.descending,
        offset=pr.offset,
        limit=pr.limit,
    )
    return render(
        request,
        "notify/outbox.html",
        {
            "page": pr.page(rows, total),
            "state": state,
            "states": STATES,
            "by_state": by_state,
            "labels": LABELS,
        },
    )


@router.post("/admin/outbox/retry")
async def outbox_retry(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    form = await request.form()
    ids = [int(x) for x in form.getlist("id") if isinstance(x, str) and x.isdigit()]
    everything = form.get("all") == "1"
    if not ids and not everything:
        return redirect("/admin/outbox?state=dead", flash=message(c, "Choose messages to retry."))
    n = await notify_admin.retry_deliveries(c.rt, c.actor, prog.id, None if everything else ids)
    return redirect(
        "/admin/outbox?state=pending",
        flash=f"{message(c, 'Queued again')}: {n}",
    )
