"""Points for more than purchases: welcome, a registered card, birthdays, surveys, reviews,
events sent by partner systems (docs/activities.md).

Each award is an ``activity_events`` row and an earn posting (a lot, an ``adjust``-like
``earn`` entry, the account's cached balance), written in one transaction with the
account row locked.

Guarantees:

1. Idempotent by key: the caller's ``idempotency_key`` (unique per program) names the
   award; the same key with the same account and activity answers the first award
   again; the same key with another account, activity or points is
   ``idempotency_conflict``.  A refused award writes nothing, so its key may be retried.
2. Limits are exact under concurrency: the events of the period are counted after the
   account row is locked (PostgreSQL ``FOR UPDATE``; SQLite serialises writers), so two
   awards of one account can never both see room for one more.
3. Periods are calendar periods in the program's time zone: ``day`` from midnight,
   ``week`` from Monday, ``month`` from the 1st, ``year`` from 1 January; ``ever`` has
   no start.

Refusals, in order of precedence: ``unknown_activity`` > ``validation_failed`` (points)
> ``customer_not_found`` > ``idempotency_conflict`` > ``activity_limit_reached``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

import orjson
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from kopilka.domain.ledger import EntryKind
from kopilka.domain.rules.compiler import CompiledProgram
from kopilka.services.errors import ServiceError
from kopilka.services.purchases import identifier_values, lot_dates
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.queries.accounts import Posting, load_account, load_by_identifier
from kopilka.store.raw import Row, Tx, UniqueViolation, cents, dec2, parse_ts, ts

CENT = Decimal("0.01")
Period = Literal["day", "week", "month", "year", "ever"]

STATUS = {
    "unknown_activity": 422,
    "activity_limit_reached": 422,
    "customer_not_found": 404,
    "program_not_found": 404,
    "partner_not_found": 404,
    "idempotency_conflict": 409,
}


class ActivityError(ServiceError):
    """A refused award; ``status`` from this module's table."""

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 422)


class ActivityRule(BaseModel):
    """What one activity gives.

    ``points``: the award when the caller names none.  ``limit`` awards per ``per``
    (None: no limit).  ``points_max``: the caller (a partner system) may name the points
    itself, up to this; None: the points are the rule's only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    points: Decimal = Field(gt=0, decimal_places=2)
    limit: int | None = Field(default=None, ge=1)
    per: Period = "ever"
    points_max: Decimal | None = Field(default=None, gt=0, decimal_places=2)


class ActivityRules(BaseModel):
    """Activity name -> its rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    activities: dict[str, ActivityRule]

    def rule(self, activity: str) -> ActivityRule:
        found = self.activities.get(activity)
        if found is None:
            known = ", ".join(sorted(self.activities))
            raise ActivityError(
                "unknown_activity", f"no rule for {activity!r} (known: {known})", field="activity"
            )
        return found


def rules_for(compiled: CompiledProgram) -> ActivityRules:
    """The program's activity rules: its document's ``activities``, or the defaults when
    the document names none (the events API still works; the automatic ones — welcome,
    birthday — are given only by programs that name them)."""
    if not compiled.doc.activities:
        return DEFAULT_RULES
    return ActivityRules(
        activities={
            name: ActivityRule(points=r.points, limit=r.limit, per=r.per, points_max=r.points_max)
            for name, r in compiled.doc.activities.items()
        }
    )


def _rule(points: int, limit: int | None = None, per: Period = "ever", **kw: int) -> ActivityRule:
    return ActivityRule(
        points=Decimal(points),
        limit=limit,
        per=per,
        points_max=Decimal(kw["points_max"]) if "points_max" in kw else None,
    )


DEFAULT_RULES = ActivityRules(
    activities={
        "welcome": _rule(100, 1, "ever"),
        "card_registered": _rule(50, 1, "ever"),
        "birthday": _rule(200, 1, "year"),
        "survey": _rule(20, 1, "day"),
        "profile_completed": _rule(50, 1, "ever"),
        "review": _rule(10, 3, "month"),
        "partner_event": _rule(10, points_max=1000),
        "referral_referrer": _rule(200),
        "referral_friend": _rule(100),
    }
)


# Activities whose award the customer hears about, and the outbox topic that says so.
NOTICE_TOPICS = {"birthday": "birthday", "welcome": "customer.welcome"}
INSERT_NOTICE = (
    "INSERT INTO outbox (program_id, topic, payload, created_at, attempts) VALUES (?, ?, ?, ?, 0)"
)


@dataclass(frozen=True, slots=True)
class Award:
    """An award as written (``replayed``: this call found it written by an earlier one)."""

    event_id: int
    account_id: int
    activity: str
    points: Decimal
    idempotency_key: str
    created_at: datetime
    replayed: bool = False


def period_start(per: Period, now: datetime, tz: ZoneInfo) -> datetime | None:
    """The start of the calendar period holding ``now`` in ``tz`` (None for ``ever``)."""
    local = now.astimezone(tz).date()
    if per == "ever":
        return None
    if per == "day":
        start = local
    elif per == "week":
        start = local - timedelta(days=local.weekday())
    elif per == "month":
        start = local.replace(day=1)
    else:
        start = local.replace(month=1, day=1)
    return datetime(start.year, start.month, start.day, tzinfo=tz)


def check_points(rule: ActivityRule, points: Decimal | None) -> Decimal:
    """The points to award: the rule's, or the caller's within ``points_max``."""
    if points is None:
        return rule.points.quantize(CENT)
    if rule.points_max is None:
        raise ActivityError(
            "validation_failed", "this activity's points are set by its rule", field="points"
        )
    if points <= 0 or points > rule.points_max or points != points.quantize(Decimal("0.01")):
        raise ActivityError(
            "validation_failed",
            f"points must be above 0 and at most {rule.points_max}, two decimals",
            field="points",
        )
    return points.quantize(CENT)


_SELECT_EVENT = (
    "SELECT id, account_id, activity, points, idempotency_key, created_at "
    "FROM activity_events WHERE program_id = ? AND idempotency_key = ?"
)
_COUNT_SINCE = (
    "SELECT count(*) FROM activity_events "
    "WHERE program_id = ? AND account_id = ? AND activity = ? AND created_at >= ?"
)
_COUNT_EVER = (
    "SELECT count(*) FROM activity_events WHERE program_id = ? AND account_id = ? AND activity = ?"
)
_INSERT_EVENT = (
    "INSERT INTO activity_events (program_id, account_id, activity, idempotency_key, points, "
    "partner_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"
)


def _replay(row: Row, *, account_id: int, activity: str, points: Decimal | None) -> Award:
    award = Award(
        int(row[0]),
        int(row[1]),
        str(row[2]),
        dec2(row[3]),
        str(row[4]),
        parse_ts(row[5]),  # type: ignore[arg-type]
        replayed=True,
    )
    if (
        award.account_id != account_id
        or award.activity != activity
        or (points is not None and points != award.points)
    ):
        raise ActivityError(
            "idempotency_conflict",
            f"key {award.idempotency_key!r} already gave {award.points} points for "
            f"{award.activity!r} to account {award.account_id}",
            field="idempotency_key",
        )
    return award


async def award_in(
    tx: Tx,
    *,
    program_id: int,
    account_id: int,
    activity: str,
    idempotency_key: str,
    points: Decimal,
    rule: ActivityRule,
    expires_at: datetime | None,
    tz: ZoneInfo,
    now: datetime,
    partner_id: int | None = None,
    explicit_points: bool = False,
) -> Award:
    """Award inside the caller's transaction; locks the account row until it ends.

    ``points`` is already checked (``check_points``); the lot activates at ``now`` and
    expires at ``expires_at``.  Raises ``UniqueViolation`` when a concurrent call with the
    same key but another account wrote first (the caller answers from that row).
    """
    acc = await load_account(tx, account_id, lock=True)
    if acc.program_id != program_id:
        raise ActivityError("customer_not_found", f"no account {account_id} in this program")
    prior = await tx.fetch(_SELECT_EVENT, program_id, idempotency_key)
    if prior:
        wanted = points if explicit_points else None
        return _replay(prior[0], account_id=account_id, activity=activity, points=wanted)
    if rule.limit is not None:
        since = period_start(rule.per, now, tz)
        if since is None:
            rows = await tx.fetch(_COUNT_EVER, program_id, account_id, activity)
        else:
            rows = await tx.fetch(_COUNT_SINCE, program_id, account_id, activity, ts(tx, since))
        if int(rows[0][0]) >= rule.limit:
            raise ActivityError(
                "activity_limit_reached",
                f"{activity!r} gives points at most {rule.limit} time(s) per {rule.per}",
                field="activity",
                limit=rule.limit,
                per=rule.per,
            )
    # Past this point the award must succeed: only writes follow.
    rows = await tx.fetch(
        _INSERT_EVENT,
        program_id,
        account_id,
        activity,
        idempotency_key,
        cents(points),
        partner_id,
        ts(tx, now),
    )
    posting = Posting(acc, now, funding_partner_id=partner_id, partner_id=partner_id)
    posting.credit(points, expires_at=expires_at, kind=EntryKind.EARN)
    await posting.flush(tx, note=f"activity {activity}"[:200])
    return Award(
        int(rows[0][0]), account_id, activity, points, idempotency_key, now.astimezone(UTC)
    )


async def do_award(
    rt: Runtime,
    *,
    program_id: int,
    account_id: int,
    activity: str,
    idempotency_key: str,
    points: Decimal | None = None,
    partner_id: int | None = None,
    rules: ActivityRules = DEFAULT_RULES,
) -> Award:
    """Give ``activity``'s points to the account once per ``idempotency_key``, within the
    rule's limit; one transaction.  See the module's guarantees and refusals."""
    rule = rules.rule(activity)
    amount = check_points(rule, points)
    if not idempotency_key or len(idempotency_key) > 128:
        raise ActivityError(
            "validation_failed", "idempotency_key: 1 to 128 characters", field="idempotency_key"
        )
    settings = await rt.program(program_id)
    now = rt.now()
    _, expires = lot_dates(now, settings)
    try:
        async with rt.hot.tx() as tx:
            award = await award_in(
                tx,
                program_id=program_id,
                account_id=account_id,
                activity=activity,
                idempotency_key=idempotency_key,
                points=amount,
                rule=rule,
                expires_at=expires,
                tz=ZoneInfo(settings.timezone),
                now=now,
                partner_id=partner_id,
                explicit_points=points is not None,
            )
            topic = NOTICE_TOPICS.get(activity)
            if topic is not None and not award.replayed:
                # the customer's message, in the award's transaction (docs/notifications.md)
                payload = orjson.dumps(
                    {"account_id": account_id, "points": f"{award.points:.2f}"}
                ).decode()
                await tx.execute(INSERT_NOTICE, program_id, topic, payload, ts(tx, now))
            return award
    except UniqueViolation:
        # Another account's award took the key between our check and our insert.
        async with rt.hot.read() as tx:
            prior = await tx.fetch(_SELECT_EVENT, program_id, idempotency_key)
        return _replay(prior[0], account_id=account_id, activity=activity, points=points)


async def do_award_customer(
    rt: Runtime,
    *,
    program_id: int,
    customer_id: int,
    activity: str,
    idempotency_key: str | None = None,
    rules: ActivityRules = DEFAULT_RULES,
) -> Award | None:
    """For hooks in other services (welcome after the phone is confirmed, a plastic card
    registered): award the customer's account, keyed ``<activity>:customer:<id>`` unless
    a key is given; None when the rule's limit is reached.  Call it after the caller's own
    transaction has committed (on SQLite a second writer would wait for it)."""
    account_id = await find_account(rt, program_id=program_id, customer_id=customer_id)
    try:
        return await do_award(
            rt,
            program_id=program_id,
            account_id=account_id,
            activity=activity,
            idempotency_key=idempotency_key or f"{activity}:customer:{customer_id}",
            rules=rules,
        )
    except ActivityError as exc:
        if exc.code == "activity_limit_reached":
            return None
        raise


# --- finding the member -----------------------------------------------------------------


async def program_id_of(rt: Runtime, code: str) -> int:
    from kopilka.services.setup import program_id

    async with rt.engine.connect() as conn:
        return await program_id(conn, code)


async def find_account(
    rt: Runtime,
    *,
    program_id: int,
    card: str | None = None,
    phone: str | None = None,
    customer_id: int | None = None,
) -> int:
    """The account of the customer named by exactly one of card number, phone or id."""
    if customer_id is not None:
        async with rt.engine.connect() as conn:
            acc = (
                await conn.execute(
                    select(t.accounts.c.id).where(
                        t.accounts.c.customer_id == customer_id,
                        t.accounts.c.program_id == program_id,
                    )
                )
            ).scalar_one_or_none()
        if acc is None:
            raise ActivityError(
                "customer_not_found", f"no customer {customer_id}", field="customer"
            )
        return int(acc)
    text = card if card is not None else phone
    if not text:
        raise ActivityError(
            "validation_failed", "name the customer by card, phone or id", field="customer"
        )
    async with rt.hot.read() as tx:
        state = await load_by_identifier(
            tx, program_id=program_id, values=identifier_values(text), lock=False
        )
    if state is None:
        raise ActivityError("customer_not_found", f"no customer {text!r}", field="customer")
    return state.id


# --- the birthday job ---------------------------------------------------------------------


def birthday_keys(today: date) -> list[str]:
    """``MM-DD`` of the birthdays celebrated ``today`` (29 February on 28 February when
    the year has no 29th)."""
    keys = [f"{today.month:02d}-{today.day:02d}"]
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        keys.append("02-29")
    return keys


async def do_birthday_points(
    rt: Runtime,
    now: datetime | None = None,
    *,
    rules: ActivityRules = DEFAULT_RULES,
    program_id: int | None = None,
) -> int:
    """Give the ``birthday`` activity to every active member whose birthday is today in
    the program's time zone; key ``birthday:<account>:<year>``, so a rerun (or a second
    process) gives nothing twice.  One short transaction per member.  Every program, or
    only ``program_id``.  Returns how many were given now."""
    now = now or rt.now()
    c, a = t.customers, t.accounts
    async with rt.engine.connect() as conn:
        q = select(t.programs.c.id).order_by(t.programs.c.id)
        if program_id is not None:
            q = q.where(t.programs.c.id == program_id)
        program_ids = (await conn.execute(q)).scalars().all()
        sqlite = conn.dialect.name == "sqlite"
    mmdd = func.strftime("%m-%d", c.c.birthday) if sqlite else func.to_char(c.c.birthday, "MM-DD")
    given = 0
    for pid in program_ids:
        settings = await rt.program(pid)
        today = now.astimezone(ZoneInfo(settings.timezone)).date()
        async with rt.engine.connect() as conn:
            accounts = (
                (
                    await conn.execute(
                        select(a.c.id)
                        .join(c, c.c.id == a.c.customer_id)
                        .where(
                            c.c.program_id == pid,
                            c.c.status == "active",
                            c.c.birthday.is_not(None),
                            mmdd.in_(birthday_keys(today)),
                        )
                        .order_by(a.c.id)
                    )
                )
                .scalars()
                .all()
            )
        for account_id in accounts:
            try:
                award = await do_award(
                    rt,
                    program_id=pid,
                    account_id=account_id,
                    activity="birthday",
                    idempotency_key=f"birthday:{account_id}:{today.year}",
                    rules=rules,
                )
            except ActivityError as exc:
                if exc.code != "activity_limit_reached":
                    raise
                continue
            given += not award.replayed
    return given
