"""CSV and XLSX files of long lists (coupon codes, gift cards, winners), written as the
rows arrive: shared by the console's download buttons and the admin API's export calls.

A ``Table`` is a header and an async iterator of rows the caller reads from the
database in chunks (``chunked``), so a series of a million codes never sits in memory
as Python objects.

Values:

- ``Decimal`` (money, points) is never turned into a float.  In CSV it is written as
  its plain text (``"1234.50"``); in XLSX it is a numeric cell whose XML carries the
  exact decimal text (openpyxl itself would format it through a float), with a
  ``#,##0.00`` number format.
- ``datetime`` is UTC: ISO 8601 text in CSV, a date cell (naive UTC) in XLSX.
- Text that a spreadsheet would run as a formula (starts with ``= + - @``, a tab or a
  carriage return) gets a leading apostrophe in CSV, and is an inline string in XLSX.
"""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

Row = Sequence[Any]
CHUNK = 2000  # rows read from the database at a time
MONEY_FORMAT = "#,##0.00"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMATS = ("csv", "xlsx")


@dataclass
class Table:
    """What an export writes: a sheet name, the column names and the rows."""

    title: str
    header: Sequence[str]
    rows: AsyncIterator[Row]


async def chunked(
    fetch: Callable[[Any, int], Awaitable[Sequence[Row]]],
    *,
    key: Callable[[Row], Any],
    size: int = CHUNK,
) -> AsyncIterator[Row]:
    """Every row of a keyset-paged query: ``fetch(after, size)`` answers up to ``size``
    rows past the key ``after`` (None first) in key order; ``key(row)`` is a row's key."""
    after: Any = None
    while True:
        rows = await fetch(after, size)
        for r in rows:
            yield r
        if len(rows) < size:
            return
        after = key(rows[-1])


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


async def csv_chunks(table: Table, *, for_spreadsheet: bool = True) -> AsyncIterator[bytes]:
    """The table as UTF-8 CSV, a chunk of bytes per ``CHUNK`` rows.

    ``for_spreadsheet`` (the console's downloads): a BOM, so spreadsheet programs read
    Cyrillic right, CRLF line ends, and formula-looking text defused with an apostrophe.
    Without it (``kopilka report`` for scripts and other programs): plain UTF-8, LF line
    ends, every value exactly as stored."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n" if for_spreadsheet else "\n")
    if for_spreadsheet:
        buf.write("\ufeff")
    text = _csv_text if for_spreadsheet else _csv_raw
    w.writerow(table.header)
    n = 0
    async for row in table.rows:
        w.writerow([text(v) for v in row])
        n += 1
        if n % CHUNK == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def _csv_raw(value: Any) -> str:
    text = _csv_text(value)
    if isinstance(value, str) and text.startswith("'") and not value.startswith("'"):
        return value
    return text


async def rows_of(rows: Sequence[Row]) -> AsyncIterator[Row]:
    """Rows already in memory (a computed report) as a ``Table``'s rows."""
    for row in rows:
        yield row


async def csv_bytes(table: Table) -> bytes:
    return b"".join([c async for c in csv_chunks(table)])


def _xlsx_cell(ws: Any, value: Any) -> Any:
    from openpyxl.cell import WriteOnlyCell  # imported when used: CLI start-up stays quick

    if isinstance(value, bool | int | float) or value is None:
        return value  # a float is a statistic (support, probability), never money
    if isinstance(value, Decimal):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = MONEY_FORMAT
        # openpyxl writes numbers with "%.16g", through a float (0.07 -> 0.07000000000000001);
        # the cell keeps its numeric type and carries the exact decimal text instead.
        cell._value = format(value, "f")
        return cell
    if isinstance(value, datetime):
        cell = WriteOnlyCell(ws, value=value.astimezone(UTC).replace(tzinfo=None))
        cell.number_format = DATETIME_FORMAT
        return cell
    text = str(value)
    if text.startswith(FORMULA_START):
        cell = WriteOnlyCell(ws, value=text)
        cell.data_type = "s"  # never a formula
        return cell
    return text


async def xlsx_chunks(table: Table, *, chunk_bytes: int = 64 * 1024) -> AsyncIterator[bytes]:
    """The table as an XLSX workbook of one sheet (``xlsx_book_chunks``)."""
    async for chunk in xlsx_book_chunks([table], chunk_bytes=chunk_bytes):
        yield chunk


async def xlsx_book_chunks(
    tables: Sequence[Table],
    *,
    chunk_bytes: int = 64 * 1024,
    images: Sequence[tuple[str, bytes]] = (),
) -> AsyncIterator[bytes]:
    """The tables as an XLSX workbook, a sheet each.  openpyxl's write-only mode keeps
    the rows on disk as they are appended; the finished file is then read out in chunks.
    openpyxl is CPU-bound (tens of thousands of cells a second), so each batch of rows
    is written in a worker thread: the server keeps answering meanwhile.
    ``images``: (sheet title, PNG bytes) pairs, a sheet each before the tables, the
    picture at A1 (openpyxl reads it with Pillow)."""
    from openpyxl import Workbook
    from openpyxl.drawing.image import Image as XLImage

    wb = Workbook(write_only=True)
    for title, png in images:
        ws_img = wb.create_sheet(title=title[:31] or "Image")
        ws_img.add_image(XLImage(io.BytesIO(png)), "A1")
    for table in tables:
        ws = wb.create_sheet(title=table.title[:31] or "Sheet")
        ws.append(list(table.header))

        def write(batch: list[Row], ws: Any = ws) -> None:
            for row in batch:
                ws.append([_xlsx_cell(ws, v) for v in row])

        batch: list[Row] = []
        async for row in table.rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                await asyncio.to_thread(write, batch)
                batch = []
        await asyncio.to_thread(write, batch)
    with tempfile.TemporaryFile() as f:
        await asyncio.to_thread(wb.save, f)
        f.seek(0)
        while chunk := await asyncio.to_thread(f.read, chunk_bytes):
            yield chunk


async def xlsx_book_bytes(
    tables: Sequence[Table], *, images: Sequence[tuple[str, bytes]] = ()
) -> bytes:
    return b"".join([c async for c in xlsx_book_chunks(tables, images=images)])


async def xlsx_bytes(table: Table) -> bytes:
    return b"".join([c async for c in xlsx_chunks(table)])


def chunks(table: Table, fmt: str) -> AsyncIterator[bytes]:
    """The file's bytes in the format asked (``csv`` or ``xlsx``)."""
    return xlsx_chunks(table) if fmt == "xlsx" else csv_chunks(table)


def media_type(fmt: str) -> str:
    return XLSX_TYPE if fmt == "xlsx" else CSV_TYPE


def attachment(filename: str, fmt: str) -> dict[str, str]:
    """Headers that make a browser save the file."""
    # HTTP headers are Latin-1: an ASCII name for old clients, the real (Cyrillic) one
    # per RFC 6266 / 5987 for everyone else.
    ascii_name = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in filename
    )
    real = quote(f"{filename}.{fmt}", safe="")
    return {
        "Content-Disposition": (
            f"attachment; filename=\"{ascii_name}.{fmt}\"; filename*=UTF-8''{real}"
        ),
        "Cache-Control": "no-store",
    }
