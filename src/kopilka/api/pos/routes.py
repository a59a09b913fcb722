"""POS API v1 (../shared/POS_API.md): thin handlers over the services.

Handlers read the raw body and validate it with the strict models themselves (one parse,
no framework-level JSON round trips), and answer with bytes the services built, so a
repeated call gets the first answer byte for byte.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from starlette.routing import Route

from kopilka import offline_verify
from kopilka.api import problems
from kopilka.api.pos.numbers import rounded_numbers
from kopilka.api.pos.schemas import (
    ID_PATTERN,
    NO_CONTROL,
    BatchIn,
    ConfirmIn,
    CustomerIn,
    PhoneCodeIn,
    PurchaseIn,
    RedeemCodeIn,
    RefundIn,
    RewardOrderIn,
)
from kopilka.domain.identifiers import is_valid_card_number
from kopilka.domain.money import ZERO, fmt2, q2
from kopilka.domain.receipt import Basket, BasketLine
from kopilka.services import (
    coupons,
    customers,
    giftcards,
    offline,
    purchases,
    refunds,
    rewards,
)
from kopilka.services.errors import ServiceError
from kopilka.services.phones import to_e164
from kopilka.services.runtime import Runtime, Terminal
from kopilka.store.queries.accounts import load_by_identifier

router = APIRouter(prefix="/api/pos/v1", tags=["POS"])
JSON = "application/json"
AMOUNT_TOLERANCE = Decimal("0.01")
# occurred_at: offline uploads come from the past, tills' clocks run a little ahead;
# anything outside this window is a broken clock, refused before it reaches the ledger.
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)
_ID_RE = re.compile(ID_PATTERN)
_NO_CONTROL_RE = re.compile(NO_CONTROL)


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
    value = model.model_validate_json(raw)
    # Only where every field is the model's: confirm's body ignores what it does not
    # know (the whole receipt sent again), numbers included.
    if model.model_config.get("extra") == "forbid":
        rounded = rounded_numbers(raw)
        if rounded:
            raise _rounded(rounded[0])
    return value


def _rounded(field: str) -> ServiceError:
    return problems.invalid(
        field,
        "too_many_decimals",
        "has more digits than the field keeps (a JSON number is never rounded)",
    )


def _path_receipt_id(receipt_id: str) -> str:
    """A receipt id from the URL; one no POS could have sent is simply not found."""
    if len(receipt_id) > 64 or not _ID_RE.match(receipt_id):
        raise ServiceError(
            "receipt_not_found", "no receipt with this id at this terminal", field="receipt_id"
        )
    return receipt_id


def to_request(body: PurchaseIn, *, now: datetime) -> purchases.PurchaseRequest:
    """The edge's checks that need arithmetic or the clock: lines must add up to what the
    POS says, the receipt happened in a plausible time, nothing not yet supported."""
    if body.occurred_at is not None and not (
        EARLIEST_OCCURRED_AT <= body.occurred_at <= now + CLOCK_SKEW
    ):
        raise problems.invalid(
            "occurred_at",
            "out_of_range",
            "must be after 2000-01-01 and at most a day ahead of the server's clock",
        )
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
        basket=Basket(
            tuple(lines),
            redeem_points=redeem,
            occurred_at=body.occurred_at,
            coupons=tuple(body.coupons),
        ),
        gift_cards=tuple(giftcards.Tender(g.number, g.pin, g.amount) for g in body.gift_cards),
        offline_token=body.offline_token,
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
# Endpoints that send an SMS code answer 429 (with ``retry_after_s``) past the caps.
CODE_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 429: PROBLEM}


def _path(template: str, method: str = "post") -> str:
    """A JSON pointer to an operation of this router, for an OpenAPI link's operationRef."""
    return (
        "#/paths/" + (router.prefix + template).replace("~", "~0").replace("/", "~1") + "/" + method
    )


def _links(status: int, description: str, **links: tuple[str, str]) -> dict[str, Any]:
    """OpenAPI links (name → (path template, runtime expression of the path parameter)):
    they tell client generators and the fuzzer which call follows which, and with what."""
    out: dict[str, Any] = {}
    for name, (template, expression) in links.items():
        param = template.split("{", 1)[1].split("}", 1)[0]
        out[name] = {"operationRef": _path(template), "parameters": {param: expression}}
    return {"responses": {str(status): {"description": description, "links": out}}}


_RECEIPT = "$request.body#/receipt_id"
_AFTER_CALCULATE = _links(
    200,
    "the calculated receipt; points are held until confirm or cancel",
    confirm=("/purchases/{receipt_id}/confirm", _RECEIPT),
    cancel=("/purchases/{receipt_id}/cancel", _RECEIPT),
)
_AFTER_SALE = _links(
    200,
    "the confirmed receipt",
    refund=("/purchases/{receipt_id}/refunds", _RECEIPT),
)
_AFTER_CONFIRM = _links(
    200,
    "the confirmed receipt",
    refund=("/purchases/{receipt_id}/refunds", "$request.path.receipt_id"),
)
_AFTER_REGISTER = _links(
    201,
    "the new customer and card; an SMS code was sent",
    confirm_phone=("/customers/{customer_id}/confirm-phone", "$response.body#/customer_id"),
    resend_code=("/customers/{customer_id}/resend-code", "$response.body#/customer_id"),
)


def _extra(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        out.update(part)
    return out


@router.get(
    "/customers/lookup",
    responses=ERRORS,
    summary="Identify a customer by card number, phone, QR token or RFID UID",
)
async def lookup(request: Request, identifier: str) -> Response:
    term = await _auth(request)
    if not identifier.strip():
        raise problems.invalid("identifier", "too_short", "must not be empty")
    if len(identifier) > 64:
        raise problems.invalid("identifier", "too_long", "must be at most 64 characters")
    if not _NO_CONTROL_RE.match(identifier):
        raise problems.invalid("identifier", "bad_format", "must not contain control characters")
    data = await customers.check_lookup(_rt(request), term, identifier)
    return _ok(orjson.dumps(data))


@router.get(
    "/coupons/{code}",
    responses=ERRORS,
    summary="Is this coupon valid here and now, and what does it give (rate-limited)",
)
async def coupon_lookup(request: Request, code: str) -> Response:
    term = await _auth(request)
    if not code.strip() or len(code) > 64 or not _NO_CONTROL_RE.match(code):
        raise problems.invalid("code", "bad_format", "1 to 64 printable characters")
    return _ok(orjson.dumps(await coupons.check_lookup(_rt(request), term, code)))


@router.post(
    "/coupons/{code}/redeem",
    responses=ERRORS,
    summary="A points code the customer received (SMS): credit its points to him",
    openapi_extra=_openapi_body(RedeemCodeIn),
)
async def coupon_redeem(request: Request, code: str) -> Response:
    term = await _auth(request)
    body = _body(RedeemCodeIn, await request.body())
    data = await coupons.do_redeem_points_code(
        _rt(request), term, raw_code=code, identifier=body.identifier
    )
    return _ok(orjson.dumps(data))


@router.get(
    "/offline/keys",
    responses=ERRORS,
    summary="The program's public keys for offline burn tokens, and the burn rules a till "
    "applies offline",
)
async def offline_keys(request: Request) -> Response:
    term = await _auth(request)
    rt = _rt(request)
    keys = await offline.public_keys(rt, program_id=term.program_id)
    s = await rt.program(term.program_id)
    return _ok(
        orjson.dumps(
            {
                "program_id": term.program_id,
                "algorithm": "Ed25519",
                "keys": [
                    {
                        "key_id": k.key_id,
                        "public_key": k.public_key,
                        "created_at": k.created_at.isoformat(),
                        "valid_until": None if k.valid_until is None else k.valid_until.isoformat(),
                    }
                    for k in keys
                ],
                "rules": {
                    "offline_cap_max": fmt2(s.offline_cap_max),
                    "token_ttl_s": s.offline_token_ttl_s,
                    "burn_max_percent": str(s.burn_max_percent),
                    "point_value": str(s.point_value),
                    "points_step": str(s.points_step),
                    "min_payment": fmt2(s.min_payment),
                },
                "clock_skew_s": int(offline_verify.CLOCK_SKEW.total_seconds()),
                "server_time": rt.now().isoformat(),
            }
        )
    )


@router.get(
    "/rewards",
    responses=ERRORS,
    summary="The rewards catalogue: items for points, with their stock",
)
async def rewards_catalogue(request: Request) -> Response:
    term = await _auth(request)
    items = await rewards.list_rewards(_rt(request), program_id=term.program_id, active_only=True)
    return _ok(
        orjson.dumps(
            [
                {
                    "code": r.code,
                    "name": r.name,
                    "price_points": fmt2(r.price_points),
                    "stock": r.stock,
                }
                for r in items
            ]
        )
    )


@router.post(
    "/rewards/orders",
    responses=ERRORS,
    summary="Order a reward for points at the till (and hand it over)",
    openapi_extra=_openapi_body(RewardOrderIn),
)
async def reward_order(request: Request) -> Response:
    term = await _auth(request)
    body = _body(RewardOrderIn, await request.body())
    rt = _rt(request)
    async with rt.hot.read() as tx:
        acc = await load_by_identifier(
            tx,
            program_id=term.program_id,
            values=purchases.identifier_values(body.identifier),
            lock=False,
        )
    if acc is None:
        raise ServiceError(
            "unknown_identifier", "no customer with this identifier", field="identifier"
        )
    order = await rewards.do_order(
        rt,
        program_id=term.program_id,
        account_id=acc.id,
        reward_code=body.reward,
        idempotency_key=f"pos:{term.id}:{body.order_id}",
    )
    if body.issue and order.state == "ordered":
        order = await rewards.do_issue(rt, order.id)
    return _ok(
        orjson.dumps(
            {
                "order_id": body.order_id,
                "reward": order.reward_code,
                "name": order.reward_name,
                "points": fmt2(order.points),
                "state": order.state,
            }
        ),
        status=201 if not order.replayed else 200,
    )


@router.post(
    "/purchases/calculate",
    responses=ERRORS,
    openapi_extra=_extra(_openapi_body(PurchaseIn), _AFTER_CALCULATE),
    summary="Calculate a receipt (preliminary cheque); holds redeemed points",
)
async def calculate(request: Request) -> Response:
    term = await _auth(request)
    rt = _rt(request)
    req = to_request(_body(PurchaseIn, await request.body()), now=rt.now())
    return _ok(await purchases.do_calculate(rt, term, req))


@router.post(
    "/purchases",
    responses=ERRORS,
    openapi_extra=_extra(_openapi_body(PurchaseIn), _AFTER_SALE),
    summary="Calculate and confirm in one call (also offline uploads)",
)
async def purchase(request: Request) -> Response:
    term = await _auth(request)
    rt = _rt(request)
    req = to_request(_body(PurchaseIn, await request.body()), now=rt.now())
    return _ok(await purchases.do_purchase(rt, term, req))


@router.post(
    "/purchases/batch",
    responses=ERRORS,
    openapi_extra=_openapi_body(BatchIn),
    summary="Many completed receipts at once; each answered on its own",
)
async def batch(request: Request) -> Response:
    term = await _auth(request)
    raw = await request.body()
    body = BatchIn.model_validate_json(raw)  # receipts are checked one by one below
    rounded = rounded_numbers(raw)
    rt = _rt(request)
    results: list[dict[str, Any]] = []
    for pos, item in enumerate(body.receipts):
        rid = item.get("receipt_id") if isinstance(item, dict) else None
        if not isinstance(rid, str):
            rid = None  # echoed back only when it is one
        try:
            mine = [f for f in rounded if f.startswith(f"receipts[{pos}].")]
            if mine:  # its numbers were read as floats already: refuse, never round
                raise _rounded(mine[0].removeprefix(f"receipts[{pos}]."))
            # Back to JSON for the strict parse; the standard library also writes integers
            # beyond 64 bits, which the schema then refuses as out of range.
            req = to_request(PurchaseIn.model_validate_json(json.dumps(item)), now=rt.now())
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
            results.append(
                {
                    "index": pos,
                    "receipt_id": rid,
                    "status": exc.status,
                    "problem": problems.embedded(exc, prefix=f"receipts[{pos}]"),
                }
            )
    ok = sum(1 for x in results if x["status"] == 200)
    return _ok(orjson.dumps({"accepted": ok, "rejected": len(results) - ok, "results": results}))


@router.post(
    "/purchases/{receipt_id}/confirm",
    responses=ERRORS,
    openapi_extra=_extra(_openapi_body(ConfirmIn, required=False), _AFTER_CONFIRM),
    summary="The sale went through: burn held points, credit earned points",
)
async def confirm(request: Request, receipt_id: str) -> Response:
    term = await _auth(request)
    _body(ConfirmIn, await request.body(), optional=True)
    return _ok(await purchases.do_confirm(_rt(request), term, _path_receipt_id(receipt_id)))


@router.post(
    "/purchases/{receipt_id}/cancel",
    responses=ERRORS,
    openapi_extra=_openapi_body(ConfirmIn, required=False),
    summary="The sale did not happen: release held points",
)
async def cancel(request: Request, receipt_id: str) -> Response:
    term = await _auth(request)
    _body(ConfirmIn, await request.body(), optional=True)
    return _ok(await purchases.do_cancel(_rt(request), term, _path_receipt_id(receipt_id)))


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
    return _ok(await refunds.do_refund(_rt(request), term, _path_receipt_id(receipt_id), req))


@router.post(
    "/customers",
    responses=CODE_ERRORS,
    openapi_extra=_extra(_openapi_body(CustomerIn), _AFTER_REGISTER),
    status_code=201,
    summary="Register a customer at the till; an SMS code follows",
)
async def register(request: Request) -> Response:
    term = await _auth(request)
    body: CustomerIn = _body(CustomerIn, await request.body())
    phone = to_e164(body.phone)
    if phone is None:
        raise problems.invalid("phone", "bad_format", "not a valid phone number")
    if body.card_number is not None and not is_valid_card_number(body.card_number):
        raise problems.invalid("card_number", "bad_check_digit", "the check digit is wrong")
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
        invite_code=body.invite_code,
        device_id=body.device_id,
    )
    data = await customers.do_register(_rt(request), term, reg)
    return _ok(orjson.dumps(data), status=201)


@router.post(
    "/customers/{customer_id}/confirm-phone",
    responses=CODE_ERRORS,
    openapi_extra=_openapi_body(PhoneCodeIn),
    summary="Confirm the phone with the one-time code from the SMS",
)
async def confirm_phone(request: Request, customer_id: int) -> Response:
    term = await _auth(request)
    body: PhoneCodeIn = _body(PhoneCodeIn, await request.body())
    data = await customers.do_confirm_phone(_rt(request), term, customer_id, body.code)
    return _ok(orjson.dumps(data))


@router.post(
    "/customers/{customer_id}/resend-code",
    responses=CODE_ERRORS,
    summary="Send a new one-time code (at most one a minute, five a day)",
)
async def resend_code(request: Request, customer_id: int) -> Response:
    term = await _auth(request)
    data = await customers.do_resend_code(_rt(request), term, customer_id)
    return _ok(orjson.dumps(data))


SCHEMAS: list[type[BaseModel]] = [
    PurchaseIn,
    BatchIn,
    ConfirmIn,
    RefundIn,
    CustomerIn,
    PhoneCodeIn,
    RedeemCodeIn,
]


# --- the same handlers as plain Starlette routes ---------------------------------------
#
# FastAPI documents the routes above (OpenAPI, /docs); requests are served by these
# Starlette routes, placed first in the app, which call the same handlers without
# FastAPI's per-request dependency resolution (~0.1 ms a call; see docs/performance.md).


def _with_path(handler: Any, name: str) -> Any:
    async def endpoint(request: Request) -> Response:
        response: Response = await handler(request, request.path_params[name])
        return response

    return endpoint


async def _lookup_endpoint(request: Request) -> Response:
    identifier = request.query_params.get("identifier")
    if identifier is None:
        raise problems.invalid(
            "identifier", "required", "the identifier query parameter is required"
        )
    return await lookup(request, identifier)


def _customer_id(request: Request) -> int:
    raw: str = request.path_params["customer_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise problems.invalid("customer_id", "bad_format", "must be a whole number")
    return int(raw)


async def _confirm_phone_endpoint(request: Request) -> Response:
    return await confirm_phone(request, _customer_id(request))


async def _resend_code_endpoint(request: Request) -> Response:
    return await resend_code(request, _customer_id(request))


def fast_routes() -> list[Route]:
    p = router.prefix
    return [
        Route(f"{p}/customers/lookup", _lookup_endpoint, methods=["GET"]),
        Route(f"{p}/offline/keys", offline_keys, methods=["GET"]),
        Route(f"{p}/coupons/{{code}}", _with_path(coupon_lookup, "code"), methods=["GET"]),
        Route(f"{p}/coupons/{{code}}/redeem", _with_path(coupon_redeem, "code"), methods=["POST"]),
        Route(f"{p}/purchases/calculate", calculate, methods=["POST"]),
        Route(f"{p}/purchases/batch", batch, methods=["POST"]),
        Route(f"{p}/purchases", purchase, methods=["POST"]),
        Route(
            f"{p}/purchases/{{receipt_id}}/confirm",
            _with_path(confirm, "receipt_id"),
            methods=["POST"],
        ),
        Route(
            f"{p}/purchases/{{receipt_id}}/cancel",
            _with_path(cancel, "receipt_id"),
            methods=["POST"],
        ),
        Route(
            f"{p}/purchases/{{receipt_id}}/refunds",
            _with_path(refund, "receipt_id"),
            methods=["POST"],
        ),
        Route(f"{p}/customers", register, methods=["POST"]),
        Route(
            f"{p}/customers/{{customer_id}}/resend-code", _resend_code_endpoint, methods=["POST"]
        ),
        Route(
            f"{p}/customers/{{customer_id}}/confirm-phone",
            _confirm_phone_endpoint,
            methods=["POST"],
        ),
    ]
