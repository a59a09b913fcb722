"""The console's and the admin API's operations on notifications (docs/notifications.md,
"Console pages"): a program's message templates, dead letters put back in the queue,
partners' webhook endpoints.  Each change is audited in its own transaction.

Who may: templates — ``programs.read`` to see, ``programs.write`` to change (the marketer,
the owner); deliveries and dead letters — ``audit.read`` (the owner, security: they show
customers' addresses and texts); webhooks — ``audit.read`` to see, ``users.manage`` (the
owner) to add, rotate a secret or switch off.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from kopilka.domain.roles import Perm
from kopilka.notify import templates
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

mt, d, we = t.message_templates, t.deliveries, t.webhook_endpoints
LOCALES = ("ru", "en")


def _check_program(actor: Actor, program_id: int) -> None:
    if actor.program_id is not None and actor.program_id != program_id:
        raise ServiceError("forbidden", "this user is limited to another program")


# --- templates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateRow:
    name: str
    channel: str
    locale: str
    own: bool  # the program's own wording (else the shipped default)
    updated_at: datetime | None


def known(name: str, channel: str, locale: str) -> bool:
    return templates.default(name, channel, locale) is not None and locale in LOCALES


async def list_templates(rt: Runtime, actor: Actor, program_id: int) -> list[TemplateRow]:
    """Every message, channel and language, with whether the program changed it."""
    actor.require(Perm.PROGRAMS_READ)
    _check_program(actor, program_id)
    async with rt.engine.connect() as conn:
        own = {
            (r.name, r.channel, r.locale): r.updated_at
            for r in await conn.execute(
                select(mt.c.name, mt.c.channel, mt.c.locale, mt.c.updated_at).where(
                    mt.c.program_id == program_id
                )
            )
        }
    return [
        TemplateRow(n, ch, loc, (n, ch, loc) in own, own.get((n, ch, loc)))
        for (n, ch, loc) in sorted(templates.DEFAULTS)
        if loc in LOCALES
    ]


async def get_template(
    rt: Runtime, actor: Actor, program_id: int, name: str, channel: str, locale: str
) -> tuple[templates.Template, bool]:
    """The template in use and whether it is the program's own."""
    actor.require(Perm.PROGRAMS_READ)
    _check_program(actor, program_id)
    if not known(name, channel, locale):
        raise ServiceError("not_found", "No such message.")
    async with rt.engine.connect() as conn:
        r = (
            await conn.execute(
                select(mt.c.body, mt.c.subject).where(
                    mt.c.program_id == program_id,
                    mt.c.name == name,
                    mt.c.channel == channel,
                    mt.c.locale == locale,
                )
            )
        ).first()
    if r is not None:
        return templates.Template(r.body, r.subject), True
    tpl = templates.default(name, channel, locale)
    assert tpl is not None
    return tpl, False


def check(
    name: str, channel: str, locale: str, body: str, subject: str | None, program: str
) -> templates.Preview:
    """The preview, or a ServiceError naming the field."""
    if not body.strip():
        raise ServiceError("validation_failed", "Enter the message text.", field="body")
    if channel == "email" and not (subject or "").strip():
        raise ServiceError("validation_failed", "An e-mail needs a subject.", field="subject")
    tpl = templates.Template(body, subject if channel == "email" else None)
    try:
        return templates.preview(name, channel, locale, tpl, program=program)
    except templates.TemplateFailed as exc:
        raise ServiceError(
            "validation_failed", f"The text does not render: {exc.__cause__ or exc}", field="body"
        ) from exc


async def save_template(
    rt: Runtime,
    actor: Actor,
    program_id: int,
    name: str,
    channel: str,
    locale: str,
    *,
    body: str,
    subject: str | None,
    program: str = "Kopilka",
) -> None:
    """The program's own wording; audited ``template.update`` with before and after."""
    actor.require(Perm.PROGRAMS_WRITE)
    _check_program(actor, program_id)
    if not known(name, channel, locale):
        raise ServiceError("not_found", "No such message.")
    check(name, channel, locale, body, subject, program)
    subject = (subject or "").strip() or None if channel == "email" else None
    now = rt.now()
    key = (
        mt.c.program_id == program_id,
        mt.c.name == name,
        mt.c.channel == channel,
        mt.c.locale == locale,
    )
    async with rt.engine.begin() as conn:
        old = (await conn.execute(select(mt.c.id, mt.c.body, mt.c.subject).where(*key))).first()
        if old is None:
            await conn.execute(
                insert(mt),
                {
                    "program_id": program_id,
                    "name": name,
                    "channel": channel,
                    "locale": locale,
                    "subject": subject,
                    "body": body,
                    "updated_at": now,
                },
            )
        else:
            await conn.execute(
                update(mt)
                .where(mt.c.id == old.id)
                .values(body=body, subject=subject, updated_at=now)
            )
        await audit.record(
            conn,
            actor,
            "template.update",
            "template",
            f"{name}/{channel}/{locale}",
            at=now,
            program_id=program_id,
            before=None if old is None else {"body": old.body, "subject": old.subject},
            after={"body": body, "subject": subject},
        )


async def reset_template(
    rt: Runtime, actor: Actor, program_id: int, name: str, channel: str, locale: str
) -> bool:
    """Back to the shipped wording; audited ``template.reset``."""
    actor.require(Perm.PROGRAMS_WRITE)
    _check_program(actor, program_id)
    now = rt.now()
    key = (
        mt.c.program_id == program_id,
        mt.c.name == name,
        mt.c.channel == channel,
        mt.c.locale == locale,
    )
    async with rt.engine.begin() as conn:
        old = (await conn.execute(select(mt.c.body, mt.c.subject).where(*key))).first()
        if old is None:
            return False
        await conn.execute(delete(mt).where(*key))
        await audit.record(
            conn,
            actor,
            "template.reset",
            "template",
            f"{name}/{channel}/{locale}",
            at=now,
            program_id=program_id,
            before={"body": old.body, "subject": old.subject},
        )
    return True


# --- deliveries and dead letters ----------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    id: int
    topic: str
    channel: str
    recipient: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None


DELIVERY_SORTS = ("id", "created_at", "state", "channel", "attempts")


async def list_deliveries(
    rt: Runtime,
    actor: Actor,
    program_id: int,
    *,
    state: str = "",
    sort: str = "id",
    descending: bool = True,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Delivery], int, dict[str, int]]:
    """A page of the program's deliveries (one state or all), the total, counts by state."""
    actor.require(Perm.AUDIT_READ)
    _check_program(actor, program_id)
    where: list[Any] = [d.c.program_id == program_id]
    if state:
        where.append(d.c.state == state)
    col = getattr(d.c, sort if sort in DELIVERY_SORTS else "id")
    cols = [getattr(d.c, f) for f in Delivery.__dataclass_fields__]
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(*cols)
            .where(*where)
            .order_by(col.desc() if descending else col.asc(), d.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        items = [Delivery(*r) for r in rows]
        total = (await conn.execute(select(func.count()).select_from(d).where(*where))).scalar_one()
        by_state: dict[str, int] = dict(
            (
                await conn.execute(
                    select(d.c.state, func.count())
                    .where(d.c.program_id == program_id)
                    .group_by(d.c.state)
                )
            ).all()
        )
    return items, int(total), by_state


async def retry_deliveries(
    rt: Runtime, actor: Actor, program_id: int, ids: list[int] | None = None
) -> int:
    """Put failed and dead deliveries (``ids`` or all) back in the queue with fresh
    attempts, in the transaction of the audit row ``outbox.retry``."""
    actor.require(Perm.AUDIT_READ)
    _check_program(actor, program_id)
    now = rt.now()
    where: list[Any] = [d.c.program_id == program_id, d.c.state.in_(("failed", "dead"))]
    if ids is not None:
        where.append(d.c.id.in_(ids))
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            update(d).where(*where).values(state="pending", attempts=0, next_attempt_at=now)
        )
        n = int(res.rowcount or 0)
        await audit.record(
            conn,
            actor,
            "outbox.retry",
            "delivery",
            ",".join(map(str, ids or [])) or "*",
            at=now,
            program_id=program_id,
            after={"requeued": n},
        )
    return n


# --- webhooks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    id: int
    url: str
    topics: str
    created_at: datetime
    disabled_at: datetime | None
    secret_tail: str


async def list_webhooks(rt: Runtime, actor: Actor, program_id: int) -> list[Endpoint]:
    actor.require(Perm.AUDIT_READ)
    _check_program(actor, program_id)
    async with rt.engine.connect() as conn:
        rows = await conn.execute(select(we).where(we.c.program_id == program_id).order_by(we.c.id))
        return [
            Endpoint(r.id, r.url, r.topics, r.created_at, r.disabled_at, r.secret[-4:])
            for r in rows
        ]


def _clean_webhook(url: str, topics: str) -> tuple[str, str]:
    url = url.strip()
    if not url.startswith(("http://", "https://")) or len(url) > 500:
        raise ServiceError("validation_failed", "Enter an http(s) address.", field="url")
    parts = [x.strip() for x in topics.replace(";", ",").split(",") if x.strip()]
    return url, ",".join(parts) or "*"


async def add_webhook(
    rt: Runtime, actor: Actor, program_id: int, *, url: str, topics: str
) -> tuple[int, str]:
    """A partner's endpoint with a new secret (shown once); audited ``webhook.create``."""
    actor.require(Perm.USERS_MANAGE)
    _check_program(actor, program_id)
    url, topics = _clean_webhook(url, topics)
    secret = "whsec_" + secrets.token_urlsafe(24)
    now = rt.now()
    async with rt.engine.begin() as conn:
        wid = int(
            (
                await conn.execute(
                    insert(we).returning(we.c.id),
                    {
                        "program_id": program_id,
                        "url": url,
                        "secret": secret,
                        "topics": topics,
                        "created_at": now,
                    },
                )
            ).scalar_one()
        )
        await audit.record(
            conn,
            actor,
            "webhook.create",
            "webhook",
            wid,
            at=now,
            program_id=program_id,
            after={"url": url, "topics": topics},
        )
    return wid, secret


async def rotate_secret(rt: Runtime, actor: Actor, program_id: int, webhook_id: int) -> str:
    """A new secret for the endpoint (shown once); audited ``webhook.rotate``."""
    actor.require(Perm.USERS_MANAGE)
    _check_program(actor, program_id)
    secret = "whsec_" + secrets.token_urlsafe(24)
    now = rt.now()
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            update(we)
            .where(we.c.id == webhook_id, we.c.program_id == program_id)
            .values(secret=secret)
        )
        if not res.rowcount:
            raise ServiceError("not_found", "No such webhook.")
        await audit.record(
            conn, actor, "webhook.rotate", "webhook", webhook_id, at=now, program_id=program_id
        )
    return secret


async def set_disabled(
    rt: Runtime, actor: Actor, program_id: int, webhook_id: int, disabled: bool
) -> None:
    """Switch an endpoint off (its events stop) or on; audited."""
    actor.require(Perm.USERS_MANAGE)
    _check_program(actor, program_id)
    now = rt.now()
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            update(we)
            .where(we.c.id == webhook_id, we.c.program_id == program_id)
            .values(disabled_at=now if disabled else None)
        )
        if not res.rowcount:
            raise ServiceError("not_found", "No such webhook.")
        await audit.record(
            conn,
            actor,
            "webhook.disable" if disabled else "webhook.enable",
            "webhook",
            webhook_id,
            at=now,
            program_id=program_id,
        )
