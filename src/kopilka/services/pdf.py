"""PDF files of report tables (fpdf2, pure Python; ADR 0020): a title, a subtitle (the
period), optional images (a chart drawn with Pillow) and tables.  Any report can print
its ``exports.Table`` values with ``table_pdf``.

Cyrillic needs a Unicode font: DejaVu Sans (regular and bold) ships in the package,
``api/static/fonts`` (licence beside it).  Money and points are printed from their
``Decimal`` with two places, grouped the reader's way (``1 234,50``): never a float.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace
from PIL import Image, ImageDraw, ImageFont

from kopilka.formatting import number
from kopilka.services import exports

FONTS = Path(__file__).resolve().parent.parent / "api" / "static" / "fonts"
FONT = "DejaVu"
PDF_TYPE = "application/pdf"
MAX_ROWS = 5000  # a printed table longer than this is cut, saying so


@dataclass(frozen=True)
class PdfTable:
    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    truncated: bool = False


def cell_text(value: Any, lang: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "✓" if value else ""
    if isinstance(value, Decimal):
        return number(lang, value, 2)
    if isinstance(value, int):
        return number(lang, value, 0)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _numeric(rows: Sequence[Sequence[Any]], i: int) -> bool:
    values = [r[i] for r in rows if r[i] is not None]
    return bool(values) and all(
        isinstance(v, int | Decimal) and not isinstance(v, bool) for v in values
    )


def pdf_bytes(
    title: str,
    *,
    subtitle: str = "",
    tables: Sequence[PdfTable] = (),
    images: Sequence[bytes] = (),
    lang: str = "ru",
) -> bytes:
    """A PDF: the title, the subtitle, each image (PNG) across the page, each table."""
    wide = any(len(tb.header) > 5 for tb in tables)
    pdf = FPDF(orientation="L" if wide else "P", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font(FONT, "B", 15)
    pdf.multi_cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    if subtitle:
        pdf.set_font(FONT, "", 10)
        pdf.multi_cell(0, 6, subtitle, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for png in images:
        pdf.image(io.BytesIO(png), w=pdf.epw)
        pdf.ln(3)
    for tb in tables:
        _table(pdf, tb, lang)
    return bytes(pdf.output())


def _table(pdf: FPDF, tb: PdfTable, lang: str) -> None:
    if tb.title:
        pdf.set_font(FONT, "B", 11)
        pdf.cell(0, 7, tb.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 8)
    rows = list(tb.rows)[:MAX_ROWS]
    align = tuple("RIGHT" if _numeric(rows, i) else "LEFT" for i in range(len(tb.header)))
    with pdf.table(
        text_align=align,
        headings_style=FontFace(emphasis="BOLD", fill_color=(235, 240, 235)),
        line_height=5,
        first_row_as_headings=True,
    ) as table:
        head = table.row()
        for h in tb.header:
            head.cell(str(h))
        for r in rows:
            row = table.row()
            for v in r:
                row.cell(cell_text(v, lang))
    if tb.truncated or len(tb.rows) > MAX_ROWS:
        pdf.set_font(FONT, "", 8)
        pdf.cell(0, 6, "…", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)


async def tables_pdf(
    tables: Sequence[exports.Table],
    *,
    subtitle: str = "",
    lang: str = "ru",
    images: Sequence[bytes] = (),
) -> bytes:
    """Reports' tables as one PDF titled by the first (``kopilka report ... --format pdf``)."""
    printed = [PdfTable(tb.title, tb.header, [row async for row in tb.rows]) for tb in tables]
    title = printed[0].title if printed else ""
    if printed:
        printed[0] = PdfTable("", printed[0].header, printed[0].rows)
    return pdf_bytes(title, subtitle=subtitle, tables=printed, images=images, lang=lang)


async def table_pdf(
    table: exports.Table, *, title: str, subtitle: str = "", lang: str = "ru"
) -> bytes:
    """Any report's table as a PDF (its rows read to the end)."""
    rows = [row async for row in table.rows]
    return pdf_bytes(title, subtitle=subtitle, tables=[PdfTable("", table.header, rows)], lang=lang)


def bar_chart_png(
    labels: Sequence[str], values: Sequence[Decimal | int], *, caption: str = ""
) -> bytes:
    """A plain bar chart (Pillow) of up to 40 bars, for a PDF: statistics, not money."""
    labels = list(labels)[:40]
    heights = [float(v) for v in list(values)[:40]]  # pixels: a picture, not money
    w, h, left, bottom, top = 1600, 560, 150, 100, 50
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONTS / "DejaVuSans.ttf"), 20)
    small = ImageFont.truetype(str(FONTS / "DejaVuSans.ttf"), 16)
    draw.text((left, 10), caption, fill="black", font=font)
    top_value = max([*heights, 0.0]) or 1.0
    low_value = min([*heights, 0.0])
    span = top_value - low_value or 1.0
    plot_h = h - bottom - top
    zero_y = top + plot_h * top_value / span
    draw.line((left, zero_y, w - 20, zero_y), fill=(120, 120, 120), width=2)
    draw.text((10, top - 10), f"{top_value:,.0f}", fill="black", font=small)
    slot = (w - left - 20) / max(len(heights), 1)
    for i, (label, v) in enumerate(zip(labels, heights, strict=True)):
        x0 = left + i * slot + slot * 0.15
        x1 = left + (i + 1) * slot - slot * 0.15
        y = zero_y - plot_h * v / span
        draw.rectangle((x0, min(y, zero_y), x1, max(y, zero_y)), fill=(60, 130, 90))
        text = label if len(label) <= 14 else label[:13] + "…"
        draw.text((x0, h - bottom + 10 + (i % 2) * 22), text, fill="black", font=small)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
