"""Who may be messaged on which channel (ADR 0013), a pure decision.

- The one-time login code goes by SMS to the number that asked for it, always: the person
  is at the till or on the login page waiting for it.  Never by e-mail.
- A scheduled report goes by e-mail to the staff addresses of its schedule, and a ledger
  mismatch to the operators' addresses: neither is a message to a customer.
- Every other message — transactional (receipts, tiers, expiring points, birthday,
  coupons, gift cards, draws) and marketing (campaigns) — goes on a channel only with
  that channel's consent (``consent_sms`` / ``consent_email``), only to an active
  customer, only to an address we have.
"""

from __future__ import annotations

from dataclasses import dataclass

ALWAYS_SMS = frozenset({"login_code"})
# Messages to the program's staff at the addresses they set (a scheduled report), not to
# a customer: no consent is involved.
STAFF_EMAIL = frozenset({"scheduled_report", "ledger_mismatch"})


@dataclass(frozen=True, slots=True)
class Contact:
    customer_id: int
    first_name: str
    phone: str | None
    email: str | None
    consent_sms: bool
    consent_email: bool
    status: str


def recipient(name: str, channel: str, contact: Contact | None) -> str | None:
    """The address to send message ``name`` to on ``channel``, or None when not allowed."""
    if name in ALWAYS_SMS:
        return None if channel != "sms" or contact is None else contact.phone
    if name in STAFF_EMAIL:
        return None if channel != "email" or contact is None else contact.email
    if contact is None or contact.status != "active":
        return None
    if channel == "sms" and contact.consent_sms:
        return contact.phone or None
    if channel == "email" and contact.consent_email:
        return contact.email or None
    return None
