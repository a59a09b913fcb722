"""Who reaches what: the one place a caller's program / partner / store scope is decided.

Every console page, admin API call and service that returns or changes an object of a
program asks here (issues 9 and 10; ADR 0026).  The rule, the same everywhere:

- the role lacks the permission → 403 ``forbidden`` (``Actor.require``);
- the URL or body names a program outside the caller's → 403 ``forbidden`` (program codes
  are names the caller already knows; refusing them plainly is what tokens always did);
- an object (store, terminal, customer, receipt, alert, report, webhook, user…) of another
  program, partner or store → 404 ``not_found``, the answer for an object that does not
  exist: ids are sequential, and a 403 would tell a partner which ids its rivals hold.

A partner-scoped caller (``actor.partner_id``) reaches the objects *of its partner*: its
stores, their terminals and receipts, alerts of its stores, its own webhooks and reports.
An object of no partner (a program-wide thing) is not its own.  A store-scoped caller
(store manager, cashier) reaches its store's objects.  The lists are filtered with
``store_filter`` / ``partner_filter`` so that an allowed answer never carries another
scope's rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, true

from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError


def reaches_program(actor: Actor, program_id: int | None) -> bool:
    return actor.program_id is None or (program_id is not None and program_id == actor.program_id)


def check_program(actor: Actor, program_id: int | None, *, field: str | None = "code") -> None:
    """Refuse (403) a program outside the caller's."""
    if not reaches_program(actor, program_id):
        raise ServiceError("forbidden", "this program is outside your access", field=field)


def partner_scoped(actor: Actor) -> bool:
    """The caller sees only part of a program (a partner's or a store's objects)."""
    return actor.partner_id is not None or actor.store_id is not None


def reaches(
    actor: Actor,
    *,
    program_id: int | None,
    partner_id: int | None = None,
    store_id: int | None = None,
) -> bool:
    """Whether an object of this program / partner / store is within the caller's reach.
    ``partner_id``/``store_id`` None: the object belongs to no partner (program-wide)."""
    if not reaches_program(actor, program_id):
        return False
    if actor.partner_id is not None and partner_id != actor.partner_id:
        return False
    return actor.store_id is None or store_id == actor.store_id


def check_object(
    actor: Actor,
    what: str,
    ident: object,
    *,
    program_id: int | None,
    partner_id: int | None = None,
    store_id: int | None = None,
    field: str | None = None,
) -> None:
    """Refuse (404, as for an object that does not exist) an object out of reach."""
    if not reaches(actor, program_id=program_id, partner_id=partner_id, store_id=store_id):
        raise not_found(what, ident, field=field)


def not_found(what: str, ident: object, *, field: str | None = None) -> ServiceError:
    return ServiceError("not_found", f"no {what} {ident}", field=field)


def store_filter(actor: Actor, store_id: Any, partner_id: Any) -> ColumnElement[bool]:
    """A WHERE clause keeping the rows of the caller's stores, given the columns that hold
    a row's store id and partner id (a row of no store is kept only for unscoped callers)."""
    clause: ColumnElement[bool] = true()
    if actor.partner_id is not None:
        clause = clause & (partner_id == actor.partner_id)
    if actor.store_id is not None:
        clause = clause & (store_id == actor.store_id)
    return clause


def partner_filter(actor: Actor, partner_id: Any) -> ColumnElement[bool]:
    """A WHERE clause keeping the rows of the caller's partner (store-scoped callers: none,
    as a store's staff own no partner-wide object)."""
    if actor.store_id is not None:
        return false()
    if actor.partner_id is not None:
        return partner_id == actor.partner_id  # type: ignore[no-any-return]
    return true()


def require_whole_program(actor: Actor, what: str = "this report") -> None:
    """Refuse (403) a partner's or a store's staff what covers every store of the program
    and cannot be cut to theirs (the promotion-effect report, RFM)."""
    if partner_scoped(actor):
        raise ServiceError(
            "forbidden", f"{what} covers the whole program: not for a partner or a store"
        )


def require_partner_level(actor: Actor, what: str = "the settlement") -> None:
    """Refuse (403) a store's staff what is a partner's as a whole and cannot be cut to a
    store (the coalition's settlement: positions, obligations, statements are a partner's)."""
    if actor.store_id is not None:
        raise ServiceError("forbidden", f"{what} is a partner's matter: not for a store's staff")
