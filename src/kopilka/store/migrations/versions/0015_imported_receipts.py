"""Receipts imported from a chain's old system (issue 8): the old system's receipt id per
program is the key that makes a re-run of ``kopilka import receipts`` change nothing.
The receipts themselves are ordinary ``receipts`` rows (``source = 'import'``); this
table only remembers which ids arrived (ADR 0014).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kopilka.store.types import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "imported_receipts",
        sa.Column("program_id", Id, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("receipt_id", sa.String(64), nullable=False),
        sa.Column("receipt_pk", Id, sa.ForeignKey("receipts.id"), nullable=False),
        sa.Column("imported_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "receipt_id"),
    )


def downgrade() -> None:
    op.drop_table("imported_receipts")
