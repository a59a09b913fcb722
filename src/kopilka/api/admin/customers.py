"""Admin API: customers and cards (issue 6) — the same services as the console
(``services.customer_admin``), token-authenticated.

The token's name and role are the actor of every change (audit log); its role must
grant the permission (403 ``forbidden``), and a token limited to one program reaches no
other.  Every change needs a ``reason``.  A bad body is 422 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from kopilka.api.admin.common import ok as _ok
from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.common import who as _who
from kopilka.api.admin.routes import ERRORS, JSON, SECURITY
from kopilka.api.pos.schemas import NO_CONTROL, Strict
from kopilka.domain.money import fmt2
from kopilka.domain.roles import Perm
from kopilka.services import admin, customer_admin, erasure
from kopilka.services import consents as consent_records
from kopilka.services.errors import ServiceError

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])

Reason = Annotated[
    str,
    Field(
        min_length=3,
        max_length=500,
        pattern=NO_CONTROL,
        description="why (at least 3 characters); kept in the audit log",
    ),
]
AdjustPoints = Annotated[
    Decimal,
    Field(
        ge=Decimal("-10000000"),
        le=Decimal("10000000"),
        decimal_places=2,
        allow_inf_nan=False,
        description="credit (> 0) or debit (< 0), two decimals; never 0",
    ),
]
CardNumber = Annotated[str, Field(min_length=8, max_length=19, pattern=r"^\d+$")]


class AdjustIn(Strict):
    amount: AdjustPoints
    reason: Reason


class CardActionIn(Strict):
    reason: Reason


class ReplaceCardIn(Strict):
    new: CardNumber = Field(description="the new card's number (13 digits, EAN-13 check digit)")
    reason: Reason


class MergeIn(Strict):
    absorbed_id: Annotated[int, Field(ge=1)] = Field(
        description="the duplicate: its points, cards and coupons move to the customer in "
        "the URL; it is marked merged"
    )
    reason: Reason


class VirtualCardIn(Strict):
    reason: Reason


class ConsentsIn(Strict):
    sms: bool
    email: bool
    reason: Reason


class CityIn(Strict):
    city: Annotated[str, Field(max_length=100)] = Field(
        description="where the member lives, as typed (the territorial map); empty clears it"
    )
    reason: Reason


SCHEMAS: tuple[type[BaseModel], ...] = (
    AdjustIn,
    CardActionIn,
    ReplaceCardIn,
    MergeIn,
    VirtualCardIn,
    ConsentsIn,
    CityIn,
)


def _body(schema: str) -> dict[str, Any]:
    return {
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        },
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _partner_code(v: customer_admin.CustomerView, partner_id: int | None) -> str | None:
    return None if partner_id is None else v.partner_codes.get(partner_id, str(partner_id))


@router.get(
    "/programs/{code}/customers",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Find customers by phone, card / QR / RFID, last name (prefix) or e-mail",
)
async def search_customers(
    request: Request,
    code: str,
    q: Annotated[str, Query(min_length=1, max_length=100)],
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    sort: Annotated[str, Query(pattern="^(name|registered|balance)$")] = "name",
    dir: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
) -> Response:
    _, pid = await _who(request, code, Perm.CUSTOMERS_READ)
    found = await customer_admin.search(
        _rt(request), pid, q, offset=offset, limit=limit, sort=sort, descending=dir == "desc"
    )
    return _ok(
        {
            "matched_by": found.kind,
            "total": found.total,
            "customers": [
                {
                    "id": x.id,
                    "first_name": x.first_name,
                    "last_name": x.last_name,
                    "middle_name": x.middle_name,
                    "phone": x.phone,
                    "email": x.email,
                    "status": x.status,
                    "registered_at": _iso(x.registered_at),
                    "balance": fmt2(x.balance),
                    "card": x.card,
                }
                for x in found.items
            ],
        }
    )


def _customer_view(v: customer_admin.CustomerView) -> dict[str, Any]:
    return {
        "id": v.id,
        "first_name": v.first_name,
        "last_name": v.last_name,
        "middle_name": v.middle_name,
        "phone": v.phone,
        "email": v.email,
        "city": v.city,
        "birthday": v.birthday.isoformat() if v.birthday else None,
        "status": v.status,
        "merged_into_id": v.merged_into_id,
        "registered_at": _iso(v.registered_at),
        "phone_confirmed": v.phone_confirmed_at is not None,
        "consents": {"sms": v.consent_sms, "email": v.consent_email},
        "tags": v.tags,
        "segment": v.rfm_segment,
        "tier": v.tier,
        "discount_percent": None if v.discount_percent is None else fmt2(v.discount_percent),
        "balance": {
            "available": fmt2(v.balance.available),
            "pending": fmt2(v.balance.pending),
            "held": fmt2(v.balance.held),
            "debt": fmt2(v.balance.debt),
        },
        "lots": [
            {
                "remaining": fmt2(x.remaining),
                "activates_at": _iso(x.activates_at),
                "expires_at": _iso(x.expires_at),
                # coalitions (ADR 0024): the issuing partner's code (null: the program),
                # and where the points can be burned (null: anywhere)
                "funded_by": _partner_code(v, x.funding_partner_id),
                "burn_at": _partner_code(v, x.burn_partner_id),
            }
            for x in v.lots
        ],
        "cards": [
            {
                "number": x.number,
                "kind": x.kind,
                "status": x.status,
                "replaced_by": x.replaced_by,
                "created_at": _iso(x.created_at),
            }
            for x in v.cards
        ],
        "coupons": [{"code": x.code, "series": x.series, "status": x.status} for x in v.coupons],
    }


@router.get(
    "/programs/{code}/customers/{customer_id}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="A customer: identity, consents, balance (available, pending, held), lots, cards",
)
async def get_customer(request: Request, code: str, customer_id: int) -> Response:
    _, pid = await _who(request, code, Perm.CUSTOMERS_READ)
    view = await customer_admin.get_customer(_rt(request), pid, customer_id)
    return _ok(_customer_view(view))


@router.post(
    "/programs/{code}/customers/{customer_id}/adjust",
    responses=ERRORS,
    openapi_extra=_body("AdjustIn"),
    summary="Credit or debit points by hand, with a reason (audit log)",
)
async def adjust(request: Request, code: str, customer_id: int) -> Response:
    actor, pid = await _who(request, code, Perm.CUSTOMERS_WRITE)
    body = AdjustIn.model_validate_json(await request.body())
    out = await customer_admin.adjust(
        _rt(request), actor, pid, customer_id, body.amount, reason=body.reason
    )
    return _ok({"customer_id": customer_id, **out})


@router.post(
    "/programs/{code}/customers/{customer_id}/city",
    responses=ERRORS,
    openapi_extra=_body("CityIn"),
    summary="Set where the member lives (the territorial map's far members), with a reason",
)
async def set_city(request: Request, code: str, customer_id: int) -> Response:
    actor, pid = await _who(request, code, Perm.CUSTOMERS_WRITE)
    body = CityIn.model_validate_json(await request.body())
    await customer_admin.set_city(
        _rt(request), actor, pid, customer_id, city=body.city, reason=body.reason
    )
    view = await customer_admin.get_customer(_rt(request), pid, customer_id)
    return _ok({"customer_id": customer_id, "city": view.city})


@router.post(
    "/programs/{code}/cards/{number}/block",
    responses=ERRORS,
    openapi_extra=_body("CardActionIn"),
    summary="Block a card: the till refuses it (422 card_blocked); the balance stays",
)
async def block_card(request: Request, code: str, number: str) -> Response:
    actor, pid = await _who(request, code, Perm.CARDS_BLOCK)
    body = CardActionIn.model_validate_json(await request.body())
    cid = await customer_admin.block_card(_rt(request), actor, pid, number, reason=body.reason)
    return _ok({"number": number, "status": "blocked", "customer_id": cid})


@router.post(
    "/programs/{code}/cards/{number}/unblock",
    responses=ERRORS,
    openapi_extra=_body("CardActionIn"),
    summary="Unblock a blocked card",
)
async def unblock_card(request: Request, code: str, number: str) -> Response:
    actor, pid = await _who(request, code, Perm.CARDS_BLOCK)
    body = CardActionIn.model_validate_json(await request.body())
    cid = await customer_admin.unblock_card(_rt(request), actor, pid, number, reason=body.reason)
    return _ok({"number": number, "status": "active", "customer_id": cid})


@router.post(
    "/programs/{code}/cards/{number}/replace",
    responses=ERRORS,
    openapi_extra=_body("ReplaceCardIn"),
    summary="Replace a lost card: the new card joins the same account (balance stays)",
)
async def replace_card(request: Request, code: str, number: str) -> Response:
    actor, pid = await _who(request, code, Perm.CUSTOMERS_WRITE)
    body = ReplaceCardIn.model_validate_json(await request.body())
    cid = await customer_admin.replace_card(
        _rt(request), actor, pid, number, body.new, reason=body.reason
    )
    return _ok({"number": number, "status": "replaced", "new": body.new, "customer_id": cid})


@router.post(
    "/programs/{code}/customers/{customer_id}/merge",
    responses=ERRORS,
    openapi_extra=_body("MergeIn"),
    summary="Merge a duplicate into this customer: points (by lot), cards and coupons move",
)
async def merge(request: Request, code: str, customer_id: int) -> Response:
    actor, pid = await _who(request, code, Perm.CUSTOMERS_WRITE)
    body = MergeIn.model_validate_json(await request.body())
    out = await customer_admin.merge(
        _rt(request), actor, pid, customer_id, body.absorbed_id, reason=body.reason
    )
    return _ok(out)


@router.post(
    "/programs/{code}/customers/{customer_id}/virtual-card",
    responses=ERRORS,
    openapi_extra=_body("VirtualCardIn"),
    status_code=201,
    summary="Issue a virtual card on the customer's account",
)
async def virtual_card(request: Request, code: str, customer_id: int) -> Response:
    actor, pid = await _who(request, code, Perm.CUSTOMERS_WRITE)
    body = VirtualCardIn.model_validate_json(await request.body())
    number = await customer_admin.issue_virtual_card(
        _rt(request), actor, pid, customer_id, reason=body.reason
    )
    return _ok({"customer_id": customer_id, "number": number, "kind": "virtual"}, 201)


@router.put(
    "/programs/{code}/customers/{customer_id}/consents",
    responses=ERRORS,
    openapi_extra=_body("ConsentsIn"),
    summary="Set the customer's consents to SMS and e-mail messages",
)
async def consents(request: Request, code: str, customer_id: int) -> Response:
    actor, pid = await _who(request, code, Perm.CUSTOMERS_WRITE)
    body = ConsentsIn.model_validate_json(await request.body())
    await customer_admin.set_consents(
        _rt(request), actor, pid, customer_id, sms=body.sms, email=body.email, reason=body.reason
    )
    return _ok({"customer_id": customer_id, "consents": {"sms": body.sms, "email": body.email}})


# --- consent history and erasure (issue 10) -----------------------------------------------


class EraseIn(Strict):
    confirm: Annotated[int, Field(ge=1)] = Field(
        description="the customer's id again: erasure cannot be undone"
    )
    reason: Reason


SCHEMAS = (*SCHEMAS, EraseIn)


@router.get(
    "/programs/{code}/customers/{customer_id}/consents",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The customer's consent history: channel, granted or withdrawn, time, text "
    "version and its SHA-256, source",
)
async def consent_history(request: Request, code: str, customer_id: int) -> Response:
    _, pid = await _who(request, code, Perm.CUSTOMERS_READ)
    await customer_admin.get_customer(_rt(request), pid, customer_id)  # 404 if not here
    rows = await consent_records.history(_rt(request), pid, customer_id)
    return _ok(
        {
            "customer_id": customer_id,
            "records": [
                {
                    "channel": r.channel,
                    "granted": r.granted,
                    "at": _iso(r.at),
                    "text_version": r.text_version,
                    "text_sha256": r.text_hash,
                    "source": r.source,
                    "actor": r.actor,
                }
                for r in rows
            ],
        }
    )


async def _erase(request: Request, code: str, customer_id: int) -> Response:
    actor, pid = await _who(request, code, Perm.CUSTOMERS_WRITE)
    body = EraseIn.model_validate_json(await request.body())
    if body.confirm != customer_id:
        raise ServiceError(
            "validation_failed", "confirm with the customer's id from the URL", field="confirm"
        )
    pseudonym = await erasure.do_erase_customer(
        _rt(request), actor, pid, customer_id, reason=body.reason
    )
    return _ok({"customer_id": customer_id, "status": "deleted", "pseudonym": pseudonym})


@router.post(
    "/programs/{code}/customers/{customer_id}/erase",
    responses=ERRORS,
    openapi_extra=_body("EraseIn"),
    summary="Erase the customer's personal data (irreversible); points, receipts and the "
    "ledger stay under a pseudonym",
)
async def erase(request: Request, code: str, customer_id: int) -> Response:
    return await _erase(request, code, customer_id)


@router.post(
    "/customers/{customer_id}/erase",
    responses=ERRORS,
    openapi_extra=_body("EraseIn"),
    summary="The same, found by the customer's id alone",
)
async def erase_by_id(request: Request, customer_id: int) -> Response:
    token = await admin.check_token(_rt(request), request.headers.get("authorization", ""))
    token.actor().require(Perm.CUSTOMERS_WRITE)  # the permission first: 403 without it
    code = await customer_admin.program_code_of(_rt(request), customer_id)
    if token.program_code is not None and code != token.program_code:
        # the URL names a customer, not a program: one outside the token's scope is not
        # found (ADR 0026), as it would be under /programs/{code}/customers/{id}
        raise ServiceError("not_found", "no such customer", field="customer_id")
    return await _erase(request, code, customer_id)
