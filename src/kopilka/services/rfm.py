"""RFM segments as an audience: the report's segment of every customer written into
``customers.rfm_segment``, which campaigns' audience ``rfm`` and the rules engine's
``segments: {NAME: {rfm: [...]}}`` read (services/campaigns.py, services/pricing.py).

- ``check_access``: the RFM report covers the whole program, so an actor limited to a
  partner or a store may not see it;
- ``do_save_segments``: the report as of a date, then one transaction that writes the
  segment code of each customer with a purchase in the window and NULL for everyone
  else, only the rows that change; a manual save is audited ``rfm.save`` (who, the
  date, the counts), the worker's daily run is not (it prints what changed);
- ``refresh_all``: the worker's daily job, as of today in each program's time zone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from kopilka.analytics import rfm as report
from kopilka.domain import rfm
from kopilka.domain.roles import Perm
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

BATCH = 5000  # ids per UPDATE ... WHERE id IN (...)
cu = t.customers


def check_access(actor: Actor, program_id: int, *, write: bool = False) -> None:
    """Refuse (403) an actor who may not read the report, or write segments."""
    actor.require(Perm.REPORTS_READ)
    if write:
        actor.require(Perm.PROGRAMS_WRITE)
    if actor.program_id is not None and actor.program_id != program_id:
        raise ServiceError("forbidden", "this user is limited to another program")
    if actor.partner_id is not None or actor.store_id is not None:
        raise ServiceError(
            "forbidden", "the RFM report covers the whole program: not for a partner or a store"
        )


@dataclass(frozen=True)
class Saved:
    as_of: date
    window_days: int
    customers: int  # with a segment
    changed: int  # rows whose rfm_segment changed
    sizes: dict[str, int]  # segment code -> customers


async def do_save_segments(
    rt: Runtime,
    actor: Actor,
    program_id: int,
    *,
    as_of: date,
    window_days: int = report.DEFAULT_WINDOW_DAYS,
    segments: rfm.SegmentMap = rfm.DEFAULT_MAP,
) -> Saved:
    """Write every customer's segment as of ``as_of`` (NULL: no purchase in the window)."""
    check_access(actor, program_id, write=True)
    rep = await report.compute(
        rt, program_id, as_of=as_of, window_days=window_days, segments=segments
    )
    wanted = rep.by_customer
    async with rt.engine.begin() as conn:
        current = await conn.execute(
            select(cu.c.id, cu.c.rfm_segment).where(cu.c.program_id == program_id)
        )
        moves: dict[str | None, list[int]] = {}
        for cid, seg in current:
            new = wanted.get(int(cid))
            if new != seg:
                moves.setdefault(new, []).append(int(cid))
        for value, ids in moves.items():
            for i in range(0, len(ids), BATCH):
                await conn.execute(
                    update(cu)
                    .where(cu.c.program_id == program_id, cu.c.id.in_(ids[i : i + BATCH]))
                    .values(rfm_segment=value)
                )
        sizes = dict(Counter(wanted.values()))
        changed = sum(len(v) for v in moves.values())
        if actor.kind == "system":  # the worker's daily run is no manual change
            return Saved(as_of, window_days, len(wanted), changed, sizes)
        await audit.record(
            conn,
            actor,
            "rfm.save",
            "program",
            program_id,
            at=rt.now(),
            program_id=program_id,
            after={
                "as_of": as_of.isoformat(),
                "window_days": window_days,
                "customers": len(wanted),
                "changed": changed,
                "segments": sizes,
            },
        )
    return Saved(as_of, window_days, len(wanted), changed, sizes)


async def refresh_all(
    rt: Runtime, *, segments: rfm.SegmentMap | None = None
) -> Sequence[tuple[int, Saved]]:
    """The worker's daily job: every program's segments as of today (its local date)."""
    seg_map = segments or report.load_segment_map()
    async with rt.engine.connect() as conn:
        ids = [int(x) for x in (await conn.execute(select(t.programs.c.id))).scalars()]
    out = []
    for pid in ids:
        tz = ZoneInfo((await rt.compiled(pid)).settings.timezone)
        today = rt.now().astimezone(tz).date()
        saved = await do_save_segments(rt, audit.SYSTEM, pid, as_of=today, segments=seg_map)
        out.append((pid, saved))
    return out
