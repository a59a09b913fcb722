"""Partner-scoped admin tokens and console users granted several programs (issues 9, 10).

``admin_tokens.partner_id`` / ``store_id``: a token of the partner role acts for one
partner (a partner's own system: the events API, its webhooks), a store manager's or
cashier's token for one store — the same scopes console users have.  Without them a
partner token reached every partner of its program.

``admin_user_programs``: the programs a console user may switch between besides
``admin_users.program_id`` (an admin user "may be granted several" programs).  A user with
neither a program nor grants reaches every program, as before.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

# as ``store.tables.Id``: the columns referring to an id have its type
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("admin_tokens") as batch_op:
        # partner_id came with 0025 (settlement's partner tokens); the store scope is new
        batch_op.add_column(sa.Column("store_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "admin_user_programs",
        sa.Column(
            "user_id",
            ID,
            sa.ForeignKey("admin_users.id", name="fk_admin_user_programs_user_id_admin_users"),
            nullable=False,
        ),
        sa.Column(
            "program_id",
            ID,
            sa.ForeignKey("programs.id", name="fk_admin_user_programs_program_id_programs"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("user_id", "program_id", name="pk_admin_user_programs"),
    )


def downgrade() -> None:
    op.drop_table("admin_user_programs")
    with op.batch_alter_table("admin_tokens") as batch_op:
        batch_op.drop_column("store_id")
