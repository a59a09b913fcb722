"""Prize draws: list, create, the draw's page (tickets so far, seed hash, winners),
commit and run as the service allows, winners export."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain import draws as d
from kopilka.domain.identifiers import mask_card
from kopilka.domain.roles import Perm, mask_name
from kopilka.services import draws
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
FIELDS = {"code": "code", "rules": "prizes", "to": "period_end", "period": "period_start"}


def _url(code: str) -> str:
    return "/admin/draws/" + quote(code, safe="")


@router.get("/admin/draws")
async def draw_list(request: Request, c: Annotated[Console, READ]) -> Response:
    program = c.need_program()
    pr = PageRequest.of(request, sorts=draws.DRAW_SORTS, default="period_end", default_dir="desc")
    rows, total = await draws.list_draws(
        c.rt,
        program_id=program.id,
        offset=pr.offset,
        limit=pr.limit,
        sort=pr.sort,
        descending=pr.descending,
    )
    return render(request, "mechanics/draws.html", {"page": pr.page(rows, total)})


def _form(
    request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    return render(
        request, "mechanics/draw_new.html", {"values": values, "errors": errors}, status=status
    )


@router.get("/admin/draws/new")
async def draw_form(request: Request, c: Annotated[Console, WRITE]) -> Response:
    c.need_program()
    return _form(
        request,
        {"tickets_per_purchase": "1", "one_prize_per_member": "on", "prizes": "1:points:1000"},
        {},
    )


def parse_prizes(text: str) -> list[dict[str, Any]]:
    """``COUNT:points:AMOUNT`` or ``COUNT:goods:NAME``, one a line (as the CLI's --prize)."""
    out: list[dict[str, Any]] = []
    for i, line in enumerate(x.strip() for x in text.splitlines() if x.strip()):
        parts = line.split(":", 2)
        if len(parts) != 3 or parts[1] not in ("points", "goods"):
            raise ValueError(f"{i + 1}: COUNT:points:AMOUNT {'/'} COUNT:goods:NAME")
        try:
            count = int(parts[0])
            prize: dict[str, Any] = {"count": count}
            if parts[1] == "points":
                prize["points"] = str(Decimal(parts[2].replace(",", ".")))
            else:
                prize["goods"] = parts[2].strip()
        except (ValueError, InvalidOperation):
            raise ValueError(f"{i + 1}: {line}") from None
        out.append(prize)
    return out


@router.post("/admin/draws/new")
async def draw_create(request: Request, c: Annotated[Console, WRITE]) -> Response:
    program = c.need_program()
    values = await form_values(request)
    f = Reader(request, values)
    code = f.code("code")
    name = f.text("name")
    start = f.when("period_start", required=True)
    end = f.when("period_end", required=True)
    per_purchase = f.integer("tickets_per_purchase", low=0, high=1000)
    per_amount = f.decimal("tickets_per_amount")
    min_purchase = f.decimal("min_purchase")
    prizes: list[dict[str, Any]] = []
    try:
        prizes = parse_prizes(values.get("prizes", ""))
    except ValueError as exc:
        f.errors["prizes"] = f"{f._('A prize line is wrong')}: {exc}"
    if start and end and end <= start:
        f.errors["period_end"] = f._("Must be after the start")
    rules: dict[str, Any] = {
        "prizes": prizes,
        "tickets_per_purchase": 1 if per_purchase is None else per_purchase,
        "one_prize_per_member": f.flag("one_prize_per_member"),
    }
    if per_amount is not None:
        rules["tickets_per_amount"] = str(per_amount)
    if min_purchase is not None:
        rules["min_purchase"] = str(min_purchase)
    try:
        f.check()
        assert start is not None and end is not None
        await draws.do_create_draw(
            c.rt,
            program_code=program.code,
            code=code,
            name=name,
            period_start=start,
            period_end=end,
            rules=rules,
            actor=c.actor,
        )
    except FormErrors as exc:
        return _form(request, values, exc.errors, 422)
    except ServiceError as exc:
        return _form(request, values, refusal(request, exc, FIELDS), 422)
    return redirect(_url(code), flash=f"{f._('Draw created')}: {code}")


@router.get("/admin/draws/{code}")
async def draw_page(request: Request, code: str, c: Annotated[Console, READ]) -> Response:
    program = c.need_program()
    draw = await draws.draw_of(c.rt, program_code=program.code, code=code)
    members, tickets = await draws.tickets_so_far(c.rt, draw)
    winners = await draws.list_winners(c.rt, draw)
    return render(
        request,
        "mechanics/draw.html",
        {
            "draw": draw,
            "rules": d.rules_to_dict(draw.rules),
            "members": members,
            "tickets": tickets,
            "winners": [
                (w, mask_name(w.first_name, w.last_name), mask_card(w.card) if w.card else "")
                for w in winners
            ],
            "now": c.rt.now(),
        },
    )


@router.get("/admin/draws/{code}/winners")
async def winners_export(request: Request, code: str, c: Annotated[Console, READ]) -> Response:
    program = c.need_program()
    draw = await draws.draw_of(c.rt, program_code=program.code, code=code)
    return download(draws.winners_table(c.rt, draw), fmt_of(request), f"draw-{draw.code}-winners")


@router.post("/admin/draws/{code}/{action}")
async def draw_action(
    request: Request, code: str, action: str, c: Annotated[Console, WRITE]
) -> Response:
    program = c.need_program()
    f = Reader(request, {})
    try:
        if action == "commit":
            await draws.do_commit(c.rt, code, program_code=program.code, actor=c.actor)
            return redirect(_url(code), flash=f._("Seed committed: publish its hash"))
        if action == "run":
            await draws.do_run(c.rt, code, program_code=program.code, actor=c.actor)
            return redirect(_url(code), flash=f._("The draw has been run"))
    except ServiceError as exc:
        if exc.status == 404:
            raise
        return redirect(_url(code), flash=f"{f._('Refused')}: {exc.detail}")
    return redirect(_url(code))
