"""Fraud rules, the pure parts (docs/fraud.md): the settings with their limits, the facts
each rule looks at, the rules themselves and how an alert's evidence grows.

Every rule is a function of small frozen facts and the settings, returning ``Finding``
values; nothing here reads the database or the clock (the service passes the rows and
``now``).  A finding names its *situation* with a ``dedup_key``: the same situation found
again (the next receipt of the same card at the same cashier, the next run of the
worker) updates one alert instead of raising another.

Evidence is a list of items, each with a unique ``key`` (``receipt:17``, ``refund:4``,
``audit:9``, ``pin:card:70…:2026-12-07T06:00:00+00:00``): merging is by key, so running a
rule twice over the same rows changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

ZERO = Decimal(0)


class Rule(StrEnum):
    CASHIER_CARD = "cashier_card"  # 1. one card on many receipts of one cashier
    EARN_THEN_BURN = "earn_then_burn"  # 2. earned on many receipts at one till, then burned
    REFUND_AFTER_BURN = "refund_after_burn"  # 3. a receipt paid with points refunded
    PHONE_CARDS = "phone_cards"  # 4. many cards on one phone, many accounts on one device
    TERMINAL_BURST = "terminal_burst"  # 5. a burst of card receipts at one terminal
    BIG_ADJUSTMENT = "big_adjustment"  # 6. a manual adjustment above the limit
    PIN_GUESSING = "pin_guessing"  # 7. wrong gift-card PINs
    # 8. an offline burn token on a second receipt (raised at reconciliation, ADR 0030)
    OFFLINE_TOKEN = "offline_token"
    # not a fraud rule: the nightly ledger verify found a difference (services/ledger_watch);
    # it has no thresholds and cannot be switched off
    LEDGER_MISMATCH = "ledger_mismatch"


RULES = tuple(Rule)
# The rules of the fraud scan, which a program can switch off (the settings page).
# raised where they happen (offline reconciliation, the nightly verify), not by the scan:
# the settings page cannot switch them off
SCAN_RULES = tuple(r for r in Rule if r not in (Rule.LEDGER_MISMATCH, Rule.OFFLINE_TOKEN))
SEVERITIES = ("low", "medium", "high")
STATES = ("open", "assigned", "resolved", "dismissed")
OPEN_STATES = ("open", "assigned")


class Invalid(ValueError):
    """Bad input; ``field`` names the form field."""

    def __init__(self, field_name: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field_name
        self.detail = detail


# --- settings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FraudSettings:
    """A program's thresholds (defaults: docs/fraud.md).  A rule in ``disabled`` never runs."""

    cashier_card_receipts: int = 5  # rule 1: >= this many receipts of one card ...
    cashier_card_hours: int = 24  # ... by one cashier within this many hours
    earn_burn_receipts: int = 4  # rule 2: earned on >= this many receipts at one till ...
    earn_burn_days: int = 3  # ... within this many days ...
    earn_burn_hours: int = 24  # ... and burned within this many hours of the last earn
    refund_days: int = 3  # rule 3: a receipt paid with points, refunded within this many days
    refund_count: int = 2  # ... severity high from this many such refunds in 30 days
    phone_cards_max: int = 3  # rule 4: more than this many cards on one phone (customer)
    device_customers_max: int = 3  # ... more than this many customers from one device ...
    device_days: int = 30  # ... registered within this many days
    burst_receipts: int = 20  # rule 5: >= this many card receipts at one terminal ...
    burst_minutes: int = 10  # ... within this many minutes, or ...
    burst_factor: int = 0  # ... this many times the terminal's usual rate (0: off)
    adjust_limit: Decimal = Decimal("1000")  # rule 6: |points| of one manual adjustment
    pin_card_failures: int = 3  # rule 7: wrong PINs for one gift card in an hour ...
    pin_terminal_failures: int = 10  # ... or wrong numbers/PINs at one terminal in an hour
    disabled: tuple[str, ...] = ()

    def on(self, rule: Rule) -> bool:
        return rule.value not in self.disabled


# field -> (least, most, what the console and the API say it is)
LIMITS: dict[str, tuple[int, int, str]] = {
    "cashier_card_receipts": (2, 1000, "receipts"),
    "cashier_card_hours": (1, 720, "hours"),
    "earn_burn_receipts": (2, 1000, "receipts"),
    "earn_burn_days": (1, 90, "days"),
    "earn_burn_hours": (1, 720, "hours"),
    "refund_days": (1, 365, "days"),
    "refund_count": (1, 100, "refunds"),
    "phone_cards_max": (1, 100, "cards"),
    "device_customers_max": (1, 1000, "customers"),
    "device_days": (1, 365, "days"),
    "burst_receipts": (2, 100_000, "receipts"),
    "burst_minutes": (1, 1440, "minutes"),
    "burst_factor": (0, 1000, "times"),
    "pin_card_failures": (1, 1000, "attempts"),
    "pin_terminal_failures": (1, 100_000, "attempts"),
}
ADJUST_LIMIT_MAX = Decimal("10000000")
DEFAULTS = FraudSettings()


def settings_to_dict(s: FraudSettings) -> dict[str, Any]:
    """JSON-ready: the limit as a decimal string, the disabled rules as a list."""
    out: dict[str, Any] = {}
    for f in fields(FraudSettings):
        value = getattr(s, f.name)
        out[f.name] = str(value) if isinstance(value, Decimal) else value
    out["disabled"] = list(s.disabled)
    return out


def settings_from_dict(data: Mapping[str, Any]) -> FraudSettings:
    """Stored settings back (unknown keys ignored, missing ones default)."""
    values = {k: str(v) for k, v in data.items() if k != "disabled" and v is not None}
    disabled = data.get("disabled") or ()
    return parse_settings(values, disabled=[str(x) for x in disabled], base=DEFAULTS)


def parse_settings(
    values: Mapping[str, str],
    *,
    disabled: Iterable[str] | None = (),
    base: FraudSettings = DEFAULTS,
) -> FraudSettings:
    """Settings from a form or the API's body (text values); a field not given keeps
    ``base``'s value (``disabled=None``: the rules turned off stay so).  Raises
    ``Invalid`` naming the first bad field."""
    changes: dict[str, Any] = {}
    for name, (least, most, unit) in LIMITS.items():
        raw = (values.get(name) or "").strip()
        if not raw:
            continue
        try:
            number = int(raw)
        except ValueError:
            raise Invalid(name, f"a whole number of {unit}, {least} to {most}") from None
        if not least <= number <= most:
            raise Invalid(name, f"a whole number of {unit}, {least} to {most}")
        changes[name] = number
    raw = (values.get("adjust_limit") or "").strip().replace(",", ".")
    if raw:
        try:
            limit = Decimal(raw)
        except InvalidOperation:
            limit = Decimal(-1)
        if not limit.is_finite() or not ZERO < limit <= ADJUST_LIMIT_MAX:
            raise Invalid("adjust_limit", f"points above 0, at most {ADJUST_LIMIT_MAX}")
        if limit != limit.quantize(Decimal("0.01")):
            raise Invalid("adjust_limit", "points with at most two decimals")
        changes["adjust_limit"] = limit
    if disabled is None:
        return replace(base, **changes)
    off = tuple(sorted({d.strip() for d in disabled if d.strip()}))
    unknown = [d for d in off if d not in {r.value for r in Rule}]
    if unknown:
        raise Invalid("disabled", f"no rule {unknown[0]!r}")
    changes["disabled"] = off
    return replace(base, **changes)


# --- facts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptFact:
    """A confirmed receipt as the rules see it.  ``at`` is when the sale happened (the
    till's time); points are ``Decimal``."""

    id: int
    pos_id: str
    at: datetime
    store_id: int
    terminal_id: int
    cashier_id: str | None
    account_id: int | None
    customer_id: int | None
    card_id: int | None
    card_number: str | None
    amount: Decimal
    points_earned: Decimal
    points_redeemed: Decimal


@dataclass(frozen=True, slots=True)
class RefundFact:
    id: int
    at: datetime
    receipt: ReceiptFact
    amount: Decimal
    points_returned: Decimal  # burned points given back to the customer


@dataclass(frozen=True, slots=True)
class CardFact:
    id: int
    number: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PhoneCards:
    """A customer (one phone: phones are unique per program) and every card ever issued."""

    customer_id: int
    phone: str | None
    cards: tuple[CardFact, ...]


@dataclass(frozen=True, slots=True)
class DeviceCustomer:
    customer_id: int
    registered_at: datetime
    card_id: int | None
    card_number: str | None


@dataclass(frozen=True, slots=True)
class AdjustFact:
    """A manual adjustment from the audit log (``points.adjust``): who, whose, how much."""

    audit_id: int
    at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str
    account_id: int
    customer_id: int | None
    amount: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class PinFailures:
    """Wrong gift-card PINs counted in one hour's window: per card (``subject`` is the
    card's number) or per terminal (``subject`` is its id; unknown numbers count too)."""

    scope: str  # card | terminal
    subject: str
    window_start: datetime
    failures: int
    store_id: int | None = None


@dataclass(frozen=True)
class Finding:
    """What a rule found: one alert's worth.  ``card_number``, when set, is the card the
    officer can block from the alert."""

    rule: Rule
    severity: str
    subject_type: str  # card | customer | terminal | cashier | user | device | gift_card
    subject_id: str
    subject_label: str
    dedup_key: str
    summary: str
    evidence: tuple[dict[str, Any], ...]
    store_id: int | None = None
    customer_id: int | None = None
    card_number: str | None = None


def _iso(at: datetime) -> str:
    return at.isoformat()


def receipt_evidence(r: ReceiptFact, role: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {
        "key": f"receipt:{r.id}",
        "kind": "receipt",
        "id": r.id,
        "receipt_id": r.pos_id,
        "at": _iso(r.at),
        "store_id": r.store_id,
        "terminal_id": r.terminal_id,
        "cashier_id": r.cashier_id,
        "customer_id": r.customer_id,
        "amount": str(r.amount),
        "points_earned": str(r.points_earned),
        "points_redeemed": str(r.points_redeemed),
    }
    if role:
        item["role"] = role
    return item


def _card_label(r: ReceiptFact) -> str:
    return r.card_number or f"account {r.account_id}"


def _unique(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per situation: the one with the most evidence wins, the rest of the
    evidence is merged into it."""
    best: dict[str, Finding] = {}
    for f in findings:
        have = best.get(f.dedup_key)
        if have is None:
            best[f.dedup_key] = f
            continue
        merged, _ = merge_evidence(have.evidence, f.evidence)
        top = f if len(f.evidence) > len(have.evidence) else have
        best[f.dedup_key] = replace(top, evidence=tuple(merged))
    return list(best.values())


# --- 1. one card on many receipts of one cashier -------------------------------------------


def cashier_card(
    new: Sequence[ReceiptFact], history: Sequence[ReceiptFact], s: FraudSettings
) -> list[Finding]:
    """For each new receipt with a card and a cashier: the receipts of the same card by the
    same cashier (same store) within ``cashier_card_hours`` up to it.  At least
    ``cashier_card_receipts`` of them: the cashier is swiping a card (often their own)
    for strangers' purchases.  ``history`` holds the cards' receipts (new ones included)."""
    window = timedelta(hours=s.cashier_card_hours)
    by_pair: dict[tuple[int, int, str], list[ReceiptFact]] = defaultdict(list)
    for r in history:
        if r.card_id is not None and r.cashier_id:
            by_pair[(r.store_id, r.card_id, r.cashier_id)].append(r)
    out: list[Finding] = []
    for r in new:
        if r.card_id is None or not r.cashier_id:
            continue
        same = sorted(
            (
                x
                for x in by_pair[(r.store_id, r.card_id, r.cashier_id)]
                if r.at - window <= x.at <= r.at
            ),
            key=lambda x: (x.at, x.id),
        )
        if len(same) < s.cashier_card_receipts:
            continue
        severity = "high" if len(same) >= 2 * s.cashier_card_receipts else "medium"
        out.append(
            Finding(
                Rule.CASHIER_CARD,
                severity,
                "card",
                str(r.card_id),
                _card_label(r),
                f"cashier_card:{r.store_id}:{r.cashier_id}:{r.card_id}",
                f"card {_card_label(r)}: {len(same)} receipts by cashier {r.cashier_id} "
                f"within {s.cashier_card_hours} h",
                tuple(receipt_evidence(x) for x in same),
                store_id=r.store_id,
                customer_id=r.customer_id,
                card_number=r.card_number,
            )
        )
    return _unique(out)


# --- 2. points earned at one till, then burned --------------------------------------------


def earn_then_burn(
    new: Sequence[ReceiptFact], history: Sequence[ReceiptFact], s: FraudSettings
) -> list[Finding]:
    """For each new receipt that burned points: the same account's receipts that earned
    points within ``earn_burn_days`` before it, grouped by terminal and by (store, cashier).
    A group of at least ``earn_burn_receipts`` whose last earn is within
    ``earn_burn_hours`` of the burn: points collected on other people's purchases at one
    till and spent at once."""
    days, hours = timedelta(days=s.earn_burn_days), timedelta(hours=s.earn_burn_hours)
    by_account: dict[int, list[ReceiptFact]] = defaultdict(list)
    for r in history:
        if r.account_id is not None and r.points_earned > 0:
            by_account[r.account_id].append(r)
    out: list[Finding] = []
    for burn in new:
        if burn.account_id is None or burn.points_redeemed <= 0:
            continue
        earns = [
            x
            for x in by_account[burn.account_id]
            if x.id != burn.id and burn.at - days <= x.at <= burn.at
        ]
        groups: dict[str, list[ReceiptFact]] = defaultdict(list)
        for x in earns:
            groups[f"terminal {x.terminal_id}"].append(x)
            if x.cashier_id:
                groups[f"cashier {x.cashier_id}"].append(x)
        for where, got in sorted(groups.items()):
            last = max(x.at for x in got)
            if len(got) < s.earn_burn_receipts or burn.at - last > hours:
                continue
            got.sort(key=lambda x: (x.at, x.id))
            earned = sum((x.points_earned for x in got), ZERO)
            out.append(
                Finding(
                    Rule.EARN_THEN_BURN,
                    "high" if burn.points_redeemed >= earned else "medium",
                    "card",
                    str(burn.card_id or burn.account_id),
                    _card_label(burn),
                    f"earn_then_burn:{burn.account_id}",
                    f"card {_card_label(burn)}: earned {earned} points on {len(got)} receipts "
                    f"at {where}, burned {burn.points_redeemed}",
                    (
                        *(receipt_evidence(x, "earned") for x in got),
                        receipt_evidence(burn, "burned"),
                    ),
                    store_id=burn.store_id,
                    customer_id=burn.customer_id,
                    card_number=burn.card_number,
                )
            )
            break  # one group is enough to raise the situation
    return _unique(out)


# --- 3. refund after burning ---------------------------------------------------------------


def refund_after_burn(
    new: Sequence[RefundFact], history: Sequence[RefundFact], s: FraudSettings
) -> list[Finding]:
    """A new refund of a receipt that burned points, made within ``refund_days`` of the
    sale.  ``history``: the same accounts' refunds of the last 30 days (new ones
    included); from ``refund_count`` such refunds the alert is severe."""
    days = timedelta(days=s.refund_days)

    def suspicious(f: RefundFact) -> bool:
        return f.receipt.points_redeemed > 0 and f.at - f.receipt.at <= days

    out: list[Finding] = []
    for f in new:
        acc = f.receipt.account_id
        if acc is None or not suspicious(f):
            continue
        same = sorted(
            {x.id: x for x in history if x.receipt.account_id == acc and suspicious(x)}.values(),
            key=lambda x: (x.at, x.id),
        )
        if f.id not in {x.id for x in same}:
            same.append(f)
        evidence: list[dict[str, Any]] = []
        for x in same:
            evidence.append(receipt_evidence(x.receipt, "paid with points"))
            evidence.append(
                {
                    "key": f"refund:{x.id}",
                    "kind": "refund",
                    "id": x.id,
                    "receipt_id": x.receipt.pos_id,
                    "at": _iso(x.at),
                    "amount": str(x.amount),
                    "points_returned": str(x.points_returned),
                }
            )
        r = f.receipt
        out.append(
            Finding(
                Rule.REFUND_AFTER_BURN,
                "high" if len(same) >= s.refund_count else "medium",
                "card",
                str(r.card_id or acc),
                _card_label(r),
                f"refund_after_burn:{acc}",
                f"card {_card_label(r)}: {len(same)} receipt(s) paid with points refunded "
                f"within {s.refund_days} days",
                tuple(evidence),
                store_id=r.store_id,
                customer_id=r.customer_id,
                card_number=r.card_number,
            )
        )
    return _unique(out)


# --- 4. many cards on one phone, many accounts on one device ---------------------------------


def phone_cards(customers: Sequence[PhoneCards], s: FraudSettings) -> list[Finding]:
    """More than ``phone_cards_max`` cards ever issued to one customer (one phone: a card
    reported lost again and again, cards handed out to others on one phone)."""
    out: list[Finding] = []
    for c in customers:
        if len(c.cards) <= s.phone_cards_max:
            continue
        cards = sorted(c.cards, key=lambda x: (x.created_at, x.id))
        active = [x for x in cards if x.status == "active"]
        out.append(
            Finding(
                Rule.PHONE_CARDS,
                "medium",
                "customer",
                str(c.customer_id),
                c.phone or f"customer {c.customer_id}",
                f"phone_cards:{c.customer_id}",
                f"{len(cards)} cards on one phone",
                tuple(
                    {
                        "key": f"card:{x.id}",
                        "kind": "card",
                        "id": x.id,
                        "number": x.number,
                        "status": x.status,
                        "at": _iso(x.created_at),
                    }
                    for x in cards
                ),
                customer_id=c.customer_id,
                card_number=active[-1].number if active else None,
            )
        )
    return out


def device_accounts(
    devices: Mapping[str, Sequence[DeviceCustomer]], s: FraudSettings, *, now: datetime
) -> list[Finding]:
    """More than ``device_customers_max`` customers registered from one device within
    ``device_days``: re-registrations to collect welcome and referral points."""
    since = now - timedelta(days=s.device_days)
    out: list[Finding] = []
    for device, rows in sorted(devices.items()):
        recent = sorted(
            (x for x in rows if x.registered_at >= since),
            key=lambda x: (x.registered_at, x.customer_id),
        )
        if len(recent) <= s.device_customers_max:
            continue
        out.append(
            Finding(
                Rule.PHONE_CARDS,
                "medium",
                "device",
                device[:64],
                device[:200],
                f"device_accounts:{device[:160]}",
                f"{len(recent)} customers registered from one device within {s.device_days} days",
                tuple(
                    {
                        "key": f"customer:{x.customer_id}",
                        "kind": "customer",
                        "id": x.customer_id,
                        "card": x.card_number,
                        "at": _iso(x.registered_at),
                    }
                    for x in recent
                ),
                customer_id=recent[-1].customer_id,
            )
        )
    return out


# --- 5. bursts on one terminal --------------------------------------------------------------


def terminal_burst(
    new: Sequence[ReceiptFact],
    history: Sequence[ReceiptFact],
    s: FraudSettings,
    *,
    usual_per_window: Mapping[int, float] | None = None,
) -> list[Finding]:
    """For each new card receipt: the terminal's card receipts within ``burst_minutes`` up
    to it.  At least ``burst_receipts`` of them, or (with ``burst_factor``) at least
    ``burst_factor`` times the terminal's usual number per such window (taken as at
    least 1) and at least 5:
    a burst (a card number typed into many sales, a script against the till's key).
    ``usual_per_window``: terminal id -> its usual receipts per window (a float: a rate)."""
    window = timedelta(minutes=s.burst_minutes)
    by_terminal: dict[int, list[ReceiptFact]] = defaultdict(list)
    for r in history:
        if r.card_id is not None:
            by_terminal[r.terminal_id].append(r)
    out: list[Finding] = []
    for r in new:
        if r.card_id is None:
            continue
        got = sorted(
            (x for x in by_terminal[r.terminal_id] if r.at - window <= x.at <= r.at),
            key=lambda x: (x.at, x.id),
        )
        usual = (usual_per_window or {}).get(r.terminal_id)
        by_count = len(got) >= s.burst_receipts
        # a quiet terminal counts as one receipt per window: 5 sales at a till that saw
        # none last week are not a burst
        by_rate = (
            s.burst_factor > 0
            and usual is not None
            and len(got) >= max(5.0, s.burst_factor * max(usual, 1.0))
        )
        if not (by_count or by_rate):
            continue
        why = (
            f"{len(got)} card receipts within {s.burst_minutes} min"
            if by_count
            else f"{len(got)} card receipts within {s.burst_minutes} min, usually {usual:.1f}"
        )
        out.append(
            Finding(
                Rule.TERMINAL_BURST,
                "high" if len(got) >= 2 * s.burst_receipts else "medium",
                "terminal",
                str(r.terminal_id),
                f"terminal {r.terminal_id}",
                f"terminal_burst:{r.terminal_id}",
                f"terminal {r.terminal_id}: {why}",
                tuple(receipt_evidence(x) for x in got),
                store_id=r.store_id,
            )
        )
    return _unique(out)


# --- 6. manual adjustments above a limit ----------------------------------------------------


def big_adjustment(adjusts: Sequence[AdjustFact], s: FraudSettings) -> list[Finding]:
    """A manual adjustment of at least ``adjust_limit`` points either way; the subject is
    who made it (one alert per person and account while it is open)."""
    out: list[Finding] = []
    for a in adjusts:
        if abs(a.amount) < s.adjust_limit:
            continue
        who = f"{a.actor_kind}:{a.actor_id if a.actor_id is not None else a.actor_name}"
        out.append(
            Finding(
                Rule.BIG_ADJUSTMENT,
                "high" if abs(a.amount) >= 10 * s.adjust_limit else "medium",
                "user",
                who[:64],
                a.actor_name,
                f"big_adjustment:{who}:{a.account_id}",
                f"{a.actor_name} adjusted account {a.account_id} by {a.amount} points",
                (
                    {
                        "key": f"audit:{a.audit_id}",
                        "kind": "adjustment",
                        "id": a.audit_id,
                        "at": _iso(a.at),
                        "account_id": a.account_id,
                        "customer_id": a.customer_id,
                        "amount": str(a.amount),
                        "reason": a.reason,
                    },
                ),
                customer_id=a.customer_id,
            )
        )
    return _unique(out)


# --- 7. gift-card PIN guessing --------------------------------------------------------------


def pin_guessing(counts: Sequence[PinFailures], s: FraudSettings) -> list[Finding]:
    """At least ``pin_card_failures`` wrong PINs for one gift card, or
    ``pin_terminal_failures`` wrong numbers or PINs at one terminal, in an hour's window."""
    out: list[Finding] = []
    for c in counts:
        limit = s.pin_card_failures if c.scope == "card" else s.pin_terminal_failures
        if c.failures < limit:
            continue
        subject = "gift_card" if c.scope == "card" else "terminal"
        label = c.subject if c.scope == "card" else f"terminal {c.subject}"
        out.append(
            Finding(
                Rule.PIN_GUESSING,
                "high" if c.failures >= 2 * limit else "medium",
                subject,
                c.subject,
                label,
                f"pin_guessing:{c.scope}:{c.subject}",
                f"{label}: {c.failures} wrong gift card PINs in an hour",
                (
                    {
                        "key": f"pin:{c.scope}:{c.subject}:{_iso(c.window_start)}",
                        "kind": "pin_failures",
                        "at": _iso(c.window_start),
                        "failures": c.failures,
                    },
                ),
                store_id=c.store_id,
            )
        )
    return _unique(out)


# --- evidence ---------------------------------------------------------------------------------


def merge_evidence(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], bool]:
    """The old evidence with the new items added (and items with a known key replaced by
    their new value), in time order; and whether anything changed."""
    merged = {str(x["key"]): dict(x) for x in old}
    changed = False
    for x in new:
        key = str(x["key"])
        if merged.get(key) != dict(x):
            merged[key] = dict(x)
            changed = True
    items = sorted(merged.values(), key=lambda x: str(x.get("at", "")))  # stable: ties keep order
    return items, changed


def is_covered(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every item of ``new`` is already in ``old`` (by key): a closed alert that
    covers a finding is not raised again."""
    keys = {str(x["key"]) for x in old}
    return all(str(x["key"]) in keys for x in new)


def severity_max(a: str, b: str) -> str:
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b
