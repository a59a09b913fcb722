"""The territorial map: /admin/reports/map (Leaflet, drawn by /static/console/map.js from
/admin/reports/map.json and the shipped regions GeoJSON), with its downloads
/admin/reports/map.csv (regions), .xlsx (the picture and every table), .pdf and .png.

The optional tile layer (``KOPILKA_MAP_TILES``) needs its host in the page's CSP
``img-src``; the page adds it, and only then."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Annotated
from urllib.parse import urlencode, urlsplit

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response, StreamingResponse

from kopilka.analytics import map as amap
from kopilka.analytics import map_files, map_out
from kopilka.domain import territory
from kopilka.domain.roles import Perm
from kopilka.services import exports
from kopilka.services.errors import ServiceError
from kopilka.web import i18n
from kopilka.web.auth import Console, console
from kopilka.web.templating import SECURITY_HEADERS, lang_of, render

router = APIRouter(include_in_schema=False)
READ = Depends(console(Perm.REPORTS_READ))

RU: dict[str, str] = {
    **map_out.RU,
    "Where members are, by region and store; members far from every store.": (
        "Где участники: по регионам и магазинам; участники далеко от всех магазинов."
    ),
    "From": "С",
    "To": "По",
    "Colour regions by": "Цвет регионов по",
    "Far from a store, km": "Далеко от магазина, км",
    "Show": "Показать",
    "Export CSV": "Выгрузить CSV",
    "Export Excel": "Выгрузить Excel",
    "Export PDF": "Экспорт PDF",
    "Members are placed at their home store, or else at the store of most of their purchases.": (
        "Участник относится к своему домашнему магазину, а без него — к магазину, "
        "где он покупал чаще всего."
    ),
    "Members with neither a home store nor a purchase (not on the map)": (
        "Участники без домашнего магазина и без покупок (не на карте)"
    ),
    "Far members are based on the city in the member's profile.": (
        "Далёкие участники — по городу в профиле участника."
    ),
    "Members with a city": "Участников с городом",
    "cities not recognised": "город не распознан",
    "No member has a city in their profile, so members far from stores cannot be shown.": (
        "Ни у одного участника не указан город, поэтому участников далеко от магазинов "
        "показать нельзя."
    ),
    "Where to open a store": "Где открыть магазин",
    "Towns whose members live farther than": "Населённые пункты, где участники живут дальше",
    "km from every store": "км от любого магазина",
    "No members live that far from a store.": "Так далеко от магазинов никто не живёт.",
    "Store not placed on a region": "Магазин без региона",
    "Stores whose region is not recognised": "Магазины с нераспознанным регионом",
    "Loading the map…": "Загрузка карты…",
    "Sales are the amounts of confirmed receipts in the period, before refunds.": (
        "Продажи — суммы подтверждённых чеков за период, без учёта возвратов."
    ),
    "Members far from stores (heat)": "Участники далеко от магазинов (тепловая карта)",
    "Tiles": "Подложка",
}
i18n.add(RU, area="reports")


@dataclass(frozen=True)
class Query:
    start: str
    end: str
    measure: str
    far_km: str

    @classmethod
    def of(cls, request: Request) -> Query:
        q = request.query_params
        measure = q.get("measure", "members")
        return cls(
            q.get("from", ""),
            q.get("to", ""),
            measure if measure in territory.MEASURES else "members",
            q.get("far_km", ""),
        )

    @property
    def values(self) -> dict[str, str]:
        return {"from": self.start, "to": self.end, "measure": self.measure, "far_km": self.far_km}

    def string(self) -> str:
        return urlencode(
            {"from": self.start, "to": self.end, "measure": self.measure, "far_km": self.far_km}
        )


async def _report(c: Console, q: Query) -> amap.MapReport:
    prog = c.need_program()
    period = amap.parse_period(q.start, q.end, today=c.rt.now().astimezone(UTC).date())
    far_km = amap.parse_far_km(q.far_km)
    return await amap.compute(c.rt, c.actor, prog.id, period=period, far_km=far_km)


def _csp(tiles: dict[str, str] | None) -> dict[str, str]:
    """The page's CSP with the tile server allowed as an image source ("{s}." as "*.")."""
    if tiles is None:
        return {}
    parts = urlsplit(tiles["url"])
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return {}
    host = f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"
    csp = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "img-src 'self' data:", f"img-src 'self' data: {host}"
    )
    return {"Content-Security-Policy": csp}


@router.get("/admin/reports/map")
async def map_page(request: Request, c: Annotated[Console, READ]) -> Response:
    q = Query.of(request)
    try:
        report = await _report(c, q)
    except ServiceError as exc:
        errors = {exc.field or "from": exc.detail}
        ctx = {
            "q": q,
            "errors": errors,
            "report": None,
            "measures": territory.MEASURES,
            "measure_labels": map_out.MEASURE_LABELS,
        }
        return render(request, "reports/map.html", ctx, status=422)
    lang = lang_of(request)
    ctx = {
        "q": q,
        "errors": {},
        "report": report,
        "measures": territory.MEASURES,
        "measure_labels": map_out.MEASURE_LABELS,
        "regions": sorted(
            (r for r in report.regions if r.stores > 0), key=lambda r: (-r.members, r.iso)
        ),
        "region_name": lambda iso: amap.region_name(iso, lang),
        "unlocated": [s for s in report.stores if s.region_iso is None],
        "stores_by_id": {s.id: s for s in report.stores},
        "query": q.string(),
    }
    return render(request, "reports/map.html", ctx, headers=_csp(map_out.tiles()))


@router.get("/admin/reports/map.json")
async def map_json(request: Request, c: Annotated[Console, READ]) -> Response:
    report = await _report(c, Query.of(request))
    body = orjson.dumps(map_out.to_json(report, lang_of(request)))
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/admin/reports/map.{fmt}")
async def map_file(request: Request, fmt: str, c: Annotated[Console, READ]) -> Response:
    if fmt not in ("csv", "xlsx", "pdf", "png"):
        raise HTTPException(404, f"no such export: {fmt}")
    q = Query.of(request)
    report = await _report(c, q)
    lang = lang_of(request)
    name = f"map-{report.period.start}-{report.period.end}"
    if fmt == "csv":
        table = map_out.tables(report, lang)[0]
        return StreamingResponse(
            exports.csv_chunks(table),
            media_type=exports.CSV_TYPE,
            headers=exports.attachment(name, "csv"),
        )
    if fmt == "xlsx":
        data = await map_files.xlsx_bytes(report, measure=q.measure, lang=lang)
        media = exports.XLSX_TYPE
    elif fmt == "pdf":
        data = await map_files.pdf_bytes(report, measure=q.measure, lang=lang)
        media = map_files.PDF_TYPE
    else:
        data = await map_files.png_bytes(report, measure=q.measure, lang=lang)
        media = map_files.PNG_TYPE
    return Response(data, media_type=media, headers=exports.attachment(name, fmt))
