"""Setting up an installation: programs (with their settings), partners, stores."""

from __future__ import annotations

import dataclasses
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import insert, select, update

from kopilka.domain.program import ProgramSettings
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime, settings_from_json, settings_to_json
from kopilka.store import tables as t


def parse_settings(base: ProgramSettings, changes: dict[str, str]) -> ProgramSettings:
    """Apply ``name=value`` changes to settings, checking names, types and ranges."""
    known = {f.name: f for f in dataclasses.fields(ProgramSettings)}
    kwargs: dict[str, Any] = {}
    for name, raw in changes.items():
        if name not in known:
            raise ServiceError(
                "validation_failed",
                f"unknown setting {name!r}; known: " + ", ".join(known),
                field=name,
            )
        current = getattr(base, name)
        try:
            if isinstance(current, Decimal) or name in ("negative_balance_limit",):
                kwargs[name] = Decimal(raw)
            elif name == "expiry_days":
                kwargs[name] = None if raw.lower() in ("", "none", "never") else int(raw)
            elif isinstance(current, int):
                kwargs[name] = int(raw)
            else:
                kwargs[name] = raw
        except (InvalidOperation, ValueError):
            raise ServiceError(
                "validation_failed", f"{name}: {raw!r} is not a valid value", field=name
            ) from None
    settings = dataclasses.replace(base, **kwargs)
    check_settings(settings)
    return settings


def check_settings(s: ProgramSettings) -> None:
    def bad(name: str, why: str) -> ServiceError:
        return ServiceError("validation_failed", f"{name}: {why}", field=name)

    if not Decimal(0) <= s.earn_percent <= 100:
        raise bad("earn_percent", "must be between 0 and 100")
    if not Decimal(0) <= s.burn_max_percent <= 100:
        raise bad("burn_max_percent", "must be between 0 and 100")
    if s.point_value <= 0:
        raise bad("point_value", "must be positive")
    if s.points_step not in (Decimal("1"), Decimal("0.01")):
        raise bad("points_step", "must be 1 or 0.01")
    if s.earn_rounding not in ("floor", "half_up"):
        raise bad("earn_rounding", "must be floor or half_up")
    if s.min_payment < 0 or s.negative_balance_limit < 0:
        raise bad("min_payment", "must not be negative")
    if s.activation_delay_days < 0 or (s.expiry_days is not None and s.expiry_days <= 0):
        raise bad("expiry_days", "must be positive (or none)")
    if s.hold_ttl_s < 10:
        raise bad("hold_ttl_s", "must be at least 10 seconds")
    if s.offline_cap_max < 0:
        raise bad("offline_cap_max", "must not be negative")
    if not 60 <= s.offline_token_ttl_s <= 86400:
        raise bad("offline_token_ttl_s", "must be between 60 and 86400 seconds")
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad("timezone", "unknown time zone") from None


async def program_id(conn: Any, code: str, *, field: str = "program") -> int:
    """The id of the program with this code; ``program_not_found`` (404) naming ``field``."""
    pid = (
        await conn.execute(select(t.programs.c.id).where(t.programs.c.code == code))
    ).scalar_one_or_none()
    if pid is None:
        raise ServiceError("program_not_found", f"no program {code!r}", field=field)
    return int(pid)


async def do_create_program(rt: Runtime, *, code: str, name: str, changes: dict[str, str]) -> None:
    settings = parse_settings(ProgramSettings(), changes)
    async with rt.engine.begin() as conn:
        await conn.execute(
            insert(t.programs),
            {
                "code": code,
                "name": name,
                "settings": settings_to_json(settings),
                "created_at": rt.now(),
            },
        )


async def do_set_program(
    rt: Runtime, *, code: str, changes: dict[str, str], author: str = "kopilka program set"
) -> ProgramSettings:
    """Change settings; every server process picks them up within its cache TTL (5 s).

    A program with a document gets a new document version with the settings changed (its
    promotions stay); a program without one, new settings."""
    from kopilka.services import programs

    if await programs.has_document(rt, code):
        await programs.do_set_settings(rt, code, changes, author=author)
        return await show_program(rt, code)
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(t.programs.c.id, t.programs.c.settings).where(t.programs.c.code == code)
            )
        ).first()
        if row is None:
            raise ServiceError("validation_failed", f"no program {code!r}", field="program")
        settings = parse_settings(settings_from_json(row.settings), changes)
        await conn.execute(
            update(t.programs)
            .where(t.programs.c.id == row.id)
            .values(settings=settings_to_json(settings), version=t.programs.c.version + 1)
        )
    return settings


async def show_program(rt: Runtime, code: str) -> ProgramSettings:
    async with rt.engine.connect() as conn:
        raw = (
            await conn.execute(select(t.programs.c.settings).where(t.programs.c.code == code))
        ).scalar_one_or_none()
    if raw is None:
        raise ServiceError("validation_failed", f"no program {code!r}", field="program")
    return settings_from_json(raw)


async def do_add_partner(rt: Runtime, *, program: str, code: str, name: str) -> None:
    async with rt.engine.begin() as conn:
        pid = await program_id(conn, program)
        await conn.execute(insert(t.partners), {"program_id": pid, "code": code, "name": name})


async def do_add_store(
    rt: Runtime,
    *,
    program: str,
    partner: str,
    code: str,
    name: str,
    city: str = "",
    region: str = "",
    address: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    timezone: str = "Europe/Moscow",
) -> None:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError("validation_failed", "unknown time zone", field="timezone") from None
    async with rt.engine.begin() as conn:
        pid = await program_id(conn, program)
        partner_id = (
            await conn.execute(
                select(t.partners.c.id).where(
                    t.partners.c.program_id == pid, t.partners.c.code == partner
                )
            )
        ).scalar_one_or_none()
        if partner_id is None:
            raise ServiceError("validation_failed", f"no partner {partner!r}", field="partner")
        await conn.execute(
            insert(t.stores),
            {
                "program_id": pid,
                "partner_id": partner_id,
                "code": code,
                "name": name,
                "city": city,
                "region": region,
                "address": address,
                "latitude": latitude,
                "longitude": longitude,
                "timezone": timezone,
            },
        )
