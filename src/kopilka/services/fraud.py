"""Fraud alerts: the scan that runs the rules (domain/fraud.py) and the security officer's
queue (docs/fraud.md).

The scan runs in the worker, never on the till's path: each round it reads what is new
since the program's stored watermarks (confirmed receipts, refunds, manual adjustments
from the audit log, new cards and customers) with bounded queries, loads the little
history each rule needs, runs the rules and writes alerts; the scheduled part (gift-card
PIN failures, counted per hour by services/giftcards.py in ``rate_counters``) runs every
``pin_every_s``.

Idempotency: a watermark is the time of the last row seen; each round reads again from
``OVERLAP`` before it (a row whose transaction committed late is still seen), and the
rules' dedup keys and evidence keys make a second look at a row change nothing.  A
situation has at most one open alert (``open_key`` is unique); a finding already covered
by a closed alert's evidence is not raised again.  On PostgreSQL a program's scan holds a
transaction-level advisory lock: two workers never scan one program at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Select, and_, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain import fraud as df
from kopilka.domain.fraud import Finding, FraudSettings, ReceiptFact, RefundFact
from kopilka.domain.roles import Perm
from kopilka.services import audit, customer_admin, exports
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

fa, rc, rf = t.fraud_alerts, t.receipts, t.refunds
OVERLAP = timedelta(seconds=60)  # read again before the watermark: late commits
LATE = timedelta(minutes=15)  # receipts whose sale time is older than this at confirm ...
FIRST_LOOKBACK = timedelta(hours=24)  # ... the first scan of a program looks back this far
HISTORY_DAYS = 30  # refunds looked at for rule 3's count
CHUNK = 500
LOCK_BASE = 0x4B46_0000  # pg_advisory_xact_lock(LOCK_BASE + program_id)
TOPIC = "fraud.alert"


@dataclass
class ScanResult:
    created: int = 0
    updated: int = 0
    programs: int = 0

    def __iadd__(self, other: ScanResult) -> ScanResult:
        self.created += other.created
        self.updated += other.updated
        self.programs += other.programs
        return self


# --- settings -------------------------------------------------------------------------------


async def load_settings(rt: Runtime, program_id: int) -> FraudSettings:
    async with rt.engine.connect() as conn:
        return await _settings(conn, program_id)


async def _settings(conn: AsyncConnection, program_id: int) -> FraudSettings:
    raw = (
        await conn.execute(
            select(t.fraud_settings.c.settings).where(t.fraud_settings.c.program_id == program_id)
        )
    ).scalar_one_or_none()
    return df.DEFAULTS if raw is None else df.settings_from_dict(orjson.loads(raw))


def require_officer(actor: audit.Actor, program_id: int) -> None:
    """Acting on alerts and thresholds: the security officer and the owner (audit.read and
    cards.block)."""
    actor.require(Perm.AUDIT_READ)
    actor.require(Perm.CARDS_BLOCK)
    customer_admin.check_scope(actor, program_id)


def require_reader(actor: audit.Actor, program_id: int) -> None:
    actor.require(Perm.AUDIT_READ)
    customer_admin.check_scope(actor, program_id)


async def do_save_settings(
    rt: Runtime,
    actor: audit.Actor,
    program_id: int,
    values: dict[str, str],
    *,
    disabled: Iterable[str] | None = None,
) -> FraudSettings:
    """Change the thresholds (fields not given keep their values; ``disabled``: the rules
    to turn off, None: as they are); audited
    ``fraud.settings`` with before and after.  Bad input: ``validation_failed`` naming
    the field."""
    require_officer(actor, program_id)
    now = rt.now()
    async with rt.engine.begin() as conn:
        before = await _settings(conn, program_id)
        try:
            after = df.parse_settings(values, disabled=disabled, base=before)
        except df.Invalid as exc:
            raise ServiceError("validation_failed", exc.detail, field=exc.field) from None
        data = orjson.dumps(df.settings_to_dict(after)).decode()
        row = {"settings": data, "updated_at": now, "updated_by": actor.name[:200]}
        done = await conn.execute(
            update(t.fraud_settings).where(t.fraud_settings.c.program_id == program_id).values(row)
        )
        if done.rowcount == 0:
            await conn.execute(insert(t.fraud_settings), {"program_id": program_id, **row})
        await audit.record(
            conn,
            actor,
            "fraud.settings",
            "program",
            program_id,
            at=now,
            program_id=program_id,
            before=df.settings_to_dict(before),
            after=df.settings_to_dict(after),
        )
    return after


# --- reading facts ----------------------------------------------------------------------------


def _receipt_query(source: Any = None) -> Select[Any]:
    """The columns of a ``ReceiptFact`` (and the confirm time), from receipts with their
    card, or from ``source`` (a join that includes them)."""
    default = rc.outerjoin(t.cards, t.cards.c.id == rc.c.card_id)
    return select(
        rc.c.id,
        rc.c.pos_receipt_id,
        rc.c.occurred_at,
        rc.c.store_id,
        rc.c.terminal_id,
        rc.c.cashier_id,
        rc.c.account_id,
        rc.c.customer_id,
        rc.c.card_id,
        t.cards.c.number,
        rc.c.amount,
        rc.c.points_earned,
        rc.c.points_redeemed,
        rc.c.confirmed_at,
    ).select_from(default if source is None else source)


def _receipt(r: Any) -> ReceiptFact:
    # positional: a row's attribute lookup by name costs more than the rule itself
    return ReceiptFact(int(r[0]), *r[1:13])


def _chunks(items: Sequence[int]) -> Iterable[list[int]]:
    for i in range(0, len(items), CHUNK):
        yield list(items[i : i + CHUNK])


async def _new_receipts(
    conn: AsyncConnection, pid: int, since: datetime, now: datetime
) -> tuple[list[ReceiptFact], datetime | None]:
    """Receipts confirmed after ``since - OVERLAP`` (their sale within ``LATE`` before it:
    the index on (program_id, occurred_at) bounds the read) and the latest confirm time."""
    rows = (
        await conn.execute(
            _receipt_query()
            .where(
                rc.c.program_id == pid,
                rc.c.occurred_at >= since - OVERLAP - LATE,
                rc.c.state == "confirmed",
                rc.c.confirmed_at >= since - OVERLAP,
                rc.c.confirmed_at <= now,
            )
            .order_by(rc.c.id)
        )
    ).all()
    last = max((r.confirmed_at for r in rows), default=None)
    return [_receipt(r) for r in rows], last


async def _account_receipts(
    conn: AsyncConnection, pid: int, accounts: Sequence[int], start: datetime, end: datetime
) -> list[ReceiptFact]:
    out: list[ReceiptFact] = []
    for part in _chunks(sorted(set(accounts))):
        rows = await conn.execute(
            _receipt_query().where(
                rc.c.program_id == pid,
                rc.c.account_id.in_(part),
                rc.c.occurred_at >= start,
                rc.c.occurred_at <= end,
                rc.c.state == "confirmed",
            )
        )
        out += [_receipt(r) for r in rows]
    return out


async def _terminal_receipts(
    conn: AsyncConnection, pid: int, terminals: Sequence[int], start: datetime, end: datetime
) -> list[ReceiptFact]:
    rows = await conn.execute(
        _receipt_query().where(
            rc.c.program_id == pid,
            rc.c.occurred_at >= start,
            rc.c.occurred_at <= end,
            rc.c.terminal_id.in_(sorted(set(terminals))),
            rc.c.card_id.is_not(None),
            rc.c.state == "confirmed",
        )
    )
    return [_receipt(r) for r in rows]


async def _usual_rates(
    conn: AsyncConnection,
    pid: int,
    terminals: Sequence[int],
    before: datetime,
    s: FraudSettings,
) -> dict[int, float]:
    """Card receipts per ``burst_minutes`` window at each terminal over the 7 days before."""
    window = timedelta(minutes=s.burst_minutes)
    start = before - timedelta(days=7)
    rows = await conn.execute(
        select(rc.c.terminal_id, func.count())
        .where(
            rc.c.program_id == pid,
            rc.c.occurred_at >= start,
            rc.c.occurred_at < before - window,
            rc.c.terminal_id.in_(sorted(set(terminals))),
            rc.c.card_id.is_not(None),
            rc.c.state == "confirmed",
        )
        .group_by(rc.c.terminal_id)
    )
    windows = (before - window - start) / window
    counts = {int(tid): int(n) for tid, n in rows}
    return {tid: counts.get(tid, 0) / windows for tid in terminals}


async def _receipt_findings(
    conn: AsyncConnection, pid: int, s: FraudSettings, new: list[ReceiptFact]
) -> list[Finding]:
    """Rules 1, 2 and 5 over the new receipts and the history they need."""
    if not new:
        return []
    first, last = min(r.at for r in new), max(r.at for r in new)
    found: list[Finding] = []
    if s.on(df.Rule.CASHIER_CARD):
        swiped = [r.account_id for r in new if r.account_id is not None and r.cashier_id]
        back = timedelta(hours=s.cashier_card_hours)
        history = await _account_receipts(conn, pid, swiped, first - back, last)
        found += df.cashier_card(new, history, s)
    if s.on(df.Rule.EARN_THEN_BURN):
        burns = [r for r in new if r.account_id is not None and r.points_redeemed > 0]
        if burns:
            accounts = [r.account_id for r in burns if r.account_id is not None]
            back = timedelta(days=s.earn_burn_days)
            start = min(r.at for r in burns) - back
            history = await _account_receipts(conn, pid, accounts, start, last)
            found += df.earn_then_burn(burns, history, s)
    if s.on(df.Rule.TERMINAL_BURST):
        carded = [r for r in new if r.card_id is not None]
        if carded:
            terms = [r.terminal_id for r in carded]
            window = timedelta(minutes=s.burst_minutes)
            near = await _terminal_receipts(conn, pid, terms, first - window, last)
            usual = None
            if s.burst_factor > 0:
                busy = {r.terminal_id for r in near}
                usual = await _usual_rates(conn, pid, sorted(busy), first, s) if busy else {}
            found += df.terminal_burst(carded, near, s, usual_per_window=usual)
    return found


async def _refund_facts(conn: AsyncConnection, where: Any) -> list[RefundFact]:
    source = rf.join(rc, rc.c.id == rf.c.receipt_pk).outerjoin(
        t.cards, t.cards.c.id == rc.c.card_id
    )
    q = _receipt_query(source).add_columns(
        rf.c.id.label("refund_id"),
        rf.c.created_at.label("refunded_at"),
        rf.c.amount.label("refund_amount"),
        rf.c.points_returned,
    )
    rows = await conn.execute(q.where(where))
    return [
        RefundFact(
            id=int(r.refund_id),
            at=r.refunded_at,
            receipt=_receipt(r),
            amount=r.refund_amount,
            points_returned=r.points_returned,
        )
        for r in rows
    ]


async def _refund_findings(
    conn: AsyncConnection, pid: int, s: FraudSettings, since: datetime, now: datetime
) -> tuple[list[Finding], datetime | None]:
    new = await _refund_facts(
        conn,
        and_(rf.c.program_id == pid, rf.c.created_at >= since - OVERLAP, rf.c.created_at <= now),
    )
    last = max((f.at for f in new), default=None)
    if not new or not s.on(df.Rule.REFUND_AFTER_BURN):
        return [], last
    accounts = sorted({f.receipt.account_id for f in new if f.receipt.account_id is not None})
    start = min(f.at for f in new) - timedelta(days=HISTORY_DAYS)
    history: list[RefundFact] = []
    for part in _chunks(accounts):
        history += await _refund_facts(
            conn,
            and_(
                rc.c.program_id == pid,
                rc.c.account_id.in_(part),
                rc.c.occurred_at >= start - timedelta(days=s.refund_days),
                rf.c.created_at >= start,
                rf.c.created_at <= now,
            ),
        )
    return df.refund_after_burn(new, history, s), last


async def _adjust_findings(
    conn: AsyncConnection, pid: int, s: FraudSettings, since: datetime, now: datetime
) -> tuple[list[Finding], datetime | None]:
    a = t.audit_log
    rows = (
        await conn.execute(
            select(a).where(
                a.c.at >= since - OVERLAP,
                a.c.at <= now,
                a.c.action == "points.adjust",
                a.c.program_id == pid,
            )
        )
    ).all()
    owners: dict[int, int] = {}
    ids = sorted({int(r.object_id) for r in rows if r.object_id.isdigit()})
    for part in _chunks(ids):
        got = await conn.execute(
            select(t.accounts.c.id, t.accounts.c.customer_id).where(t.accounts.c.id.in_(part))
        )
        owners.update({int(i): int(c) for i, c in got})
    last = max((r.at for r in rows), default=None)
    if not s.on(df.Rule.BIG_ADJUSTMENT):
        return [], last
    facts = []
    for r in rows:
        before = orjson.loads(r.before or "{}")
        try:
            amount = Decimal(str(before["amount"]))
        except (KeyError, ArithmeticError):
            continue
        if not r.object_id.isdigit():
            continue
        facts.append(
            df.AdjustFact(
                audit_id=int(r.id),
                at=r.at,
                actor_kind=r.actor_kind,
                actor_id=r.actor_id,
                actor_name=r.actor_name,
                account_id=int(r.object_id),
                customer_id=owners.get(int(r.object_id)),
                amount=amount,
                reason=r.reason or "",
            )
        )
    return df.big_adjustment(facts, s), last


async def _card_findings(
    conn: AsyncConnection, pid: int, s: FraudSettings, since: datetime, now: datetime
) -> tuple[list[Finding], datetime | None]:
    cd, cu = t.cards, t.customers
    rows = (
        await conn.execute(
            select(cd.c.customer_id, cd.c.created_at).where(
                cd.c.program_id == pid, cd.c.created_at >= since - OVERLAP, cd.c.created_at <= now
            )
        )
    ).all()
    last = max((r.created_at for r in rows), default=None)
    if not rows or not s.on(df.Rule.PHONE_CARDS):
        return [], last
    owners = sorted({int(r.customer_id) for r in rows})
    cards: dict[int, list[df.CardFact]] = defaultdict(list)
    phones: dict[int, str | None] = {}
    for part in _chunks(owners):
        got = await conn.execute(
            select(cd.c.id, cd.c.number, cd.c.status, cd.c.created_at, cd.c.customer_id, cu.c.phone)
            .select_from(cd.join(cu, cu.c.id == cd.c.customer_id))
            .where(cd.c.customer_id.in_(part))
        )
        for r in got:
            cards[int(r.customer_id)].append(df.CardFact(r.id, r.number, r.status, r.created_at))
            phones[int(r.customer_id)] = r.phone
    facts = [df.PhoneCards(cid, phones.get(cid), tuple(cards[cid])) for cid in owners]
    return df.phone_cards(facts, s), last


async def _device_findings(
    conn: AsyncConnection, pid: int, s: FraudSettings, since: datetime, now: datetime
) -> tuple[list[Finding], datetime | None]:
    cu, cd = t.customers, t.cards
    rows = (
        await conn.execute(
            select(cu.c.device_id, cu.c.registered_at).where(
                cu.c.program_id == pid,
                cu.c.registered_at >= since - OVERLAP,
                cu.c.registered_at <= now,
            )
        )
    ).all()
    last = max((r.registered_at for r in rows), default=None)
    devices = sorted({r.device_id for r in rows if r.device_id})
    if not devices or not s.on(df.Rule.PHONE_CARDS):
        return [], last
    got = await conn.execute(
        select(cu.c.id, cu.c.device_id, cu.c.registered_at, func.min(cd.c.number).label("card"))
        .select_from(cu.outerjoin(cd, cd.c.customer_id == cu.c.id))
        .where(
            cu.c.program_id == pid,
            cu.c.registered_at >= now - timedelta(days=s.device_days),
            cu.c.device_id.in_(devices[:CHUNK]),
        )
        .group_by(cu.c.id, cu.c.device_id, cu.c.registered_at)
    )
    by_device: dict[str, list[df.DeviceCustomer]] = defaultdict(list)
    for r in got:
        by_device[r.device_id].append(df.DeviceCustomer(int(r.id), r.registered_at, None, r.card))
    return df.device_accounts(by_device, s, now=now), last


async def _pin_findings(
    conn: AsyncConnection, pid: int, s: FraudSettings, now: datetime
) -> list[Finding]:
    """Wrong PINs counted by services/giftcards.py in ``rate_counters`` (the hour's
    window and the one before): ``giftcard:pin:<program>:<number>`` per card,
    ``giftcard:terminal:<terminal>`` per terminal."""
    if not s.on(df.Rule.PIN_GUESSING):
        return []
    r = t.rate_counters
    since = now - timedelta(hours=2)
    card_prefix = f"giftcard:pin:{pid}:"
    rows = (
        await conn.execute(
            select(r.c.key, r.c.window_start, r.c.count.label("failures")).where(
                r.c.window_start >= since,
                r.c.count > 0,
                (r.c.key.startswith(card_prefix)) | (r.c.key.startswith("giftcard:terminal:")),
            )
        )
    ).all()
    terms = {
        int(x.id): x.store_id
        for x in await conn.execute(
            select(t.terminals.c.id, t.terminals.c.store_id).where(t.terminals.c.program_id == pid)
        )
    }
    counts: list[df.PinFailures] = []
    for row in rows:
        if row.key.startswith(card_prefix):
            number = row.key[len(card_prefix) :]
            counts.append(df.PinFailures("card", number, row.window_start, int(row.failures)))
            continue
        tid = row.key.rsplit(":", 1)[-1]
        if tid.isdigit() and int(tid) in terms:
            counts.append(
                df.PinFailures(
                    "terminal", tid, row.window_start, int(row.failures), store_id=terms[int(tid)]
                )
            )
    return df.pin_guessing(counts, s)


# --- watermarks and alerts ------------------------------------------------------------------


async def _watermarks(conn: AsyncConnection, pid: int) -> dict[str, datetime]:
    w = t.fraud_watermarks
    rows = await conn.execute(select(w.c.source, w.c.seen_until).where(w.c.program_id == pid))
    return {r.source: r.seen_until for r in rows}


async def _advance(
    conn: AsyncConnection, pid: int, have: dict[str, datetime], source: str, to: datetime | None
) -> None:
    if to is None or (source in have and have[source] >= to):
        return
    w = t.fraud_watermarks
    if source in have:
        await conn.execute(
            update(w).where(w.c.program_id == pid, w.c.source == source).values(seen_until=to)
        )
    else:
        await conn.execute(insert(w), {"program_id": pid, "source": source, "seen_until": to})


def _evidence_json(items: Sequence[dict[str, Any]]) -> str:
    return orjson.dumps(list(items)).decode()


async def save_finding(conn: AsyncConnection, pid: int, f: Finding, now: datetime) -> str:
    """Write one finding from outside the scan: an offline burn token used again
    (services/offline.py), the nightly ledger verify (services/ledger_watch.py).  As
    ``_save_finding``."""
    return await _save_finding(conn, pid, f, now)


async def _save_finding(conn: AsyncConnection, pid: int, f: Finding, now: datetime) -> str:
    """Write one finding: ``created``, ``updated`` (new evidence on the open alert) or
    ``same`` (nothing new)."""
    open_row = (
        await conn.execute(
            select(fa.c.id, fa.c.evidence, fa.c.severity).where(
                fa.c.program_id == pid, fa.c.open_key == f.dedup_key
            )
        )
    ).first()
    if open_row is not None:
        merged, changed = df.merge_evidence(orjson.loads(open_row.evidence), f.evidence)
        if not changed:
            return "same"
        await conn.execute(
            update(fa)
            .where(fa.c.id == open_row.id)
            .values(
                evidence=_evidence_json(merged),
                severity=df.severity_max(open_row.severity, f.severity),
                summary=f.summary[:300],
                updated_at=now,
            )
        )
        return "updated"
    closed = await conn.execute(
        select(fa.c.evidence).where(
            fa.c.program_id == pid, fa.c.dedup_key == f.dedup_key, fa.c.open_key.is_(None)
        )
    )
    if any(df.is_covered(orjson.loads(c.evidence), f.evidence) for c in closed):
        return "same"
    values = {
        "program_id": pid,
        "rule": f.rule.value,
        "severity": f.severity,
        "subject_type": f.subject_type,
        "subject_id": f.subject_id[:64],
        "subject_label": f.subject_label[:200],
        "store_id": f.store_id,
        "customer_id": f.customer_id,
        "card_number": f.card_number,
        "summary": f.summary[:300],
        "evidence": _evidence_json(df.merge_evidence([], f.evidence)[0]),
        "dedup_key": f.dedup_key[:200],
        "open_key": f.dedup_key[:200],
        "state": "open",
        "created_at": now,
        "updated_at": now,
    }
    alert_id = (await conn.execute(insert(fa).returning(fa.c.id), values)).scalar_one()
    # no names, card numbers or amounts: every endpoint subscribed to the topic (or to
    # "*") gets it; the officer's tools read the alert itself through the admin API
    payload = {
        "alert_id": alert_id,
        "rule": f.rule.value,
        "severity": f.severity,
        "subject_type": f.subject_type,
        "store_id": f.store_id,
    }
    await conn.execute(
        insert(t.outbox),
        {
            "program_id": pid,
            "topic": TOPIC,
            "payload": orjson.dumps(payload).decode(),
            "created_at": now,
        },
    )
    return "created"


# --- the scan ---------------------------------------------------------------------------------


async def scan(
    rt: Runtime,
    *,
    program_id: int | None = None,
    now: datetime | None = None,
    pins: bool = True,
) -> ScanResult:
    """Run the rules for one program or every program; ``pins``: also the scheduled
    gift-card PIN rule.  Safe to run again at any time (nothing is raised twice)."""
    now = now or rt.now()
    async with rt.engine.connect() as conn:
        q = select(t.programs.c.id).order_by(t.programs.c.id)
        if program_id is not None:
            q = q.where(t.programs.c.id == program_id)
        pids = [int(x) for x in (await conn.execute(q)).scalars()]
    total = ScanResult()
    for pid in pids:
        total += await scan_program(rt, pid, now=now, pins=pins)
    return total


async def scan_program(rt: Runtime, pid: int, *, now: datetime, pins: bool) -> ScanResult:
    """One program's round, in one transaction: read, decide, write alerts and advance
    the watermarks together (a failed round leaves them where they were)."""
    out = ScanResult(programs=1)
    async with rt.engine.begin() as conn:
        if not rt.sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_BASE + pid})
        s = await _settings(conn, pid)
        marks = await _watermarks(conn, pid)

        def since(source: str) -> datetime:
            return marks.get(source, now - FIRST_LOOKBACK)

        new, last_receipt = await _new_receipts(conn, pid, since("receipts"), now)
        found = await _receipt_findings(conn, pid, s, new)
        ends: dict[str, datetime | None] = {"receipts": last_receipt}
        for source, step in (
            ("refunds", _refund_findings),
            ("adjustments", _adjust_findings),
            ("cards", _card_findings),
            ("customers", _device_findings),
        ):
            got, ends[source] = await step(conn, pid, s, since(source), now)
            found += got
        if pins:
            found += await _pin_findings(conn, pid, s, now)
        for f in found:
            done = await _save_finding(conn, pid, f, now)
            out.created += done == "created"
            out.updated += done == "updated"
        for source, end in ends.items():
            await _advance(conn, pid, marks, source, end)
    return out


# --- the queue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    id: int
    rule: str
    severity: str
    subject_type: str
    subject_id: str
    subject_label: str
    store_id: int | None
    store_name: str | None
    customer_id: int | None
    card_number: str | None
    summary: str
    state: str
    assignee_name: str | None
    created_at: datetime
    updated_at: datetime
    evidence_count: int


@dataclass(frozen=True)
class Alert:
    row: AlertRow
    evidence: list[dict[str, Any]]
    assignee_id: int | None
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    card_status: str | None  # the card the officer can block: its status now


@dataclass(frozen=True)
class AlertFilter:
    rule: str = ""
    state: str = ""  # "" every state; "active": open or assigned
    store_id: int | None = None


def parse_filter(rule: str = "", state: str = "", store: str = "") -> AlertFilter:
    rule, state, store = rule.strip(), state.strip(), store.strip()
    if rule and rule not in df.RULES:
        raise ServiceError("validation_failed", f"no rule {rule!r}", field="rule")
    if state and state not in (*df.STATES, "active"):
        raise ServiceError("validation_failed", f"no state {state!r}", field="state")
    if store and not store.isdigit():
        raise ServiceError("validation_failed", "a store id", field="store")
    return AlertFilter(rule, state, int(store) if store else None)


def _where(pid: int, flt: AlertFilter) -> list[Any]:
    cond: list[Any] = [fa.c.program_id == pid]
    if flt.rule:
        cond.append(fa.c.rule == flt.rule)
    if flt.state == "active":
        cond.append(fa.c.state.in_(df.OPEN_STATES))
    elif flt.state:
        cond.append(fa.c.state == flt.state)
    if flt.store_id is not None:
        cond.append(fa.c.store_id == flt.store_id)
    return cond


def _alert_query() -> Select[Any]:
    return select(fa, t.stores.c.name.label("store_name")).select_from(
        fa.outerjoin(t.stores, t.stores.c.id == fa.c.store_id)
    )


def _row(r: Any) -> AlertRow:
    return AlertRow(
        id=int(r.id),
        rule=r.rule,
        severity=r.severity,
        subject_type=r.subject_type,
        subject_id=r.subject_id,
        subject_label=r.subject_label,
        store_id=r.store_id,
        store_name=r.store_name,
        customer_id=r.customer_id,
        card_number=r.card_number,
        summary=r.summary,
        state=r.state,
        assignee_name=r.assignee_name,
        created_at=r.created_at,
        updated_at=r.updated_at,
        evidence_count=len(orjson.loads(r.evidence)),
    )


async def list_alerts(
    rt: Runtime,
    actor: audit.Actor,
    program_id: int,
    flt: AlertFilter = AlertFilter(),
    *,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[AlertRow], int]:
    """A page of alerts, newest first, and how many match."""
    require_reader(actor, program_id)
    cond = _where(program_id, flt)
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(fa).where(*cond))).scalar()
        rows = await conn.execute(
            _alert_query().where(*cond).order_by(fa.c.id.desc()).offset(offset).limit(limit)
        )
        return [_row(r) for r in rows], int(total or 0)


async def stores(rt: Runtime, program_id: int) -> list[tuple[int, str]]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(t.stores.c.id, t.stores.c.name)
            .where(t.stores.c.program_id == program_id)
            .order_by(t.stores.c.name)
        )
        return [(int(i), n) for i, n in rows]


async def get_alert(rt: Runtime, actor: audit.Actor, program_id: int, alert_id: int) -> Alert:
    require_reader(actor, program_id)
    async with rt.engine.connect() as conn:
        r = (
            await conn.execute(
                _alert_query().where(fa.c.id == alert_id, fa.c.program_id == program_id)
            )
        ).first()
        if r is None:
            raise ServiceError("not_found", f"no alert {alert_id}", field="alert_id")
        status = None
        if r.card_number:
            status = (
                await conn.execute(
                    select(t.cards.c.status).where(
                        t.cards.c.program_id == program_id, t.cards.c.number == r.card_number
                    )
                )
            ).scalar_one_or_none()
    return Alert(
        _row(r),
        orjson.loads(r.evidence),
        r.assignee_id,
        r.resolution,
        r.resolved_by,
        r.resolved_at,
        status,
    )


async def _transition(
    rt: Runtime,
    actor: audit.Actor,
    program_id: int,
    alert_id: int,
    *,
    action: str,
    values: dict[str, Any],
    allowed_from: tuple[str, ...],
    reason: str | None = None,
) -> None:
    """Move an alert to a new state (guarded by its current one) with an audit row."""
    require_officer(actor, program_id)
    now = rt.now()
    async with rt.engine.begin() as conn:
        r = (
            await conn.execute(
                select(fa.c.state, fa.c.assignee_name).where(
                    fa.c.id == alert_id, fa.c.program_id == program_id
                )
            )
        ).first()
        if r is None:
            raise ServiceError("not_found", f"no alert {alert_id}", field="alert_id")
        if r.state not in allowed_from:
            raise ServiceError("conflict", f"the alert is {r.state}", field="state")
        done = await conn.execute(
            update(fa)
            .where(fa.c.id == alert_id, fa.c.state == r.state)
            .values(**values, updated_at=now)
        )
        if done.rowcount != 1:
            raise ServiceError("conflict", "the alert changed meanwhile; reload", field="state")
        await audit.record(
            conn,
            actor,
            action,
            "fraud_alert",
            alert_id,
            at=now,
            program_id=program_id,
            reason=reason,
            before={"state": r.state, "assignee": r.assignee_name},
            after={"state": values.get("state", r.state), "assignee": values.get("assignee_name")},
        )


async def do_assign(rt: Runtime, actor: audit.Actor, program_id: int, alert_id: int) -> None:
    """Take the alert (assign it to the acting person)."""
    await _transition(
        rt,
        actor,
        program_id,
        alert_id,
        action="fraud.assign",
        values={"state": "assigned", "assignee_id": actor.id, "assignee_name": actor.name[:200]},
        allowed_from=df.OPEN_STATES,
    )


async def do_close(
    rt: Runtime,
    actor: audit.Actor,
    program_id: int,
    alert_id: int,
    *,
    state: str,
    note: str | None,
) -> None:
    """Resolve (it was fraud, dealt with) or dismiss (a false alarm), with a note."""
    if state not in ("resolved", "dismissed"):
        raise ServiceError("validation_failed", "resolved or dismissed", field="state")
    why = audit.require_reason(note, field="note")
    await _transition(
        rt,
        actor,
        program_id,
        alert_id,
        action="fraud.resolve" if state == "resolved" else "fraud.dismiss",
        values={
            "state": state,
            "open_key": None,
            "resolution": why,
            "resolved_by": actor.name[:200],
            "resolved_at": rt.now(),
        },
        allowed_from=df.OPEN_STATES,
        reason=why,
    )


async def do_block_card(
    rt: Runtime, actor: audit.Actor, program_id: int, alert_id: int, *, reason: str | None
) -> str:
    """Block the alert's card through the card service (its own audit row ``card.block``),
    and note it on the alert's audit trail (``fraud.block_card``).  Returns the number."""
    require_officer(actor, program_id)
    alert = await get_alert(rt, actor, program_id, alert_id)
    number = alert.row.card_number
    if not number:
        raise ServiceError("conflict", "this alert names no card", field="card")
    why = audit.require_reason(reason)
    await customer_admin.block_card(
        rt, actor, program_id, number, reason=f"fraud alert {alert_id}: {why}"
    )
    async with rt.engine.begin() as conn:
        await audit.record(
            conn,
            actor,
            "fraud.block_card",
            "fraud_alert",
            alert_id,
            at=rt.now(),
            program_id=program_id,
            reason=why,
            after={"card": number, "status": "blocked"},
        )
    return number


# --- export --------------------------------------------------------------------------------------

HEADER = (
    "id",
    "created_at",
    "rule",
    "severity",
    "state",
    "subject_type",
    "subject",
    "store",
    "card",
    "summary",
    "evidence_items",
    "assignee",
    "updated_at",
)


def alerts_table(
    rt: Runtime, actor: audit.Actor, program_id: int, flt: AlertFilter = AlertFilter()
) -> exports.Table:
    """The alerts matching ``flt`` for a CSV/XLSX export, read in chunks (newest first)."""
    require_reader(actor, program_id)
    cond = _where(program_id, flt)

    async def fetch(after: int | None, size: int) -> list[Any]:
        q = _alert_query().where(*cond)
        if after is not None:
            q = q.where(fa.c.id < after)
        async with rt.engine.connect() as conn:
            rows = (await conn.execute(q.order_by(fa.c.id.desc()).limit(size))).all()
        return [
            (
                r.id,
                r.created_at,
                r.rule,
                r.severity,
                r.state,
                r.subject_type,
                r.subject_label,
                r.store_name or "",
                r.card_number or "",
                r.summary,
                len(orjson.loads(r.evidence)),
                r.assignee_name or "",
                r.updated_at,
            )
            for r in rows
        ]

    return exports.Table("fraud alerts", HEADER, exports.chunked(fetch, key=lambda r: r[0]))
