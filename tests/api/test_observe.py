"""Health, readiness, metrics and request ids, as a load balancer, Prometheus and an
operator reading the logs see them (issue 10)."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import httpx
import pytest

from kopilka.api import observe
from kopilka.services.runtime import Runtime
from tests.conftest import Shop, receipt
from tests.services.conftest import MakeShop

CALCULATE = "/api/pos/v1/purchases/calculate"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when it is not there yet."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def scrape(client: httpx.AsyncClient, **kw: Any) -> str:
    r = await client.get("/metrics", **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def test_liveness_and_readiness(client: httpx.AsyncClient, rt: Runtime) -> None:
    live = await client.get("/healthz")
    ready = await client.get("/readyz")

    assert (live.status_code, live.json()["status"]) == (200, "ok")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    ok, why = await observe.readiness(rt, "9999")
    assert not ok and why.endswith("this code needs 9999: run kopilka migrate")


async def test_not_ready_when_the_database_does_not_answer() -> None:
    gone = Runtime.from_url("postgresql://postgres@127.0.0.1:1/nowhere")
    try:
        ok, why = await observe.readiness(gone, observe.expected_head())
    finally:
        await gone.close()
    answer = observe.not_ready(why)

    assert not ok and why.startswith("the database does not answer")
    assert answer.status_code == 503 and b'"code":"not_ready"' in bytes(answer.body)


async def test_every_call_is_counted_and_timed_by_its_route_template(
    make_shop: MakeShop,
) -> None:
    shop: Shop = await make_shop()
    before = await scrape(shop.client)

    for i in range(3):
        r = await shop.post("/purchases/calculate", receipt(f"m{i}", None, ("a", 1, "10")))
        assert r.status_code == 200, r.text
    bad = await shop.post("/purchases/calculate", {"receipt_id": 5})
    await shop.client.get("/no/such/page/123")
    after = await scrape(shop.client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    ok = {"route": CALCULATE, "method": "POST"}
    assert bad.status_code == 422
    assert delta("kopilka_http_requests_total", **ok, status="200") == 3
    assert delta("kopilka_http_requests_total", **ok, status="422") == 1
    assert delta("kopilka_http_request_duration_seconds_count", **ok) == 4
    assert delta("kopilka_http_requests_total", route="unmatched", status="404") == 1
    assert "/no/such/page/123" not in after  # raw paths never become labels


async def test_outbox_and_holds_are_reported_from_the_database(make_shop: MakeShop) -> None:
    shop: Shop = await make_shop(burn_max_percent="100")
    member = await shop.customer(points=300)
    before = await scrape(shop.client)

    body = receipt("h1", member.card, ("a", 1, "500")) | {"redeem_points": "100"}
    held = await shop.post("/purchases/calculate", body)
    during = await scrape(shop.client)
    await shop.post("/purchases/h1/cancel")
    after = await scrape(shop.client)

    assert held.status_code == 200, held.text
    assert sample(during, "kopilka_holds_active") == sample(before, "kopilka_holds_active") + 1
    assert sample(after, "kopilka_holds_active") == sample(before, "kopilka_holds_active")
    for name in ("kopilka_outbox_waiting", "kopilka_outbox_lag_seconds", "kopilka_outbox_dead"):
        assert re.search(rf"^{name} \d", after, re.M), name


async def test_metrics_can_require_a_token(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOPILKA_METRICS_TOKEN", "s3cret-metrics")

    refused = await client.get("/metrics")
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    right = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})

    assert (refused.status_code, wrong.status_code, right.status_code) == (401, 401, 200)


async def test_request_ids_are_echoed_or_made_and_reach_the_log_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        logging.getLogger("kopilka.test").warning("serving %s", scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    logger = logging.getLogger("kopilka")
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))  # restored afterwards
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)
    monkeypatch.setenv("KOPILKA_LOG_FORMAT", "json")
    observe.configure_logging("info")
    stream = io.StringIO()
    handler = logger.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    transport = httpx.ASGITransport(app=observe.Observed(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        given = await c.get("/a", headers={"X-Request-ID": "till-42:7"})
        made = await c.get("/b")
        hostile = await c.get("/c", headers={"X-Request-ID": 'x" injected\nline'})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]

    assert given.headers["x-request-id"] == "till-42:7"
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{16}", hostile.headers["x-request-id"])
    assert [(x["message"], x["request_id"]) for x in lines] == [
        ("serving /a", "till-42:7"),
        ("serving /b", made.headers["x-request-id"]),
        ("serving /c", hostile.headers["x-request-id"]),
    ]
    assert all(x["level"] == "warning" and x["logger"] == "kopilka.test" for x in lines)
