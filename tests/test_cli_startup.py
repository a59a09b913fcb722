"""The ``kopilka`` command starts without the heavy libraries its other commands use:
building the parser loads argparse definitions, each command its own services
(many tests and every operator's cron line pay this start-up)."""

import subprocess
import sys

HEAVY = ("fpdf", "numpy", "openpyxl", "pyhanko", "PIL")


def test_building_the_parser_loads_no_pdf_spreadsheet_or_numeric_library() -> None:
    code = (
        "import sys\n"
        "import kopilka.cli\n"
        "kopilka.cli.build_parser()\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert out.stdout.strip() == "[]"
