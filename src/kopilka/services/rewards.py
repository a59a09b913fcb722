"""The rewards catalogue: items priced in points, with an optional stock (docs/activities.md).

An order holds the price (a ``holds`` row with ``reward_order_id``, a ``hold`` entry),
issuing burns the held points (like a receipt's confirm), cancelling releases them and
returns the item to stock.

Guarantees:

1. Stock never goes below zero: it is taken by ``UPDATE ... SET stock = stock - 1 WHERE
   stock > 0``; of two orders for the last item exactly one wins, the other is
   ``out_of_stock`` and writes nothing.
2. An order resolves once: ``ordered`` -> ``issued`` (hold confirmed, points burned) or
   ``ordered`` -> ``cancelled`` (hold released, stock back).  Repeating the same
   resolution answers the order again; the other one is refused.
3. Idempotent by key: the same ``idempotency_key`` with the same account and reward
   answers the first order; with another account or reward it is
   ``idempotency_conflict``.

Locks: every writing call locks the account row first, then the reward row (stock), so
two calls never wait for each other in opposite orders.

Refusals of an order, in order of precedence: ``reward_not_found`` >
``idempotency_conflict`` > ``out_of_stock`` > ``insufficient_points``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select, update

from kopilka.domain.ledger import (
    EntryKind,
    HoldState,
    InsufficientPoints,
    balance_at,
    burn_cap,
    has_restricted,
    plan_burn,
)
from kopilka.domain.roles import Perm
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.queries.accounts import AccountState, Posting, held_at, load_account
from kopilka.store.raw import Row, Tx, UniqueViolation, cents, dec2, parse_ts, ts

ORDER_HOLD_TTL = timedelta(days=30)

STATUS = {
    "reward_not_found": 404,
    "order_not_found": 404,
    "out_of_stock": 409,
    "insufficient_points": 422,
    "order_issued": 409,
    "order_cancelled": 409,
    "idempotency_conflict": 409,
    "reward_exists": 409,
}


class RewardError(ServiceError):
    """A refusal of the catalogue; ``status`` from this module's table."""

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 422)


@dataclass(frozen=True, slots=True)
class Reward:
    id: int
    code: str
    name: str
    price_points: Decimal
    stock: int | None  # None: unlimited
    active: bool


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    reward_code: str
    reward_name: str
    account_id: int
    points: Decimal
    state: str  # ordered | issued | cancelled
    hold_id: int | None
    idempotency_key: str | None
    created_at: datetime
    resolved_at: datetime | None
    replayed: bool = False


# --- the catalogue ------------------------------------------------------------------------


def _check_reward(name: str, price_points: Decimal, stock: int | None) -> None:
    if not name.strip():
        raise RewardError("validation_failed", "give the reward a name", field="name")
    if price_points <= 0 or price_points != price_points.quantize(Decimal("0.01")):
        raise RewardError(
            "validation_failed", "the price is above 0 points, two decimals", field="price_points"
        )
    if stock is not None and stock < 0:
        raise RewardError(
            "validation_failed", "stock is 0 or more (none: unlimited)", field="stock"
        )


async def do_add_reward(
    rt: Runtime,
    *,
    program_id: int,
    code: str,
    name: str,
    price_points: Decimal,
    stock: int | None = None,
    active: bool = True,
    actor: Actor | None = None,
) -> int:
    """Add an item to the catalogue; returns its id."""
    _check_reward(name, price_points, stock)
    if not code.strip() or len(code) > 64:
        raise RewardError("validation_failed", "code: 1 to 64 characters", field="code")
    async with rt.engine.begin() as conn:
        exists = (
            await conn.execute(
                select(t.rewards.c.id).where(
                    t.rewards.c.program_id == program_id, t.rewards.c.code == code
                )
            )
        ).first()
        if exists is not None:
            raise RewardError("reward_exists", f"reward {code!r} exists", field="code")
        rid = (
            await conn.execute(
                insert(t.rewards).returning(t.rewards.c.id),
                {
                    "program_id": program_id,
                    "code": code,
                    "name": name.strip(),
                    "price_points": price_points,
                    "stock": stock,
                    "active": active,
                    "created_at": rt.now(),
                },
            )
        ).scalar_one()
        if actor is not None:
            await audit.record(
                conn,
                actor,
                "reward.create",
                "reward",
                code,
                at=rt.now(),
                program_id=program_id,
                after={
                    "name": name,
                    "price_points": price_points,
                    "stock": stock,
                    "active": active,
                },
            )
    return int(rid)


async def do_update_reward(
    rt: Runtime,
    *,
    program_id: int,
    code: str,
    name: str | None = None,
    price_points: Decimal | None = None,
    stock: int | None = None,
    unlimited: bool = False,
    active: bool | None = None,
    actor: Actor | None = None,
) -> Reward:
    """Change an item: name, price (new orders only), stock (set, or ``unlimited``),
    active.  Items are never deleted: orders refer to them; deactivate instead."""
    current = await reward_by_code(rt, program_id=program_id, code=code)
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = name.strip()
    if price_points is not None:
        values["price_points"] = price_points
    if stock is not None or unlimited:
        values["stock"] = None if unlimited else stock
    if active is not None:
        values["active"] = active
    _check_reward(
        str(values.get("name", current.name)),
        price_points if price_points is not None else current.price_points,
        stock,
    )
    if values:
        async with rt.engine.begin() as conn:
            await conn.execute(update(t.rewards).where(t.rewards.c.id == current.id).values(values))
            if actor is not None:
                await audit.record(
                    conn,
                    actor,
                    "reward.update",
                    "reward",
                    code,
                    at=rt.now(),
                    program_id=program_id,
                    before={k: getattr(current, k) for k in values},
                    after=values,
                )
    return await reward_by_code(rt, program_id=program_id, code=code)


def _reward(r: Row, *, raw: bool = False) -> Reward:
    """A reward from a SQLAlchemy row (``Money`` is a Decimal) or a raw one (hundredths)."""
    return Reward(
        int(r[0]),
        str(r[1]),
        str(r[2]),
        dec2(r[3]) if raw else Decimal(r[3]),
        None if r[4] is None else int(r[4]),
        bool(r[5]),
    )


_R = t.rewards.c
_REWARD_COLUMNS = (_R.id, _R.code, _R.name, _R.price_points, _R.stock, _R.active)


async def reward_by_code(rt: Runtime, *, program_id: int, code: str) -> Reward:
    async with rt.engine.connect() as conn:
        r = (
            await conn.execute(
                select(*_REWARD_COLUMNS).where(_R.program_id == program_id, _R.code == code)
            )
        ).first()
    if r is None:
        raise RewardError("reward_not_found", f"no reward {code!r}", field="reward_code")
    return _reward(r)


async def list_rewards(rt: Runtime, *, program_id: int, active_only: bool = False) -> list[Reward]:
    q = select(*_REWARD_COLUMNS).where(_R.program_id == program_id).order_by(_R.code)
    if active_only:
        q = q.where(_R.active.is_(True))
    async with rt.engine.connect() as conn:
        return [_reward(r) for r in (await conn.execute(q)).all()]


# --- orders ---------------------------------------------------------------------------------

_ORDER = (
    "SELECT o.id, r.code, r.name, o.account_id, o.points, o.state, o.hold_id, "
    "o.idempotency_key, o.created_at, o.resolved_at, o.reward_id "
    "FROM reward_orders o JOIN rewards r ON r.id = o.reward_id "
)
_ORDER_BY_KEY = _ORDER + "WHERE o.program_id = ? AND o.idempotency_key = ?"
_ORDER_BY_ID = _ORDER + "WHERE o.id = ?"
_REWARD_BY_CODE = (
    "SELECT id, code, name, price_points, stock, active FROM rewards "
    "WHERE program_id = ? AND code = ?"
)
_TAKE_STOCK = "UPDATE rewards SET stock = stock - 1 WHERE id = ? AND stock > 0 RETURNING id"
_RETURN_STOCK = "UPDATE rewards SET stock = stock + 1 WHERE id = ? AND stock IS NOT NULL"
_INSERT_ORDER = (
    "INSERT INTO reward_orders (program_id, reward_id, account_id, points, state, "
    "idempotency_key, created_at) VALUES (?, ?, ?, ?, 'ordered', ?, ?) RETURNING id"
)
_INSERT_HOLD = (
    "INSERT INTO holds (program_id, account_id, reward_order_id, amount, state, created_at, "
    "expires_at) VALUES (?, ?, ?, ?, 'active', ?, ?) RETURNING id"
)
_SET_ORDER_HOLD = "UPDATE reward_orders SET hold_id = ? WHERE id = ?"
_RESOLVE_ORDER = (
    "UPDATE reward_orders SET state = ?, resolved_at = ? WHERE id = ? AND state = 'ordered' "
    "RETURNING id"
)
_RESOLVE_HOLD = (
    "UPDATE holds SET state = ?, resolved_at = ? WHERE id = ? AND state = 'active' RETURNING amount"
)


def _order(r: Row, *, replayed: bool = False) -> Order:
    return Order(
        int(r[0]),
        str(r[1]),
        str(r[2]),
        int(r[3]),
        dec2(r[4]),
        str(r[5]),
        None if r[6] is None else int(r[6]),
        r[7],
        parse_ts(r[8]),  # type: ignore[arg-type]
        parse_ts(r[9]),
        replayed,
    )


def _replay(row: Row, *, account_id: int, reward_code: str) -> Order:
    order = _order(row, replayed=True)
    if order.account_id != account_id or order.reward_code != reward_code:
        raise RewardError(
            "idempotency_conflict",
            f"key {order.idempotency_key!r} already ordered {order.reward_code!r} "
            f"for account {order.account_id}",
            field="idempotency_key",
        )
    return order


async def do_order(
    rt: Runtime, *, program_id: int, account_id: int, reward_code: str, idempotency_key: str
) -> Order:
    """Order a reward: take one from stock and hold its price; one transaction, the
    account row locked, then the reward row.  See the module's refusals."""
    if not idempotency_key or len(idempotency_key) > 128:
        raise RewardError(
            "validation_failed", "idempotency_key: 1 to 128 characters", field="idempotency_key"
        )
    now = rt.now()
    try:
        async with rt.hot.tx() as tx:
            return await _order_in(
                tx,
                program_id=program_id,
                account_id=account_id,
                reward_code=reward_code,
                idempotency_key=idempotency_key,
                now=now,
            )
    except UniqueViolation:
        # Another account's order took the key between our check and our insert.
        async with rt.hot.read() as tx:
            prior = await tx.fetch(_ORDER_BY_KEY, program_id, idempotency_key)
        return _replay(prior[0], account_id=account_id, reward_code=reward_code)


async def _order_in(
    tx: Tx,
    *,
    program_id: int,
    account_id: int,
    reward_code: str,
    idempotency_key: str,
    now: datetime,
) -> Order:
    rows = await tx.fetch(_REWARD_BY_CODE, program_id, reward_code)
    if not rows or not rows[0][5]:
        raise RewardError("reward_not_found", f"no reward {reward_code!r}", field="reward_code")
    reward = _reward(rows[0], raw=True)
    acc = await load_account(tx, account_id, lock=True)
    if acc.program_id != program_id:
        raise RewardError("customer_not_found", f"no account {account_id} in this program")
    prior = await tx.fetch(_ORDER_BY_KEY, program_id, idempotency_key)
    if prior:
        return _replay(prior[0], account_id=account_id, reward_code=reward_code)
    if reward.stock is not None and not await tx.fetch(_TAKE_STOCK, reward.id):
        raise RewardError("out_of_stock", f"{reward.name!r} is out of stock", field="reward_code")
    price = reward.price_points
    # A reward is the program's: only points burnable anywhere pay for it (ADR 0024).
    available = balance_at(
        acc.lots, at=None, held=acc.held, held_at=await held_at(tx, acc), debt=acc.debt, now=now
    ).available
    if available < price:
        # Raising rolls the stock back with the transaction.
        raise RewardError(
            "insufficient_points",
            f"{reward.name!r} costs {price} points, {available} available",
            field="reward_code",
            needed=str(price),
            available=str(available),
        )
    # Past this point the order must succeed: only writes follow.
    order_id = int(
        (
            await tx.fetch(
                _INSERT_ORDER,
                program_id,
                reward.id,
                account_id,
                cents(price),
                idempotency_key,
                ts(tx, now),
            )
        )[0][0]
    )
    hold_id = int(
        (
            await tx.fetch(
                _INSERT_HOLD,
                program_id,
                account_id,
                order_id,
                cents(price),
                ts(tx, now),
                ts(tx, now + ORDER_HOLD_TTL),
            )
        )[0][0]
    )
    await tx.execute(_SET_ORDER_HOLD, hold_id, order_id)
    posting = Posting(acc, now)
    posting.hold(price, hold_id)
    await posting.flush(tx, note=f"reward order {order_id}")
    return _order((await tx.fetch(_ORDER_BY_ID, order_id))[0])


async def _locked_order(tx: Tx, order_id: int) -> tuple[Order, int, AccountState]:
    """The order, its reward id and its account, the order read again after the account
    row is locked (so its state is the newest)."""
    rows = await tx.fetch(_ORDER_BY_ID, order_id)
    if not rows:
        raise RewardError("order_not_found", f"no order {order_id}", field="order_id")
    acc = await load_account(tx, int(rows[0][3]), lock=True)
    rows = await tx.fetch(_ORDER_BY_ID, order_id)
    return _order(rows[0]), int(rows[0][10]), acc


async def do_issue(rt: Runtime, order_id: int, *, actor: Actor | None = None) -> Order:
    """The item was handed over: the held points are burned (soonest expiry first, lots
    that expired while held still give).  Repeating answers the issued order again; a
    cancelled order is ``order_cancelled``.  Locks the account."""
    now = rt.now()
    async with rt.hot.tx() as tx:
        order, _, acc = await _locked_order(tx, order_id)
        if order.state == "issued":
            return order
        if order.state == "cancelled":
            raise RewardError("order_cancelled", f"order {order_id} was cancelled")
        assert order.hold_id is not None
        await tx.execute(_RESOLVE_ORDER, "issued", ts(tx, now), order_id)
        held = await tx.fetch(_RESOLVE_HOLD, HoldState.CONFIRMED.value, ts(tx, now), order.hold_id)
        assert held, f"order {order_id} is ordered but its hold is not active"
        amount = dec2(held[0][0])
        cap = None
        if has_restricted(acc.lots):  # keep the partners' holds payable (ADR 0024)
            cap = burn_cap(acc.lots, at=None, held_at=await held_at(tx, acc) or {}, now=now)
        try:
            takes = plan_burn(
                acc.lots, amount, now=now, held_before=True, at=None, unrestricted_cap=cap
            )
        except InsufficientPoints as exc:  # held points are always there (guarantee 6)
            raise AssertionError(f"order {order_id}: {exc}") from None
        posting = Posting(acc, now)
        posting.take(takes, EntryKind.BURN, from_hold=order.hold_id)
        await posting.flush(tx, note=f"reward order {order_id} issued")
        if actor is not None:
            await _audit_order(tx, actor, order, "reward_order.issue", "issued", now)
        return _order((await tx.fetch(_ORDER_BY_ID, order_id))[0])


async def do_cancel_order(rt: Runtime, order_id: int, *, actor: Actor | None = None) -> Order:
    """The order will not be issued: its points are released and the item goes back to
    stock.  Repeating answers the cancelled order again; an issued order is
    ``order_issued``.  Locks the account, then the reward row."""
    now = rt.now()
    async with rt.hot.tx() as tx:
        order, reward_id, acc = await _locked_order(tx, order_id)
        if order.state == "cancelled":
            return order
        if order.state == "issued":
            raise RewardError("order_issued", f"order {order_id} was issued")
        assert order.hold_id is not None
        await tx.execute(_RESOLVE_ORDER, "cancelled", ts(tx, now), order_id)
        held = await tx.fetch(_RESOLVE_HOLD, HoldState.RELEASED.value, ts(tx, now), order.hold_id)
        assert held, f"order {order_id} is ordered but its hold is not active"
        posting = Posting(acc, now)
        posting.release(dec2(held[0][0]), order.hold_id)
        await posting.flush(tx, note=f"reward order {order_id} cancelled")
        await tx.execute(_RETURN_STOCK, reward_id)
        if actor is not None:
            await _audit_order(tx, actor, order, "reward_order.cancel", "cancelled", now)
        return _order((await tx.fetch(_ORDER_BY_ID, order_id))[0])


async def order_status(rt: Runtime, order_id: int) -> Order:
    async with rt.hot.read() as tx:
        rows = await tx.fetch(_ORDER_BY_ID, order_id)
    if not rows:
        raise RewardError("order_not_found", f"no order {order_id}", field="order_id")
    return _order(rows[0])


async def cancel_stale_orders(rt: Runtime, *, limit: int = 1000) -> int:
    """Cancel orders not issued before their hold's time ran out (points back, stock
    back).  ``ledger_jobs.expire_holds`` leaves reward holds alone (it releases
    receipts' holds only).  Returns how many were cancelled."""
    h = t.holds
    async with rt.engine.connect() as conn:
        due = (
            (
                await conn.execute(
                    select(h.c.reward_order_id)
                    .where(
                        h.c.state == HoldState.ACTIVE.value,
                        h.c.reward_order_id.is_not(None),
                        h.c.expires_at <= rt.now(),
                    )
                    .order_by(h.c.expires_at)
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
    done = 0
    for order_id in due:
        try:
            await do_cancel_order(rt, int(order_id))
        except RewardError:  # issued meanwhile
            continue
        done += 1
    return done


# --- the console and the admin API: audit, pages of the catalogue and of orders ----------

_AUDIT = (
    "INSERT INTO audit_log (at, actor_kind, actor_id, actor_name, ip, program_id, action, "
    "object_type, object_id, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def _audit_order(
    tx: Tx, actor: Actor, order: Order, action: str, state: str, now: datetime
) -> None:
    """The audit row of an order's resolution, in the order's own (driver) transaction:
    the same columns ``audit.record`` writes."""
    actor.require(Perm.MECHANICS_WRITE)
    pid = (await tx.fetch("SELECT program_id FROM reward_orders WHERE id = ?", order.id))[0][0]
    await tx.execute(
        _AUDIT,
        ts(tx, now),
        actor.kind,
        actor.id,
        actor.name[:200],
        actor.ip,
        pid,
        action,
        "reward_order",
        str(order.id),
        audit._json({"state": order.state, "points": order.points}),
        audit._json({"state": state, "points": order.points}),
    )


REWARD_SORTS = ("code", "name", "price_points", "stock", "active", "orders")
ORDER_STATES = ("ordered", "issued", "cancelled")
ORDER_SORTS = ("id", "created_at", "points", "state", "reward")


@dataclass(frozen=True, slots=True)
class RewardRow:
    reward: Reward
    orders: int  # not cancelled


@dataclass(frozen=True, slots=True)
class OrderRow:
    order: Order
    customer_id: int | None
    first_name: str
    last_name: str


async def list_rewards_page(
    rt: Runtime,
    *,
    program_id: int,
    offset: int = 0,
    limit: int = 50,
    sort: str = "code",
    descending: bool = False,
) -> tuple[list[RewardRow], int]:
    """A page of the catalogue with how many orders each item has (not cancelled)."""
    from sqlalchemy import func

    o = t.reward_orders.c
    orders = (
        select(o.reward_id, func.count().label("orders"))
        .where(o.program_id == program_id, o.state != "cancelled")
        .group_by(o.reward_id)
        .subquery()
    )
    q = (
        select(*_REWARD_COLUMNS, func.coalesce(orders.c.orders, 0).label("orders"))
        .select_from(t.rewards.outerjoin(orders, orders.c.reward_id == _R.id))
        .where(_R.program_id == program_id)
    )
    sort = sort if sort in REWARD_SORTS else "code"
    col = q.selected_columns[sort]
    async with rt.engine.connect() as conn:
        total = (
            await conn.execute(
                select(func.count()).select_from(t.rewards).where(_R.program_id == program_id)
            )
        ).scalar_one()
        rows = (
            await conn.execute(
                q.order_by(col.desc() if descending else col.asc(), _R.id)
                .offset(offset)
                .limit(limit)
            )
        ).all()
    return [RewardRow(_reward(r), int(r.orders)) for r in rows], int(total)


async def list_orders(
    rt: Runtime,
    *,
    program_id: int,
    state: str = "",
    offset: int = 0,
    limit: int = 50,
    sort: str = "id",
    descending: bool = True,
) -> tuple[list[OrderRow], int]:
    """A page of the program's orders (``state``: ordered, issued, cancelled, or all),
    with the customer's name."""
    from sqlalchemy import func

    o, a, c = t.reward_orders.c, t.accounts.c, t.customers.c
    q = (
        select(
            o.id,
            _R.code.label("reward"),
            _R.name,
            o.account_id,
            o.points,
            o.state,
            o.hold_id,
            o.idempotency_key,
            o.created_at,
            o.resolved_at,
            a.customer_id,
            c.first_name,
            c.last_name,
        )
        .select_from(
            t.reward_orders.join(t.rewards, _R.id == o.reward_id)
            .outerjoin(t.accounts, a.id == o.account_id)
            .outerjoin(t.customers, c.id == a.customer_id)
        )
        .where(o.program_id == program_id)
    )
    if state in ORDER_STATES:
        q = q.where(o.state == state)
    sort = sort if sort in ORDER_SORTS else "id"
    col = q.selected_columns[sort]
    async with rt.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
        rows = (
            await conn.execute(
                q.order_by(col.desc() if descending else col.asc(), o.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
    out = [
        OrderRow(
            Order(
                int(r.id),
                r.reward,
                r.name,
                int(r.account_id),
                Decimal(r.points),
                r.state,
                r.hold_id,
                r.idempotency_key,
                r.created_at,
                r.resolved_at,
            ),
            r.customer_id,
            r.first_name or "",
            r.last_name or "",
        )
        for r in rows
    ]
    return out, int(total)


async def order_program(rt: Runtime, order_id: int) -> int | None:
    """The program an order belongs to (None: no such order)."""
    async with rt.engine.connect() as conn:
        pid = (
            await conn.execute(
                select(t.reward_orders.c.program_id).where(t.reward_orders.c.id == order_id)
            )
        ).scalar_one_or_none()
    return None if pid is None else int(pid)
