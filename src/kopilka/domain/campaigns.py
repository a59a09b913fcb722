"""Campaigns, the pure parts: the audience filter, the control-group split, quiet hours,
the frequency cap and the unsubscribe token (docs/campaigns.md).

Nothing here reads the database or the clock: the service passes ``now`` and the rows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

CHANNELS = ("sms", "email")
MAX_UPLOAD = 100_000


class Invalid(ValueError):
    """Bad input; ``field`` names the form field."""

    def __init__(self, field_name: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field_name
        self.detail = detail


@dataclass(frozen=True)
class Audience:
    """Who a campaign is for: every given condition must hold (empty: not a condition).

    ``stores``: store ids, the home store or any store the customer bought at;
    ``days_min``/``days_max``: days since the last confirmed purchase (``days_min`` also
    takes customers who never bought); ``listed``: phones or card numbers (an upload)."""

    rfm: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    stores: tuple[int, ...] = ()
    days_min: int | None = None
    days_max: int | None = None
    birthday_month: int | None = None
    tags: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, raw: str) -> Audience:
        d = orjson.loads(raw)
        return cls(
            rfm=tuple(d.get("rfm") or ()),
            tiers=tuple(d.get("tiers") or ()),
            cities=tuple(d.get("cities") or ()),
            stores=tuple(int(x) for x in d.get("stores") or ()),
            days_min=d.get("days_min"),
            days_max=d.get("days_max"),
            birthday_month=d.get("birthday_month"),
            tags=tuple(d.get("tags") or ()),
            listed=tuple(d.get("listed") or ()),
        )

    def describe(self) -> list[tuple[str, str]]:
        """(condition, value) pairs for the report page."""
        out: list[tuple[str, str]] = []
        for label, vals in (
            ("RFM segment", self.rfm),
            ("Tier", self.tiers),
            ("City", self.cities),
            ("Store", tuple(str(s) for s in self.stores)),
            ("Tags", self.tags),
        ):
            if vals:
                out.append((label, ", ".join(vals)))
        if self.days_min is not None:
            out.append(("Days since last purchase, at least", str(self.days_min)))
        if self.days_max is not None:
            out.append(("Days since last purchase, at most", str(self.days_max)))
        if self.birthday_month is not None:
            out.append(("Birthday month", str(self.birthday_month)))
        if self.listed:
            out.append(("Uploaded list", str(len(self.listed))))
        return out


def _words(value: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(w.strip() for w in re.split(r"[,;\n]", value or "") if w.strip()))


def _opt_int(values: Mapping[str, str], name: str, lo: int, hi: int) -> int | None:
    raw = (values.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise Invalid(name, f"Enter a whole number from {lo} to {hi}.")
    return int(raw)


def parse_list(text: str) -> tuple[str, ...]:
    """Phones or card numbers from an upload: a CSV's first column, or one per line;
    a header line and blanks are skipped, phones normalised to ``+7...``."""
    out: list[str] = []
    for line in text.splitlines():
        cell = re.split(r"[,;\t]", line, maxsplit=1)[0].strip().strip('"').strip()
        if not cell or not any(ch.isdigit() for ch in cell):
            continue
        digits = re.sub(r"[^\d]", "", cell)
        if cell.startswith("+") or (len(digits) == 11 and digits[0] in "78"):
            if len(digits) == 11 and digits[0] == "8":
                digits = "7" + digits[1:]
            out.append("+" + digits)
        else:
            out.append(digits)
    if len(out) > MAX_UPLOAD:
        raise Invalid("list", f"At most {MAX_UPLOAD} lines in one list.")
    return tuple(dict.fromkeys(out))


def parse_audience(values: Mapping[str, str], upload: str | None = None) -> Audience:
    """The audience from the builder's form (``Invalid`` names the field)."""
    days_min = _opt_int(values, "days_min", 0, 36_500)
    days_max = _opt_int(values, "days_max", 0, 36_500)
    if days_min is not None and days_max is not None and days_min > days_max:
        raise Invalid("days_max", "Must not be less than the minimum.")
    stores: list[int] = []
    for w in _words(values.get("stores")):
        if not w.isdigit():
            raise Invalid("stores", "Choose stores from the list.")
        stores.append(int(w))
    listed = parse_list(upload) if upload else parse_list(values.get("list", ""))
    return Audience(
        rfm=_words(values.get("rfm")),
        tiers=_words(values.get("tiers")),
        cities=_words(values.get("cities")),
        stores=tuple(stores),
        days_min=days_min,
        days_max=days_max,
        birthday_month=_opt_int(values, "birthday_month", 1, 12),
        tags=_words(values.get("tags")),
        listed=listed,
    )


# --- the control group ------------------------------------------------------------------------


def in_control(seed: str, customer_id: int, percent: int) -> bool:
    """Whether the customer is held out: a hash of the campaign's seed and the customer id,
    uniform in [0, 10000), below ``percent`` hundredths.  Deterministic: the same campaign
    puts the same customer in the same group every time it is asked."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percent * 100


# --- quiet hours ------------------------------------------------------------------------------


def parse_hhmm(value: str, field_name: str) -> time:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
    if not m:
        raise Invalid(field_name, "Enter a time as HH:MM.")
    return time(int(m.group(1)), int(m.group(2)))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid("timezone", "Unknown time zone.") from exc


def quiet_until(now: datetime, tz: str, start: time | None, end: time | None) -> datetime | None:
    """When the quiet window ``start``–``end`` (local time, may wrap past midnight) that
    ``now`` falls in ends, in UTC; None when ``now`` may send."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone(tz))
    t = local.time().replace(tzinfo=None)
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    ends = datetime.combine(day, end, tzinfo=zone(tz))
    return ends.astimezone(UTC)


# --- the frequency cap ------------------------------------------------------------------------


def capped(sent: Iterable[datetime], now: datetime, count: int | None, days: int | None) -> bool:
    """Whether one more marketing message would exceed ``count`` in the last ``days``."""
    if not count or not days:
        return False
    since = now - timedelta(days=days)
    return sum(1 for s in sent if s > since) >= count


# --- the unsubscribe link ---------------------------------------------------------------------


def unsubscribe_token(secret: str, campaign_id: int, customer_id: int, channel: str) -> str:
    """``<campaign>.<customer>.<channel>.<signature>``: no login needed, cannot be forged
    without the campaign's secret."""
    msg = f"{campaign_id}.{customer_id}.{channel}"
    sig = hmac.new(secret.encode(), msg.encode(), hashlib.sha256).digest()[:16]
    return msg + "." + base64.urlsafe_b64encode(sig).decode().rstrip("=")


def token_parts(token: str) -> tuple[int, int, str, str] | None:
    """(campaign, customer, channel, signature) of a well-formed token, else None."""
    parts = token.split(".")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    if parts[2] not in CHANNELS:
        return None
    return int(parts[0]), int(parts[1]), parts[2], parts[3]


def token_valid(secret: str, token: str) -> bool:
    p = token_parts(token)
    if p is None:
        return False
    return hmac.compare_digest(unsubscribe_token(secret, p[0], p[1], p[2]), token)


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """One group's response: ``customers`` in the group, ``buyers`` who bought within the
    window, their ``purchases`` and ``revenue``."""

    customers: int
    buyers: int
    purchases: int
    revenue: Decimal

    @property
    def per_customer(self) -> Decimal:
        if not self.customers:
            return Decimal(0)
        return (Decimal(self.revenue) / self.customers).quantize(Decimal("0.01"))

    @property
    def rate(self) -> Decimal:
        if not self.customers:
            return Decimal(0)
        return (Decimal(100 * self.buyers) / self.customers).quantize(Decimal("0.1"))


def uplift(target: Response, control: Response) -> Decimal:
    """Revenue per customer in the target group minus in the control group."""
    return target.per_customer - control.per_customer
