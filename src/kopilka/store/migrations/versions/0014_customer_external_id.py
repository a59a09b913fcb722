"""The customer's id in the chain's own systems (issue 8): historical receipts arrive
from an old system with its customer ids, and the RFM and CLV reports name customers by
it.  Unique per program; NULL for customers who came through the till.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            "uq_customers_program_id_external_id", ["program_id", "external_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_constraint("uq_customers_program_id_external_id", type_="unique")
        batch_op.drop_column("external_id")
