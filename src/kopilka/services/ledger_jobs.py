"""Time-driven ledger work: release expired holds, expire points, verify the ledger.

Each job works in small batches, one short transaction per account (the account row
locked as at the till), so it can run while tills are busy and in several processes at
once: a hold or lot another process resolved first is simply found resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.ledger import ZERO, EntryKind, HoldState, plan_expire
from kopilka.services.purchases import release_hold
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.queries.accounts import Posting, load_account
from kopilka.store.raw import SATx

BATCH = 200


async def expire_holds(rt: Runtime, *, limit: int = 10_000) -> int:
    """Release every active hold whose time has run out.  Returns how many."""
    h = t.holds
    done = 0
    while done < limit:
        now = rt.now()
        async with rt.engine.connect() as conn:
            due = (
                await conn.execute(
                    select(h.c.id, h.c.receipt_pk, h.c.account_id)
                    .where(
                        h.c.state == HoldState.ACTIVE.value,
                        h.c.expires_at <= now,
                        # a reward order's hold is resolved by rewards.cancel_stale_orders
                        h.c.receipt_pk.is_not(None),
                    )
                    .order_by(h.c.expires_at)
                    .limit(BATCH)
                )
            ).all()
        if not due:
            break
        for hold in due:
            async with rt.engine.begin() as conn:
                partner = (
                    await conn.execute(
                        select(t.receipts.c.partner_id).where(t.receipts.c.id == hold.receipt_pk)
                    )
                ).scalar_one_or_none()
                amount = await release_hold(
                    SATx(conn),
                    receipt_pk=hold.receipt_pk,
                    account_id=hold.account_id,
                    partner_id=partner,
                    now=now,
                    kind=HoldState.EXPIRED,
                )
                if amount:
                    done += 1
        if len(due) < BATCH:
            break
    return done


async def expire_points(rt: Runtime) -> tuple[int, Decimal]:
    """Points whose expiry day has come leave by an ``expire`` entry.

    Accounts with an active hold are left for the next run: their held points must stay
    burnable until the hold resolves (ledger guarantee 6).  Returns (lots, points).
    """
    lt = t.lots
    now = rt.now()
    async with rt.engine.connect() as conn:
        accounts = (
            (
                await conn.execute(
                    select(lt.c.account_id)
                    .where(lt.c.expires_at <= now, lt.c.remaining > 0)
                    .distinct()
                )
            )
            .scalars()
            .all()
        )
    n_lots = 0
    total = ZERO
    for account_id in accounts:
        async with rt.engine.begin() as conn:
            acc = await load_account(SATx(conn), account_id, lock=True)
            if acc.held > 0:
                continue
            takes = plan_expire(acc.lots, now=now)
            if not takes:
                continue
            posting = Posting(acc, now)
            posting.take(takes, EntryKind.EXPIRE)
            await posting.flush(SATx(conn))
            n_lots += len(takes)
            total += sum((x.amount for x in takes), ZERO)
    return n_lots, total


@dataclass(frozen=True)
class Discrepancy:
    account_id: int
    what: str
    cached: Decimal
    recomputed: Decimal


async def verify_ledger(rt: Runtime) -> list[Discrepancy]:
    """Recompute every account from its entries, lots and holds; list what disagrees.

    Checks: balance == sum(entries.amount) == sum(lots.remaining) - debt;
    held == sum(entries.held_delta) == sum(active holds); no lot remaining < 0 or above
    its amount; debt >= 0; every entry written since migration 0024 that touches a lot
    carries that lot's funder (ADR 0024); no receipt, line, lot, hold or entry names a
    program, partner, store, terminal, account or receipt that does not exist (the
    references PostgreSQL does not enforce, ADR 0036).
    """
    le, lt, h, a = t.ledger_entries, t.lots, t.holds, t.accounts
    async with rt.engine.connect() as conn:
        entries = {
            r.account_id: (r.s, r.hd)
            for r in (
                await conn.execute(
                    select(
                        le.c.account_id,
                        func.coalesce(func.sum(le.c.amount), 0).label("s"),
                        func.coalesce(func.sum(le.c.held_delta), 0).label("hd"),
                    ).group_by(le.c.account_id)
                )
            ).all()
        }
        lots = {
            r.account_id: r.s
            for r in (
                await conn.execute(
                    select(
                        lt.c.account_id, func.coalesce(func.sum(lt.c.remaining), 0).label("s")
                    ).group_by(lt.c.account_id)
                )
            ).all()
        }
        bad_lots = (
            await conn.execute(
                select(lt.c.id, lt.c.account_id, lt.c.remaining, lt.c.amount).where(
                    (lt.c.remaining < 0) | (lt.c.remaining > lt.c.amount)
                )
            )
        ).all()
        holds = {
            r.account_id: r.s
            for r in (
                await conn.execute(
                    select(h.c.account_id, func.sum(h.c.amount).label("s"))
                    .where(h.c.state == HoldState.ACTIVE.value)
                    .group_by(h.c.account_id)
                )
            ).all()
        }
        accounts = (await conn.execute(select(a.c.id, a.c.balance, a.c.held, a.c.debt))).all()
        mark = (
            await conn.execute(
                select(t.ledger_marks.c.entry_id).where(
                    t.ledger_marks.c.name == "coalition_funders"
                )
            )
        ).scalar()
        funder_lt = lt.alias("fl")
        wrong_funder = (
            await conn.execute(
                select(
                    le.c.id,
                    le.c.account_id,
                    le.c.funding_partner_id,
                    funder_lt.c.id.label("lot"),
                    funder_lt.c.funding_partner_id.label("lot_funder"),
                )
                .join(funder_lt, funder_lt.c.id == le.c.lot_id)
                .where(
                    le.c.id > (mark or 0),
                    le.c.funding_partner_id.is_distinct_from(funder_lt.c.funding_partner_id),
                )
            )
        ).all()
        orphans = await _orphans(conn)

    def minor(x: Decimal | None) -> Decimal:  # sums keep the Money type: Decimal or None
        return ZERO if x is None else Decimal(x)

    out: list[Discrepancy] = []
    for acc in accounts:
        s, hd = entries.get(acc.id, (0, 0))
        checks = [
            ("balance vs entries", acc.balance, minor(s)),
            ("balance vs lots - debt", acc.balance, minor(lots.get(acc.id)) - acc.debt),
            ("held vs entries", acc.held, minor(hd)),
            ("held vs active holds", acc.held, minor(holds.get(acc.id))),
        ]
        out += [Discrepancy(acc.id, w, c, rc) for w, c, rc in checks if c != rc]
        if acc.debt < 0 or acc.held < 0:
            out.append(Discrepancy(acc.id, "negative debt or held", acc.debt, acc.held))
    out += [
        Discrepancy(x.account_id, f"lot {x.id} remaining out of range", x.remaining, x.amount)
        for x in bad_lots
    ]
    # The partner ids as the figures (0: the program): "cached" the entry's funder,
    # "recomputed" its lot's.
    out += [
        Discrepancy(
            x.account_id,
            f"entry {x.id} funder is not its lot {x.lot}'s",
            Decimal(x.funding_partner_id or 0),
            Decimal(x.lot_funder or 0),
        )
        for x in wrong_funder
    ]
    return out + orphans


async def _orphans(conn: AsyncConnection) -> list[Discrepancy]:
    """Rows whose parent is missing, per reference in ``PG_UNENFORCED_FOREIGN_KEYS``
    (up to 100 missing parents each): "cached" how many rows name it, "recomputed" 0."""
    out: list[Discrepancy] = []
    for table, column, parent in t.PG_UNENFORCED_FOREIGN_KEYS.values():
        rows = await conn.execute(
            text(
                f"SELECT c.{column}, count(*) FROM {table} c WHERE c.{column} IS NOT NULL "
                f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.id = c.{column}) "
                f"GROUP BY c.{column} ORDER BY c.{column} LIMIT 100"
            )
        )
        out += [
            Discrepancy(
                int(missing) if column == "account_id" else 0,
                f"{table}.{column} names {parent} {missing}, which does not exist",
                Decimal(n),
                ZERO,
            )
            for missing, n in rows.all()
        ]
    return out
