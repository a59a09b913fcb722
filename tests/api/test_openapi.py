"""The published contract is whole: every reference in /openapi.json points at a schema
that is there (a client generator or a fuzzer fails on a dangling one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


async def test_every_reference_in_the_openapi_document_resolves(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]

    dangling = sorted(
        {r for r in refs(doc) if r.removeprefix("#/components/schemas/") not in schemas}
    )

    assert dangling == []
    assert len(doc["paths"]) > 50
