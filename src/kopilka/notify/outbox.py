"""Delivering the outbox: events become deliveries, deliveries leave through channels.

Every side effect of a business change is an ``outbox`` row written in the change's own
transaction (the confirm, the levels review, a draw, a registration...).  The worker then:

1. **dispatches** pending events: in one transaction it locks a batch (PostgreSQL
   ``FOR UPDATE SKIP LOCKED``: several workers take disjoint batches), renders each
   event's customer message per channel where consent allows (``consent``), adds one
   row per partner webhook, inserts them as ``deliveries`` with a unique
   ``delivery_key`` (``ON CONFLICT DO NOTHING``: dispatching twice makes nothing twice)
   and marks the events ``dispatched``;
2. **delivers** due deliveries: it *claims* a batch (state ``sending``, a lease
   ``locked_by``/``locked_until``, ``attempts + 1``) in a short transaction, sends them
   outside any transaction, then marks each ``delivered``, back to ``pending`` with the
   next attempt after an exponential backoff with jitter, ``failed`` (the provider
   refused it for good) or ``dead`` (``max_attempts`` used up).

Guarantees:

- a delivery is sent by one worker at a time: the claim is an atomic update of rows no
  other worker holds (SKIP LOCKED on PostgreSQL; SQLite runs a single worker);
- a worker that dies between sending and marking leaves the row ``sending``; when its
  lease runs out another worker sends it again **with the same key**, which providers
  that support idempotency keys (the JSON SMS gateway, webhooks, e-mail's Message-ID)
  use to drop the duplicate (at-least-once delivery, exactly-once effect where the
  receiver deduplicates);
- a mark only applies while the worker still holds the lease (``locked_by``);
- a channel that is not configured keeps its deliveries pending: nothing is dropped.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka import crash
from kopilka.domain.program import DEFAULT_PROFILE, ProgramProfile, profile_from_json
from kopilka.notify import consent, messages, templates
from kopilka.notify.backoff import retry_delay
from kopilka.notify.channels import Attachment, Channel, Outgoing, Reject, Retry
from kopilka.notify.config import DeliveryPolicy
from kopilka.notify.states import STATES
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

o, d = t.outbox, t.deliveries
REDACTED = '{"redacted": true}'


@dataclass
class Notifier:
    """What the worker delivers with: the configured channels and the policy."""

    channels: dict[str, Channel]
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    rng: random.Random = field(default_factory=random.Random)


@dataclass
class Stats:
    dispatched: int = 0
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    dead: int = 0

    def __iadd__(self, other: Stats) -> Stats:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        return self


# --- 1. dispatch: events -> deliveries -----------------------------------------------------


def delivery_key(outbox_id: int, channel: str, endpoint_id: int | None = None) -> str:
    """Unique per message: the outbox row, the channel and (webhooks) the endpoint."""
    return f"kp-{outbox_id}-{channel}" + ("" if endpoint_id is None else f"-{endpoint_id}")


async def _contacts(conn: AsyncConnection, events: Sequence[Any]) -> dict[int, consent.Contact]:
    """The customers the events are about (by ``customer_id`` or ``account_id``)."""
    ids: set[int] = set()
    accounts: set[int] = set()
    for ev in events:
        p = ev.data
        if isinstance(p.get("customer_id"), int) and p["customer_id"] > 0:
            ids.add(p["customer_id"])
        elif isinstance(p.get("account_id"), int):
            accounts.add(p["account_id"])
    if accounts:
        rows = await conn.execute(
            select(t.accounts.c.id, t.accounts.c.customer_id).where(t.accounts.c.id.in_(accounts))
        )
        by_account = {a: c for a, c in rows}
        for ev in events:
            if not ev.data.get("customer_id") and ev.data.get("account_id") in by_account:
                ev.data["customer_id"] = by_account[ev.data["account_id"]]
                ids.add(ev.data["customer_id"])
    if not ids:
        return {}
    c = t.customers
    rows = await conn.execute(
        select(
            c.c.id,
            c.c.first_name,
            c.c.phone,
            c.c.email,
            c.c.consent_sms,
            c.c.consent_email,
            c.c.status,
        ).where(c.c.id.in_(ids))
    )
    return {
        r.id: consent.Contact(
            r.id,
            r.first_name,
            r.phone,
            r.email,
            bool(r.consent_sms),
            bool(r.consent_email),
            r.status,
        )
        for r in rows
    }


async def _overrides(
    conn: AsyncConnection, program_ids: Iterable[int]
) -> dict[tuple[int, str, str, str], templates.Template]:
    mt = t.message_templates
    rows = await conn.execute(select(mt).where(mt.c.program_id.in_(set(program_ids))))
    return {
        (r.program_id, r.name, r.channel, r.locale): templates.Template(r.body, r.subject)
        for r in rows
    }


async def _endpoints(conn: AsyncConnection, program_ids: Iterable[int]) -> dict[int, list[Any]]:
    we = t.webhook_endpoints
    rows = await conn.execute(
        select(we.c.id, we.c.program_id, we.c.partner_id, we.c.url, we.c.topics).where(
            we.c.program_id.in_(set(program_ids)), we.c.disabled_at.is_(None)
        )
    )
    out: dict[int, list[Any]] = {}
    for r in rows:
        out.setdefault(r.program_id, []).append(r)
    return out


async def _event_partners(conn: AsyncConnection, events: Sequence[_Event]) -> dict[int, set[int]]:
    """The partners each event concerns (issue 9): a partner's webhook endpoint receives
    only these.  A receipt: the partner of its store; a fraud alert: its store's; an
    event funded by a partner: that partner; a customer's event that happened at no store:
    the partner of the customer's home store ("its customers").  An event of none:
    program-wide endpoints only.  At most three reads per batch, whatever its size."""
    receipts = {
        ev.data["receipt_pk"] for ev in events if isinstance(ev.data.get("receipt_pk"), int)
    }
    stores = {ev.data["store_id"] for ev in events if isinstance(ev.data.get("store_id"), int)}
    customers = {
        ev.data["customer_id"] for ev in events if isinstance(ev.data.get("customer_id"), int)
    }
    by_receipt: dict[int, int] = {}
    by_store: dict[int, int] = {}
    by_customer: dict[int, int] = {}
    if receipts:
        rows = await conn.execute(
            select(t.receipts.c.id, t.receipts.c.partner_id).where(t.receipts.c.id.in_(receipts))
        )
        by_receipt = {r.id: r.partner_id for r in rows}
    if stores:
        rows = await conn.execute(
            select(t.stores.c.id, t.stores.c.partner_id).where(t.stores.c.id.in_(stores))
        )
        by_store = {r.id: r.partner_id for r in rows}
    if customers:
        c, st = t.customers, t.stores
        rows = await conn.execute(
            select(c.c.id, st.c.partner_id)
            .join(st, st.c.id == c.c.home_store_id)
            .where(c.c.id.in_(customers))
        )
        by_customer = {r.id: r.partner_id for r in rows}
    out: dict[int, set[int]] = {}
    for ev in events:
        d = ev.data
        # where it happened decides; the customer's home partner only for an event that
        # happened nowhere (a tier, a birthday, points expiring): a receipt at partner B's
        # store is B's business even for a customer of A
        found = {by_receipt.get(d.get("receipt_pk")), by_store.get(d.get("store_id"))}  # type: ignore[arg-type]
        found.discard(None)
        if not found:
            found = {by_customer.get(d.get("customer_id"))}  # type: ignore[arg-type]
        if isinstance(d.get("partner_id"), int):
            found.add(d["partner_id"])
        out[ev.id] = {p for p in found if p is not None}
    return out


def _subscribed(topics: str, topic: str) -> bool:
    wanted = {x.strip() for x in topics.split(",") if x.strip()}
    return "*" in wanted or topic in wanted or f"{topic.split('.')[0]}.*" in wanted


@dataclass
class _Event:
    id: int
    program_id: int
    topic: str
    created_at: datetime
    data: dict[str, Any]


def _rows_for(
    ev: _Event,
    *,
    program_name: str,
    contacts: dict[int, consent.Contact],
    overrides: dict[tuple[int, str, str, str], templates.Template],
    endpoints: list[Any],
    locale: str,
    now: datetime,
    profile: ProgramProfile = DEFAULT_PROFILE,
    partners: set[int] | None = None,
) -> list[dict[str, Any]]:
    """The delivery rows of one event (raises ``TemplateFailed`` on a broken template).
    The program's profile gives the language (else ``locale``), the points' name and
    the SMS sender name; ``partners``: those the event concerns (a partner's endpoint
    gets only theirs)."""
    locale = profile.language or locale
    base = {
        "program_id": ev.program_id,
        "outbox_id": ev.id,
        "topic": ev.topic,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    rows = _customer_rows(ev, base, program_name, contacts, overrides, locale, profile)
    if ev.topic not in messages.NO_WEBHOOK_TOPICS:
        rows += _webhook_rows(ev, base, endpoints, partners or set())
    return rows


def _customer_rows(
    ev: _Event,
    base: dict[str, Any],
    program_name: str,
    contacts: dict[int, consent.Contact],
    overrides: dict[tuple[int, str, str, str], templates.Template],
    locale: str,
    profile: ProgramProfile = DEFAULT_PROFILE,
) -> list[dict[str, Any]]:
    """The customer's message on each channel consent allows (none: nothing to say)."""
    rows: list[dict[str, Any]] = []
    msg = messages.plan(ev.topic, ev.data)
    if msg is not None:
        cid = ev.data.get("customer_id")
        contact = contacts.get(cid) if isinstance(cid, int) else None
        if msg.phone is not None:  # the login code: to the number that asked for it
            contact = consent.Contact(cid or 0, "", msg.phone, None, False, False, "active")
        if msg.email is not None:  # a scheduled report: to the staff addresses it names
            contact = consent.Contact(0, "", None, msg.email, False, False, "active")
        for channel in templates.CHANNELS:
            if msg.channel is not None and channel != msg.channel:
                continue
            to = consent.recipient(msg.name, channel, contact)
            if to is None:
                continue
            if msg.body is not None:  # a campaign's own text
                tpl: templates.Template | None = templates.Template(msg.body, msg.subject)
            else:
                tpl = overrides.get((ev.program_id, msg.name, channel, locale)) or (
                    templates.default(msg.name, channel, locale)
                )
            if tpl is None:
                continue
            context = {
                **msg.context,
                "program": program_name,
                "name": contact.first_name if contact else "",
                templates.POINTS_FORMS: profile.points_forms(locale),
            }
            out = templates.render(tpl, context, locale=locale, name=msg.name)
            rows.append(
                base
                | {
                    "channel": channel,
                    "recipient": to,
                    "customer_id": (contact.customer_id or None) if contact else None,
                    "endpoint_id": None,
                    "subject": out.subject,
                    "body": out.body,
                    "delivery_key": delivery_key(ev.id, channel),
                    "sender": profile.sms_sender if channel == "sms" else None,
                }
            )
    return rows


def _webhook_rows(
    ev: _Event, base: dict[str, Any], endpoints: list[Any], partners: set[int]
) -> list[dict[str, Any]]:
    """One row per endpoint subscribed to the event's topic; an endpoint owned by a partner
    only for an event of that partner (``_event_partners``)."""
    rows: list[dict[str, Any]] = []
    for ep in endpoints:
        if not _subscribed(ep.topics, ev.topic):
            continue
        if ep.partner_id is not None and ep.partner_id not in partners:
            continue
        key = delivery_key(ev.id, "webhook", ep.id)
        body = orjson.dumps(
            {
                "id": key,
                "topic": ev.topic,
                "program_id": ev.program_id,
                "occurred_at": ev.created_at.isoformat(),
                "data": ev.data,
            }
        ).decode()
        rows.append(
            base
            | {
                "channel": "webhook",
                "recipient": ep.url,
                "customer_id": None,
                "endpoint_id": ep.id,
                "subject": None,
                "body": body,
                "delivery_key": key,
                "sender": None,
            }
        )
    return rows


def _insert_ignoring_duplicates(conn: AsyncConnection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(d).on_conflict_do_nothing(index_elements=["delivery_key"])


async def dispatch(
    rt: Runtime,
    notifier: Notifier,
    *,
    program_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> int:
    """Turn one batch of pending outbox events into deliveries; returns events handled.
    Locks the batch's outbox rows (``SKIP LOCKED``) for the transaction."""
    now = now or rt.now()
    policy = notifier.policy
    q = (
        select(o.c.id, o.c.program_id, o.c.topic, o.c.payload, o.c.created_at)
        .where(o.c.state == "pending")
        .order_by(o.c.id)
        .limit(policy.batch)
        .with_for_update(skip_locked=True)
    )
    if program_ids is not None:
        q = q.where(o.c.program_id.in_(program_ids))
    async with rt.engine.begin() as conn:
        events = [
            _Event(r.id, r.program_id, r.topic, r.created_at, orjson.loads(r.payload))
            for r in await conn.execute(q)
        ]
        if not events:
            return 0
        pids = {ev.program_id for ev in events}
        names: dict[int, str] = {}
        profiles: dict[int, ProgramProfile] = {}
        for pid, pname, raw in await conn.execute(
            select(t.programs.c.id, t.programs.c.name, t.programs.c.profile).where(
                t.programs.c.id.in_(pids)
            )
        ):
            names[pid] = pname
            profiles[pid] = profile_from_json(orjson.loads(raw) if raw else None)
        contacts = await _contacts(conn, events)  # sets customer_id from account_id
        overrides = await _overrides(conn, pids)
        endpoints = await _endpoints(conn, pids)
        partners = await _event_partners(conn, events)
        rows: list[dict[str, Any]] = []
        dead: dict[int, str] = {}
        for ev in events:
            try:
                rows += _rows_for(
                    ev,
                    program_name=names.get(ev.program_id, ""),
                    contacts=contacts,
                    overrides=overrides,
                    endpoints=endpoints.get(ev.program_id, []),
                    locale=policy.locale,
                    now=now,
                    profile=profiles.get(ev.program_id, DEFAULT_PROFILE),
                    partners=partners.get(ev.id, set()),
                )
            except (templates.TemplateFailed, KeyError, TypeError, ValueError) as exc:
                dead[ev.id] = f"{type(exc).__name__}: {exc}"[:2000]
        if rows:
            await conn.execute(_insert_ignoring_duplicates(conn), rows)
        done = [ev.id for ev in events if ev.id not in dead]
        if done:
            await conn.execute(
                update(o).where(o.c.id.in_(done)).values(state="dispatched", delivered_at=now)
            )
        # a login code must not outlive its delivery in plain text (only its hash is kept)
        private = [ev.id for ev in events if ev.topic in messages.PRIVATE_TOPICS]
        if private:
            await conn.execute(update(o).where(o.c.id.in_(private)).values(payload=REDACTED))
        for ev_id, error in dead.items():
            await conn.execute(
                update(o)
                .where(o.c.id == ev_id)
                .values(state="dead", attempts=o.c.attempts + 1, last_error=error)
            )
    return len(events)


# --- 2. deliver: claim, send, mark ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    channel: str
    recipient: str
    subject: str | None
    body: str
    key: str
    topic: str
    attempts: int
    secret: str | None
    attachment: Attachment | None = None
    sender: str | None = None  # SMS: the program's sender name


def _due(now: datetime) -> Any:
    return or_(
        and_(d.c.state == "pending", d.c.next_attempt_at <= now),
        and_(d.c.state == "sending", d.c.locked_until < now),  # a lease that ran out
    )


async def claim(
    rt: Runtime,
    notifier: Notifier,
    *,
    worker_id: str,
    program_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> list[Claimed]:
    """Take up to ``batch`` due deliveries of the configured channels for this worker:
    one atomic update (``SKIP LOCKED`` on PostgreSQL), committed before anything is sent."""
    now = now or rt.now()
    policy = notifier.policy
    if not notifier.channels:
        return []
    sub = (
        select(d.c.id)
        .where(_due(now), d.c.channel.in_(list(notifier.channels)))
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(policy.batch)
        .with_for_update(skip_locked=True)
    )
    if program_ids is not None:
        sub = sub.where(d.c.program_id.in_(program_ids))
    stmt = (
        update(d)
        .where(d.c.id.in_(sub.scalar_subquery()))
        .values(
            state="sending",
            locked_by=worker_id,
            locked_until=now + timedelta(seconds=policy.lease_s),
            attempts=d.c.attempts + 1,
        )
        .returning(
            d.c.id,
            d.c.channel,
            d.c.recipient,
            d.c.subject,
            d.c.body,
            d.c.delivery_key,
            d.c.topic,
            d.c.attempts,
            d.c.endpoint_id,
            d.c.outbox_id,
            d.c.sender,
        )
    )
    async with rt.engine.begin() as conn:
        rows = (await conn.execute(stmt)).all()
        ep_ids = {r.endpoint_id for r in rows if r.endpoint_id is not None}
        secrets: dict[int, str] = {}
        if ep_ids:
            we = t.webhook_endpoints
            secrets = dict(
                (await conn.execute(select(we.c.id, we.c.secret).where(we.c.id.in_(ep_ids)))).all()
            )
        files = await _attachments(conn, {r.outbox_id for r in rows if r.channel == "email"})
    return [
        Claimed(
            r.id,
            r.channel,
            r.recipient,
            r.subject,
            r.body,
            r.delivery_key,
            r.topic,
            r.attempts,
            secrets.get(r.endpoint_id) if r.endpoint_id is not None else None,
            files.get(r.outbox_id) if r.channel == "email" else None,
            r.sender,
        )
        for r in sorted(rows, key=lambda r: r.id)
    ]


async def _attachments(conn: AsyncConnection, outbox_ids: set[int]) -> dict[int, Attachment]:
    """The file each of these events' e-mails carry, if any (``outbox_attachments``)."""
    if not outbox_ids:
        return {}
    oa = t.outbox_attachments
    rows = await conn.execute(
        select(oa.c.outbox_id, oa.c.filename, oa.c.content_type, oa.c.data).where(
            oa.c.outbox_id.in_(outbox_ids)
        )
    )
    return {r.outbox_id: Attachment(r.filename, r.content_type, bytes(r.data)) for r in rows}


@dataclass(frozen=True, slots=True)
class Outcome:
    claimed: Claimed
    ok: bool
    final: bool = False  # Reject: never retried
    ref: str | None = None
    error: str | None = None


async def send(notifier: Notifier, batch: Sequence[Claimed]) -> list[Outcome]:
    """Send claimed deliveries, ``concurrency`` at a time; never raises for a channel."""
    gate = asyncio.Semaphore(max(1, notifier.policy.concurrency))

    async def one(c: Claimed) -> Outcome:
        channel = notifier.channels[c.channel]
        msg = Outgoing(
            c.channel,
            c.recipient,
            c.body,
            c.key,
            c.subject,
            c.topic,
            c.secret,
            extra={"sender": c.sender} if c.sender else {},
            attachment=c.attachment,
        )
        async with gate:
            try:
                return Outcome(c, True, ref=await channel.send(msg))
            except Reject as exc:
                return Outcome(c, False, final=True, error=str(exc))
            except Retry as exc:
                return Outcome(c, False, error=str(exc))
            except Exception as exc:  # a channel's bug must not stop the others
                return Outcome(c, False, error=f"{type(exc).__name__}: {exc}")

    return list(await asyncio.gather(*(one(c) for c in batch)))


async def mark(
    rt: Runtime,
    notifier: Notifier,
    outcomes: Sequence[Outcome],
    *,
    worker_id: str,
    now: datetime | None = None,
) -> Stats:
    """Record what happened, for rows this worker still holds."""
    now = now or rt.now()
    policy = notifier.policy
    stats = Stats()
    async with rt.engine.begin() as conn:
        for out in outcomes:
            c = out.claimed
            mine = and_(d.c.id == c.id, d.c.locked_by == worker_id, d.c.state == "sending")
            values: dict[str, Any] = {"locked_by": None, "locked_until": None}
            if out.ok:
                values |= {
                    "state": "delivered",
                    "sent_at": now,
                    "provider_ref": out.ref,
                    "last_error": None,
                }
                stats.delivered += 1
            elif out.final:
                values |= {"state": "failed", "last_error": out.error}
                stats.failed += 1
            elif c.attempts >= policy.max_attempts:
                values |= {"state": "dead", "last_error": out.error}
                stats.dead += 1
            else:
                wait = retry_delay(
                    c.attempts,
                    base_s=policy.base_delay_s,
                    cap_s=policy.max_delay_s,
                    rng=notifier.rng,
                )
                values |= {
                    "state": "pending",
                    "next_attempt_at": now + wait,
                    "last_error": out.error,
                }
                stats.retried += 1
            if values["state"] != "pending" and c.topic in messages.PRIVATE_TOPICS:
                values["body"] = "[redacted]"  # the code is no longer needed in clear
            await conn.execute(update(d).where(mine).values(**values))
    return stats


async def deliver(
    rt: Runtime,
    notifier: Notifier,
    *,
    worker_id: str,
    program_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> Stats:
    """One claim-send-mark round."""
    batch = await claim(rt, notifier, worker_id=worker_id, program_ids=program_ids, now=now)
    if not batch:
        return Stats()
    outcomes = await send(notifier, batch)
    if crash.ARMED:  # the crash drills: sent, not yet marked (at-least-once delivery)
        crash.point("delivery.sent")
    stats = await mark(rt, notifier, outcomes, worker_id=worker_id, now=now)
    stats.claimed = len(batch)
    return stats


async def run_once(
    rt: Runtime,
    notifier: Notifier,
    *,
    worker_id: str,
    program_ids: Sequence[int] | None = None,
    now: datetime | None = None,
    max_rounds: int = 100,
) -> Stats:
    """Dispatch every pending event, then deliver until nothing is due (or ``max_rounds``)."""
    stats = Stats()
    for _ in range(max_rounds):
        n = await dispatch(rt, notifier, program_ids=program_ids, now=now)
        stats.dispatched += n
        if n < notifier.policy.batch:
            break
    for _ in range(max_rounds):
        round_ = await deliver(rt, notifier, worker_id=worker_id, program_ids=program_ids, now=now)
        stats += round_
        if round_.claimed < notifier.policy.batch:
            break
    return stats


# --- operators: list, retry -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    program_id: int
    topic: str
    channel: str
    recipient: str
    state: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None
    delivery_key: str


async def list_deliveries(
    rt: Runtime,
    *,
    states: Sequence[str] | None = None,
    program_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[DeliveryView], int]:
    """Deliveries newest first, with the total for paging."""
    where: list[Any] = []
    if states:
        where.append(d.c.state.in_(states))
    if program_id is not None:
        where.append(d.c.program_id == program_id)
    cols = [getattr(d.c, f) for f in DeliveryView.__dataclass_fields__]
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(*cols).where(*where).order_by(d.c.id.desc()).limit(limit).offset(offset)
        )
        items = [DeliveryView(*r) for r in rows]
        total = (await conn.execute(select(func.count()).select_from(d).where(*where))).scalar_one()
    return items, int(total)


async def retry(
    rt: Runtime,
    *,
    ids: Sequence[int] | None = None,
    program_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Put failed and dead deliveries (all, or ``ids``) back in the queue with fresh
    attempts; returns how many.  The caller audits who asked."""
    now = now or rt.now()
    where: list[Any] = [d.c.state.in_(("failed", "dead"))]
    if ids is not None:
        where.append(d.c.id.in_(ids))
    if program_id is not None:
        where.append(d.c.program_id == program_id)
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            update(d).where(*where).values(state="pending", attempts=0, next_attempt_at=now)
        )
    return int(res.rowcount or 0)


async def counts(rt: Runtime, *, program_id: int | None = None) -> dict[str, int]:
    """Deliveries by state."""
    q = select(d.c.state, func.count()).group_by(d.c.state)
    if program_id is not None:
        q = q.where(d.c.program_id == program_id)
    async with rt.engine.connect() as conn:
        got: dict[str, int] = dict((await conn.execute(q)).all())
    return {s: int(got.get(s, 0)) for s in STATES}


async def add_webhook(
    rt: Runtime,
    *,
    program_id: int,
    url: str,
    secret: str,
    topics: str = "*",
    partner_id: int | None = None,
) -> int:
    """Register a partner's endpoint; its events are signed with ``secret``."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("url must be http(s)")
    if len(secret) < 16:
        raise ValueError("secret must be at least 16 characters")
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            insert(t.webhook_endpoints).returning(t.webhook_endpoints.c.id),
            {
                "program_id": program_id,
                "partner_id": partner_id,
                "url": url,
                "secret": secret,
                "topics": topics,
                "created_at": rt.now(),
            },
        )
        return int(res.scalar_one())


async def event_counts(rt: Runtime, *, program_id: int | None = None) -> dict[str, int]:
    """Outbox events by state (``dead``: its template failed; ``last_error`` says why)."""
    q = select(o.c.state, func.count()).group_by(o.c.state)
    if program_id is not None:
        q = q.where(o.c.program_id == program_id)
    async with rt.engine.connect() as conn:
        got: dict[str, int] = dict((await conn.execute(q)).all())
    return {s: int(got.get(s, 0)) for s in ("pending", "dispatched", "dead")}


async def retry_events(rt: Runtime, *, program_id: int | None = None) -> int:
    """Dispatch dead events again (after their template was fixed); returns how many."""
    where: list[Any] = [o.c.state == "dead"]
    if program_id is not None:
        where.append(o.c.program_id == program_id)
    async with rt.engine.begin() as conn:
        res = await conn.execute(update(o).where(*where).values(state="pending"))
    return int(res.rowcount or 0)
