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
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.domain.program import ProfileInvalid, ProgramProfile, check_profile, profile_from_json
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
