"""What the mechanics pages share: reading a form, turning a service's refusal into the
message next to its field, and answering a download."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from kopilka.domain.rules.model import CODE_RE
from kopilka.services import exports
from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.templating import lang_of

# The console's times are Moscow time, as the ``dt`` filter shows them.
LOCAL_TZ = ZoneInfo("Europe/Moscow")


class FormErrors(Exception):
    """Field -> message for the form to show; raised by the parsers below."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


async def form_values(request: Request) -> dict[str, str]:
    """The submitted form as text, trimmed (without the CSRF token)."""
    form = await request.form()
    return {k: str(v).strip() for k, v in form.items() if k != "csrf" and isinstance(v, str)}


class Reader:
    """Reads typed fields of a form, collecting a message per bad field."""

    def __init__(self, request: Request, values: Mapping[str, str]) -> None:
        self.values = values
        self.lang = lang_of(request)
        self.errors: dict[str, str] = {}

    def _(self, text: str) -> str:
        return i18n.gettext(self.lang, text)

    def text(self, name: str, *, required: bool = True, max_len: int = 200) -> str:
        value = self.values.get(name, "")
        if required and not value:
            self.errors[name] = self._("Required")
        elif len(value) > max_len:
            self.errors[name] = f"{self._('At most')} {max_len}"
        return value

    def code(self, name: str) -> str:
        """A code as the admin API takes it: letters, digits, ``_ . -``."""
        value = self.text(name, max_len=64)
        if value and not re.match(CODE_RE, value):
            self.errors[name] = self._("Letters, digits and _ . - only")
        return value

    def integer(
        self, name: str, *, required: bool = False, low: int = 0, high: int = 10**9
    ) -> int | None:
        raw = self.values.get(name, "").replace(" ", "")
        if not raw:
            if required:
                self.errors[name] = self._("Required")
            return None
        try:
            value = int(raw)
        except ValueError:
            self.errors[name] = self._("A whole number")
            return None
        if not low <= value <= high:
            self.errors[name] = f"{self._('From')} {low} {self._('to')} {high}"
            return None
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        raw = self.values.get(name, "").replace(" ", "").replace("\xa0", "").replace(",", ".")
        if not raw:
            if required:
                self.errors[name] = self._("Required")
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            self.errors[name] = self._("A number, such as 500 or 99.90")
            return None
        if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
            self.errors[name] = self._("Above 0, at most two decimals")
            return None
        return value

    def when(self, name: str, *, required: bool = False) -> datetime | None:
        """A ``datetime-local`` input, in Moscow time."""
        raw = self.values.get(name, "")
        if not raw:
            if required:
                self.errors[name] = self._("Required")
            return None
        try:
            return datetime.fromisoformat(raw).replace(tzinfo=LOCAL_TZ)
        except ValueError:
            self.errors[name] = self._("A date and time")
            return None

    def flag(self, name: str) -> bool:
        return self.values.get(name, "") in ("on", "1", "true", "yes")

    def check(self) -> None:
        if self.errors:
            raise FormErrors(self.errors)


def refusal(request: Request, exc: ServiceError, fields: Mapping[str, str]) -> dict[str, str]:
    """A service's refusal as form errors: its field (named as the form names it) or the
    form's general message (``_form``)."""
    name = fields.get(exc.field or "", exc.field or "")
    return {name if name in fields.values() else "_form": exc.detail}


def local_input(value: datetime | None) -> str:
    """A stored time as a ``datetime-local`` input shows it (Moscow time)."""
    return "" if value is None else value.astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M")


def fmt_of(request: Request) -> str:
    fmt = request.query_params.get("format", "csv")
    return fmt if fmt in exports.FORMATS else "csv"


def download(table: exports.Table, fmt: str, filename: str) -> Response:
    """The table as a file the browser saves, streamed as it is written."""
    return StreamingResponse(
        exports.chunks(table, fmt),
        media_type=exports.media_type(fmt),
        headers=exports.attachment(filename, fmt),
    )


def page_params(request: Request) -> dict[str, Any]:
    return dict(request.query_params)
