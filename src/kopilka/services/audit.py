"""The audit log: every manual change, who made it, when, and the state before and after.

``record`` is called inside the transaction of the change itself, so a change and its
audit row land together or not at all.  An ``Actor`` is whoever acts: a console user, an
admin API token, the operator's CLI.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Select, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.roles import Perm, can
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

a = t.audit_log


@dataclass(frozen=True)
class Actor:
    """Who acts.  ``kind`` is user | token | cli | system; scopes limit what it reaches."""

    kind: str
    id: int | None
    name: str
    role: str = "owner"
    ip: str | None = None
    program_id: int | None = None  # None: every program
    partner_id: int | None = None
    store_id: int | None = None

    def can(self, perm: Perm) -> bool:
        return can(self.role, perm)

    def require(self, perm: Perm) -> None:
        """Refuse (403 forbidden) an action the actor's role does not grant."""
        if not self.can(perm):
            raise ServiceError(
                "forbidden", f"the role {self.role!r} may not do this ({perm.value})", field=None
            )


CLI = Actor("cli", None, "cli")
SYSTEM = Actor("system", None, "system")


def _json(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None

    def default(o: Any) -> Any:
        if isinstance(o, Decimal | date | datetime):
            return str(o)
        raise TypeError

    return orjson.dumps(value, default=default, option=orjson.OPT_SORT_KEYS).decode()


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    *,
    at: datetime,
    program_id: int | None = None,
    partner_id: int | None = None,
    reason: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    await conn.execute(
        insert(a),
        {
            "at": at,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "actor_name": actor.name[:200],
            "ip": actor.ip,
            "program_id": program_id,
            "partner_id": partner_id,
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id)[:64],
            "reason": (reason or None) and reason[:500],
            "before": _json(before),
            "after": _json(after),
        },
    )


def require_reason(reason: str | None, *, field: str = "reason") -> str:
    """A manual change to a customer needs a reason a security officer can read later."""
    text = (reason or "").strip()
    if len(text) < 3:
        raise ServiceError("validation_failed", "say why (at least 3 characters)", field=field)
    return text[:500]


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""  # part of the actor's name
    action: str = ""  # prefix: "card." finds every card action
    object_type: str = ""
    object_id: str = ""
    since: date | None = None
    until: date | None = None  # inclusive
    program_id: int | None = None


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor_kind: str
    actor_name: str
    ip: str | None
    action: str
    object_type: str
    object_id: str
    reason: str | None
    before: str | None
    after: str | None


def _filtered(f: AuditFilter) -> Select[Any]:
    q = select(a)
    if f.actor:
        q = q.where(func.lower(a.c.actor_name).contains(f.actor.lower(), autoescape=True))
    if f.action:
        q = q.where(a.c.action.startswith(f.action, autoescape=True))
    if f.object_type:
        q = q.where(a.c.object_type == f.object_type)
    if f.object_id:
        q = q.where(a.c.object_id == f.object_id)
    if f.since:
        q = q.where(a.c.at >= datetime.combine(f.since, time.min).astimezone())
    if f.until:
        q = q.where(a.c.at < datetime.combine(f.until + timedelta(days=1), time.min).astimezone())
    if f.program_id is not None:
        # a caller limited to a program sees that program's rows only: a row of no program
        # (the operator's CLI, a user of every program) may name any program's things
        q = q.where(a.c.program_id == f.program_id)
    return q


async def list_audit(
    rt: Runtime, f: AuditFilter, *, offset: int = 0, limit: int = 50, newest_first: bool = True
) -> tuple[list[AuditRow], int]:
    """One page of the log and the number of rows the filter matches."""
    q = _filtered(f)
    order = a.c.id.desc() if newest_first else a.c.id.asc()
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
        rows = (await conn.execute(q.order_by(order).offset(offset).limit(limit))).all()
    return [_row(r) for r in rows], total


def _row(r: Any) -> AuditRow:
    return AuditRow(
        r.id,
        r.at,
        r.actor_kind,
        r.actor_name,
        r.ip,
        r.action,
        r.object_type,
        r.object_id,
        r.reason,
        r.before,
        r.after,
    )


AUDIT_COLUMNS = (
    "id",
    "at",
    "actor_kind",
    "actor_name",
    "ip",
    "action",
    "object_type",
    "object_id",
    "reason",
    "before",
    "after",
)


async def export_audit_csv(rt: Runtime, f: AuditFilter, *, max_rows: int = 1_000_000) -> str:
    """The filtered log, oldest first, as CSV (UTF-8, header row)."""
    rows, _ = await list_audit(rt, f, limit=max_rows, newest_first=False)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(AUDIT_COLUMNS)
    for r in rows:
        w.writerow([getattr(r, c) if c != "at" else r.at.isoformat() for c in AUDIT_COLUMNS])
    return out.getvalue()


async def export_audit_xlsx(rt: Runtime, f: AuditFilter, *, max_rows: int = 1_000_000) -> bytes:
    """The filtered log, oldest first, as an Excel workbook (one sheet, header row)."""
    from openpyxl import Workbook

    rows, _ = await list_audit(rt, f, limit=max_rows, newest_first=False)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("audit")
    ws.append(list(AUDIT_COLUMNS))
    for r in rows:
        ws.append(
            [
                r.at.astimezone().replace(tzinfo=None) if c == "at" else getattr(r, c)
                for c in AUDIT_COLUMNS
            ]
        )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def changes(before: str | None, after: str | None) -> list[tuple[str, str, str]]:
    """(field, before, after) of an audit row's JSON, for people to read."""
    old: dict[str, Any] = orjson.loads(before) if before else {}
    new: dict[str, Any] = orjson.loads(after) if after else {}
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [("", str(before or ""), str(after or ""))]

    def text(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, bool):
            return "yes" if v else "no"
        return str(v)

    keys = list(dict.fromkeys([*old, *new]))
    return [
        (k, text(old.get(k)) if k in old else "", text(new.get(k)) if k in new else "")
        for k in keys
    ]
