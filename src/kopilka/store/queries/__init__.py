"""Query helpers shared by the services."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_id(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> int:
    """Insert one row and return its new ``id``."""
    new_id: int = (await conn.execute(insert(table).returning(table.c.id), values)).scalar_one()
    return new_id
