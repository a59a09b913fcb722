"""Coupons: series of codes, a lookup at the till, and their life on a receipt.

What a coupon gives is a promotion of the rules engine whose condition names the
coupon's series (``when: {coupon: [SERIES]}``).  On a receipt a coupon is

- **held** at calculate (its use counted: ``uses < max_uses`` by a conditional update, so
  the same single-use coupon at two tills at once is taken once; the loser gets
  ``422 coupon_used``),
- **spent** at confirm, **released** at cancel or when the calculation's hold time runs
  out (the sweeper), **returned** at a full refund when its series says so.

A confirm after the coupon was released takes it again, or answers ``hold_expired`` when
another receipt has taken it meanwhile — as for points.

Only coupons that a promotion on the receipt used are held; the answer says of every
coupon presented whether it applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, literal, select, update

from kopilka.domain.coupons import display, is_well_formed, make_codes, normalise
from kopilka.domain.roles import Perm
from kopilka.domain.rules import model as m
from kopilka.domain.rules.compiler import CompiledProgram
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime, Terminal
from kopilka.services.setup import program_id
from kopilka.store import tables as t
from kopilka.store.raw import Tx, dec2, parse_ts, ts

IMPORTED_RE = re.compile(r"^[A-Z0-9]{4,64}$")
LOOKUP_FAILURES_PER_MINUTE = 20  # unknown codes per terminal: enumeration is impractical


@dataclass(frozen=True, slots=True)
class Coupon:
    id: int
    code: str
    customer_id: int | None
    uses: int
    status: str
    series: str
    max_uses: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    return_on_refund: bool


# --- series ----------------------------------------------------------------------------------


async def do_create_series(
    rt: Runtime,
    *,
    program_code: str,
    code: str,
    name: str,
    count: int = 0,
    codes: list[str] | None = None,
    max_uses: int | None = 1,
    bound_to: list[int] | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    return_on_refund: bool = True,
    seed: str | None = None,
    points: Decimal | None = None,
    actor: Actor | None = None,
) -> list[str]:
    """Create a series with ``count`` generated codes (reproducible with ``seed``, which is
    recorded) or the imported ``codes``; ``bound_to``: one coupon per customer id;
    ``points``: a points code (redeemed for points, not on a receipt).
    With ``actor`` (console, admin API) an audit row lands in the same transaction.
    Returns the codes (as printed: groups of four for generated ones)."""
    if not re.match(m.CODE_RE, code):
        raise ServiceError("validation_failed", "letters, digits, _ . - only", field="code")
    if max_uses is not None and max_uses < 1:
        raise ServiceError("validation_failed", "at least 1", field="max_uses")
    if valid_from and valid_until and valid_from >= valid_until:
        raise ServiceError("validation_failed", "must be after valid_from", field="valid_until")
    if codes is not None:
        made = [normalise(c) for c in codes]
        bad = next((c for c in made if not IMPORTED_RE.match(c)), None)
        if bad is not None:
            raise ServiceError(
                "validation_failed", f"not a code: {bad!r} (4-64 letters/digits)", field="codes"
            )
        if len(set(made)) != len(made):
            raise ServiceError("validation_failed", "a code repeats", field="codes")
    else:
        n = len(bound_to) if bound_to is not None else count
        if n < 1:
            raise ServiceError("validation_failed", "at least one code", field="count")
        made = list(make_codes(n, seed=seed))
    now = rt.now()
    async with rt.engine.begin() as conn:
        pid = await program_id(conn, program_code)
        series_id = (
            await conn.execute(
                insert(t.coupon_series).returning(t.coupon_series.c.id),
                {
                    "program_id": pid,
                    "code": code.upper(),
                    "name": name,
                    "max_uses": max_uses,
                    "bound": bound_to is not None,
                    "valid_from": valid_from,
                    "valid_until": valid_until,
                    "return_on_refund": return_on_refund,
                    "seed": seed,
                    "points": points,
                    "created_at": now,
                },
            )
        ).scalar_one()
        rows = [
            {
                "program_id": pid,
                "series_id": series_id,
                "code": c,
                "customer_id": bound_to[i] if bound_to is not None else None,
                "created_at": now,
            }
            for i, c in enumerate(made)
        ]
        for i in range(0, len(rows), 1000):
            await conn.execute(insert(t.coupons), rows[i : i + 1000])
        if actor is not None:
            await audit.record(
                conn,
                actor,
                "coupon_series.create",
                "coupon_series",
                code.upper(),
                at=now,
                program_id=pid,
                after={
                    "name": name,
                    "codes": len(made),
                    "max_uses": max_uses,
                    "valid_from": valid_from,
                    "valid_until": valid_until,
                    "points": points,
                    "return_on_refund": return_on_refund,
                },
            )
    return [display(c) if codes is None else c for c in made]


# --- at the till -------------------------------------------------------------------------------

SELECT_COUPONS = (
    "SELECT c.id, c.code, c.customer_id, c.uses, c.status, s.code, s.max_uses, "
    "s.valid_from, s.valid_until, s.return_on_refund "
    "FROM coupons c JOIN coupon_series s ON s.id = c.series_id "
    "WHERE c.program_id = ? AND c.code IN ({})"
)


async def load_coupons(tx: Tx, program_id: int, codes: list[str]) -> dict[str, Coupon]:
    rows = await tx.fetch(SELECT_COUPONS.format(", ".join("?" * len(codes))), program_id, *codes)
    out = {}
    for r in rows:
        out[r[1]] = Coupon(
            r[0],
            r[1],
            r[2],
            int(r[3]),
            r[4],
            r[5],
            r[6],
            parse_ts(r[7]),
            parse_ts(r[8]),
            bool(r[9]),
        )
    return out


def why_invalid(c: Coupon, *, customer_id: int | None, now: datetime) -> tuple[str, str] | None:
    """(code, detail) when the coupon cannot be used here and now; None when it can."""
    if c.status != "active":
        return "coupon_blocked", "the coupon is blocked"
    if c.valid_from is not None and now < c.valid_from:
        return "coupon_not_yet_valid", f"valid from {c.valid_from.isoformat()}"
    if c.valid_until is not None and now >= c.valid_until:
        return "coupon_expired", f"expired at {c.valid_until.isoformat()}"
    if c.customer_id is not None and c.customer_id != customer_id:
        return "coupon_not_for_customer", "the coupon belongs to another customer"
    if c.max_uses is not None and c.uses >= c.max_uses:
        return "coupon_used", "the coupon has been used"
    return None


async def check_coupons(
    tx: Tx, *, program_id: int, codes: tuple[str, ...], customer_id: int | None, now: datetime
) -> list[Coupon]:
    """The receipt's coupons, each valid here and now; refuses with the first problem,
    naming ``coupons[i]``."""
    wanted = [normalise(c) for c in codes]
    for i, c in enumerate(wanted):
        if wanted.index(c) != i:
            raise ServiceError("coupon_repeated", "the same coupon twice", field=f"coupons[{i}]")
    found = await load_coupons(tx, program_id, wanted)
    out: list[Coupon] = []
    for i, code in enumerate(wanted):
        coupon = found.get(code)
        if coupon is None:
            raise ServiceError("coupon_not_found", "no such coupon", field=f"coupons[{i}]")
        why = why_invalid(coupon, customer_id=customer_id, now=now)
        if why is not None:
            raise ServiceError(why[0], why[1], field=f"coupons[{i}]")
        out.append(coupon)
    return out


def coupon_series_used(compiled: CompiledProgram, applied: set[str]) -> tuple[set[str], bool]:
    """(series codes named by the applied promotions' coupon conditions, whether one of
    them takes any coupon)."""
    series: set[str] = set()
    anything = False
    for pid in applied:
        p = compiled.by_id.get(pid)
        for c in m.walk(p.source.when if p is not None else None):
            if c.coupon is True:
                anything = True
            elif isinstance(c.coupon, list):
                series.update(x.upper() for x in c.coupon)
    return series, anything


def used_coupons(
    compiled: CompiledProgram, coupons: list[Coupon], applied: set[str]
) -> list[Coupon]:
    """The coupons the receipt's promotions used (the others are left untouched)."""
    series, anything = coupon_series_used(compiled, applied)
    if anything:
        return list(coupons)
    return [c for c in coupons if c.series in series or c.code in series]


def coupons_view(presented: list[Coupon], used: list[Coupon]) -> list[dict[str, Any]]:
    taken = {c.id for c in used}
    return [
        {
            "code": display(c.code) if is_well_formed(c.code) else c.code,
            "series": c.series,
            "status": "applied" if c.id in taken else "not_applicable",
        }
        for c in presented
    ]


# The conditional update is the whole race guarantee: two tills taking the last use of a
# coupon both run it; the row lock makes the second see the first's count and match nothing.
TAKE = (
    "UPDATE coupons SET uses = uses + 1 WHERE id = ? AND status = 'active' "
    "AND uses < ? RETURNING id"
)
UNLIMITED_USES = 2**31 - 1


async def _take(tx: Tx, coupon_id: int, max_uses: int | None) -> bool:
    """Count one more use of the coupon if it has one left; False when it has not."""
    limit = UNLIMITED_USES if max_uses is None else max_uses
    return bool(await tx.fetch(TAKE, coupon_id, limit))


async def hold_coupons(
    tx: Tx,
    *,
    program_id: int,
    receipt_pk: int,
    account_id: int | None,
    coupons: list[Coupon],
    now: datetime,
    spent: bool,
) -> None:
    """Count the receipt's use of each coupon (held, or spent for a one-shot purchase).
    A coupon another till took first: ``coupon_used`` (the caller's transaction rolls back)."""
    for c in coupons:
        if not await _take(tx, c.id, c.max_uses):
            raise ServiceError(
                "coupon_used", "the coupon has just been used at another till", field="coupons"
            )
        await tx.execute(
            "INSERT INTO coupon_uses (program_id, coupon_id, receipt_pk, account_id, state, "
            "created_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            program_id,
            c.id,
            receipt_pk,
            account_id,
            "spent" if spent else "held",
            ts(tx, now),
            ts(tx, now) if spent else None,
        )


async def confirm_coupons(tx: Tx, *, receipt_pk: int, now: datetime) -> None:
    """Held -> spent.  A use released by the sweeper is taken again if it still can be."""
    released = await tx.fetch(
        "SELECT u.coupon_id, s.max_uses FROM coupon_uses u JOIN coupons c ON c.id = u.coupon_id "
        "JOIN coupon_series s ON s.id = c.series_id WHERE u.receipt_pk = ? AND u.state = ?",
        receipt_pk,
        "released",
    )
    for coupon_id, max_uses in released:
        if not await _take(tx, coupon_id, max_uses):
            raise ServiceError(
                "hold_expired",
                "the coupon's hold expired and another receipt has used it since; "
                "calculate again with a new receipt_id",
                field="receipt_id",
            )
    await tx.execute(
        "UPDATE coupon_uses SET state = 'spent', resolved_at = ? "
        "WHERE receipt_pk = ? AND state IN ('held', 'released')",
        ts(tx, now),
        receipt_pk,
    )


async def release_coupons(tx: Tx, *, receipt_pk: int, now: datetime) -> int:
    """Held -> released (cancel, expiry); the coupons can be used again."""
    rows = await tx.fetch(
        "UPDATE coupon_uses SET state = 'released', resolved_at = ? "
        "WHERE receipt_pk = ? AND state = 'held' RETURNING coupon_id",
        ts(tx, now),
        receipt_pk,
    )
    for (coupon_id,) in rows:
        await tx.execute("UPDATE coupons SET uses = uses - 1 WHERE id = ?", coupon_id)
    return len(rows)


async def return_coupons(tx: Tx, *, receipt_pk: int, now: datetime) -> int:
    """A fully refunded receipt gives back its coupons whose series says so."""
    rows = await tx.fetch(
        "SELECT u.id, u.coupon_id FROM coupon_uses u JOIN coupons c ON c.id = u.coupon_id "
        "JOIN coupon_series s ON s.id = c.series_id "
        "WHERE u.receipt_pk = ? AND u.state = 'spent' AND s.return_on_refund = ?",
        receipt_pk,
        True,
    )
    for use_id, coupon_id in rows:
        await tx.execute(
            "UPDATE coupon_uses SET state = 'returned', resolved_at = ? WHERE id = ?",
            ts(tx, now),
            use_id,
        )
        await tx.execute("UPDATE coupons SET uses = uses - 1 WHERE id = ?", coupon_id)
    return len(rows)


async def expire_coupon_holds(rt: Runtime) -> int:
    """Release the coupons of calculations left unconfirmed past their program's hold
    time (the coupon can be used again; a late confirm takes it back if it still can)."""
    from kopilka.store.raw import SATx

    now = rt.now()
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    t.coupon_uses.c.receipt_pk, t.receipts.c.program_id, t.coupon_uses.c.created_at
                )
                .join(t.receipts, t.receipts.c.id == t.coupon_uses.c.receipt_pk)
                .where(t.coupon_uses.c.state == "held", t.receipts.c.state == "calculated")
                .limit(1000)
            )
        ).all()
    done = 0
    for receipt_pk, pid, created_at in {(r[0], r[1], r[2]) for r in rows}:
        ttl = (await rt.compiled(pid)).settings.hold_ttl_s
        if created_at + timedelta(seconds=ttl) > now:
            continue
        async with rt.engine.begin() as conn:
            done += await release_coupons(SATx(conn), receipt_pk=receipt_pk, now=now)
    return done


async def check_lookup(rt: Runtime, term: Terminal, raw_code: str) -> dict[str, Any]:
    """``GET /coupons/{code}``: is this coupon valid here and now, and what does it give.

    Rate-limited per terminal: more than ``LOOKUP_FAILURES_PER_MINUTE`` unknown codes in a
    minute answer ``429 rate_limited``, so codes cannot be enumerated."""
    code = normalise(raw_code)
    now = rt.now()
    window = now.replace(second=0, microsecond=0)
    key = f"coupon-lookup:{term.id}"
    async with rt.hot.tx() as tx:
        rows = await tx.fetch(
            "SELECT count FROM rate_counters WHERE key = ? AND window_start = ?",
            key,
            ts(tx, window),
        )
        if rows and int(rows[0][0]) >= LOOKUP_FAILURES_PER_MINUTE:
            raise ServiceError(
                "rate_limited", "too many unknown coupon codes; wait a minute", field="code"
            )
        found = (await load_coupons(tx, term.program_id, [code])).get(code)
        if found is None:
            await tx.execute(
                "INSERT INTO rate_counters (key, window_start, count) VALUES (?, ?, 1) "
                "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + 1",
                key,
                ts(tx, window),
            )
    if found is None:
        raise ServiceError("coupon_not_found", "no such coupon", field="code")
    why = why_invalid(found, customer_id=found.customer_id, now=now)
    compiled = await rt.compiled(term.program_id)
    gives = [
        {"promotion": p.id, "name": p.name}
        for p in compiled.promotions
        if p.enabled and _names_series(p.source.when, found.series)
    ]
    return {
        "code": display(found.code) if is_well_formed(found.code) else found.code,
        "series": found.series,
        "valid": why is None,
        "reason": None if why is None else why[0],
        "detail": None if why is None else why[1],
        "bound_to_customer": found.customer_id is not None,
        "uses": found.uses,
        "max_uses": found.max_uses,
        "valid_from": None if found.valid_from is None else found.valid_from.isoformat(),
        "valid_until": None if found.valid_until is None else found.valid_until.isoformat(),
        "gives": gives,
    }


def _names_series(c: m.Condition | None, series: str) -> bool:
    return any(
        x.coupon is True or (isinstance(x.coupon, list) and series in {s.upper() for s in x.coupon})
        for x in m.walk(c)
    )


# --- a gift code from an SMS; a holiday surprise -------------------------------------------


async def do_redeem_points_code(
    rt: Runtime, term: Terminal, *, raw_code: str, identifier: str
) -> dict[str, Any]:
    """A member tells the cashier a code sent to him: a coupon of a series with ``points``
    credits them to his account, once per coupon use.  In one transaction: the coupon's use
    (conditional, so two tills cannot both credit it), the lot, the ledger entry."""
    from kopilka.services.purchases import identifier_values, lot_dates
    from kopilka.store.queries.accounts import Posting, load_by_identifier

    code = normalise(raw_code)
    now = rt.now()
    program = await rt.program(term.program_id)
    async with rt.hot.tx() as tx:
        account = await load_by_identifier(
            tx, program_id=term.program_id, values=identifier_values(identifier), lock=True
        )
        if account is None:
            raise ServiceError(
                "unknown_identifier", "no customer with this identifier", field="identifier"
            )
        rows = await tx.fetch(
            "SELECT s.points FROM coupons c JOIN coupon_series s ON s.id = c.series_id "
            "WHERE c.program_id = ? AND c.code = ?",
            term.program_id,
            code,
        )
        found = (await load_coupons(tx, term.program_id, [code])).get(code)
        if found is None or not rows or rows[0][0] is None:
            raise ServiceError("coupon_not_found", "no such points code", field="code")
        why = why_invalid(found, customer_id=account.customer_id, now=now)
        if why is not None:
            raise ServiceError(why[0], why[1], field="code")
        if not await _take(tx, found.id, found.max_uses):
            raise ServiceError("coupon_used", "the code has just been used", field="code")
        points = dec2(rows[0][0])
        await tx.execute(
            "INSERT INTO coupon_uses (program_id, coupon_id, receipt_pk, account_id, state, "
            "created_at, resolved_at) VALUES (?, ?, NULL, ?, 'redeemed', ?, ?)",
            term.program_id,
            found.id,
            account.id,
            ts(tx, now),
            ts(tx, now),
        )
        posting = Posting(
            account, now, funding_partner_id=term.partner_id, partner_id=term.partner_id
        )
        posting.credit(points, expires_at=lot_dates(now, program)[1])
        await posting.flush(tx, note=f"points code {found.series}")
    return {"code": display(code) if is_well_formed(code) else code, "points": str(points)}


async def do_surprise(
    rt: Runtime,
    *,
    program_code: str,
    code: str,
    name: str,
    count: int,
    seed: str,
    valid_until: datetime | None = None,
) -> list[tuple[int, str]]:
    """A holiday surprise: one single-use coupon for each of ``count`` members drawn at
    random with ``seed`` (recorded on the series, so the sample can be drawn again and
    checked): the members are ordered by id and sampled with ``random.Random(seed)``.
    Returns (customer id, code) for the message to send."""
    import random

    async with rt.engine.connect() as conn:
        pid = await program_id(conn, program_code)
        members = list(
            (
                await conn.execute(
                    select(t.customers.c.id)
                    .where(t.customers.c.program_id == pid, t.customers.c.status == "active")
                    .order_by(t.customers.c.id)
                )
            ).scalars()
        )
    chosen = sorted(random.Random(seed).sample(members, min(count, len(members))))
    codes = await do_create_series(
        rt,
        program_code=program_code,
        code=code,
        name=name,
        bound_to=chosen,
        valid_until=valid_until,
        seed=seed,
    )
    return list(zip(chosen, codes, strict=True))


# --- the console and the admin API: lists, states, blocking, exports ---------------------
#
# A coupon's state as people see it, in the order ``why_invalid`` refuses: ``blocked``
# (its status), ``expired`` (its series' end passed), ``used`` (no use left), else
# ``active``.  "Not yet valid" coupons count as active: they will be.

COUPON_STATES = ("active", "used", "expired", "blocked")
SERIES_SORTS = ("code", "name", "created_at", "issued", "used", "expired", "blocked")
CODE_SORTS = ("code", "state", "uses", "created_at")


@dataclass(frozen=True, slots=True)
class SeriesRow:
    id: int
    code: str
    name: str
    max_uses: int | None
    bound: bool
    valid_from: datetime | None
    valid_until: datetime | None
    return_on_refund: bool
    points: Decimal | None
    seed: str | None
    created_at: datetime
    issued: int
    used: int
    expired: int
    blocked: int

    @property
    def active(self) -> int:
        return self.issued - self.used - self.expired - self.blocked


@dataclass(frozen=True, slots=True)
class CodeRow:
    id: int
    code: str  # as printed
    state: str
    uses: int
    max_uses: int | None
    customer_id: int | None
    created_at: datetime


class CouponAdminError(ServiceError):
    @property
    def status(self) -> int:
        return {"coupon_series_not_found": 404, "coupon_not_found": 404}.get(self.code, 422)


def _series_expired(valid_until: datetime | None, now: datetime) -> bool:
    return valid_until is not None and valid_until <= now


def code_state(
    status: str, uses: int, *, max_uses: int | None, valid_until: datetime | None, now: datetime
) -> str:
    """A coupon's state as people see it (see above)."""
    if status != "active":
        return "blocked"
    if _series_expired(valid_until, now):
        return "expired"
    if max_uses is not None and uses >= max_uses:
        return "used"
    return "active"


_S = t.coupon_series.c
_C = t.coupons.c
_SERIES_COLUMNS = (
    _S.id,
    _S.code,
    _S.name,
    _S.max_uses,
    _S.bound,
    _S.valid_from,
    _S.valid_until,
    _S.return_on_refund,
    _S.points,
    _S.seed,
    _S.created_at,
)


async def _with_counts(conn: Any, rows: list[Any], now: datetime) -> list[SeriesRow]:
    """The series with their codes counted by state.  A series' end and uses limit are
    the same for all its codes, so the database only groups codes by (status, uses) —
    a handful of groups — and the states are told here."""
    counts: dict[int, dict[str, int]] = {r.id: {} for r in rows}
    if rows:
        groups = await conn.execute(
            select(_C.series_id, _C.status, _C.uses, func.count().label("n"))
            .where(_C.series_id.in_(list(counts)))
            .group_by(_C.series_id, _C.status, _C.uses)
        )
        by_id = {r.id: r for r in rows}
        for g in groups.all():
            sr = by_id[g.series_id]
            state = code_state(
                g.status, int(g.uses), max_uses=sr.max_uses, valid_until=sr.valid_until, now=now
            )
            counts[g.series_id][state] = counts[g.series_id].get(state, 0) + int(g.n)
    return [
        SeriesRow(
            r.id,
            r.code,
            r.name,
            r.max_uses,
            bool(r.bound),
            r.valid_from,
            r.valid_until,
            bool(r.return_on_refund),
            r.points,
            r.seed,
            r.created_at,
            sum(counts[r.id].values()),
            counts[r.id].get("used", 0),
            counts[r.id].get("expired", 0),
            counts[r.id].get("blocked", 0),
        )
        for r in rows
    ]


# Sorting by a count needs every series' counts; by a column, only the page's.
_COUNT_SORTS = ("issued", "used", "expired", "blocked")


async def list_series(
    rt: Runtime,
    *,
    program_id: int,
    offset: int = 0,
    limit: int = 50,
    sort: str = "created_at",
    descending: bool = True,
) -> tuple[list[SeriesRow], int]:
    """A page of the program's coupon series with the count of codes in each state, and
    how many series there are."""
    sort = sort if sort in SERIES_SORTS else "created_at"
    now = rt.now()
    q = select(*_SERIES_COLUMNS).where(_S.program_id == program_id)
    async with rt.engine.connect() as conn:
        total = (
            await conn.execute(
                select(func.count()).select_from(t.coupon_series).where(_S.program_id == program_id)
            )
        ).scalar_one()
        if sort in _COUNT_SORTS:
            every = await _with_counts(conn, list((await conn.execute(q)).all()), now)
            every.sort(key=lambda x: (getattr(x, sort), x.id), reverse=descending)
            return every[offset : offset + limit], int(total)
        col = q.selected_columns[sort]
        rows = (
            await conn.execute(
                q.order_by(col.desc() if descending else col.asc(), _S.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
        return await _with_counts(conn, list(rows), now), int(total)


async def series_by_code(rt: Runtime, *, program_id: int, code: str) -> SeriesRow:
    """One series with its counts; ``coupon_series_not_found`` (404)."""
    q = select(*_SERIES_COLUMNS).where(_S.program_id == program_id, _S.code == code.upper())
    async with rt.engine.connect() as conn:
        r = (await conn.execute(q)).first()
        if r is None:
            raise CouponAdminError(
                "coupon_series_not_found", f"no coupon series {code!r}", field="series"
            )
        return (await _with_counts(conn, [r], rt.now()))[0]


def _codes_query(series: SeriesRow, state: str, now: datetime) -> Any:
    """A series' codes (in ``state``: its condition on the stored columns, the series'
    end and uses limit being constants)."""
    q = select(_C.id, _C.code, _C.status, _C.uses, _C.customer_id, _C.created_at).where(
        _C.series_id == series.id
    )
    expired = _series_expired(series.valid_until, now)
    live = _C.status == "active"
    if state == "blocked":
        q = q.where(_C.status != "active")
    elif state == "expired":
        q = q.where(live) if expired else q.where(literal(False))
    elif state in ("used", "active"):
        if expired:
            q = q.where(literal(False))
        elif series.max_uses is None:
            q = q.where(live) if state == "active" else q.where(literal(False))
        elif state == "used":
            q = q.where(live, _C.uses >= series.max_uses)
        else:
            q = q.where(live, _C.uses < series.max_uses)
    return q


def _code_row(r: Any, series: SeriesRow, now: datetime) -> CodeRow:
    shown = display(r.code) if is_well_formed(r.code) else r.code
    state = code_state(
        r.status, int(r.uses), max_uses=series.max_uses, valid_until=series.valid_until, now=now
    )
    return CodeRow(r.id, shown, state, int(r.uses), series.max_uses, r.customer_id, r.created_at)


_CODE_ORDER = {"code": (_C.code,), "state": (_C.status, _C.uses), "uses": (_C.uses,)}


async def list_codes(
    rt: Runtime,
    *,
    program_id: int,
    series: str,
    state: str = "",
    offset: int = 0,
    limit: int = 50,
    sort: str = "code",
    descending: bool = False,
) -> tuple[list[CodeRow], int]:
    """A page of a series' codes (``state``: one of ``COUPON_STATES`` or all)."""
    found = await series_by_code(rt, program_id=program_id, code=series)
    now = rt.now()
    q = _codes_query(found, state, now)
    cols = _CODE_ORDER.get(sort, (_C.id,))  # created_at: the order of creation
    order = [c.desc() if descending else c.asc() for c in cols]
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
        rows = (await conn.execute(q.order_by(*order, _C.id).offset(offset).limit(limit))).all()
    return [_code_row(r, found, now) for r in rows], int(total)


def codes_table(rt: Runtime, *, program_id: int, series: SeriesRow, state: str = "") -> Any:
    """The series' codes for an export (``exports.Table``), read in chunks by id."""
    from kopilka.services import exports

    now = rt.now()
    base = _codes_query(series, state, now)

    async def fetch(after: int | None, size: int) -> list[Any]:
        q = base if after is None else base.where(_C.id > after)
        async with rt.engine.connect() as conn:
            return list((await conn.execute(q.order_by(_C.id).limit(size))).all())

    async def rows() -> Any:
        async for r in exports.chunked(fetch, key=lambda r: r[0]):
            x = _code_row(r, series, now)
            yield (x.code, series.code, x.state, x.uses, x.max_uses, x.customer_id, x.created_at)

    return exports.Table(
        series.code,
        ("code", "series", "state", "uses", "max_uses", "customer_id", "created_at"),
        rows(),
    )


async def do_set_coupon_status(
    rt: Runtime,
    actor: Actor,
    *,
    program_id: int,
    code: str,
    blocked: bool,
    reason: str | None = None,
) -> CodeRow:
    """Block (or unblock) one coupon: the till refuses it (``coupon_blocked``) from now
    on; a receipt already holding it can still be confirmed.  Idempotent; audited."""
    actor.require(Perm.MECHANICS_WRITE)
    wanted = "blocked" if blocked else "active"
    stored = normalise(code)
    now = rt.now()
    c = t.coupons.c
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(c.id, c.status, t.coupon_series.c.code.label("series"))
                .join(t.coupon_series, t.coupon_series.c.id == c.series_id)
                .where(c.program_id == program_id, c.code == stored)
            )
        ).first()
        if row is None:
            raise CouponAdminError("coupon_not_found", "no such coupon", field="code")
        if row.status != wanted:
            await conn.execute(update(t.coupons).where(c.id == row.id).values(status=wanted))
            await audit.record(
                conn,
                actor,
                "coupon.block" if blocked else "coupon.unblock",
                "coupon",
                stored,
                at=now,
                program_id=program_id,
                reason=reason,
                before={"status": row.status, "series": row.series},
                after={"status": wanted, "series": row.series},
            )
    found = await series_by_code(rt, program_id=program_id, code=row.series)
    return await _code_by_id(rt, found, row.id)


async def _code_by_id(rt: Runtime, series: SeriesRow, coupon_id: int) -> CodeRow:
    async with rt.engine.connect() as conn:
        r = (await conn.execute(_codes_query(series, "", rt.now()).where(_C.id == coupon_id))).one()
    return _code_row(r, series, rt.now())


async def do_set_series_status(
    rt: Runtime,
    actor: Actor,
    *,
    program_id: int,
    series: str,
    blocked: bool,
    reason: str | None = None,
) -> int:
    """Block (or unblock) every code of a series in one statement; returns how many codes
    changed.  One audit row for the series (with the count)."""

    actor.require(Perm.MECHANICS_WRITE)
    found = await series_by_code(rt, program_id=program_id, code=series)
    wanted, other = ("blocked", "active") if blocked else ("active", "blocked")
    now = rt.now()
    c = t.coupons.c
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            update(t.coupons)
            .where(c.program_id == program_id, c.series_id == found.id, c.status == other)
            .values(status=wanted)
        )
        changed = int(res.rowcount or 0)
        await audit.record(
            conn,
            actor,
            "coupon_series.block" if blocked else "coupon_series.unblock",
            "coupon_series",
            found.code,
            at=now,
            program_id=program_id,
            reason=reason,
            before={"blocked": found.blocked, "issued": found.issued},
            after={"changed": changed, "status": wanted},
        )
    return changed
