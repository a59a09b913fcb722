"""``kopilka_confirm_check``: the check that ends a confirm written without a
transaction (PostgreSQL only; ADR 0037).

The till's confirm reads the receipt, the account and its lots without a lock, prices
the postings, and writes everything in one statement that updates the account only if
its row is still the version it read (``xmin``) and the receipt only if it is still
``calculated``.  The statement ends with ``SELECT kopilka_confirm_check(<both held>)``:
when one did not, this raises SQLSTATE ``KP001`` and the whole statement, every row it
had written, is undone; the service then confirms the receipt the locking way.

Revision ID: 0034
Revises: 0033
"""

from __future__ import annotations

from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION kopilka_confirm_check(ok boolean) RETURNS boolean
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          IF ok IS NOT TRUE THEN
            RAISE EXCEPTION 'kopilka: the account or the receipt changed since it was read'
              USING ERRCODE = 'KP001';
          END IF;
          RETURN true;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS kopilka_confirm_check(boolean)")
