"""Stores and their terminals: /admin/stores."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.services import stores, terminals
from kopilka.services.errors import ServiceError
from kopilka.web.auth import Console, console
from kopilka.web.org.common import field_errors, form_values, message
from kopilka.web.tables import PageRequest
from kopilka.web.templating import redirect, render

router = APIRouter(include_in_schema=False)
NEW_KEY_COOKIE = "kopilka_new_key"
READ = Depends(console(Perm.STORES_READ))
WRITE = Depends(console(Perm.STORES_WRITE))


@router.get("/admin/stores")
async def store_list(request: Request, c: Annotated[Console, READ]) -> Response:
    prog = c.need_program()
    pr = PageRequest.of(request, sorts=stores.SORTS, default="code")
    q = request.query_params
    partner = q.get("partner", "")
    rows, total = await stores.list_stores(
        c.rt,
        c.actor,
        prog.id,
        text=q.get("q", ""),
        city=q.get("city", ""),
        partner_id=int(partner) if partner.isdigit() else None,
        sort=pr.sort,
        descending=pr.descending,
        offset=pr.offset,
        limit=pr.limit,
    )
    return render(
        request,
        "org/stores.html",
        {
            "page": pr.page(rows, total),
            "partners": await stores.list_partners(c.rt, c.actor, prog.id),
            "cities": await stores.list_cities(c.rt, c.actor, prog.id),
            "q": dict(q),
        },
    )


async def _form(
    request: Request,
    c: Console,
    *,
    store: stores.StoreRow | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    prog = c.need_program()
    partners = await stores.list_partners(c.rt, c.actor, prog.id)
    return render(
        request,
        "org/store_form.html",
        {
            "store": store,
            "values": values,
            "errors": errors or {},
            "partners": [(p.id, f"{p.name} ({p.code})") for p in partners],
        },
        status=status,
    )


@router.get("/admin/stores/new")
async def store_new(request: Request, c: Annotated[Console, WRITE]) -> Response:
    return await _form(request, c, store=None, values={"timezone": "Europe/Moscow"})


@router.post("/admin/stores/new")
async def store_create(request: Request, c: Annotated[Console, WRITE]) -> Response:
    prog = c.need_program()
    values = await form_values(request)
    try:
        sid = await stores.do_create_store(c.rt, c.actor, prog.id, values)
    except ServiceError as exc:
        if exc.status == 403:
            raise
        errors = field_errors(c, exc, "code")
        return await _form(request, c, store=None, values=values, errors=errors, status=422)
    return redirect(f"/admin/stores/{sid}", flash=message(c, "Store created."))


@router.get("/admin/stores/{store_id}")
async def store_page(request: Request, store_id: int, c: Annotated[Console, READ]) -> Response:
    store = await stores.get_store(c.rt, c.actor, store_id)
    terms = await stores.list_store_terminals(c.rt, c.actor, store_id)
    new_key = None
    raw = request.cookies.get(NEW_KEY_COOKIE)
    if raw:
        tid, _, key = unquote(raw).partition(":")
        match = next((x for x in terms if str(x.id) == tid and key.startswith(x.key_prefix)), None)
        if match is not None:
            new_key = (match, key)
    resp = render(
        request,
        "org/store.html",
        {"store": store, "terminals": terms, "new_key": new_key, "values": {}, "errors": {}},
    )
    if raw:  # shown once: the cookie goes with this answer
        resp.delete_cookie(NEW_KEY_COOKIE, path=f"/admin/stores/{store_id}")
    return resp


@router.get("/admin/stores/{store_id}/edit")
async def store_edit(request: Request, store_id: int, c: Annotated[Console, WRITE]) -> Response:
    store = await stores.get_store(c.rt, c.actor, store_id)
    return await _form(request, c, store=store, values=store.form())


@router.post("/admin/stores/{store_id}/edit")
async def store_update(request: Request, store_id: int, c: Annotated[Console, WRITE]) -> Response:
    store = await stores.get_store(c.rt, c.actor, store_id)
    values = await form_values(request)
    try:
        await stores.do_update_store(c.rt, c.actor, store_id, values)
    except ServiceError as exc:
        if exc.status in (403, 404):
            raise
        errors = field_errors(c, exc, "code")
        return await _form(request, c, store=store, values=values, errors=errors, status=422)
    return redirect(f"/admin/stores/{store_id}", flash=message(c, "Saved."))


@router.post("/admin/stores/{store_id}/terminals")
async def terminal_create(
    request: Request, store_id: int, c: Annotated[Console, WRITE]
) -> Response:
    values = await form_values(request)
    try:
        tid, key = await terminals.do_create_terminal(
            c.rt, c.actor, store_id, values.get("name", "")
        )
    except ServiceError as exc:
        if exc.status in (403, 404):
            raise
        store = await stores.get_store(c.rt, c.actor, store_id)
        terms = await stores.list_store_terminals(c.rt, c.actor, store_id)
        return render(
            request,
            "org/store.html",
            {
                "store": store,
                "terminals": terms,
                "new_key": None,
                "values": values,
                "errors": {"name": message(c, exc)},
            },
            status=422,
        )
    # Post/redirect/get; the key rides to the next page in a short-lived cookie of that
    # page only, which that page deletes: a reload does not show it again.
    resp = redirect(f"/admin/stores/{store_id}")
    resp.set_cookie(
        NEW_KEY_COOKIE,
        quote(f"{tid}:{key}"),
        path=f"/admin/stores/{store_id}",
        max_age=120,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return resp


@router.post("/admin/terminals/{terminal_id}/disable")
async def terminal_disable(
    request: Request, terminal_id: int, c: Annotated[Console, WRITE]
) -> Response:
    store_id = await stores.terminal_store(c.rt, c.actor, terminal_id)
    try:
        await terminals.do_revoke_terminal(c.rt, c.actor, terminal_id)
    except ServiceError as exc:
        if exc.status in (403, 404):
            raise
        return redirect(f"/admin/stores/{store_id}", flash=message(c, exc))
    return redirect(
        f"/admin/stores/{store_id}",
        flash=message(c, "The terminal is disabled; its key no longer works."),
    )
