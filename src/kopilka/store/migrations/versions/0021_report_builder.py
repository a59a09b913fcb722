"""The report builder (issue 8): saved report definitions shared with roles, their
e-mail schedules, and the one file an outbox event's e-mails may carry.

Revision ID: 0021
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kopilka.store.types import UTCDateTime

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "saved_reports",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", Id, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("shared_roles", sa.String(300), nullable=False, server_default=""),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.BigInteger),
        sa.Column("owner_name", sa.String(200), nullable=False),
        sa.Column("partner_id", sa.BigInteger),
        sa.Column("store_id", sa.BigInteger),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_saved_reports"),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name="fk_saved_reports_program_id_programs"
        ),
    )
    op.create_index("ix_saved_reports_program_id_id", "saved_reports", ["program_id", "id"])
    op.create_table(
        "report_schedules",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.BigInteger, nullable=False),
        sa.Column("report_id", Id, nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("at_time", sa.String(5), nullable=False),
        sa.Column("weekday", sa.Integer),
        sa.Column("day", sa.Integer),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("locale", sa.String(5), nullable=False, server_default="ru"),
        sa.Column("next_run_at", UTCDateTime, nullable=False),
        sa.Column("last_run_at", UTCDateTime),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_report_schedules"),
        sa.ForeignKeyConstraint(
            ["report_id"], ["saved_reports.id"], name="fk_report_schedules_report_id_saved_reports"
        ),
    )
    op.create_index("ix_report_schedules_next_run_at", "report_schedules", ["next_run_at"])
    op.create_index("ix_report_schedules_report_id", "report_schedules", ["report_id"])
    op.create_table(
        "outbox_attachments",
        sa.Column("outbox_id", Id, nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("outbox_id", name="pk_outbox_attachments"),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name="fk_outbox_attachments_outbox_id_outbox"
        ),
    )


def downgrade() -> None:
    op.drop_table("outbox_attachments")
    op.drop_index("ix_report_schedules_report_id", "report_schedules")
    op.drop_index("ix_report_schedules_next_run_at", "report_schedules")
    op.drop_table("report_schedules")
    op.drop_index("ix_saved_reports_program_id_id", "saved_reports")
    op.drop_table("saved_reports")
