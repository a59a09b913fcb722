"""Server-rendered pages: the admin console (``/admin``) and the cashier screen
(``/cashier``).  Jinja2 templates, htmx for partial updates, no build step.

``install(app)`` adds the routers and the handlers that turn a missing session into the
login page and a refusal into an HTML page (the API's paths keep problem+json).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from kopilka.services.errors import ServiceError
from kopilka.web import auth, cabinet, pages
from kopilka.web.cashier import router as cashier_router
from kopilka.web.customers import router as customers_router
from kopilka.web.fraud import router as fraud_router
from kopilka.web.mechanics import router as mechanics_router
from kopilka.web.notify import router as notify_router
from kopilka.web.org import router as org_router
from kopilka.web.programs import router as programs_router
from kopilka.web.reports import router as reports_router
from kopilka.web.templating import is_htmx, redirect, render

WEB_PREFIXES = ("/admin", "/cashier", "/my")


def is_web(request: Request) -> bool:
    path = request.url.path
    return any(path == p or path.startswith(p + "/") for p in WEB_PREFIXES)


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    return render(request, "error.html", {"title": title, "detail": detail}, status=status)


def install(app: FastAPI) -> None:
    for router in (
        pages.router,
        programs_router,
        customers_router,
        mechanics_router,
        org_router,
        notify_router,
        reports_router,
        fraud_router,
        cashier_router,
        cabinet.router,
    ):
        app.include_router(router)

    @app.exception_handler(auth.LoginRequired)
    async def _login(request: Request, exc: auth.LoginRequired) -> Response:
        url = pages.login_url(exc.next_url)
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": url})
        return redirect(url)

    cabinet.install_handlers(app)

    @app.exception_handler(auth.Forbidden)
    async def _forbidden(request: Request, exc: auth.Forbidden) -> Response:
        return error_page(request, 403, "Access denied", "You do not have access to this page.")

    @app.exception_handler(auth.CsrfFailed)
    async def _csrf(request: Request, exc: auth.CsrfFailed) -> Response:
        return error_page(request, 403, "Access denied", "The form has expired; please try again.")


def service_error_page(request: Request, exc: ServiceError) -> Response:
    """A refusal no view caught, as a page (the API answers problem+json instead)."""
    if exc.status == 404:
        return error_page(request, 404, "Not found", exc.detail)
    if exc.status == 403:
        return error_page(request, 403, "Access denied", exc.detail)
    return error_page(request, exc.status, "Something went wrong", exc.detail)
