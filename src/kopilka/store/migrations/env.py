"""Alembic environment: runs migrations on the async engine, under a lock timeout."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from kopilka.store.db import create_engine
from kopilka.store.tables import include_object, metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # A migration waits at most 10 s for a lock instead of queueing the hot path behind it.
        connection.exec_driver_sql("SET lock_timeout = '10s'")  # for the whole session
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object(connection.dialect.name),
        transaction_per_migration=True,  # lets a migration step outside it (CONCURRENTLY)
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `kopilka migrate`")
asyncio.run(_main())
