"""Bonus prize-draw tickets a promotion gave on a receipt (the ``draw_tickets`` effect).

A column with a constant default: instant on PostgreSQL 11+, a table rebuild on SQLite.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("receipt_promotions") as batch_op:
        batch_op.add_column(sa.Column("tickets", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("receipt_promotions") as batch_op:
        batch_op.drop_column("tickets")
