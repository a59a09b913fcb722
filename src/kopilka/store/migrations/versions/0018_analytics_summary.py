"""Summary tables for the analytics reports (issue 8): sales, points and members' activity
by the program's local day, a watermark per incremental job, and the indexes the job
uses to find what changed since its watermark (docs/decisions/0017-analytics-summary-tables.md).

The four indexes are on hot tables and are built in the migration's transaction (a
table lock for the build: seconds on a million receipts, measured in docs/scaling.md).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

Id = sa.BigInteger()


def _money(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "sales_daily",
        sa.Column("program_id", Id, primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("store_id", Id, primary_key=True),
        sa.Column("cashier_id", sa.String(64), primary_key=True),
        sa.Column("member", sa.Boolean(), primary_key=True),
        _count("receipts"),
        _count("lines"),
        _money("quantity"),
        _money("amount"),
        _money("discount"),
        _money("redeemed_value"),
        _money("to_pay"),
        _money("points_earned"),
        _count("refunds"),
        _money("refund_amount"),
        _money("refund_points"),
        sa.PrimaryKeyConstraint(
            "program_id", "day", "store_id", "cashier_id", "member", name="pk_sales_daily"
        ),
    )
    op.create_table(
        "points_daily",
        sa.Column("program_id", Id, primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("store_id", Id, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        _count("entries"),
        _money("amount"),
        sa.PrimaryKeyConstraint("program_id", "day", "store_id", "kind", name="pk_points_daily"),
    )
    op.create_table(
        "customer_days",
        sa.Column("program_id", Id, primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("customer_id", Id, primary_key=True),
        sa.Column("store_id", Id, primary_key=True),
        sa.Column("month", sa.Date(), nullable=False),
        _count("receipts"),
        _money("to_pay"),
        sa.PrimaryKeyConstraint(
            "program_id", "day", "customer_id", "store_id", name="pk_customer_days"
        ),
    )
    op.create_index(
        "ix_customer_days_program_id_customer_id_month",
        "customer_days",
        ["program_id", "customer_id", "month"],
    )
    op.create_table(
        "analytics_watermarks",
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("mark", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job", name="pk_analytics_watermarks"),
    )
    op.create_index("ix_receipts_confirmed_at", "receipts", ["confirmed_at"])
    op.create_index("ix_receipts_created_at", "receipts", ["created_at"])
    op.create_index("ix_refunds_created_at", "refunds", ["created_at"])
    op.create_index("ix_ledger_entries_created_at", "ledger_entries", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_created_at", table_name="ledger_entries")
    op.drop_index("ix_refunds_created_at", table_name="refunds")
    op.drop_index("ix_receipts_created_at", table_name="receipts")
    op.drop_index("ix_receipts_confirmed_at", table_name="receipts")
    op.drop_table("analytics_watermarks")
    op.drop_index("ix_customer_days_program_id_customer_id_month", table_name="customer_days")
    op.drop_table("customer_days")
    op.drop_table("points_daily")
    op.drop_table("sales_daily")
