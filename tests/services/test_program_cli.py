"""``kopilka program validate|apply|export|versions|diff|rollback``, ``kopilka simulate`` and
``kopilka admin token``, called like the operator calls them (``cli.main``)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from kopilka.cli import load_document, main
from kopilka.services import programs

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "programs").glob("*.yaml"))

DOC = """\
code: {code}
name: Кофейня
points:
  earn_percent: 4.5
categories:
  - {{code: coffee, name: Кофе}}
promotions:
  - id: coffee-10
    name: Кофе −10%
    lines: {{category: [coffee]}}
    effects:
      - {{kind: line_discount, percent: {percent}}}
"""


def write(tmp_path: Path, code: str, percent: str = "10.5", name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(DOC.format(code=code, percent=percent), encoding="utf-8")
    return path


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_program_validates(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["program", "validate", str(path)])

    assert status == 0, capsys.readouterr().out
    assert capsys.readouterr().out.startswith("ok: ")


def test_there_are_the_four_examples() -> None:
    assert [p.name for p in EXAMPLES] == [
        "bonus-with-tiers.yaml",
        "cumulative.yaml",
        "discount.yaml",
        "mixed.yaml",
    ]


def test_validate_prints_each_problem_with_its_path_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "c", percent="120")
    text = path.read_text(encoding="utf-8").replace("earn_percent: 4.5", "earn_percent: -1")
    path.write_text(text, encoding="utf-8")

    status = main(["program", "validate", str(path)])

    assert status == 1
    assert capsys.readouterr().out.splitlines() == [
        "points.earn_percent: must be between 0 and 100",
        "promotions[0].effects[0].percent: must be between 0 and 100",
    ]


def test_validate_reads_json_too_and_says_what_is_not_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "p.json"
    good.write_text(json.dumps({"code": "j", "name": "J"}), encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text("code: [unclosed", encoding="utf-8")

    ok = main(["program", "validate", str(good)])
    out = capsys.readouterr().out
    bad = main(["program", "validate", str(broken)])
    err = capsys.readouterr().err

    assert (ok, out) == (0, "ok: 0 promotions\n")
    assert bad == 1 and err.startswith(f"{broken}: not valid YAML")


def test_yaml_decimals_are_read_exactly(tmp_path: Path) -> None:
    data = load_document(str(write(tmp_path, "c", percent="0.1")))

    doc = programs.check_document(data)

    assert str(doc.promotions[0].effects[0].percent) == "0.1"  # type: ignore[union-attr]


def test_apply_export_versions_diff_rollback(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = f"c{secrets.token_hex(3)}"
    db = ["--db", sqlite_url]
    first = write(tmp_path, code)
    second = write(tmp_path, code, percent="15", name="q.yaml")

    assert main([*db, "program", "apply", str(first), "--author", "anna"]) == 0
    assert main([*db, "program", "apply", str(second), "--author", "boris", "--note", "15"]) == 0
    applied = capsys.readouterr().out
    out = ["--out", str(tmp_path / "e")]
    assert main([*db, "program", "export", code, "--version", "1", *out]) == 0
    assert main([*db, "program", "versions", code]) == 0
    versions = capsys.readouterr().out
    assert main([*db, "program", "diff", code, "1", "2"]) == 0
    diff = capsys.readouterr().out
    assert main([*db, "program", "rollback", code, "1", "--author", "carl"]) == 0
    rolled = capsys.readouterr().out
    assert main([*db, "program", "export", code, "--format", "json"]) == 0
    exported_json = json.loads(capsys.readouterr().out)

    assert applied == "1\n2\n"
    exported = load_document(str(tmp_path / "e"))
    assert programs.check_document(exported) == programs.check_document(load_document(str(first)))
    assert "percent: 10.5\n" in (tmp_path / "e").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in versions.splitlines()]
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        ("1", "anna", "1 promotions", ""),
        ("2", "boris", "1 promotions", "15"),
    ]
    assert diff == "~ promotions[coffee-10].effects[0].percent: 10.5 -> 15\n"
    assert rolled == "3\n"
    assert exported_json["promotions"][0]["effects"][0]["percent"] == "10.5"


def test_program_set_keeps_the_promotions_of_a_document(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = f"c{secrets.token_hex(3)}"
    db = ["--db", sqlite_url]
    main([*db, "program", "apply", str(write(tmp_path, code))])
    capsys.readouterr()

    status = main([*db, "program", "set", "--code", code, "--set", "burn_max_percent=50"])
    main([*db, "program", "export", code, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)

    assert status == 0
    assert doc["points"]["burn_max_percent"] == "50"
    assert doc["points"]["earn_percent"] == "4.5"
    assert [p["id"] for p in doc["promotions"]] == ["coffee-10"]


def test_simulate_prints_the_priced_basket_with_explanations(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = f"c{secrets.token_hex(3)}"
    db = ["--db", sqlite_url]
    main([*db, "program", "apply", str(write(tmp_path, code))])
    main([*db, "partner", "add", "--program", code, "--code", "m", "--name", "M"])
    main([*db, "store", "add", "--program", code, "--partner", "m", "--code", "s1", "--name", "S"])
    basket = tmp_path / "basket.json"
    basket.write_text(
        json.dumps({"lines": [{"sku": "1", "category": "coffee", "quantity": 2, "price": 99.99}]}),
        encoding="utf-8",
    )
    capsys.readouterr()

    at = ["--at", "2026-03-04T10:00:00Z"]
    status = main([*db, "simulate", "--program", code, "--store", "s1", *at, str(basket)])
    answer = json.loads(capsys.readouterr().out)

    assert status == 0
    assert answer["amount"] == "199.98"
    assert answer["discount"] == "21.00"
    assert answer["explanations"] == {"coffee-10": "applied"}
    assert answer["member"] is False


def test_admin_tokens_are_added_listed_and_disabled(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", sqlite_url]
    name = f"robot-{secrets.token_hex(3)}"

    assert main([*db, "admin", "token", "add", "--name", name]) == 0
    key = capsys.readouterr().out
    main([*db, "admin", "token", "list"])
    row = next(r for r in capsys.readouterr().out.splitlines() if f"\t{name}\t" in r)
    assert main([*db, "admin", "token", "disable", row.split("\t")[0]]) == 0
    main([*db, "admin", "token", "list"])
    after = next(r for r in capsys.readouterr().out.splitlines() if f"\t{name}\t" in r)

    assert key.startswith("ka_") and key.count("\n") == 1
    assert row.split("\t")[1:5] == [name, "*", key[:10] + "…", "active"]
    assert after.split("\t")[4] == "disabled"
