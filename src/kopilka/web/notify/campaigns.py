"""Campaigns: /admin/campaigns (list, the builder with a live audience count, the report)
and the customer's unsubscribe page /unsubscribe/{token} (no login)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain import campaigns as dc
from kopilka.domain.roles import Perm
from kopilka.services import campaigns
from kopilka.services.errors import ServiceError
from kopilka.web.auth import Console, client_ip, console
from kopilka.web.notify.common import field_errors, form_values, message
from kopilka.web.tables import PageRequest
from kopilka.web.templating import redirect, render

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.PROGRAMS_READ))
WRITE = Depends(console(Perm.PROGRAMS_WRITE))
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@router.get("/admin/campaigns")
async def campaign_list(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    pr = PageRequest.of(request, sorts=campaigns.SORTS, default="id", default_dir="desc")
    rows, total = await campaigns.list_campaigns(
        c.rt,
        c.actor,
        prog.id,
        sort=pr.sort,
        descending=pr.descending,
        offset=pr.offset,
        limit=pr.limit,
    )
    return render(request, "notify/campaigns.html", {"page": pr.page(rows, total)})


async def _form(
    request: Request,
    c: Console,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    prog = c.need_program()
    opts = await campaigns.audience_options(c.rt, c.actor, prog.id)
    values.setdefault("timezone", opts.timezone)
    return render(
        request,
        "notify/campaign_form.html",
        {
            "values": values,
            "errors": errors or {},
            "opts": opts,
            "months": MONTHS,
            "chosen": {k: set(values.get(k, "").split(",")) for k in ("rfm", "tiers", "cities")},
            "chosen_stores": set(values.get("stores", "").split(",")),
        },
        status=status,
    )


@router.get("/admin/campaigns/new")
async def campaign_new(request: Request, c: Annotated[Console, WRITE]) -> Response:
    return await _form(
        request,
        c,
        {"channel": "sms", "control_percent": "10", "response_days": "14"},
    )


@router.post("/admin/campaigns/count")
async def campaign_count(request: Request, c: Annotated[Console, WRITE]) -> Response:
    """The builder's live answer (htmx): how many customers, and the text as they see it."""
    prog = c.need_program()
    values, upload = await form_values(request)
    channel = values.get("channel", "sms")
    count: int | None = None
    error = preview = preview_error = None
    try:
        aud = dc.parse_audience(values, upload)
        count = await campaigns.audience_count(c.rt, c.actor, prog.id, aud, channel)
    except dc.Invalid as exc:
        error = message(c, exc.detail)
    except ServiceError as exc:
        error = message(c, exc)
    if (values.get("body") or "").strip():
        try:
            preview = campaigns.preview(
                channel, values.get("body", ""), values.get("subject"), locale=c.lang
            )
        except ServiceError as exc:
            preview_error = message(c, exc)
    return render(
        request,
        "notify/_audience_count.html",
        {
            "count": count,
            "error": error,
            "channel": channel,
            "preview": preview,
            "preview_error": preview_error,
        },
    )


@router.post("/admin/campaigns/new")
async def campaign_create(request: Request, c: Annotated[Console, WRITE]) -> Response:
    prog = c.need_program()
    values, upload = await form_values(request)
    try:
        cid = await campaigns.create(c.rt, c.actor, prog.id, values, upload=upload, locale=c.lang)
    except ServiceError as exc:
        if exc.status == 403:
            raise
        return await _form(request, c, values, field_errors(c, exc, "name"), status=422)
    return redirect(f"/admin/campaigns/{cid}", flash=message(c, "Campaign scheduled."))


@router.get("/admin/campaigns/{campaign_id}")
async def campaign_page(
    request: Request, campaign_id: int, c: Annotated[Console, READ]
) -> Response:
    rep = await campaigns.report(c.rt, c.actor, campaign_id)
    opts = await campaigns.audience_options(c.rt, c.actor, rep.campaign.program_id)
    names = {str(i): name for i, name in opts.stores}
    audience = [
        (
            label,
            ", ".join(names.get(x, x) for x in value.split(", ")) if label == "Store" else value,
        )
        for label, value in rep.campaign.audience.describe()
    ]
    return render(request, "notify/campaign.html", {"r": rep, "audience": audience})


@router.post("/admin/campaigns/{campaign_id}/cancel")
async def campaign_cancel(
    request: Request, campaign_id: int, c: Annotated[Console, WRITE]
) -> Response:
    try:
        await campaigns.cancel(c.rt, c.actor, campaign_id)
    except ServiceError as exc:
        if exc.status in (403, 404):
            raise
        return redirect(f"/admin/campaigns/{campaign_id}", flash=message(c, exc))
    return redirect(f"/admin/campaigns/{campaign_id}", flash=message(c, "Campaign cancelled."))


# --- the customer's side: no login, the signed link is the permission ---------------------------


@router.get("/unsubscribe/{token}")
async def unsubscribe_page(request: Request, token: str) -> Response:
    target = await campaigns.unsubscribe_target(request.app.state.runtime, token)
    status = 200 if target is not None else 404
    return render(
        request,
        "notify/unsubscribe.html",
        {"target": target, "token": token, "done": None},
        status=status,
    )


@router.post("/unsubscribe/{token}")
async def unsubscribe_do(request: Request, token: str) -> Response:
    done = await campaigns.unsubscribe(request.app.state.runtime, token, ip=client_ip(request))
    return render(
        request,
        "notify/unsubscribe.html",
        {"target": (done.program, done.channel) if done else None, "token": token, "done": done},
        status=200 if done else 404,
    )
