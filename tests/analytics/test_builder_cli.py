"""``kopilka report custom``: a definition file or a saved report, as CSV, XLSX or PDF.

Each test runs the command in a process of its own at least once; the other invocations
run ``cli.main`` in this process (``tests.inprocess``)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import openpyxl
import pypdf
import pytest

from kopilka.services import saved_reports
from kopilka.services.audit import Actor
from tests.analytics.conftest import NOV, Till
from tests.inprocess import kopilka_async
from tests.notify.test_worker_cli import kopilka

YAML = """\
dimensions: [category]
measures: [sales, receipts, items]
period: {from: 2026-11-01, to: 2026-11-30}
"""


async def test_a_definition_file_as_csv_xlsx_and_pdf(
    november: Till, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "by_category.yaml"
    spec.write_text(YAML, encoding="utf-8")
    base = ["report", "custom", "--definition", str(spec), "--program", november.shop.code]

    csv = await asyncio.to_thread(kopilka, november.rt.url, *base)
    xlsx = await kopilka_async(
        capsys, november.rt.url, *base, "--format", "xlsx", "--out", str(tmp_path / "r.xlsx")
    )
    pdf = await kopilka_async(
        capsys,
        november.rt.url,
        *base,
        "--lang",
        "ru",
        "--format",
        "pdf",
        "--out",
        str(tmp_path / "r.pdf"),
    )

    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines() == [
        "Category,Sales,Receipts,Items",
        "dairy,599.99,3,6.500",
        "bakery,191.50,3,4.000",
    ]
    assert xlsx.returncode == 0, xlsx.stderr
    ws = openpyxl.load_workbook(tmp_path / "r.xlsx").active
    assert ws is not None
    assert [c.value for c in next(ws.iter_rows(min_row=2))] == ["dairy", 599.99, 3, 6.5]
    assert pdf.returncode == 0, pdf.stderr
    text = pypdf.PdfReader(io.BytesIO((tmp_path / "r.pdf").read_bytes())).pages[0].extract_text()
    assert "by_category" in text and "Категория Продажи Чеки" in text
    assert "dairy 599,99 3 6,50" in text


async def test_a_saved_report_by_id(november: Till) -> None:
    owner = Actor("user", 5, "Owner", role="owner")
    rid = await saved_reports.do_save_report(
        november.rt,
        owner,
        november.shop.program_id,
        name="Города",
        definition=saved_reports.parse_definition(
            {"dimensions": ["city"], "measures": ["sales"], "period": NOV}
        ),
    )

    out = await asyncio.to_thread(kopilka, november.rt.url, "report", "custom", "--id", str(rid))

    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["City,Sales", "Казань,591.00", "Москва,200.49"]


async def test_bad_input_is_an_error_naming_the_field(
    november: Till, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("measures: [profit]\n", encoding="utf-8")
    url = november.rt.url

    bad = await kopilka_async(
        capsys, url, "report", "custom", "--definition", str(spec), "--program", november.shop.code
    )
    missing = await kopilka_async(
        capsys, url, "report", "custom", "--definition", str(tmp_path / "none.yaml")
    )
    unknown = await kopilka_async(capsys, url, "report", "custom", "--id", "999999")
    good = tmp_path / "good.yaml"
    good.write_text(YAML, encoding="utf-8")
    # the one refusal that ends the process by SystemExit: in a process of its own
    no_out = await asyncio.to_thread(
        kopilka,
        url,
        "report",
        "custom",
        "--definition",
        str(good),
        "--program",
        november.shop.code,
        "--format",
        "pdf",
    )

    assert (bad.returncode, bad.stderr.strip()) == (
        2,
        "error: --definition: measures[0]: not one of the choices",
    )
    assert missing.returncode == 2 and missing.stderr.startswith(
        "error: --definition: No such file"
    )
    assert (unknown.returncode, unknown.stderr.strip()) == (2, "error: No such report.")
    assert no_out.returncode != 0 and "needs --out FILE" in no_out.stderr
    assert "Traceback" not in bad.stderr + missing.stderr + unknown.stderr + no_out.stderr
