"""Admin API: fraud alerts (issue 8, docs/fraud.md) — the same service as the console
(``services.fraud``), token-authenticated.  Reading needs ``audit.read``; acting on an
alert and changing thresholds ``audit.read`` and ``cards.block`` (the security and owner
roles).  Every action is audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response, StreamingResponse

from kopilka.api.admin.common import ok as _ok
from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.common import who as _who
from kopilka.api.admin.routes import ERRORS, JSON, SECURITY
from kopilka.api.pos.schemas import Strict
from kopilka.domain import fraud as df
from kopilka.domain.roles import Perm
from kopilka.services import audit, exports, fraud

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]
Format = Annotated[str, Query(alias="format", pattern="^(csv|xlsx)$")]
Word = Annotated[str, Query(max_length=32)]


class NoteIn(Strict):
    note: Annotated[str, Field(min_length=1, max_length=500)] = Field(
        description="what was found and done (at least 3 characters)"
    )


class BlockIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class FraudSettingsIn(Strict):
    """Thresholds to change (a field left out keeps its value); docs/fraud.md."""

    cashier_card_receipts: int | None = None
    cashier_card_hours: int | None = None
    earn_burn_receipts: int | None = None
    earn_burn_days: int | None = None
    earn_burn_hours: int | None = None
    refund_days: int | None = None
    refund_count: int | None = None
    phone_cards_max: int | None = None
    device_customers_max: int | None = None
    device_days: int | None = None
    burst_receipts: int | None = None
    burst_minutes: int | None = None
    burst_factor: int | None = None
    adjust_limit: Annotated[str, Field(pattern=r"^\d{1,8}(\.\d{1,2})?$")] | None = Field(
        None, description="points, as a decimal string"
    )
    disabled: list[str] | None = Field(None, description="rules turned off (None: unchanged)")


SCHEMAS: tuple[type[BaseModel], ...] = (NoteIn, BlockIn, FraudSettingsIn)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _row(r: fraud.AlertRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "rule": r.rule,
        "severity": r.severity,
        "state": r.state,
        "subject": {"type": r.subject_type, "id": r.subject_id, "label": r.subject_label},
        "store": None if r.store_id is None else {"id": r.store_id, "name": r.store_name},
        "customer_id": r.customer_id,
        "card": r.card_number,
        "summary": r.summary,
        "assignee": r.assignee_name,
        "evidence_items": r.evidence_count,
        "created_at": _iso(r.created_at),
        "updated_at": _iso(r.updated_at),
    }


def _body(model: type[Strict], raw: bytes) -> Any:
    return model.model_validate_json(raw or b"{}")


@router.get(
    "/programs/{code}/fraud/alerts",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Fraud alerts, newest first (filters: rule, state — 'active' is open or assigned — "
    "and store id)",
)
async def list_alerts(
    request: Request,
    code: str,
    rule: Word = "",
    state: Word = "",
    store: Word = "",
    offset: Offset = 0,
    limit: Limit = 50,
) -> Response:
    actor, pid = await _who(request, code, Perm.AUDIT_READ)
    flt = fraud.parse_filter(rule, state, store)
    rows, total = await fraud.list_alerts(_rt(request), actor, pid, flt, offset=offset, limit=limit)
    return _ok({"total": total, "offset": offset, "limit": limit, "items": [_row(r) for r in rows]})


@router.get(
    "/programs/{code}/fraud/alerts/{alert_id}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="One alert with its evidence (the receipts, refunds, cards or entries that raised it)",
)
async def get_alert(request: Request, code: str, alert_id: int) -> Response:
    actor, pid = await _who(request, code, Perm.AUDIT_READ)
    a = await fraud.get_alert(_rt(request), actor, pid, alert_id)
    return _ok(
        {
            **_row(a.row),
            "evidence": a.evidence,
            "card_status": a.card_status,
            "resolution": a.resolution,
            "resolved_by": a.resolved_by,
            "resolved_at": _iso(a.resolved_at),
        }
    )


async def _after(request: Request, actor: audit.Actor, pid: int, alert_id: int) -> Response:
    a = await fraud.get_alert(_rt(request), actor, pid, alert_id)
    return _ok({**_row(a.row), "card_status": a.card_status, "resolution": a.resolution})


def _body_doc(schema: str) -> dict[str, Any]:
    return {
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        },
    }


@router.post(
    "/programs/{code}/fraud/alerts/{alert_id}/assign",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Take the alert (assigned to the token)",
)
async def assign(request: Request, code: str, alert_id: int) -> Response:
    actor, pid = await _who(request, code, Perm.CARDS_BLOCK)
    await fraud.do_assign(_rt(request), actor, pid, alert_id)
    return await _after(request, actor, pid, alert_id)


async def _acting(request: Request, code: str, alert_id: int) -> tuple[audit.Actor, int]:
    """A change of an alert: both permissions and the alert in reach (404), checked before
    the body is read."""
    actor, pid = await _who(request, code, Perm.CARDS_BLOCK)
    actor.require(Perm.AUDIT_READ)
    await fraud.get_alert(_rt(request), actor, pid, alert_id)
    return actor, pid


async def _close(request: Request, code: str, alert_id: int, state: str) -> Response:
    actor, pid = await _acting(request, code, alert_id)
    body: NoteIn = _body(NoteIn, await request.body())
    await fraud.do_close(_rt(request), actor, pid, alert_id, state=state, note=body.note)
    return await _after(request, actor, pid, alert_id)


@router.post(
    "/programs/{code}/fraud/alerts/{alert_id}/resolve",
    responses=ERRORS,
    openapi_extra=_body_doc("NoteIn"),
    summary="Resolve the alert (fraud, dealt with) with a note",
)
async def resolve(request: Request, code: str, alert_id: int) -> Response:
    return await _close(request, code, alert_id, "resolved")


@router.post(
    "/programs/{code}/fraud/alerts/{alert_id}/dismiss",
    responses=ERRORS,
    openapi_extra=_body_doc("NoteIn"),
    summary="Dismiss the alert (a false alarm) with a note",
)
async def dismiss(request: Request, code: str, alert_id: int) -> Response:
    return await _close(request, code, alert_id, "dismissed")


@router.post(
    "/programs/{code}/fraud/alerts/{alert_id}/block-card",
    responses=ERRORS,
    openapi_extra=_body_doc("BlockIn"),
    summary="Block the alert's card (the till refuses it from then on)",
)
async def block_card(request: Request, code: str, alert_id: int) -> Response:
    actor, pid = await _acting(request, code, alert_id)
    body: BlockIn = _body(BlockIn, await request.body())
    await fraud.do_block_card(_rt(request), actor, pid, alert_id, reason=body.reason)
    return await _after(request, actor, pid, alert_id)


@router.get(
    "/programs/{code}/fraud/settings",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="The program's fraud thresholds",
)
async def get_settings(request: Request, code: str) -> Response:
    _, pid = await _who(request, code, Perm.AUDIT_READ)
    return _ok(df.settings_to_dict(await fraud.load_settings(_rt(request), pid)))


@router.put(
    "/programs/{code}/fraud/settings",
    responses=ERRORS,
    openapi_extra=_body_doc("FraudSettingsIn"),
    summary="Change fraud thresholds (fields left out keep their values)",
)
async def put_settings(request: Request, code: str) -> Response:
    actor, pid = await _who(request, code, Perm.CARDS_BLOCK)
    body: FraudSettingsIn = _body(FraudSettingsIn, await request.body())
    values = {k: str(v) for k, v in body.model_dump(exclude={"disabled"}).items() if v is not None}
    saved = await fraud.do_save_settings(_rt(request), actor, pid, values, disabled=body.disabled)
    return _ok(df.settings_to_dict(saved))


@router.get(
    "/reports/fraud-alerts",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Fraud alerts as a CSV or XLSX file (the console's export)",
)
async def export_alerts(
    request: Request,
    program: Annotated[str, Query(max_length=64)],
    fmt: Format = "csv",
    rule: Word = "",
    state: Word = "",
    store: Word = "",
) -> Response:
    actor, pid = await _who(request, program, Perm.AUDIT_READ)
    flt = fraud.parse_filter(rule, state, store)
    table = fraud.alerts_table(_rt(request), actor, pid, flt)
    return StreamingResponse(
        exports.chunks(table, fmt),
        media_type=exports.media_type(fmt),
        headers=exports.attachment("fraud-alerts", fmt),
    )
