"""docs/scaling.md, "Distributing by program (Citus-style)", stays true (issue 9).

Every table with a ``program_id`` column has ``program_id`` leading its primary key, a
unique key or an index, so a program's rows are found without reading the others' —
or it is listed below, with the reason the note gives, and the note names it.  A table
that gains such a key must leave the list (the test says so), so the list only shrinks.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Table, UniqueConstraint

from kopilka.store.tables import metadata

DOC = Path(__file__).parents[2] / "docs" / "scaling.md"
SECTION = "## Distributing by program (Citus-style)"

# table -> why no key starts with program_id (the note's table says the same)
NOT_LEADING = {
    "terminals": "found by the key's hash; a reference table",
    "receipt_lines": "always read through their receipt (receipt_pk)",
    "receipt_promotions": "always read through their receipt (receipt_pk)",
    "coupon_uses": "always read through the coupon or the receipt",
    "gift_card_entries": "always read through the card or the receipt",
    "outbox": "a queue the worker reads across programs by state",
    "phone_codes": "read by customer, a handful of rows",
    "consents": "read by customer, a handful of rows",
    "member_sessions": "found by the cookie's hash",
    "referrals": "read by the friend or referrer customer",
    "report_schedules": "read by due time across programs",
    "admin_users": "installation-wide: program_id is a scope, NULL for all",
    "admin_sessions": "installation-wide, found by the cookie's hash",
    "admin_tokens": "installation-wide, found by the key's hash",
    "admin_user_programs": "installation-wide: a user's grants, read by user",
    "audit_log": "installation-wide, NULL program for installation actions",
}
# Installation-wide tables without a program_id column: reference or coordinator tables.
NO_PROGRAM = {
    "programs",
    "rate_counters",
    "analytics_watermarks",
    "refund_lines",
    "draw_entries",
    "draw_winners",
    "outbox_attachments",
    "settlement_statements",
    "ledger_marks",
    "signing_keys",
}


def keys(table: Table) -> list[list[str]]:
    out = [[c.name for c in table.primary_key.columns]]
    out += [
        [c.name for c in u.columns] for u in table.constraints if isinstance(u, UniqueConstraint)
    ]
    out += [[c.name] for c in table.columns if c.unique]
    out += [[c.name for c in i.columns] for i in table.indexes]
    return out


def leads(table: Table) -> bool:
    return any(k and k[0] == "program_id" for k in keys(table))


def section() -> str:
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def test_every_program_table_is_keyed_by_program_or_listed_with_a_reason() -> None:
    with_program = {t.name for t in metadata.sorted_tables if "program_id" in t.columns}
    unkeyed = {t.name for t in metadata.sorted_tables if t.name in with_program and not leads(t)}

    assert unkeyed == set(NOT_LEADING)
    assert {t.name for t in metadata.sorted_tables} - with_program == NO_PROGRAM


def test_the_note_names_every_table_and_where_it_goes() -> None:
    note = section()

    missing = sorted(t.name for t in metadata.sorted_tables if f"`{t.name}`" not in note)
    assert missing == []
    for name in NOT_LEADING:
        assert f"| `{name}` |" in note, f"{name} is not in the note's table of exceptions"
