"""Coupons: series (list, create), a series' codes by state, exports, blocking."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.services import coupons
from kopilka.services.errors import ServiceError
from kopilka.web.auth import Console, console
from kopilka.web.mechanics.common import (
    FormErrors,
    Reader,
    download,
    fmt_of,
    form_values,
    refusal,
)
from kopilka.web.tables import PageRequest
from kopilka.web.templating import redirect, render

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.MECHANICS_READ))
WRITE = Depends(console(Perm.MECHANICS_WRITE))
# service field -> form field
FIELDS = {
    "code": "code",
    "name": "name",
    "count": "count",
    "codes": "codes",
    "max_uses": "max_uses",
    "valid_from": "valid_from",
    "valid_until": "valid_until",
    "points": "points",
    "seed": "seed",
}


def _url(series: str) -> str:
    return "/admin/coupons/" + quote(series, safe="")


@router.get("/admin/coupons")
async def series_list(request: Request, c: Annotated[Console, READ]) -> Response:
    program = c.need_program()
    pr = PageRequest.of(
        request, sorts=coupons.SERIES_SORTS, default="created_at", default_dir="desc"
    )
    rows, total = await coupons.list_series(
        c.rt,
        program_id=program.id,
        offset=pr.offset,
        limit=pr.limit,
        sort=pr.sort,
        descending=pr.descending,
    )
    return render(request, "mechanics/coupons.html", {"page": pr.page(rows, total)})


def _form(
    request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    return render(
        request, "mechanics/coupon_new.html", {"values": values, "errors": errors}, status=status
    )


@router.get("/admin/coupons/new")
async def series_form(request: Request, c: Annotated[Console, WRITE]) -> Response:
    c.need_program()
    return _form(request, {"kind": "generated", "max_uses": "1", "return_on_refund": "on"}, {})


@router.post("/admin/coupons/new")
async def series_create(request: Request, c: Annotated[Console, WRITE]) -> Response:
    program = c.need_program()
    values = await form_values(request)
    f = Reader(request, values)
    code = f.code("code").upper()
    name = f.text("name")
    imported = values.get("kind") == "imported"
    count = f.integer("count", required=not imported, low=1, high=100_000)
    codes = [x for x in values.get("codes", "").split() if x] if imported else None
    if imported and not codes:
        f.errors["codes"] = f._("Paste the codes, one a line")
    max_uses = f.integer("max_uses", low=1, high=1_000_000)
    valid_from = f.when("valid_from")
    valid_until = f.when("valid_until")
    points = f.decimal("points")
    seed = f.text("seed", required=False, max_len=64) or None
    if valid_from and valid_until and valid_until <= valid_from:
        f.errors["valid_until"] = f._("Must be after the start")
    try:
        f.check()
        if await _exists(c, code):
            raise FormErrors({"code": f._("A series with this code exists already")})
        made = await coupons.do_create_series(
            c.rt,
            program_code=program.code,
            code=code,
            name=name,
            count=count or 0,
            codes=codes,
            max_uses=max_uses,
            valid_from=valid_from,
            valid_until=valid_until,
            return_on_refund=f.flag("return_on_refund"),
            seed=seed,
            points=points,
            actor=c.actor,
        )
    except FormErrors as exc:
        return _form(request, values, exc.errors, 422)
    except ServiceError as exc:
        return _form(request, values, refusal(request, exc, FIELDS), 422)
    except IntegrityError:
        return _form(
            request, values, {"codes": f._("A code is already a coupon of this program")}, 422
        )
    return redirect(_url(code), flash=f"{f._('Series created')}: {code} · {len(made)}")


async def _exists(c: Console, code: str) -> bool:
    try:
        await coupons.series_by_code(c.rt, program_id=c.need_program().id, code=code)
    except ServiceError:
        return False
    return True


@router.get("/admin/coupons/{series}")
async def series_page(request: Request, series: str, c: Annotated[Console, READ]) -> Response:
    program = c.need_program()
    found = await coupons.series_by_code(c.rt, program_id=program.id, code=series)
    state = request.query_params.get("state", "")
    pr = PageRequest.of(request, sorts=coupons.CODE_SORTS, default="code")
    rows, total = await coupons.list_codes(
        c.rt,
        program_id=program.id,
        series=found.code,
        state=state,
        offset=pr.offset,
        limit=pr.limit,
        sort=pr.sort,
        descending=pr.descending,
    )
    return render(
        request,
        "mechanics/coupon_series.html",
        {
            "s": found,
            "page": pr.page(rows, total),
            "state": state if state in coupons.COUPON_STATES else "",
            "states": coupons.COUPON_STATES,
        },
    )


@router.get("/admin/coupons/{series}/export")
async def series_export(request: Request, series: str, c: Annotated[Console, READ]) -> Response:
    program = c.need_program()
    found = await coupons.series_by_code(c.rt, program_id=program.id, code=series)
    state = request.query_params.get("state", "")
    table = coupons.codes_table(c.rt, program_id=program.id, series=found, state=state)
    return download(
        table, fmt_of(request), f"coupons-{found.code}" + (f"-{state}" if state else "")
    )


@router.post("/admin/coupons/{series}/block")
async def series_block(request: Request, series: str, c: Annotated[Console, WRITE]) -> Response:
    return await _series_status(request, series, c, blocked=True)


@router.post("/admin/coupons/{series}/unblock")
async def series_unblock(request: Request, series: str, c: Annotated[Console, WRITE]) -> Response:
    return await _series_status(request, series, c, blocked=False)


async def _series_status(request: Request, series: str, c: Console, *, blocked: bool) -> Response:
    values = await form_values(request)
    f = Reader(request, values)
    found = await coupons.series_by_code(c.rt, program_id=c.need_program().id, code=series)
    changed = await coupons.do_set_series_status(
        c.rt,
        c.actor,
        program_id=c.need_program().id,
        series=found.code,
        blocked=blocked,
        reason=values.get("reason") or None,
    )
    what = f._("Codes blocked") if blocked else f._("Codes unblocked")
    return redirect(_url(found.code), flash=f"{what}: {changed}")


@router.post("/admin/coupons/{series}/codes/{code}/block")
async def code_block(
    request: Request, series: str, code: str, c: Annotated[Console, WRITE]
) -> Response:
    return await _code_status(request, series, code, c, blocked=True)


@router.post("/admin/coupons/{series}/codes/{code}/unblock")
async def code_unblock(
    request: Request, series: str, code: str, c: Annotated[Console, WRITE]
) -> Response:
    return await _code_status(request, series, code, c, blocked=False)


async def _code_status(
    request: Request, series: str, code: str, c: Console, *, blocked: bool
) -> Response:
    values = await form_values(request)
    f = Reader(request, values)
    row = await coupons.do_set_coupon_status(
        c.rt,
        c.actor,
        program_id=c.need_program().id,
        code=code,
        blocked=blocked,
        reason=values.get("reason") or None,
    )
    back = values.get("back", "")
    url = back if back.startswith(_url(series)) else _url(series)
    what = f._("Coupon blocked") if blocked else f._("Coupon unblocked")
    return redirect(url, flash=f"{what}: {row.code}")
