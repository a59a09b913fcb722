"""Admin API: campaigns (issue 7) — the same service as the console
(``services.campaigns``), token-authenticated.  Creating needs ``programs.write``
(audited ``campaign.create``), listing and the report ``programs.read``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from kopilka.api.admin.common import ok as _ok
from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.common import who as _who
from kopilka.api.admin.routes import ERRORS, JSON, SECURITY
from kopilka.api.pos.schemas import Strict
from kopilka.domain.money import fmt2
from kopilka.domain.roles import Perm
from kopilka.services import audit, campaigns
from kopilka.services.errors import ServiceError

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])
Words = list[Annotated[str, Field(min_length=1, max_length=100)]]


class AudienceIn(Strict):
    rfm: Words = Field(default_factory=list, description="RFM segments (any of them)")
    tiers: Words = Field(default_factory=list, description="tiers (any of them)")
    cities: Words = Field(default_factory=list, description="home store's or a purchase's city")
    stores: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, description="store ids: the home store or a store bought at"
    )
    days_min: Annotated[int, Field(ge=0, le=36500)] | None = Field(
        None, description="at least this many days since the last purchase (or never bought)"
    )
    days_max: Annotated[int, Field(ge=0, le=36500)] | None = Field(
        None, description="a purchase within this many days"
    )
    birthday_month: Annotated[int, Field(ge=1, le=12)] | None = None
    tags: Words = Field(default_factory=list, description="customer groups (any of them)")
    listed: list[Annotated[str, Field(min_length=5, max_length=32)]] = Field(
        default_factory=list, max_length=100_000, description="phones or card numbers"
    )


class CampaignIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    channel: Annotated[str, Field(pattern="^(sms|email)$")]
    subject: Annotated[str, Field(max_length=300)] | None = Field(None, description="e-mail")
    body: Annotated[str, Field(min_length=1, max_length=5000)] = Field(
        description="sandboxed Jinja2: name, program, unsubscribe_url (added when missing)"
    )
    audience: AudienceIn = Field(default_factory=AudienceIn)
    send_at: datetime | None = Field(None, description="when; none: now")
    timezone: Annotated[str, Field(max_length=64)] | None = None
    quiet_start: Annotated[str, Field(pattern=r"^\d{1,2}:\d{2}$")] | None = None
    quiet_end: Annotated[str, Field(pattern=r"^\d{1,2}:\d{2}$")] | None = None
    cap_count: Annotated[int, Field(ge=1, le=100)] | None = None
    cap_days: Annotated[int, Field(ge=1, le=365)] | None = None
    control_percent: Annotated[int, Field(ge=0, le=50)] = 0
    response_days: Annotated[int, Field(ge=1, le=90)] = 14
    locale: Annotated[str, Field(pattern="^(ru|en)$")] = "ru"


SCHEMAS: tuple[type[BaseModel], ...] = (AudienceIn, CampaignIn)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _opt(v: int | None) -> str:
    return "" if v is None else str(v)


def _form(body: CampaignIn) -> tuple[dict[str, str], str]:
    """The service takes what the console's form sends."""
    a = body.audience
    values = {
        "name": body.name,
        "channel": body.channel,
        "subject": body.subject or "",
        "body": body.body,
        "send_at": body.send_at.isoformat() if body.send_at else "",
        "timezone": body.timezone or "",
        "quiet_start": body.quiet_start or "",
        "quiet_end": body.quiet_end or "",
        "cap_count": _opt(body.cap_count),
        "cap_days": _opt(body.cap_days),
        "control_percent": str(body.control_percent),
        "response_days": str(body.response_days),
        "rfm": ",".join(a.rfm),
        "tiers": ",".join(a.tiers),
        "cities": ",".join(a.cities),
        "stores": ",".join(map(str, a.stores)),
        "days_min": _opt(a.days_min),
        "days_max": _opt(a.days_max),
        "birthday_month": _opt(a.birthday_month),
        "tags": ",".join(a.tags),
    }
    return values, "\n".join(a.listed)


@router.post(
    "/programs/{code}/campaigns",
    responses=ERRORS,
    openapi_extra={
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/CampaignIn"}}},
        },
    },
    status_code=201,
    summary="Schedule a campaign (the worker sends it at send_at, outside quiet hours)",
)
async def create_campaign(request: Request, code: str) -> Response:
    actor, pid = await _who(request, code, Perm.PROGRAMS_WRITE)
    body = CampaignIn.model_validate_json(await request.body())
    values, listed = _form(body)
    cid = await campaigns.create(
        _rt(request), actor, pid, values, upload=listed or None, locale=body.locale
    )
    return _ok(await _campaign(request, actor, cid), status=201)


async def _campaign(request: Request, actor: audit.Actor, cid: int) -> dict[str, Any]:
    c = await campaigns.get(_rt(request), actor, cid)
    return {
        "id": c.id,
        "name": c.name,
        "channel": c.channel,
        "subject": c.subject,
        "body": c.body,
        "state": c.state,
        "send_at": _iso(c.send_at),
        "next_run_at": _iso(c.next_run_at),
        "timezone": c.timezone,
        "quiet_hours": [c.quiet_start, c.quiet_end] if c.quiet_start else None,
        "cap": {"count": c.cap_count, "days": c.cap_days} if c.cap_count else None,
        "control_percent": c.control_percent,
        "response_days": c.response_days,
        "audience": orjson.loads(c.audience.to_json()),
        "started_at": _iso(c.started_at),
        "finished_at": _iso(c.finished_at),
    }


@router.get(
    "/programs/{code}/campaigns",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="List campaigns, newest first",
)
async def list_campaigns(
    request: Request,
    code: str,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    actor, pid = await _who(request, code, Perm.PROGRAMS_READ)
    rows, total = await campaigns.list_campaigns(
        _rt(request), actor, pid, offset=offset, limit=limit
    )
    return _ok(
        {
            "total": total,
            "campaigns": [
                {
                    "id": r.id,
                    "name": r.name,
                    "channel": r.channel,
                    "state": r.state,
                    "send_at": _iso(r.send_at),
                    "recipients": r.recipients,
                    "sent": r.sent,
                }
                for r in rows
            ],
        }
    )


def _group(g: Any) -> dict[str, Any]:
    return {
        "customers": g.customers,
        "buyers": g.buyers,
        "purchases": g.purchases,
        "revenue": fmt2(g.revenue),
        "revenue_per_customer": fmt2(g.per_customer),
    }


@router.get(
    "/programs/{code}/campaigns/{campaign_id}/report",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Sent, delivered, failed; purchases and revenue, target vs control group",
)
async def campaign_report(request: Request, code: str, campaign_id: int) -> Response:
    actor, pid = await _who(request, code, Perm.PROGRAMS_READ)
    rep = await campaigns.report(_rt(request), actor, campaign_id)
    if rep.campaign.program_id != pid:
        raise ServiceError("not_found", "No such campaign.")
    return _ok(
        {
            "campaign": await _campaign(request, actor, campaign_id),
            "recipients": rep.recipients,
            "deliveries": rep.deliveries,
            "response": {
                "from": _iso(rep.window_from),
                "to": _iso(rep.window_to),
                "target": _group(rep.target),
                "control": _group(rep.control),
                "uplift_per_customer": fmt2(rep.uplift),
            },
        }
    )
