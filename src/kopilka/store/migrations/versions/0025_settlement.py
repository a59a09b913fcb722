"""Coalition settlement (issue 9, docs/coalition.md): partners' legal details, each
program's settlement terms, closed periods with their frozen figures and signed
statements, the installation's signing key (ADR 0025), and admin tokens scoped to a
partner (so that a partner's systems fetch only its own settlement).

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kopilka.store.types import UTCDateTime

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

LEGAL = (
    ("legal_name", 300),
    ("inn", 12),
    ("kpp", 9),
    ("ogrn", 15),
    ("legal_address", 500),
    ("bank_name", 200),
    ("bank_account", 20),
    ("bank_bik", 9),
    ("bank_corr_account", 20),
    ("contact_email", 254),
)


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        for name, size in LEGAL:
            batch.add_column(sa.Column(name, sa.String(size), nullable=False, server_default=""))
    with op.batch_alter_table("admin_tokens") as batch:
        batch.add_column(sa.Column("partner_id", sa.BigInteger))
    op.create_table(
        "settlement_terms",
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("rate", sa.String(24)),
        sa.Column("fee_percent", sa.String(24), nullable=False, server_default="0"),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("program_id", name="pk_settlement_terms"),
    )
    op.create_table(
        "settlement_periods",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("rate", sa.String(24), nullable=False),
        sa.Column("fee_percent", sa.String(24), nullable=False),
        sa.Column("figures", sa.Text, nullable=False),
        sa.Column("figures_sha256", sa.String(64), nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=False),
        sa.Column("closed_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_settlement_periods"),
        sa.UniqueConstraint("program_id", "period", name="uq_settlement_periods_program_id_period"),
    )
    op.create_table(
        "settlement_statements",
        sa.Column("period_id", sa.BigInteger, nullable=False),
        sa.Column("partner_id", sa.BigInteger, nullable=False),
        sa.Column("pdf", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["settlement_periods.id"],
            name="fk_settlement_statements_period_id_settlement_periods",
        ),
        sa.PrimaryKeyConstraint("period_id", "partner_id", name="pk_settlement_statements"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("key_pem", sa.Text, nullable=False),
        sa.Column("cert_pem", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signing_keys"),
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_table("settlement_statements")
    op.drop_table("settlement_periods")
    op.drop_table("settlement_terms")
    with op.batch_alter_table("admin_tokens") as batch:
        batch.drop_column("partner_id")
    with op.batch_alter_table("partners") as batch:
        for name, _ in reversed(LEGAL):
            batch.drop_column(name)
