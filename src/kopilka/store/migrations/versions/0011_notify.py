"""Notifications (issue 7, part A): the outbox learns its dispatch state and an optional
once-only key for jobs' announcements; one delivery row
per message and channel (state, attempts, next attempt, a lease, a unique delivery key);
partners' webhook endpoints; per-program template overrides.

The hot path's ``INSERT INTO outbox`` is unchanged: the new outbox column has a default.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kopilka.store.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(16), nullable=False, server_default="pending")
        )
        batch_op.add_column(sa.Column("dedup_key", sa.String(128)))
        batch_op.create_unique_constraint("uq_outbox_dedup_key", ["dedup_key"])
    op.create_index("ix_outbox_state_id", "outbox", ["state", "id"])
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("partner_id", sa.BigInteger),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("topics", sa.Text, nullable=False, server_default="*"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("disabled_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_endpoints"),
    )
    op.create_index("ix_webhook_endpoints_program_id", "webhook_endpoints", ["program_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("outbox_id", Id, nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(500), nullable=False),
        sa.Column("customer_id", sa.BigInteger),
        sa.Column("endpoint_id", Id),
        sa.Column("subject", sa.String(300)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("delivery_key", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("locked_by", sa.String(64)),
        sa.Column("locked_until", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("provider_ref", sa.String(128)),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.UniqueConstraint("delivery_key", name="uq_deliveries_delivery_key"),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name="fk_deliveries_outbox_id_outbox"
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name="fk_deliveries_endpoint_id_webhook_endpoints",
        ),
    )
    op.create_index(
        "ix_deliveries_state_next_attempt_at", "deliveries", ["state", "next_attempt_at"]
    )
    op.create_index("ix_deliveries_outbox_id", "deliveries", ["outbox_id"])
    op.create_index(
        "ix_deliveries_program_id_created_at", "deliveries", ["program_id", "created_at"]
    )
    op.create_table(
        "message_templates",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("locale", sa.String(5), nullable=False),
        sa.Column("subject", sa.String(300)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message_templates"),
        sa.UniqueConstraint(
            "program_id",
            "name",
            "channel",
            "locale",
            name="uq_message_templates_program_id_name_channel_locale",
        ),
    )


def downgrade() -> None:
    op.drop_table("message_templates")
    op.drop_index("ix_deliveries_program_id_created_at", "deliveries")
    op.drop_index("ix_deliveries_outbox_id", "deliveries")
    op.drop_index("ix_deliveries_state_next_attempt_at", "deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_webhook_endpoints_program_id", "webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_outbox_state_id", "outbox")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_constraint("uq_outbox_dedup_key", type_="unique")
        batch_op.drop_column("dedup_key")
        batch_op.drop_column("state")
