"""The hot tables hash-partitioned by ``program_id`` on PostgreSQL (docs/scaling.md,
ADR 0032): ``kopilka migrate --partitioned`` on a new, empty database.

The rehearsal for a distributed engine (Citus: distribution column ``program_id``): the
same constraints apply there — every primary key and unique key includes the partition
column, and a foreign key *to* a partitioned table must reference a key that includes it.

What it does to each hot table, in one transaction, after the normal migrations:

- a new table ``LIKE`` the old one (defaults, identity, checks, not-nulls), ``PARTITION BY
  HASH (program_id)`` with ``partitions`` partitions;
- the primary key becomes ``(id, program_id)``; each unique constraint or unique index
  gets ``program_id`` appended when it lacks it (``(terminal_id, pos_receipt_id)`` becomes
  ``(terminal_id, pos_receipt_id, program_id)``: a terminal belongs to one program, so
  the rule it enforces is the same);
- other indexes, foreign keys to ordinary tables and triggers (the ledger's append-only
  triggers) are created again as they were;
- foreign keys that point *at* a hot table's ``id`` alone are dropped: PostgreSQL cannot
  check them against a key that includes ``program_id``.  The services write both rows in
  one transaction; ``kopilka ledger verify`` checks the ledger's sums.  Those that were
  dropped are returned (and printed by the CLI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

HOT_TABLES = ("accounts", "receipts", "receipt_lines", "ledger_entries", "lots", "holds")
KEY = "program_id"


class PartitionError(ValueError):
    pass


@dataclass
class Report:
    partitioned: list[str] = field(default_factory=list)
    dropped_foreign_keys: list[str] = field(default_factory=list)
    widened_unique: list[str] = field(default_factory=list)


async def _rows(conn: AsyncConnection, sql: str, **params: object) -> list[tuple[object, ...]]:
    return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]


async def partition_hot_tables(
    conn: AsyncConnection, *, partitions: int = 8, tables: tuple[str, ...] = HOT_TABLES
) -> Report:
    """Partition ``tables`` by hash of ``program_id``; runs inside the caller's transaction.
    The tables must be empty (a new installation)."""
    if conn.dialect.name != "postgresql":
        raise PartitionError("partitioning is for PostgreSQL")
    report = Report()
    for table in tables:
        cols = await _rows(
            conn,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :t",
            t=table,
        )
        if (KEY,) not in cols:
            raise PartitionError(f"{table} has no {KEY} column")
        if (await conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table})"))).scalar():
            raise PartitionError(f"{table} has rows: partition a new, empty database")
    # Foreign keys pointing at a hot table: dropped (see the module's docstring).
    fks = await _rows(
        conn,
        "SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text "
        "FROM pg_constraint c WHERE c.contype = 'f' "
        "AND c.confrelid::regclass::text = ANY(:t)",
        t=list(tables),
    )
    for name, on, to in fks:
        await conn.execute(text(f'ALTER TABLE {on} DROP CONSTRAINT "{name}"'))
        report.dropped_foreign_keys.append(f"{on}.{name} -> {to}")
    for table in tables:
        await _partition_one(conn, str(table), partitions, report)
    return report


async def _partition_one(conn: AsyncConnection, table: str, n: int, report: Report) -> None:
    old = f"{table}_unpartitioned"
    # What to create again, read before the old table goes.
    constraints = await _rows(
        conn,
        "SELECT conname, contype::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = CAST(:t AS regclass) AND contype IN ('p', 'u', 'f', 'x')",
        t=table,
    )
    indexes = await _rows(
        conn,
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indisunique "
        "FROM pg_index i WHERE i.indrelid = CAST(:t AS regclass) AND NOT EXISTS ("
        "  SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid"
        "  AND c.conrelid = i.indrelid)",
        t=table,
    )
    triggers = await _rows(
        conn,
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal",
        t=table,
    )
    sequences = await _rows(
        conn,
        "SELECT a.attname, pg_get_serial_sequence(:t, a.attname) FROM pg_attribute a "
        "WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped "
        "AND pg_get_serial_sequence(:t, a.attname) IS NOT NULL",
        t=table,
    )
    for _, seq in sequences:  # keep the sequences when the old table is dropped
        await conn.execute(text(f"ALTER SEQUENCE {seq} OWNED BY NONE"))
    await conn.execute(text(f"ALTER TABLE {table} RENAME TO {old}"))
    await conn.execute(
        text(
            f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY "
            f"INCLUDING GENERATED INCLUDING CONSTRAINTS) PARTITION BY HASH ({KEY})"
        )
    )
    await conn.execute(text(f"DROP TABLE {old} CASCADE"))
    for col, seq in sequences:
        await conn.execute(text(f"ALTER SEQUENCE {seq} OWNED BY {table}.{col}"))
    for i in range(n):
        await conn.execute(
            text(
                f"CREATE TABLE {table}_p{i} PARTITION OF {table} "
                f"FOR VALUES WITH (MODULUS {n}, REMAINDER {i})"
            )
        )
    for name, kind, definition in constraints:
        definition = str(definition)
        if kind in ("p", "u"):
            widened = _with_key(definition)
            if kind == "u" and widened != definition:
                report.widened_unique.append(f"{table}: {name}")
            definition = widened
        await conn.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
    for name, definition, unique in indexes:
        d = str(definition).replace(f" ON {old} ", f" ON {table} ")
        d = re.sub(rf" ON (\w+\.)?{old} ", f" ON {table} ", d)
        if unique:
            widened = _with_key(d)
            if widened != d:
                report.widened_unique.append(f"{table}: {name}")
            d = widened
        await conn.execute(text(d))
    for (definition,) in triggers:
        d = re.sub(rf" ON (\w+\.)?{old} ", f" ON {table} ", str(definition))
        await conn.execute(text(d))
    report.partitioned.append(table)


def _with_key(definition: str) -> str:
    """``... (a, b) ...`` with ``program_id`` appended to the first column list when it is
    not in it: ``PRIMARY KEY (id)`` -> ``PRIMARY KEY (id, program_id)``."""
    m = re.search(r"\(([^()]*)\)", definition)
    if m is None:
        raise PartitionError(f"cannot read the columns of {definition!r}")
    columns = [c.strip() for c in m.group(1).split(",")]
    if KEY in columns:
        return definition
    return definition[: m.start()] + "(" + ", ".join([*columns, KEY]) + ")" + definition[m.end() :]
