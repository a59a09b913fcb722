"""Campaigns (issue 7, part B): a marketer's message to an audience, and who of the
audience got it (target) or was held out (control), for the report's comparison.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kopilka.store.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(300)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("audience", sa.Text, nullable=False),
        sa.Column("send_at", UTCDateTime, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="Europe/Moscow"),
        sa.Column("quiet_start", sa.String(5)),
        sa.Column("quiet_end", sa.String(5)),
        sa.Column("cap_count", sa.Integer),
        sa.Column("cap_days", sa.Integer),
        sa.Column("control_percent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("response_days", sa.Integer, nullable=False, server_default="14"),
        sa.Column("state", sa.String(16), nullable=False, server_default="scheduled"),
        sa.Column("next_run_at", UTCDateTime, nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
    )
    op.create_index("ix_campaigns_program_id_id", "campaigns", ["program_id", "id"])
    op.create_index("ix_campaigns_state_next_run_at", "campaigns", ["state", "next_run_at"])
    op.create_table(
        "campaign_recipients",
        sa.Column("campaign_id", Id, nullable=False),
        sa.Column("customer_id", sa.BigInteger, nullable=False),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("grp", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("outbox_id", sa.BigInteger),
        sa.Column("sent_at", UTCDateTime),
        sa.PrimaryKeyConstraint("campaign_id", "customer_id", name="pk_campaign_recipients"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_campaign_recipients_campaign_id_campaigns"
        ),
    )
    op.create_index(
        "ix_campaign_recipients_program_id_customer_id_sent_at",
        "campaign_recipients",
        ["program_id", "customer_id", "sent_at"],
    )
    op.create_index(
        "ix_campaign_recipients_campaign_id_state", "campaign_recipients", ["campaign_id", "state"]
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_recipients_campaign_id_state", "campaign_recipients")
    op.drop_index("ix_campaign_recipients_program_id_customer_id_sent_at", "campaign_recipients")
    op.drop_table("campaign_recipients")
    op.drop_index("ix_campaigns_state_next_run_at", "campaigns")
    op.drop_index("ix_campaigns_program_id_id", "campaigns")
    op.drop_table("campaigns")
