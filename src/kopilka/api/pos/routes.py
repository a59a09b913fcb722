"""POS API v1 (../shared/POS_API.md): thin handlers over the services.

Handlers read the raw body and validate it with the strict models themselves (one parse,
no framework-level JSON round trips), and answer with bytes the services built, so a
repeated call gets the first answer byte for byte.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from kopilka.api import problems
from kopilka.api.pos.schemas import (
    BatchIn,
    ConfirmIn,
    CustomerIn,
    PhoneCodeIn,
    PurchaseIn,
    RefundIn,
)
from kopilka.domain.money import ZERO, fmt2, q2
from kopilka.domain.receipt import Basket, BasketLine
from kopilka.services import customers, purchases, refunds
from kopilka.services.errors import ServiceError
from kopilka.services.phones import to_e164
from kopilka.services.runtime import Runtime, Terminal

router = APIRouter(prefix="/api/pos/v1", tags=["POS"])
JSON = "application/json"
AMOUNT_TOLERANCE = Decimal("0.01")


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def _auth(request: Request) -> Terminal:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ServiceError("unauthorized", "send the terminal key as 'Authorization: Bearer <key>'")
    term = await _rt(request).terminal_by_key(key.strip())
    if term is None:
        raise ServiceError("unauthorized", "unknown terminal key")
    if not term.active:
        raise ServiceError("terminal_disabled", "this terminal is disabled")
    return term


def _body(model: type[BaseModel], raw: bytes, *, optional: bool = False) -> Any:
    if optional and not raw.strip():
        return model()
    return model.model_validate_json(raw)


def to_request(body: PurchaseIn) -> purchases.PurchaseRequest:
    """The edge's checks that need arithmetic: lines must add up to what the POS says."""
    lines = []
    total = ZERO
    for i, ln in enumerate(body.lines):
        amount = q2(ln.quantity * ln.price)
        if ln.amount is not None and abs(ln.amount - amount) > AMOUNT_TOLERANCE:
            raise ServiceError(
                "lines_do_not_add_up",
                f"quantity x price is {fmt2(amount)}, amount says {fmt2(ln.amount)}",
                field=f"lines[{i}].amount",
                expected=fmt2(amount),
            )
        discount = ln.discount or ZERO
        if discount > amount:
            raise ServiceError(
                "lines_do_not_add_up",
                f"discount {fmt2(discount)} exceeds the line amount {fmt2(amount)}",
                field=f"lines[{i}].discount",
            )
        total += amount - discount
        lines.append(BasketLine(ln.sku, ln.name, ln.category, ln.quantity, ln.price, discount))
    if body.total is not None and abs(body.total - total) > AMOUNT_TOLERANCE * len(lines):
        raise ServiceError(
            "lines_do_not_add_up",
            f"the lines add up to {fmt2(total)}, total says {fmt2(body.total)}",
            field="total",
            expected=fmt2(total),
        )
    redeem: Decimal | str | None = body.redeem_points
    return purchases.PurchaseRequest(
        receipt_id=body.receipt_id,
        identifier=body.identifier,
        occurred_at=body.occurred_at,
        cashier_id=body.cashier_id,
        basket=Basket(tuple(lines), redeem_points=redeem, occurred_at=body.occurred_at),
    )


def _ok(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=JSON)


def _openapi_body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": required,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


PROBLEM = {"description": "problem details", "content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: PROBLEM,
    401: PROBLEM,
    403: PROBLEM,
    404: PROBLEM,
    409: PROBLEM,
    422: PROBLEM,
}


@router.get(
    "/customers/lookup",
    responses=ERRORS,
    summary="Identify a customer by card number, phone, QR token or RFID UID",
)
async def lookup(request: Request, identifier: str) -> Response:
    term = await _auth(request)
    if not identifier.strip() or len(identifier) > 64:
        raise ServiceError(
            "validation_failed", "identifier must be 1 to 64 characters", field="identifier"
        )
    data = await customers.check_lookup(_rt(request), term, identifier)
    return _ok(orjson.dumps(data))


@router.post(
    "/purchases/calculate",
    responses=ERRORS,
    openapi_extra=_openapi_body(PurchaseIn),
    summary="Calculate a receipt (preliminary cheque); holds redeemed points",
)
async def calculate(request: Request) -> Response:
    term = await _auth(request)
    req = to_request(_body(PurchaseIn, await request.body()))
    return _ok(await purchases.do_calculate(_rt(request), term, req))


@router.post(
    "/purchases",
    responses=ERRORS,
    openapi_extra=_openapi_body(PurchaseIn),
    summary="Calculate and confirm in one call (also offline uploads)",
)
async def purchase(request: Request) -> Response:
    term = await _auth(request)
    req = to_request(_body(PurchaseIn, await request.body()))
    return _ok(await purchases.do_purchase(_rt(request), term, req))


@router.post(
    "/purchases/batch",
    responses=ERRORS,
    openapi_extra=_openapi_body(BatchIn),
    summary="Many completed receipts at once; each answered on its own",
)
async def batch(request: Request) -> Response:
    term = await _auth(request)
    body = _body(BatchIn, await request.body())
    rt = _rt(request)
    results = []
    for pos, item in enumerate(body.receipts):
        rid = item.get("receipt_id") if isinstance(item, dict) else None
        try:
            req = to_request(PurchaseIn.model_validate_json(orjson.dumps(item)))
            answer = await purchases.do_purchase(rt, term, req)
            results.append(
                {"index": pos, "receipt_id": rid, "status": 200, "result": orjson.Fragment(answer)}
            )
        except ValidationError as exc:
            errs = problems.validation_errors(exc, prefix=f"receipts[{pos}]")
            results.append(
                {
                    "index": pos,
                    "receipt_id": rid,
                    "status": 422,
                    "problem": {
                        "code": "validation_failed",
                        "field": errs[0]["field"],
                        "detail": errs[0]["detail"],
                        "errors": errs,
                    },
                }
            )
        except ServiceError as exc:
            fld = f"receipts[{pos}].{exc.field}" if exc.field else f"receipts[{pos}]"
            results.append(
                {
                    "index": pos,
                    "receipt_id": rid,
                    "status": exc.status,
                    "problem": {"code": exc.code, "field": fld, "detail": exc.detail, **exc.extra},
                }
            )
    ok = sum(1 for x in results if x["status"] == 200)
    return _ok(orjson.dumps({"accepted": ok, "rejected": len(results) - ok, "results": results}))


@router.post(
    "/purchases/{receipt_id}/confirm",
    responses=ERRORS,
    openapi_extra=_openapi_body(ConfirmIn, required=False),
    summary="The sale went through: burn held points, credit earned points",
)
async def confirm(request: Request, receipt_id: str) -> Response:
    term = await _auth(request)
    _body(ConfirmIn, await request.body(), optional=True)
    return _ok(await purchases.do_confirm(_rt(request), term, receipt_id))


@router.post(
    "/purchases/{receipt_id}/cancel",
    responses=ERRORS,
    openapi_extra=_openapi_body(ConfirmIn, required=False),
    summary="The sale did not happen: release held points",
)
async def cancel(request: Request, receipt_id: str) -> Response:
    term = await _auth(request)
    _body(ConfirmIn, await request.body(), optional=True)
    return _ok(await purchases.do_cancel(_rt(request), term, receipt_id))


@router.post(
    "/purchases/{receipt_id}/refunds",
    responses=ERRORS,
    openapi_extra=_openapi_body(RefundIn),
    summary="Return goods of a confirmed receipt, fully or partly",
)
async def refund(request: Request, receipt_id: str) -> Response:
    term = await _auth(request)
    body: RefundIn = _body(RefundIn, await request.body())
    req = refunds.RefundRequest(
        refund_id=body.refund_id,
        lines=None
        if body.lines is None
        else tuple(refunds.RefundLine(x.index, x.quantity) for x in body.lines),
    )
    return _ok(await refunds.do_refund(_rt(request), term, receipt_id, req))


@router.post(
    "/customers",
    responses=ERRORS,
    openapi_extra=_openapi_body(CustomerIn),
    status_code=201,
    summary="Register a customer at the till; an SMS code follows",
)
async def register(request: Request) -> Response:
    term = await _auth(request)
    body: CustomerIn = _body(CustomerIn, await request.body())
    phone = to_e164(body.phone)
    if phone is None:
        raise ServiceError("validation_failed", "not a valid phone number", field="phone")
    reg = customers.Registration(
        phone=phone,
        first_name=body.first_name,
        last_name=body.last_name,
        middle_name=body.middle_name,
        email=body.email,
        birthday=body.birthday,
        gender=body.gender,
        card_number=body.card_number,
        consent_sms=body.consent_sms,
        consent_email=body.consent_email,
    )
    data = await customers.do_register(_rt(request), term, reg)
    return _ok(orjson.dumps(data), status=201)


@router.post(
    "/customers/{customer_id}/confirm-phone",
    responses=ERRORS,
    openapi_extra=_openapi_body(PhoneCodeIn),
    summary="Confirm the phone with the one-time code from the SMS",
)
async def confirm_phone(request: Request, customer_id: int) -> Response:
    term = await _auth(request)
    body: PhoneCodeIn = _body(PhoneCodeIn, await request.body())
    data = await customers.do_confirm_phone(_rt(request), term, customer_id, body.code)
    return _ok(orjson.dumps(data))


SCHEMAS: list[type[BaseModel]] = [PurchaseIn, BatchIn, ConfirmIn, RefundIn, CustomerIn, PhoneCodeIn]
