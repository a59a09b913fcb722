"""``kopilka worker``: the scheduled work, one table of periodic jobs.

Each job is a coroutine that does one round of its work and says what it did in a line
for the log (or nothing).  A job runs every round of the loop (``every_s`` None), every
``every_s`` seconds, or never (``every_s`` <= 0).  Jobs run one after another in the
order of the table, so a round never does two things to one row at once; several
workers on PostgreSQL share the work through the jobs' own claims (SKIP LOCKED, state
changes, watermark locks).  docs/operations.md lists them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime

Said = str | None


@dataclass
class Periodic:
    name: str
    every_s: float | None  # None: every round; <= 0: off
    run: Callable[[Runtime], Awaitable[Said]]
    last: float = float("-inf")  # -inf: due at once (loop.time() may be small after boot)

    def due(self, now: float) -> bool:
        if self.every_s is None:
            return True
        return self.every_s > 0 and now - self.last >= self.every_s


async def run(rt: Runtime, jobs: Sequence[Periodic], *, every_s: float, once: bool) -> int:
    loop = asyncio.get_running_loop()
    while True:
        for job in jobs:
            if job.due(loop.time()):
                try:
                    said = await job.run(rt)
                except Exception as exc:
                    if once:
                        raise
                    # The database away (a failover, a restart): the worker stays up and
                    # the job runs again when due; its work is in the database, not here.
                    said = f"failed, will run again: {type(exc).__name__}: {exc}"[:500]
                job.last = loop.time()
                if said:
                    print(f"{job.name}: {said}", file=sys.stderr)
        if once:
            return 0
        await asyncio.sleep(every_s)


# --- the jobs ----------------------------------------------------------------------------


async def campaigns_due(rt: Runtime) -> Said:
    from kopilka.services import campaigns

    queued = await campaigns.run_due(rt)  # due campaigns -> outbox events
    return f"{queued} messages queued" if queued else None


async def reports_due(rt: Runtime) -> Said:
    from kopilka.services import saved_reports

    queued = await saved_reports.run_due(rt)  # due report schedules -> e-mails
    return f"{queued} scheduled e-mails queued" if queued else None


def deliver(notifier: Any, *, worker_id: str, program_ids: list[int] | None) -> Periodic:
    from kopilka.notify import outbox

    async def once(rt: Runtime) -> Said:
        sent = await outbox.run_once(rt, notifier, worker_id=worker_id, program_ids=program_ids)
        if not (sent.claimed or sent.dispatched):
            return None
        return (
            f"{sent.dispatched} events, {sent.delivered} delivered, {sent.retried} to retry, "
            f"{sent.failed} failed, {sent.dead} dead"
        )

    return Periodic("outbox", None, once)


def fraud_scan(pins_every_s: float) -> Periodic:
    """The fraud rules over what is new, every round; the PIN-guessing rule at its own
    period (it reads hourly counters)."""
    from kopilka.services import fraud

    state = {"pins": float("-inf")}

    async def once(rt: Runtime) -> Said:
        now = asyncio.get_running_loop().time()
        pins = now - state["pins"] >= pins_every_s
        found = await fraud.scan(rt, pins=pins)
        if pins:
            state["pins"] = now
        return f"{found.created} new alerts" if found.created else None

    return Periodic("fraud", None, once)


async def release_holds(rt: Runtime) -> Said:
    from kopilka.services import coupons, giftcards, ledger_jobs

    released = await ledger_jobs.expire_holds(rt)
    released += await coupons.expire_coupon_holds(rt)
    released += await giftcards.expire_tender_holds(rt)
    return f"released {released} expired holds" if released else None


async def expire(rt: Runtime) -> Said:
    from kopilka.services import giftcards, ledger_jobs

    lots, pts = await ledger_jobs.expire_points(rt)
    cards, breakage = await giftcards.expire_cards(rt)
    said = []
    if lots:
        said.append(f"expired {lots} lots, {pts} points")
    if cards:
        said.append(f"expired {cards} gift cards, breakage {breakage}")
    return "; ".join(said) or None


async def programs_with_activity(rt: Runtime, activity: str) -> list[int]:
    from sqlalchemy import select

    from kopilka.store import tables as t

    async with rt.engine.connect() as conn:
        ids = (await conn.execute(select(t.programs.c.id))).scalars().all()
    return [pid for pid in ids if activity in (await rt.compiled(pid)).doc.activities]


def hourly(expiring_days: int | None) -> Callable[[Runtime], Awaitable[Said]]:
    """Referral rewards, stale reward orders, birthday points, expiring-points notices
    (when notifying), tiers and cumulative discounts, prize draws."""

    async def once(rt: Runtime) -> Said:
        from kopilka.notify import reminders
        from kopilka.services import activities, draws, levels, referrals, rewards

        await referrals.reward_pending_referrals(rt)
        await rewards.cancel_stale_orders(rt)
        for program_id in await programs_with_activity(rt, "birthday"):
            rules = activities.rules_for(await rt.compiled(program_id))
            await activities.do_birthday_points(rt, program_id=program_id, rules=rules)
        if expiring_days is not None:
            await reminders.announce_expiring_points(rt, days=expiring_days)
        changed = await levels.recompute_levels(rt)
        seeded, drawn = await draws.run_due(rt)
        said = []
        if changed:
            said.append(f"{changed} accounts changed tier or discount")
        if seeded or drawn:
            said.append(f"draws: {seeded} seeds committed, {drawn} drawn")
        return "; ".join(said) or None

    return once


async def refresh_rfm(rt: Runtime) -> Said:
    """Every program's RFM segments as of today (customers.rfm_segment)."""
    from kopilka.domain.rfm import SegmentConfigError
    from kopilka.services import rfm

    try:
        saved = await rfm.refresh_all(rt)
    except SegmentConfigError as exc:
        return f"segments not refreshed: {exc}"
    said = [
        f"program {pid}: {s.customers} customers in segments, {s.changed} changed"
        for pid, s in saved
        if s.changed
    ]
    return "; ".join(said) or None


async def refresh_summary(rt: Runtime) -> Said:
    """The analytics summary tables: the days touched since the watermark."""
    from kopilka.analytics import facts

    done = await facts.refresh(rt)
    return f"{done.days} days re-aggregated" if done.days else None


async def refresh_basket_rules(rt: Runtime) -> Said:
    """The basket rules of the cashier's suggestions: a program whose receipts give no
    rules keeps none."""
    from kopilka.services import audit, basket

    try:
        saved = await basket.refresh_all(rt, actor=audit.SYSTEM)
    except ServiceError as exc:
        return exc.detail
    return f"{sum(saved.values())} saved" if any(saved.values()) else None


def verify_nightly(hour: int, timezone: str | None, recipients: Sequence[str]) -> Periodic:
    """``ledger verify`` once a night at ``hour`` local time; a difference raises the
    alarms (services/ledger_watch.py).  Checked every minute: cheap when not due."""

    async def once(rt: Runtime) -> Said:
        from kopilka.services import ledger_watch

        done = await ledger_watch.nightly(rt, hour=hour, timezone=timezone, recipients=recipients)
        if done is None:
            return None
        if done.discrepancies:
            return f"{done.discrepancies} DIFFERENCES between balances and the ledger: alarm raised"
        return "the ledger verifies"

    return Periodic("ledger verify", 60.0 if hour >= 0 else 0.0, once)


def table(args: Any, *, notifier: Any, expiring_days: int | None, worker_id: str) -> list[Periodic]:
    """The worker's jobs in the order they run each round, with the periods from the
    command line (``kopilka worker --help``)."""
    jobs = [
        Periodic("campaigns", None, campaigns_due),
        Periodic("reports", None, reports_due),
    ]
    if notifier is not None:
        jobs.append(deliver(notifier, worker_id=worker_id, program_ids=args.notify_program))
    jobs += [
        fraud_scan(args.fraud_pins_every_s),
        Periodic("holds", None, release_holds),
        Periodic("expiry", args.expiry_every_s, expire),
        Periodic("hourly", args.levels_every_s, hourly(expiring_days)),
        Periodic("rfm", args.rfm_every_s, refresh_rfm),
        Periodic("summary tables", args.summary_every_s, refresh_summary),
        Periodic("basket rules", args.basket_every_s, refresh_basket_rules),
        verify_nightly(args.verify_hour, args.verify_tz, args.alert_email or ()),
    ]
    only = getattr(args, "only", None)
    if only:
        return select_jobs(jobs, only)
    return jobs


def job_key(name: str) -> str:
    """A job's name as ``--only`` takes it: ``summary tables`` -> ``summary-tables``."""
    return name.replace(" ", "-")


def select_jobs(jobs: Sequence[Periodic], only: Sequence[str]) -> list[Periodic]:
    """The jobs named by ``--only`` (comma-separated or repeated), in the table's order.

    Lets an operator split the work across nodes (delivery on two nodes, analytics on
    one) and lets a test run one job without the others."""
    wanted = {w.strip() for item in only for w in item.split(",") if w.strip()}
    unknown = sorted(wanted - set(JOB_KEYS))
    if unknown:
        raise ValueError(f"unknown job(s) {', '.join(unknown)}; known: {', '.join(JOB_KEYS)}")
    if "outbox" in wanted and not any(j.name == "outbox" for j in jobs):
        raise ValueError("--only outbox with --no-notify: this process delivers nothing")
    return [j for j in jobs if job_key(j.name) in wanted]


JOB_KEYS = (
    "campaigns",
    "reports",
    "outbox",
    "fraud",
    "holds",
    "expiry",
    "hourly",
    "rfm",
    "summary-tables",
    "basket-rules",
    "ledger-verify",
)
