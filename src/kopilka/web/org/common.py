"""What the org pages share: reading a form, a refusal in the viewer's language."""

from __future__ import annotations

from starlette.requests import Request

from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.auth import Console


async def form_values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}


def message(c: Console, what: ServiceError | str) -> str:
    text = what.detail if isinstance(what, ServiceError) else what
    return i18n.gettext(c.lang, text)


def opt_int(value: str | None) -> int | None:
    v = (value or "").strip()
    return int(v) if v.isdigit() else None


def field_errors(c: Console, exc: ServiceError, default: str) -> dict[str, str]:
    """Field -> message (in the viewer's language) of a refusal, every field it names."""
    errors = {
        str(e["field"]): message(c, str(e["detail"]))
        for e in exc.extra.get("errors", ())
        if isinstance(e, dict) and e.get("field")
    }
    return errors or {exc.field or default: message(c, exc)}
