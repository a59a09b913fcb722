"""The territorial map as files (both databases): a real PNG of the asked size whose
regions have the colour of their class, an XLSX with the picture and the tables, a PDF
with its title; and ``kopilka report map`` on the command line."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from PIL import Image

from kopilka import cli
from kopilka.analytics import map as amap
from kopilka.analytics import map_files
from kopilka.analytics.map_image import frame, render_png
from kopilka.domain import geo
from kopilka.services.audit import Actor
from kopilka.services.runtime import Runtime
from tests.analytics.map_data import PERIOD, make_map_shop

OWNER = Actor("user", 1, "owner")


def centroid(ring: list[list[float]]) -> tuple[float, float]:
    """The centre of mass of a polygon (the shoelace formula), in degrees."""
    a = cx = cy = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        cross = x0 * y1 - x1 * y0
        a += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    return cx / (3 * a), cy / (3 * a)


def inside_point(iso: str) -> tuple[float, float]:
    shape = amap.shapes()[iso]
    biggest = max(shape, key=lambda p: len(p[0]))
    c = centroid(biggest[0])
    assert geo.contains(shape, c)  # the test's premise: this region is convex enough
    return c


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


async def test_the_png_colours_each_region_by_its_class(rt: Runtime, make_shop: Any) -> None:
    m = await make_map_shop(rt, await make_shop())
    report = await amap.compute(rt, OWNER, m.shop.program_id, period=PERIOD)

    members = Image.open(io.BytesIO(render_png(report, measure="members", width=1200, height=740)))
    sales = Image.open(io.BytesIO(render_png(report, measure="sales", width=1200, height=740)))

    assert (members.format, members.size) == ("PNG", (1200, 740))
    f = frame(1200, 740)
    ta = f.pixel(*inside_point("RU-TA"))
    kazan = f.pixel(49.115, 55.79)
    assert abs(ta[0] - kazan[0]) + abs(ta[1] - kazan[1]) > 12  # not under the store's dot
    # members per region with stores: Moscow 3, St Petersburg 2, Tatarstan 1, Sverdlovsk 0
    # -> quantile upper bounds (1, 2, 3): Tatarstan in class 1 (#ffffb2)
    assert members.getpixel((round(ta[0]), round(ta[1]))) == rgb("#ffffb2")
    # sales 100.10, 30.00, 1030.00, 0 -> bounds (30, 100.1, 1030): Tatarstan in class 3
    assert sales.getpixel((round(ta[0]), round(ta[1]))) == rgb("#fd8d3c")
    sve = f.pixel(*inside_point("RU-SVE"))  # a store, no members: the "none" grey
    assert members.getpixel((round(sve[0]), round(sve[1]))) == rgb("#eeeeee")
    kya = f.pixel(*inside_point("RU-KYA"))  # no store at all
    assert members.getpixel((round(kya[0]), round(kya[1]))) == rgb("#eeeeee")
    store = members.getpixel((round(kazan[0]), round(kazan[1])))
    assert store == (31, 95, 191)  # the store's blue dot


async def test_the_xlsx_has_the_map_picture_and_the_tables(rt: Runtime, make_shop: Any) -> None:
    m = await make_map_shop(rt, await make_shop())
    report = await amap.compute(rt, OWNER, m.shop.program_id, period=PERIOD)

    data = await map_files.xlsx_bytes(report, measure="members", lang="en")

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        media = [n for n in z.namelist() if n.startswith("xl/media/")]
        assert len(media) == 1
        png = Image.open(io.BytesIO(z.read(media[0])))
        assert (png.format, png.size) == ("PNG", (1400, 860))
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Map", "Regions", "Stores", "Far members"]
    regions = list(wb["Regions"].iter_rows(values_only=True))
    assert regions[0][:4] == ("Region", "ISO code", "Stores", "Members")
    assert [r[:4] for r in regions[1:]] == [
        ("Moscow", "RU-MOW", 2, 3),
        ("Saint Petersburg", "RU-SPE", 1, 2),
        ("Republic of Tatarstan", "RU-TA", 1, 1),
        ("Sverdlovsk Oblast", "RU-SVE", 1, 0),
    ]
    assert Decimal(str(regions[3][4])) == Decimal("1030.00")
    far = list(wb["Far members"].iter_rows(values_only=True))
    assert [(r[0], r[3], r[5]) for r in far[1:]] == [
        ("Тверь", 2, "Тверская"),
        ("Выборг", 1, "Невский"),
    ]


async def test_the_pdf_has_the_title_and_the_picture(rt: Runtime, make_shop: Any) -> None:
    m = await make_map_shop(rt, await make_shop())
    report = await amap.compute(rt, OWNER, m.shop.program_id, period=PERIOD)

    en = await map_files.pdf_bytes(report, measure="members", lang="en")
    ru = await map_files.pdf_bytes(report, measure="members", lang="ru")

    assert en.startswith(b"%PDF-")
    assert b"/Title (Territorial map)" in en
    assert en.count(b"/Subtype /Image") == 1
    # the Russian title as PDF text: UTF-16 with a byte order mark, in hex
    title_ru = ("\ufeff" + "Территориальная карта").encode("utf-16-be").hex()
    assert f"/Title <{title_ru}>".encode() in ru


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_the_command_line_writes_the_report(
    rt: Runtime, make_shop: Any, tmp_path: Path, fmt: str
) -> None:
    m = await make_map_shop(rt, await make_shop())
    out = tmp_path / f"map.{fmt}"
    url = rt.engine.url.render_as_string(hide_password=False)
    argv = ["--db", url, "report", "map", "--program", m.shop.code]
    argv += ["--from", "2026-03-01", "--to", "2026-03-31", "--format", fmt, "--out", str(out)]

    code = await asyncio.to_thread(cli.main, argv)

    assert code == 0
    if fmt == "csv":
        rows = list(csv.reader(out.read_text(encoding="utf-8").splitlines()))
        assert rows[0] == [
            "Region", "ISO code", "Stores", "Members", "Sales", "Receipts", "Members per store"
        ]  # fmt: skip
        assert rows[1:] == [
            ["Moscow", "RU-MOW", "2", "3", "100.10", "1", "1.5"],
            ["Saint Petersburg", "RU-SPE", "1", "2", "30.00", "2", "2.0"],
            ["Republic of Tatarstan", "RU-TA", "1", "1", "1030.00", "2", "1.0"],
            ["Sverdlovsk Oblast", "RU-SVE", "1", "0", "0.00", "0", "0.0"],
        ]
    else:
        wb = openpyxl.load_workbook(out)
        assert wb.sheetnames[0] == "Map" and len(wb["Map"]._images) == 1


async def test_the_command_line_refuses_a_bad_date(
    rt: Runtime, make_shop: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = await make_shop()
    url = rt.engine.url.render_as_string(hide_password=False)
    argv = ["--db", url, "report", "map", "--program", shop.code, "--to", "2026-02-30"]

    code = await asyncio.to_thread(cli.main, argv)

    assert code == 2
    assert capsys.readouterr().err == "error: to: not a date (YYYY-MM-DD): '2026-02-30'\n"
