"""Referrals: a member's invite code, a friend registering with it, and points for both
after the friend's first confirmed purchase (docs/activities.md).

Guarantees:

1. A member has one invite code, made on first request: 8 characters from an alphabet
   without look-alikes (no 0/O, 1/I/L), unique per program.
2. A friend is referred at most once (a unique key on the friend).  Refusals, in order of
   precedence: ``unknown_invite_code`` > ``customer_not_found`` > ``self_referral``
   (the friend's own code, or a friend who invited the referrer) > ``same_phone`` >
   ``already_referred`` > ``not_a_new_member`` (the friend has bought before) >
   ``referral_limit_reached`` (the referrer's cap per calendar month, counted with the
   referrer's account row locked, so it is exact under concurrency).  A refusal writes
   nothing.
3. The reward is given once: the referral moves ``pending`` -> ``rewarded`` by a
   conditional update, and both awards are activities with the keys
   ``referral:<id>:referrer`` and ``referral:<id>:friend``.

Locks: the friend's account, then the referral row, then the referrer's account (the
order a till's confirm already holds the friend's account in).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from kopilka.domain.program import ProgramSettings
from kopilka.services.activities import (
    DEFAULT_RULES,
    ActivityError,
    ActivityRules,
    award_in,
    check_points,
    period_start,
    rules_for,
)
from kopilka.services.errors import ServiceError
from kopilka.services.phones import to_e164
from kopilka.services.purchases import lot_dates
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.queries.accounts import load_account
from kopilka.store.raw import Row, Tx, UniqueViolation, parse_ts, ts

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
REFERRER_CAP_PER_MONTH = 10

STATUS = {
    "unknown_invite_code": 404,
    "customer_not_found": 404,
    "self_referral": 422,
    "same_phone": 422,
    "same_device": 422,
    "already_referred": 409,
    "not_a_new_member": 422,
    "referral_limit_reached": 422,
}


class ReferralError(ServiceError):
    """A refused referral; ``status`` from this module's table."""

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 422)


@dataclass(frozen=True, slots=True)
class Referral:
    id: int
    referrer_customer_id: int
    friend_customer_id: int
    state: str  # pending | rewarded | rejected
    created_at: datetime
    resolved_at: datetime | None


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """The code as a member typed it: case, spaces and dashes do not matter."""
    return "".join(ch for ch in text.upper() if ch not in " -")


async def invite_code_for(rt: Runtime, customer_id: int) -> str:
    """The customer's invite code, made on first request (also when two requests race)."""
    ic = t.invite_codes
    for _ in range(10):
        async with rt.engine.begin() as conn:
            code = (
                await conn.execute(select(ic.c.code).where(ic.c.customer_id == customer_id))
            ).scalar_one_or_none()
            if code is not None:
                return str(code)
            program_id = (
                await conn.execute(
                    select(t.customers.c.program_id).where(t.customers.c.id == customer_id)
                )
            ).scalar_one_or_none()
            if program_id is None:
                raise ReferralError("customer_not_found", f"no customer {customer_id}")
            code = new_code()
            try:
                await conn.execute(
                    insert(ic), {"program_id": program_id, "code": code, "customer_id": customer_id}
                )
            except IntegrityError:  # the code is taken, or a racing call made one
                continue
        return code
    raise AssertionError("could not make a unique invite code in 10 attempts")


# --- registering -------------------------------------------------------------------------

_REF = (
    "SELECT id, referrer_customer_id, friend_customer_id, state, created_at, resolved_at "
    "FROM referrals "
)
_CUSTOMER = (
    "SELECT c.id, c.phone, a.id, c.device_id FROM customers c "
    "JOIN accounts a ON a.customer_id = c.id WHERE c.program_id = ? AND c.id = ?"
)
# Another friend of the same referrer registered from this device: a farm.
_DEVICE_USED = (
    "SELECT 1 FROM referrals r JOIN customers c ON c.id = r.friend_customer_id "
    "WHERE r.program_id = ? AND r.referrer_customer_id = ? AND c.device_id = ?"
)
_HAS_BOUGHT = (
    "SELECT 1 FROM receipts WHERE program_id = ? AND account_id = ? AND state = 'confirmed' LIMIT 1"
)
_COUNT_SINCE = (
    "SELECT count(*) FROM referrals WHERE program_id = ? AND referrer_customer_id = ? "
    "AND state <> 'rejected' AND created_at >= ?"
)
_INSERT = (
    "INSERT INTO referrals (program_id, referrer_customer_id, friend_customer_id, state, "
    "created_at) VALUES (?, ?, ?, 'pending', ?) RETURNING id"
)


def _same_phone(a: str | None, b: str | None) -> bool:
    """The same number, however written (+7 903..., 8 903...)."""
    if not a or not b:
        return False
    return (to_e164(a) or a) == (to_e164(b) or b)


def _referral(r: Row) -> Referral:
    return Referral(int(r[0]), int(r[1]), int(r[2]), str(r[3]), parse_ts(r[4]), parse_ts(r[5]))  # type: ignore[arg-type]


async def do_register_referral(
    rt: Runtime,
    *,
    program_id: int,
    friend_customer_id: int,
    invite_code: str,
    cap_per_month: int = REFERRER_CAP_PER_MONTH,
) -> Referral:
    """Store a pending referral of the friend by the code's owner; one transaction, the
    referrer's account row locked.  See the module's refusals."""
    settings = await rt.program(program_id)
    now = rt.now()
    try:
        async with rt.hot.tx() as tx:
            return await _register_in(
                tx,
                program_id=program_id,
                friend_customer_id=friend_customer_id,
                code=normalise_code(invite_code),
                cap_per_month=cap_per_month,
                tz=ZoneInfo(settings.timezone),
                now=now,
            )
    except UniqueViolation:
        raise ReferralError(
            "already_referred", "this friend was referred already", field="customer"
        ) from None


async def _register_in(
    tx: Tx,
    *,
    program_id: int,
    friend_customer_id: int,
    code: str,
    cap_per_month: int,
    tz: ZoneInfo,
    now: datetime,
) -> Referral:
    rows = await tx.fetch(
        "SELECT customer_id FROM invite_codes WHERE program_id = ? AND code = ?", program_id, code
    )
    if not rows:
        raise ReferralError("unknown_invite_code", f"no invite code {code!r}", field="invite_code")
    referrer_id = int(rows[0][0])
    friend = await tx.fetch(_CUSTOMER, program_id, friend_customer_id)
    referrer = await tx.fetch(_CUSTOMER, program_id, referrer_id)
    if not friend or not referrer:
        raise ReferralError("customer_not_found", f"no customer {friend_customer_id}")
    circular = await tx.fetch(
        _REF + "WHERE program_id = ? AND friend_customer_id = ? AND referrer_customer_id = ?",
        program_id,
        referrer_id,
        friend_customer_id,
    )
    if referrer_id == friend_customer_id or circular:
        raise ReferralError("self_referral", "a member cannot refer himself", field="invite_code")
    if _same_phone(friend[0][1], referrer[0][1]):
        raise ReferralError("same_phone", "the friend has the referrer's phone", field="customer")
    device = friend[0][3]
    if device is not None and (
        device == referrer[0][3] or await tx.fetch(_DEVICE_USED, program_id, referrer_id, device)
    ):
        raise ReferralError(
            "same_device",
            "the friend registered from the referrer's device, or one another friend used",
            field="customer",
        )
    # The referrer's account lock serialises his referrals: the cap is counted exactly.
    await load_account(tx, int(referrer[0][2]), lock=True)
    if await tx.fetch(_REF + "WHERE friend_customer_id = ?", friend_customer_id):
        raise ReferralError(
            "already_referred", "this friend was referred already", field="customer"
        )
    if await tx.fetch(_HAS_BOUGHT, program_id, int(friend[0][2])):
        raise ReferralError(
            "not_a_new_member", "the friend has bought before being referred", field="customer"
        )
    since = period_start("month", now, tz)
    n = int((await tx.fetch(_COUNT_SINCE, program_id, referrer_id, ts(tx, since)))[0][0])
    if n >= cap_per_month:
        raise ReferralError(
            "referral_limit_reached",
            f"a member may refer at most {cap_per_month} friends a month",
            field="invite_code",
        )
    ref_id = (await tx.fetch(_INSERT, program_id, referrer_id, friend_customer_id, ts(tx, now)))[0][
        0
    ]
    return _referral((await tx.fetch(_REF + "WHERE id = ?", ref_id))[0])


# --- rewarding ---------------------------------------------------------------------------


async def reward_referral_in(
    tx: Tx,
    *,
    program_id: int,
    friend_customer_id: int,
    settings: ProgramSettings,
    now: datetime,
    rules: ActivityRules = DEFAULT_RULES,
) -> Referral | None:
    """Inside the caller's transaction, after the friend's confirmed purchase: reward a
    pending referral of the friend (``referral_referrer`` and ``referral_friend``
    activities).  None when there is nothing to reward (no referral, rewarded already,
    or the friend has no confirmed purchase yet: the call is safe at any time).

    Locks the friend's account, the referral row, then the referrer's account.  Never
    refuses: an award over its activity's limit is skipped, the other still given.
    """
    friend = await tx.fetch(_CUSTOMER, program_id, friend_customer_id)
    if not friend:
        return None
    await load_account(tx, int(friend[0][2]), lock=True)
    if not await tx.fetch(_HAS_BOUGHT, program_id, int(friend[0][2])):
        return None  # not yet: the reward waits for a confirmed purchase
    rows = await tx.fetch(
        "UPDATE referrals SET state = 'rewarded', resolved_at = ? "
        "WHERE program_id = ? AND friend_customer_id = ? AND state = 'pending' RETURNING id",
        ts(tx, now),
        program_id,
        friend_customer_id,
    )
    if not rows:
        return None
    referral = _referral((await tx.fetch(_REF + "WHERE id = ?", rows[0][0]))[0])
    referrer = await tx.fetch(_CUSTOMER, program_id, referral.referrer_customer_id)
    _, expires = lot_dates(now, settings)
    for side, account_id in (("referrer", int(referrer[0][2])), ("friend", int(friend[0][2]))):
        activity = f"referral_{side}"
        rule = rules.rule(activity)
        try:
            await award_in(
                tx,
                program_id=program_id,
                account_id=account_id,
                activity=activity,
                idempotency_key=f"referral:{referral.id}:{side}",
                points=check_points(rule, None),
                rule=rule,
                expires_at=expires,
                tz=ZoneInfo(settings.timezone),
                now=now,
            )
        except ActivityError as exc:  # over the activity's limit: written nothing
            if exc.code != "activity_limit_reached":
                raise
    return referral


async def do_reward_after_purchase(
    rt: Runtime,
    *,
    program_id: int,
    friend_customer_id: int,
    rules: ActivityRules = DEFAULT_RULES,
) -> Referral | None:
    """``reward_referral_in`` in its own transaction: call it after the friend's purchase
    is confirmed (committed).  Idempotent: only the first call rewards.  A customer with
    no pending referral costs one indexed read and no transaction."""
    async with rt.hot.read() as tx:
        pending = await tx.fetch(
            "SELECT 1 FROM referrals WHERE friend_customer_id = ? AND state = 'pending'",
            friend_customer_id,
        )
    if not pending:
        return None
    settings = await rt.program(program_id)
    async with rt.hot.tx() as tx:
        return await reward_referral_in(
            tx,
            program_id=program_id,
            friend_customer_id=friend_customer_id,
            settings=settings,
            now=rt.now(),
            rules=rules,
        )


async def reward_pending_referrals(
    rt: Runtime, *, rules: ActivityRules | None = None, limit: int = 1000
) -> int:
    """The job: reward every pending referral whose friend has a confirmed purchase (a
    catch-up for confirms that did not call ``do_reward_after_purchase``).  Returns how
    many were rewarded."""
    r, rc = t.referrals, t.receipts
    bought = (
        select(rc.c.id)
        .join(t.accounts, t.accounts.c.id == rc.c.account_id)
        .where(
            rc.c.state == "confirmed",
            rc.c.program_id == r.c.program_id,
            t.accounts.c.customer_id == r.c.friend_customer_id,
        )
        .exists()
    )
    async with rt.engine.connect() as conn:
        due = (
            await conn.execute(
                select(r.c.program_id, r.c.friend_customer_id)
                .where(r.c.state == "pending", bought)
                .order_by(r.c.id)
                .limit(limit)
            )
        ).all()
    done = 0
    for row in due:
        # each program's own referral rules (its document's activities), unless given
        program_rules = rules or rules_for(await rt.compiled(row.program_id))
        got = await do_reward_after_purchase(
            rt,
            program_id=row.program_id,
            friend_customer_id=row.friend_customer_id,
            rules=program_rules,
        )
        done += got is not None
    return done


async def referral_of(rt: Runtime, friend_customer_id: int) -> Referral | None:
    async with rt.hot.read() as tx:
        rows = await tx.fetch(_REF + "WHERE friend_customer_id = ?", friend_customer_id)
    return _referral(rows[0]) if rows else None
