"""The territorial map as a picture (PNG, drawn with Pillow), for the XLSX and PDF exports.

The regions are projected with an Albers equal-area conic (``domain.geo.Albers``:
standard parallels 52° and 64°, central meridian 105°E), filled with the colour of their
class on the chosen measure; stores are blue dots, towns of far members purple circles
whose area grows with their members; a title and a legend sit on the picture.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from kopilka.analytics.map import MapReport, shapes
from kopilka.analytics.map_out import MEASURE_LABELS, PLACES, legend_label, scales, tr
from kopilka.domain import geo
from kopilka.services.pdf import FONTS

FONT_FILE = FONTS / "DejaVuSans.ttf"  # the reports' one font (services.pdf)
WIDTH, HEIGHT = 1400, 860
TOP, MARGIN, LEGEND_H = 56, 16, 40
BORDER = (120, 120, 120)
STORE = (31, 95, 191)
FAR = (128, 0, 160, 110)


@dataclass(frozen=True)
class Frame:
    """Where (lon, lat) lands on the picture: projection, then scale and offset."""

    scale: float
    x0: float  # projected x at the left edge of the map area
    y1: float  # projected y at its top edge
    left: float
    top: float
    albers: geo.Albers

    def pixel(self, lon: float, lat: float) -> tuple[float, float]:
        return self.to_pixel(*self.albers.project(lon, lat))

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        return self.left + (x - self.x0) * self.scale, self.top + (self.y1 - y) * self.scale


ALBERS = geo.Albers()
Projected = list[list[tuple[float, float]]]  # a subject's outer rings, projected


@cache
def projected() -> dict[str, Projected]:
    """Every subject's outer rings through ``ALBERS``, once per process."""
    return {
        iso: [[ALBERS.project(p[0], p[1]) for p in polygon[0]] for polygon in shape]
        for iso, shape in shapes().items()
    }


@cache
def frame(width: int = WIDTH, height: int = HEIGHT) -> Frame:
    """Russia fitted into the map area of a picture of this size, centred."""
    pts = [p for rings in projected().values() for ring in rings for p in ring]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    w, h = width - 2 * MARGIN, height - TOP - LEGEND_H - 2 * MARGIN
    scale = min(w / (max(xs) - min(xs)), h / (max(ys) - min(ys)))
    left = MARGIN + (w - (max(xs) - min(xs)) * scale) / 2
    top = TOP + MARGIN + (h - (max(ys) - min(ys)) * scale) / 2
    return Frame(scale, min(xs), max(ys), left, top, ALBERS)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    v = int(hex_colour.lstrip("#"), 16)
    return (v >> 16) & 255, (v >> 8) & 255, v & 255


def render_png(
    report: MapReport,
    *,
    measure: str = "members",
    lang: str = "en",
    title: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> bytes:
    """The map as PNG bytes of exactly ``width`` x ``height`` pixels."""
    f = frame(width, height)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    _regions(draw, f, report, measure)
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    _far(ImageDraw.Draw(overlay), f, report)
    img.paste(overlay, (0, 0), overlay)
    draw = ImageDraw.Draw(img)
    for s in report.stores:
        if s.point is not None:
            x, y = f.pixel(*s.point)
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=STORE, outline="white")
    _texts(draw, report, measure, lang, title, height)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _regions(draw: ImageDraw.ImageDraw, f: Frame, report: MapReport, measure: str) -> None:
    sc = scales(report)[measure]
    colour = {
        r.iso: _rgb(sc.colour(float(r.measure(measure))) if r.stores else geo.PALETTE[0])
        for r in report.regions
    }
    # subjects with holes (Moscow Oblast, Krasnodar Krai) first: what fills their holes
    # (Moscow, Adygea) is drawn over them afterwards
    holed = {iso for iso, shape in shapes().items() if any(len(p) > 1 for p in shape)}
    for iso, rings in sorted(projected().items(), key=lambda kv: kv[0] not in holed):
        for ring in rings:
            pixels = [f.to_pixel(x, y) for x, y in ring]
            draw.polygon(pixels, fill=colour.get(iso, _rgb(geo.PALETTE[0])), outline=BORDER)


def _far(draw: ImageDraw.ImageDraw, f: Frame, report: MapReport) -> None:
    for p in report.far:
        x, y = f.pixel(p.place.longitude, p.place.latitude)
        r = 2 + 1.2 * math.sqrt(p.place.members)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=FAR)


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_FILE), size)


def _texts(
    draw: ImageDraw.ImageDraw,
    report: MapReport,
    measure: str,
    lang: str,
    title: str,
    height: int,
) -> None:
    p = report.period
    head = title or tr(lang, "Territorial map")
    draw.text((MARGIN, 10), head, fill="black", font=_font(22))
    sub = f"{tr(lang, 'Period')}: {p.start.isoformat()} – {p.end.isoformat()}"
    draw.text((MARGIN, 36), f"{sub} · {tr(lang, MEASURE_LABELS[measure])}", "#444", _font(14))
    x, y = MARGIN, height - LEGEND_H
    small = _font(13)
    for lo, hi, colour in scales(report)[measure].legend():
        text = legend_label(lang, lo, hi, PLACES[measure])
        draw.rectangle((x, y, x + 18, y + 14), fill=_rgb(colour), outline=BORDER)
        draw.text((x + 24, y), text, fill="black", font=small)
        x += 40 + int(draw.textlength(text, font=small))
    draw.rectangle((x, y, x + 18, y + 14), fill=_rgb(geo.PALETTE[0]), outline=BORDER)
    draw.text((x + 24, y), tr(lang, "no stores"), fill="black", font=small)
    x += 40 + int(draw.textlength(tr(lang, "no stores"), font=small))
    draw.ellipse((x, y + 2, x + 10, y + 12), fill=STORE)
    draw.text((x + 16, y), tr(lang, "stores"), fill="black", font=small)
    if report.far:
        x += 36 + int(draw.textlength(tr(lang, "stores"), font=small))
        draw.ellipse((x, y + 1, x + 12, y + 13), fill=(200, 150, 220))
        draw.text((x + 18, y), tr(lang, "members far from stores"), fill="black", font=small)
