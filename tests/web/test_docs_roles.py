"""The user guide's role table says what the code grants."""

from __future__ import annotations

from pathlib import Path

from kopilka.domain.roles import PERMISSIONS, Perm, Role

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "user-guide.md"


def test_the_user_guide_role_table_matches_the_permissions() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## Roles", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| `")]
    documented: dict[str, set[str]] = {}
    roles = [r.value for r in Role]
    for ln in lines:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        perm = cells[0].strip("`")
        documented[perm] = {roles[i] for i, c in enumerate(cells[1:]) if c == "✓"}
    expected = {p.value: {r.value for r in Role if p in PERMISSIONS[r]} for p in Perm}
    assert documented == expected
