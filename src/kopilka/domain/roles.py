"""Who may do what in the console and the admin API: roles, permissions, scopes.

Read and write permissions are separate (STYLE.md §7).  A role is a fixed set of
permissions; a user may in addition be scoped to one program, one partner (the partner
role: it sees only its partner's stores, receipts and customers' activity there) or one
store (store manager, cashier).
"""

from __future__ import annotations

from enum import StrEnum


class Perm(StrEnum):
    PROGRAMS_READ = "programs.read"
    PROGRAMS_WRITE = "programs.write"  # documents, promotions, tiers, roll-back
    SIMULATE = "simulate"
    CUSTOMERS_READ = "customers.read"  # personal data unmasked
    CUSTOMERS_WRITE = "customers.write"  # adjust points, replace/issue cards, merge, consents
    CARDS_BLOCK = "cards.block"  # block and unblock cards
    MECHANICS_READ = "mechanics.read"  # coupons, gift cards, draws, rewards
    MECHANICS_WRITE = "mechanics.write"
    STORES_READ = "stores.read"
    STORES_WRITE = "stores.write"  # stores, terminals and their keys
    USERS_MANAGE = "users.manage"
    AUDIT_READ = "audit.read"
    REPORTS_READ = "reports.read"
    CASHIER = "cashier"  # the cashier screen
    EVENTS_AWARD = "events.award"  # points for a non-purchase action (the events API)


class Role(StrEnum):
    OWNER = "owner"
    MARKETER = "marketer"
    ANALYST = "analyst"
    SUPPORT = "support"
    SECURITY = "security"
    STORE_MANAGER = "store_manager"
    PARTNER = "partner"
    CASHIER = "cashier"


P = Perm
PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.OWNER: frozenset(Perm),
    Role.MARKETER: frozenset(
        {
            P.PROGRAMS_READ,
            P.PROGRAMS_WRITE,
            P.SIMULATE,
            P.MECHANICS_READ,
            P.MECHANICS_WRITE,
            P.STORES_READ,
            P.REPORTS_READ,
        }
    ),
    Role.ANALYST: frozenset(
        {P.PROGRAMS_READ, P.SIMULATE, P.MECHANICS_READ, P.STORES_READ, P.REPORTS_READ}
    ),
    Role.SUPPORT: frozenset(
        {
            P.PROGRAMS_READ,
            P.SIMULATE,
            P.CUSTOMERS_READ,
            P.CUSTOMERS_WRITE,
            P.CARDS_BLOCK,
            P.MECHANICS_READ,
            P.STORES_READ,
            P.EVENTS_AWARD,
        }
    ),
    Role.SECURITY: frozenset(
        {
            P.PROGRAMS_READ,
            P.CUSTOMERS_READ,
            P.CARDS_BLOCK,
            P.MECHANICS_READ,
            P.STORES_READ,
            P.AUDIT_READ,
            P.REPORTS_READ,
        }
    ),
    Role.STORE_MANAGER: frozenset({P.STORES_READ, P.REPORTS_READ, P.CASHIER}),
    # a partner's staff and its own systems: its stores, their receipts and reports, and
    # points it funds for its own events (the events API, funding partner = itself)
    Role.PARTNER: frozenset({P.STORES_READ, P.REPORTS_READ, P.MECHANICS_READ, P.EVENTS_AWARD}),
    Role.CASHIER: frozenset({P.CASHIER}),
}

# Roles that must name their scope when created.
NEEDS_PARTNER = frozenset({Role.PARTNER})
NEEDS_STORE = frozenset({Role.STORE_MANAGER, Role.CASHIER})


def can(role: str, perm: Perm) -> bool:
    try:
        return perm in PERMISSIONS[Role(role)]
    except ValueError:  # a role this version does not know grants nothing
        return False


def mask_phone(phone: str | None) -> str:
    """``+7 903 ***-**-67``: enough for the customer to recognise, not to copy."""
    if not phone:
        return ""
    return phone[:-7] + "***-**-" + phone[-2:] if len(phone) > 7 else "***"


def mask_name(first: str, last: str) -> str:
    """``Анна С.``"""
    return (first + (" " + last[:1] + "." if last else "")).strip()


def mask_initials(first: str, last: str) -> str:
    """``А. С.``: what a partner's staff see of a customer (issue 9) — the initials, never
    the name."""
    parts = [p.strip()[:1] + "." for p in (first, last) if p and p.strip()]
    return " ".join(parts)


def mask_phone_partner(phone: str | None) -> str:
    """``+7 9** ***-**-12``: the country, the first digit and the last two digits only."""
    if not phone:
        return ""
    digits = phone.lstrip("+")
    if phone.startswith("+7") and len(digits) == 11:
        return f"+7 {digits[1]}** ***-**-{digits[-2:]}"
    return (phone[:2] + "*" * max(len(phone) - 4, 1) + phone[-2:]) if len(phone) > 4 else "***"
