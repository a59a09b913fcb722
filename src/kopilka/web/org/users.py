"""Console users and their roles: /admin/users (the owner's page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain.roles import NEEDS_PARTNER, NEEDS_STORE, Perm, Role
from kopilka.services import programs, stores, users
from kopilka.services.errors import ServiceError
from kopilka.web.auth import Console, console
from kopilka.web.org.common import form_values, message, opt_int
from kopilka.web.tables import PageRequest
from kopilka.web.templating import redirect, render

router = APIRouter(include_in_schema=False)
MANAGE = Depends(console(Perm.USERS_MANAGE))


@router.get("/admin/users")
async def user_list(request: Request, c: Annotated[Console, MANAGE]) -> Response:
    pr = PageRequest.of(request, sorts=users.USER_SORTS, default="login")
    q = request.query_params
    rows, total = await users.list_users_page(
        c.rt,
        c.actor,
        text=q.get("q", ""),
        role=q.get("role", "") if q.get("role", "") in list(Role) else "",
        sort=pr.sort,
        descending=pr.descending,
        offset=pr.offset,
        limit=pr.limit,
    )
    return render(
        request,
        "org/users.html",
        {"page": pr.page(rows, total), "q": dict(q), "roles": [r.value for r in Role]},
    )


async def _choices(c: Console) -> dict[str, object]:
    prog = c.need_program()
    partners = await stores.list_partners(c.rt, c.actor, prog.id)
    store_rows, _ = await stores.list_stores(c.rt, c.actor, prog.id, limit=2000)
    programs = [(p.id, p.name) for p in c.programs]
    return {
        "roles": [(r.value, r.value) for r in Role],
        "partners": [(p.id, f"{p.name} ({p.code})") for p in partners],
        "stores": [(s.id, f"{s.name} ({s.code})") for s in store_rows],
        "programs": programs,
        "program_choice": c.actor.program_id is None,
    }


async def _new_form(
    request: Request,
    c: Console,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    ctx = {"values": values, "errors": errors or {}, **await _choices(c)}
    return render(request, "org/user_new.html", ctx, status=status)


@router.get("/admin/users/new")
async def user_new(request: Request, c: Annotated[Console, MANAGE]) -> Response:
    prog = c.need_program()
    return await _new_form(
        request, c, {"role": "support", "locale": c.lang, "program": str(prog.id)}
    )


def _scope_from(values: dict[str, str], c: Console) -> tuple[int | None, int | None, int | None]:
    program = opt_int(values.get("program")) if c.actor.program_id is None else None
    if c.actor.program_id is None and "program" not in values and c.program is not None:
        program = c.program.id
    return program, opt_int(values.get("partner")), opt_int(values.get("store"))


@router.post("/admin/users/new")
async def user_create(request: Request, c: Annotated[Console, MANAGE]) -> Response:
    values = await form_values(request)
    program, partner, store = _scope_from(values, c)
    try:
        email = (values.get("email") or "").strip() or None
        if email is not None and ("@" not in email or " " in email or len(email) > 254):
            raise ServiceError("validation_failed", "not an e-mail address", field="email")
        program, partner, store = await users.check_user_scope(
            c.rt,
            c.actor,
            role=values.get("role", ""),
            program_id=program,
            partner_id=partner,
            store_id=store,
        )
        uid = await users.do_create_user(
            c.rt,
            c.actor,
            login=values.get("login", ""),
            name=values.get("name", ""),
            password=values.get("password", ""),
            role=values.get("role", ""),
            email=email,
            program_id=program,
            partner_id=partner,
            store_id=store,
            locale=values.get("locale", "ru"),
        )
    except ServiceError as exc:
        values.pop("password", None)
        errors = {exc.field or "login": message(c, exc)}
        return await _new_form(request, c, values, errors, status=422)
    return redirect(f"/admin/users/{uid}", flash=message(c, "User created."))


async def _user_page(
    request: Request,
    c: Console,
    user_id: int,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    user = await users.get_managed_user(c.rt, c.actor, user_id)
    form = {
        "name": user.name,
        "email": user.email or "",
        "role": user.role,
        "partner": str(user.partner_id or ""),
        "store": str(user.store_id or ""),
        "locale": user.locale,
    }
    now = c.rt.now()
    locked = user.locked_until is not None and user.locked_until > now
    ctx = {
        "user": user,
        "locked": locked,
        "values": values if values is not None else form,
        "errors": errors or {},
        "is_self": user.id == c.user.id,
        **await _choices(c),
        **await _grants(c, user),
    }
    return render(request, "org/user.html", ctx, status=status)


async def _grants(c: Console, user: users.User) -> dict[str, object]:
    """The programs a manager of every program may grant this user (issue 9): none for a
    partner's or a store's staff, who work in their partner's or store's program."""
    if c.actor.program_id is not None or Role(user.role) in NEEDS_PARTNER | NEEDS_STORE:
        return {"grantable": []}
    granted = await users.granted_programs(c.rt, user) or frozenset()
    rows = await programs.list_programs(c.rt)
    return {
        "grantable": [
            (p.id, p.code, p.name, p.id in granted, p.id == user.program_id) for p in rows
        ]
    }


@router.post("/admin/users/{user_id}/programs")
async def user_programs(request: Request, user_id: int, c: Annotated[Console, MANAGE]) -> Response:
    """Grant the checked programs (besides the user's own); the user's sessions end."""
    user = await users.get_managed_user(c.rt, c.actor, user_id)
    form = await request.form()
    ids = {int(v) for v in form.getlist("program") if isinstance(v, str) and v.isdigit()}
    ids.discard(user.program_id or 0)
    try:
        await users.do_grant_programs(c.rt, c.actor, user_id, ids)
    except ServiceError as exc:
        return redirect(f"/admin/users/{user_id}", flash=message(c, exc))
    return redirect(f"/admin/users/{user_id}", flash=message(c, "Programs granted."))


@router.get("/admin/users/{user_id}")
async def user_page(request: Request, user_id: int, c: Annotated[Console, MANAGE]) -> Response:
    return await _user_page(request, c, user_id)


@router.post("/admin/users/{user_id}")
async def user_update(request: Request, user_id: int, c: Annotated[Console, MANAGE]) -> Response:
    user = await users.get_managed_user(c.rt, c.actor, user_id)
    values = await form_values(request)
    role = values.get("role", user.role)
    try:
        _, partner, store = await users.check_user_scope(
            c.rt,
            c.actor,
            role=role,
            program_id=user.program_id,
            partner_id=opt_int(values.get("partner")),
            store_id=opt_int(values.get("store")),
        )
        same_scope = (role, partner, store) == (user.role, user.partner_id, user.store_id)
        name = values.get("name", "")
        if not name.strip():
            raise ServiceError("validation_failed", "the person's name is required", field="name")
        await users.do_set_email(c.rt, c.actor, user_id, values.get("email"))
        await users.do_update_user(
            c.rt,
            c.actor,
            user_id,
            name=name if name.strip() != user.name else None,
            role=None if same_scope else role,
            partner_id=partner,
            store_id=store,
            locale=values.get("locale") if values.get("locale") != user.locale else None,
        )
    except ServiceError as exc:
        if exc.status == 404:
            raise
        errors = {exc.field or "role": message(c, exc)}
        return await _user_page(request, c, user_id, values, errors, status=422)
    return redirect(f"/admin/users/{user_id}", flash=message(c, "Saved."))


@router.post("/admin/users/{user_id}/active")
async def user_active(request: Request, user_id: int, c: Annotated[Console, MANAGE]) -> Response:
    await users.get_managed_user(c.rt, c.actor, user_id)
    values = await form_values(request)
    active = values.get("active") == "1"
    try:
        await users.do_update_user(c.rt, c.actor, user_id, active=active)
    except ServiceError as exc:
        return redirect(f"/admin/users/{user_id}", flash=message(c, exc))
    text = "The user is enabled." if active else "The user is disabled; their sessions ended."
    return redirect(f"/admin/users/{user_id}", flash=message(c, text))


@router.post("/admin/users/{user_id}/password")
async def user_password(request: Request, user_id: int, c: Annotated[Console, MANAGE]) -> Response:
    await users.get_managed_user(c.rt, c.actor, user_id)
    values = await form_values(request)
    try:
        await users.do_update_user(c.rt, c.actor, user_id, password=values.get("password", ""))
    except ServiceError as exc:
        if exc.status == 404:
            raise
        errors = {"password": message(c, exc)}
        return await _user_page(request, c, user_id, None, errors, status=422)
    return redirect(
        f"/admin/users/{user_id}",
        flash=message(c, "The password is changed; the user's sessions ended."),
    )


@router.post("/admin/users/{user_id}/unlock")
async def user_unlock(request: Request, user_id: int, c: Annotated[Console, MANAGE]) -> Response:
    await users.do_unlock_user(c.rt, c.actor, user_id)
    return redirect(f"/admin/users/{user_id}", flash=message(c, "The login is unlocked."))
