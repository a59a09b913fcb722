"""Health, readiness, Prometheus metrics and request ids (issue 10).

- ``/healthz``: the process answers (liveness; no database).  ``/health`` is its old name.
- ``/readyz``: the database answers ``SELECT 1`` within 2 s and its schema is at the
  migration head this code expects; 503 problem+json otherwise (a load balancer takes the
  process out of rotation, e.g. during a failover).
- ``/metrics``: Prometheus text format.  Per route template (``/api/pos/v1/purchases/
  {receipt_id}/confirm``, never the raw path) and method: requests by status and a latency
  histogram; read from the database at scrape time: deliveries waiting in the outbox and
  the age of the oldest (the outbox lag), dead deliveries, active holds.  With several
  server processes (``kopilka serve --workers N``) the per-process figures are summed
  through ``PROMETHEUS_MULTIPROC_DIR``, which ``kopilka serve`` sets up.  Optional bearer
  token: ``KOPILKA_METRICS_TOKEN``.
- Every answer carries ``X-Request-ID`` (the caller's, if it sent a sane one, else a new
  one); log lines written while serving the request carry it (``request_id``), and with
  ``KOPILKA_LOG_FORMAT=json`` every log line is one JSON object.

``Observed`` is the outermost ASGI layer, in front of ``HotFront``: a counter and a
histogram observation per call, a few microseconds.
"""

from __future__ import annotations

import contextvars
import hmac
import json
import logging
import os
import re
import secrets
import time
from datetime import datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select, text
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kopilka import __version__
from kopilka.api import problems
from kopilka.domain.ledger import HoldState
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED = "unmatched"  # 404s: never a raw path as a label (unbounded cardinality)

REQUESTS = Counter(
    "kopilka_http_requests_total", "HTTP requests served", ["route", "method", "status"]
)
LATENCY = Histogram(
    "kopilka_http_request_duration_seconds",
    "Time from the request's arrival to the end of the answer",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    static = scope.get("root_path", "") + scope.get("path", "")
    return "/static" if static.startswith("/static/") else UNMATCHED


class Observed:
    """ASGI wrapper: request id, request count and latency per route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = given if _SANE_ID.match(given) else secrets.token_hex(8)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = _route_of(scope)
            method = scope.get("method", "")
            REQUESTS.labels(route, method, str(status)).inc()
            LATENCY.labels(route, method).observe(time.perf_counter() - started)
            request_id.reset(token)


# --- /metrics --------------------------------------------------------------------------


class _Snapshot:
    """Figures read from the database at scrape time, as Prometheus gauges."""

    def __init__(self, figures: dict[str, tuple[str, float]]) -> None:
        self.figures = figures

    def collect(self) -> Any:
        for name, (doc, value) in self.figures.items():
            yield GaugeMetricFamily(name, doc, value=value)


async def database_figures(rt: Runtime) -> dict[str, tuple[str, float]]:
    now = rt.now()
    d, o = t.deliveries, t.outbox
    async with rt.engine.connect() as conn:
        waiting, oldest = (
            await conn.execute(
                select(func.count(), func.min(d.c.created_at)).where(
                    d.c.state.in_(("pending", "sending"))
                )
            )
        ).one()
        events, oldest_event = (
            await conn.execute(
                select(func.count(), func.min(o.c.created_at)).where(o.c.state == "pending")
            )
        ).one()
        dead = (
            await conn.execute(select(func.count()).select_from(d).where(d.c.state == "dead"))
        ).scalar_one()
        holds = (
            await conn.execute(
                select(func.count())
                .select_from(t.holds)
                .where(t.holds.c.state == HoldState.ACTIVE.value)
            )
        ).scalar_one()
        # the latest ledger verify's differences (the nightly run's audit record)
        verified = (
            await conn.execute(
                select(t.audit_log.c.after)
                .where(
                    t.audit_log.c.object_type == "ledger", t.audit_log.c.action == "ledger.verify"
                )
                .order_by(t.audit_log.c.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    mismatches = float(orjson.loads(verified).get("discrepancies", 0)) if verified else 0.0
    times = [x for x in (oldest, oldest_event) if isinstance(x, datetime)]
    lag = max((now - min(times)).total_seconds(), 0.0) if times else 0.0
    return {
        "kopilka_outbox_events_waiting": ("Events not yet turned into messages", float(events)),
        "kopilka_outbox_waiting": ("Messages waiting to be sent", float(waiting)),
        "kopilka_outbox_lag_seconds": ("Age of the oldest event or message waiting", lag),
        "kopilka_outbox_dead": ("Messages that gave up (dead letters)", float(dead)),
        "kopilka_holds_active": ("Points holds not yet confirmed or released", float(holds)),
        "kopilka_ledger_verify_mismatches": (
            "Differences found by the latest ledger verify (alert when above 0)",
            mismatches,
        ),
    }


def metrics_allowed(authorization: str | None) -> bool:
    expected = os.environ.get("KOPILKA_METRICS_TOKEN", "")
    if not expected:
        return True
    given = (authorization or "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), expected.encode())


async def metrics_text(rt: Runtime) -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # all processes, summed
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(_Snapshot(await database_figures(rt)))
    body: bytes = generate_latest(registry)
    return body


# --- /readyz ---------------------------------------------------------------------------


def expected_head() -> str:
    from kopilka.store.migrate import current_head

    return current_head() or ""


async def readiness(rt: Runtime, head: str) -> tuple[bool, str]:
    """(ready, why not)."""
    try:
        async with rt.engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as exc:  # any failure to reach the database means not ready
        return False, f"the database does not answer: {type(exc).__name__}"
    if version != head:
        return False, f"the schema is at {version}, this code needs {head}: run kopilka migrate"
    return True, ""


def not_ready(why: str) -> Response:
    return problems.problem(503, "not_ready", why)


# --- logs ------------------------------------------------------------------------------


_PHONE = re.compile(r"(?<![\w])(\+7|8)(\d{6})(\d{4})(?!\d)")
_SECRET_FIELD = re.compile(r"""(["']?(?:code|pin)["']?\s*[:=]\s*["']?)\d{4,8}""", re.IGNORECASE)


def mask_personal(text: str) -> str:
    """A phone number keeps its last four digits; a code or PIN field loses its value.
    Applied to every log line the app writes (issue 10: no phone or PIN in a log)."""
    text = _PHONE.sub(lambda m: m.group(1) + "••••••" + m.group(3), text)
    return _SECRET_FIELD.sub(lambda m: m.group(1) + "••••", text)


class MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_personal(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "version": __version__,
        }
        rid = request_id.get()
        if rid:
            out["request_id"] = rid
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return mask_personal(json.dumps(out, ensure_ascii=False))


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


def configure_logging(level: str = "warning") -> None:
    """Log lines of the ``kopilka`` logger to stderr: JSON when ``KOPILKA_LOG_FORMAT=json``,
    else text with the request id."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if os.environ.get("KOPILKA_LOG_FORMAT", "").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            MaskingFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    logger = logging.getLogger("kopilka")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
