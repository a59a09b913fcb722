"""Indexes the console's customer page and search need: a customer's bound coupons, and
last name + first name (the name search reads only the index).  Built CONCURRENTLY on
PostgreSQL (outside the migration's transaction): coupons and customers can be large.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_coupons_customer_id", "coupons", ["customer_id"], postgresql_concurrently=True
        )
        op.create_index(
            "ix_customers_program_id_last_name_first_name",
            "customers",
            ["program_id", "last_name", "first_name"],
            postgresql_concurrently=True,
        )
        op.drop_index(
            "ix_customers_program_id_last_name", "customers", postgresql_concurrently=True
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_customers_program_id_last_name",
            "customers",
            ["program_id", "last_name"],
            postgresql_concurrently=True,
        )
        op.drop_index(
            "ix_customers_program_id_last_name_first_name",
            "customers",
            postgresql_concurrently=True,
        )
        op.drop_index("ix_coupons_customer_id", "coupons", postgresql_concurrently=True)
