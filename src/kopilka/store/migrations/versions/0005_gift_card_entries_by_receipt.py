"""Find a receipt's gift-card entries (confirm, release, refund, the hold sweep).

Built CONCURRENTLY on PostgreSQL, outside the migration's transaction.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_gift_card_entries_receipt_pk",
            "gift_card_entries",
            ["receipt_pk"],
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_gift_card_entries_receipt_pk",
            table_name="gift_card_entries",
            postgresql_concurrently=True,
        )
