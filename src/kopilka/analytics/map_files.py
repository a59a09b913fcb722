"""The territorial map as files: XLSX (the map picture on the first sheet, then regions,
stores and far members) and PDF (title, period, the picture, the region table).

The PDF is the reports' common one (``services.pdf``: fpdf2 and the DejaVu Sans font for
Cyrillic); drawing the picture takes about half a second of CPU, so both run in a worker
thread."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from kopilka.analytics.map import MapReport, region_name
from kopilka.analytics.map_image import render_png
from kopilka.analytics.map_out import MEASURE_LABELS, tables, tr
from kopilka.formatting import number
from kopilka.services import exports, pdf

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
    p = report.period
    subtitle = (
        f"{tr(lang, 'Period')}: {p.start.isoformat()} – {p.end.isoformat()}"
        f" · {tr(lang, MEASURE_LABELS[measure])}"
    )
    return pdf.pdf_bytes(
        tr(lang, "Territorial map"),
        subtitle=subtitle,
        images=[png],
        tables=_pdf_tables(report, lang),
        lang=lang,
    )


def _pdf_tables(report: MapReport, lang: str) -> list[pdf.PdfTable]:
    regions = [
        (
            region_name(r.iso, lang),
            r.stores,
            r.members,
            r.sales,
            r.receipts,
            number(lang, r.members_per_store, 1),
        )
        for r in sorted(report.regions, key=lambda r: (-r.members, r.iso))
        if r.stores > 0
    ]
    head = ("Region", "Stores", "Members", "Sales", "Receipts", "Members per store")
    out = [pdf.PdfTable(tr(lang, "Regions"), [tr(lang, h) for h in head], regions)]
    if report.far:
        by_id = {s.id: s.name for s in report.stores}
        far = [
            (
                f.place.name,
                f.place.members,
                number(lang, Decimal(f"{f.distance_km:.1f}"), 1),
                by_id[f.nearest_store],
            )
            for f in report.far[:PDF_FAR_ROWS]
        ]
        far_head = ("Town", "Members", "Distance to the nearest store, km", "Nearest store")
        km = number(lang, Decimal(f"{report.far_km:g}"), 0)
        title = f"{tr(lang, 'Far members')} (> {km} {tr(lang, 'km')})"
        out.append(pdf.PdfTable(title, [tr(lang, h) for h in far_head], far))
    return out
