"""Crashes (issue 10), the suite's small version of ``bench/crash_drill.py``: a real server
SIGKILLs itself at random hook sites inside calculate/confirm/refund (and is killed from
outside at random moments), is restarted at once, and the till retries with the same
receipt and refund ids.  Every acknowledged operation is in the database exactly once, the
receipt's effects are all there or none, the ledger verifies.  (The worker killed between
sending and marking: ``tests/notify/test_delivery.py`` in-process, the bench with real
kills.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.crash_drill import bad_total, trials

from kopilka import crash

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("", {}),
        ("tx.commit=0.5", {"tx.commit": 0.5}),
        ("tx.commit=0.5, http.answer=1", {"tx.commit": 0.5, "http.answer": 1.0}),
        ("*=0.1,tx.begin=0", {s: 0.1 for s in crash.SITES if s != "tx.begin"}),
        ("delivery.sent", {"delivery.sent": 1.0}),
    ],
)
def test_crash_points_are_read_from_a_short_list(raw: str, parsed: dict[str, float]) -> None:
    assert crash.parse(raw) == parsed


@pytest.mark.parametrize("raw", ["tx.nowhere=0.1", "tx.commit=2", "tx.commit=-0.1"])
def test_an_unknown_site_or_a_probability_out_of_range_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="KOPILKA_CRASH_POINTS"):
        crash.parse(raw)


def test_a_normal_process_has_no_crash_points() -> None:
    assert (crash.ARMED, crash.POINTS) == (False, {})


async def test_killed_servers_lose_and_duplicate_nothing(db_url: str, tmp_path: Path) -> None:
    got = await trials(db_url, 3, p=0.05, external=0.3, seed=11, workdir=tmp_path, worker=False)

    assert got["trials"] == 3
    assert got["hook_kills"] + got["external_kills"] >= 2  # the drill did kill
    assert (got["lost_acknowledged"], got["duplicates"]) == (0, 0)
    assert got["invariant_violations"] == {} and got["unexpected_answers"] == {}
    assert bad_total(got | {"worker": {"states": {}, "missing_after_dedup": 0}}) == 0
