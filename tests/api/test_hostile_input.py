"""Hostile input in the suite (issue 10): schemathesis against the OpenAPI of the POS and
the admin API, served by a real ``kopilka serve`` process, with the stateful links
(calculate → confirm → refund, register → confirm-phone).  A small request budget here;
``bench/hostile_input.py`` runs 10,000 and more and writes the figures.

Every generated request must get an answer that is not a server error, whose status
code, content type and body the OpenAPI document describes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kopilka.store.migrate import upgrade
from tests.hostile import Target, fuzz, served


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    work = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{work / 'fuzz.db'}"
    upgrade(url)
    with served(url, work) as t:
        yield t


# The coverage phase (every boundary value of every parameter: ~1,200 POS and ~20,000
# admin test cases) runs in bench/hostile_input.py; here random fuzzing, and for the POS
# API the stateful links too, with a small number of examples per operation.
@pytest.mark.parametrize(
    ("api", "examples", "phases"), [("pos", 4, "fuzzing,stateful"), ("admin", 1, "fuzzing")]
)
def test_generated_requests_get_no_server_error_and_answers_the_schema_describes(
    target: Target, tmp_path: Path, api: str, examples: int, phases: str
) -> None:
    result = fuzz(target, api, tmp_path, max_examples=examples, seed=10, phases=phases)

    print(result.summary())
    assert result.errors == [], result.output
    assert result.failures == [], result.output
    assert result.test_cases >= 50
