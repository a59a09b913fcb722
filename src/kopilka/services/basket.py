"""Baskets (issue 8, docs/analytics/basket.md): frequent itemsets and association rules
of a program's confirmed receipts; the saved rules feed the cashier screen's suggestions.

One report for the console page, the admin API and ``kopilka report basket``: the
receipts are read in one streamed query per store time zone, each the set of its SKUs;
the counting (``domain.basket``) runs in a worker thread, so the server keeps answering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import delete, func, insert, select

from kopilka.domain import basket as b
from kopilka.domain.roles import Perm
from kopilka.services import exports
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

RULES_HEADER = ("antecedents", "consequents", "support", "confidence", "lift")
ITEMSETS_HEADER = ("itemset", "support", "length")
SAVED_MAX = 5000  # rules kept per program for the cashier screen, highest lift first
STREAM_ROWS = 20_000
# the worker's daily refresh when nobody saved rules with other thresholds
REFRESH_DEFAULT = {"min_support": "0.01", "min_confidence": "0.2", "max_len": "3"}
REFRESH_DAYS = 365


@dataclass(frozen=True)
class BasketQuery:
    params: b.Params
    date_from: date | None = None  # local dates of the receipts' stores, inclusive
    date_to: date | None = None
    store: str | None = None  # a store code

    def describe(self) -> str:
        p = self.params
        return f"min_support={p.min_support} min_confidence={p.min_confidence} max_len={p.max_len}"


@dataclass(frozen=True)
class BasketReport:
    query: BasketQuery
    mined: b.Mined
    load_s: float  # reading the receipts
    mine_s: float  # counting


async def program_of(rt: Runtime, code: str | None) -> int:
    """The program with this code, or the only one there is when no code is given."""
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(select(t.programs.c.id, t.programs.c.code))).all()
    if code is None:
        if len(rows) != 1:
            raise _bad("program", f"give the program code (there are {len(rows)} programs)")
        return int(rows[0][0])
    for pid, c in rows:
        if c == code:
            return int(pid)
    raise ServiceError("program_not_found", f"no program {code!r}", field="program")


def _bad(field: str, detail: str) -> ServiceError:
    return ServiceError("validation_failed", detail, field=field)


def _date(values: Mapping[str, str | None], field: str) -> date | None:
    text = (values.get(field) or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _bad(field, f"expected a date as YYYY-MM-DD, got {text!r}") from None


def parse_query(values: Mapping[str, str | None]) -> BasketQuery:
    """The report's options as text (a form, a query string, the CLI's arguments):
    ``min_support``, ``min_confidence``, ``max_len``, ``from``, ``to``, ``store``."""
    try:
        params = b.parse_params(
            values.get("min_support") or "",
            values.get("min_confidence") or "",
            values.get("max_len") or b.MAX_LEN_DEFAULT,
        )
    except b.Invalid as exc:
        raise _bad(exc.field, exc.detail) from None
    lo, hi = _date(values, "from"), _date(values, "to")
    if lo and hi and hi < lo:
        raise _bad("to", "the end date is before the start date")
    store = (values.get("store") or "").strip() or None
    return BasketQuery(params, lo, hi, store)


async def _stores(
    conn: Any, actor: Actor, program_id: int, code: str | None
) -> dict[str, list[int]]:
    """The stores in scope, by time zone; a store manager or a partner sees only theirs."""
    q = select(t.stores.c.id, t.stores.c.timezone, t.stores.c.code).where(
        t.stores.c.program_id == program_id
    )
    if code is not None:
        q = q.where(t.stores.c.code == code)
    if actor.store_id is not None:
        q = q.where(t.stores.c.id == actor.store_id)
    if actor.partner_id is not None:
        q = q.where(t.stores.c.partner_id == actor.partner_id)
    rows = (await conn.execute(q)).all()
    if code is not None and not rows:
        raise _bad("store", f"no store {code!r} in this program")
    zones: dict[str, list[int]] = {}
    for sid, tz, _ in rows:
        zones.setdefault(tz or "Europe/Moscow", []).append(int(sid))
    return zones


async def store_options(rt: Runtime, actor: Actor, program_id: int) -> list[tuple[str, str]]:
    """(code, name) of the stores the viewer may filter by."""
    st = t.stores
    q = select(st.c.code, st.c.name).where(st.c.program_id == program_id).order_by(st.c.name)
    if actor.store_id is not None:
        q = q.where(st.c.id == actor.store_id)
    if actor.partner_id is not None:
        q = q.where(st.c.partner_id == actor.partner_id)
    async with rt.engine.connect() as conn:
        return [(str(code), str(name)) for code, name in await conn.execute(q)]


def utc_bounds(tz: str, lo: date | None, hi: date | None) -> tuple[datetime, datetime]:
    """Local dates ``lo``..``hi`` (inclusive) in ``tz`` as a half-open UTC range."""
    zone = ZoneInfo(tz)
    start = datetime(1970, 1, 1, tzinfo=UTC)
    end = datetime(9999, 1, 1, tzinfo=UTC)
    if lo is not None:
        start = datetime(lo.year, lo.month, lo.day, tzinfo=zone).astimezone(UTC)
    if hi is not None:
        nxt = hi + timedelta(days=1)
        end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).astimezone(UTC)
    return start, end


async def load_transactions(
    rt: Runtime, actor: Actor, program_id: int, q: BasketQuery
) -> list[tuple[str, ...]]:
    """Every confirmed receipt in scope (members' and not, from the till or imported) as
    the tuple of its distinct SKUs.  SKU strings are shared between receipts."""
    r, rl = t.receipts, t.receipt_lines
    pool: dict[str, str] = {}
    out: list[tuple[str, ...]] = []
    async with rt.engine.connect() as conn:
        zones = await _stores(conn, actor, program_id, q.store)
        for tz, store_ids in zones.items():
            start, end = utc_bounds(tz, q.date_from, q.date_to)
            stmt = (
                select(rl.c.receipt_pk, rl.c.sku)
                .join(r, r.c.id == rl.c.receipt_pk)
                .where(
                    r.c.program_id == program_id,
                    r.c.state == "confirmed",
                    r.c.store_id.in_(store_ids),
                    r.c.occurred_at >= start,
                    r.c.occurred_at < end,
                )
                .order_by(rl.c.receipt_pk)
            )
            result = await conn.stream(stmt.execution_options(yield_per=STREAM_ROWS))
            current: Any = None
            skus: set[str] = set()
            async for part in result.partitions(STREAM_ROWS):
                for pk, sku in part:
                    if pk != current:
                        if skus:
                            out.append(tuple(skus))
                        current, skus = pk, set()
                    skus.add(pool.setdefault(sku, sku))
            if skus:
                out.append(tuple(skus))
    return out


async def run_report(rt: Runtime, actor: Actor, program_id: int, q: BasketQuery) -> BasketReport:
    actor.require(Perm.REPORTS_READ)
    t0 = time.perf_counter()
    txs = await load_transactions(rt, actor, program_id, q)
    t1 = time.perf_counter()
    mined = await asyncio.to_thread(b.mine, txs, q.params)
    del txs
    return BasketReport(q, mined, t1 - t0, time.perf_counter() - t1)


# --- tables: the CSV/XLSX files, the API and the console read these -----------------------


def _num(x: float, numeric: bool) -> float | str:
    return x if numeric else b.number_text(x)


def rule_row(r: b.Rule, numeric: bool = False) -> tuple[Any, ...]:
    """A rule as the files write it: decimal text (CSV) or numbers (``numeric``, XLSX)."""
    return (
        b.items_text(r.antecedents),
        b.items_text(r.consequents),
        _num(r.support, numeric),
        _num(r.confidence, numeric),
        _num(r.lift, numeric),
    )


def itemset_row(i: b.Itemset, numeric: bool = False) -> tuple[Any, ...]:
    return (b.items_text(i.items), _num(i.support, numeric), len(i.items))


def tables(rep: BasketReport, what: str = "rules", *, fmt: str = "csv") -> list[exports.Table]:
    """The report's tables, the one asked first (CSV writes only the first); numbers as
    decimal text in CSV, as numbers in XLSX."""
    numeric = fmt == "xlsx"
    rules = [rule_row(r, numeric) for r in rep.mined.rules]
    sets = [itemset_row(i, numeric) for i in rep.mined.itemsets]
    pair = [
        exports.Table("Rules", RULES_HEADER, exports.rows_of(rules)),
        exports.Table("Itemsets", ITEMSETS_HEADER, exports.rows_of(sets)),
    ]
    return pair[::-1] if what == "itemsets" else pair


# --- saved rules and the cashier's suggestions ----------------------------------------------


async def _names(conn: Any, program_id: int, skus: Sequence[str]) -> dict[str, str]:
    """A name for each SKU, as the receipts carried it (the longest seen)."""
    rl = t.receipt_lines
    names: dict[str, str] = {}
    for i in range(0, len(skus), 500):
        chunk = list(skus[i : i + 500])
        rows = await conn.execute(
            select(rl.c.sku, func.max(rl.c.name))
            .where(rl.c.program_id == program_id, rl.c.sku.in_(chunk))
            .group_by(rl.c.sku)
        )
        names.update({str(s): str(n or "") for s, n in rows})
    return names


async def sku_names(rt: Runtime, program_id: int, skus: Iterable[str]) -> dict[str, str]:
    """Names of a page's SKUs, for people to read next to the codes."""
    async with rt.engine.connect() as conn:
        return await _names(conn, program_id, sorted(set(skus)))


async def do_save_rules(rt: Runtime, program_id: int, rep: BasketReport) -> int:
    """Replace the program's saved rules with the report's best ``SAVED_MAX``; returns
    how many were saved."""
    rules = rep.mined.rules[:SAVED_MAX]
    now = rt.now()
    async with rt.engine.begin() as conn:
        skus = sorted({s for r in rules for s in r.consequents})
        names = await _names(conn, program_id, skus)
        await conn.execute(delete(t.basket_rules).where(t.basket_rules.c.program_id == program_id))
        rows = [
            {
                "program_id": program_id,
                "rank": i,
                "antecedents": b.items_text(r.antecedents),
                "consequents": b.items_text(r.consequents),
                "support": r.support,
                "confidence": r.confidence,
                "lift": r.lift,
                "consequent_names": orjson.dumps(
                    {s: names.get(s, "") for s in r.consequents}
                ).decode(),
                "params": rep.query.describe(),
                "receipts": rep.mined.receipts,
                "computed_at": now,
            }
            for i, r in enumerate(rules, start=1)
        ]
        if rows:
            await conn.execute(insert(t.basket_rules), rows)
    return len(rules)


@dataclass(frozen=True)
class Suggestion:
    """ "Customers who buy ``because`` also buy ``skus``"."""

    skus: tuple[str, ...]
    names: tuple[str, ...]
    because: tuple[str, ...]
    confidence: float
    lift: float


async def suggestions(
    rt: Runtime, program_id: int, basket: Iterable[str], *, limit: int = b.SUGGESTIONS_MAX
) -> list[Suggestion]:
    """The saved rules' best consequents for a basket (``domain.basket.suggest``)."""
    have = {s.strip() for s in basket if s.strip()}
    if not have:
        return []
    br = t.basket_rules
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    br.c.antecedents,
                    br.c.consequents,
                    br.c.support,
                    br.c.confidence,
                    br.c.lift,
                    br.c.consequent_names,
                )
                .where(br.c.program_id == program_id)
                .order_by(br.c.rank)
            )
        ).all()
    names: dict[tuple[str, ...], dict[str, str]] = {}
    rules = []
    for a, c, s, conf, lift, nm in rows:
        rule = b.Rule(tuple(a.split()), tuple(c.split()), 0, s, conf, lift)
        names[rule.consequents] = orjson.loads(nm) if nm else {}
        rules.append(rule)
    return [
        Suggestion(
            r.consequents,
            tuple(names[r.consequents].get(s, "") for s in r.consequents),
            r.antecedents,
            r.confidence,
            r.lift,
        )
        for r in b.suggest(rules, have, limit=limit)
    ]


async def saved_params(rt: Runtime, program_id: int) -> dict[str, str]:
    """The thresholds the program's rules were last saved with (or the defaults)."""
    async with rt.engine.connect() as conn:
        text = (
            await conn.execute(
                select(t.basket_rules.c.params)
                .where(t.basket_rules.c.program_id == program_id)
                .limit(1)
            )
        ).scalar_one_or_none()
    values = dict(REFRESH_DEFAULT)
    for part in (text or "").split():
        key, _, value = part.partition("=")
        if key in values and value:
            values[key] = value
    return values


async def refresh_all(rt: Runtime, *, actor: Actor) -> dict[int, int]:
    """The worker's daily job: each program's rules from its last ``REFRESH_DAYS`` days of
    receipts, with the thresholds last saved; returns rules saved per program id."""
    async with rt.engine.connect() as conn:
        ids = [int(x) for x in (await conn.execute(select(t.programs.c.id))).scalars()]
    done: dict[int, int] = {}
    today = rt.now().date()
    for pid in ids:
        values = await saved_params(rt, pid)
        values["from"] = (today - timedelta(days=REFRESH_DAYS)).isoformat()
        rep = await run_report(rt, actor, pid, parse_query(values))
        done[pid] = await do_save_rules(rt, pid, rep)
    return done
