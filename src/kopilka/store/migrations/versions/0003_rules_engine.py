"""The rules engine: program versions, promotion budgets and per-customer usage, what
each promotion gave on a receipt, personal offers, admin API tokens; the account's tier
and cumulative-discount level; the customer's groups (tags) and RFM segment.

New tables and nullable columns only: nothing is rewritten, so it is safe on a live
database (ADD COLUMN without a default is instant on PostgreSQL).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_tokens",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), server_default="owner", nullable=False),
        sa.Column("program_id", sa.BigInteger(), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_tokens")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_admin_tokens_key_hash")),
    )
    op.create_table(
        "promotion_budgets",
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column("promotion_id", sa.String(length=64), nullable=False),
        sa.Column("spent_money", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("spent_points", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("program_id", "promotion_id", name=op.f("pk_promotion_budgets")),
    )
    op.create_table(
        "promotion_usage",
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("promotion_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "account_id", "promotion_id", "period", name=op.f("pk_promotion_usage")
        ),
    )
    op.create_table(
        "program_versions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=500), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_program_versions_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_versions")),
        sa.UniqueConstraint(
            "program_id", "version", name=op.f("uq_program_versions_program_id_version")
        ),
    )
    op.create_table(
        "personal_offers",
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("promotion_id", sa.String(length=64), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_personal_offers_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint(
            "program_id", "customer_id", "promotion_id", name=op.f("pk_personal_offers")
        ),
    )
    op.create_table(
        "receipt_promotions",
        sa.Column(
            "receipt_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("promotion_id", sa.String(length=64), nullable=False),
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("counted", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("periods", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["receipt_pk"], ["receipts.id"], name=op.f("fk_receipt_promotions_receipt_pk_receipts")
        ),
        sa.PrimaryKeyConstraint("receipt_pk", "promotion_id", name=op.f("pk_receipt_promotions")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("tier_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("discount_percent", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tags", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rfm_segment", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("rfm_segment")
        batch_op.drop_column("tags")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("discount_percent")
        batch_op.drop_column("tier_since")
        batch_op.drop_column("tier")

    op.drop_table("receipt_promotions")
    op.drop_table("personal_offers")
    op.drop_table("program_versions")
    op.drop_table("promotion_usage")
    op.drop_table("promotion_budgets")
    op.drop_table("admin_tokens")
