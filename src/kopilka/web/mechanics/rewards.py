"""The rewards catalogue (list, add, edit: price in points, stock) and its orders
(paged, by state) with issue and cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain.roles import Perm, mask_name
from kopilka.services import rewards
from kopilka.services.errors import ServiceError
from kopilka.web.auth import Console, console
from kopilka.web.mechanics.common import FormErrors, Reader, form_values, refusal
from kopilka.web.tables import PageRequest
from kopilka.web.templating import dec, redirect, render

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.MECHANICS_READ))
WRITE = Depends(console(Perm.MECHANICS_WRITE))
FIELDS = {"code": "code", "name": "name", "price_points": "price_points", "stock": "stock"}


@router.get("/admin/rewards")
async def catalogue(request: Request, c: Annotated[Console, READ]) -> Response:
    program = c.need_program()
    pr = PageRequest.of(request, sorts=rewards.REWARD_SORTS, default="code")
    rows, total = await rewards.list_rewards_page(
        c.rt,
        program_id=program.id,
        offset=pr.offset,
        limit=pr.limit,
        sort=pr.sort,
        descending=pr.descending,
    )
    return render(request, "mechanics/rewards.html", {"page": pr.page(rows, total)})


def _form(
    request: Request,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    editing: str = "",
    status: int = 200,
) -> Response:
    return render(
        request,
        "mechanics/reward_form.html",
        {"values": values, "errors": errors, "editing": editing},
        status=status,
    )


@router.get("/admin/rewards/new")
async def reward_new(request: Request, c: Annotated[Console, WRITE]) -> Response:
    c.need_program()
    return _form(request, {"active": "on"}, {})


def _read(
    request: Request, values: dict[str, str], *, with_code: bool
) -> tuple[Reader, dict[str, Any]]:
    f = Reader(request, values)
    out = {
        "code": f.code("code") if with_code else "",
        "name": f.text("name"),
        "price_points": f.decimal("price_points", required=True),
        "stock": f.integer("stock", low=0, high=100_000_000),
        "active": f.flag("active"),
    }
    return f, out


@router.post("/admin/rewards/new")
async def reward_create(request: Request, c: Annotated[Console, WRITE]) -> Response:
    program = c.need_program()
    values = await form_values(request)
    f, x = _read(request, values, with_code=True)
    try:
        f.check()
        await rewards.do_add_reward(
            c.rt,
            program_id=program.id,
            code=x["code"],
            name=x["name"],
            price_points=x["price_points"],
            stock=x["stock"],
            active=x["active"],
            actor=c.actor,
        )
    except FormErrors as exc:
        return _form(request, values, exc.errors, status=422)
    except ServiceError as exc:
        return _form(request, values, refusal(request, exc, FIELDS), status=422)
    return redirect("/admin/rewards", flash=f"{f._('Reward added')}: {x['name']}")


@router.get("/admin/rewards/orders")
async def orders(request: Request, c: Annotated[Console, READ]) -> Response:
    program = c.need_program()
    state = request.query_params.get("state", "")
    state = state if state in rewards.ORDER_STATES else ""
    pr = PageRequest.of(request, sorts=rewards.ORDER_SORTS, default="id", default_dir="desc")
    rows, total = await rewards.list_orders(
        c.rt,
        program_id=program.id,
        state=state,
        offset=pr.offset,
        limit=pr.limit,
        sort=pr.sort,
        descending=pr.descending,
    )
    return render(
        request,
        "mechanics/reward_orders.html",
        {
            "page": pr.page(rows, total),
            "state": state,
            "states": rewards.ORDER_STATES,
            "names": {r.order.id: mask_name(r.first_name, r.last_name) for r in rows},
        },
    )


@router.post("/admin/rewards/orders/{order_id}/{action}")
async def order_action(
    request: Request, order_id: int, action: str, c: Annotated[Console, WRITE]
) -> Response:
    program = c.need_program()
    values = await form_values(request)
    f = Reader(request, values)
    back = values.get("back", "")
    url = back if back.startswith("/admin/rewards/orders") else "/admin/rewards/orders"
    if await rewards.order_program(c.rt, order_id) != program.id:
        raise rewards.RewardError("order_not_found", f"no order {order_id}", field="order_id")
    try:
        if action == "issue":
            await rewards.do_issue(c.rt, order_id, actor=c.actor)
            return redirect(url, flash=f"{f._('Order issued')}: {order_id}")
        if action == "cancel":
            await rewards.do_cancel_order(c.rt, order_id, actor=c.actor)
            return redirect(url, flash=f"{f._('Order cancelled')}: {order_id}")
    except ServiceError as exc:
        return redirect(url, flash=f"{f._('Refused')}: {exc.detail}")
    return redirect(url)


@router.get("/admin/rewards/{code}")
async def reward_edit(request: Request, code: str, c: Annotated[Console, WRITE]) -> Response:
    program = c.need_program()
    r = await rewards.reward_by_code(c.rt, program_id=program.id, code=code)
    values = {
        "code": r.code,
        "name": r.name,
        "price_points": dec(r.price_points),
        "stock": "" if r.stock is None else str(r.stock),
        "active": "on" if r.active else "",
    }
    return _form(request, values, {}, editing=r.code)


@router.post("/admin/rewards/{code}")
async def reward_update(request: Request, code: str, c: Annotated[Console, WRITE]) -> Response:
    program = c.need_program()
    current = await rewards.reward_by_code(c.rt, program_id=program.id, code=code)
    values = await form_values(request)
    values["code"] = current.code
    f, x = _read(request, values, with_code=False)
    try:
        f.check()
        await rewards.do_update_reward(
            c.rt,
            program_id=program.id,
            code=current.code,
            name=x["name"],
            price_points=x["price_points"],
            stock=x["stock"],
            unlimited=x["stock"] is None,
            active=x["active"],
            actor=c.actor,
        )
    except FormErrors as exc:
        return _form(request, values, exc.errors, editing=current.code, status=422)
    except ServiceError as exc:
        errors = refusal(request, exc, FIELDS)
        return _form(request, values, errors, editing=current.code, status=422)
    return redirect("/admin/rewards", flash=f"{f._('Reward saved')}: {x['name']}")
