"""Prize draws: create, commit to a seed, run after the period, publish, verify.

Life of a draw: ``open`` (created; rules may be read by anyone) → ``committed`` (a
random seed is stored and only its hash is shown; allowed until the period ends) →
``drawn`` (after the period: entries, winners, prizes credited, seed revealed).

``do_run`` does all of its writes in **one** transaction: the state change to ``drawn``
is the idempotency claim (``UPDATE ... WHERE state = 'committed'``), the entries, the
winners, the points credited to winners (the same ledger posting as ``do_adjust``, inside
this transaction so that prizes are credited exactly once), one ``draw.won`` outbox row
per winner and the result.  Running it again returns the same record and writes nothing.

The selection itself is ``kopilka.domain.draws`` (algorithm ``kopilka-draw-v1``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain import draws as d
from kopilka.domain.identifiers import mask_card
from kopilka.domain.money import fmt2
from kopilka.domain.roles import mask_name
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.purchases import lot_dates
from kopilka.services.runtime import Runtime
from kopilka.services.setup import program_id as program_id_of
from kopilka.store import tables as t
from kopilka.store.queries.accounts import Posting, load_account
from kopilka.store.raw import SATx


@dataclass(frozen=True, slots=True)
class Draw:
    id: int
    program_id: int
    program_code: str
    code: str
    name: str
    period_start: datetime
    period_end: datetime
    rules: d.DrawRules
    seed_hash: str | None
    seed: str | None
    state: str
    result: dict[str, Any] | None
    drawn_at: datetime | None


# --- create and commit ----------------------------------------------------------------------


async def do_create_draw(
    rt: Runtime,
    *,
    program_code: str,
    code: str,
    name: str,
    period_start: datetime,
    period_end: datetime,
    rules: Mapping[str, Any] | d.DrawRules,
    actor: Actor | None = None,
) -> int:
    """A new draw in state ``open``; the rules are validated here, not when drawing."""
    parsed = rules if isinstance(rules, d.DrawRules) else _parse_rules(rules)
    if period_start.tzinfo is None or period_end.tzinfo is None:
        raise ServiceError("validation_failed", "period times need a UTC offset", field="period")
    if period_end <= period_start:
        raise ServiceError("validation_failed", "the period ends before it starts", field="to")
    async with rt.engine.begin() as conn:
        program_id = await program_id_of(conn, program_code)
        taken = (
            await conn.execute(
                select(t.draws.c.id).where(
                    t.draws.c.program_id == program_id, t.draws.c.code == code
                )
            )
        ).first()
        if taken is not None:
            raise ServiceError("draw_exists", f"draw {code!r} exists already", field="code")
        new_id: int = (
            await conn.execute(
                insert(t.draws).returning(t.draws.c.id),
                {
                    "program_id": program_id,
                    "code": code,
                    "name": name,
                    "period_start": period_start,
                    "period_end": period_end,
                    "rules": orjson.dumps(d.rules_to_dict(parsed)).decode(),
                    "state": "open",
                    "created_at": rt.now(),
                },
            )
        ).scalar_one()
        if actor is not None:
            await audit.record(
                conn,
                actor,
                "draw.create",
                "draw",
                code,
                at=rt.now(),
                program_id=program_id,
                after={
                    "name": name,
                    "period_start": period_start,
                    "period_end": period_end,
                    "rules": d.rules_to_dict(parsed),
                },
            )
    return new_id


def _parse_rules(rules: Mapping[str, Any]) -> d.DrawRules:
    try:
        return d.rules_from_dict(rules)
    except d.InvalidRules as exc:
        raise ServiceError("validation_failed", str(exc), field="rules") from None


async def do_commit(
    rt: Runtime, code: str, *, program_code: str | None = None, actor: Actor | None = None
) -> str:
    """Store a fresh random seed and return only its hash.  Committing twice returns the
    same hash; refused once the period has ended (the seed must be fixed before anyone
    can know the ticket list).  Locks the draw row."""
    now = rt.now()
    async with rt.engine.begin() as conn:
        draw = await _load(conn, code, program_code, lock=True)
        if draw.state != "open":
            assert draw.seed_hash is not None
            return draw.seed_hash
        if now >= draw.period_end:
            raise ServiceError(
                "draw_period_ended",
                f"draw {code!r}: the period ended at {draw.period_end.isoformat()}; "
                "a seed committed now would not be verifiably fair",
            )
        seed = secrets.token_hex(32)
        seed_hash = d.commitment(seed)
        res = await conn.execute(
            update(t.draws)
            .where(t.draws.c.id == draw.id, t.draws.c.state == "open")
            .values(seed=seed, seed_hash=seed_hash, state="committed")
        )
        if res.rowcount != 1:
            raise ServiceError("draw_busy", f"draw {code!r} changed meanwhile; try again")
        if actor is not None:
            await audit.record(
                conn,
                actor,
                "draw.commit",
                "draw",
                code,
                at=now,
                program_id=draw.program_id,
                before={"state": "open"},
                after={"state": "committed", "seed_hash": seed_hash},
            )
    return seed_hash


# --- run --------------------------------------------------------------------------------


async def do_run(
    rt: Runtime, code: str, *, program_code: str | None = None, actor: Actor | None = None
) -> dict[str, Any]:
    """Draw the winners once the period has ended; returns the public record.

    Idempotent: a drawn draw is returned as it is.  Locks the draw row (PostgreSQL) and
    claims it by its state change, so two concurrent runs draw once.
    """
    now = rt.now()
    async with rt.engine.connect() as conn:
        program_id = (await _load(conn, code, program_code, lock=False)).program_id
    # Read before the transaction: on SQLite the engine has one connection.
    _, expires = lot_dates(now, await rt.program(program_id))
    async with rt.engine.begin() as conn:
        draw = await _load(conn, code, program_code, lock=True)
        if draw.state == "drawn":
            return await _record(conn, draw)
        if draw.state != "committed" or draw.seed is None:
            raise ServiceError("draw_not_committed", f"draw {code!r} has no committed seed")
        if now < draw.period_end:
            raise ServiceError(
                "draw_period_not_ended",
                f"draw {code!r}: the period ends at {draw.period_end.isoformat()}",
            )
        claimed = await conn.execute(
            update(t.draws)
            .where(t.draws.c.id == draw.id, t.draws.c.state == "committed")
            .values(state="drawn", drawn_at=now)
        )
        if claimed.rowcount != 1:
            raise ServiceError("draw_busy", f"draw {code!r} is being drawn; try again")
        # Past this point the draw must succeed: only reads of the period and writes follow.
        tickets = d.tickets_for(await _paid_receipts(conn, draw), draw.rules)
        winners = d.select_winners(draw.seed, tickets, draw.rules)
        await _write_entries(conn, draw, tickets, winners)
        await _credit_prizes(conn, draw, winners, now=now, expires_at=expires)
        await _notify(conn, draw, winners, now=now)
        result = {
            "algorithm": d.ALGORITHM,
            "tickets_digest": d.tickets_digest(tickets),
            "members": len(tickets),
            "tickets": sum(n for _, n in tickets),
            "seed": draw.seed,
            "winners": [_winner_json(w.place, w.account_id, w.prize) for w in winners],
        }
        await conn.execute(
            update(t.draws)
            .where(t.draws.c.id == draw.id)
            .values(result=orjson.dumps(result).decode())
        )
        if actor is not None:
            await audit.record(
                conn,
                actor,
                "draw.run",
                "draw",
                code,
                at=now,
                program_id=draw.program_id,
                before={"state": "committed"},
                after={
                    "state": "drawn",
                    "members": result["members"],
                    "tickets": result["tickets"],
                    "winners": len(winners),
                },
            )
        drawn = await _load(conn, code, draw.program_code, lock=False)
        return await _record(conn, drawn)


# --- scheduled ---------------------------------------------------------------------------

DRAW_GRACE = timedelta(hours=1)  # offline tills' receipts of the period arrive by batch


async def run_due(
    rt: Runtime, *, grace: timedelta = DRAW_GRACE, program_id: int | None = None
) -> tuple[int, int]:
    """The worker's draw job: commit a seed for every open draw whose period has begun
    (the hash is then fixed before anyone can know the tickets), and run every committed
    draw whose period ended at least ``grace`` ago (receipts of the period made offline
    arrive later through the batch call).  Returns (committed, drawn).  Both steps are the
    same idempotent calls an operator makes, so a worker racing an operator, or another
    worker, commits and draws once."""
    now = rt.now()
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(t.draws.c.code, t.programs.c.code.label("program"), t.draws.c.state)
                .join(t.programs, t.programs.c.id == t.draws.c.program_id)
                .where(
                    (
                        (t.draws.c.state == "open")
                        & (t.draws.c.period_start <= now)
                        & (t.draws.c.period_end > now)
                    )
                    | ((t.draws.c.state == "committed") & (t.draws.c.period_end <= now - grace))
                )
                .where(true() if program_id is None else t.draws.c.program_id == program_id)
                .order_by(t.draws.c.id)
            )
        ).all()
    committed = drawn = 0
    for r in rows:
        try:
            if r.state == "open":
                await do_commit(rt, r.code, program_code=r.program)
                committed += 1
            else:
                await do_run(rt, r.code, program_code=r.program)
                drawn += 1
        except ServiceError as exc:  # busy: another worker or an operator has it
            if exc.code not in ("draw_busy", "draw_period_ended"):
                raise
    return committed, drawn


async def _paid_receipts(conn: AsyncConnection, draw: Draw) -> list[d.PaidReceipt]:
    """Confirmed member receipts that occurred in ``[period_start, period_end)``, with the
    bonus tickets their promotions gave."""
    r = t.receipts.c
    rp = t.receipt_promotions.c
    bonus = (
        select(func.coalesce(func.sum(rp.tickets), 0))
        .where(rp.receipt_pk == r.id)
        .scalar_subquery()
    )
    rows = await conn.execute(
        select(r.account_id, r.to_pay, bonus).where(
            r.program_id == draw.program_id,
            r.state == "confirmed",
            r.account_id.is_not(None),
            r.occurred_at >= draw.period_start,
            r.occurred_at < draw.period_end,
        )
    )
    return [d.PaidReceipt(int(a), Decimal(p), int(b or 0)) for a, p, b in rows.all()]


async def _write_entries(
    conn: AsyncConnection,
    draw: Draw,
    tickets: list[tuple[int, int]],
    winners: list[d.Winner],
) -> None:
    if tickets:
        await conn.execute(
            insert(t.draw_entries),
            [{"draw_id": draw.id, "account_id": a, "tickets": n} for a, n in tickets],
        )
    if winners:
        await conn.execute(
            insert(t.draw_winners),
            [
                {
                    "draw_id": draw.id,
                    "place": w.place,
                    "account_id": w.account_id,
                    "prize": w.prize.name[:200],
                    "points": w.prize.points,
                }
                for w in winners
            ],
        )


async def _credit_prizes(
    conn: AsyncConnection,
    draw: Draw,
    winners: list[d.Winner],
    *,
    now: datetime,
    expires_at: datetime | None,
) -> None:
    """Points prizes as ``adjust`` entries (as ``do_adjust`` credits them), in the caller's
    transaction, so a prize is credited exactly when the draw is recorded."""
    tx = SATx(conn)
    for w in winners:
        if w.prize.points is None:
            continue
        acc = await load_account(tx, w.account_id, lock=True)
        posting = Posting(acc, now)
        posting.credit(w.prize.points, expires_at=expires_at)
        await posting.flush(tx, note=f"draw {draw.code} place {w.place}"[:200])


async def _notify(
    conn: AsyncConnection, draw: Draw, winners: list[d.Winner], *, now: datetime
) -> None:
    """One ``draw.won`` outbox row per winner, delivered after commit by the outbox."""
    if not winners:
        return
    await conn.execute(
        insert(t.outbox),
        [
            {
                "program_id": draw.program_id,
                "topic": "draw.won",
                "created_at": now,
                "payload": orjson.dumps(
                    {"draw": draw.code, "name": draw.name}
                    | _winner_json(w.place, w.account_id, w.prize)
                ).decode(),
            }
            for w in winners
        ],
    )


def _winner_json(place: int, account_id: int, prize: d.Prize) -> dict[str, Any]:
    return {
        "place": place,
        "account_id": account_id,
        "prize": prize.name,
        "points": None if prize.points is None else fmt2(prize.points),
        "goods": prize.goods,
    }


# --- publish and verify -------------------------------------------------------------------


async def publish(rt: Runtime, code: str, *, program_code: str | None = None) -> dict[str, Any]:
    """The public record: before the draw the rules and the seed hash only; after it also
    the seed, the ticket list with its digest and the winners (``verify_published``)."""
    async with rt.engine.connect() as conn:
        draw = await _load(conn, code, program_code, lock=False)
        return await _record(conn, draw)


def verify_published(record: Mapping[str, Any]) -> bool:
    """Rerun the draw from a published record (see ``domain.draws.verify_record``)."""
    ok, _ = d.verify_record(record)
    return ok


async def _record(conn: AsyncConnection, draw: Draw) -> dict[str, Any]:
    out: dict[str, Any] = {
        "algorithm": d.ALGORITHM,
        "program": draw.program_code,
        "draw": draw.code,
        "name": draw.name,
        "period_start": draw.period_start.isoformat(),
        "period_end": draw.period_end.isoformat(),
        "rules": d.rules_to_dict(draw.rules),
        "state": draw.state,
        "seed_hash": draw.seed_hash,
        "seed": None,
    }
    if draw.state != "drawn" or draw.result is None:
        return out
    e = t.draw_entries.c
    rows = await conn.execute(
        select(e.account_id, e.tickets).where(e.draw_id == draw.id).order_by(e.account_id)
    )
    tickets = [{"account_id": int(a), "tickets": int(n)} for a, n in rows.all()]
    out |= {
        "seed": draw.seed,
        "drawn_at": None if draw.drawn_at is None else draw.drawn_at.isoformat(),
        "tickets_digest": draw.result["tickets_digest"],
        "tickets": tickets,
        "winners": draw.result["winners"],
    }
    return out


async def _load(conn: AsyncConnection, code: str, program_code: str | None, *, lock: bool) -> Draw:
    """The draw by its code (and program, when codes repeat across programs)."""
    dr, pr = t.draws.c, t.programs.c
    q = (
        select(t.draws, pr.code.label("program_code"))
        .join(t.programs, pr.id == dr.program_id)
        .where(dr.code == code)
    )
    if program_code is not None:
        q = q.where(pr.code == program_code)
    if lock:
        q = q.with_for_update(of=t.draws)
    rows = (await conn.execute(q)).mappings().all()
    if not rows:
        raise ServiceError("draw_not_found", f"no draw {code!r}")
    if len(rows) > 1:
        raise ServiceError("ambiguous_draw", f"draw {code!r} exists in several programs")
    m = rows[0]
    return Draw(
        id=m["id"],
        program_id=m["program_id"],
        program_code=m["program_code"],
        code=m["code"],
        name=m["name"],
        period_start=m["period_start"],
        period_end=m["period_end"],
        rules=d.rules_from_dict(orjson.loads(m["rules"])),
        seed_hash=m["seed_hash"],
        seed=m["seed"],
        state=m["state"],
        result=None if m["result"] is None else orjson.loads(m["result"]),
        drawn_at=m["drawn_at"],
    )


# --- the console and the admin API: lists, entries, winners ---------------------------------

DRAW_SORTS = ("code", "name", "period_start", "period_end", "state", "created_at")


@dataclass(frozen=True, slots=True)
class DrawRow:
    id: int
    code: str
    name: str
    period_start: datetime
    period_end: datetime
    state: str
    seed_hash: str | None
    drawn_at: datetime | None
    created_at: datetime
    members: int  # entries written when drawn
    tickets: int
    winners: int


@dataclass(frozen=True, slots=True)
class WinnerRow:
    place: int
    account_id: int
    customer_id: int | None
    first_name: str
    last_name: str
    card: str | None
    prize: str
    points: Decimal | None


async def list_draws(
    rt: Runtime,
    *,
    program_id: int,
    offset: int = 0,
    limit: int = 50,
    sort: str = "period_end",
    descending: bool = True,
) -> tuple[list[DrawRow], int]:
    """A page of the program's draws with their entries (members, tickets) and winners."""
    dr, e, w = t.draws.c, t.draw_entries.c, t.draw_winners.c
    entries = (
        select(
            e.draw_id,
            func.count().label("members"),
            func.sum(e.tickets).label("tickets"),
        )
        .group_by(e.draw_id)
        .subquery()
    )
    wins = select(w.draw_id, func.count().label("winners")).group_by(w.draw_id).subquery()
    q = (
        select(
            dr.id,
            dr.code,
            dr.name,
            dr.period_start,
            dr.period_end,
            dr.state,
            dr.seed_hash,
            dr.drawn_at,
            dr.created_at,
            func.coalesce(entries.c.members, 0).label("members"),
            func.coalesce(entries.c.tickets, 0).label("tickets"),
            func.coalesce(wins.c.winners, 0).label("winners"),
        )
        .select_from(
            t.draws.outerjoin(entries, entries.c.draw_id == dr.id).outerjoin(
                wins, wins.c.draw_id == dr.id
            )
        )
        .where(dr.program_id == program_id)
    )
    sort = sort if sort in DRAW_SORTS else "period_end"
    col = q.selected_columns[sort]
    async with rt.engine.connect() as conn:
        total = (
            await conn.execute(
                select(func.count()).select_from(t.draws).where(dr.program_id == program_id)
            )
        ).scalar_one()
        rows = (
            await conn.execute(
                q.order_by(col.desc() if descending else col.asc(), dr.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
    return [
        DrawRow(
            r.id,
            r.code,
            r.name,
            r.period_start,
            r.period_end,
            r.state,
            r.seed_hash,
            r.drawn_at,
            r.created_at,
            int(r.members),
            int(r.tickets),
            int(r.winners),
        )
        for r in rows
    ], int(total)


async def draw_of(rt: Runtime, *, program_code: str, code: str) -> Draw:
    async with rt.engine.connect() as conn:
        return await _load(conn, code, program_code, lock=False)


async def tickets_so_far(rt: Runtime, draw: Draw) -> tuple[int, int]:
    """(members, tickets) the period's receipts give until now: what a run would count.
    After the draw, the recorded entries."""
    async with rt.engine.connect() as conn:
        if draw.state == "drawn":
            e = t.draw_entries.c
            r = (
                await conn.execute(
                    select(func.count(), func.coalesce(func.sum(e.tickets), 0)).where(
                        e.draw_id == draw.id
                    )
                )
            ).one()
            return int(r[0]), int(r[1])
        tickets = d.tickets_for(await _paid_receipts(conn, draw), draw.rules)
    return len(tickets), sum(n for _, n in tickets)


def _winners_query(draw_id: int) -> Any:
    w, a, c, k = t.draw_winners.c, t.accounts.c, t.customers.c, t.cards.c
    first_card = (
        select(func.min(k.number))
        .where(k.account_id == w.account_id, k.status == "active")
        .scalar_subquery()
    )
    return (
        select(
            w.place,
            w.account_id,
            a.customer_id,
            c.first_name,
            c.last_name,
            first_card.label("card"),
            w.prize,
            w.points,
        )
        .select_from(
            t.draw_winners.outerjoin(t.accounts, a.id == w.account_id).outerjoin(
                t.customers, c.id == a.customer_id
            )
        )
        .where(w.draw_id == draw_id)
        .order_by(w.place)
    )


def _winner_row(r: Any) -> WinnerRow:
    return WinnerRow(
        int(r.place),
        int(r.account_id),
        r.customer_id,
        r.first_name or "",
        r.last_name or "",
        r.card,
        r.prize,
        None if r.points is None else Decimal(r.points),
    )


async def list_winners(rt: Runtime, draw: Draw) -> list[WinnerRow]:
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(_winners_query(draw.id))).all()
    return [_winner_row(r) for r in rows]


def winners_table(rt: Runtime, draw: Draw) -> Any:
    """The winners for an export (``exports.Table``): place, customer, card, prize."""
    from kopilka.services import exports

    async def rows() -> Any:
        for x in await list_winners(rt, draw):
            yield (
                x.place,
                x.customer_id,
                x.account_id,
                mask_name(x.first_name, x.last_name),
                None if x.card is None else mask_card(x.card),
                x.prize,
                x.points,
            )

    return exports.Table(
        draw.code,
        ("place", "customer_id", "account_id", "name", "card", "prize", "points"),
        rows(),
    )
