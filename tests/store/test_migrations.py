"""The migrations build exactly the schema the code describes, on both engines."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from kopilka.services.runtime import Runtime
from kopilka.store.tables import include_object, metadata


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(
        conn,
        opts={"compare_type": True, "include_object": include_object(conn.dialect.name)},
    )
    return list(compare_metadata(ctx, metadata))


async def test_migrated_database_matches_the_tables_module(rt: Runtime) -> None:
    async with rt.engine.connect() as conn:
        diff = await conn.run_sync(_diff)

    assert diff == []
