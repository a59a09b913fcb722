"""Receipts at the stores the viewer reaches: /admin/receipts (issue 9, a partner's view).

A partner's staff see their stores' receipts and their customers' activity there, with
personal data masked (no ``customers.read``), and the promotions restricted to their
partner; a program-wide role sees every store's.  Scoping: ``services.partner_view``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.services import partner_view, programs, scope
from kopilka.web.auth import Console, console
from kopilka.web.tables import PageRequest
from kopilka.web.templating import render

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.STORES_READ))


@router.get("/admin/receipts")
async def receipt_list(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    pr = PageRequest.of(request, sorts=("occurred_at",), default="occurred_at", default_dir="desc")
    rows, total = await partner_view.list_receipts(
        c.rt, c.actor, prog.id, offset=pr.offset, limit=pr.limit
    )
    _, doc = await programs.current(c.rt, prog.code)
    promos = await partner_view.partner_promotions(c.rt, c.actor, prog.id, doc)
    return render(
        request,
        "org/receipts.html",
        {
            "page": pr.page(rows, total),
            "promotions": promos,
            "scoped": scope.partner_scoped(c.actor),
            "masked": not c.can(Perm.CUSTOMERS_READ),
        },
    )
