"""The nightly ledger verification and its alarms (issue 10, ADR 0031).

``kopilka worker`` runs ``verify_ledger`` once a night, at ``hour`` o'clock in the time
zone given (the program's by default); ``kopilka ledger verify`` does the same by hand.
Every run is recorded in the audit log (action ``ledger.verify``, actor ``system``, the
count and the first differences), which is also how the worker knows it has run tonight
(several workers, or a restart, do not run it twice) and what the metric
``kopilka_ledger_verify_mismatches`` reports.  A run that finds any difference raises,
per program concerned:

- an outbox event ``ledger.mismatch`` (partners' and operators' webhooks subscribed to it;
  ``dedup_key`` ``ledger.mismatch:<program>:<date>``: once a night, however many runs);
- a high-severity alert ``ledger_mismatch`` in the security officer's queue (console,
  Fraud alerts), its evidence one item per difference.

A difference means a cached balance, held amount or lot disagrees with the append-only
entries: a bug, a manual edit of the database, or a restore gone wrong.  The entries are
the truth; the fix is a reviewed correction, never an edit of the entries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from kopilka.domain import fraud as df
from kopilka.notify import messages
from kopilka.services import audit
from kopilka.services.fraud import save_finding
from kopilka.services.ledger_jobs import Discrepancy, verify_ledger
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

ACTION = "ledger.verify"
OBJECT = "ledger"
TOPIC = messages.LEDGER_MISMATCH_TOPIC
SHOWN = 50  # differences kept in the audit record and in the alert


@dataclass(frozen=True)
class VerifyRun:
    at: datetime
    night: date  # the local date the run belongs to
    discrepancies: int
    programs: tuple[int, ...]  # programs with a difference


def night_of(now: datetime, *, hour: int, zone: ZoneInfo) -> tuple[date, datetime] | None:
    """The local date whose nightly run is due at ``now``, and the moment it became due
    (``hour`` o'clock local time); None before ``hour`` o'clock."""
    local = now.astimezone(zone)
    if local.hour < hour:
        return None
    due = datetime.combine(local.date(), time(hour), tzinfo=zone)
    return local.date(), due


async def last_run(rt: Runtime) -> tuple[datetime, int] | None:
    """When the ledger was last verified and how many differences it found."""
    a = t.audit_log
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(a.c.at, a.c.after)
                .where(a.c.object_type == OBJECT, a.c.action == ACTION)
                .order_by(a.c.id.desc())
                .limit(1)
            )
        ).first()
    if row is None:
        return None
    after = orjson.loads(row.after or "{}")
    return row.at, int(after.get("discrepancies", 0))


async def nightly(
    rt: Runtime, *, hour: int, timezone: str | None = None, recipients: Sequence[str] = ()
) -> VerifyRun | None:
    """Verify the ledger if tonight's run is due and nobody has done it since it became
    due.  ``timezone``: the first program's when None; ``recipients``: the operators'
    e-mail addresses for the alarm."""
    now = rt.now()
    zone = ZoneInfo(timezone or await _program_zone(rt))
    due = night_of(now, hour=hour, zone=zone)
    if due is None:
        return None
    last = await last_run(rt)
    if last is not None and last[0] >= due[1]:
        return None
    return await verify_and_alert(rt, night=due[0], recipients=recipients)


async def verify_and_alert(
    rt: Runtime, *, night: date | None = None, recipients: Sequence[str] = ()
) -> VerifyRun:
    """Verify now, record the run, raise the alarms if anything differs."""
    now = rt.now()
    night = night or now.date()
    bad = await verify_ledger(rt)
    by_program = await _programs_of(rt, {d.account_id for d in bad})
    grouped: dict[int, list[Discrepancy]] = defaultdict(list)
    for d in bad:
        grouped[by_program.get(d.account_id, 0)].append(d)
    async with rt.engine.begin() as conn:
        await audit.record(
            conn,
            audit.SYSTEM,
            ACTION,
            OBJECT,
            night.isoformat(),
            at=now,
            after={
                "discrepancies": len(bad),
                "first": [_item(d, now) for d in bad[:SHOWN]],
            },
        )
        for pid, items in grouped.items():
            await _alarm(conn, pid, items, now=now, night=night, recipients=recipients)
    return VerifyRun(now, night, len(bad), tuple(sorted(grouped)))


def _item(d: Discrepancy, now: datetime) -> dict[str, Any]:
    return {
        "key": f"mismatch:{d.account_id}:{d.what}",
        "kind": "mismatch",
        "at": now.isoformat(),
        "account_id": d.account_id,
        "what": d.what,
        "cached": str(d.cached),
        "recomputed": str(d.recomputed),
    }


async def _alarm(
    conn: Any,
    pid: int,
    items: list[Discrepancy],
    *,
    now: datetime,
    night: date,
    recipients: Sequence[str],
) -> None:
    evidence = tuple(_item(d, now) for d in items[:SHOWN])
    finding = df.Finding(
        rule=df.Rule.LEDGER_MISMATCH,
        severity="high",
        subject_type="program",
        subject_id=str(pid),
        subject_label=f"program {pid}",
        dedup_key=f"ledger_mismatch:{pid}",
        summary=f"{len(items)} ledger differences found by the nightly verify",
        evidence=evidence,
    )
    await save_finding(conn, pid, finding, now)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    await conn.execute(
        dialect.insert(t.outbox).on_conflict_do_nothing(index_elements=["dedup_key"]),
        {
            "program_id": pid,
            "topic": TOPIC,
            "created_at": now,
            "attempts": 0,
            "dedup_key": f"{TOPIC}:{pid}:{night.isoformat()}",
            "payload": orjson.dumps(
                {
                    "night": night.isoformat(),
                    "discrepancies": len(items),
                    "accounts": sorted({d.account_id for d in items})[:SHOWN],
                    "recipients": list(recipients),
                }
            ).decode(),
        },
    )


async def _programs_of(rt: Runtime, accounts: set[int]) -> dict[int, int]:
    if not accounts:
        return {}
    a = t.accounts
    async with rt.engine.connect() as conn:
        rows = await conn.execute(select(a.c.id, a.c.program_id).where(a.c.id.in_(accounts)))
        return {int(r.id): int(r.program_id) for r in rows}


async def _program_zone(rt: Runtime) -> str:
    async with rt.engine.connect() as conn:
        pid = (
            await conn.execute(select(t.programs.c.id).order_by(t.programs.c.id).limit(1))
        ).scalar_one_or_none()
    if pid is None:
        return "Europe/Moscow"
    return (await rt.program(int(pid))).timezone
