"""The console (issue 6): console users, their sessions, the audit log; a till's last-seen
time; a merged customer's pointer; indexes for searching customers by e-mail and name.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kopilka.store.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("program_id", sa.BigInteger),
        sa.Column("partner_id", sa.BigInteger),
        sa.Column("store_id", sa.BigInteger),
        sa.Column("locale", sa.String(5), nullable=False, server_default="ru"),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", UTCDateTime),
        sa.Column("last_login_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("disabled_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_admin_users"),
        sa.UniqueConstraint("login", name="uq_admin_users_login"),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("program_id", sa.BigInteger),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.String(300)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_admin_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_admin_sessions_token_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["admin_users.id"], name="fk_admin_sessions_user_id_admin_users"
        ),
    )
    op.create_index("ix_admin_sessions_user_id", "admin_sessions", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.BigInteger),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("ip", sa.String(64)),
        sa.Column("program_id", sa.BigInteger),
        sa.Column("partner_id", sa.BigInteger),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_object_type_object_id", "audit_log", ["object_type", "object_id"])
    op.create_index("ix_audit_log_actor_kind_actor_id", "audit_log", ["actor_kind", "actor_id"])
    with op.batch_alter_table("terminals") as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", UTCDateTime, nullable=True))
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", Id, nullable=True))
        batch_op.create_foreign_key(
            "fk_customers_merged_into_id_customers", "customers", ["merged_into_id"], ["id"]
        )
    op.create_index("ix_customers_program_id_email", "customers", ["program_id", "email"])
    op.create_index("ix_customers_program_id_last_name", "customers", ["program_id", "last_name"])


def downgrade() -> None:
    op.drop_index("ix_customers_program_id_last_name", "customers")
    op.drop_index("ix_customers_program_id_email", "customers")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_constraint("fk_customers_merged_into_id_customers", type_="foreignkey")
        batch_op.drop_column("merged_into_id")
    with op.batch_alter_table("terminals") as batch_op:
        batch_op.drop_column("last_seen_at")
    op.drop_table("audit_log")
    op.drop_table("admin_sessions")
    op.drop_table("admin_users")
