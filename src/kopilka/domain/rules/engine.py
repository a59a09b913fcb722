"""The calculation with the rules engine: a pure function of
(basket, customer context, compiled program, clock) that explains itself.

Order of the steps (each rounds once, to the kopeck, half up, unless said otherwise):

1. ``amount = quantity x price``; the POS's own line discount is kept as it is.
2. The program's discount (a discount, cumulative or tier percent) on every line it
   covers, per line.
3. Promotions, in priority order, on what is left of each line: line and basket
   discounts, price overrides, cheapest-free, bundle prices; earn rates, multipliers,
   points per unit, fixed points; gifts and messages.  Stacking groups and exclusive
   promotions are resolved by ``_select`` (one named function, its table in the docs).
   No line is ever discounted below its price floor or below zero, and the receipt's
   discount (the POS's own included) never passes ``max_discount_percent``.
4. Points to burn (as in the base rule, with the tier's burn limit).
5. Points earned: each line's rate (base or tier, changed by promotions) on what it
   earns on (``earn_on``), plus points per unit and fixed points; the receipt total is
   rounded once with the program's rounding and spread over lines and promotions by the
   largest remainder, so every part adds up to the receipt's figure.

Ties in every largest-remainder split go by the lines' content, so the answer does not
depend on the order the lines came in.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from kopilka.domain.holdout import is_held_out
from kopilka.domain.money import HUNDRED, KOPECK, ZERO, from_minor, q2, round_points
from kopilka.domain.receipt import (
    Applied,
    Basket,
    BasketLine,
    PricedLine,
    PricedReceipt,
    content_rank,
    points_to_redeem,
    redeem_limit,
    spread,
)
from kopilka.domain.rules import model as m
from kopilka.domain.rules.compiler import CompiledProgram, CompiledPromotion, Facts, LineFacts
from kopilka.domain.rules.facts import BudgetLeft, CustomerContext, StoreContext

PROGRAM_DISCOUNT = "program_discount"
BASE_EARN = "base_earn"
WEIGHT_SCALE = Decimal(10) ** 10
ZERO2 = Decimal("0.00")
NO_STORE = StoreContext()


@dataclass(slots=True)
class _State:
    net: list[Decimal]  # each line after the discounts so far
    disc: list[list[tuple[str, Decimal]]]  # each line: (who, discount)
    rate: list[list[tuple[str, Decimal]]]  # each line: (who, earn percent)
    per_unit: list[list[tuple[str, Decimal]]]  # each line: (who, raw points)
    fixed: list[tuple[str, Decimal, tuple[int, ...]]]  # (who, points, over lines)
    notes: list[tuple[str, str, str]]  # (kind, who, text)
    cap_left: Decimal | None  # what the receipt may still be discounted
    given: dict[str, Decimal]  # discount given per promotion
    rate_sum: list[Decimal] = field(default_factory=list)  # each line's total rate
    points_cache: Decimal | None = None  # _raw_points of this state; None: stale

    def clone(self) -> _State:
        return _State(
            list(self.net),
            [list(x) for x in self.disc],
            [list(x) for x in self.rate],
            [list(x) for x in self.per_unit],
            list(self.fixed),
            list(self.notes),
            self.cap_left,
            dict(self.given),
            list(self.rate_sum),
            self.points_cache,
        )


@dataclass(slots=True)
class _Calc:
    """The fixed inputs of one calculation."""

    prog: CompiledProgram
    lines: tuple[BasketLine, ...]
    facts: Facts
    rank: list[int]
    room_floor: list[Decimal]  # each line's floor amount (min price x quantity)
    whole: list[bool]  # piece goods (integer quantity)
    point_value: Decimal
    reasons: dict[str, str] = field(default_factory=dict)
    # Each line before the engine's discounts (amount - the POS's discount): what points
    # are earned on when ``earn_on`` is ``before_discount``.
    gross: list[Decimal] = field(default_factory=list)

    before_discount: bool = False  # earn_on: before_discount
    targets: dict[str, list[int]] = field(default_factory=dict)  # per promotion, cached

    def earn_base(self, s: _State, i: int) -> Decimal:
        """What line ``i`` earns on in state ``s``, before points burned (step 4 comes
        later): its net, or its gross with ``earn_on: before_discount``."""
        return self.gross[i] if self.before_discount else s.net[i]


def price_receipt(
    basket: Basket,
    customer: CustomerContext | None,
    prog: CompiledProgram,
    now: datetime,
    *,
    store: StoreContext = NO_STORE,
    budgets: Mapping[str, BudgetLeft] | None = None,
    excluded: Collection[str] = (),
    explain: Collection[str] | bool = (),
) -> PricedReceipt:
    """Price a basket.  Raises ``RedeemRefused`` when the requested points cannot be burned.

    ``budgets``: what promotions with a budget may still give (missing: their whole
    budget).  ``excluded``: promotions not to apply (the service's budget reservation
    lost a race).  ``explain``: promotion ids (or True for all) to say why they did not
    apply; the till asks for none.
    """
    at = basket.occurred_at or now
    tz = prog.zone(store.timezone)
    lines = basket.lines
    amounts = [ln.amount for ln in lines]
    nets = [a - ln.discount for a, ln in zip(amounts, lines, strict=True)]
    lfacts = [
        LineFacts(ln.sku, prog.ancestors(ln.category), ln.quantity, amounts[i])
        for i, ln in enumerate(lines)
    ]
    facts = Facts(
        store=store,
        local=at.astimezone(tz),
        customer=customer,
        lines=lfacts,
        coupons=frozenset(c.upper() for c in basket.coupons),
        gift_card_payment=basket.gift_card_payment,
        amount=sum(amounts, ZERO),
    )
    facts.index_lines()
    if prog.floor_sku or prog.floor_cat:
        floors = [q2(prog.floor_of(lf) * lf.quantity) for lf in lfacts]
    else:
        floors = [ZERO] * len(lfacts)
    calc = _Calc(
        prog,
        lines,
        facts,
        content_rank(lines),
        floors,
        [ln.quantity == ln.quantity.to_integral_value() for ln in lines],
        prog.settings.point_value,
        gross=list(nets),
        before_discount=prog.doc.earn_on == "before_discount",
    )
    n = len(lines)
    cap = None
    if prog.doc.max_discount_percent is not None:
        # The receipt's discount includes the POS's own line discounts, so they use up
        # the cap first; otherwise a receipt could end up discounted past it.
        pos_discount = sum((ln.discount for ln in lines), ZERO)
        cap = q2(facts.amount * prog.doc.max_discount_percent / HUNDRED)
        cap = max(cap - pos_discount, ZERO)
    state = _State(
        nets,
        [[] for _ in range(n)],
        [[] for _ in range(n)],
        [[] for _ in range(n)],
        [],
        [],
        cap,
        {},
        [ZERO] * n,
    )
    if customer is not None and prog.points_enabled:
        base_rate = _base_rate(prog, customer)
        if base_rate:
            for r in state.rate:
                r.append((BASE_EARN, base_rate))
            state.rate_sum = [base_rate] * n
    _program_discount(calc, state, customer)

    explained = set(prog.by_id) if explain is True else set(explain or ())
    candidates = prog.candidates(lfacts, store.code)
    if explained:
        candidates = sorted(
            set(candidates) | {prog.by_id[x].order for x in explained if x in prog.by_id}
        )
    matched = []
    for idx in candidates:
        p = prog.promotions[idx]
        why = _why_not(calc, p, at, budgets, excluded)
        if why is None:
            matched.append(p)
        else:
            calc.reasons[p.id] = why
    state = _select(calc, state, matched, budgets)
    priced = _finish(calc, state, basket, customer, prog, amounts)
    if explained or explain is True:
        applied = {a.rule for a in priced.applied}
        out = {}
        for pid in sorted(explained):
            if pid not in prog.by_id:
                out[pid] = "no such promotion"
            elif pid in applied:
                out[pid] = "applied"
            else:
                out[pid] = calc.reasons.get(pid, "gave nothing on this basket")
        priced = replace(priced, explanations=out)
    return priced


# --- which promotions may apply ------------------------------------------------------------


PERIOD_LABEL = {"day": "a day", "week": "a week", "month": "a month", "year": "a year"}


def _why_not(
    calc: _Calc,
    p: CompiledPromotion,
    at: datetime,
    budgets: Mapping[str, BudgetLeft] | None,
    excluded: Collection[str],
) -> str | None:
    if not p.enabled:
        return "disabled"
    if p.starts_at is not None and at < p.starts_at:
        return f"starts at {p.starts_at.isoformat()}"
    if p.ends_at is not None and at >= p.ends_at:
        return f"ended at {p.ends_at.isoformat()}"
    if p.id in excluded:
        return "budget spent"
    cu = calc.facts.customer
    if p.personal and (cu is None or p.id not in cu.offers):
        return "a personal offer not assigned to this customer"
    if (
        p.holdout_cut
        and cu is not None
        and cu.customer_id is not None
        and is_held_out(calc.prog.doc.salt, p.id, cu.customer_id, p.holdout_cut)
    ):
        return "held out: the customer is in its control group"
    if p.when is not None:
        why = p.when(calc.facts)
        if why is not None:
            return why
    if p.target is not None and not _targets(calc, p):
        return "no line matches its lines"
    if p.limits:
        if cu is None:
            return "has a per-customer limit: members only"
        used = cu.usage.get(p.id, {})
        for lim in p.limits:
            if used.get(lim.period, 0) >= lim.count:
                per = PERIOD_LABEL.get(lim.period, "in all")
                return f"limit reached: {lim.count} {per} per customer"
    if p.budget is not None:
        left = (budgets or {}).get(p.id)
        if left is not None and (
            (left.money is not None and left.money <= 0)
            or (left.points is not None and left.points <= 0)
        ):
            return "budget spent"
    return None


def _select(
    calc: _Calc,
    base: _State,
    matched: list[CompiledPromotion],
    budgets: Mapping[str, BudgetLeft] | None,
) -> _State:
    """Stacking: promotions run in priority order on what earlier ones left.

    - No group, or a group in ``stack`` mode: each applies.
    - A group in ``best`` mode: each member is tried alone at the group's first place and
      the one worth most to the customer (discount + points x point value) applies;
      ``first``: the first member (by priority) that gives something.
    - Exclusive promotions apply alone (after the program discount): ``best`` weighs
      each against everything else stacked and keeps what is worth most; ``first``
      takes the first exclusive one that gives something.
    """
    prog = calc.prog
    stack = base.clone()
    done: set[str] = set()
    plain = [p for p in matched if not p.exclusive]
    for p in plain:
        if (
            p.group is not None
            and (prog.group_modes.get(p.group) or prog.default_group_mode) != "stack"
        ):
            if p.group in done:
                continue
            done.add(p.group)
            members = [q for q in plain if q.group == p.group]
            mode = prog.group_modes.get(p.group) or prog.default_group_mode
            stack = _best_of(calc, stack, members, budgets, mode, f"group {p.group}")
        else:
            tried = _try(calc, stack, p, budgets, inplace=True)
            if tried is not None:
                stack = tried
    exclusive = [p for p in matched if p.exclusive]
    if not exclusive:
        return stack
    options: list[tuple[str, _State, Decimal]] = [("", stack, _worth(calc, stack, base))]
    for p in exclusive:
        tried = _try(calc, base, p, budgets)
        if tried is None:
            continue
        options.append((p.id, tried, _worth(calc, tried, base)))
        if prog.exclusive_mode == "first":
            break
    if prog.exclusive_mode == "first" and len(options) > 1:
        winner = options[1]
    else:
        winner = max(options, key=lambda o: o[2])  # the first of equals: stack, then priority
    lost = f"lost to {winner[0] or 'the other promotions'} (exclusive)"
    for pid, _, _ in options:
        if pid != winner[0]:
            calc.reasons[pid or "-"] = lost
    # In ``first`` mode the exclusive ones after the winner are never tried; without this
    # they would be explained as "gave nothing", which is not why they did not apply.
    for p in exclusive:
        if p.id != winner[0]:
            calc.reasons.setdefault(p.id, lost)
    if winner[0]:
        for p in plain:
            calc.reasons.setdefault(p.id, f"an exclusive promotion {winner[0]} applied")
    return winner[1]


def _best_of(
    calc: _Calc,
    state: _State,
    members: list[CompiledPromotion],
    budgets: Mapping[str, BudgetLeft] | None,
    mode: str,
    label: str,
) -> _State:
    best: tuple[CompiledPromotion, _State, Decimal] | None = None
    for q in members:
        tried = _try(calc, state, q, budgets)
        if tried is None:
            continue
        worth = _worth(calc, tried, state)
        if best is None or worth > best[2]:
            best = (q, tried, worth)
        if mode == "first":
            break
    if best is None:
        return state
    how = "best for the customer" if mode == "best" else "first by priority"
    for q in members:
        if q.id != best[0].id:
            calc.reasons.setdefault(q.id, f"lost to {best[0].id} in {label} ({how})")
    return best[1]


def _try(
    calc: _Calc,
    state: _State,
    p: CompiledPromotion,
    budgets: Mapping[str, BudgetLeft] | None,
    *,
    inplace: bool = False,
) -> _State | None:
    """The state after ``p``, or None when it gives nothing (or more than its budget).

    ``inplace``: change ``state`` itself (no copy) when nothing may need undoing: an
    effect that gives nothing changes nothing, so only a budget check needs the copy.
    """
    s = state if inplace and p.budget is None else state.clone()
    gave_something = False
    for eff in p.effects:
        if _apply(calc, s, p, eff):
            gave_something = True
    if not gave_something:
        calc.reasons.setdefault(p.id, "gave nothing on this basket (price floor or limits)")
        return None
    if p.budget is not None:
        left = (budgets or {}).get(p.id) or BudgetLeft(p.budget.money, p.budget.points)
        money = s.given.get(p.id, ZERO)
        points = _points_of(calc, s, p.id)
        if (left.money is not None and money > left.money) or (
            left.points is not None and points > left.points
        ):
            calc.reasons[p.id] = "budget spent"
            return None
    return s


def _worth(calc: _Calc, s: _State, base: _State) -> Decimal:
    """Roubles a state gives the customer beyond ``base``: discount + points x value."""
    disc = sum(base.net, ZERO) - sum(s.net, ZERO)
    return disc + (_raw_points(calc, s) - _raw_points(calc, base)) * calc.point_value


def _raw_points(calc: _Calc, s: _State) -> Decimal:
    """Points a state would earn, unrounded (cached until the state changes)."""
    if s.points_cache is not None:
        return s.points_cache
    total = ZERO
    base = calc.gross if calc.before_discount else s.net
    for b, r in zip(base, s.rate_sum, strict=True):
        if r:
            total += b * r
    total /= HUNDRED
    for extra in s.per_unit:
        for _, pts in extra:
            total += pts
    for _, pts, _ in s.fixed:
        total += pts
    s.points_cache = total
    return total


def _points_of(calc: _Calc, s: _State, pid: str) -> Decimal:
    total = ZERO
    for i, rates in enumerate(s.rate):
        for who, r in rates:
            if who == pid:
                # On what the points are earned on: with earn_on before_discount a
                # points budget checked on the net would let the promotion overspend.
                total += calc.earn_base(s, i) * r / HUNDRED
    for extra in s.per_unit:
        for who, pts in extra:
            if who == pid:
                total += pts
    for who, pts, _ in s.fixed:
        if who == pid:
            total += pts
    return total


# --- effects -------------------------------------------------------------------------------


def _targets(calc: _Calc, p: CompiledPromotion) -> list[int]:
    """The lines a promotion touches (computed once per calculation)."""
    hit = calc.targets.get(p.id)
    if hit is None:
        if p.target is None:
            hit = list(range(len(calc.lines)))
        elif p.target_skus is not None:
            by = calc.facts.sku_lines
            hit = sorted(i for k in p.target_skus.intersection(by) for i in by[k])
        elif p.target_cats is not None:
            by = calc.facts.cat_lines
            hit = sorted({i for k in p.target_cats.intersection(by) for i in by[k]})
        else:
            target = p.target
            hit = [i for i, lf in enumerate(calc.facts.lines) if target(lf)]
        calc.targets[p.id] = hit
    return hit


def _apply(calc: _Calc, s: _State, p: CompiledPromotion, eff: m.Effect) -> bool:
    """Apply one effect to ``s``; True when it gave something."""
    idx = _targets(calc, p)
    if isinstance(eff, m.LineDiscount):
        if eff.percent is not None:
            pct = eff.percent
            parts = {i: q2(s.net[i] * pct / HUNDRED) for i in idx}
        else:
            amount = eff.amount or ZERO
            parts = {i: q2(amount * calc.lines[i].quantity) for i in idx}
        return _discount(calc, s, p, parts)
    if isinstance(eff, m.BasketDiscount):
        base = sum((s.net[i] for i in idx), ZERO)
        total = (
            q2(base * eff.percent / HUNDRED) if eff.percent is not None else (eff.amount or ZERO)
        )
        return _discount_spread(calc, s, p, idx, min(total, base))
    if isinstance(eff, m.PriceOverride):
        parts = {i: max(s.net[i] - q2(eff.price * calc.lines[i].quantity), ZERO) for i in idx}
        return _discount(calc, s, p, parts)
    if isinstance(eff, m.CheapestFree):
        return _cheapest_free(calc, s, p, idx, eff)
    if isinstance(eff, m.BundlePrice):
        return _bundle(calc, s, p, eff)
    if isinstance(eff, (m.EarnPercent, m.EarnMultiplier, m.PointsPerUnit, m.FixedPoints)):
        # Said here, so that "why not" does not blame a price floor for it.
        if not calc.prog.points_enabled:
            calc.reasons.setdefault(p.id, "this program has no points")
            return False
        if calc.facts.customer is None:
            calc.reasons.setdefault(p.id, "points are for members only")
            return False
        return _earn_effect(calc, s, p, idx, eff)
    if isinstance(eff, m.Gift):
        s.notes.append(("gift", p.id, f"{eff.sku}\x1f{eff.name}\x1f{eff.quantity}"))
        return True
    if isinstance(eff, m.ReceiptMessage):
        s.notes.append(("receipt", p.id, eff.text))
        return True
    if isinstance(eff, m.CashierMessage):
        s.notes.append(("cashier", p.id, eff.text))
        return True
    if isinstance(eff, m.DrawTickets):
        if calc.facts.customer is None:  # tickets are a member's
            return False
        s.notes.append(("tickets", p.id, str(eff.tickets)))
        return True
    raise AssertionError(f"unknown effect {eff!r}")


def _room(calc: _Calc, s: _State, i: int) -> Decimal:
    return max(s.net[i] - calc.room_floor[i], ZERO)


def _discount(calc: _Calc, s: _State, p: CompiledPromotion, parts: dict[int, Decimal]) -> bool:
    """Take ``parts`` off their lines, each within its room above the floor, together
    within the promotion's and the receipt's caps."""
    capped = {i: min(v, _room(calc, s, i)) for i, v in parts.items() if v > 0}
    return _take(calc, s, p.id, capped, p.max_discount)


def _discount_spread(
    calc: _Calc, s: _State, p: CompiledPromotion, idx: list[int], total: Decimal
) -> bool:
    rooms = {i: _room(calc, s, i) for i in idx}
    total = min(total, sum(rooms.values(), ZERO))
    if total <= 0:
        return False
    keys = [i for i in idx if rooms[i] > 0]
    shares = spread(total, [_minor(rooms[i]) for i in keys], [calc.rank[i] for i in keys])
    return _take(calc, s, p.id, dict(zip(keys, shares, strict=True)), p.max_discount)


def _take(
    calc: _Calc, s: _State, who: str, parts: dict[int, Decimal], promo_cap: Decimal | None
) -> bool:
    parts = {i: v for i, v in parts.items() if v > 0}
    if not parts:
        return False
    limit = s.cap_left
    if promo_cap is not None:
        left = promo_cap - s.given.get(who, ZERO)
        limit = left if limit is None else min(limit, left)
    total = sum(parts.values(), ZERO)
    if limit is not None and total > limit:
        if limit <= 0:
            return False
        keys = sorted(parts, key=lambda i: calc.rank[i])
        shares = spread(limit, [_minor(parts[i]) for i in keys], [calc.rank[i] for i in keys])
        parts = {i: v for i, v in zip(keys, shares, strict=True) if v > 0}
        total = limit
    for i, v in parts.items():
        s.net[i] -= v
        s.disc[i].append((who, v))
    s.points_cache = None
    s.given[who] = s.given.get(who, ZERO) + total
    if s.cap_left is not None:
        s.cap_left -= total
    return True


def _unit_lines(calc: _Calc, s: _State, idx: list[int]) -> list[tuple[Decimal, int, int]]:
    """(net per unit, rank, line) of the piece-goods lines among ``idx``."""
    out = []
    for i in idx:
        qty = calc.lines[i].quantity
        if calc.whole[i] and qty > 0 and s.net[i] > 0:
            out.append((s.net[i] / qty, calc.rank[i], i))
    return out


def _cheapest_free(
    calc: _Calc, s: _State, p: CompiledPromotion, idx: list[int], eff: m.CheapestFree
) -> bool:
    units = _unit_lines(calc, s, idx)
    count = sum(int(calc.lines[i].quantity) for _, _, i in units)
    free = (count // eff.every) * eff.free
    if free == 0:
        return False
    parts: dict[int, Decimal] = {}
    for _, _, i in sorted(units):
        if free == 0:
            break
        qty = int(calc.lines[i].quantity)
        k = min(qty, free)
        free -= k
        parts[i] = s.net[i] if k == qty else q2(s.net[i] * k / qty)
    return _discount(calc, s, p, parts)


def _bundle(calc: _Calc, s: _State, p: CompiledPromotion, eff: m.BundlePrice) -> bool:
    """As many complete sets as the basket holds; each set costs ``price``.  Each line
    counts for the first item it matches; the dearest units make up the sets."""
    idx = _targets(calc, p)
    items = []
    for item in eff.items:
        skus = frozenset(item.sku or ())
        cats = frozenset(item.category or ())
        items.append((skus, cats, item.quantity))
    pools: list[list[tuple[Decimal, int, int]]] = [[] for _ in items]
    for unit in _unit_lines(calc, s, idx):
        lf = calc.facts.lines[unit[2]]
        for j, (skus, cats, _) in enumerate(items):
            if lf.sku in skus or not cats.isdisjoint(lf.cats):
                pools[j].append(unit)
                break
    sets = min(
        sum(int(calc.lines[i].quantity) for _, _, i in pool) // qty
        for pool, (_, _, qty) in zip(pools, items, strict=True)
    )
    if sets == 0:
        return False
    taken: dict[int, Decimal] = {}
    for pool, (_, _, qty) in zip(pools, items, strict=True):
        need = sets * qty
        for unit_net, _, i in sorted(pool, key=lambda u: (-u[0], u[1])):
            if need == 0:
                break
            k = min(int(calc.lines[i].quantity), need)
            need -= k
            taken[i] = taken.get(i, ZERO) + q2(unit_net * k)
    regular = sum(taken.values(), ZERO)
    total = regular - eff.price * sets
    if total <= 0:
        return False
    keys = sorted(taken, key=lambda i: calc.rank[i])
    weights = [_minor(min(taken[i], _room(calc, s, i))) for i in keys]
    if sum(weights) == 0:
        return False
    total = min(total, from_minor(sum(weights)))
    shares = spread(total, weights, [calc.rank[i] for i in keys])
    return _take(calc, s, p.id, dict(zip(keys, shares, strict=True)), p.max_discount)


def _earn_effect(
    calc: _Calc,
    s: _State,
    p: CompiledPromotion,
    idx: list[int],
    eff: m.EarnPercent | m.EarnMultiplier | m.PointsPerUnit | m.FixedPoints,
) -> bool:
    if isinstance(eff, m.FixedPoints):
        if eff.points <= 0 or not idx:
            return False
        s.fixed.append((p.id, eff.points, tuple(idx)))
        s.points_cache = None
        return True
    if isinstance(eff, m.PointsPerUnit):
        gave = False
        for i in idx:
            pts = eff.points * calc.lines[i].quantity
            if pts > 0:
                s.per_unit[i].append((p.id, pts))
                gave = True
        if gave:
            s.points_cache = None
        return gave
    gave = False
    for i in idx:
        rates = s.rate[i]
        current = s.rate_sum[i]
        target = eff.percent if isinstance(eff, m.EarnPercent) else current * eff.factor
        if target > current:
            rates.append((p.id, target - current))
            s.rate_sum[i] = target
            gave = True
        elif target < current and current > 0:
            scale = target / current
            s.rate[i] = [(who, r * scale) for who, r in rates]
            s.rate_sum[i] = target
            gave = True
    if gave:
        s.points_cache = None
    return gave


def _program_discount(calc: _Calc, s: _State, customer: CustomerContext | None) -> None:
    """The card's discount (``card_discount_percent``) on every line it covers."""
    if customer is None:
        return
    pct = card_discount_percent(calc.prog, customer)
    if pct <= 0:
        return
    excl = calc.prog.discount_exclude
    parts = {
        i: min(q2(s.net[i] * pct / HUNDRED), _room(calc, s, i))
        for i, lf in enumerate(calc.facts.lines)
        if excl is None or not excl(lf)
    }
    _take(calc, s, PROGRAM_DISCOUNT, parts, None)
    s.notes.append(("label", PROGRAM_DISCOUNT, f"{pct.normalize():f}% card discount"))


def card_discount_percent(prog: CompiledProgram, customer: CustomerContext) -> Decimal:
    """The best of the program's fixed percent (or the customer's group percent), his
    cumulative level and his tier's percent; 0 when none applies."""
    doc = prog.doc
    pct = ZERO
    if doc.discount is not None and doc.type in ("discount", "mixed"):
        pct = doc.discount.percent
        for tag in customer.tags:
            g = doc.discount.groups.get(tag)
            if g is not None and g > pct:
                pct = g
    if doc.cumulative is not None and customer.discount_percent is not None:
        pct = max(pct, customer.discount_percent)
    tier = prog.tiers.get(customer.tier or "")
    if tier is not None and tier.discount_percent is not None:
        pct = max(pct, tier.discount_percent)
    return pct


# --- totals --------------------------------------------------------------------------------


def _finish(
    calc: _Calc,
    s: _State,
    basket: Basket,
    customer: CustomerContext | None,
    prog: CompiledProgram,
    amounts: list[Decimal],
) -> PricedReceipt:
    lines = basket.lines
    n = len(lines)
    settings = prog.settings
    if customer is not None:
        tier = prog.tiers.get(customer.tier or "")
        if tier is not None and tier.burn_max_percent is not None:
            settings = replace(settings, burn_max_percent=tier.burn_max_percent)
    nets = s.net
    discounts = [amounts[i] - nets[i] for i in range(n)]
    net_total = sum(nets, ZERO)
    redeem = points_to_redeem(
        basket.redeem_points, customer, net_total, settings, enabled=prog.points_enabled
    )
    redeem_max = (
        redeem_limit(net_total, customer.available, settings)
        if customer and prog.points_enabled
        else ZERO
    )
    value = q2(redeem * settings.point_value)
    net_minor = [_minor(x) for x in nets]
    value_lines = spread(value, net_minor, calc.rank)
    points_lines = spread(redeem, net_minor, calc.rank)
    to_pay = [nets[i] - value_lines[i] for i in range(n)]
    paid_total = sum(to_pay, ZERO)

    # Points earned, rounded once for the receipt.  Points per unit and fixed points are
    # exact amounts and stay exactly where they were given; the rates (base, tier,
    # promotions) take the rounding, spread back by their raw values.
    rated: list[dict[str, Decimal]] = [{} for _ in range(n)]
    extra: list[dict[str, Decimal]] = [{} for _ in range(n)]
    if customer is not None and prog.points_enabled:
        on_paid = not calc.before_discount
        # Without points on gift cards, every line earns on its share of what money pays.
        money_share = None
        if basket.gift_card_amount > 0 and not prog.doc.points.earn_on_gift_card:
            paid = sum(to_pay, ZERO)
            money_share = max(paid - basket.gift_card_amount, ZERO) / paid if paid else ZERO
        for i in range(n):
            base = to_pay[i] if on_paid else amounts[i] - lines[i].discount - value_lines[i]
            if money_share is not None:
                base *= money_share
            rates = s.rate[i]
            if len(rates) == 1:  # the common line: the base (or tier) rate alone
                who, rate = rates[0]
                rated[i] = {who: (base * rate).scaleb(-2)}
            else:
                r = rated[i]
                for who, rate in rates:
                    r[who] = r.get(who, ZERO) + (base * rate).scaleb(-2)
            if s.per_unit[i]:
                e = extra[i]
                for who, pts in s.per_unit[i]:
                    e[who] = e.get(who, ZERO) + q2(pts)
        for who, pts, over in s.fixed:
            w = [_minor(max(to_pay[i], ZERO)) or 1 for i in over]
            for i, share in zip(over, spread(pts, w, [calc.rank[i] for i in over]), strict=True):
                extra[i][who] = extra[i].get(who, ZERO) + share
    step, mode = settings.points_step, settings.earn_rounding
    rated_raw = [sum(c.values(), ZERO) for c in rated]
    extra_raw = [sum(c.values(), ZERO) for c in extra]
    extra_sum = sum(extra_raw, ZERO)
    earned = round_points(sum(rated_raw, ZERO) + extra_sum, step=step, mode=mode)
    earned = max(earned, ZERO)
    rates_can_take = earned == extra_sum or (earned > extra_sum and any(rated_raw))
    if rates_can_take:  # the usual case: exact extras, the rates take the rounding
        rated_lines = _spread_weighted(earned - extra_sum, rated_raw, calc.rank)
    else:  # rounding took more than the rates gave (or there are none): all share it
        total_raw = [rated_raw[i] + extra_raw[i] for i in range(n)]
        lines_all = _spread_weighted(earned, total_raw, calc.rank)
        for i in range(n):
            both = _split(lines_all[i], _merge_points(rated[i], extra[i]))
            rated[i] = {w: both[w] for w in rated[i]}
            extra[i] = {w: both[w] - rated[i].get(w, ZERO) for w in extra[i]}
        rated_lines = [sum(rated[i].values(), ZERO) for i in range(n)]
    earned_lines = [
        rated_lines[i] + sum(extra[i].values(), ZERO) if extra[i] else rated_lines[i]
        for i in range(n)
    ]
    contrib = []
    for i in range(n):
        rl = rated[i]
        shares = {who: rated_lines[i] for who in rl} if len(rl) <= 1 else _split(rated_lines[i], rl)
        contrib.append(_merge_points(shares, extra[i]) if extra[i] else shares)

    base_label = f"{_base_rate(prog, customer)}% of paid amount"
    priced_lines = []
    names: dict[str, str] = {}  # who -> reason, looked up once per receipt
    line_order = _line_order(prog)
    for i in range(n):
        # One entry per contributor on the line (a promotion may discount and earn).
        items: dict[str, list[Decimal]] = {}
        for who, d in s.disc[i]:
            entry = items.get(who)
            if entry is None:
                items[who] = [d, ZERO]
            else:
                entry[0] += d
        if points_lines[i]:
            items["redeem"] = [value_lines[i], -points_lines[i]]
        for who, pts in contrib[i].items():
            if pts:
                entry = items.get(who)
                if entry is None:
                    items[who] = [ZERO, pts]
                else:
                    entry[1] += pts
        applied = []
        for who, (d, pts) in items.items():
            why = names.get(who)
            if why is None:
                why = names[who] = (
                    "" if who == "redeem" else base_label if who == BASE_EARN else _name(prog, who)
                )
            applied.append(Applied(who, d, pts, why))
        if len(applied) > 1:
            applied.sort(key=line_order)
        priced_lines.append(
            PricedLine(
                amounts[i],
                discounts[i],
                points_lines[i],
                value_lines[i],
                to_pay[i],
                earned_lines[i],
                tuple(applied),
            )
        )
    # The receipt's figures per contributor: discounts as they were taken, points as
    # they were split over the lines.
    disc_by: dict[str, Decimal] = {who: d for who, d in s.given.items() if d}
    if redeem:
        disc_by["redeem"] = value
    pts_by: dict[str, Decimal] = {}
    for c in contrib:
        for who, pts in c.items():
            if pts:
                pts_by[who] = pts_by.get(who, ZERO) + pts
    if redeem:
        pts_by["redeem"] = -redeem
    by_who = {who: (disc_by.get(who, ZERO), pts_by.get(who, ZERO)) for who in {**disc_by, **pts_by}}
    receipt_applied = []
    for who, (d, pts) in by_who.items():
        reason = _name(prog, who)
        if who == "redeem":
            reason = f"{redeem} points x {settings.point_value} RUB"
        elif who == BASE_EARN:
            reason = f"{_base_rate(prog, customer)}% of the paid amount"
        receipt_applied.append(Applied(who, discount=d, points=pts, reason=reason))
    noted = {who for _, who, _ in s.notes if who != PROGRAM_DISCOUNT}
    for who in sorted(noted - set(by_who)):
        receipt_applied.append(Applied(who, reason=_name(prog, who)))
    receipt_applied.sort(key=_applied_order(prog))
    return PricedReceipt(
        lines=tuple(priced_lines),
        amount=sum(amounts, ZERO),
        discount=sum(discounts, ZERO),
        points_redeemed=redeem,
        redeemed_value=value,
        to_pay=paid_total,
        points_earned=earned,
        redeem_max=redeem_max,
        applied=tuple(receipt_applied),
        messages=tuple(t for kind, _, t in s.notes if kind == "receipt"),
        cashier_messages=tuple(t for kind, _, t in s.notes if kind == "cashier"),
        gifts=tuple(tuple(t.split("\x1f")) for kind, _, t in s.notes if kind == "gift"),
        program_version=prog.version,
        draw_tickets=_tickets(s),
    )


def _tickets(s: _State) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind, who, text in s.notes:
        if kind == "tickets":
            out[who] = out.get(who, 0) + int(text)
    return out


def _applied_order(prog: CompiledProgram):  # type: ignore[no-untyped-def]
    def key(a: Applied) -> tuple[int, int, str]:
        if a.rule == PROGRAM_DISCOUNT:
            return (0, 0, "")
        p = prog.by_id.get(a.rule)
        if p is not None:
            return (1, p.order, "")
        return (2, {"redeem": 0, BASE_EARN: 1}.get(a.rule, 2), a.rule)

    return key


def _line_order(prog: CompiledProgram):  # type: ignore[no-untyped-def]
    """A line's entries: discounts first in the order they were taken (the card's
    discount, then promotions by priority), then redeem, then points by name."""

    def key(a: Applied) -> tuple[int, int, str]:
        if a.rule == "redeem":
            return (1, 0, "")
        if a.discount:
            p = prog.by_id.get(a.rule)
            return (0, -1 if p is None else p.order, a.rule)
        return (2, 0, a.rule)

    return key


def _name(prog: CompiledProgram, who: str) -> str:
    p = prog.by_id.get(who)
    if p is not None:
        return p.name
    if who == PROGRAM_DISCOUNT:
        return "card discount"
    if who == BASE_EARN:
        return f"{prog.settings.earn_percent}% of paid amount"
    return who


def _split(total: Decimal, parts: dict[str, Decimal]) -> dict[str, Decimal]:
    """``total`` (hundredths) over the contributors of a line by their raw values, by the
    largest remainder, ties to the first name.  Inlined: it runs for every line."""
    if len(parts) <= 1:
        return {who: total for who in parts}
    whos = sorted(parts)
    ws = [int(max(parts[w], ZERO) * WEIGHT_SCALE) for w in whos]
    weight = sum(ws)
    units = int(total.scaleb(2))
    if units == 0 or weight <= 0:
        return {w: ZERO2 for w in whos}
    floors = [units * w // weight for w in ws]
    short = units - sum(floors)
    if short:
        rems = [units * w % weight for w in ws]
        for i in sorted(range(len(ws)), key=lambda i: (-rems[i], i))[:short]:
            floors[i] += 1
    return {w: Decimal(f).scaleb(-2) for w, f in zip(whos, floors, strict=True)}


def _merge_points(a: dict[str, Decimal], b: dict[str, Decimal]) -> dict[str, Decimal]:
    out = dict(a)
    for who, pts in b.items():
        out[who] = out.get(who, ZERO) + pts
    return out


def _base_rate(prog: CompiledProgram, customer: CustomerContext | None) -> Decimal:
    """The customer's base earn percent: his tier's, else the program's."""
    tier = prog.tiers.get(customer.tier or "") if customer is not None else None
    if tier is not None and tier.earn_percent is not None:
        return tier.earn_percent
    return prog.settings.earn_percent


def _minor(x: Decimal) -> int:
    return int(x.scaleb(2).to_integral_value(rounding=ROUND_HALF_UP))


def _spread_weighted(total: Decimal, weights: list[Decimal], rank: list[int]) -> list[Decimal]:
    """``total`` (hundredths) over arbitrary non-negative decimal weights."""
    ints = [int(max(w, ZERO) * WEIGHT_SCALE) for w in weights]
    if total == 0 or sum(ints) == 0:
        return [ZERO.quantize(KOPECK)] * len(weights)
    return spread(total, ints, rank)
