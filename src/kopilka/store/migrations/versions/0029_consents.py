"""Consent records (issue 10, 152-FZ): every grant and withdrawal of a customer's consent
(SMS, e-mail, processing of personal data) with its time, the version and SHA-256 of the
consent text shown, and where it was given (till, cabinet, admin).  Appended, never
updated; the customer's current consent stays on ``customers.consent_*``.

Revision ID: 0029
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kopilka.store.types import UTCDateTime

revision = "0029"
down_revision = "0027"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("customer_id", Id, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("text_version", sa.String(32), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_consents"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_consents_customer_id_customers"
        ),
        sa.CheckConstraint("channel IN ('sms', 'email', 'pd')", name="ck_consents_channel"),
        sa.CheckConstraint(
            "source IN ('till', 'cabinet', 'admin', 'import')", name="ck_consents_source"
        ),
    )
    op.create_index("ix_consents_customer_id_id", "consents", ["customer_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_consents_customer_id_id", table_name="consents")
    op.drop_table("consents")
