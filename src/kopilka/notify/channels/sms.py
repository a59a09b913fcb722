"""SMS through HTTP providers.

- ``SmsRu``: SMS.ru's documented API (``POST https://sms.ru/sms/send`` with ``api_id``,
  ``to``, ``msg``, ``json=1``, optional ``from`` and ``test``; the answer's ``status`` and
  per-number ``status_code``: 100 accepted).  SMS.ru takes no idempotency key: a crash
  between its answer and our mark can send that SMS twice (docs/notifications.md).
- ``JsonSms``: a generic JSON webhook (``{"to", "text", "key"}`` with an
  ``Idempotency-Key`` header and an optional bearer token) for gateways of one's own or
  another provider behind a small adapter.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kopilka.notify.channels import Outgoing, Reject, Retry
from kopilka.notify.channels.http import check_status, post

# SMS.ru status codes after which the same message will never go through.
SMSRU_FINAL = {
    202,  # the recipient's number is wrong
    203,  # no text
    205,  # the message is too long
    207,  # this number may not receive messages
    209,  # the number is in the stop list
}


def _digits(phone: str) -> str:
    return "".join(c for c in phone if c.isdigit())


@dataclass(frozen=True, slots=True)
class SmsRu:
    api_id: str
    sender: str | None = None
    test: bool = False
    base_url: str = "https://sms.ru"
    timeout_s: float = 10.0

    async def send(self, msg: Outgoing) -> str | None:
        to = _digits(msg.recipient)
        form = {"api_id": self.api_id, "to": to, "msg": msg.body, "json": "1"}
        sender = msg.extra.get("sender") or self.sender  # the program's, else the account's
        if sender:
            form["from"] = sender
        if self.test:
            form["test"] = "1"
        answer = await post(
            self.base_url.rstrip("/") + "/sms/send",
            urllib.parse.urlencode(form).encode(),
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            timeout_s=self.timeout_s,
        )
        check_status(answer, "sms.ru")
        try:
            # balance is a JSON number: parse numbers as Decimal, never float
            doc: dict[str, Any] = json.loads(answer.body, parse_float=Decimal)
        except ValueError:
            raise Retry(f"sms.ru: not JSON: {answer.body[:200]!r}") from None
        if doc.get("status") != "OK":
            raise Retry(f"sms.ru: {doc.get('status_code')} {doc.get('status_text', '')}")
        one = (doc.get("sms") or {}).get(to) or {}
        if one.get("status") == "OK":
            return str(one.get("sms_id") or "") or None
        code = int(one.get("status_code") or 0)
        text = f"sms.ru: {code} {one.get('status_text', '')}".strip()
        if code in SMSRU_FINAL:
            raise Reject(text)
        raise Retry(text)


@dataclass(frozen=True, slots=True)
class JsonSms:
    url: str
    token: str | None = None
    timeout_s: float = 10.0

    async def send(self, msg: Outgoing) -> str | None:
        doc = {"to": msg.recipient, "text": msg.body, "key": msg.key}
        if msg.extra.get("sender"):
            doc["from"] = msg.extra["sender"]  # the program's sender name
        body = json.dumps(doc).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": msg.key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        answer = await post(self.url, body, headers, timeout_s=self.timeout_s)
        check_status(answer, "sms webhook")
        try:
            ref = json.loads(answer.body).get("id") if answer.body.strip() else None
        except (ValueError, AttributeError):
            ref = None
        return None if ref is None else str(ref)
