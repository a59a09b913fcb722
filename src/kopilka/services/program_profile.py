"""A program's presentation settings (issue 9, ADR 0027): the points' name, language, SMS
sender, the cabinet's branding and support contacts, the logo; and the rules settings
people edit beside them (point value, rounding, time zone), which stay in the versioned
program document.

``programs.profile`` is read by ``Runtime.compiled``'s version check (one statement,
cached), so the till's printed lines and the worker's messages see it at no cost.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.program import (
    ProfileInvalid,
    ProgramProfile,
    ProgramSettings,
    check_profile,
    profile_from_json,
)
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

LOGO_MAX_BYTES = 256 * 1024
LOGO_MAX_SIDE = 2048
LOGO_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def invalid(exc: ProfileInvalid) -> ServiceError:
    """Every bad field as a problem+json ``errors`` list, the first one as ``field``."""
    return ServiceError(
        "validation_failed",
        str(exc),
        field=exc.problems[0][0],
        errors=[{"field": f, "code": "bad_value", "detail": m} for f, m in exc.problems],
    )


def parse(raw: str | None) -> ProgramProfile:
    return profile_from_json(orjson.loads(raw) if raw else None)


async def _program_id(conn: AsyncConnection, code: str) -> tuple[int, str | None]:
    row = (
        await conn.execute(
            select(t.programs.c.id, t.programs.c.profile).where(t.programs.c.code == code)
        )
    ).first()
    if row is None:
        raise ServiceError("program_not_found", f"no program {code!r}", field="program")
    return int(row.id), row.profile


async def profile_of(rt: Runtime, program_id: int) -> ProgramProfile:
    """The program's profile, from the runtime's cache (refreshed with the version)."""
    return await rt.profile(program_id)


async def load(rt: Runtime, code: str) -> tuple[int, ProgramProfile]:
    """(program id, its profile), read now (the console's form)."""
    async with rt.engine.connect() as conn:
        pid, raw = await _program_id(conn, code)
    return pid, parse(raw)


async def do_set_profile(
    rt: Runtime, code: str, changes: dict[str, Any], *, actor: Actor
) -> ProgramProfile:
    """Change the named fields (the others stay), audited; refuses every bad field at
    once (``validation_failed`` with ``errors``).  Locks the program's row."""
    async with rt.engine.begin() as conn:
        p = t.programs
        row = (
            await conn.execute(
                update(p)
                .where(p.c.code == code)
                .values(profile=p.c.profile)  # takes the row lock before reading
                .returning(p.c.id, p.c.profile)
            )
        ).first()
        if row is None:
            raise ServiceError("program_not_found", f"no program {code!r}", field="program")
        if actor.program_id is not None and actor.program_id != row.id:
            raise ServiceError("program_not_found", f"no program {code!r}", field="program")
        before = parse(row.profile)
        try:
            after = check_profile(changes, before)
        except ProfileInvalid as exc:
            raise invalid(exc) from None
        await conn.execute(
            update(p).where(p.c.id == row.id).values(profile=orjson.dumps(after.to_json()).decode())
        )
        await audit.record(
            conn,
            actor,
            "program.profile",
            "program",
            code,
            at=rt.now(),
            program_id=row.id,
            before=before.to_json(),
            after=after.to_json(),
        )
    rt.forget_program(int(row.id))
    return after


# --- the logo -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Logo:
    content_type: str
    data: bytes
    sha256: str


def check_logo(data: bytes) -> str:
    """The content type of an acceptable logo, or ``validation_failed`` on ``logo``:
    PNG, JPEG or WebP that Pillow opens, at most 256 KB and 2048 px a side.  SVG is
    refused: it can carry scripts."""

    def bad(why: str) -> ServiceError:
        return ServiceError(
            "validation_failed",
            f"logo: {why}",
            field="logo",
            errors=[{"field": "logo", "code": "bad_value", "detail": why}],
        )

    if not data:
        raise bad("no file")
    if len(data) > LOGO_MAX_BYTES:
        raise bad(f"at most {LOGO_MAX_BYTES // 1024} KB")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            width, height = img.size
            img.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise bad("not a PNG, JPEG or WebP image") from None
    if fmt not in LOGO_TYPES:
        raise bad("not a PNG, JPEG or WebP image")
    if max(width, height) > LOGO_MAX_SIDE:
        raise bad(f"at most {LOGO_MAX_SIDE} pixels a side")
    return LOGO_TYPES[fmt]


async def do_set_logo(rt: Runtime, code: str, data: bytes | None, *, actor: Actor) -> Logo | None:
    """Store (or, with None, remove) the program's logo, audited."""
    content_type = check_logo(data) if data is not None else None
    async with rt.engine.begin() as conn:
        pid, _ = await _program_id(conn, code)
        if actor.program_id is not None and actor.program_id != pid:
            raise ServiceError("program_not_found", f"no program {code!r}", field="program")
        await conn.execute(delete(t.program_logos).where(t.program_logos.c.program_id == pid))
        logo = None
        if data is not None and content_type is not None:
            logo = Logo(content_type, data, hashlib.sha256(data).hexdigest())
            await conn.execute(
                insert(t.program_logos),
                {
                    "program_id": pid,
                    "content_type": logo.content_type,
                    "data": logo.data,
                    "sha256": logo.sha256,
                    "updated_at": rt.now(),
                },
            )
        await audit.record(
            conn,
            actor,
            "program.logo",
            "program",
            code,
            at=rt.now(),
            program_id=pid,
            after={"sha256": logo.sha256 if logo else None, "bytes": len(data or b"")},
        )
    return logo


async def logo_of(rt: Runtime, program_id: int) -> Logo | None:
    lg = t.program_logos
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(lg.c.content_type, lg.c.data, lg.c.sha256).where(
                    lg.c.program_id == program_id
                )
            )
        ).first()
    return None if row is None else Logo(row.content_type, bytes(row.data), row.sha256)


# --- the settings page and the admin API: rules and profile together ------------------------

# The document's settings edited beside the profile; a change of any is a new version.
RULE_FIELDS = ("point_value", "points_step", "earn_rounding", "timezone")


@dataclass(frozen=True, slots=True)
class Settings:
    code: str
    name: str
    version: int
    rules: dict[str, str]
    profile: ProgramProfile
    logo_sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "version": self.version,
            **self.rules,
            **self.profile.to_json(),
            "logo": None
            if self.logo_sha256 is None
            else {
                "sha256": self.logo_sha256,
                "url": f"/my/{self.code}/logo?v={self.logo_sha256[:12]}",
            },
        }


async def settings(rt: Runtime, code: str) -> Settings:
    """The program's editable settings as they are now."""
    from kopilka.services.runtime import load_compiled

    p, lg = t.programs, t.program_logos
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(p.c.id, p.c.name, p.c.version, p.c.profile, lg.c.sha256)
                .select_from(p.outerjoin(lg, lg.c.program_id == p.c.id))
                .where(p.c.code == code)
            )
        ).first()
        if row is None:
            raise ServiceError("program_not_found", f"no program {code!r}", field="program")
        s = (await load_compiled(conn, row.id, row.version)).settings
    rules = {
        "point_value": format(s.point_value.normalize(), "f"),
        "points_step": "0.01" if s.points_step == Decimal("0.01") else "1",
        "earn_rounding": s.earn_rounding,
        "timezone": s.timezone,
    }
    return Settings(code, row.name, int(row.version), rules, parse(row.profile), row.sha256)


def _as_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError
    if isinstance(value, float):  # JSON is parsed with Decimal; a float never reaches here
        raise ValueError
    return str(value)


async def do_update_settings(
    rt: Runtime, code: str, data: dict[str, Any], *, actor: Actor
) -> Settings:
    """Change any of the rules' fields (a new document version, only if one changed) and
    of the profile's (audited).  Every field is checked before anything is written, and
    every bad one is named (``validation_failed`` with ``errors``)."""
    from kopilka.services import programs
    from kopilka.services.setup import parse_settings

    current = await settings(rt, code)
    problems: list[tuple[str, str]] = []
    rule_changes: dict[str, str] = {}
    profile_changes: dict[str, Any] = {}
    for name, value in data.items():
        if name in RULE_FIELDS:
            try:
                text = _as_text(value)
            except ValueError:
                problems.append((name, "must be a string or a number"))
                continue
            if text != current.rules[name]:
                rule_changes[name] = text
        elif name in current.profile.to_json():
            profile_changes[name] = value
        else:
            known = ", ".join((*RULE_FIELDS, *current.profile.to_json()))
            problems.append((name, f"unknown setting; known: {known}"))
    if "point_value" in rule_changes:
        try:
            pv = Decimal(rule_changes["point_value"])
            if (
                not pv.is_finite()
                or not Decimal("0") < pv <= 1000
                or pv != pv.quantize(Decimal("0.0001"))
            ):
                problems.append(("point_value", "a number above 0, at most 1000, 4 decimals"))
        except InvalidOperation:
            problems.append(("point_value", "must be a number"))
    if "points_step" in rule_changes and rule_changes["points_step"] not in ("1", "0.01"):
        problems.append(("points_step", "must be 1 or 0.01"))
    if "earn_rounding" in rule_changes and rule_changes["earn_rounding"] not in (
        "floor",
        "half_up",
    ):
        problems.append(("earn_rounding", "must be floor or half_up"))
    if "timezone" in rule_changes:
        try:
            ZoneInfo(rule_changes["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(("timezone", f"unknown time zone {rule_changes['timezone']!r}"))
    try:
        check_profile(profile_changes, current.profile)
    except ProfileInvalid as exc:
        problems += exc.problems
    if not problems and rule_changes:
        try:
            parse_settings(ProgramSettings(), rule_changes)
        except ServiceError as exc:
            problems.append((exc.field or "body", exc.detail))
    if problems:
        raise invalid(ProfileInvalid(problems))
    if actor.program_id is not None and actor.program_id != await _id_of(rt, code):
        raise ServiceError("program_not_found", f"no program {code!r}", field="program")
    if rule_changes:
        await programs.do_set_settings(rt, code, rule_changes, author=actor.name)
    if profile_changes:
        await do_set_profile(rt, code, profile_changes, actor=actor)
    return await settings(rt, code)


async def _id_of(rt: Runtime, code: str) -> int:
    async with rt.engine.connect() as conn:
        pid, _ = await _program_id(conn, code)
    return pid


@dataclass(frozen=True, slots=True)
class Brand:
    """What the cabinet's pages show of a program: its profile and whether it has a logo."""

    code: str
    name: str  # the brand name, or the program's name
    profile: ProgramProfile
    logo_sha256: str | None

    @property
    def logo_url(self) -> str | None:
        return (
            None if self.logo_sha256 is None else f"/my/{self.code}/logo?v={self.logo_sha256[:12]}"
        )

    @property
    def css_url(self) -> str | None:
        colour = self.profile.primary_colour
        return None if colour is None else f"/my/{self.code}/brand.css?v={colour[1:]}"


async def brand(rt: Runtime, program_id: int) -> Brand:
    """One read: the program's code, name, profile and logo's digest."""
    p, lg = t.programs, t.program_logos
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(p.c.code, p.c.name, p.c.profile, lg.c.sha256)
                .select_from(p.outerjoin(lg, lg.c.program_id == p.c.id))
                .where(p.c.id == program_id)
            )
        ).one()
    profile = parse(row.profile)
    return Brand(row.code, profile.brand_name or row.name, profile, row.sha256)


def brand_css(colour: str) -> str:
    """The cabinet's stylesheet for a primary colour (validated ``#rrggbb``): served as a
    file, so the pages keep a CSP without inline styles from user input."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    dark = f"#{r * 3 // 4:02x}{g * 3 // 4:02x}{b * 3 // 4:02x}"
    # white text on light colours is unreadable: pick the text by relative luminance
    ink = "#1b1f1d" if 2126 * r + 7152 * g + 722 * b > 1_600_000 else "#ffffff"
    return (
        f":root {{ --pico-primary: {colour}; --pico-primary-background: {colour};\n"
        f"  --pico-primary-border: {colour}; --pico-primary-underline: {colour};\n"
        f"  --pico-primary-hover: {dark}; --pico-primary-hover-background: {dark};\n"
        f"  --pico-primary-hover-border: {dark}; --pico-primary-inverse: {ink}; }}\n"
        f".cab-top, .cab-balance {{ background: {colour}; color: {ink}; }}\n"
        f".cab-top .cab-brand, .cab-tools a.cab-lang, .cab-tools button.small,\n"
        f".cab-balance p, .cab-balance dd, .cab-balance .cab-big {{ color: {ink}; }}\n"
        f'.cab-tabs a[aria-current="page"] {{ color: {dark}; border-bottom-color: {colour}; }}\n'
        f".flash {{ border-left-color: {colour}; }}\n"
    )
