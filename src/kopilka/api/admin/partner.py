"""Admin API: a partner's view of its program (issue 9) — the receipts at its stores
with its customers' activity (personal data masked for roles without ``customers.read``)
and the promotions restricted to it.  Scoped by ``services.scope`` like every call: a
partner's token sees its partner's stores only, a store manager's its store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from kopilka.api.admin.common import ok, runtime, who
from kopilka.api.admin.routes import ERRORS, SECURITY
from kopilka.domain.money import fmt2
from kopilka.domain.roles import Perm
from kopilka.services import partner_view, programs

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])

Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]


def _receipt(x: partner_view.ReceiptRow) -> dict[str, Any]:
    return {
        "id": x.id,
        "receipt_id": x.pos_receipt_id,
        "store": {"code": x.store_code, "name": x.store_name},
        "partner": x.partner_code,
        "state": x.state,
        "occurred_at": x.occurred_at.isoformat(),
        "amount": fmt2(x.amount),
        "discount": fmt2(x.discount),
        "points_earned": fmt2(x.points_earned),
        "points_redeemed": fmt2(x.points_redeemed),
        "customer": None
        if x.customer_id is None
        else {"id": x.customer_id, "name": x.customer, "phone": x.phone, "card": x.card},
    }


@router.get(
    "/programs/{code}/receipts",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Receipts at the stores the token reaches, newest first (customers masked "
    "without customers.read)",
)
async def list_receipts(
    request: Request, code: str, offset: Offset = 0, limit: Limit = 50
) -> Response:
    actor, pid = await who(request, code, Perm.STORES_READ)
    rows, total = await partner_view.list_receipts(
        runtime(request), actor, pid, offset=offset, limit=limit
    )
    return ok({"total": total, "items": [_receipt(x) for x in rows]})


@router.get(
    "/programs/{code}/partner/promotions",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Promotions restricted to partners (a partner's token: those naming it)",
)
async def list_partner_promotions(request: Request, code: str) -> Response:
    actor, pid = await who(request, code, Perm.STORES_READ)
    rt = runtime(request)
    version, doc = await programs.current(rt, code)
    rows = await partner_view.partner_promotions(rt, actor, pid, doc)
    return ok(
        {
            "version": version,
            "promotions": [
                {
                    "id": p.id,
                    "name": p.name,
                    "partners": list(p.partners),
                    "starts_at": p.starts_at,
                    "ends_at": p.ends_at,
                }
                for p in rows
            ],
        }
    )
