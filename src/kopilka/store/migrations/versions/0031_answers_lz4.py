"""The stored POS answers compressed with LZ4 on PostgreSQL (ADR 0034).

A receipt keeps its calculate and confirm answers (byte for byte, for idempotent
replays; 3-10 KB each for 10-30 lines), and a refund its answer.  PostgreSQL compresses
such values with pglz by default: under the POS benchmark ``pglz_compress`` was 7 % of the
database's CPU.  LZ4 compresses about as well for JSON at a fraction of the CPU.  Values
already stored stay as they are (PostgreSQL reads both); SQLite has no such setting.

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

COLUMNS = (
    ("receipts", "calc_response"),
    ("receipts", "confirm_response"),
    ("refunds", "response"),
)


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        sa.text(
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
            "AND 'lz4' = ANY(enumvals)"
        )
    ).first()
    return found is not None


def _set(method: str) -> None:
    if not _lz4_available():  # SQLite, or a server built without LZ4: pglz stays
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("pglz")
