"""The ASGI application: POS API, OpenAPI docs, problem+json for every error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Message, Receive, Scope, Send

from kopilka import __version__, web
from kopilka.api import observe, problems
from kopilka.api.admin import basket_clv as admin_basket_clv
from kopilka.api.admin import campaigns as admin_campaigns
from kopilka.api.admin import customers as admin_customers
from kopilka.api.admin import events as admin_events
from kopilka.api.admin import fraud as admin_fraud
from kopilka.api.admin import mechanics as admin_mechanics
from kopilka.api.admin import org as admin_org
from kopilka.api.admin import partner as admin_partner
from kopilka.api.admin import reports as admin_reports
from kopilka.api.admin import reports_custom as admin_reports_custom
from kopilka.api.admin import reports_map as admin_reports_map
from kopilka.api.admin import reports_rfm as admin_reports_rfm
from kopilka.api.admin import reports_summary as admin_reports_summary
from kopilka.api.admin import routes as admin
from kopilka.api.admin import settlement as admin_settlement
from kopilka.api.pos import giftcards as pos_giftcards
from kopilka.api.pos import routes as pos
from kopilka.services import coupons, giftcards, ledger_jobs
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime

log = logging.getLogger("kopilka")
STATIC = Path(__file__).parent / "static"


async def _sweep(rt: Runtime, every_s: float) -> None:
    """Release expired holds without anyone calling (each server process runs one)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await ledger_jobs.expire_holds(rt, limit=1000)
            await giftcards.expire_tender_holds(rt)
            await coupons.expire_coupon_holds(rt)
        except Exception:  # keep sweeping; the error is logged
            log.exception("hold sweeper failed")
        try:  # the tills' last-seen times, kept in memory by the key lookups (issue 6)
            await rt.flush_last_seen()
        except Exception:
            log.exception("last-seen flush failed")


class HotFront:
    """The server's ASGI entry: the till's hot routes (``pos.fast_routes``) are served
    straight from here, everything else (and any hot path no fast route matches) by the
    FastAPI app.

    FastAPI 0.165 puts several middlewares in front of every route (server errors,
    telemetry, body limit, exceptions, an exit stack): ~0.2 ms of CPU per call, three
    calls per receipt, a sixth of what a receipt costs the server on SQLite.  The hot
    routes need none of them; their errors are answered here with the app's own
    problem+json functions, so the answers are the same byte for byte.
    """

    max_body = 4 * 1024 * 1024  # a 1000-line receipt is ~0.2 MB

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.routes = pos.fast_routes()
        self.prefix = pos.router.prefix + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    # in place, as Starlette's router does: the metrics layer in front
                    # reads the matched route's template from it
                    scope.update(child)
                    scope["app"] = self.app
                    scope["route"] = route
                    try:
                        await route.handle(scope, self._limited(scope, receive), send)
                    except _BodyTooLarge:
                        await problems.problem(
                            413,
                            "body_too_large",
                            f"the body is larger than {self.max_body // (1024 * 1024)} MB",
                        )(scope, receive, send)
                    except ServiceError as exc:
                        await problems.from_service_error(exc)(scope, receive, send)
                    except ValidationError as exc:
                        await problems.from_validation_error(exc)(scope, receive, send)
                    except Exception as exc:  # as the app's own handler: 503 or 500
                        await _unexpected_error(exc)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        """``receive`` that refuses a body over ``max_body`` (declared or streamed)."""
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                raise _BodyTooLarge
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _BodyTooLarge
            return message

        return limited


class _BodyTooLarge(Exception):
    pass


def _unexpected_error(exc: Exception) -> Response:
    """A database that is restarting or unreachable: 503 ``database_unavailable`` (the
    till retries with the same key), one warning line; anything else: logged, 500."""
    if problems.database_unreachable(exc):
        log.warning("database unreachable: %s: %s", type(exc).__name__, exc)
        return problems.database_unavailable()
    log.exception("unexpected error", exc_info=exc)
    return _internal_error()


INT64_MAX = 2**63 - 1
FILE_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def _enum(schema: dict[str, Any]) -> list[Any]:
    """The values a query parameter may take: its ``enum``, or the words of a
    ``^(a|b|c)$`` pattern."""
    out = list(schema.get("enum", ()))
    for alt in schema.get("anyOf", ()):
        out += _enum(alt)
    pattern = schema.get("pattern", "")
    if pattern.startswith("^(") and pattern.endswith(")$"):
        out += pattern[2:-2].split("|")
    return out


def _document_file_formats(doc: dict[str, Any]) -> None:
    """An export answers a file when its ``fmt``/``format`` query asks for one: say so
    in the 200 response (found by schemathesis' content-type check)."""
    for item in doc.get("paths", {}).values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            params = [
                p
                for p in op.get("parameters", ())
                if p.get("in") == "query" and p.get("name") in ("fmt", "format")
            ]
            if not params:
                continue
            # a free-text format is checked by the handler against the house pair
            kinds = [v for v in _enum(params[0].get("schema", {})) if v in FILE_TYPES] or [
                "csv",
                "xlsx",
            ]
            ok = op.setdefault("responses", {}).setdefault("200", {"description": "OK"})
            content = ok.setdefault("content", {})
            for kind in kinds:
                content.setdefault(
                    FILE_TYPES[kind], {"schema": {"type": "string", "format": "binary"}}
                )


def _id_beyond_64_bits(request: Request, exc: Exception) -> str | None:
    """The name of a path or query parameter holding an integer no database column can
    hold, when that is what the driver refused (SQLite: ``OverflowError``; asyncpg:
    "out of int64 range"); such an id names nothing, so the answer is 404, not 500.
    Found by schemathesis (docs/reliability.md, "Hostile input and security")."""
    if not (isinstance(exc, OverflowError) or "out of int64 range" in str(exc)):
        return None
    for name, value in [*request.path_params.items(), *request.query_params.items()]:
        digits = str(value).lstrip("+-")
        if digits.isdigit() and int(digits) > INT64_MAX:
            return str(name)
    return None


def _internal_error() -> Response:
    return problems.problem(
        500, "internal_error", "the server failed; nothing was written; retry the call"
    )


def create_app(rt: Runtime, *, sweep_every_s: float = 10.0) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_sweep(rt, sweep_every_s)) if sweep_every_s > 0 else None
        yield
        if task:
            task.cancel()
        await rt.close()

    app = FastAPI(
        title="Kopilka processing center",
        version=__version__,
        description=(
            "Loyalty processing center. POS API contract: see docs/pos-integration.md; "
            "admin API: docs/admin-api.md."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = rt
    app.router.routes.extend(pos.fast_routes())  # serve first; FastAPI's copies document
    app.include_router(pos.router)
    app.include_router(pos_giftcards.router)
    app.include_router(admin.router)
    app.include_router(admin_events.router)
    app.include_router(admin_mechanics.router)
    app.include_router(admin_customers.router)
    app.include_router(admin_org.router)
    app.include_router(admin_campaigns.router)
    app.include_router(admin_reports_custom.router)
    app.include_router(admin_fraud.router)
    app.include_router(admin_reports.router)
    app.include_router(admin_reports_rfm.router)
    app.include_router(admin_reports_map.router)
    app.include_router(admin_reports_summary.router)
    app.include_router(admin_basket_clv.router)
    app.include_router(admin_settlement.router)
    app.include_router(admin_partner.router)

    web.install(app)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        if web.is_web(request):
            return web.service_error_page(request, exc)
        return problems.from_service_error(exc)

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, exc: ValidationError) -> Response:
        return problems.from_validation_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> Response:
        errs = [
            {
                "field": problems.field_path(
                    [p for p in e["loc"] if p not in ("query", "path", "body")]
                ),
                "code": problems.field_code(e["type"]),
                "detail": e["msg"],
            }
            for e in exc.errors()
        ]
        first = errs[0]
        return problems.problem(
            422,
            "validation_failed",
            f"{first['field']}: {first['detail']}",
            field=first["field"],
            errors=errs,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if web.is_web(request) and exc.status_code == 404:
            return web.error_page(request, 404, "Not found", "The page or object does not exist.")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problems.problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        beyond = _id_beyond_64_bits(request, exc)
        if beyond is not None:
            return problems.problem(404, "not_found", "no such object", field=beyond)
        return _unexpected_error(exc)

    # Swagger UI from the package itself (swagger-ui-dist, vendored): /docs works offline.
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Kopilka API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    @app.get("/health", include_in_schema=False)
    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    head = observe.expected_head()

    @app.get("/readyz", include_in_schema=False)
    async def ready() -> Response:
        ok, why = await observe.readiness(rt, head)
        if not ok:
            return observe.not_ready(why)
        return Response(b'{"status":"ready"}', media_type="application/json")

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not observe.metrics_allowed(request.headers.get("authorization")):
            return problems.problem(401, "unauthorized", "a metrics token is required")
        return Response(await observe.metrics_text(rt), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (
            *pos.SCHEMAS,
            *admin.SCHEMAS,
            *admin_events.SCHEMAS,
            *admin_mechanics.SCHEMAS,
            *admin_customers.SCHEMAS,
            *admin_org.SCHEMAS,
            *admin_campaigns.SCHEMAS,
            *admin_reports_custom.SCHEMAS,
            *admin_fraud.SCHEMAS,
        ):
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            comps.update(js.pop("$defs", {}))
            comps[model.__name__] = js
        schema["components"]["securitySchemes"] = {
            "terminalKey": {"type": "http", "scheme": "bearer"},
            "adminToken": {"type": "http", "scheme": "bearer"},
        }
        schema["security"] = [{"terminalKey": []}]
        _document_file_formats(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
