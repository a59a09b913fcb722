"""The territorial map as files: XLSX (the map picture on the first sheet, then regions,
stores and far members) and PDF (title, period, the picture, the region table).

The PDF is made with fpdf2 (pure Python) and the DejaVu Sans font shipped in
api/static/fonts (Cyrillic); drawing the picture takes about half a second of CPU, so
both run in a worker thread."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from kopilka.analytics.map import MapReport, region_name
from kopilka.analytics.map_image import render_png
from kopilka.analytics.map_out import MEASURE_LABELS, tables, tr
from kopilka.formatting import number
from kopilka.services import exports

FONT_FILE = Path(__file__).resolve().parent.parent / "api/static/fonts/DejaVuSans.ttf"
PDF_TYPE = "application/pdf"
PNG_TYPE = "image/png"
PDF_FAR_ROWS = 30  # the PDF lists the towns with most far members; the XLSX has all


async def png_bytes(report: MapReport, *, measure: str, lang: str) -> bytes:
    return await asyncio.to_thread(render_png, report, measure=measure, lang=lang)


async def xlsx_bytes(report: MapReport, *, measure: str, lang: str) -> bytes:
    png = await png_bytes(report, measure=measure, lang=lang)
    return await exports.xlsx_book_bytes(tables(report, lang), images=[(tr(lang, "Map"), png)])


async def pdf_bytes(report: MapReport, *, measure: str, lang: str) -> bytes:
    png = await png_bytes(report, measure=measure, lang=lang)
    return await asyncio.to_thread(_pdf, report, png, measure, lang)


def _pdf(report: MapReport, png: bytes, measure: str, lang: str) -> bytes:
    pdf = FPDF(orientation="landscape", unit="mm", format="A4")
    pdf.set_title(tr(lang, "Territorial map"))
    pdf.add_font("DejaVu", "", str(FONT_FILE))
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("DejaVu", size=16)
    pdf.cell(0, 8, tr(lang, "Territorial map"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=10)
    p = report.period
    line = f"{tr(lang, 'Period')}: {p.start.isoformat()} – {p.end.isoformat()}"
    pdf.cell(0, 6, f"{line} · {tr(lang, MEASURE_LABELS[measure])}", new_x="LMARGIN", new_y="NEXT")
    pdf.image(io.BytesIO(png), w=pdf.epw)
    pdf.add_page()
    _region_table(pdf, report, lang)
    return bytes(pdf.output())


def _region_table(pdf: FPDF, report: MapReport, lang: str) -> None:
    rows = [
        (
            region_name(r.iso, lang),
            str(r.stores),
            number(lang, r.members, 0),
            number(lang, r.sales),
            number(lang, r.receipts, 0),
            number(lang, r.members_per_store, 1),
        )
        for r in sorted(report.regions, key=lambda r: (-r.members, r.iso))
        if r.stores > 0
    ]
    head = ("Region", "Stores", "Members", "Sales", "Receipts", "Members per store")
    _table(pdf, tr(lang, "Regions"), [tr(lang, h) for h in head], rows, (70, 20, 25, 40, 25, 35))
    if report.far:
        by_id = {s.id: s.name for s in report.stores}
        far = [
            (
                f.place.name,
                number(lang, f.place.members, 0),
                number(lang, Decimal(f"{f.distance_km:.1f}"), 1),
                by_id[f.nearest_store],
            )
            for f in report.far[:PDF_FAR_ROWS]
        ]
        far_head = ("Town", "Members", "Distance to the nearest store, km", "Nearest store")
        km = number(lang, Decimal(f"{report.far_km:g}"), 0)
        title = f"{tr(lang, 'Far members')} (> {km} {tr(lang, 'km')})"
        align = ("LEFT", "RIGHT", "RIGHT", "LEFT")
        _table(pdf, title, [tr(lang, h) for h in far_head], far, (60, 25, 55, 75), align)


def _table(
    pdf: FPDF,
    title: str,
    head: list[str],
    rows: Sequence[Sequence[str]],
    widths: tuple[int, ...],
    align: tuple[str, ...] = (),
) -> None:
    pdf.set_font("DejaVu", size=12)
    pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=9)
    align = align or ("LEFT", *("RIGHT" for _ in widths[1:]))
    with pdf.table(
        headings_style=FontFace(emphasis="NONE", fill_color=(230, 230, 230)),
        col_widths=widths,
        text_align=align,
        width=sum(widths),
        align="LEFT",
    ) as table:
        for values in [head, *rows]:
            row = table.row()
            for v in values:
                row.cell(v)
