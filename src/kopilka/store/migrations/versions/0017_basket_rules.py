"""Association rules per program (issue 8, docs/analytics/basket.md): what the cashier
screen suggests for the basket, refreshed daily by the worker and by ``kopilka report
basket --save``.  Replaced whole on each refresh, so no history is kept.

Revision ID: 0017
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kopilka.store.types import UTCDateTime

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "basket_rules",
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("antecedents", sa.String(length=1000), nullable=False),
        sa.Column("consequents", sa.String(length=1000), nullable=False),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.Column("consequent_names", sa.Text(), server_default="", nullable=False),
        sa.Column("params", sa.String(length=200), nullable=False),
        sa.Column("receipts", sa.Integer(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", "rank", name=op.f("pk_basket_rules")),
    )


def downgrade() -> None:
    op.drop_table("basket_rules")
