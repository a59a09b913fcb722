"""A series' coupons and gift cards by series: the console's series pages and the
exports read a series in id order a chunk at a time (without these, each chunk scans
every coupon of the program).

Built CONCURRENTLY on PostgreSQL, outside the migration's transaction.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_coupons_series_id_id", "coupons"),
    ("ix_gift_cards_series_id_id", "gift_cards"),
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, table in INDEXES:
            op.create_index(name, table, ["series_id", "id"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, table in INDEXES:
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
