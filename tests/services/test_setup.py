"""Setting up an installation from the command line: programs, partners, stores."""

from __future__ import annotations

import secrets
from decimal import Decimal

import pytest

from kopilka.cli import main
from kopilka.services import setup
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"earn_percent": "120"}, "earn_percent", id="percent-over-100"),
        pytest.param({"points_step": "0.5"}, "points_step", id="odd-step"),
        pytest.param({"timezone": "Mars/Olympus"}, "timezone", id="unknown-zone"),
        pytest.param({"earn_percent": "five"}, "earn_percent", id="not-a-number"),
        pytest.param({"bonus": "1"}, "bonus", id="unknown-setting"),
    ],
)
async def test_a_wrong_setting_is_refused_with_its_name(
    rt: Runtime, change: dict[str, str], field: str
) -> None:
    with pytest.raises(ServiceError) as err:
        await setup.do_create_program(rt, code=f"x{secrets.token_hex(3)}", name="X", changes=change)

    assert err.value.field == field


async def test_a_changed_setting_reaches_the_calculation(rt: Runtime) -> None:
    code = f"p{secrets.token_hex(3)}"
    await setup.do_create_program(rt, code=code, name="P", changes={"earn_percent": "3"})

    changed = await setup.do_set_program(rt, code=code, changes={"expiry_days": "none"})

    assert changed.earn_percent == Decimal("3") and changed.expiry_days is None
    assert (await setup.show_program(rt, code)).expiry_days is None


def test_the_cli_sets_up_a_store_and_prints_only_the_terminal_key(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = f"c{secrets.token_hex(3)}"
    db = ["--db", sqlite_url]

    assert main([*db, "program", "create", "--code", code, "--name", "C"]) == 0
    assert main([*db, "partner", "add", "--program", code, "--code", "m", "--name", "M"]) == 0
    assert (
        main(
            [
                *db,
                "store",
                "add",
                "--program",
                code,
                "--partner",
                "m",
                "--code",
                f"{code}-1",
                "--name",
                "Казань",
                "--lat",
                "55.79",
                "--lon",
                "49.12",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main([*db, "terminal", "add", "--store", f"{code}-1", "--name", "till"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("kp_") and out.count("\n") == 1
