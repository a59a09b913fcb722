"""The server's front: the till's hot routes answer exactly as through the FastAPI app
(the same problem+json), and a body too large is refused before it is read whole."""

from __future__ import annotations

from typing import Any

import httpx

from kopilka.api.app import create_app
from kopilka.services.runtime import Runtime
from tests.conftest import receipt


async def test_the_hot_front_and_the_app_answer_errors_alike(make_shop: Any, rt: Runtime) -> None:
    shop = await make_shop()
    plain = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(rt, sweep_every_s=0)), base_url="http://test"
    )
    bad = receipt("h1", None, ("a", "-1", "10.00"))
    unknown = receipt("h2", "0000000000000", ("a", 1, "10.00"))

    async with plain:
        for body in (bad, unknown, {"receipt_id": "x"}):
            front = await shop.post("/purchases/calculate", body)
            app = await plain.post(
                "/api/pos/v1/purchases/calculate", json=body, headers=shop.headers
            )
            assert (front.status_code, front.content) == (app.status_code, app.content)
        malformed = await shop.client.post(
            "/api/pos/v1/purchases/calculate", content=b"{not json", headers=shop.headers
        )
    assert (malformed.status_code, malformed.json()["code"]) == (400, "malformed_json")


async def test_a_body_over_four_megabytes_is_refused(make_shop: Any) -> None:
    shop = await make_shop()

    r = await shop.client.post(
        "/api/pos/v1/purchases/calculate",
        content=b"[" + b" " * (5 * 1024 * 1024) + b"]",
        headers={**shop.headers, "Content-Type": "application/json"},
    )

    assert (r.status_code, r.json()["code"]) == (413, "body_too_large")
