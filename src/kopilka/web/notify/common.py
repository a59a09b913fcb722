"""What the notification pages share: reading a form (several values of a field joined
by commas, an uploaded file's text), a refusal in the viewer's language."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request

from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.auth import Console

MAX_UPLOAD_BYTES = 5_000_000


async def form_values(request: Request) -> tuple[dict[str, str], str | None]:
    """The form's fields and the text of an uploaded list (or None)."""
    form = await request.form()
    values: dict[str, str] = {}
    upload: str | None = None
    for key in set(form.keys()):
        if key == "csrf":
            continue
        items = form.getlist(key)
        files = [x for x in items if isinstance(x, UploadFile)]
        if files:
            raw = await files[0].read(MAX_UPLOAD_BYTES)
            if raw:
                upload = raw.decode("utf-8-sig", errors="replace")
            continue
        texts = [x for x in items if isinstance(x, str)]
        values[key] = ",".join(texts) if len(texts) > 1 else (texts[0] if texts else "")
    return values, upload


def message(c: Console, what: ServiceError | str) -> str:
    text = what.detail if isinstance(what, ServiceError) else what
    return i18n.gettext(c.lang, text, "notify")


def field_errors(c: Console, exc: ServiceError, default: str) -> dict[str, str]:
    return {exc.field or default: message(c, exc)}
