"""Coupons (series, codes, uses), gift cards (series, cards, their append-only entries),
prize draws (entries, winners), activity events, referrals and invite codes, the rewards
catalogue and its orders, rate counters; a hold may belong to a reward order instead of a
receipt.

New tables, a nullable column, and holds.receipt_pk made nullable (instant on
PostgreSQL; SQLite rebuilds the table in a batch).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 08:50:56.146951
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("activity", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_events")),
        sa.UniqueConstraint(
            "program_id",
            "idempotency_key",
            name=op.f("uq_activity_events_program_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("activity_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activity_events_program_id_account_id_activity_created_at"),
            ["program_id", "account_id", "activity", "created_at"],
            unique=False,
        )

    op.create_table(
        "rate_counters",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_rate_counters")),
    )
    op.create_table(
        "coupon_series",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("bound", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("return_on_refund", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=True),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_coupon_series_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_series")),
        sa.UniqueConstraint("program_id", "code", name=op.f("uq_coupon_series_program_id_code")),
    )
    op.create_table(
        "draws",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("seed_hash", sa.String(length=64), nullable=True),
        sa.Column("seed", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_draws_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draws")),
        sa.UniqueConstraint("program_id", "code", name=op.f("uq_draws_program_id_code")),
    )
    op.create_table(
        "gift_card_series",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("nominal", sa.BigInteger(), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_gift_card_series_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_card_series")),
        sa.UniqueConstraint("program_id", "code", name=op.f("uq_gift_card_series_program_id_code")),
    )
    op.create_table(
        "rewards",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("price_points", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_rewards_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rewards")),
        sa.UniqueConstraint("program_id", "code", name=op.f("uq_rewards_program_id_code")),
    )
    op.create_table(
        "coupons",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "series_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=True),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_coupons_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["series_id"], ["coupon_series.id"], name=op.f("fk_coupons_series_id_coupon_series")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("program_id", "code", name=op.f("uq_coupons_program_id_code")),
    )
    op.create_table(
        "draw_entries",
        sa.Column("draw_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("tickets", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["draw_id"], ["draws.id"], name=op.f("fk_draw_entries_draw_id_draws")
        ),
        sa.PrimaryKeyConstraint("draw_id", "account_id", name=op.f("pk_draw_entries")),
    )
    op.create_table(
        "draw_winners",
        sa.Column("draw_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("place", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("prize", sa.String(length=200), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["draw_id"], ["draws.id"], name=op.f("fk_draw_winners_draw_id_draws")
        ),
        sa.PrimaryKeyConstraint("draw_id", "place", name=op.f("pk_draw_winners")),
    )
    op.create_table(
        "gift_cards",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "series_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("pin_hash", sa.String(length=128), nullable=False),
        sa.Column("nominal", sa.BigInteger(), nullable=False),
        sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("held", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("state", sa.String(length=16), server_default="issued", nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_gift_cards_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["gift_card_series.id"],
            name=op.f("fk_gift_cards_series_id_gift_card_series"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_cards")),
        sa.UniqueConstraint("program_id", "number", name=op.f("uq_gift_cards_program_id_number")),
    )
    op.create_table(
        "reward_orders",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "reward_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("hold_id", sa.BigInteger(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_orders_reward_id_rewards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_orders")),
        sa.UniqueConstraint(
            "program_id",
            "idempotency_key",
            name=op.f("uq_reward_orders_program_id_idempotency_key"),
        ),
    )
    op.create_table(
        "gift_card_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column("card_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("held_delta", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("receipt_pk", sa.BigInteger(), nullable=True),
        sa.Column("refund_pk", sa.BigInteger(), nullable=True),
        sa.Column("terminal_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["gift_cards.id"], name=op.f("fk_gift_card_entries_card_id_gift_cards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_card_entries")),
    )
    with op.batch_alter_table("gift_card_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gift_card_entries_card_id_id"), ["card_id", "id"], unique=False
        )

    op.create_table(
        "invite_codes",
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_invite_codes_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("program_id", "code", name=op.f("pk_invite_codes")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_invite_codes_customer_id")),
    )
    op.create_table(
        "referrals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "referrer_customer_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "friend_customer_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["friend_customer_id"],
            ["customers.id"],
            name=op.f("fk_referrals_friend_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["referrer_customer_id"],
            ["customers.id"],
            name=op.f("fk_referrals_referrer_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("friend_customer_id", name=op.f("uq_referrals_friend_customer_id")),
    )
    op.create_table(
        "coupon_uses",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "coupon_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "receipt_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["coupon_id"], ["coupons.id"], name=op.f("fk_coupon_uses_coupon_id_coupons")
        ),
        sa.ForeignKeyConstraint(
            ["receipt_pk"], ["receipts.id"], name=op.f("fk_coupon_uses_receipt_pk_receipts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_uses")),
        sa.UniqueConstraint(
            "coupon_id", "receipt_pk", name=op.f("uq_coupon_uses_coupon_id_receipt_pk")
        ),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reward_order_id", sa.BigInteger(), nullable=True))
        batch_op.alter_column("receipt_pk", existing_type=sa.BIGINT(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.alter_column("receipt_pk", existing_type=sa.BIGINT(), nullable=False)
        batch_op.drop_column("reward_order_id")

    op.drop_table("coupon_uses")
    op.drop_table("referrals")
    op.drop_table("invite_codes")
    with op.batch_alter_table("gift_card_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gift_card_entries_card_id_id"))

    op.drop_table("gift_card_entries")
    op.drop_table("reward_orders")
    op.drop_table("gift_cards")
    op.drop_table("draw_winners")
    op.drop_table("draw_entries")
    op.drop_table("coupons")
    op.drop_table("rewards")
    op.drop_table("gift_card_series")
    op.drop_table("draws")
    op.drop_table("coupon_series")
    op.drop_table("rate_counters")
    with op.batch_alter_table("activity_events", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_activity_events_program_id_account_id_activity_created_at")
        )

    op.drop_table("activity_events")
