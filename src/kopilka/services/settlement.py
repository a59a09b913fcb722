"""Coalition settlement (issue 9, docs/coalition.md, ADR 0025): the clearing report of a
period, settlement terms, closing a month, and the frozen figures of closed months.

The report is aggregated in the database: one grouped query over the period's ledger
entries (``flows``) answers a handful of rows per (movement, issuer, acceptor); the pure
``domain.settlement.clear`` prices them.  A month is the program's local month
(``timezone``); an entry belongs to the month it was booked in (``created_at``), so a
refund booked in December of a November receipt is December's, and a closed month never
changes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import and_, case, func, insert, select
from sqlalchemy.exc import IntegrityError

from kopilka.domain.program import ProgramSettings
from kopilka.domain.settlement import (
    LEGAL_FIELDS,
    Clearing,
    Flow,
    Obligation,
    PairNet,
    Party,
    Position,
    Terms,
    clear,
)
from kopilka.services import audit
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime, settings_from_json
from kopilka.store import tables as t

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
KINDS = ("earn", "burn", "refund", "expire", "adjust")


@dataclass(frozen=True)
class Program:
    id: int
    code: str
    name: str
    currency: str
    settings: ProgramSettings


@dataclass(frozen=True)
class Partner:
    id: int
    code: str
    name: str
    legal: dict[str, str]


@dataclass(frozen=True)
class Report:
    """A period's clearing as shown: ``period`` ('YYYY-MM') or a day range, its UTC window,
    whether it is closed (then ``clearing`` is the frozen one) and by whom."""

    program: Program
    label: str
    period: str | None
    start: datetime
    end: datetime
    clearing: Clearing
    partners: dict[int, Partner]
    closed: bool = False
    closed_at: datetime | None = None
    closed_by: str | None = None
    figures_sha256: str | None = None

    def name(self, party: Party) -> str:
        if party is None:
            return "operator"
        p = self.partners.get(party)
        return p.name if p else f"#{party}"

    def code(self, party: Party) -> str:
        if party is None:
            return "operator"
        p = self.partners.get(party)
        return p.code if p else f"#{party}"


# --- input ------------------------------------------------------------------------------------


def parse_period(text: str | None, *, field: str = "period") -> str:
    if text is None or not PERIOD_RE.match(text.strip()):
        raise ServiceError(
            "validation_failed", f"{field}: a month as YYYY-MM, e.g. 2026-11", field=field
        )
    return text.strip()


def parse_day(text: str | None, *, field: str) -> date:
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise ServiceError(
            "validation_failed", f"{field}: a date as YYYY-MM-DD", field=field
        ) from None


def parse_decimal(
    text: Any, *, field: str, low: Decimal, high: Decimal, low_open: bool = False
) -> Decimal:
    try:
        value = Decimal(str(text).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        raise ServiceError("validation_failed", f"{field}: a number", field=field) from None
    if not value.is_finite() or value < low or value > high or (low_open and value == low):
        sign = ">" if low_open else ">="
        raise ServiceError(
            "validation_failed", f"{field}: must be {sign} {low} and <= {high}", field=field
        )
    if value.as_tuple().exponent < -6:  # type: ignore[operator]
        raise ServiceError("validation_failed", f"{field}: at most 6 decimals", field=field)
    return value


def parse_rate(text: Any, *, field: str = "rate") -> Decimal:
    """Roubles per point: more than 0, at most 1 000 000, at most 6 decimals."""
    return parse_decimal(text, field=field, low=Decimal(0), high=Decimal(1_000_000), low_open=True)


def parse_fee(text: Any, *, field: str = "fee_percent") -> Decimal:
    """The operator's fee in percent: 0 to 100."""
    return parse_decimal(text, field=field, low=Decimal(0), high=Decimal(100))


# What each legal field must look like (Russian registries); empty clears it.
LEGAL_PATTERNS = {
    "inn": (r"^(\d{10}|\d{12})$", "10 or 12 digits"),
    "kpp": (r"^\d{9}$", "9 digits"),
    "ogrn": (r"^(\d{13}|\d{15})$", "13 or 15 digits"),
    "bank_account": (r"^\d{20}$", "20 digits"),
    "bank_bik": (r"^\d{9}$", "9 digits"),
    "bank_corr_account": (r"^\d{20}$", "20 digits"),
    "contact_email": (r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "an e-mail address"),
}
LEGAL_SIZES = {
    "legal_name": 300,
    "legal_address": 500,
    "bank_name": 200,
}


def check_legal(values: dict[str, Any]) -> dict[str, str]:
    """Legal details as typed, trimmed; a bad one is refused naming its field."""
    out: dict[str, str] = {}
    for name, raw in values.items():
        if name not in LEGAL_FIELDS:
            raise ServiceError("validation_failed", f"{name}: not a legal detail", field=name)
        if not isinstance(raw, str):
            raise ServiceError("validation_failed", f"{name}: must be text", field=name)
        value = raw.strip()
        rule = LEGAL_PATTERNS.get(name)
        if value and rule and not re.match(rule[0], value):
            raise ServiceError("validation_failed", f"{name}: {rule[1]}", field=name)
        if len(value) > LEGAL_SIZES.get(name, 254):
            raise ServiceError("validation_failed", f"{name}: too long", field=name)
        out[name] = value
    return out


def month_window(period: str, tz: str) -> tuple[datetime, datetime]:
    """The UTC instants where the program's local month starts and the next one starts."""
    y, m = (int(x) for x in period.split("-"))
    zone = ZoneInfo(tz)
    start = datetime(y, m, 1, tzinfo=zone)
    end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def days_window(first: date, last: date, tz: str) -> tuple[datetime, datetime]:
    if last < first:
        raise ServiceError("validation_failed", "to: must not be before from", field="to")
    zone = ZoneInfo(tz)
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    nxt = last + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


# --- reads ------------------------------------------------------------------------------------


async def find_program(rt: Runtime, code: str | None) -> Program:
    """The program with this code, or the only one there is."""
    p = t.programs.c
    q = select(p.id, p.code, p.name, p.currency, p.settings)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q if code is None else q.where(p.code == code))).all()
    if code is not None and not rows:
        raise ServiceError("program_not_found", f"program: no program {code!r}", field="program")
    if len(rows) != 1:
        raise ServiceError(
            "validation_failed",
            f"program: there are {len(rows)} programs; name one (program code)",
            field="program",
        )
    r = rows[0]
    return Program(int(r.id), r.code, r.name, r.currency, settings_from_json(r.settings))


async def load_partners(conn: Any, program_id: int) -> dict[int, Partner]:
    pt = t.partners.c
    cols = [pt.id, pt.code, pt.name, *(getattr(pt, f) for f in LEGAL_FIELDS)]
    rows = (await conn.execute(select(*cols).where(pt.program_id == program_id))).all()
    return {
        int(r.id): Partner(
            int(r.id), r.code, r.name, {f: getattr(r, f) or "" for f in LEGAL_FIELDS}
        )
        for r in rows
    }


async def current_terms(conn: Any, program: Program) -> Terms:
    """The terms every open period is priced with: the stored ones, or the program's
    ``point_value`` and no fee."""
    st = t.settlement_terms.c
    row = (
        await conn.execute(select(st.rate, st.fee_percent).where(st.program_id == program.id))
    ).first()
    if row is None:
        return Terms(program.settings.point_value, Decimal("0"))
    rate = Decimal(row.rate) if row.rate is not None else program.settings.point_value
    return Terms(rate, Decimal(row.fee_percent))


async def flows(conn: Any, program_id: int, start: datetime, end: datetime) -> list[Flow]:
    """The period's ledger movements summed by (movement, issuer, acceptor), in SQL.

    Issuer: the funding partner of the lot an entry touches (an entry without a lot, an
    earn that only paid a debt or a debt a refund added, carries its own funder).
    Acceptor: the partner of the entry's receipt (refund entries carry the receipt too);
    no receipt (expiry, adjustment, a catalogue reward): the operator.
    When ``ledger_entries.partner_id`` (where an entry was booked, migration 0024) is in,
    it replaces the join to ``receipts`` here."""
    le, lt, r = t.ledger_entries, t.lots, t.receipts
    issuer = case(
        (le.c.lot_id.is_not(None), lt.c.funding_partner_id), else_=le.c.funding_partner_id
    )
    kind = case(
        (and_(le.c.kind == "refund", le.c.amount > 0), "refund_in"),
        (le.c.kind == "refund", "refund_out"),
        else_=le.c.kind,
    )
    acceptor = r.c.partner_id
    q = (
        select(
            kind.label("kind"),
            issuer.label("issuer"),
            acceptor.label("acceptor"),
            func.sum(le.c.amount).label("points"),
        )
        .select_from(
            le.outerjoin(lt, lt.c.id == le.c.lot_id).outerjoin(r, r.c.id == le.c.receipt_pk)
        )
        .where(
            le.c.program_id == program_id,
            le.c.created_at >= start,
            le.c.created_at < end,
            le.c.kind.in_(KINDS),
        )
        .group_by(kind, issuer, acceptor)
    )
    return [
        Flow(
            row.kind,
            None if row.issuer is None else int(row.issuer),
            None if row.acceptor is None else int(row.acceptor),
            Decimal(row.points),
        )
        for row in (await conn.execute(q)).all()
        if row.points
    ]


async def compute(
    rt: Runtime, program: Program, start: datetime, end: datetime, terms: Terms | None = None
) -> tuple[Clearing, dict[int, Partner]]:
    """The clearing of [start, end) priced with ``terms`` (default: the current ones)."""
    async with rt.engine.connect() as conn:
        partners = await load_partners(conn, program.id)
        terms = terms or await current_terms(conn, program)
        fl = await flows(conn, program.id, start, end)
    return clear(fl, terms, partners), partners


async def period_report(rt: Runtime, program: Program, period: str) -> Report:
    """A month: the frozen figures if it is closed, else computed now."""
    start, end = month_window(period, program.settings.timezone)
    sp = t.settlement_periods.c
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(sp.figures, sp.closed_at, sp.closed_by, sp.figures_sha256).where(
                    sp.program_id == program.id, sp.period == period
                )
            )
        ).first()
        if row is not None:
            partners = await load_partners(conn, program.id)
            return Report(
                program,
                period,
                period,
                start,
                end,
                clearing_from_json(row.figures),
                partners,
                closed=True,
                closed_at=row.closed_at,
                closed_by=row.closed_by,
                figures_sha256=row.figures_sha256,
            )
    clearing, partners = await compute(rt, program, start, end)
    return Report(program, period, period, start, end, clearing, partners)


async def range_report(rt: Runtime, program: Program, first: date, last: date) -> Report:
    """Any range of days, computed now with the current terms (the open view)."""
    start, end = days_window(first, last, program.settings.timezone)
    clearing, partners = await compute(rt, program, start, end)
    return Report(program, f"{first}…{last}", None, start, end, clearing, partners)


async def list_periods(rt: Runtime, program_id: int) -> list[dict[str, Any]]:
    sp = t.settlement_periods.c
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(sp.period, sp.closed_at, sp.closed_by, sp.rate, sp.fee_percent)
                .where(sp.program_id == program_id)
                .order_by(sp.period.desc())
            )
        ).all()
    return [
        {
            "period": r.period,
            "closed_at": r.closed_at,
            "closed_by": r.closed_by,
            "rate": r.rate,
            "fee_percent": r.fee_percent,
        }
        for r in rows
    ]


# --- frozen figures ---------------------------------------------------------------------------

_POS_FIELDS = (
    "issued",
    "burned",
    "burned_elsewhere",
    "expired",
    "taken_back",
    "given_back",
    "adjusted",
    "pays",
    "receives",
    "fee",
    "net",
)


def clearing_to_json(c: Clearing) -> str:
    data = {
        "rate": str(c.terms.rate),
        "fee_percent": str(c.terms.fee_percent),
        "positions": [
            {"party": p.party, **{f: str(getattr(p, f)) for f in _POS_FIELDS}} for p in c.positions
        ],
        "obligations": [
            {
                "issuer": o.issuer,
                "acceptor": o.acceptor,
                "points": str(o.points),
                "roubles": str(o.roubles),
                "fee": str(o.fee),
            }
            for o in c.obligations
        ],
        "pairs": [
            {"a": x.a, "b": x.b, "points": str(x.points), "roubles": str(x.roubles)}
            for x in c.pairs
        ],
    }
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def clearing_from_json(text: str) -> Clearing:
    d = orjson.loads(text)
    D = Decimal
    return Clearing(
        terms=Terms(D(d["rate"]), D(d["fee_percent"])),
        positions=[
            Position(p["party"], **{f: D(p[f]) for f in _POS_FIELDS}) for p in d["positions"]
        ],
        obligations=[
            Obligation(o["issuer"], o["acceptor"], D(o["points"]), D(o["roubles"]), D(o["fee"]))
            for o in d["obligations"]
        ],
        pairs=[PairNet(x["a"], x["b"], D(x["points"]), D(x["roubles"])) for x in d["pairs"]],
    )


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


# --- writes -----------------------------------------------------------------------------------


async def do_set_terms(
    rt: Runtime,
    program: Program,
    *,
    rate: Decimal | None,
    fee_percent: Decimal,
    actor: audit.Actor,
) -> Terms:
    """Store the terms every open period is priced with (``rate`` None: the program's
    ``point_value``).  Closed periods keep theirs."""
    st = t.settlement_terms
    now = rt.now()
    async with rt.engine.begin() as conn:
        before = await current_terms(conn, program)
        await conn.execute(st.delete().where(st.c.program_id == program.id))
        await conn.execute(
            insert(st),
            {
                "program_id": program.id,
                "rate": None if rate is None else str(rate),
                "fee_percent": str(fee_percent),
                "updated_at": now,
                "updated_by": actor.name[:200],
            },
        )
        after = await current_terms(conn, program)
        await audit.record(
            conn,
            actor,
            "settlement.terms",
            "program",
            program.code,
            at=now,
            program_id=program.id,
            before={"rate": before.rate, "fee_percent": before.fee_percent},
            after={"rate": after.rate, "fee_percent": after.fee_percent},
        )
    return after


async def do_set_legal(
    rt: Runtime, program: Program, partner_id: int, values: dict[str, Any], *, actor: audit.Actor
) -> None:
    """Change a partner's legal details (what its statements print from now on)."""
    clean = check_legal(values)
    pt = t.partners
    now = rt.now()
    async with rt.engine.begin() as conn:
        before = (await load_partners(conn, program.id))[partner_id].legal
        await conn.execute(pt.update().where(pt.c.id == partner_id).values(**clean))
        await audit.record(
            conn,
            actor,
            "partner.legal",
            "partner",
            partner_id,
            at=now,
            program_id=program.id,
            partner_id=partner_id,
            before={k: before[k] for k in clean},
            after=clean,
        )


async def do_close(
    rt: Runtime,
    program: Program,
    period: str,
    *,
    actor: audit.Actor,
    statements: Callable[[Report, Party], Awaitable[bytes]] | None = None,
) -> Report:
    """Close a finished month: freeze its figures (priced with the current terms) and,
    when ``statements`` is given (``async (report, party) -> signed PDF bytes``), each party's
    signed statement, in one transaction.

    Refuses a month not yet over (``period_not_finished``) and a closed one
    (``period_closed``); the unique key (program, period) makes two closes at once one."""
    start, end = month_window(period, program.settings.timezone)
    now = rt.now()
    if now < end:
        raise ServiceError(
            "period_not_finished",
            f"period: {period} is not over yet (it ends {end.isoformat()}); "
            "only a finished month can be closed",
            field="period",
        )
    sp = t.settlement_periods
    async with rt.engine.connect() as conn:
        closed = (
            await conn.execute(
                select(sp.c.closed_at).where(sp.c.program_id == program.id, sp.c.period == period)
            )
        ).first()
    if closed is not None:
        raise _already_closed(period, closed.closed_at)
    clearing, partners = await compute(rt, program, start, end)
    figures = clearing_to_json(clearing)
    report = Report(
        program,
        period,
        period,
        start,
        end,
        clearing,
        partners,
        closed=True,
        closed_at=now,
        closed_by=actor.name,
        figures_sha256=sha256(figures),
    )
    files: list[tuple[int, bytes]] = []
    if statements is not None:
        for p in clearing.positions:
            files.append((0 if p.party is None else p.party, await statements(report, p.party)))
    try:
        async with rt.engine.begin() as conn:
            period_id = (
                await conn.execute(
                    insert(sp).returning(sp.c.id),
                    {
                        "program_id": program.id,
                        "period": period,
                        "state": "closed",
                        "rate": str(clearing.terms.rate),
                        "fee_percent": str(clearing.terms.fee_percent),
                        "figures": figures,
                        "figures_sha256": report.figures_sha256,
                        "closed_at": now,
                        "closed_by": actor.name[:200],
                    },
                )
            ).scalar_one()
            for party_id, pdf in files:
                await conn.execute(
                    insert(t.settlement_statements),
                    {
                        "period_id": period_id,
                        "partner_id": party_id,
                        "pdf": pdf,
                        "sha256": sha256(pdf),
                        "created_at": now,
                    },
                )
            await audit.record(
                conn,
                actor,
                "settlement.close",
                "settlement_period",
                f"{program.code}:{period}",
                at=now,
                program_id=program.id,
                after={"period": period, "figures_sha256": report.figures_sha256},
            )
    except IntegrityError:
        raise _already_closed(period, None) from None
    return report


def _already_closed(period: str, at: datetime | None) -> ServiceError:
    when = f" on {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if at else ""
    return ServiceError(
        "period_closed", f"period: {period} is already closed{when}", field="period"
    )


async def check_period(rt: Runtime, program: Program, period: str) -> list[str]:
    """Recompute a closed month from the ledger with its frozen terms and compare with
    the frozen figures; the differences, one line each (none: it holds)."""
    rep = await period_report(rt, program, period)
    if not rep.closed:
        raise ServiceError("validation_failed", f"period: {period} is not closed", field="period")
    again, _ = await compute(rt, program, rep.start, rep.end, rep.clearing.terms)
    diffs: list[str] = []
    if sha256(clearing_to_json(again)) != rep.figures_sha256:
        old = orjson.loads(clearing_to_json(rep.clearing))
        new = orjson.loads(clearing_to_json(again))
        for key in ("positions", "obligations", "pairs"):
            a = {orjson.dumps(x, option=orjson.OPT_SORT_KEYS) for x in old[key]}
            b = {orjson.dumps(x, option=orjson.OPT_SORT_KEYS) for x in new[key]}
            diffs += [f"{key}: frozen {x.decode()}" for x in sorted(a - b)]
            diffs += [f"{key}: ledger {x.decode()}" for x in sorted(b - a)]
        if not diffs:
            diffs.append("figures: the frozen hash does not match the stored figures")
    return diffs


async def stored_statement(
    rt: Runtime, program: Program, period: str, party: Party
) -> bytes | None:
    """The signed statement made when ``period`` was closed, if it was."""
    sp, ss = t.settlement_periods.c, t.settlement_statements.c
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(ss.pdf)
                .select_from(
                    t.settlement_statements.join(
                        t.settlement_periods, t.settlement_periods.c.id == ss.period_id
                    )
                )
                .where(
                    sp.program_id == program.id,
                    sp.period == period,
                    ss.partner_id == (0 if party is None else party),
                )
            )
        ).first()
    return None if row is None else bytes(row.pdf)


# --- what one party sees ----------------------------------------------------------------------


def scoped(c: Clearing, party: int) -> Clearing:
    """What a partner's users see: its own position, the obligations it is a side of and
    its nets with each counterparty; nothing about other pairs."""
    return Clearing(
        terms=c.terms,
        positions=[p for p in c.positions if p.party == party],
        obligations=[o for o in c.obligations if party in (o.issuer, o.acceptor)],
        pairs=[x for x in c.pairs if party in (x.a, x.b)],
    )


def parties_of(c: Clearing) -> Sequence[Party]:
    return [p.party for p in c.positions]
