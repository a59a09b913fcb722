"""PostgreSQL stops enforcing the foreign keys checked on every POS receipt (ADR 0036).

``tables.PG_UNENFORCED_FOREIGN_KEYS``: receipts -> programs, partners, stores, terminals;
receipt_lines -> receipts; lots, holds, ledger_entries -> programs, accounts (and the
funding partner).  PostgreSQL checks each inserted row's reference by locking the
referenced row FOR KEY SHARE: with many tills at once those rows (one program, one
partner, a store, the account) carry multixacts, and the checks cost ~0.25 ms of the
database's CPU per receipt (14 %).  The services write these ids from rows they have
just read or locked, no code deletes a parent, and ``kopilka ledger verify`` reports
any row whose parent is missing.  SQLite keeps its constraints (nothing to gain there).

Dropped with IF EXISTS: a database partitioned by ``kopilka migrate --partitioned`` has
lost some of them already.  The downgrade adds them back NOT VALID (old rows are not
re-checked; new ones are) and then validates them.

Revision ID: 0033
Revises: 0032
"""

from __future__ import annotations

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

# name: (table, column, referenced table); frozen here as this revision dropped them
# (``tables.PG_UNENFORCED_FOREIGN_KEYS`` is the code's list)
FOREIGN_KEYS = {
    "fk_receipts_program_id_programs": ("receipts", "program_id", "programs"),
    "fk_receipts_partner_id_partners": ("receipts", "partner_id", "partners"),
    "fk_receipts_store_id_stores": ("receipts", "store_id", "stores"),
    "fk_receipts_terminal_id_terminals": ("receipts", "terminal_id", "terminals"),
    "fk_receipt_lines_receipt_pk_receipts": ("receipt_lines", "receipt_pk", "receipts"),
    "fk_lots_program_id_programs": ("lots", "program_id", "programs"),
    "fk_lots_account_id_accounts": ("lots", "account_id", "accounts"),
    "fk_lots_funding_partner_id_partners": ("lots", "funding_partner_id", "partners"),
    "fk_holds_program_id_programs": ("holds", "program_id", "programs"),
    "fk_holds_account_id_accounts": ("holds", "account_id", "accounts"),
    "fk_ledger_entries_program_id_programs": ("ledger_entries", "program_id", "programs"),
    "fk_ledger_entries_account_id_accounts": ("ledger_entries", "account_id", "accounts"),
    "fk_ledger_entries_funding_partner_id_partners": (
        "ledger_entries",
        "funding_partner_id",
        "partners",
    ),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, _column, _parent) in FOREIGN_KEYS.items():
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT IF EXISTS "{name}"')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, column, parent) in FOREIGN_KEYS.items():
        op.execute(
            f'ALTER TABLE {table} ADD CONSTRAINT "{name}" FOREIGN KEY ({column}) '
            f"REFERENCES {parent} (id) NOT VALID"
        )
        op.execute(f'ALTER TABLE {table} VALIDATE CONSTRAINT "{name}"')
