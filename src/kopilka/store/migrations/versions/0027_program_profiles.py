"""Per-program presentation settings (issue 9, ADR 0027): what a program calls its points,
its language, SMS sender name, the cabinet's branding and support contacts
(``programs.profile``, JSON of ``domain.program.ProgramProfile``); the cabinet's logo
(``program_logos``); the SMS sender a delivery was made with (``deliveries.sender``).

The rules (point value, rounding, time zone) stay in the versioned program document;
these do not change a calculation, so they are not versioned.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kopilka.store.types import UTCDateTime

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("programs") as b:
        b.add_column(sa.Column("profile", sa.Text(), nullable=True))
    with op.batch_alter_table("deliveries") as b:
        b.add_column(sa.Column("sender", sa.String(11), nullable=True))
    op.create_table(
        "program_logos",
        sa.Column(
            "program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name="fk_program_logos_program_id_programs"
        ),
        sa.PrimaryKeyConstraint("program_id", name="pk_program_logos"),
    )


def downgrade() -> None:
    op.drop_table("program_logos")
    with op.batch_alter_table("deliveries") as b:
        b.drop_column("sender")
    with op.batch_alter_table("programs") as b:
        b.drop_column("profile")
