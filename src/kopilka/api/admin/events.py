"""``POST /api/admin/v1/events``: a partner system or the cabinet reports an activity
(survey answered, review, an event of its own) and the member gets its points
(docs/activities.md).

Authenticated with an admin token (``Authorization: Bearer <key>``) limited to the
program or reaching every program, whose role grants ``events.award`` (owner, support,
partner).  A partner's token (``kopilka admin token add --role partner --partner CODE``)
awards in its own program only, funded by its own partner: ``partner`` may be omitted or
name itself, another partner is refused (403).  Idempotent by ``idempotency_key``: a
retry answers the first award, with the same body.

Personal offers assign a promotion: ``programs.write`` (owner, marketer).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from starlette.responses import Response

from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.routes import ERRORS, JSON, SECURITY
from kopilka.domain.roles import Perm
from kopilka.services import activities, admin, offers, views
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])


class CustomerRef(BaseModel):
    """Exactly one of: a card number (or QR token), a phone, the customer's id."""

    model_config = ConfigDict(extra="forbid")

    card: str | None = Field(default=None, min_length=1, max_length=64)
    phone: str | None = Field(default=None, min_length=1, max_length=32)
    id: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> CustomerRef:
        if sum(x is not None for x in (self.card, self.phone, self.id)) != 1:
            raise ValueError("name the customer by exactly one of card, phone, id")
        return self


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    program: str = Field(min_length=1, max_length=64)
    customer: CustomerRef
    activity: str = Field(min_length=1, max_length=64)
    idempotency_key: str = Field(min_length=1, max_length=128)
    points: Decimal | None = Field(default=None, gt=0, decimal_places=2)
    partner: str | None = Field(default=None, min_length=1, max_length=64)


class OfferIn(BaseModel):
    """Assign a promotion to a customer as his personal offer (or withdraw it)."""

    model_config = ConfigDict(extra="forbid")

    program: str = Field(min_length=1, max_length=64)
    customer: CustomerRef
    promotion: str = Field(min_length=1, max_length=64)
    valid_until: AwareDatetime | None = None


SCHEMAS: tuple[type[BaseModel], ...] = (EventIn, OfferIn)


async def _partner_id(rt: Runtime, program_id: int, code: str | None) -> int | None:
    if code is None:
        return None
    async with rt.engine.connect() as conn:
        pid = (
            await conn.execute(
                select(t.partners.c.id).where(
                    t.partners.c.program_id == program_id, t.partners.c.code == code
                )
            )
        ).scalar_one_or_none()
    if pid is None:
        raise activities.ActivityError(
            "partner_not_found",
            f"no partner {code!r}",
            field="partner",
        )
    return int(pid)


@router.post(
    "/events",
    responses=ERRORS,
    openapi_extra={
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/EventIn"}}},
        },
    },
    summary="Points for an activity (idempotent by key; limits per the activity's rule)",
)
async def post_event(request: Request) -> Response:
    rt = _rt(request)
    token = await admin.check_token(rt, request.headers.get("authorization", ""))
    token.actor().require(Perm.EVENTS_AWARD)
    body = EventIn.model_validate_json(await request.body())
    token.check_program(body.program)
    program_id = await activities.program_id_of(rt, body.program)
    funding = await _partner_id(rt, program_id, body.partner)
    if token.partner_id is not None:
        # a partner's system awards what its partner funds, never another's
        if funding not in (None, token.partner_id):
            raise ServiceError(
                "forbidden", "this token awards for its own partner only", field="partner"
            )
        funding = token.partner_id
    account_id = await activities.find_account(
        rt,
        program_id=program_id,
        card=body.customer.card,
        phone=body.customer.phone,
        customer_id=body.customer.id,
    )
    award = await activities.do_award(
        rt,
        program_id=program_id,
        account_id=account_id,
        activity=body.activity,
        idempotency_key=body.idempotency_key,
        points=body.points,
        # the funding partner: the entry's ``funding_partner_id`` and, since a partner's own
        # event happens "at" that partner, its ``partner_id`` too (ADR 0024)
        partner_id=funding,
        rules=activities.rules_for(await rt.compiled(program_id)),
    )
    out: dict[str, Any] = {
        "event_id": award.event_id,
        "program": body.program,
        "account_id": award.account_id,
        "activity": award.activity,
        "points": str(award.points),
        "idempotency_key": award.idempotency_key,
        "created_at": views.iso(award.created_at),
    }
    return Response(views.dumps(out), status_code=200, media_type=JSON)


def _offer_body() -> dict[str, Any]:
    return {
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/OfferIn"}}},
        },
    }


async def _offer_target(request: Request) -> tuple[Runtime, OfferIn, int, int]:
    rt = _rt(request)
    token = await admin.check_token(rt, request.headers.get("authorization", ""))
    token.actor().require(Perm.PROGRAMS_WRITE)
    body = OfferIn.model_validate_json(await request.body())
    token.check_program(body.program)
    program_id = await activities.program_id_of(rt, body.program)
    account_id = await activities.find_account(
        rt,
        program_id=program_id,
        card=body.customer.card,
        phone=body.customer.phone,
        customer_id=body.customer.id,
    )
    async with rt.engine.connect() as conn:
        customer_id = (
            await conn.execute(
                select(t.accounts.c.customer_id).where(t.accounts.c.id == account_id)
            )
        ).scalar_one()
    return rt, body, program_id, int(customer_id)


@router.post(
    "/personal-offers",
    responses=ERRORS,
    openapi_extra=_offer_body(),
    summary="Assign a promotion to a customer as a personal offer (shown at lookup)",
)
async def post_offer(request: Request) -> Response:
    rt, body, program_id, customer_id = await _offer_target(request)
    out = await offers.do_assign(
        rt,
        program_id=program_id,
        customer_id=customer_id,
        promotion_id=body.promotion,
        valid_until=body.valid_until,
    )
    return Response(views.dumps(out), status_code=201, media_type=JSON)


@router.post(
    "/personal-offers/withdraw",
    responses=ERRORS,
    openapi_extra=_offer_body(),
    summary="Withdraw a customer's personal offer",
)
async def withdraw_offer(request: Request) -> Response:
    rt, body, program_id, customer_id = await _offer_target(request)
    gone = await offers.do_withdraw(
        rt, program_id=program_id, customer_id=customer_id, promotion_id=body.promotion
    )
    return Response(views.dumps({"withdrawn": gone}), status_code=200, media_type=JSON)
