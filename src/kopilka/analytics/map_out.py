"""What the territorial map report gives out: the export's tables, the JSON the console's
map and the admin API show, and the choropleth scale both use (``scales``), so the page,
the PNG and the spreadsheet colour a region alike."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from kopilka.analytics.map import MapReport, region_name
from kopilka.domain import geo, territory
from kopilka.formatting import number
from kopilka.services import exports

# Russian for the words of the exports, the image and the page's data (English is the
# source); the console registers them too (web/reports/map.py).
RU: dict[str, str] = {
    "Territorial map": "Территориальная карта",
    "Regions": "Регионы",
    "Stores": "Магазины",
    "Far members": "Далёкие участники",
    "Map": "Карта",
    "Region": "Регион",
    "ISO code": "Код ISO",
    "Store": "Магазин",
    "Code": "Код",
    "City": "Город",
    "Latitude": "Широта",
    "Longitude": "Долгота",
    "Members": "Участники",
    "Sales": "Продажи",
    "Receipts": "Чеки",
    "Members per store": "Участников на магазин",
    "Town": "Населённый пункт",
    "Distance to the nearest store, km": "До ближайшего магазина, км",
    "Nearest store": "Ближайший магазин",
    "Period": "Период",
    "members": "участники",
    "sales": "продажи",
    "members per store": "участников на магазин",
    "no stores": "нет магазинов",
    "stores": "магазины",
    "members far from stores": "участники далеко от магазинов",
    "km": "км",
}
MEASURE_LABELS = {
    "members": "members",
    "sales": "sales",
    "members_per_store": "members per store",
}
TILES_ENV = "KOPILKA_MAP_TILES"  # "URL template|attribution"


def tr(lang: str, text: str) -> str:
    return RU.get(text, text) if lang == "ru" else text


def scales(report: MapReport) -> dict[str, geo.Classes]:
    """A quantile scale per measure over the regions that have stores."""
    with_stores = [r for r in report.regions if r.stores > 0]
    return {
        m: geo.quantile_classes([float(r.measure(m)) for r in with_stores])
        for m in territory.MEASURES
    }


def tables(report: MapReport, lang: str) -> list[exports.Table]:
    """Regions (those with stores), stores and far members, as sheets; CSV is regions."""
    by_id = {s.id: s for s in report.stores}
    regions = sorted((r for r in report.regions if r.stores > 0), key=lambda r: (-r.members, r.iso))
    region_rows = [
        [region_name(r.iso, lang), r.iso, r.stores, r.members, r.sales, r.receipts,
         r.members_per_store]
        for r in regions
    ]  # fmt: skip
    store_rows = [
        [s.name, s.code, s.city, region_name(s.region_iso, lang), s.latitude, s.longitude,
         s.members, s.sales, s.receipts]
        for s in report.stores
    ]  # fmt: skip
    far_rows = [
        [f.place.name, f.place.latitude, f.place.longitude, f.place.members,
         round(f.distance_km, 1), by_id[f.nearest_store].name]
        for f in report.far
    ]  # fmt: skip
    h = [tr(lang, w) for w in ("Region", "ISO code", "Stores", "Members", "Sales", "Receipts")]
    return [
        exports.Table(
            tr(lang, "Regions"),
            [*h, tr(lang, "Members per store")],
            exports.rows_of(region_rows),
        ),
        exports.Table(
            tr(lang, "Stores"),
            [
                tr(lang, w)
                for w in (
                    "Store",
                    "Code",
                    "City",
                    "Region",
                    "Latitude",
                    "Longitude",
                    "Members",
                    "Sales",
                    "Receipts",
                )
            ],
            exports.rows_of(store_rows),
        ),
        exports.Table(
            tr(lang, "Far members"),
            [
                tr(lang, w)
                for w in (
                    "Town",
                    "Latitude",
                    "Longitude",
                    "Members",
                    "Distance to the nearest store, km",
                    "Nearest store",
                )
            ],
            exports.rows_of(far_rows),
        ),
    ]


def tiles() -> dict[str, str] | None:
    """The optional tile layer: ``KOPILKA_MAP_TILES="https://…/{z}/{x}/{y}.png|© …"``."""
    raw = os.environ.get(TILES_ENV, "").strip()
    if not raw:
        return None
    url, _, attribution = raw.partition("|")
    return {"url": url.strip(), "attribution": attribution.strip()}


def _num(lang: str, v: float, places: int) -> str:
    return number(lang, Decimal(str(v)), places)


def legend_label(lang: str, lo: float, hi: float, places: int) -> str:
    """A class's range: above ``lo``, up to ``hi``.  Whole counts read as whole numbers
    ("4 – 10", a single "3" when the class holds one value); other values as bounds."""
    if places == 0 and lo == int(lo) and hi == int(hi):
        first = int(lo) + 1
        return _num(lang, hi, 0) if first == hi else f"{_num(lang, first, 0)} – {_num(lang, hi, 0)}"
    return f"{_num(lang, lo, places)} – {_num(lang, hi, places)}"


def _legend(c: geo.Classes, lang: str, places: int) -> list[dict[str, Any]]:
    return [
        {"from": lo, "to": hi, "label": legend_label(lang, lo, hi, places), "colour": colour}
        for lo, hi, colour in c.legend()
    ]


PLACES = {"members": 0, "sales": 0, "members_per_store": 1}


def to_json(report: MapReport, lang: str) -> dict[str, Any]:
    """The page's and the admin API's data; money as strings (exact)."""
    sc = scales(report)
    by_id = {s.id: s for s in report.stores}
    return {
        "period": {"from": report.period.start.isoformat(), "to": report.period.end.isoformat()},
        "measures": [
            {
                "key": m,
                "label": tr(lang, MEASURE_LABELS[m]),
                "legend": _legend(sc[m], lang, PLACES[m]),
            }
            for m in territory.MEASURES
        ],
        "regions": [
            {
                "iso": r.iso,
                "name": region_name(r.iso, lang),
                "stores": r.stores,
                "members": r.members,
                "sales": str(r.sales),
                "receipts": r.receipts,
                "members_per_store": str(r.members_per_store),
                "colour": {
                    m: sc[m].colour(float(r.measure(m))) if r.stores else geo.PALETTE[0]
                    for m in territory.MEASURES
                },
            }
            for r in report.regions
        ],
        "stores": [
            {
                "id": s.id,
                "code": s.code,
                "name": s.name,
                "city": s.city,
                "region": s.region_iso,
                "lat": s.latitude,
                "lon": s.longitude,
                "members": s.members,
                "sales": str(s.sales),
                "receipts": s.receipts,
            }
            for s in report.stores
        ],
        "members": report.members,
        "unplaced_members": report.unplaced,
        "far": {
            "km": report.far_km,
            "members_with_city": report.with_city,
            "members_unknown_city": report.unknown_city,
            "far_members": report.far_members,
            "places": [
                {
                    "name": f.place.name,
                    "lat": f.place.latitude,
                    "lon": f.place.longitude,
                    "members": f.place.members,
                    "distance_km": round(f.distance_km, 1),
                    "nearest_store": by_id[f.nearest_store].name,
                }
                for f in report.far
            ],
        },
        "tiles": tiles(),
    }
