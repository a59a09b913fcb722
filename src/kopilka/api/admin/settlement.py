"""Admin API: coalition settlement (issue 9, docs/coalition.md), token-authenticated.

- ``GET  /api/admin/v1/settlement/{program}/report?period=YYYY-MM`` (or ``from``/``to``
  days: the open view) ``[&partner=CODE][&format=json|csv|xlsx|pdf]`` — reports.read;
- ``GET  /api/admin/v1/settlement/{program}/periods`` — closed months and the terms;
- ``GET  /api/admin/v1/settlement/{program}/statements/{period}/{partner}.pdf`` — the
  signed statement (``operator`` for the operator's own);
- ``PUT  /api/admin/v1/settlement/{program}/terms`` ``{"rate", "fee_percent"}`` and
  ``POST /api/admin/v1/settlement/{program}/periods/{period}/close`` — programs.write;
- ``PUT  /api/admin/v1/settlement/{program}/partners/{code}`` legal details — stores.write.

A token scoped to a partner (``kopilka admin token add --role partner --partner CODE``)
sees only its partner's position, the obligations it is a side of and its statement;
another partner's (or the operator's) is answered 404, as a partner that does not exist; a
store's staff are refused (403): settlement is a partner's as a whole (ADR 0026).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from kopilka.api.admin.common import ok as _ok
from kopilka.api.admin.common import runtime as _rt
from kopilka.api.admin.common import who
from kopilka.api.admin.routes import ERRORS, SECURITY, _json
from kopilka.domain.roles import Perm
from kopilka.domain.settlement import Party
from kopilka.services import exports, pdf, scope, settlement, settlement_files
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError

router = APIRouter(prefix="/api/admin/v1/settlement", tags=["Admin"])
ALL = -1  # every party: what a caller without a partner scope sees


async def _program(request: Request, code: str, perm: Perm) -> tuple[Actor, settlement.Program]:
    actor, _ = await who(request, code, perm)
    if actor.role == "partner" and actor.partner_id is None:
        raise ServiceError("forbidden", "a partner token must be scoped to its partner")
    scope.require_partner_level(actor)
    return actor, await settlement.find_program(_rt(request), code)


async def _party(request: Request, program: settlement.Program, code: str) -> Party:
    if code == "operator":
        return None
    async with _rt(request).engine.connect() as conn:
        partners = await settlement.load_partners(conn, program.id)
    for p in partners.values():
        if p.code == code:
            return p.id
    raise ServiceError("not_found", f"partner: no partner {code!r}", field="partner")


def _may_see(actor: Actor, prog: settlement.Program, party: Party | int, code: str) -> None:
    """Another partner's (or the operator's) settlement is, to a partner, a partner that does
    not exist: 404, as for any object of another partner (ADR 0026)."""
    partner = None if party == ALL else party
    scope.check_object(
        actor, "partner", repr(code), program_id=prog.id, partner_id=partner, field="partner"
    )


def report_json(rep: settlement.Report, party: Party | int) -> dict[str, Any]:
    c = rep.clearing if party == ALL else settlement.scoped(rep.clearing, party)  # type: ignore[arg-type]

    def s(x: Any) -> str:
        return str(x)

    return {
        "program": rep.program.code,
        "period": rep.period,
        "from": rep.start.isoformat(),
        "to": rep.end.isoformat(),
        "state": "closed" if rep.closed else "open",
        "closed_at": rep.closed_at.isoformat() if rep.closed_at else None,
        "closed_by": rep.closed_by,
        "figures_sha256": rep.figures_sha256,
        "rate": s(c.terms.rate),
        "fee_percent": s(c.terms.fee_percent),
        "positions": [
            {
                "party": rep.code(p.party),
                "name": rep.name(p.party),
                "points": {
                    "issued": s(p.issued),
                    "burned": s(p.burned),
                    "burned_elsewhere": s(p.burned_elsewhere),
                    "expired": s(p.expired),
                    "taken_back": s(p.taken_back),
                    "given_back": s(p.given_back),
                    "adjusted": s(p.adjusted),
                },
                "roubles": {
                    "pays": s(p.pays),
                    "receives": s(p.receives),
                    "fee": s(p.fee),
                    "net": s(p.net),
                },
            }
            for p in c.positions
        ],
        "obligations": [
            {
                "issuer": rep.code(o.issuer),
                "acceptor": rep.code(o.acceptor),
                "points": s(o.points),
                "roubles": s(o.roubles),
                "fee": s(o.fee),
                "to_acceptor": s(o.to_acceptor),
            }
            for o in c.obligations
        ],
        "between": [
            {"a": rep.code(x.a), "b": rep.code(x.b), "points": s(x.points), "roubles": s(x.roubles)}
            for x in c.pairs
        ],
    }


@router.get(
    "/{program}/report",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Clearing report: points issued, burned, expired, refunded; obligations; nets",
)
async def settlement_report(
    request: Request,
    program: str,
    period: Annotated[str | None, Query(max_length=7, description="a month, 2026-11")] = None,
    day_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    day_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    partner: Annotated[str | None, Query(max_length=64, description="only this party")] = None,
    fmt: Annotated[
        str | None,
        Query(alias="format", pattern="^(json|csv|xlsx|pdf)$", description="default json"),
    ] = None,
) -> Response:
    actor, prog = await _program(request, program, Perm.REPORTS_READ)
    rt = _rt(request)
    party: Party | int = ALL if partner is None else await _party(request, prog, partner)
    if actor.partner_id is not None:
        if partner is not None:
            _may_see(actor, prog, party, partner)
        party = actor.partner_id
    if period is not None:
        rep = await settlement.period_report(rt, prog, settlement.parse_period(period))
        name = f"settlement-{prog.code}-{period}"
    elif day_from is not None and day_to is not None:
        first = settlement.parse_day(day_from, field="from")
        last = settlement.parse_day(day_to, field="to")
        rep = await settlement.range_report(rt, prog, first, last)
        name = f"settlement-{prog.code}-{first}-{last}"
    else:
        raise ServiceError(
            "validation_failed", "period: give period or from and to", field="period"
        )
    if fmt in ("csv", "xlsx", "pdf"):
        tables = settlement_files.report_tables(rep, party=party)
        if fmt == "csv":
            body: Any = exports.csv_chunks(tables[0])
        elif fmt == "xlsx":
            body = exports.xlsx_book_chunks(tables)
        else:
            body = iter([settlement_files.report_pdf(rep, party=party, lang="en")])
        media = pdf.PDF_TYPE if fmt == "pdf" else exports.media_type(fmt)
        return StreamingResponse(body, media_type=media, headers=exports.attachment(name, fmt))
    return _ok(report_json(rep, party))


@router.get(
    "/{program}/periods",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Closed months and the terms open months are priced with",
)
async def settlement_periods(request: Request, program: str) -> Response:
    _, prog = await _program(request, program, Perm.REPORTS_READ)
    rt = _rt(request)
    async with rt.engine.connect() as conn:
        terms = await settlement.current_terms(conn, prog)
    closed = await settlement.list_periods(rt, prog.id)
    return _ok(
        {
            "rate": str(terms.rate),
            "fee_percent": str(terms.fee_percent),
            "closed": [{**p, "closed_at": p["closed_at"].isoformat()} for p in closed],
        }
    )


@router.get(
    "/{program}/statements/{period}/{partner}.pdf",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="A party's signed PDF statement (made at close; preliminary while open)",
)
async def settlement_statement(
    request: Request,
    program: str,
    period: str,
    partner: str,
    lang: Annotated[str, Query(pattern="^(ru|en)$")] = "ru",
) -> Response:
    actor, prog = await _program(request, program, Perm.REPORTS_READ)
    month = settlement.parse_period(period)
    party = await _party(request, prog, partner)
    _may_see(actor, prog, party, partner)
    rt = _rt(request)
    data = await settlement.stored_statement(rt, prog, month, party)
    if data is None:
        rep = await settlement.period_report(rt, prog, month)
        data = await settlement_files.signed_statement(rt, rep, party, lang)
    return Response(
        data,
        media_type=pdf.PDF_TYPE,
        headers=exports.attachment(f"statement-{prog.code}-{month}-{partner}", "pdf"),
    )


@router.put(
    "/{program}/terms",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Set the rate (roubles per point; null: point_value) and the operator's fee",
)
async def put_terms(request: Request, program: str) -> Response:
    actor, prog = await _program(request, program, Perm.PROGRAMS_WRITE)
    body = await _json(request)
    if not isinstance(body, dict) or set(body) - {"rate", "fee_percent"}:
        raise ServiceError(
            "validation_failed", "body: an object with rate and fee_percent", field="body"
        )
    rate = None if body.get("rate") is None else settlement.parse_rate(body["rate"])
    fee = settlement.parse_fee(body.get("fee_percent", "0"))
    terms = await settlement.do_set_terms(
        _rt(request), prog, rate=rate, fee_percent=fee, actor=actor
    )
    return _ok({"rate": str(terms.rate), "fee_percent": str(terms.fee_percent)})


@router.post(
    "/{program}/periods/{period}/close",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Close a finished month: freeze its figures and sign each party's statement",
)
async def close_period(
    request: Request,
    program: str,
    period: str,
    lang: Annotated[str, Query(pattern="^(ru|en)$")] = "ru",
) -> Response:
    actor, prog = await _program(request, program, Perm.PROGRAMS_WRITE)
    rt = _rt(request)
    rep = await settlement.do_close(
        rt,
        prog,
        settlement.parse_period(period),
        actor=actor,
        statements=settlement_files.statement_maker(rt, lang),
    )
    return _ok(report_json(rep, ALL), status=201)


@router.put(
    "/{program}/partners/{code}",
    responses=ERRORS,
    openapi_extra=SECURITY,
    summary="Set a partner's legal details (printed on its statements)",
)
async def put_partner_legal(request: Request, program: str, code: str) -> Response:
    actor, prog = await _program(request, program, Perm.STORES_WRITE)
    body = await _json(request)
    if not isinstance(body, dict):
        raise ServiceError("validation_failed", "body: an object of legal details", field="body")
    party = await _party(request, prog, code)
    if party is None:
        raise ServiceError("validation_failed", "partner: the operator has no legal record")
    rt = _rt(request)
    await settlement.do_set_legal(rt, prog, party, body, actor=actor)
    async with rt.engine.connect() as conn:
        p = (await settlement.load_partners(conn, prog.id))[party]
    return _ok({"code": p.code, "name": p.name, **p.legal})
