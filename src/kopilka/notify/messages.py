"""What each outbox event says to the customer: the template and its context (pure).

An event's payload is what the business change wrote (``purchase.confirmed`` from the
confirm, ``tier.changed`` from the levels review, ...); ``plan`` turns it into the
template's name and the values it shows, or None when there is nothing to tell.
Money and points arrive as decimal strings and stay ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

# Events that carry a secret (the login code): never sent to partners' webhooks.
PRIVATE_TOPICS = frozenset({"sms.send"})
# A campaign's message to one customer (services/campaigns.py): the customer's only.
CAMPAIGN_TOPIC = "campaign.message"
# A scheduled report (services/saved_reports.py): to the staff addresses of its schedule.
REPORT_TOPIC = "report.scheduled"
NO_WEBHOOK_TOPICS = PRIVATE_TOPICS | {CAMPAIGN_TOPIC, REPORT_TOPIC}
# The nightly ledger verify found a difference (services/ledger_watch.py): to the
# operators' addresses, and to webhooks subscribed to it.
LEDGER_MISMATCH_TOPIC = "ledger.mismatch"


@dataclass(frozen=True, slots=True)
class Plan:
    name: str  # template name
    context: dict[str, Any]
    phone: str | None = None  # an explicit number (the login code): no customer needed
    channel: str | None = None  # only this channel (a campaign's)
    body: str | None = None  # the template's text itself (a campaign's), not a named one
    subject: str | None = None
    email: str | None = None  # explicit addresses (a scheduled report): no customer needed


def _d(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, float):
        raise TypeError("a float in an outbox payload")
    return Decimal(str(value))


def plan(topic: str, payload: dict[str, Any]) -> Plan | None:
    """The customer message for an event, or None (the event is for partners only, or
    says nothing worth a message)."""
    p = payload
    if topic == "sms.send":
        if p.get("template") != "phone_code" or not p.get("to"):
            return None
        return Plan("login_code", {"code": str(p["code"])}, phone=str(p["to"]))
    if topic == CAMPAIGN_TOPIC:
        return Plan(
            "campaign",
            {"unsubscribe_url": str(p.get("unsubscribe_url") or "")},
            channel=str(p["channel"]),
            body=str(p["body"]),
            subject=p.get("subject"),
        )
    if topic == REPORT_TOPIC:
        return Plan(
            "scheduled_report",
            {"report": str(p["report"]), "period": str(p["period"])},
            channel="email",
            body=str(p["body"]),
            subject=str(p["subject"]),
            email=", ".join(p["recipients"]),
        )
    if topic == LEDGER_MISMATCH_TOPIC:
        if not p.get("recipients"):
            return None
        n, night = int(p["discrepancies"]), str(p["night"])
        return Plan(
            "ledger_mismatch",
            {"discrepancies": n, "night": night},
            channel="email",
            subject=f"Kopilka: ledger verify found {n} differences ({night})",
            body=(
                f"The nightly ledger verify of {night} found {n} differences between cached "
                f"balances and the ledger (accounts: {', '.join(map(str, p['accounts']))}).\n"
                "Run `kopilka ledger verify` to list them; see the alert in the console "
                "(Fraud alerts).\n\n"
                f"Ночная сверка журнала баллов за {night} нашла расхождений: {n}. "
                "Список: `kopilka ledger verify`; тревога — в консоли (Подозрительные операции)."
            ),
            email=", ".join(p["recipients"]),
        )
    if topic == "purchase.confirmed":
        earned, redeemed = _d(p.get("points_earned")), _d(p.get("points_redeemed"))
        if not earned and not redeemed:
            return None
        balance = (p.get("balance") or {}).get("available")
        return Plan(
            "purchase_confirmed",
            {"points_earned": earned, "points_redeemed": redeemed, "balance": _d(balance)},
        )
    if topic == "customer.welcome":
        return Plan("welcome", {"points": _d(p.get("points"))})
    if topic == "points.expiring":
        return Plan("points_expiring", {"points": _d(p["points"]), "expires_on": p["expires_on"]})
    if topic == "tier.changed":
        return Plan(
            "tier_changed",
            {"tier": p.get("new_name") or p["new"], "up": p.get("direction") == "up"},
        )
    if topic == "discount.changed":
        if p.get("new") is None:
            return None
        return Plan("discount_changed", {"percent": _d(p["new"])})
    if topic == "birthday":
        return Plan("birthday", {"points": _d(p.get("points"))})
    if topic == "coupon.issued":
        return Plan(
            "coupon_issued",
            {
                "coupon": p["code"],
                "title": p.get("title") or "",
                "valid_until": p.get("valid_until") or "",
            },
        )
    if topic == "giftcard.balance":
        return Plan(
            "giftcard_balance",
            {"card_tail": str(p["card"])[-4:], "balance": _d(p["balance"])},
        )
    if topic == "draw.won":
        return Plan(
            "draw_won",
            {
                "draw": p.get("name") or p.get("draw") or "",
                "prize": p.get("prize") or "",
                "points": _d(p.get("points")),
            },
        )
    return None
