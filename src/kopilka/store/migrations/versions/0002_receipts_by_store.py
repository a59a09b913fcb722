"""Find a receipt by its POS id within a store (refunds at another till).

Built CONCURRENTLY on PostgreSQL, outside the migration's transaction, so that a large
receipts table keeps taking writes while the index is built.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_receipts_store_id_pos_receipt_id",
            "receipts",
            ["store_id", "pos_receipt_id"],
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_receipts_store_id_pos_receipt_id",
            table_name="receipts",
            postgresql_concurrently=True,
        )
