"""Notification settings: environment variables, or a TOML file named by
``KOPILKA_NOTIFY_CONFIG`` (keys are the variable names without ``KOPILKA_``, lower case,
in a ``[notify]`` table); a variable wins over the file.  docs/notifications.md lists them.

A channel with no settings is off: its deliveries wait (pending) until it is configured,
nothing is dropped.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kopilka.notify.channels import Channel
from kopilka.notify.channels.email import SECURITY, Smtp
from kopilka.notify.channels.sms import JsonSms, SmsRu
from kopilka.notify.channels.webhook import Webhook

PREFIX = "KOPILKA_"


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it."""


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    locale: str = "ru"
    max_attempts: int = 8
    base_delay_s: float = 30.0
    max_delay_s: float = 3600.0
    lease_s: float = 300.0
    batch: int = 100
    concurrency: int = 8


@dataclass(frozen=True, slots=True)
class NotifySettings:
    channels: dict[str, Channel] = field(default_factory=dict)
    policy: DeliveryPolicy = DeliveryPolicy()
    expiring_days: int = 7  # announce expiring points this many days ahead (0: never)


def _merged(environ: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    path = environ.get(PREFIX + "NOTIFY_CONFIG")
    if path:
        try:
            with open(path, "rb") as f:
                doc: dict[str, Any] = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"KOPILKA_NOTIFY_CONFIG: {exc}") from None
        for k, v in (doc.get("notify") or {}).items():
            values[k.upper()] = str(v).lower() if isinstance(v, bool) else str(v)
    for k, v in environ.items():
        if k.startswith(PREFIX):
            values[k[len(PREFIX) :]] = v
    return values


def _int(values: Mapping[str, str], key: str, default: int) -> int:
    raw = values.get(key)
    try:
        return default if raw in (None, "") else int(raw)
    except ValueError:
        raise ConfigError(f"KOPILKA_{key} must be a whole number, got {raw!r}") from None


def _float(values: Mapping[str, str], key: str, default: float) -> float:
    raw = values.get(key)
    try:
        return default if raw in (None, "") else float(raw)  # a duration, not money
    except ValueError:
        raise ConfigError(f"KOPILKA_{key} must be a number, got {raw!r}") from None


def _need(values: Mapping[str, str], key: str) -> str:
    v = values.get(key)
    if not v:
        raise ConfigError(f"KOPILKA_{key} is required")
    return v


def _flag(values: Mapping[str, str], key: str) -> bool:
    return values.get(key, "").lower() in ("1", "true", "yes", "on")


def _sms(values: Mapping[str, str]) -> Channel | None:
    provider = values.get("SMS_PROVIDER", "").lower()
    if provider in ("", "none", "off"):
        return None
    if provider == "smsru":
        return SmsRu(
            api_id=_need(values, "SMSRU_API_ID"),
            sender=values.get("SMSRU_FROM") or None,
            test=_flag(values, "SMSRU_TEST"),
            base_url=values.get("SMSRU_URL") or "https://sms.ru",
        )
    if provider == "json":
        return JsonSms(url=_need(values, "SMS_URL"), token=values.get("SMS_TOKEN") or None)
    raise ConfigError(f"KOPILKA_SMS_PROVIDER must be smsru, json or none, got {provider!r}")


def _email(values: Mapping[str, str]) -> Channel | None:
    host = values.get("SMTP_HOST")
    if not host:
        return None
    security = values.get("SMTP_SECURITY", "starttls").lower()
    if security not in SECURITY:
        raise ConfigError(f"KOPILKA_SMTP_SECURITY must be one of {SECURITY}, got {security!r}")
    default_port = {"none": 25, "starttls": 587, "ssl": 465}[security]
    return Smtp(
        host=host,
        port=_int(values, "SMTP_PORT", default_port),
        sender=_need(values, "SMTP_FROM"),
        sender_name=values.get("SMTP_FROM_NAME", ""),
        security=security,
        user=values.get("SMTP_USER") or None,
        password=values.get("SMTP_PASSWORD") or None,
        ca_file=values.get("SMTP_CA_FILE") or None,
    )


def load(environ: Mapping[str, str] | None = None) -> NotifySettings:
    """The settings from ``environ`` (default: ``os.environ``) and the optional file."""
    values = _merged(os.environ if environ is None else environ)
    channels: dict[str, Channel] = {}
    if (sms := _sms(values)) is not None:
        channels["sms"] = sms
    if (email := _email(values)) is not None:
        channels["email"] = email
    if values.get("WEBHOOKS", "on").lower() not in ("0", "off", "false", "no"):
        channels["webhook"] = Webhook()
    policy = DeliveryPolicy(
        locale=values.get("NOTIFY_LOCALE", "ru"),
        max_attempts=_int(values, "NOTIFY_MAX_ATTEMPTS", 8),
        base_delay_s=_float(values, "NOTIFY_BASE_DELAY_S", 30.0),
        max_delay_s=_float(values, "NOTIFY_MAX_DELAY_S", 3600.0),
        lease_s=_float(values, "NOTIFY_LEASE_S", 300.0),
        batch=_int(values, "NOTIFY_BATCH", 100),
        concurrency=_int(values, "NOTIFY_CONCURRENCY", 8),
    )
    if policy.max_attempts < 1:
        raise ConfigError("KOPILKA_NOTIFY_MAX_ATTEMPTS must be at least 1")
    return NotifySettings(channels, policy, _int(values, "NOTIFY_EXPIRING_DAYS", 7))
