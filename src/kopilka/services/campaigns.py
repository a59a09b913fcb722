"""Campaigns: a marketer's message to an audience, sent through the outbox (docs/campaigns.md).

- ``create`` checks the form (audience, channel, text, schedule, quiet hours, frequency
  cap, control group) and writes the campaign, audited ``campaign.create``;
- ``run_due`` (the worker, every round) takes each campaign whose time has come: the
  first time it builds the recipients (the audience **query** keeps only active customers
  with the channel's consent and an address) and splits them into the target and the
  control group by a seeded hash; then, outside quiet hours, it writes one outbox event
  per target recipient (``dedup_key`` ``campaign:<id>:<customer>``: never twice), each
  batch in one transaction, after checking consent again and the frequency cap.  Part A's
  dispatch checks consent a third time with ``consent.recipient`` when it turns the event
  into a delivery, so a consent withdrawn at any moment stops the message;
- ``report`` counts sent, delivered and failed messages and compares purchases and revenue
  within ``response_days`` after the start in the target and the control group;
- ``unsubscribe`` clears the channel's consent from a signed link, audited.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain import campaigns as dc
from kopilka.domain.roles import Perm
from kopilka.notify import consent, messages, templates
from kopilka.notify.sms import sms_length
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

cp, cr, cu = t.campaigns, t.campaign_recipients, t.customers
SORTS = ("id", "name", "send_at", "state", "channel")
STATES = ("scheduled", "sending", "sent", "cancelled")
PUBLIC_URL_ENV = "KOPILKA_PUBLIC_URL"
FOOTER = {
    ("sms", "ru"): " Отписка: {{ unsubscribe_url }}",
    ("sms", "en"): " Unsubscribe: {{ unsubscribe_url }}",
    ("email", "ru"): "\n\nОтписаться от рассылки: {{ unsubscribe_url }}",
    ("email", "en"): "\n\nUnsubscribe: {{ unsubscribe_url }}",
}
SAMPLE = {"name": "Анна", "program": "Kopilka", "unsubscribe_url": "https://example.org/u/x"}


def public_url() -> str:
    return os.environ.get(PUBLIC_URL_ENV, "http://localhost:8000").rstrip("/")


def _check_program(actor: Actor, program_id: int) -> None:
    if actor.program_id is not None and actor.program_id != program_id:
        raise ServiceError("forbidden", "this user is limited to another program")


def _invalid(exc: dc.Invalid) -> ServiceError:
    return ServiceError("validation_failed", exc.detail, field=exc.field)


# --- the audience -----------------------------------------------------------------------------


def _address(channel: str) -> Any:
    if channel == "sms":
        return and_(cu.c.consent_sms.is_(True), cu.c.phone.is_not(None), cu.c.phone != "")
    return and_(cu.c.consent_email.is_(True), cu.c.email.is_not(None), cu.c.email != "")


def audience_query(program_id: int, aud: dc.Audience, channel: str, now: datetime) -> Any:
    """The ids of the customers a campaign on ``channel`` may reach: active, with the
    channel's consent and an address, meeting every condition of ``aud``."""
    a, r, s = t.accounts, t.receipts, t.stores
    where: list[Any] = [cu.c.program_id == program_id, cu.c.status == "active", _address(channel)]
    q = select(cu.c.id).select_from(cu.outerjoin(a, a.c.customer_id == cu.c.id))
    bought = and_(r.c.program_id == program_id, r.c.account_id == a.c.id, r.c.state == "confirmed")
    if aud.rfm:
        where.append(cu.c.rfm_segment.in_(aud.rfm))
    if aud.tiers:
        where.append(a.c.tier.in_(aud.tiers))
    if aud.cities:
        home = select(s.c.id).where(s.c.program_id == program_id, s.c.city.in_(aud.cities))
        at = exists().where(bought, r.c.store_id.in_(home))
        where.append(or_(cu.c.home_store_id.in_(home), at))
    if aud.stores:
        at = exists().where(bought, r.c.store_id.in_(aud.stores))
        where.append(or_(cu.c.home_store_id.in_(aud.stores), at))
    if aud.days_min is not None:
        since = now - timedelta(days=aud.days_min)
        where.append(~exists().where(bought, r.c.occurred_at > since))
    if aud.days_max is not None:
        since = now - timedelta(days=aud.days_max)
        where.append(exists().where(bought, r.c.occurred_at >= since))
    if aud.birthday_month is not None:
        where.append(func.extract("month", cu.c.birthday) == aud.birthday_month)
    if aud.tags:
        where.append(or_(*(cu.c.tags.like(f'%"{tag}"%') for tag in aud.tags)))
    if aud.listed:
        cards = select(t.cards.c.customer_id).where(
            t.cards.c.program_id == program_id, t.cards.c.number.in_(aud.listed)
        )
        where.append(or_(cu.c.phone.in_(aud.listed), cu.c.id.in_(cards)))
    return q.where(*where)


async def audience_count(
    rt: Runtime, actor: Actor, program_id: int, aud: dc.Audience, channel: str
) -> int:
    """How many customers the audience reaches on the channel now (the builder's count)."""
    actor.require(Perm.PROGRAMS_READ)
    _check_program(actor, program_id)
    if channel not in dc.CHANNELS:
        raise ServiceError("validation_failed", "Choose SMS or e-mail.", field="channel")
    sub = audience_query(program_id, aud, channel, rt.now()).subquery()
    async with rt.engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(sub))).scalar_one()
    return int(n)


# --- creating ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    name: str
    channel: str
    subject: str | None
    body: str
    audience: dc.Audience
    send_at: datetime
    timezone: str
    quiet_start: str | None
    quiet_end: str | None
    cap_count: int | None
    cap_days: int | None
    control_percent: int
    response_days: int


def _int(values: Mapping[str, str], name: str, lo: int, hi: int, default: int | None) -> Any:
    raw = (values.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise dc.Invalid(name, f"Enter a whole number from {lo} to {hi}.")
    return int(raw)


def _send_at(raw: str, tz: str, now: datetime) -> datetime:
    raw = raw.strip()
    if not raw:
        return now
    try:
        when = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise dc.Invalid("send_at", "Enter a date and time.") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dc.zone(tz))
    return when.astimezone(UTC)


def _text(channel: str, body: str, subject: str | None, locale: str) -> tuple[str, str | None]:
    """The text with the unsubscribe link (added when the marketer left it out), checked
    by rendering it in the sandbox with sample values."""
    if "unsubscribe_url" not in body:
        body = body.rstrip() + FOOTER[(channel, locale if locale in ("ru", "en") else "ru")]
    try:
        templates.render(templates.Template(body, subject), SAMPLE, locale=locale, name="campaign")
    except templates.TemplateFailed as exc:
        raise dc.Invalid("body", f"The text does not render: {exc.__cause__ or exc}") from exc
    return body, subject


def clean(
    values: Mapping[str, str], *, upload: str | None, now: datetime, locale: str, tz: str
) -> Draft:
    """The campaign a form describes (``dc.Invalid`` names the field)."""
    name = (values.get("name") or "").strip()
    if not name:
        raise dc.Invalid("name", "Enter a name.")
    channel = values.get("channel") or ""
    if channel not in dc.CHANNELS:
        raise dc.Invalid("channel", "Choose SMS or e-mail.")
    body = (values.get("body") or "").strip()
    if not body:
        raise dc.Invalid("body", "Enter the message text.")
    subject = (values.get("subject") or "").strip() or None
    if channel == "email" and not subject:
        raise dc.Invalid("subject", "An e-mail needs a subject.")
    timezone = (values.get("timezone") or "").strip() or tz
    dc.zone(timezone)
    qs, qe = (values.get("quiet_start") or "").strip(), (values.get("quiet_end") or "").strip()
    if bool(qs) != bool(qe):
        raise dc.Invalid("quiet_end" if qs else "quiet_start", "Give both ends of quiet hours.")
    if qs:
        dc.parse_hhmm(qs, "quiet_start")
        dc.parse_hhmm(qe, "quiet_end")
    cap_count = _int(values, "cap_count", 1, 100, None)
    cap_days = _int(values, "cap_days", 1, 365, None)
    if (cap_count is None) != (cap_days is None):
        raise dc.Invalid("cap_days" if cap_count else "cap_count", "Give both numbers of the cap.")
    body, subject = _text(channel, body, subject if channel == "email" else None, locale)
    return Draft(
        name=name[:200],
        channel=channel,
        subject=subject,
        body=body,
        audience=dc.parse_audience(values, upload),
        send_at=_send_at(values.get("send_at") or "", timezone, now),
        timezone=timezone,
        quiet_start=qs or None,
        quiet_end=qe or None,
        cap_count=cap_count,
        cap_days=cap_days,
        control_percent=_int(values, "control_percent", 0, 50, 0),
        response_days=_int(values, "response_days", 1, 90, 14),
    )


async def program_timezone(rt: Runtime, program_id: int) -> str:
    try:
        return (await rt.compiled(program_id)).settings.timezone
    except Exception:  # a program without a document yet: the default
        return "Europe/Moscow"


async def create(
    rt: Runtime,
    actor: Actor,
    program_id: int,
    values: Mapping[str, str],
    *,
    upload: str | None = None,
    locale: str = "ru",
) -> int:
    """A new scheduled campaign; audited ``campaign.create``."""
    actor.require(Perm.PROGRAMS_WRITE)
    _check_program(actor, program_id)
    now = rt.now()
    tz = await program_timezone(rt, program_id)
    try:
        draft = clean(values, upload=upload, now=now, locale=locale, tz=tz)
    except dc.Invalid as exc:
        raise _invalid(exc) from exc
    row = {
        "program_id": program_id,
        "name": draft.name,
        "channel": draft.channel,
        "subject": draft.subject,
        "body": draft.body,
        "audience": draft.audience.to_json(),
        "send_at": draft.send_at,
        "timezone": draft.timezone,
        "quiet_start": draft.quiet_start,
        "quiet_end": draft.quiet_end,
        "cap_count": draft.cap_count,
        "cap_days": draft.cap_days,
        "control_percent": draft.control_percent,
        "response_days": draft.response_days,
        "state": "scheduled",
        "next_run_at": draft.send_at,
        "secret": secrets.token_urlsafe(32),
        "created_by": actor.name,
        "created_at": now,
    }
    async with rt.engine.begin() as conn:
        cid = int((await conn.execute(insert(cp).returning(cp.c.id), row)).scalar_one())
        shown = {k: v for k, v in row.items() if k not in ("secret", "audience")}
        shown["audience"] = orjson.loads(draft.audience.to_json())
        shown["send_at"] = draft.send_at.isoformat()
        shown["next_run_at"] = draft.send_at.isoformat()
        shown["created_at"] = now.isoformat()
        await audit.record(
            conn,
            actor,
            "campaign.create",
            "campaign",
            cid,
            at=now,
            program_id=program_id,
            after=shown,
        )
    return cid


async def cancel(rt: Runtime, actor: Actor, campaign_id: int) -> None:
    """Stop a campaign that has not finished; audited ``campaign.cancel``."""
    actor.require(Perm.PROGRAMS_WRITE)
    now = rt.now()
    async with rt.engine.begin() as conn:
        c = await _get(conn, actor, campaign_id)
        if c.state not in ("scheduled", "sending"):
            raise ServiceError("conflict", "The campaign has already finished.", field="state")
        await conn.execute(
            update(cp).where(cp.c.id == campaign_id).values(state="cancelled", finished_at=now)
        )
        await audit.record(
            conn,
            actor,
            "campaign.cancel",
            "campaign",
            campaign_id,
            at=now,
            program_id=c.program_id,
            before={"state": c.state},
            after={"state": "cancelled"},
        )


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Campaign:
    id: int
    program_id: int
    name: str
    channel: str
    subject: str | None
    body: str
    audience: dc.Audience
    send_at: datetime
    timezone: str
    quiet_start: str | None
    quiet_end: str | None
    cap_count: int | None
    cap_days: int | None
    control_percent: int
    response_days: int
    state: str
    next_run_at: datetime
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


_COLS = [c for c in Campaign.__dataclass_fields__]


def _campaign(r: Any) -> Campaign:
    d = {k: getattr(r, k) for k in _COLS}
    d["audience"] = dc.Audience.from_json(r.audience)
    return Campaign(**d)


async def _get(conn: AsyncConnection, actor: Actor, campaign_id: int) -> Campaign:
    r = (await conn.execute(select(cp).where(cp.c.id == campaign_id))).first()
    if r is None or (actor.program_id is not None and r.program_id != actor.program_id):
        raise ServiceError("not_found", "No such campaign.")
    return _campaign(r)


async def get(rt: Runtime, actor: Actor, campaign_id: int) -> Campaign:
    actor.require(Perm.PROGRAMS_READ)
    async with rt.engine.connect() as conn:
        return await _get(conn, actor, campaign_id)


@dataclass(frozen=True)
class Row:
    id: int
    name: str
    channel: str
    state: str
    send_at: datetime
    recipients: int
    sent: int


async def list_campaigns(
    rt: Runtime,
    actor: Actor,
    program_id: int,
    *,
    sort: str = "id",
    descending: bool = True,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Row], int]:
    actor.require(Perm.PROGRAMS_READ)
    _check_program(actor, program_id)
    n_all = select(func.count()).where(cr.c.campaign_id == cp.c.id).scalar_subquery()
    n_sent = (
        select(func.count())
        .where(cr.c.campaign_id == cp.c.id, cr.c.state == "sent")
        .scalar_subquery()
    )
    col = getattr(cp.c, sort if sort in SORTS else "id")
    q = (
        select(cp.c.id, cp.c.name, cp.c.channel, cp.c.state, cp.c.send_at, n_all, n_sent)
        .where(cp.c.program_id == program_id)
        .order_by(col.desc() if descending else col.asc(), cp.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    async with rt.engine.connect() as conn:
        items = [Row(*r) for r in await conn.execute(q)]
        total = (
            await conn.execute(select(func.count()).where(cp.c.program_id == program_id))
        ).scalar_one()
    return items, int(total)


# --- sending (the worker) ---------------------------------------------------------------------


async def _build(conn: AsyncConnection, c: Any, now: datetime) -> int:
    """The recipients of a campaign starting now, split into target and control."""
    aud = dc.Audience.from_json(c.audience)
    ids = [r[0] for r in await conn.execute(audience_query(c.program_id, aud, c.channel, now))]
    rows = [
        {
            "campaign_id": c.id,
            "customer_id": cid,
            "program_id": c.program_id,
            "grp": "control" if dc.in_control(c.secret, cid, c.control_percent) else "target",
            "state": "held",
        }
        for cid in ids
    ]
    for r in rows:
        if r["grp"] == "target":
            r["state"] = "queued"
    for i in range(0, len(rows), 1000):
        await conn.execute(insert(cr), rows[i : i + 1000])
    return len(rows)


async def _recent(
    conn: AsyncConnection, program_id: int, ids: Sequence[int], since: datetime
) -> dict[int, list[datetime]]:
    """Marketing messages sent to these customers since ``since``, across campaigns."""
    rows = await conn.execute(
        select(cr.c.customer_id, cr.c.sent_at).where(
            cr.c.program_id == program_id,
            cr.c.customer_id.in_(ids),
            cr.c.state == "sent",
            cr.c.sent_at > since,
        )
    )
    out: dict[int, list[datetime]] = {}
    for cid, at in rows:
        out.setdefault(cid, []).append(at)
    return out


async def _contacts(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, consent.Contact]:
    rows = await conn.execute(
        select(
            cu.c.id,
            cu.c.first_name,
            cu.c.phone,
            cu.c.email,
            cu.c.consent_sms,
            cu.c.consent_email,
            cu.c.status,
        ).where(cu.c.id.in_(ids))
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


async def _send_batch(conn: AsyncConnection, c: Any, now: datetime, batch: int) -> int | None:
    """Write the next batch's outbox events; None when nobody is left queued."""
    q = (
        select(cr.c.customer_id)
        .where(cr.c.campaign_id == c.id, cr.c.state == "queued")
        .order_by(cr.c.customer_id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    ids = [r[0] for r in await conn.execute(q)]
    if not ids:
        return None
    contacts = await _contacts(conn, ids)
    recent: dict[int, list[datetime]] = {}
    if c.cap_count and c.cap_days:
        recent = await _recent(conn, c.program_id, ids, now - timedelta(days=c.cap_days))
    written = 0
    base = public_url()
    for cid in ids:
        mine = and_(cr.c.campaign_id == c.id, cr.c.customer_id == cid)
        if consent.recipient("campaign", c.channel, contacts.get(cid)) is None:
            await conn.execute(update(cr).where(mine).values(state="no_consent"))
            continue
        if dc.capped(recent.get(cid, ()), now, c.cap_count, c.cap_days):
            await conn.execute(update(cr).where(mine).values(state="capped"))
            continue
        token = dc.unsubscribe_token(c.secret, c.id, cid, c.channel)
        payload = {
            "customer_id": cid,
            "campaign_id": c.id,
            "channel": c.channel,
            "body": c.body,
            "subject": c.subject,
            "unsubscribe_url": f"{base}/unsubscribe/{token}",
        }
        oid = (
            await conn.execute(
                insert(t.outbox).returning(t.outbox.c.id),
                {
                    "program_id": c.program_id,
                    "topic": messages.CAMPAIGN_TOPIC,
                    "created_at": now,
                    "payload": orjson.dumps(payload).decode(),
                    "dedup_key": f"campaign:{c.id}:{cid}",
                },
            )
        ).scalar_one()
        await conn.execute(update(cr).where(mine).values(state="sent", outbox_id=oid, sent_at=now))
        written += 1
    return written


async def run_campaign(rt: Runtime, campaign_id: int, *, now: datetime, batch: int = 500) -> int:
    """Advance one due campaign; returns the outbox events written."""
    async with rt.engine.begin() as conn:
        c = (
            await conn.execute(
                select(cp)
                .where(cp.c.id == campaign_id, cp.c.state.in_(("scheduled", "sending")))
                .with_for_update(skip_locked=True)
            )
        ).first()
        if c is None or c.next_run_at > now:
            return 0
        quiet = dc.quiet_until(
            now,
            c.timezone,
            dc.parse_hhmm(c.quiet_start, "quiet_start") if c.quiet_start else None,
            dc.parse_hhmm(c.quiet_end, "quiet_end") if c.quiet_end else None,
        )
        if quiet is not None:  # postponed to the end of quiet hours
            await conn.execute(update(cp).where(cp.c.id == c.id).values(next_run_at=quiet))
            return 0
        if c.state == "scheduled":
            await _build(conn, c, now)
            await conn.execute(
                update(cp).where(cp.c.id == c.id).values(state="sending", started_at=now)
            )
    total = 0
    while True:
        async with rt.engine.begin() as conn:
            n = await _send_batch(conn, c, now, batch)
            if n is None:
                await conn.execute(
                    update(cp)
                    .where(cp.c.id == c.id, cp.c.state == "sending")
                    .values(state="sent", finished_at=now)
                )
                return total
            total += n


async def run_due(rt: Runtime, *, now: datetime | None = None) -> int:
    """The worker's job: every campaign whose time has come; returns events written."""
    now = now or rt.now()
    async with rt.engine.connect() as conn:
        ids = [
            r[0]
            for r in await conn.execute(
                select(cp.c.id)
                .where(cp.c.state.in_(("scheduled", "sending")), cp.c.next_run_at <= now)
                .order_by(cp.c.id)
            )
        ]
    total = 0
    for cid in ids:
        total += await run_campaign(rt, cid, now=now)
    return total


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    campaign: Campaign
    recipients: dict[str, int]  # state -> count (queued, sent, capped, no_consent, held)
    deliveries: dict[str, int]  # pending, sending, delivered, failed, dead
    target: dc.Response
    control: dc.Response
    window_from: datetime | None
    window_to: datetime | None

    @property
    def uplift(self) -> Decimal:
        return dc.uplift(self.target, self.control)

    @property
    def sent(self) -> int:
        return self.recipients.get("sent", 0)


async def _response(
    conn: AsyncConnection, c: Campaign, grp: str, start: datetime | None, end: datetime | None
) -> dc.Response:
    n = (
        await conn.execute(select(func.count()).where(cr.c.campaign_id == c.id, cr.c.grp == grp))
    ).scalar_one()
    if start is None or end is None:
        return dc.Response(int(n), 0, 0, Decimal(0))
    r, a = t.receipts, t.accounts
    q = (
        select(
            func.count(func.distinct(a.c.customer_id)),
            func.count(r.c.id),
            func.coalesce(func.sum(r.c.amount), 0),
        )
        .select_from(
            r.join(a, a.c.id == r.c.account_id).join(
                cr, and_(cr.c.customer_id == a.c.customer_id, cr.c.campaign_id == c.id)
            )
        )
        .where(
            r.c.program_id == c.program_id,
            r.c.state == "confirmed",
            r.c.occurred_at >= start,
            r.c.occurred_at < end,
            cr.c.grp == grp,
        )
    )
    buyers, purchases, revenue = (await conn.execute(q)).one()
    return dc.Response(int(n), int(buyers), int(purchases), Decimal(str(revenue)))


async def report(rt: Runtime, actor: Actor, campaign_id: int) -> Report:
    """Sent, delivered, failed; purchases and revenue in the target vs the control group
    within ``response_days`` after the campaign started."""
    actor.require(Perm.PROGRAMS_READ)
    d = t.deliveries
    async with rt.engine.connect() as conn:
        c = await _get(conn, actor, campaign_id)
        states: dict[str, int] = dict(
            (
                await conn.execute(
                    select(cr.c.state, func.count())
                    .where(cr.c.campaign_id == c.id)
                    .group_by(cr.c.state)
                )
            ).all()
        )
        dstates: dict[str, int] = dict(
            (
                await conn.execute(
                    select(d.c.state, func.count())
                    .select_from(d.join(cr, cr.c.outbox_id == d.c.outbox_id))
                    .where(cr.c.campaign_id == c.id)
                    .group_by(d.c.state)
                )
            ).all()
        )
        start = c.started_at
        end = start + timedelta(days=c.response_days) if start else None
        target = await _response(conn, c, "target", start, end)
        control = await _response(conn, c, "control", start, end)
    return Report(
        c,
        {k: int(v) for k, v in states.items()},
        {k: int(dstates.get(k, 0)) for k in ("pending", "sending", "delivered", "failed", "dead")},
        target,
        control,
        start,
        end,
    )


# --- unsubscribing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Unsubscribed:
    program: str
    channel: str
    already: bool


async def unsubscribe(rt: Runtime, token: str, *, ip: str | None = None) -> Unsubscribed | None:
    """Clear the channel's consent of the customer a signed link names; audited
    ``consent.unsubscribe`` (actor: the customer).  None: the link is not valid."""
    parts = dc.token_parts(token)
    if parts is None:
        return None
    campaign_id, customer_id, channel, _ = parts
    now = rt.now()
    column = "consent_sms" if channel == "sms" else "consent_email"
    async with rt.engine.begin() as conn:
        c = (
            await conn.execute(select(cp.c.program_id, cp.c.secret).where(cp.c.id == campaign_id))
        ).first()
        if c is None or not dc.token_valid(c.secret, token):
            return None
        row = (
            await conn.execute(
                select(getattr(cu.c, column)).where(
                    cu.c.id == customer_id, cu.c.program_id == c.program_id
                )
            )
        ).first()
        if row is None:
            return None
        name = (
            await conn.execute(select(t.programs.c.name).where(t.programs.c.id == c.program_id))
        ).scalar_one()
        if not row[0]:
            return Unsubscribed(name, channel, True)
        await conn.execute(update(cu).where(cu.c.id == customer_id).values({column: False}))
        who = Actor("customer", customer_id, f"customer {customer_id}", role="customer", ip=ip)
        await audit.record(
            conn,
            who,
            "consent.unsubscribe",
            "customer",
            customer_id,
            at=now,
            program_id=c.program_id,
            reason=f"unsubscribe link of campaign {campaign_id}",
            before={column: True},
            after={column: False},
        )
    return Unsubscribed(name, channel, False)


async def unsubscribe_target(rt: Runtime, token: str) -> tuple[str, str] | None:
    """(program name, channel) of a valid unsubscribe link, without changing anything."""
    parts = dc.token_parts(token)
    if parts is None:
        return None
    async with rt.engine.connect() as conn:
        c = (
            await conn.execute(
                select(cp.c.secret, t.programs.c.name)
                .select_from(cp.join(t.programs, t.programs.c.id == cp.c.program_id))
                .where(cp.c.id == parts[0])
            )
        ).first()
    if c is None or not dc.token_valid(c.secret, token):
        return None
    return str(c.name), parts[2]


@dataclass(frozen=True)
class Options:
    """What the audience builder offers to choose from."""

    rfm: list[str]
    tiers: list[str]
    cities: list[str]
    stores: list[tuple[int, str]]
    timezone: str


async def audience_options(rt: Runtime, actor: Actor, program_id: int) -> Options:
    actor.require(Perm.PROGRAMS_READ)
    _check_program(actor, program_id)
    s = t.stores
    async with rt.engine.connect() as conn:
        rfm = (
            await conn.execute(
                select(cu.c.rfm_segment)
                .where(cu.c.program_id == program_id, cu.c.rfm_segment.is_not(None))
                .distinct()
                .order_by(cu.c.rfm_segment)
            )
        ).scalars()
        rfm_list = [str(x) for x in rfm if x]
        tiers = (
            await conn.execute(
                select(t.accounts.c.tier)
                .where(t.accounts.c.program_id == program_id, t.accounts.c.tier.is_not(None))
                .distinct()
                .order_by(t.accounts.c.tier)
            )
        ).scalars()
        tier_list = [str(x) for x in tiers if x]
        stores = (
            await conn.execute(
                select(s.c.id, s.c.name, s.c.code, s.c.city)
                .where(s.c.program_id == program_id)
                .order_by(s.c.city, s.c.name)
            )
        ).all()
    cities = sorted({r.city for r in stores if r.city})
    return Options(
        rfm_list,
        tier_list,
        cities,
        [(r.id, f"{r.name} ({r.code})") for r in stores],
        await program_timezone(rt, program_id),
    )


def preview(channel: str, body: str, subject: str | None, *, locale: str) -> templates.Preview:
    """The text as a customer would see it (sample name, program, link), with the SMS cost;
    raises ServiceError naming the field."""
    if channel not in dc.CHANNELS or not body.strip():
        raise ServiceError("validation_failed", "Enter the message text.", field="body")
    try:
        full, subj = _text(channel, body.strip(), subject if channel == "email" else None, locale)
    except dc.Invalid as exc:
        raise _invalid(exc) from exc
    # a link as long as a real one: the SMS's length and parts are the real cost
    sample = SAMPLE | {"unsubscribe_url": f"{public_url()}/unsubscribe/1234.123456.sms.{'x' * 22}"}
    out = templates.render(templates.Template(full, subj), sample, locale=locale, name="campaign")
    return templates.Preview(out, sms_length(out.body) if channel == "sms" else None)
