"""What every service needs: the engine, the clock, and small in-memory caches.

Terminal keys and program settings are cached per process for a few seconds, so the hot
path does not read them on every call, and a disabled terminal or a changed program
takes effect on every server process within ``cache_ttl_s``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.domain.program import ProgramSettings
from kopilka.store import tables as t
from kopilka.store.db import create_engine, is_sqlite


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Terminal:
    id: int
    program_id: int
    store_id: int
    partner_id: int
    name: str
    active: bool
    store_timezone: str


_DEFAULTS = ProgramSettings()


def settings_from_json(raw: str) -> ProgramSettings:
    """Program settings from their JSON column; decimals travel as strings."""
    data: dict[str, Any] = orjson.loads(raw)
    kwargs: dict[str, Any] = {}
    for f in fields(ProgramSettings):
        if f.name in data:
            value = data[f.name]
            is_dec = isinstance(getattr(_DEFAULTS, f.name), Decimal)
            kwargs[f.name] = Decimal(str(value)) if is_dec and value is not None else value
    return ProgramSettings(**kwargs)


def settings_to_json(settings: ProgramSettings) -> str:
    out: dict[str, Any] = {}
    for name in ProgramSettings.__dataclass_fields__:
        value = getattr(settings, name)
        out[name] = str(value) if isinstance(value, Decimal) else value
    return orjson.dumps(out).decode()


@dataclass
class Runtime:
    engine: AsyncEngine
    url: str
    clock: Callable[[], datetime] = utcnow
    cache_ttl_s: float = 5.0
    _terminals: dict[str, tuple[float, Terminal | None]] = field(default_factory=dict)
    _programs: dict[int, tuple[float, ProgramSettings]] = field(default_factory=dict)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Runtime:
        return cls(engine=create_engine(url), url=url, **kwargs)

    @property
    def sqlite(self) -> bool:
        return is_sqlite(self.url)

    def now(self) -> datetime:
        return self.clock()

    async def close(self) -> None:
        await self.engine.dispose()

    async def terminal_by_key(self, key: str) -> Terminal | None:
        """The terminal this key belongs to, cached for ``cache_ttl_s`` (also when unknown)."""
        digest = hash_key(key)
        hit = self._terminals.get(digest)
        mono = time.monotonic()
        if hit is not None and mono - hit[0] < self.cache_ttl_s:
            return hit[1]
        stmt = (
            select(
                t.terminals.c.id,
                t.terminals.c.program_id,
                t.terminals.c.store_id,
                t.stores.c.partner_id,
                t.terminals.c.name,
                t.terminals.c.status,
                t.stores.c.timezone,
            )
            .join(t.stores, t.stores.c.id == t.terminals.c.store_id)
            .where(t.terminals.c.key_hash == digest)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        term = None
        if row is not None:
            term = Terminal(
                row.id,
                row.program_id,
                row.store_id,
                row.partner_id,
                row.name,
                row.status == "active",
                row.timezone,
            )
        if len(self._terminals) > 10_000:
            self._terminals.clear()
        self._terminals[digest] = (mono, term)
        return term

    async def program(self, program_id: int) -> ProgramSettings:
        hit = self._programs.get(program_id)
        mono = time.monotonic()
        if hit is not None and mono - hit[0] < self.cache_ttl_s:
            return hit[1]
        async with self.engine.connect() as conn:
            raw = (
                await conn.execute(
                    select(t.programs.c.settings).where(t.programs.c.id == program_id)
                )
            ).scalar_one()
        settings = settings_from_json(raw)
        self._programs[program_id] = (mono, settings)
        return settings
