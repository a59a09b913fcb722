"""Editing a program from the console (and the admin API): promotions one at a time,
with their status, a confirmation for what destroys, and the audit log.

Built on ``services.programs`` (every change is a new version made by its
``_write_version``); this module adds who may do it (``Actor``), the audit row in the
change's transaction, and refusals whose paths are inside the promotion
(``effects[0].percent``, not ``promotions[7].effects[0].percent``) so the console can put
the message next to the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kopilka.domain.roles import Perm
from kopilka.domain.rules.describe import describe_promotion
from kopilka.domain.rules.model import ProgramDoc, Promotion
from kopilka.services import programs
from kopilka.services.audit import Actor
from kopilka.services.programs import ProgramError
from kopilka.services.runtime import Runtime

STATUSES = ("active", "scheduled", "ended", "disabled")
SORTS = ("name", "id", "priority", "starts_at", "ends_at", "status")
_PREFIX = re.compile(r"^promotions\[\d+\]\.?")


def status_of(p: Promotion, now: datetime) -> str:
    """active, scheduled (starts later), ended, or disabled."""
    if not p.enabled:
        return "disabled"
    if p.starts_at is not None and now < p.starts_at:
        return "scheduled"
    if p.ends_at is not None and now >= p.ends_at:
        return "ended"
    return "active"


@dataclass(frozen=True)
class PromotionRow:
    id: str
    name: str
    priority: int
    starts_at: datetime | None
    ends_at: datetime | None
    status: str
    effects: tuple[str, ...]
    group: str | None
    exclusive: bool


def promotion_rows(doc: ProgramDoc, now: datetime) -> list[PromotionRow]:
    return [
        PromotionRow(
            p.id,
            p.name,
            p.priority,
            p.starts_at,
            p.ends_at,
            status_of(p, now),
            tuple(e.kind for e in p.effects),
            p.group,
            p.exclusive,
        )
        for p in doc.promotions
    ]


def sort_rows(rows: list[PromotionRow], sort: str, descending: bool) -> list[PromotionRow]:
    """By ``sort`` (one of SORTS); missing dates sort first, ties by id."""
    if sort not in SORTS:
        sort = "priority"

    def key(r: PromotionRow) -> tuple[Any, ...]:
        if sort in ("starts_at", "ends_at"):
            v = getattr(r, sort)
            return (v is not None, v.timestamp() if v else 0, r.id)
        if sort == "status":
            return (STATUSES.index(r.status), r.id)
        if sort == "name":
            return (r.name.casefold(), r.id)
        return (getattr(r, sort), r.id)

    return sorted(rows, key=key, reverse=descending)


@dataclass(frozen=True)
class PromotionsPage:
    version: int
    doc: ProgramDoc
    rows: list[PromotionRow]
    total: int


async def promotions_page(
    rt: Runtime,
    code: str,
    *,
    sort: str = "priority",
    descending: bool = True,
    offset: int = 0,
    limit: int = 50,
    status: str = "",
) -> PromotionsPage:
    """One page of the current version's promotions, sorted, optionally by status."""
    version, raw = await programs.current(rt, code)
    doc = programs.check_document(raw)
    rows = promotion_rows(doc, rt.now())
    if status in STATUSES:
        rows = [r for r in rows if r.status == status]
    rows = sort_rows(rows, sort, descending)
    return PromotionsPage(version, doc, rows[offset : offset + limit], len(rows))


def describe(p: Promotion, doc: ProgramDoc | None = None) -> dict[str, str]:
    """The promotion in plain words, both languages."""
    return {lang: describe_promotion(p, lang, doc) for lang in ("en", "ru")}


async def _check_scope(rt: Runtime, actor: Actor, code: str) -> None:
    """A user limited to one program changes only that one."""
    found = await programs.list_programs(rt, code=code)
    if not found:
        raise programs.not_found(code)
    if actor.program_id is not None and found[0].id != actor.program_id:
        raise ProgramError("forbidden", f"this user may not change program {code!r}", field="code")


def _relative(exc: ProgramError) -> ProgramError:
    """The same refusal with paths inside the promotion."""
    errors = [
        {**e, "field": _PREFIX.sub("", str(e.get("field", ""))) or "body"}
        for e in exc.extra.get("errors", [])
    ] or [{"field": "body", "code": "bad_value", "detail": exc.detail}]
    first = errors[0]
    return ProgramError(
        exc.code, f"{first['field']}: {first['detail']}", field=first["field"], errors=errors
    )


async def save_promotion(
    rt: Runtime, actor: Actor, code: str, promotion: dict[str, Any], *, create: bool
) -> int:
    """Add (``create``) or replace one promotion as a new version; audited.

    Refusals: ``forbidden`` without programs.write; ``invalid_program`` whose ``errors``
    name paths inside the promotion (an id already used, when creating, is one).
    """
    actor.require(Perm.PROGRAMS_WRITE)
    await _check_scope(rt, actor, code)
    pid = str(promotion.get("id", ""))
    _, current = await programs.current(rt, code)
    ids = {str(p.get("id")) for p in current.get("promotions", [])}
    if create and pid in ids:
        raise programs.invalid_program([("id", "already used by another promotion")])
    if not create and pid not in ids:
        raise ProgramError("promotion_not_found", f"no promotion {pid!r}", field="id")
    try:
        version, _created = await programs.do_set_promotion(
            rt, code, promotion, author=actor.name, actor=actor
        )
    except ProgramError as exc:
        if exc.code == "invalid_program":
            raise _relative(exc) from None
        raise
    return version


async def apply_document(rt: Runtime, actor: Actor, code: str, data: Any) -> int:
    """Replace the whole document of an existing program (settings, tiers, categories,
    promotions) as a new version; audited (``program.apply``).  Refusals list every
    problem with its path inside the document."""
    actor.require(Perm.PROGRAMS_WRITE)
    await _check_scope(rt, actor, code)
    if isinstance(data, dict) and data.get("code", code) != code:
        raise programs.invalid_program([("code", f"must stay {code!r}")])
    if isinstance(data, dict):
        data = {**data, "code": code}
    doc = programs.check_document(data)
    return await programs.do_apply(rt, doc, author=actor.name, actor=actor)


async def delete_promotion(
    rt: Runtime, actor: Actor, code: str, promotion_id: str, *, confirm: str
) -> int:
    """Delete a promotion (a new version); ``confirm`` must repeat its id."""
    actor.require(Perm.PROGRAMS_WRITE)
    await _check_scope(rt, actor, code)
    if confirm.strip() != promotion_id:
        raise ProgramError(
            "not_confirmed", f"type {promotion_id} to confirm the deletion", field="confirm"
        )
    return await programs.do_delete_promotion(
        rt, code, promotion_id, author=actor.name, actor=actor
    )


async def rollback(rt: Runtime, actor: Actor, code: str, version: int, *, confirm: str) -> int:
    """Apply an old version's document as a new version; ``confirm`` must repeat the
    version number.  Audited (``program.rollback``) in the same transaction."""
    actor.require(Perm.PROGRAMS_WRITE)
    await _check_scope(rt, actor, code)
    if confirm.strip() != str(version):
        raise ProgramError(
            "not_confirmed", f"type {version} to confirm the roll-back", field="confirm"
        )
    return await programs.do_rollback(rt, code, version, author=actor.name, actor=actor)
