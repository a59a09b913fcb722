"""The ledgers are append-only, enforced by the database itself (issue 10): an UPDATE or
a DELETE of a row of ``ledger_entries`` or ``gift_card_entries`` fails, whoever sends it
(a bug, a console of the database, a compromised process).  Corrections are new,
reversing entries; ``kopilka ledger verify`` recomputes every balance from the entries.

PostgreSQL: one trigger function raising ``kopilka_append_only`` (SQLSTATE 55000,
object_not_in_prerequisite_state) and a row trigger per table, plus a statement trigger
for TRUNCATE.  SQLite: BEFORE UPDATE / BEFORE DELETE triggers that ``RAISE(ABORT)``.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

TABLES = ("ledger_entries", "gift_card_entries")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION kopilka_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'kopilka_append_only: % of % refused: the ledger is append-only',
    TG_OP, TG_TABLE_NAME USING ERRCODE = '55000';
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION kopilka_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION kopilka_append_only()"
            )
        return
    for table in TABLES:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'kopilka_append_only: {action} of {table} refused: "
                "the ledger is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS kopilka_append_only()")
        return
    for table in TABLES:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
