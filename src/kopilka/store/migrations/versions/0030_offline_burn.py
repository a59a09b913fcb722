"""Offline burn (issue 10, ADR 0030): the programs' Ed25519 signing keys, the tokens
issued to members, and the burns tills made under them, each applied once (the unique
``(program_id, token_id, use_no)`` key; ``receipt_pk`` unique too).

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kopilka.store.types import Money, UTCDateTime

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "offline_keys",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("private_key", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("retired_at", UTCDateTime),
        sa.Column("valid_until", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_offline_keys"),
    )
    op.create_index("ix_offline_keys_program_id_id", "offline_keys", ["program_id", "id"])
    op.create_table(
        "offline_tokens",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("token_id", sa.String(24), nullable=False),
        sa.Column("key_id", sa.BigInteger, nullable=False),
        sa.Column("cap", Money, nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_offline_tokens"),
        sa.UniqueConstraint("program_id", "token_id", name="uq_offline_tokens_program_id_token_id"),
    )
    op.create_index(
        "ix_offline_tokens_program_id_account_id_expires_at",
        "offline_tokens",
        ["program_id", "account_id", "expires_at"],
    )
    op.create_table(
        "offline_burns",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("token_id", sa.String(24), nullable=False),
        sa.Column("use_no", sa.Integer, nullable=False),
        sa.Column("receipt_pk", sa.BigInteger, nullable=False),
        sa.Column("terminal_id", sa.BigInteger, nullable=False),
        sa.Column("points", Money, nullable=False),
        sa.Column("debt", Money, nullable=False),
        sa.Column("cap", Money, nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_offline_burns"),
        sa.UniqueConstraint("receipt_pk", name="uq_offline_burns_receipt_pk"),
        sa.UniqueConstraint(
            "program_id", "token_id", "use_no", name="uq_offline_burns_program_id_token_id_use_no"
        ),
    )
    op.create_index(
        "ix_offline_burns_program_id_created_at", "offline_burns", ["program_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("offline_burns")
    op.drop_table("offline_tokens")
    op.drop_table("offline_keys")
