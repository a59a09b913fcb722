"""A program's settings page (issue 9, docs/console/programs.md): point value, rounding,
time zone (a new document version when changed), the points' name, language, SMS sender,
the cabinet's branding and support contacts, the logo.  Readers see it, writers save it;
a bad field is shown next to it with what was typed kept (post/redirect/get on success).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.services import program_profile
from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.programs.views import Reader, Writer, _ref
from kopilka.web.templating import redirect, render

router = APIRouter(include_in_schema=False)

TEXT_FIELDS = (
    "point_value",
    "points_step",
    "earn_rounding",
    "timezone",
    "language",
    "sms_sender",
    "brand_name",
    "primary_colour",
    "support_phone",
    "support_email",
    "support_url",
)


def _values(s: program_profile.Settings) -> dict[str, str]:
    p = s.profile
    return {
        **s.rules,
        "points_ru_one": p.points_ru[0],
        "points_ru_few": p.points_ru[1],
        "points_ru_many": p.points_ru[2],
        "points_en_one": p.points_en[0],
        "points_en_other": p.points_en[1],
        "language": p.language or "",
        "sms_sender": p.sms_sender or "",
        "brand_name": p.brand_name,
        "primary_colour": p.primary_colour or "",
        "support_phone": p.support_phone,
        "support_email": p.support_email,
        "support_url": p.support_url,
    }


def _changes(values: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: values.get(k, "").strip() for k in TEXT_FIELDS if k in values}
    out["points_ru"] = [values.get(f"points_ru_{k}", "") for k in ("one", "few", "many")]
    out["points_en"] = [values.get(f"points_en_{k}", "") for k in ("one", "other")]
    return out


def _errors(exc: ServiceError, lang: str) -> dict[str, str]:
    """Field -> message, the forms' own names (``points_ru[1]`` -> ``points_ru_few``)."""
    names = {
        "points_ru[0]": "points_ru_one",
        "points_ru[1]": "points_ru_few",
        "points_ru[2]": "points_ru_many",
        "points_en[0]": "points_en_one",
        "points_en[1]": "points_en_other",
    }
    out: dict[str, str] = {}
    for e in exc.extra.get("errors", []) or [{"field": exc.field or "", "detail": exc.detail}]:
        out.setdefault(names.get(e["field"], e["field"]), i18n.gettext(lang, e["detail"]))
    return out


async def _page(
    request: Request,
    c: Any,
    code: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    s = await program_profile.settings(c.rt, code)
    lang = c.lang
    sample = {
        "ru": [i18n.points("ru", Decimal(n), s.profile.points_forms("ru")) for n in (1, 3, 11)],
        "en": [i18n.points("en", Decimal(n), s.profile.points_forms("en")) for n in (1, 3)],
    }
    ctx = {
        "code": code,
        "s": s,
        "values": values if values is not None else _values(s),
        "errors": errors or {},
        "can_write": c.can(Perm.PROGRAMS_WRITE),
        "sample": sample,
        "lang": lang,
    }
    return render(request, "programs/settings.html", ctx, status=status)


@router.get("/admin/programs/{code}/settings")
async def settings_page(request: Request, code: str, c: Reader) -> Response:
    _ref(c, code)
    return await _page(request, c, code)


@router.post("/admin/programs/{code}/settings")
async def settings_save(request: Request, code: str, c: Writer) -> Response:
    _ref(c, code)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    try:
        await program_profile.do_update_settings(c.rt, code, _changes(values), actor=c.actor)
        upload = form.get("logo")
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(program_profile.LOGO_MAX_BYTES + 1)
            await program_profile.do_set_logo(c.rt, code, data, actor=c.actor)
        elif values.get("logo_remove") == "1":
            await program_profile.do_set_logo(c.rt, code, None, actor=c.actor)
    except ServiceError as exc:
        if exc.code != "validation_failed":
            raise
        return await _page(request, c, code, values=values, errors=_errors(exc, c.lang), status=422)
    return redirect(
        f"/admin/programs/{code}/settings", flash=i18n.gettext(c.lang, "Settings saved.")
    )
