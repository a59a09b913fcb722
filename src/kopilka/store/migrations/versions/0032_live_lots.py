"""``kopilka_live_lots``: an account's non-empty lots, read with a snapshot of its own
(PostgreSQL only; ADR 0034).

A ``VOLATILE`` function takes a fresh snapshot for each query it runs, so called in the
statement that locks the account it sees the lots as they are once the lock is held,
including a burn committed by the transaction the lock waited for; a join in the same
statement would see them as they were when the statement began.  The hot path's confirm
reads the receipt, the account and its lots in that one statement (one round trip less).
PL/pgSQL rather than SQL: it keeps its query's plan for the session, where a SQL function
that is not inlined (a volatile one never is) plans its body on every call (measured:
~73 against ~135 µs of backend CPU a call; the two statements it replaces ~90-110 µs).

Revision ID: 0032
Revises: 0031
"""

from __future__ import annotations

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION kopilka_live_lots(p_program bigint, p_account bigint)
        RETURNS TABLE (id bigint, remaining bigint, activates_at timestamptz,
                       expires_at timestamptz, burn_partner_id bigint,
                       funding_partner_id bigint)
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          RETURN QUERY
          SELECT l.id, l.remaining, l.activates_at, l.expires_at, l.burn_partner_id,
                 l.funding_partner_id
          FROM lots l
          WHERE l.program_id = p_program AND l.account_id = p_account AND l.remaining > 0
          ORDER BY l.id;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS kopilka_live_lots(bigint, bigint)")
