"""The report builder's use cases: run a definition, save it and share it with roles,
schedule it to be e-mailed as XLSX or PDF (docs/analytics/builder.md).

Who sees what:

- building and running needs ``reports.read``; the rows are limited to the viewer's
  program, and to its partner's or store's receipts for scoped roles;
- a saved report is visible to its owner, to the roles it is shared with and to the
  ``owner`` role (the administrator); only its owner and the ``owner`` role may change,
  schedule or delete it;
- a report keeps its author's partner/store scope: whoever opens it, and its scheduled
  e-mails, never show more than its author could see.

Scheduled e-mails: the worker calls ``run_due``.  A due run moves the schedule's
``next_run_at`` with a conditional update and writes one outbox event whose
``dedup_key`` is ``report:<schedule>:<run time>`` (unique): however many workers run,
however often, a run is e-mailed once.  A worker that was down for several periods
sends the latest due run once, not every one it missed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson
from pydantic import ValidationError
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics import builder
from kopilka.domain import report_builder as rb
from kopilka.domain.roles import Perm, Role
from kopilka.notify.messages import REPORT_TOPIC
from kopilka.services import exports
from kopilka.services.audit import Actor, record
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime, settings_from_json
from kopilka.store import tables as t

sr, rs = t.saved_reports, t.report_schedules
FILE_FORMATS = ("csv", "xlsx", "pdf")
ROLES = tuple(r.value for r in Role)


# --- definitions --------------------------------------------------------------------------


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + ("from" if part == "from_" else str(part))
    return out or "definition"


# pydantic's error types in words a console user reads (and the console translates)
PLAIN = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "literal_error": "not one of the choices",
    "too_short": "choose at least one",
    "too_long": "too many",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "greater_than_equal": "out of range",
    "less_than_equal": "out of range",
    "date_parsing": "a date as YYYY-MM-DD",
    "date_from_datetime_parsing": "a date as YYYY-MM-DD",
    "date_type": "a date as YYYY-MM-DD",
    "list_type": "a list",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "string_too_long": "too long",
    "string_too_short": "required",
    "model_type": "an object",
    "dict_type": "an object",
}


def parse_definition(data: Any) -> rb.Definition:
    """A definition from JSON-like data; ``validation_failed`` lists every bad field."""
    try:
        return rb.Definition.model_validate(data)
    except ValidationError as exc:
        errors = [
            {
                "field": _path(e["loc"]),
                "code": "bad_value",
                "detail": PLAIN.get(e["type"]) or str(e["msg"]).removeprefix("Value error, "),
            }
            for e in exc.errors(include_url=False)
        ]
        first = errors[0]
        raise ServiceError(
            "validation_failed",
            f"{first['field']}: {first['detail']}",
            field=first["field"],
            errors=errors,
        ) from None


def definition_json(d: rb.Definition) -> str:
    return d.model_dump_json(by_alias=True)


async def program_timezone(conn: AsyncConnection, program_id: int) -> str:
    """The program's time zone (its settings): the day boundary of every report."""
    raw = (
        await conn.execute(select(t.programs.c.settings).where(t.programs.c.id == program_id))
    ).scalar_one_or_none()
    if raw is None:
        raise ServiceError("program_not_found", "No such program.")
    return settings_from_json(raw).timezone


def _check_program(actor: Actor, program_id: int) -> None:
    if actor.program_id is not None and actor.program_id != program_id:
        raise ServiceError("forbidden", "this program is outside your scope")


async def scope_for(
    rt: Runtime, actor: Actor, program_id: int, report: SavedReport | None = None
) -> builder.Scope:
    """The rows the viewer may see: its own scope, narrowed by the report's author's."""
    actor.require(Perm.REPORTS_READ)
    _check_program(actor, program_id)
    partner = actor.partner_id if actor.partner_id is not None else None
    store = actor.store_id
    if report is not None:
        partner = partner if partner is not None else report.partner_id
        store = store if store is not None else report.store_id
    async with rt.engine.connect() as conn:
        tz = await program_timezone(conn, program_id)
    return builder.Scope(program_id, tz, partner, store)


async def run_definition(
    rt: Runtime, actor: Actor, program_id: int, d: rb.Definition
) -> builder.Result:
    """An ad-hoc report (the builder's preview, the API's ``custom/run``)."""
    scope = await scope_for(rt, actor, program_id)
    async with rt.engine.connect() as conn:
        return await builder.run(conn, d, scope, now=rt.now())


# --- saved reports --------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedReport:
    id: int
    program_id: int
    name: str
    definition: rb.Definition
    shared_roles: tuple[str, ...]
    owner_kind: str
    owner_id: int | None
    owner_name: str
    partner_id: int | None
    store_id: int | None
    created_at: datetime
    updated_at: datetime

    def owned_by(self, actor: Actor) -> bool:
        return self.owner_kind == actor.kind and self.owner_id == actor.id

    def visible_to(self, actor: Actor) -> bool:
        """Its author, an owner, or a role it is shared with — and, for a partner's or a
        store's staff, only a report of the program or of their own partner or store
        (another partner's report names what that partner looks at)."""
        if not self.in_scope_of(actor):
            return False
        return (
            actor.role == Role.OWNER.value
            or self.owned_by(actor)
            or actor.role in self.shared_roles
        )

    def in_scope_of(self, actor: Actor) -> bool:
        program_wide = self.store_id is None and self.partner_id is None
        if actor.store_id is not None:
            return program_wide or self.store_id == actor.store_id
        if actor.partner_id is not None:
            return program_wide or (self.store_id is None and self.partner_id == actor.partner_id)
        return True

    def editable_by(self, actor: Actor) -> bool:
        return actor.role == Role.OWNER.value or self.owned_by(actor)


def _report(row: Any) -> SavedReport:
    return SavedReport(
        id=row.id,
        program_id=row.program_id,
        name=row.name,
        definition=rb.Definition.model_validate_json(row.definition),
        shared_roles=tuple(x for x in row.shared_roles.split(",") if x),
        owner_kind=row.owner_kind,
        owner_id=row.owner_id,
        owner_name=row.owner_name,
        partner_id=row.partner_id,
        store_id=row.store_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _visible(actor: Actor) -> Any:
    """SQL: the reports this actor may see (the same rule as ``visible_to``)."""
    program_wide = and_(sr.c.store_id.is_(None), sr.c.partner_id.is_(None))
    scoped = and_(True)
    if actor.store_id is not None:
        scoped = or_(program_wide, sr.c.store_id == actor.store_id)
    elif actor.partner_id is not None:
        scoped = or_(
            program_wide, and_(sr.c.store_id.is_(None), sr.c.partner_id == actor.partner_id)
        )
    if actor.role == Role.OWNER.value:
        return scoped
    mine = and_(sr.c.owner_kind == actor.kind, sr.c.owner_id == actor.id)
    if actor.id is None:
        mine = and_(sr.c.owner_kind == actor.kind, sr.c.owner_id.is_(None))
    shared = ("," + sr.c.shared_roles + ",").contains(f",{actor.role},", autoescape=True)
    return and_(scoped, or_(mine, shared))


async def list_reports(rt: Runtime, actor: Actor, program_id: int) -> list[SavedReport]:
    """The saved reports of the program the actor may see, by name."""
    actor.require(Perm.REPORTS_READ)
    _check_program(actor, program_id)
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(sr)
            .where(sr.c.program_id == program_id, _visible(actor))
            .order_by(sr.c.name, sr.c.id)
        )
        return [_report(r) for r in rows]


async def _get(conn: AsyncConnection, actor: Actor, report_id: int) -> SavedReport:
    row = (await conn.execute(select(sr).where(sr.c.id == report_id))).first()
    if row is None:
        raise ServiceError("not_found", "No such report.")
    rep = _report(row)
    if not rep.visible_to(actor) or (
        actor.program_id is not None and actor.program_id != rep.program_id
    ):
        raise ServiceError("not_found", "No such report.")  # not even whether it exists
    return rep


async def get_report(rt: Runtime, actor: Actor, report_id: int) -> SavedReport:
    actor.require(Perm.REPORTS_READ)
    async with rt.engine.connect() as conn:
        return await _get(conn, actor, report_id)


async def run_saved(
    rt: Runtime, actor: Actor, report_id: int
) -> tuple[SavedReport, builder.Result]:
    rep = await get_report(rt, actor, report_id)
    scope = await scope_for(rt, actor, rep.program_id, rep)
    async with rt.engine.connect() as conn:
        return rep, await builder.run(conn, rep.definition, scope, now=rt.now())


def check_roles(roles: Sequence[str]) -> tuple[str, ...]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ServiceError(
            "validation_failed", f"unknown role {unknown[0]!r}", field="shared_roles"
        )
    return tuple(sorted(set(roles)))


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ServiceError("validation_failed", "give the report a name", field="name")
    if len(name) > 200:
        raise ServiceError("validation_failed", "at most 200 characters", field="name")
    return name


async def do_save_report(
    rt: Runtime,
    actor: Actor,
    program_id: int,
    *,
    name: str,
    definition: rb.Definition,
    shared_roles: Sequence[str] = (),
    report_id: int | None = None,
) -> int:
    """Create (``report_id`` None) or change a saved report; audited."""
    actor.require(Perm.REPORTS_READ)
    _check_program(actor, program_id)
    values = {
        "name": check_name(name),
        "definition": definition_json(definition),
        "shared_roles": ",".join(check_roles(shared_roles)),
        "updated_at": rt.now(),
    }
    async with rt.engine.begin() as conn:
        if report_id is None:
            values |= {
                "program_id": program_id,
                "owner_kind": actor.kind,
                "owner_id": actor.id,
                "owner_name": actor.name[:200],
                "partner_id": actor.partner_id,
                "store_id": actor.store_id,
                "created_at": rt.now(),
            }
            res = await conn.execute(insert(sr).returning(sr.c.id), values)
            report_id = int(res.scalar_one())
            before = None
        else:
            old = await _editable(conn, actor, report_id)
            before = {"name": old.name, "definition": definition_json(old.definition)}
            await conn.execute(update(sr).where(sr.c.id == report_id).values(**values))
        await record(
            conn,
            actor,
            "report.save",
            "saved_report",
            report_id,
            at=rt.now(),
            program_id=program_id,
            before=before,
            after={k: values[k] for k in ("name", "definition", "shared_roles")},
        )
    return report_id


async def check_editable(rt: Runtime, actor: Actor, report_id: int) -> SavedReport:
    """The report, if the actor sees it (else 404) and may change it (else 403): called
    before a change's body is read, so a caller without the right learns nothing more."""
    actor.require(Perm.REPORTS_READ)
    async with rt.engine.connect() as conn:
        return await _editable(conn, actor, report_id)


async def _editable(conn: AsyncConnection, actor: Actor, report_id: int) -> SavedReport:
    rep = await _get(conn, actor, report_id)
    if not rep.editable_by(actor):
        raise ServiceError("forbidden", "only the report's owner may change it")
    return rep


async def do_delete_report(rt: Runtime, actor: Actor, report_id: int, *, confirm_name: str) -> None:
    """Delete a report and its schedules; ``confirm_name`` must be its name, typed."""
    actor.require(Perm.REPORTS_READ)
    async with rt.engine.begin() as conn:
        rep = await _editable(conn, actor, report_id)
        if confirm_name.strip() != rep.name:
            raise ServiceError(
                "validation_failed", "type the report's name to delete it", field="confirm"
            )
        await conn.execute(delete(rs).where(rs.c.report_id == report_id))
        await conn.execute(delete(sr).where(sr.c.id == report_id))
        await record(
            conn,
            actor,
            "report.delete",
            "saved_report",
            report_id,
            at=rt.now(),
            program_id=rep.program_id,
            before={"name": rep.name, "definition": definition_json(rep.definition)},
        )


# --- files ----------------------------------------------------------------------------------


def period_text(res: builder.Result) -> str:
    return f"{res.first:%d.%m.%Y} – {res.last:%d.%m.%Y}"


async def report_file(
    res: builder.Result,
    *,
    title: str,
    fmt: str,
    lang: str = "ru",
    tr: Any = str,
) -> bytes:
    """The result as CSV (for spreadsheets), XLSX or PDF (with a bar chart when the
    report has a dimension)."""
    table = res.table(title, tr)
    if fmt == "xlsx":
        return await exports.xlsx_bytes(table)
    if fmt == "csv":
        return await exports.csv_bytes(table)
    from kopilka.services import pdf  # fpdf2 and Pillow: only for a PDF

    images: list[bytes] = []
    d = res.definition
    if d.dimensions and res.rows and d.chart != "table":
        nd = len(d.dimensions)
        labels = [pdf.cell_text(row[0], lang) for row in res.rows]
        caption = tr(builder.MEASURE_LABELS[d.measures[0]])
        images.append(pdf.bar_chart_png(labels, [row[nd] for row in res.rows], caption=caption))
    return pdf.pdf_bytes(
        title,
        subtitle=period_text(res),
        tables=[pdf.PdfTable("", res.header(tr), res.rows, res.truncated)],
        images=images,
        lang=lang,
    )


def media_type(fmt: str) -> str:
    if fmt == "pdf":
        from kopilka.services import pdf

        return pdf.PDF_TYPE
    return exports.media_type(fmt)


def download_headers(name: str, fmt: str) -> dict[str, str]:
    """Headers that make a browser save the file under the report's name, Cyrillic
    included (RFC 6266 ``filename*``; HTTP headers themselves are Latin-1)."""
    ascii_name = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in name
    )
    return {
        "Content-Disposition": f'attachment; filename="{ascii_name.strip("_") or "report"}.{fmt}"; '
        f"filename*=UTF-8''{quote(name)}.{fmt}",
        "Cache-Control": "no-store",
    }


# --- schedules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    id: int
    report_id: int
    frequency: str
    at_time: str
    weekday: int | None
    day: int | None
    timezone: str
    recipients: tuple[str, ...]
    format: str
    locale: str
    next_run_at: datetime
    last_run_at: datetime | None

    @property
    def cadence(self) -> rb.Cadence:
        return rb.Cadence(
            self.frequency, rb.parse_time(self.at_time), self.timezone, self.weekday, self.day
        )


def _schedule(row: Any) -> Schedule:
    return Schedule(
        row.id,
        row.report_id,
        row.frequency,
        row.at_time,
        row.weekday,
        row.day,
        row.timezone,
        tuple(x for x in row.recipients.split(",") if x),
        row.format,
        row.locale,
        row.next_run_at,
        row.last_run_at,
    )


def _int_or_none(values: Mapping[str, str], key: str) -> int | None:
    raw = (values.get(key) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ServiceError("validation_failed", "a whole number", field=key) from None


def parse_schedule(values: Mapping[str, str], *, default_tz: str) -> dict[str, Any]:
    """A schedule's columns from a form (or the API's body as strings)."""

    def bad(exc: ValueError) -> ServiceError:
        text = str(exc)
        name, _, _ = text.partition(": ")
        known = {"frequency", "weekday", "day", "at", "recipients", "timezone"}
        return ServiceError("validation_failed", text, field=name if name in known else "at")

    fmt = (values.get("format") or "xlsx").strip()
    if fmt not in rb.FORMATS:
        raise ServiceError("validation_failed", "format: xlsx or pdf", field="format")
    try:
        at = rb.parse_time(values.get("at") or "")
        tz = (values.get("timezone") or "").strip() or default_tz
        try:
            rb.zone(tz)
        except ValueError as exc:
            raise ValueError(f"timezone: {exc}") from None
        cadence = rb.Cadence(
            (values.get("frequency") or "").strip(),
            at,
            tz,
            _int_or_none(values, "weekday"),
            _int_or_none(values, "day"),
        )
        rb.check_cadence(cadence)
        recipients = rb.parse_addresses(values.get("recipients") or "")
    except ValueError as exc:
        raise bad(exc) from None
    if len(", ".join(recipients)) > 500:
        raise ServiceError("validation_failed", "recipients: too many", field="recipients")
    locale = values.get("locale") or "ru"
    return {
        "frequency": cadence.frequency,
        "at_time": f"{at:%H:%M}",
        "weekday": cadence.weekday if cadence.frequency == "weekly" else None,
        "day": cadence.day if cadence.frequency == "monthly" else None,
        "timezone": tz,
        "recipients": ",".join(recipients),
        "format": fmt,
        "locale": locale if locale in ("ru", "en") else "ru",
        "cadence": cadence,
    }


async def do_add_schedule(
    rt: Runtime, actor: Actor, report_id: int, values: Mapping[str, str]
) -> int:
    actor.require(Perm.REPORTS_READ)
    async with rt.engine.begin() as conn:
        rep = await _editable(conn, actor, report_id)
        cols = parse_schedule(values, default_tz=await program_timezone(conn, rep.program_id))
        cadence = cols.pop("cadence")
        now = rt.now()
        cols |= {
            "program_id": rep.program_id,
            "report_id": report_id,
            "next_run_at": rb.next_run(cadence, now),
            "created_by": actor.name[:200],
            "created_at": now,
        }
        sid = int((await conn.execute(insert(rs).returning(rs.c.id), cols)).scalar_one())
        await record(
            conn,
            actor,
            "report.schedule",
            "report_schedule",
            sid,
            at=now,
            program_id=rep.program_id,
            after={k: v for k, v in cols.items() if k != "next_run_at"},
        )
    return sid


async def list_schedules(rt: Runtime, actor: Actor, report_id: int) -> list[Schedule]:
    actor.require(Perm.REPORTS_READ)
    async with rt.engine.connect() as conn:
        await _get(conn, actor, report_id)
        rows = await conn.execute(select(rs).where(rs.c.report_id == report_id).order_by(rs.c.id))
        return [_schedule(r) for r in rows]


async def do_delete_schedule(rt: Runtime, actor: Actor, report_id: int, schedule_id: int) -> None:
    actor.require(Perm.REPORTS_READ)
    async with rt.engine.begin() as conn:
        rep = await _editable(conn, actor, report_id)
        res = await conn.execute(
            delete(rs).where(rs.c.id == schedule_id, rs.c.report_id == report_id)
        )
        if not res.rowcount:
            raise ServiceError("not_found", "No such schedule.")
        await record(
            conn,
            actor,
            "report.unschedule",
            "report_schedule",
            schedule_id,
            at=rt.now(),
            program_id=rep.program_id,
        )


MAIL = {
    "ru": (
        "Отчёт «{{ report }}» — {{ program }}",
        "Здравствуйте!\n\nВо вложении отчёт «{{ report }}» за период {{ period }}.\n\n"
        "{{ program }}",
    ),
    "en": (
        "Report “{{ report }}” — {{ program }}",
        "Hello,\n\nAttached is the report “{{ report }}” for {{ period }}.\n\n{{ program }}",
    ),
}


async def run_due(rt: Runtime, *, now: datetime | None = None) -> int:
    """E-mail every due schedule's report (outbox event + attachment); returns how many
    runs were queued by this call."""
    now = now or rt.now()
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(select(rs).where(rs.c.next_run_at <= now))).all()
    sent = 0
    for row in rows:
        sent += await _run_schedule(rt, _schedule(row), now=now)
    return sent


def latest_due(sch: Schedule, now: datetime) -> datetime:
    """The last run time at or before ``now``: a worker that was down sends it once,
    not every run it missed."""
    run_at = sch.next_run_at
    for _ in range(10_000):
        following = rb.next_run(sch.cadence, run_at)
        if following > now:
            break
        run_at = following
    return run_at


async def _run_schedule(rt: Runtime, sch: Schedule, *, now: datetime) -> int:
    run_at = latest_due(sch, now)
    async with rt.engine.connect() as conn:
        row = (await conn.execute(select(sr).where(sr.c.id == sch.report_id))).first()
        if row is None:
            return 0
        rep = _report(row)
        tz = await program_timezone(conn, rep.program_id)
        scope = builder.Scope(rep.program_id, tz, rep.partner_id, rep.store_id)
        # as of the run's own time: "yesterday" is the day before the scheduled day
        res = await builder.run(conn, rep.definition, scope, now=run_at)
    tr = builder.translator(sch.locale)
    data = await report_file(res, title=rep.name, fmt=sch.format, lang=sch.locale, tr=tr)
    subject, body = MAIL.get(sch.locale, MAIL["ru"])
    key = f"report:{sch.id}:{run_at:%Y%m%dT%H%M}Z"
    payload = {
        "report_id": rep.id,
        "schedule_id": sch.id,
        "report": rep.name,
        "period": period_text(res),
        "recipients": list(sch.recipients),
        "subject": subject,
        "body": body,
        "run_at": run_at.isoformat(),
    }
    async with rt.engine.begin() as conn:
        moved = await conn.execute(
            update(rs)
            .where(rs.c.id == sch.id, rs.c.next_run_at == sch.next_run_at)
            .values(next_run_at=rb.next_run(sch.cadence, now), last_run_at=run_at)
        )
        if moved.rowcount != 1:
            return 0  # another worker took this run
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        ins = (
            dialect.insert(t.outbox)
            .values(
                program_id=rep.program_id,
                topic=REPORT_TOPIC,
                payload=orjson.dumps(payload).decode(),
                created_at=now,
                dedup_key=key,
            )
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(t.outbox.c.id)
        )
        outbox_id = (await conn.execute(ins)).scalar_one_or_none()
        if outbox_id is None:
            return 0
        await conn.execute(
            insert(t.outbox_attachments),
            {
                "outbox_id": outbox_id,
                "filename": _filename(rep.name, run_at, sch.format),
                "content_type": media_type(sch.format).split(";")[0],
                "data": data,
            },
        )
    return 1


def _filename(name: str, run_at: datetime, fmt: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:80] or "report"
    return f"{safe}-{run_at:%Y-%m-%d}.{fmt}"


# --- the console's form ---------------------------------------------------------------------


@dataclass(frozen=True)
class FilterOptions:
    """The values the builder's filters offer: what the program's data has."""

    stores: list[tuple[str, str]]  # (code, name)
    cities: list[str]
    regions: list[str]
    tiers: list[str]
    segments: list[str]


async def filter_options(rt: Runtime, actor: Actor, program_id: int) -> FilterOptions:
    actor.require(Perm.REPORTS_READ)
    _check_program(actor, program_id)
    s = t.stores
    mine = [s.c.program_id == program_id]
    if actor.partner_id is not None:
        mine.append(s.c.partner_id == actor.partner_id)
    if actor.store_id is not None:
        mine.append(s.c.id == actor.store_id)

    async def distinct(column: Any, *where: Any) -> list[str]:
        rows = await conn.execute(
            select(column).where(*where, column.is_not(None), column != "").distinct()
        )
        return sorted(str(v) for (v,) in rows)

    async with rt.engine.connect() as conn:
        stores = (
            await conn.execute(select(s.c.code, s.c.name).where(*mine).order_by(s.c.name))
        ).all()
        return FilterOptions(
            stores=[(code, name) for code, name in stores],
            cities=await distinct(s.c.city, *mine),
            regions=await distinct(s.c.region, *mine),
            tiers=await distinct(t.accounts.c.tier, t.accounts.c.program_id == program_id),
            segments=await distinct(
                t.customers.c.rfm_segment, t.customers.c.program_id == program_id
            ),
        )
