"""`kopilka serve --workers 2`: /metrics, answered by either process, counts the calls
that both processes served (prometheus_client's multiprocess mode, set up by serve)."""

from __future__ import annotations

import asyncio

import httpx

from kopilka.services.runtime import Runtime
from tests.api.test_observe import sample
from tests.services.conftest import MakeShop

LOOKUP = "/api/pos/v1/customers/lookup"


async def test_metrics_sum_the_calls_of_every_server_process(
    make_served_shop: MakeShop, served: tuple[Runtime, httpx.AsyncClient]
) -> None:
    _, client = served
    shop = await make_served_shop()
    member = await shop.customer()
    before = (await client.get("/metrics")).text

    # 40 calls at once over many connections: both processes get some of them
    answers = await asyncio.gather(
        *(shop.get("/customers/lookup", params={"identifier": member.card}) for _ in range(40))
    )
    scrapes = [(await client.get("/metrics")).text for _ in range(4)]

    assert {a.status_code for a in answers} == {200}
    labels = {"route": LOOKUP, "method": "GET", "status": "200"}
    counted = [
        sample(s, "kopilka_http_requests_total", **labels)
        - sample(before, "kopilka_http_requests_total", **labels)
        for s in scrapes
    ]
    assert counted == [40, 40, 40, 40]
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
