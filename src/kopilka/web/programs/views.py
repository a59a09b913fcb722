"""Programs, promotions, versions and the simulator (docs/console/programs.md).

Readers (programs.read) see everything read-only; saving, deleting and rolling back
need programs.write (a POST without it is a 403 page).  Every change goes through
``services.program_editor`` (a new program version plus its audit row).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import yaml  # type: ignore[import-untyped]
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import Response

from kopilka.api.admin.schemas import SimulateIn, to_simulation
from kopilka.domain.roles import Perm
from kopilka.domain.rules.model import (
    WEEKDAYS,
    ProgramDoc,
    Promotion,
    error_path,
)
from kopilka.services import offline, programs
from kopilka.services import program_editor as editor
from kopilka.services.errors import ServiceError
from kopilka.store import tables as t
from kopilka.web import i18n
from kopilka.web.auth import Console, ProgramRef, console
from kopilka.web.programs import form as pf
from kopilka.web.programs.strings import KIND_LABELS, PARAM_LABELS
from kopilka.web.tables import PageRequest
from kopilka.web.templating import is_htmx, redirect, render

router = APIRouter(include_in_schema=False)
Reader = Annotated[Console, Depends(console(Perm.PROGRAMS_READ))]
Writer = Annotated[Console, Depends(console(Perm.PROGRAMS_WRITE))]
Simulator = Annotated[Console, Depends(console(Perm.SIMULATE))]


def _ref(c: Console, code: str) -> ProgramRef:
    """A program this user may see (404 otherwise, like a program that does not exist)."""
    for p in c.programs:
        if p.code == code:
            return p
    raise programs.not_found(code)


async def _doc(c: Console, code: str) -> tuple[int, ProgramDoc]:
    version, raw = await programs.current(c.rt, code)
    return version, programs.check_document(raw)


def _form(data: FormData) -> tuple[dict[str, str], list[str]]:
    values = {k: v for k, v in data.items() if isinstance(v, str) and k != "csrf"}
    weekdays = [str(x) for x in data.getlist("sched_weekday") if x in WEEKDAYS]
    return values, weekdays


# --- the programs list and a program's page ----------------------------------------------


@router.get("/admin/programs")
async def programs_list(request: Request, c: Reader) -> Response:
    pr = PageRequest.of(request, sorts=("code", "name", "version"), default="code")
    visible = {p.id for p in c.programs}
    rows = [p for p in await programs.list_programs(c.rt) if p.id in visible]
    rows.sort(key=lambda p: getattr(p, pr.sort), reverse=pr.descending)
    page = pr.page(rows[pr.offset : pr.offset + pr.limit], len(rows))
    return render(request, "programs/list.html", {"page": page})


PROMO_SORTS = ("name", "priority", "starts_at", "ends_at", "status")


@router.get("/admin/programs/{code}")
async def program_page(request: Request, code: str, c: Reader) -> Response:
    ref = _ref(c, code)
    pr = PageRequest.of(
        request, sorts=PROMO_SORTS, default="priority", default_dir="desc", per_page=25
    )
    status = request.query_params.get("status", "")
    got = await editor.promotions_page(
        c.rt,
        code,
        sort=pr.sort,
        descending=pr.descending,
        offset=pr.offset,
        limit=pr.limit,
        status=status,
    )
    versions = (await programs.versions(c.rt, code))[-5:][::-1]
    ctx = {
        "code": code,
        "doc": got.doc,
        "version": got.version,
        "page": pr.page(got.rows, got.total),
        "status": status,
        "statuses": editor.STATUSES,
        "versions": versions,
        "can_write": c.can(Perm.PROGRAMS_WRITE),
        "kind_labels": KIND_LABELS,
        # offline burn (ADR 0030): the public keys tills need, what reached the center
        "offline_keys": await offline.public_keys(c.rt, program_id=ref.id),
        "offline_reused": await offline.count_reused(c.rt, program_id=ref.id),
    }
    return render(request, "programs/program.html", ctx)


@router.get("/admin/programs/{code}/edit")
async def program_edit(request: Request, code: str, c: Writer) -> Response:
    _ref(c, code)
    version, raw = await programs.current(c.rt, code)
    ctx = {"code": code, "version": version, "text": _yaml_of(raw), "problems": []}
    return render(request, "programs/edit.html", ctx)


@router.post("/admin/programs/{code}/edit")
async def program_apply(request: Request, code: str, c: Writer) -> Response:
    _ref(c, code)
    form = await request.form()
    text = str(form.get("document", ""))
    problems: list[dict[str, Any]] = []
    try:
        data = _read_yaml(text, what="a program document is a mapping (code, name, ...)")
        new = await editor.apply_document(c.rt, c.actor, code, data)
    except pf.FormInvalid as exc:
        problems = [{"field": "", "detail": m} for m in exc.errors.values()]
    except programs.ProgramError as exc:
        if exc.code != "invalid_program":
            raise
        problems = list(exc.extra.get("errors", []))
    else:
        msg = f"Saved as version {new}." if c.lang == "en" else f"Сохранено как версия {new}."
        return redirect(f"/admin/programs/{code}", flash=msg)
    version, _ = await programs.current(c.rt, code)
    ctx = {"code": code, "version": version, "text": text, "problems": problems}
    return render(request, "programs/edit.html", ctx, status=422)


# --- promotions ----------------------------------------------------------------------------


def _form_ctx(
    c: Console,
    code: str,
    doc: ProgramDoc,
    state: pf.FormState,
    *,
    creating: bool,
    promotion: Promotion | None = None,
    yaml_text: str = "",
) -> dict[str, Any]:
    return {
        "code": code,
        "doc": doc,
        "s": state,
        "v": state.values,
        "errors": state.errors,
        "creating": creating,
        "promotion": promotion,
        "preview": editor.describe(promotion, doc) if promotion is not None else None,
        "status": editor.status_of(promotion, c.rt.now()) if promotion is not None else "",
        "yaml_text": yaml_text,
        "can_write": c.can(Perm.PROGRAMS_WRITE),
        "ck": pf.CONDITION_KINDS,
        "lk": pf.LINE_KINDS,
        "ek": pf.EFFECT_KINDS,
        "shape_params": pf.SHAPE_PARAMS,
        "effect_params": pf.EFFECT_PARAM_NAMES,
        "kinds_using": pf.kinds_using,
        "ckinds_using": pf.condition_kinds_using,
        "periods": pf.PERIODS,
        "limit_rows": range(pf.LIMIT_ROWS),
        "weekdays": WEEKDAYS,
        "kind_labels": KIND_LABELS,
        "param_labels": PARAM_LABELS,
    }


def _yaml_of(p: dict[str, Any]) -> str:
    return str(yaml.safe_dump(p, allow_unicode=True, sort_keys=False))


def _find(doc_json: dict[str, Any], pid: str) -> dict[str, Any]:
    for p in doc_json.get("promotions", []):
        if p.get("id") == pid:
            found: dict[str, Any] = p
            return found
    raise programs.ProgramError("promotion_not_found", f"no promotion {pid!r}", field="id")


@router.get("/admin/programs/{code}/promotions/new")
async def promotion_new(request: Request, code: str, c: Writer) -> Response:
    _ref(c, code)
    _, doc = await _doc(c, code)
    state = pf.new_form()
    return render(request, "programs/promotion.html", _form_ctx(c, code, doc, state, creating=True))


@router.get("/admin/programs/{code}/promotions/{pid}")
async def promotion_page(request: Request, code: str, pid: str, c: Reader) -> Response:
    _ref(c, code)
    _, raw = await programs.current(c.rt, code)
    doc = programs.check_document(raw)
    p_json = _find(raw, pid)
    state = pf.from_promotion(p_json, doc.timezone)
    promotion = next(p for p in doc.promotions if p.id == pid)
    ctx = _form_ctx(
        c, code, doc, state, creating=False, promotion=promotion, yaml_text=_yaml_of(p_json)
    )
    return render(request, "programs/promotion.html", ctx)


def _read_yaml(
    text: str, what: str = "a promotion is a mapping (id, name, effects, ...)"
) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise pf.FormInvalid({"yaml": f"not valid YAML or JSON{where}"}) from None
    if not isinstance(data, dict):
        raise pf.FormInvalid({"yaml": what})
    # Dates and decimals as the JSON document has them.
    out: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return out


async def _save(request: Request, c: Console, code: str, pid: str | None) -> Response:
    _ref(c, code)
    _, doc = await _doc(c, code)
    values, weekdays = _form(await request.form())
    creating = pid is None
    if pid is not None:
        values["id"] = pid  # an existing promotion keeps its id
    use_yaml = values.get("mode") == "yaml"
    built: pf.Built | None = None
    try:
        if use_yaml:
            data = _read_yaml(values.get("yaml", ""))
            if pid is not None:
                data["id"] = pid
            built = pf.Built(data, {})
        else:
            built = pf.to_promotion(values, weekdays, doc.timezone)
        await editor.save_promotion(c.rt, c.actor, code, built.promotion, create=creating)
    except pf.FormInvalid as exc:
        errors = exc.errors
    except programs.ProgramError as exc:
        if exc.code != "invalid_program":
            raise
        problems = exc.extra.get("errors", [])
        if use_yaml:
            errors = {"yaml": "; ".join(f"{e['field']}: {e['detail']}" for e in problems)}
        else:
            assert built is not None
            errors = pf.errors_by_field(problems, built.fields)
    else:
        saved = str(built.promotion.get("id"))
        return redirect(
            f"/admin/programs/{code}/promotions/{saved}",
            flash=f"Promotion {saved} saved." if c.lang == "en" else f"Акция {saved} сохранена.",
        )
    state = pf.state_of(values, weekdays)
    state.errors = errors
    promotion = None
    if not creating:
        promotion = next((p for p in doc.promotions if p.id == pid), None)
    ctx = _form_ctx(
        c,
        code,
        doc,
        state,
        creating=creating,
        promotion=promotion,
        yaml_text=values.get("yaml", ""),
    )
    ctx["open_yaml"] = use_yaml
    return render(request, "programs/promotion.html", ctx, status=422)


@router.post("/admin/programs/{code}/promotions/new")
async def promotion_create(request: Request, code: str, c: Writer) -> Response:
    return await _save(request, c, code, None)


@router.post("/admin/programs/{code}/promotions/{pid}")
async def promotion_update(request: Request, code: str, pid: str, c: Writer) -> Response:
    return await _save(request, c, code, pid)


@router.post("/admin/programs/{code}/promotions/{pid}/delete")
async def promotion_delete(request: Request, code: str, pid: str, c: Writer) -> Response:
    _ref(c, code)
    form = await request.form()
    confirm = str(form.get("confirm", ""))
    try:
        await editor.delete_promotion(c.rt, c.actor, code, pid, confirm=confirm)
    except programs.ProgramError as exc:
        if exc.code != "not_confirmed":
            raise
        return redirect(f"/admin/programs/{code}/promotions/{pid}", flash=exc.detail)
    return redirect(
        f"/admin/programs/{code}",
        flash=f"Promotion {pid} deleted." if c.lang == "en" else f"Акция {pid} удалена.",
    )


@router.post("/admin/programs/{code}/preview")
async def promotion_preview(request: Request, code: str, c: Reader) -> Response:
    """The plain-words preview of the form as typed (htmx swaps it in as one types)."""
    _ref(c, code)
    _, doc = await _doc(c, code)
    values, weekdays = _form(await request.form())
    preview: dict[str, str] | None = None
    problems: list[str] = []
    try:
        built = pf.to_promotion(values, weekdays, doc.timezone)
        if not built.promotion.get("id"):
            built.promotion["id"] = "preview"
        if not built.promotion.get("name"):
            built.promotion["name"] = "preview"
        preview = editor.describe(Promotion.model_validate(built.promotion), doc)
    except pf.FormInvalid as exc:
        problems = list(exc.errors.values())
    except ValidationError as exc:
        problems = sorted({f"{error_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()})
    return render(request, "programs/_preview.html", {"preview": preview, "problems": problems[:3]})


# --- versions, diff, roll-back ---------------------------------------------------------------


@router.get("/admin/programs/{code}/versions")
async def versions_page(request: Request, code: str, c: Reader) -> Response:
    _ref(c, code)
    pr = PageRequest.of(
        request, sorts=("version", "author", "created_at"), default="version", default_dir="desc"
    )
    rows = await programs.versions(c.rt, code)
    current = rows[-1].version if rows else 0
    rows.sort(key=lambda v: getattr(v, pr.sort), reverse=pr.descending)
    page = pr.page(rows[pr.offset : pr.offset + pr.limit], len(rows))
    q = request.query_params
    changes: list[programs.Change] | None = None
    a = b = 0
    problem = ""
    if q.get("from") and q.get("to"):
        try:
            a, b = int(q["from"]), int(q["to"])
            changes = await programs.diff(c.rt, code, a, b)
        except ValueError:
            problem = "Pick two versions to compare."
        except programs.ProgramError as exc:
            problem = exc.detail
    return render(
        request,
        "programs/versions.html",
        {
            "code": code,
            "page": page,
            "current": current,
            "changes": changes,
            "a": a,
            "b": b,
            "problem": problem,
            "can_write": c.can(Perm.PROGRAMS_WRITE),
            "show": _show,
        },
    )


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@router.post("/admin/programs/{code}/rollback")
async def rollback(request: Request, code: str, c: Writer) -> Response:
    _ref(c, code)
    form = await request.form()
    try:
        version = int(str(form.get("version", "")))
    except ValueError:
        return redirect(f"/admin/programs/{code}/versions", flash="Pick a version.")
    try:
        new = await editor.rollback(
            c.rt, c.actor, code, version, confirm=str(form.get("confirm", ""))
        )
    except programs.ProgramError as exc:
        if exc.code not in ("not_confirmed", "version_not_found", "invalid_program"):
            raise
        return redirect(f"/admin/programs/{code}/versions", flash=exc.detail)
    msg = (
        f"Rolled back to version {version}: now version {new}."
        if c.lang == "en"
        else f"Возврат к версии {version}: теперь версия {new}."
    )
    return redirect(f"/admin/programs/{code}/versions", flash=msg)


# --- the simulator -----------------------------------------------------------------------------

SIM_LINES = 3


async def _stores(c: Console, program_id: int) -> list[tuple[str, str]]:
    from sqlalchemy import select

    s = t.stores
    async with c.rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(s.c.code, s.c.name).where(s.c.program_id == program_id).order_by(s.c.code)
            )
        ).all()
    return [(r.code, f"{r.name} ({r.code})" if r.name else r.code) for r in rows]


def _sim_indexes(values: dict[str, str]) -> list[int]:
    idx = sorted({int(k[4:].split("_")[0]) for k in values if k.startswith("line") and "_" in k})
    return idx or list(range(SIM_LINES))


def _sim_body(
    values: dict[str, str], program: str, tz: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The admin API's SimulateIn body from the form; (body, body path -> form field)."""
    fields: dict[str, str] = {}
    lines: list[dict[str, str]] = []
    for i in _sim_indexes(values):
        sku = values.get(f"line{i}_sku", "").strip()
        price = values.get(f"line{i}_price", "").strip()
        if not sku and not price:
            continue
        n = len(lines)
        for name in ("sku", "category", "price", "quantity", "name"):
            fields[f"lines[{n}].{name}"] = f"line{i}_{name}"
        fields[f"lines[{n}]"] = f"line{i}_price"
        line = {
            "sku": sku,
            "name": values.get(f"line{i}_name", "").strip() or sku,
            "price": price,
            "quantity": values.get(f"line{i}_quantity", "").strip() or "1",
        }
        cat = values.get(f"line{i}_category", "").strip()
        if cat:
            line["category"] = cat
        lines.append(line)
    fields["lines"] = "line0_sku"
    body: dict[str, Any] = {"program": program, "lines": lines}
    if values.get("store"):
        body["store"] = values["store"]
    if values.get("at", "").strip():
        try:
            at = datetime.fromisoformat(values["at"].strip())
        except ValueError:
            raise pf.FormInvalid({"at": "not a date and time"}) from None
        if at.tzinfo is None:
            from zoneinfo import ZoneInfo

            at = at.replace(tzinfo=ZoneInfo(tz))
        body["at"] = at.isoformat()
    who = values.get("who", "described")
    if who == "identifier":
        body["identifier"] = values.get("identifier", "").strip()
        fields["identifier"] = "identifier"
    elif who == "described":
        cust: dict[str, Any] = {}
        if values.get("tier"):
            cust["tier"] = values["tier"]
        for name in ("tags", "segments", "offers"):
            items = pf._split(values.get(name, ""))
            if items:
                cust[name] = items
        for name in ("birthday", "available", "rfm"):
            if values.get(name, "").strip():
                cust[name] = values[name].strip()
        if values.get("purchases", "").strip():
            cust["purchases"] = values["purchases"].strip()
        body["customer"] = cust
        for name in ("tier", "tags", "segments", "offers", "birthday", "available", "purchases"):
            fields[f"customer.{name}"] = name
    if values.get("redeem", "").strip():
        body["redeem_points"] = values["redeem"].strip()
        fields["redeem_points"] = "redeem"
    coupons = pf._split(values.get("coupons", ""))
    if coupons:
        body["coupons"] = coupons
    if values.get("gift_card_payment") == "1":
        body["gift_card_payment"] = True
    return body, fields


@router.get("/admin/simulator")
async def simulator(request: Request, c: Simulator) -> Response:
    return await _simulator_page(request, c, None)


@router.post("/admin/simulator")
async def simulator_run(request: Request, c: Simulator) -> Response:
    values, _ = _form(await request.form())
    return await _simulator_page(request, c, values)


async def _simulator_page(request: Request, c: Console, values: dict[str, str] | None) -> Response:
    ref = c.need_program()
    version, doc = await _doc(c, ref.code)
    result: dict[str, Any] | None = None
    errors: dict[str, str] = {}
    if values is not None:
        try:
            body, fields = _sim_body(values, ref.code, doc.timezone)
            if not body["lines"]:
                raise pf.FormInvalid({"line0_sku": "add at least one line (sku and price)"})
            try:
                sim = SimulateIn.model_validate_json(json.dumps(body))
            except ValidationError as exc:
                problems = [
                    {"field": error_path(tuple(e["loc"])), "detail": e["msg"]} for e in exc.errors()
                ]
                raise pf.FormInvalid(_sim_errors(problems, fields)) from None
            result = await programs.simulate(c.rt, to_simulation(sim))
        except pf.FormInvalid as exc:
            errors = exc.errors
        except ServiceError as exc:
            problems = exc.extra.get("errors") or [{"field": exc.field or "", "detail": exc.detail}]
            errors = _sim_errors(problems, fields)
    values = values or {"who": "described", "line0_quantity": "1"}
    ctx = {
        "v": values,
        "errors": errors,
        "result": result,
        "doc": doc,
        "version": version,
        "code": ref.code,
        "stores": await _stores(c, ref.id),
        "line_rows": _sim_indexes(values),
        "names": {
            "base_earn": _("base earn rate", c.lang),
            **{p.id: p.name for p in doc.promotions},
        },
        "tiers": {x.code: x.name for x in (doc.tiers.levels if doc.tiers else ())},
        "dec": Decimal,
    }
    status = 422 if errors and not is_htmx(request) else 200
    return render(request, "programs/simulator.html", ctx, status=status)


def _(text: str, lang: str) -> str:
    return i18n.gettext(lang, text)


def _sim_errors(problems: list[dict[str, Any]], fields: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for prob in problems:
        path = str(prob.get("field", ""))
        name = pf.field_of(path, fields) or fields.get(path, "")
        msg = str(prob.get("detail", "")).removeprefix("Value error, ")
        if not name:
            msg = f"{path}: {msg}" if path else msg
        out[name] = out[name] + "; " + msg if name in out and msg not in out[name] else msg
    return out
