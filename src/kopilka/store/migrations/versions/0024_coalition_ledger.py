"""Coalition ledger (issue 9, ADR 0024): where every movement happened, and where a lot's
points may be burned.

- ``ledger_entries.partner_id``: the partner where the movement happened (the receipt's
  partner; for events and activities the partner that sent them); NULL: the program
  (the operator) itself.  Backfilled from the receipt for entries that have one.
- ``lots.burn_partner_id``: NULL: the lot burns anywhere in the program; else only at
  that partner (partner promo points restricted to the partner that issued them).

- ``ledger_marks``: named positions in the ledger; ``coalition_funders`` is the last
  entry id written before this migration: entries above it carry their lot's funder
  (``kopilka ledger verify`` checks that), entries at or below it may not (old burns
  carried the till's partner; settlement joins burns to ``lots`` by ``lot_id``).

``ledger_entries`` is append-only (0023): the backfill of the new column runs with the
triggers set aside for this one statement, inside the migration's transaction; the old
columns (``funding_partner_id`` of old burn entries in particular) are left as they
were.  No foreign keys: both columns are written on the POS hot path and partners are
never deleted.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

BACKFILL = (
    "UPDATE ledger_entries SET partner_id = "
    "(SELECT r.partner_id FROM receipts r WHERE r.id = ledger_entries.receipt_pk) "
    "WHERE receipt_pk IS NOT NULL"
)
SQLITE_TRIGGER = (
    "CREATE TRIGGER ledger_entries_no_{low} BEFORE {action} ON ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'kopilka_append_only: {action} of ledger_entries refused: "
    "the ledger is append-only'); END"
)


def upgrade() -> None:
    op.add_column("ledger_entries", sa.Column("partner_id", sa.BigInteger(), nullable=True))
    op.add_column("lots", sa.Column("burn_partner_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "ledger_marks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_ledger_marks"),
    )
    op.execute(
        "INSERT INTO ledger_marks (name, entry_id) "
        "SELECT 'coalition_funders', COALESCE(MAX(id), 0) FROM ledger_entries"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only")
        op.execute(BACKFILL)
        op.execute("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only")
        return
    op.execute("DROP TRIGGER IF EXISTS ledger_entries_no_update")
    op.execute(BACKFILL)
    op.execute(SQLITE_TRIGGER.format(low="update", action="UPDATE"))


def downgrade() -> None:
    op.drop_table("ledger_marks")
    with op.batch_alter_table("lots") as batch_op:
        batch_op.drop_column("burn_partner_id")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("ledger_entries", "partner_id")
        return
    # SQLite >= 3.35 drops a column in place (no table copy: the triggers stay).
    op.execute("ALTER TABLE ledger_entries DROP COLUMN partner_id")
