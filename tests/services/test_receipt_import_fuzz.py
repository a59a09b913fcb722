"""Fuzzing the receipts file reader (``kopilka import receipts``), no database: any bytes
in any encoding with any quoting are read into rows or refused with a reason (a file
error, or a row's reason for the rejects file), never a crash; a valid file gives back
every amount to the kopeck."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from kopilka.domain.receipt_import import RowError, assemble, parse_row
from kopilka.services.receipt_import import ImportFileError, records, scan

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HEADER = "receipt_id,occurred_at,store,customer,sku,name,category,quantity,price,amount"
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def read_all(path: Path) -> tuple[int, int]:
    """What the import does with a file before the database: (rows read, rows refused)."""
    plan = scan(path)
    read = refused = 0
    with path.open(encoding="utf-8-sig", newline="") as f:
        for _, fields in records(f, plan.delimiter):
            try:
                parse_row(fields, plan.columns, tz=MSK, now=NOW)
                read += 1
            except RowError as exc:
                assert str(exc)
                refused += 1
    return read, refused


cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(['"', '""', ",", ";", "\n", "\r\n", "1,50", "1e9", "NaN", "\x00", "-1"]),
)
rows_text = st.lists(st.lists(cells, min_size=0, max_size=12), max_size=8)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "cp1251", "utf-16", "koi8-r", "latin-1"])


@SETTINGS
@given(data=st.binary(max_size=400), header=st.booleans())
@example(data=b"\xff\xfe\x00", header=True)
@example(data=b'"unclosed\n', header=True)
def test_random_bytes_are_read_or_refused_never_a_crash(
    tmp_path: Path, data: bytes, header: bool
) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes((HEADER.encode() + b"\n" if header else b"") + data)

    try:
        read_all(path)
    except ImportFileError as exc:
        assert str(exc)


@SETTINGS
@given(
    rows=rows_text,
    encoding=encodings,
    quoting=st.sampled_from([0, 1, 2, 3]),
    sep=st.sampled_from([",", ";"]),
)
def test_any_quoting_in_any_encoding_is_read_or_refused_never_a_crash(
    tmp_path: Path, rows: list[list[str]], encoding: str, quoting: int, sep: str
) -> None:
    out = io.StringIO()
    w = csv.writer(out, delimiter=sep, quoting=quoting, escapechar="\\", lineterminator="\n")
    w.writerow(HEADER.split(","))
    for r in rows:
        try:
            w.writerow(r)
        except csv.Error:  # what the writer cannot write without quotes: not a file
            assume(False)
    path = tmp_path / "f.csv"
    path.write_bytes(out.getvalue().encode(encoding, errors="replace"))

    try:
        read_all(path)
    except ImportFileError as exc:
        assert str(exc)


amounts = st.integers(min_value=0, max_value=10**14)  # kopecks, up to the import's limit
quantities = st.integers(min_value=1, max_value=10**12)  # thousandths


@SETTINGS
@given(
    lines=st.lists(st.tuples(quantities, amounts), min_size=1, max_size=10),
    comma=st.booleans(),
)
def test_a_valid_file_gives_back_every_amount_to_the_kopeck(
    tmp_path: Path, lines: list[tuple[int, int]], comma: bool
) -> None:
    sep = ";" if comma else ","
    text = [sep.join(HEADER.split(","))]
    for i, (milli, cents) in enumerate(lines):
        q = f"{Decimal(milli).scaleb(-3):.3f}"
        a = f"{Decimal(cents).scaleb(-2):.2f}"
        if comma:  # a Russian spreadsheet: decimal comma, semicolons
            q, a = q.replace(".", ","), a.replace(".", ",")
        text.append(
            sep.join(["R1", "2025-03-01T10:00:00", "s1", "C1", f"sku{i}", "x", "", q, "", a])
        )
    path = tmp_path / "f.csv"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")

    plan = scan(path)
    with path.open(encoding="utf-8-sig", newline="") as f:
        parsed = [
            (n, parse_row(x, plan.columns, tz=MSK, now=NOW)) for n, x in records(f, plan.delimiter)
        ]
    receipt = assemble(parsed)

    assert [(x.quantity_milli, x.amount_cents) for x in receipt.lines] == lines
    assert receipt.amount_cents == sum(c for _, c in lines)
