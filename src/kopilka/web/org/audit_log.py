"""The audit log: /admin/audit (security officer, owner), with CSV and Excel exports."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.services import audit
from kopilka.web.auth import Console, console
from kopilka.web.org.common import message
from kopilka.web.tables import PageRequest
from kopilka.web.templating import SECURITY_HEADERS, render

router = APIRouter(include_in_schema=False)
AUDIT = Depends(console(Perm.AUDIT_READ))
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _filter(request: Request, c: Console) -> tuple[audit.AuditFilter, dict[str, str]]:
    q = request.query_params
    errors: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for name in ("since", "until"):
        raw = q.get(name, "").strip()
        days[name] = None
        if raw:
            try:
                days[name] = date.fromisoformat(raw)
            except ValueError:
                errors[name] = message(c, "a date such as 2026-11-23")
    f = audit.AuditFilter(
        actor=q.get("actor", "").strip(),
        action=q.get("action", "").strip(),
        object_type=q.get("object_type", "").strip(),
        object_id=q.get("object_id", "").strip(),
        since=days["since"],
        until=days["until"],
        program_id=c.actor.program_id,
    )
    return f, errors


@router.get("/admin/audit")
async def audit_page(request: Request, c: Annotated[Console, AUDIT]) -> Response:
    f, errors = _filter(request, c)
    pr = PageRequest.of(request, sorts=("at",), default="at", default_dir="desc")
    rows, total = await audit.list_audit(
        c.rt, f, offset=pr.offset, limit=pr.limit, newest_first=pr.descending
    )
    shown = [(r, audit.changes(r.before, r.after)) for r in rows]
    query = str(request.url.query)
    return render(
        request,
        "org/audit.html",
        {
            "page": pr.page(shown, total),
            "values": dict(request.query_params),
            "errors": errors,
            "query": query,
        },
        status=422 if errors else 200,
    )


@router.get("/admin/audit.csv")
async def audit_csv(request: Request, c: Annotated[Console, AUDIT]) -> Response:
    f, _ = _filter(request, c)
    body = await audit.export_audit_csv(c.rt, f)
    return Response(
        body.encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="audit-{c.rt.now():%Y%m%d}.csv"',
        },
    )


@router.get("/admin/audit.xlsx")
async def audit_xlsx(request: Request, c: Annotated[Console, AUDIT]) -> Response:
    f, _ = _filter(request, c)
    body = await audit.export_audit_xlsx(c.rt, f)
    return Response(
        body,
        media_type=XLSX,
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="audit-{c.rt.now():%Y%m%d}.xlsx"',
        },
    )
