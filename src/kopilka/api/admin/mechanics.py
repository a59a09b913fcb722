"""Admin API v1: the mechanics of a program (docs/admin-api.md, "Coupons, gift cards,
draws, rewards"): coupon series and surprises, gift-card series, blocking and breakage,
prize draws, the rewards catalogue and its orders.

Thin handlers over ``services.coupons``, ``services.giftcards``, ``services.draws`` and
``services.rewards``.  Every call carries an admin token whose scope must reach the
program in the URL (401 without a token, 403 outside its scope); an unknown program is
404 ``program_not_found``; a bad body is 422 ``validation_failed`` naming the field.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response, StreamingResponse

from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.events import CustomerRef
from kopilka.api.admin.routes import ERRORS, JSON, SECURITY
from kopilka.api.pos.schemas import ID_PATTERN, NO_NUL, Strict
from kopilka.domain.money import fmt2
from kopilka.domain.roles import Perm
from kopilka.domain.rules.model import CODE_RE
from kopilka.services import (
    activities,
    admin,
    coupons,
    draws,
    exports,
    giftcards,
    programs,
    rewards,
)
from kopilka.services.audit import Actor, require_reason
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])

# This module's own refusals (the services' codes keep their services' statuses).
STATUS: dict[str, int] = {"coupon_series_exists": 409, "coupon_code_exists": 409}


class MechanicsError(ServiceError):
    @property
    def status(self) -> int:
        return STATUS.get(self.code, 422)


# --- request bodies ---------------------------------------------------------------------

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=CODE_RE)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
Seed = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]
PositivePoints = Annotated[
    Decimal, Field(gt=0, le=Decimal("1000000000"), decimal_places=2, allow_inf_nan=False)
]
CouponText = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$")]


class CouponSeriesIn(Strict):
    """A coupon series: ``count`` generated codes or the imported ``codes`` (one of)."""

    code: Code = Field(description="what promotions name: when: {coupon: [CODE]}")
    name: Name
    count: Annotated[int, Field(ge=1, le=100_000)] | None = None
    codes: Annotated[list[CouponText], Field(min_length=1, max_length=100_000)] | None = None
    max_uses: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        1, description="uses per coupon; null: unlimited"
    )
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    points: PositivePoints | None = Field(
        None, description="a points code: redeemed for these points, not on a receipt"
    )
    seed: Seed | None = Field(None, description="makes the generated codes reproducible")
    return_on_refund: bool = True


class CouponSurpriseIn(Strict):
    """One single-use coupon each for ``count`` active members drawn with ``seed``."""

    code: Code
    name: Name
    count: Annotated[int, Field(ge=1, le=100_000)]
    seed: Seed
    valid_until: AwareDatetime | None = None


class GiftCardSeriesIn(Strict):
    code: Code
    name: Name
    nominal: PositivePoints = Field(description="roubles, two decimals")
    count: Annotated[int, Field(ge=1, le=1000)] = Field(
        description="at most 1000 a call (each PIN is hashed, ~4 ms); larger series: "
        "kopilka giftcard series create"
    )
    valid_days: Annotated[int, Field(ge=1, le=36_500)] | None = Field(
        365, description="days from activation; null: never expires"
    )
    seed: Annotated[int, Field(ge=0)] | None = Field(
        None, description="reproducible numbers (tests); never the PINs"
    )


class DrawIn(Strict):
    code: Code
    name: Name
    period_start: AwareDatetime
    period_end: AwareDatetime
    rules: dict[str, Any] = Field(
        description="prizes, tickets_per_purchase, tickets_per_amount, min_purchase, "
        "one_prize_per_member (docs/draws.md)"
    )


class RewardIn(Strict):
    code: Code
    name: Name
    price_points: PositivePoints
    stock: Annotated[int, Field(ge=0, le=100_000_000)] | None = Field(
        None, description="items left; null: unlimited"
    )
    active: bool = True


class RewardChangeIn(Strict):
    """Only the fields given change; ``"stock": null`` makes the item unlimited."""

    name: Name | None = None
    price_points: PositivePoints | None = None
    stock: Annotated[int, Field(ge=0, le=100_000_000)] | None = None
    active: bool | None = None


class RewardOrderIn(Strict):
    customer: CustomerRef
    reward: Code = Field(description="the reward's code")
    idempotency_key: Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]


class ReasonIn(Strict):
    """Why (kept in the audit log); optional unless the call says otherwise."""

    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)] | None = None


SCHEMAS: tuple[type[BaseModel], ...] = (
    ReasonIn,
    CouponSeriesIn,
    CouponSurpriseIn,
    GiftCardSeriesIn,
    DrawIn,
    RewardIn,
    RewardChangeIn,
    RewardOrderIn,
)


# --- helpers ---------------------------------------------------------------------------


async def _program(request: Request, code: str, perm: Perm) -> int:
    """Authenticate, check the token's role (``perm``: 403) and program scope, and find
    the program (404 if unknown).  Before the body is read: a caller without the right
    learns nothing from a validation error."""
    rt = _rt(request)
    token = await admin.check_token(rt, request.headers.get("authorization", ""))
    token.actor().require(perm)
    token.check_program(code)
    async with rt.engine.connect() as conn:
        pid = (
            await conn.execute(select(t.programs.c.id).where(t.programs.c.code == code))
        ).scalar_one_or_none()
    if pid is None:
        raise programs.not_found(code)
    return int(pid)


async def _acting(request: Request, code: str) -> tuple[int, Actor]:
    """As ``_program`` for a change, and the token as its author (audit log)."""
    rt = _rt(request)
    token = await admin.check_token(rt, request.headers.get("authorization", ""))
    program_id = await _program(request, code, Perm.MECHANICS_WRITE)
    return program_id, token.actor(request.client.host if request.client else None)


async def _reason_in(request: Request) -> ReasonIn:
    raw = await request.body()
    return ReasonIn.model_validate_json(raw) if raw.strip() else ReasonIn()


def _ok(data: Any, status: int = 200, *, no_store: bool = False) -> Response:
    headers = {"Cache-Control": "no-store"} if no_store else None
    return Response(orjson.dumps(data), status_code=status, media_type=JSON, headers=headers)


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


# --- coupons ---------------------------------------------------------------------------


async def _series_exists(rt: Runtime, program_id: int, code: str) -> bool:
    s = t.coupon_series.c
    async with rt.engine.connect() as conn:
        found = (
            await conn.execute(
                select(s.id).where(s.program_id == program_id, s.code == code.upper())
            )
        ).first()
    return found is not None


def _series_taken(code: str) -> MechanicsError:
    return MechanicsError(
        "coupon_series_exists", f"coupon series {code.upper()!r} exists already", field="code"
    )


@router.post(
    "/programs/{code}/coupon-series",
    responses=ERRORS,
    openapi_extra=_body("CouponSeriesIn"),
    status_code=201,
    summary="Create a coupon series: generated or imported codes (returned once here)",
)
async def post_coupon_series(request: Request, code: str) -> Response:
    rt = _rt(request)
    program_id = await _program(request, code, Perm.MECHANICS_WRITE)
    body = CouponSeriesIn.model_validate_json(await request.body())
    if (body.count is None) == (body.codes is None):
        raise ServiceError(
            "validation_failed",
            "give count (generated codes) or codes (imported), one of them",
            field="count",
        )
    if await _series_exists(rt, program_id, body.code):
        raise _series_taken(body.code)
    try:
        made = await coupons.do_create_series(
            rt,
            program_code=code,
            code=body.code,
            name=body.name,
            count=body.count or 0,
            codes=None if body.codes is None else list(body.codes),
            max_uses=body.max_uses,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            return_on_refund=body.return_on_refund,
            seed=body.seed,
            points=body.points,
        )
    except IntegrityError:
        if await _series_exists(rt, program_id, body.code):
            raise _series_taken(body.code) from None
        raise MechanicsError(
            "coupon_code_exists", "a code is already a coupon of this program", field="codes"
        ) from None
    return _ok({"series": body.code.upper(), "codes": made}, 201, no_store=True)


@router.post(
    "/programs/{code}/coupon-surprises",
    responses=ERRORS,
    openapi_extra=_body("CouponSurpriseIn"),
    status_code=201,
    summary="A surprise: a personal single-use coupon for members drawn at random",
)
async def post_coupon_surprise(request: Request, code: str) -> Response:
    rt = _rt(request)
    program_id = await _program(request, code, Perm.MECHANICS_WRITE)
    body = CouponSurpriseIn.model_validate_json(await request.body())
    if await _series_exists(rt, program_id, body.code):
        raise _series_taken(body.code)
    try:
        pairs = await coupons.do_surprise(
            rt,
            program_code=code,
            code=body.code,
            name=body.name,
            count=body.count,
            seed=body.seed,
            valid_until=body.valid_until,
        )
    except IntegrityError:
        raise _series_taken(body.code) from None
    return _ok([{"customer_id": c, "code": k} for c, k in pairs], 201, no_store=True)


# --- gift cards ------------------------------------------------------------------------


@router.post(
    "/programs/{code}/gift-card-series",
    responses=ERRORS,
    openapi_extra=_body("GiftCardSeriesIn"),
    status_code=201,
    summary="Issue a series of gift cards: numbers and PINs, shown this once only",
)
async def post_gift_card_series(request: Request, code: str) -> Response:
    rt = _rt(request)
    await _program(request, code, Perm.MECHANICS_WRITE)
    body = GiftCardSeriesIn.model_validate_json(await request.body())
    try:
        cards = await giftcards.do_create_series(
            rt,
            code,
            code=body.code,
            name=body.name,
            nominal=body.nominal,
            count=body.count,
            valid_days=body.valid_days,
            seed=body.seed,
        )
    except IntegrityError:
        raise giftcards.GiftCardError(
            "gift_card_series_exists", f"series {body.code!r} already exists", field="code"
        ) from None
    return _ok(
        {
            "series": body.code,
            "nominal": fmt2(body.nominal),
            "valid_days": body.valid_days,
            "cards": [{"number": n, "pin": p} for n, p in cards],
        },
        201,
        no_store=True,
    )


@router.post(
    "/programs/{code}/gift-cards/{number}/block",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Block a lost or stolen card (idempotent; its balance stays)",
)
async def block_gift_card(request: Request, code: str, number: str) -> Response:
    _, actor = await _acting(request, code)
    reason = (await _reason_in(request)).reason
    return _ok(await giftcards.do_block(_rt(request), code, number, actor=actor, reason=reason))


@router.get(
    "/programs/{code}/gift-cards/breakage",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Per series: breakage, activated and redeemed in [from, to), outstanding now",
)
async def gift_card_breakage(
    request: Request,
    code: str,
    from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    to: Annotated[AwareDatetime | None, Query()] = None,
) -> Response:
    await _program(request, code, Perm.MECHANICS_READ)
    if from_ is not None and to is not None and to <= from_:
        raise ServiceError("validation_failed", "must be after from", field="to")
    rows = await giftcards.breakage_report(_rt(request), code, start=from_, end=to)
    return _ok(
        {
            "program": code,
            "from": _iso(from_),
            "to": _iso(to),
            "series": [
                {
                    "series": r.series,
                    "name": r.name,
                    "cards_expired": r.cards_expired,
                    "breakage": fmt2(r.breakage),
                    "activated": fmt2(r.activated),
                    "redeemed": fmt2(r.redeemed),
                    "outstanding": fmt2(r.outstanding),
                }
                for r in rows
            ],
        }
    )


# --- draws -----------------------------------------------------------------------------


@router.post(
    "/programs/{code}/draws",
    responses=ERRORS,
    openapi_extra=_body("DrawIn"),
    status_code=201,
    summary="Create a prize draw (state open); answers its public record",
)
async def post_draw(request: Request, code: str) -> Response:
    rt = _rt(request)
    await _program(request, code, Perm.MECHANICS_WRITE)
    body = DrawIn.model_validate_json(await request.body())
    if body.period_end <= body.period_start:
        raise ServiceError(
            "validation_failed", "the period ends before it starts", field="period_end"
        )
    await draws.do_create_draw(
        rt,
        program_code=code,
        code=body.code,
        name=body.name,
        period_start=body.period_start,
        period_end=body.period_end,
        rules=body.rules,
    )
    return _ok(await draws.publish(rt, body.code, program_code=code), 201)


@router.post(
    "/programs/{code}/draws/{draw}/commit",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Commit to a random seed before the period ends; answers the seed's hash",
)
async def commit_draw(request: Request, code: str, draw: str) -> Response:
    await _program(request, code, Perm.MECHANICS_WRITE)
    seed_hash = await draws.do_commit(_rt(request), draw, program_code=code)
    return _ok({"draw": draw, "state": "committed", "seed_hash": seed_hash})


@router.post(
    "/programs/{code}/draws/{draw}/run",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Draw the winners after the period (idempotent); answers the public record",
)
async def run_draw(request: Request, code: str, draw: str) -> Response:
    await _program(request, code, Perm.MECHANICS_WRITE)
    return _ok(await draws.do_run(_rt(request), draw, program_code=code))


@router.get(
    "/programs/{code}/draws/{draw}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The public record: rules and seed hash; after the draw seed, tickets, winners",
)
async def get_draw(request: Request, code: str, draw: str) -> Response:
    await _program(request, code, Perm.MECHANICS_READ)
    return _ok(await draws.publish(_rt(request), draw, program_code=code))


# --- rewards ---------------------------------------------------------------------------


def _reward_view(r: rewards.Reward) -> dict[str, Any]:
    return {
        "code": r.code,
        "name": r.name,
        "price_points": fmt2(r.price_points),
        "stock": r.stock,
        "active": r.active,
    }


def _order_view(o: rewards.Order) -> dict[str, Any]:
    return {
        "id": o.id,
        "reward": o.reward_code,
        "reward_name": o.reward_name,
        "account_id": o.account_id,
        "points": fmt2(o.points),
        "state": o.state,
        "idempotency_key": o.idempotency_key,
        "created_at": _iso(o.created_at),
        "resolved_at": _iso(o.resolved_at),
    }


@router.get(
    "/programs/{code}/rewards",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The rewards catalogue (active_only=true: what members may order)",
)
async def get_rewards(request: Request, code: str, active_only: bool = Query(False)) -> Response:
    program_id = await _program(request, code, Perm.MECHANICS_READ)
    rows = await rewards.list_rewards(_rt(request), program_id=program_id, active_only=active_only)
    return _ok([_reward_view(r) for r in rows])


@router.post(
    "/programs/{code}/rewards",
    responses=ERRORS,
    openapi_extra=_body("RewardIn"),
    status_code=201,
    summary="Add an item to the catalogue",
)
async def post_reward(request: Request, code: str) -> Response:
    rt = _rt(request)
    program_id = await _program(request, code, Perm.MECHANICS_WRITE)
    body = RewardIn.model_validate_json(await request.body())
    await rewards.do_add_reward(
        rt,
        program_id=program_id,
        code=body.code,
        name=body.name,
        price_points=body.price_points,
        stock=body.stock,
        active=body.active,
    )
    return _ok(
        _reward_view(await rewards.reward_by_code(rt, program_id=program_id, code=body.code)), 201
    )


@router.put(
    "/programs/{code}/rewards/{reward}",
    responses=ERRORS,
    openapi_extra=_body("RewardChangeIn"),
    summary="Change an item: the fields given (price: new orders only; stock null: unlimited)",
)
async def put_reward(request: Request, code: str, reward: str) -> Response:
    rt = _rt(request)
    program_id = await _program(request, code, Perm.MECHANICS_WRITE)
    body = RewardChangeIn.model_validate_json(await request.body())
    given = body.model_fields_set
    if "name" in given and body.name is None:
        raise ServiceError("validation_failed", "a name cannot be removed", field="name")
    if "price_points" in given and body.price_points is None:
        raise ServiceError("validation_failed", "a price is required", field="price_points")
    if "active" in given and body.active is None:
        raise ServiceError("validation_failed", "true or false", field="active")
    changed = await rewards.do_update_reward(
        rt,
        program_id=program_id,
        code=reward,
        name=body.name,
        price_points=body.price_points,
        stock=body.stock,
        unlimited="stock" in given and body.stock is None,
        active=body.active,
    )
    return _ok(_reward_view(changed))


@router.post(
    "/programs/{code}/reward-orders",
    responses=ERRORS,
    openapi_extra=_body("RewardOrderIn"),
    status_code=201,
    summary="Order a reward for a member: its price is held (idempotent by key)",
)
async def post_reward_order(request: Request, code: str) -> Response:
    rt = _rt(request)
    program_id = await _program(request, code, Perm.MECHANICS_WRITE)
    body = RewardOrderIn.model_validate_json(await request.body())
    account_id = await activities.find_account(
        rt,
        program_id=program_id,
        card=body.customer.card,
        phone=body.customer.phone,
        customer_id=body.customer.id,
    )
    try:
        order = await rewards.do_order(
            rt,
            program_id=program_id,
            account_id=account_id,
            reward_code=body.reward,
            idempotency_key=body.idempotency_key,
        )
    except rewards.RewardError as exc:
        if exc.field == "reward_code":  # the body names it "reward"
            exc.field = "reward"
        raise
    return _ok(_order_view(order), 200 if order.replayed else 201)


async def _order_in(request: Request, code: str, order_id: int, perm: Perm) -> None:
    """The order must belong to the program in the URL (else: not found)."""
    program_id = await _program(request, code, perm)
    o = t.reward_orders.c
    async with _rt(request).engine.connect() as conn:
        owner = (
            await conn.execute(select(o.program_id).where(o.id == order_id))
        ).scalar_one_or_none()
    if owner != program_id:
        raise rewards.RewardError("order_not_found", f"no order {order_id}", field="order_id")


OrderId = Annotated[int, Path(ge=1, le=2**62)]


@router.get(
    "/programs/{code}/reward-orders/{order_id}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="One order and its state (ordered, issued, cancelled)",
)
async def get_reward_order(request: Request, code: str, order_id: OrderId) -> Response:
    await _order_in(request, code, order_id, Perm.MECHANICS_READ)
    return _ok(_order_view(await rewards.order_status(_rt(request), order_id)))


@router.post(
    "/programs/{code}/reward-orders/{order_id}/issue",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The item was handed over: the held points are burned (repeatable)",
)
async def issue_reward_order(request: Request, code: str, order_id: OrderId) -> Response:
    await _order_in(request, code, order_id, Perm.MECHANICS_WRITE)
    return _ok(_order_view(await rewards.do_issue(_rt(request), order_id)))


@router.post(
    "/programs/{code}/reward-orders/{order_id}/cancel",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The order will not be issued: points released, item back in stock",
)
async def cancel_reward_order(request: Request, code: str, order_id: OrderId) -> Response:
    await _order_in(request, code, order_id, Perm.MECHANICS_WRITE)
    return _ok(_order_view(await rewards.do_cancel_order(_rt(request), order_id)))


# --- lists, states, exports, blocking (issue 6: what the console does) -----------------------

Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]
Format = Annotated[str, Query(alias="format", pattern="^(csv|xlsx)$")]


def _paged(items: list[dict[str, Any]], total: int, offset: int, limit: int) -> dict[str, Any]:
    return {"total": total, "offset": offset, "limit": limit, "items": items}


def _file(table: exports.Table, fmt: str, name: str) -> Response:
    return StreamingResponse(
        exports.chunks(table, fmt),
        media_type=exports.media_type(fmt),
        headers=exports.attachment(name, fmt),
    )


def _series_view(s: coupons.SeriesRow) -> dict[str, Any]:
    return {
        "series": s.code,
        "name": s.name,
        "max_uses": s.max_uses,
        "bound": s.bound,
        "valid_from": _iso(s.valid_from),
        "valid_until": _iso(s.valid_until),
        "return_on_refund": s.return_on_refund,
        "points": None if s.points is None else fmt2(s.points),
        "created_at": _iso(s.created_at),
        "codes": {
            "issued": s.issued,
            "active": s.active,
            "used": s.used,
            "expired": s.expired,
            "blocked": s.blocked,
        },
    }


def _code_view(x: coupons.CodeRow) -> dict[str, Any]:
    return {
        "code": x.code,
        "state": x.state,
        "uses": x.uses,
        "max_uses": x.max_uses,
        "customer_id": x.customer_id,
        "created_at": _iso(x.created_at),
    }


@router.get(
    "/programs/{code}/coupon-series",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Coupon series, a page at a time, with their codes counted by state",
)
async def list_coupon_series(
    request: Request,
    code: str,
    offset: Offset = 0,
    limit: Limit = 50,
    sort: Annotated[str, Query(pattern="^(" + "|".join(coupons.SERIES_SORTS) + ")$")] = (
        "created_at"
    ),
    desc: bool = True,
) -> Response:
    program_id = await _program(request, code, Perm.MECHANICS_READ)
    rows, total = await coupons.list_series(
        _rt(request), program_id=program_id, offset=offset, limit=limit, sort=sort, descending=desc
    )
    return _ok(_paged([_series_view(s) for s in rows], total, offset, limit))


@router.get(
    "/programs/{code}/coupon-series/{series}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="One coupon series and how many of its codes are active, used, expired, blocked",
)
async def get_coupon_series(request: Request, code: str, series: str) -> Response:
    program_id = await _program(request, code, Perm.MECHANICS_READ)
    found = await coupons.series_by_code(_rt(request), program_id=program_id, code=series)
    return _ok(_series_view(found))


@router.get(
    "/programs/{code}/coupon-series/{series}/coupons",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="A series' codes, a page at a time (state: active, used, expired, blocked)",
)
async def list_series_coupons(
    request: Request,
    code: str,
    series: str,
    state: Annotated[str, Query(pattern="^(|active|used|expired|blocked)$")] = "",
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    program_id = await _program(request, code, Perm.MECHANICS_READ)
    rows, total = await coupons.list_codes(
        _rt(request), program_id=program_id, series=series, state=state, offset=offset, limit=limit
    )
    return _ok(_paged([_code_view(x) for x in rows], total, offset, limit))


@router.get(
    "/programs/{code}/coupon-series/{series}/export",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="A series' codes as a CSV or XLSX file (streamed; state filters)",
)
async def export_series_coupons(
    request: Request,
    code: str,
    series: str,
    fmt: Format = "csv",
    state: Annotated[str, Query(pattern="^(|active|used|expired|blocked)$")] = "",
) -> Response:
    program_id = await _program(request, code, Perm.MECHANICS_READ)
    rt = _rt(request)
    found = await coupons.series_by_code(rt, program_id=program_id, code=series)
    table = coupons.codes_table(rt, program_id=program_id, series=found, state=state)
    return _file(table, fmt, f"coupons-{found.code}")


async def _series_status(request: Request, code: str, series: str, *, blocked: bool) -> Response:
    program_id, actor = await _acting(request, code)
    actor.require(Perm.MECHANICS_WRITE)
    body = await _reason_in(request)
    changed = await coupons.do_set_series_status(
        _rt(request),
        actor,
        program_id=program_id,
        series=series,
        blocked=blocked,
        reason=body.reason,
    )
    return _ok({"series": series.upper(), "changed": changed})


@router.post(
    "/programs/{code}/coupon-series/{series}/block",
    responses=ERRORS,
    openapi_extra=_body("ReasonIn"),
    summary="Block every code of a series (audited); answers how many changed",
)
async def block_coupon_series(request: Request, code: str, series: str) -> Response:
    return await _series_status(request, code, series, blocked=True)


@router.post(
    "/programs/{code}/coupon-series/{series}/unblock",
    responses=ERRORS,
    openapi_extra=_body("ReasonIn"),
    summary="Unblock every blocked code of a series (audited)",
)
async def unblock_coupon_series(request: Request, code: str, series: str) -> Response:
    return await _series_status(request, code, series, blocked=False)


async def _coupon_status(request: Request, code: str, coupon: str, *, blocked: bool) -> Response:
    program_id, actor = await _acting(request, code)
    actor.require(Perm.MECHANICS_WRITE)
    body = await _reason_in(request)
    row = await coupons.do_set_coupon_status(
        _rt(request), actor, program_id=program_id, code=coupon, blocked=blocked, reason=body.reason
    )
    return _ok(_code_view(row))


@router.post(
    "/programs/{code}/coupons/{coupon}/block",
    responses=ERRORS,
    openapi_extra=_body("ReasonIn"),
    summary="Block one coupon: the till refuses it from now on (idempotent, audited)",
)
async def block_coupon(request: Request, code: str, coupon: str) -> Response:
    return await _coupon_status(request, code, coupon, blocked=True)


@router.post(
    "/programs/{code}/coupons/{coupon}/unblock",
    responses=ERRORS,
    openapi_extra=_body("ReasonIn"),
    summary="Unblock one coupon (idempotent, audited)",
)
async def unblock_coupon(request: Request, code: str, coupon: str) -> Response:
    return await _coupon_status(request, code, coupon, blocked=False)


# gift cards


def _gift_view(x: giftcards.GiftCardRow) -> dict[str, Any]:
    return {
        "number": x.number,
        "series": x.series,
        "state": x.state,
        "nominal": fmt2(x.nominal),
        "balance": fmt2(x.balance),
        "held": fmt2(x.held),
        "activated_at": _iso(x.activated_at),
        "expires_at": _iso(x.expires_at),
    }


CardState = Annotated[str, Query(pattern="^(|" + "|".join(giftcards.CARD_STATES) + ")$")]


@router.get(
    "/programs/{code}/gift-card-series",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Gift-card series, a page at a time: cards by state, what live cards hold",
)
async def list_gift_card_series(
    request: Request, code: str, offset: Offset = 0, limit: Limit = 50
) -> Response:
    program_id = await _program(request, code, Perm.MECHANICS_READ)
    rows, total = await giftcards.list_gift_series(
        _rt(request), program_id=program_id, offset=offset, limit=limit
    )
    items = [
        {
            "series": s.code,
            "name": s.name,
            "nominal": fmt2(s.nominal),
            "valid_days": s.valid_days,
            "cards": s.cards,
            "by_state": s.by_state,
            "outstanding": fmt2(s.outstanding),
            "created_at": _iso(s.created_at),
        }
        for s in rows
    ]
    return _ok(_paged(items, total, offset, limit))


@router.get(
    "/programs/{code}/gift-cards",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Gift cards, a page at a time (of a series, in a state)",
)
async def list_gift_cards(
    request: Request,
    code: str,
    series: Annotated[str, Query(max_length=64)] = "",
    state: CardState = "",
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    program_id = await _program(request, code, Perm.MECHANICS_READ)
    rows, total = await giftcards.list_cards(
        _rt(request),
        program_id=program_id,
        series=series,
        state=state,
        offset=offset,
        limit=limit,
    )
    return _ok(_paged([_gift_view(x) for x in rows], total, offset, limit))


@router.get(
    "/programs/{code}/gift-cards/export",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Gift cards as a CSV or XLSX file (never the PINs)",
)
async def export_gift_cards(
    request: Request,
    code: str,
    fmt: Format = "csv",
    series: Annotated[str, Query(max_length=64)] = "",
    state: CardState = "",
) -> Response:
    program_id = await _program(request, code, Perm.MECHANICS_READ)
    table = giftcards.cards_table(_rt(request), program_id=program_id, series=series, state=state)
    return _file(table, fmt, "-".join(x for x in ("gift-cards", series, state) if x))


@router.get(
    "/programs/{code}/gift-cards/{number}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="One gift card: state, balance and its latest movements",
)
async def get_gift_card(request: Request, code: str, number: str) -> Response:
    program_id = await _program(request, code, Perm.MECHANICS_READ)
    card, moves = await giftcards.card_detail(_rt(request), program_id=program_id, number=number)
    return _ok(
        _gift_view(card)
        | {
            "movements": [
                {
                    "kind": m.kind,
                    "amount": fmt2(m.amount),
                    "held_delta": fmt2(m.held_delta),
                    "receipt_pk": m.receipt_pk,
                    "at": _iso(m.created_at),
                }
                for m in moves
            ]
        }
    )


@router.post(
    "/programs/{code}/gift-cards/{number}/unblock",
    responses=ERRORS,
    openapi_extra=_body("ReasonIn"),
    summary="Unblock a card found again (reason required; audited)",
)
async def unblock_gift_card(request: Request, code: str, number: str) -> Response:
    _, actor = await _acting(request, code)
    body = await _reason_in(request)
    reason = require_reason(body.reason)
    return _ok(await giftcards.do_unblock(_rt(request), code, number, actor=actor, reason=reason))


# draws and reward orders


@router.get(
    "/programs/{code}/draws",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Prize draws, a page at a time, with entries and winners once drawn",
)
async def list_draws(
    request: Request, code: str, offset: Offset = 0, limit: Limit = 50
) -> Response:
    program_id = await _program(request, code, Perm.MECHANICS_READ)
    rows, total = await draws.list_draws(
        _rt(request), program_id=program_id, offset=offset, limit=limit
    )
    items = [
        {
            "draw": x.code,
            "name": x.name,
            "period_start": _iso(x.period_start),
            "period_end": _iso(x.period_end),
            "state": x.state,
            "seed_hash": x.seed_hash,
            "drawn_at": _iso(x.drawn_at),
            "members": x.members,
            "tickets": x.tickets,
            "winners": x.winners,
        }
        for x in rows
    ]
    return _ok(_paged(items, total, offset, limit))


@router.get(
    "/programs/{code}/draws/{draw}/winners",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="A drawn draw's winners as a CSV or XLSX file (names masked)",
)
async def export_draw_winners(
    request: Request, code: str, draw: str, fmt: Format = "csv"
) -> Response:
    await _program(request, code, Perm.MECHANICS_READ)
    rt = _rt(request)
    found = await draws.draw_of(rt, program_code=code, code=draw)
    return _file(draws.winners_table(rt, found), fmt, f"draw-{found.code}-winners")


@router.get(
    "/programs/{code}/reward-orders",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Reward orders, a page at a time, newest first (state filters)",
)
async def list_reward_orders(
    request: Request,
    code: str,
    state: Annotated[str, Query(pattern="^(|ordered|issued|cancelled)$")] = "",
    offset: Offset = 0,
    limit: Limit = 50,
) -> Response:
    program_id = await _program(request, code, Perm.MECHANICS_READ)
    rows, total = await rewards.list_orders(
        _rt(request), program_id=program_id, state=state, offset=offset, limit=limit
    )
    items = [_order_view(r.order) | {"customer_id": r.customer_id} for r in rows]
    return _ok(_paged(items, total, offset, limit))
