"""Fraud alerts (issue 8, docs/fraud.md): the security officer's queue, each program's
thresholds, the scan's watermarks; and indexes that let the scan read new refunds, cards
and customers by time.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kopilka.store.types import UTCDateTime

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "fraud_alerts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("subject_label", sa.String(200), nullable=False),
        sa.Column("store_id", sa.BigInteger),
        sa.Column("customer_id", sa.BigInteger),
        sa.Column("card_number", sa.String(32)),
        sa.Column("summary", sa.String(300), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=False),
        sa.Column("open_key", sa.String(200)),
        sa.Column("state", sa.String(16), nullable=False, server_default="open"),
        sa.Column("assignee_id", sa.BigInteger),
        sa.Column("assignee_name", sa.String(200)),
        sa.Column("resolution", sa.String(500)),
        sa.Column("resolved_by", sa.String(200)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_fraud_alerts"),
        sa.UniqueConstraint("program_id", "open_key", name="uq_fraud_alerts_program_id_open_key"),
    )
    op.create_index(
        "ix_fraud_alerts_program_id_state_id", "fraud_alerts", ["program_id", "state", "id"]
    )
    op.create_index(
        "ix_fraud_alerts_program_id_dedup_key", "fraud_alerts", ["program_id", "dedup_key"]
    )
    op.create_table(
        "fraud_settings",
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("program_id", name="pk_fraud_settings"),
    )
    op.create_table(
        "fraud_watermarks",
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("seen_until", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "source", name="pk_fraud_watermarks"),
    )
    op.create_index("ix_refunds_program_id_created_at", "refunds", ["program_id", "created_at"])
    op.create_index("ix_cards_program_id_created_at", "cards", ["program_id", "created_at"])
    op.create_index(
        "ix_customers_program_id_registered_at", "customers", ["program_id", "registered_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_customers_program_id_registered_at", "customers")
    op.drop_index("ix_cards_program_id_created_at", "cards")
    op.drop_index("ix_refunds_program_id_created_at", "refunds")
    op.drop_table("fraud_watermarks")
    op.drop_table("fraud_settings")
    op.drop_index("ix_fraud_alerts_program_id_dedup_key", "fraud_alerts")
    op.drop_index("ix_fraud_alerts_program_id_state_id", "fraud_alerts")
    op.drop_table("fraud_alerts")
