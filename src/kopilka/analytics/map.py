"""The territorial map (issue 8): stores and members on a map of Russia's regions.

``compute`` reads one program's stores, where its members are placed and the period's
sales, and answers a ``MapReport``; ``tables`` turns it into the export's sheets and
``to_json`` into what the console's map and the admin API show.  The definitions are in
``domain.territory`` and docs/analytics/map.md.

A member is placed at their home store, or else at the store of most of their confirmed
purchases before the period's end.  A member whose ``city`` is filled in is also placed
at that town (``analytics.geocode``): the members whose town lies more than ``far_km``
from every store are the "far members" (where to open a store); for the whole program
they include members not placed at any store (registered, never bought).

Scope: a partner's user sees only that partner's stores and the members placed there; a
store user only their store.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics import geocode
from kopilka.domain import geo, territory
from kopilka.domain.regions import BY_ISO, key, region_of
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

SHAPES_FILE = Path(__file__).resolve().parent.parent / "api/static/map/ru-regions.geojson"
DEFAULT_DAYS = 90
DEFAULT_FAR_KM = 30.0
MAX_DAYS = 3660


@cache
def shapes() -> dict[str, geo.MultiPolygon]:
    """ISO code -> the subject's polygons, from the shipped GeoJSON."""
    doc = json.loads(SHAPES_FILE.read_text(encoding="utf-8"))
    return {f["properties"]["iso"]: f["geometry"]["coordinates"] for f in doc["features"]}


@dataclass(frozen=True)
class Period:
    """Whole UTC days, ``start`` to ``end`` inclusive."""

    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), UTC)


def parse_period(start: str | None, end: str | None, *, today: date) -> Period:
    """The period from ISO dates as typed; by default the ``DEFAULT_DAYS`` ending today.
    A bad date names its field (``from`` or ``to``)."""

    def day(text: str | None, name: str, default: date) -> date:
        if text is None or not text.strip():
            return default
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            raise ServiceError(
                "invalid_date", f"{name}: not a date (YYYY-MM-DD): {text!r}", field=name
            ) from None

    last = day(end, "to", today)
    first = day(start, "from", last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise ServiceError("invalid_period", "from: after the end of the period", field="from")
    if (last - first).days >= MAX_DAYS:
        raise ServiceError(
            "invalid_period", f"from: the period exceeds {MAX_DAYS} days", field="from"
        )
    return Period(first, last)


def parse_far_km(text: str | None) -> float:
    if text is None or not str(text).strip():
        return DEFAULT_FAR_KM
    try:
        km = float(str(text).strip().replace(",", "."))
    except ValueError:
        km = -1.0
    if not 0 < km <= 5000:
        raise ServiceError(
            "invalid_distance", "far_km: a distance from 1 to 5000 km", field="far_km"
        )
    return km


@dataclass(frozen=True)
class MapReport:
    program_id: int
    period: Period
    far_km: float
    stores: list[territory.StoreFigures]
    regions: list[territory.RegionFigures]
    members: int  # placed at a store in scope
    unplaced: int  # active members with neither a home store nor a purchase (whole program)
    far: list[territory.FarPlace]
    with_city: int  # members in scope whose city is filled in
    unknown_city: int  # ... of them, those whose city the town list does not know
    city_names: dict[str, str] = field(default_factory=dict)  # key -> the name as typed

    @property
    def far_members(self) -> int:
        return sum(f.place.members for f in self.far)


async def compute(
    rt: Runtime,
    actor: Actor,
    program_id: int,
    *,
    period: Period,
    far_km: float = DEFAULT_FAR_KM,
) -> MapReport:
    """The map's figures for the stores the actor may see."""
    async with rt.engine.connect() as conn:
        store_rows = await _stores(conn, program_id, actor)
        rows = await _placed(conn, program_id, period)
        sales = await _sales(conn, program_id, period)
    placed: Counter[int | None] = Counter()
    for sid, _, n in rows:
        placed[sid] += n
    cities = [(city, sid, n) for sid, city, n in rows if city and city.strip()]
    in_scope: set[int | None] = {r.id for r in store_rows}
    stores = [_figures(r, placed, sales) for r in store_rows]
    town_index = await geocode.load() if cities else {}
    if _whole_program(actor):
        in_scope.add(None)  # members not placed at any store still live somewhere
    places, names, with_city, unknown = _places(cities, in_scope, town_index)
    sites = [s.point for s in stores if s.point is not None]
    located = [s for s in stores if s.point is not None]
    far = territory.far_places(places, sites, km=far_km)
    far = [territory.FarPlace(f.place, f.distance_km, located[f.nearest_store].id) for f in far]
    return MapReport(
        program_id=program_id,
        period=period,
        far_km=far_km,
        stores=stores,
        regions=territory.by_region(stores),
        members=sum(s.members for s in stores),
        unplaced=placed.get(None, 0) if _whole_program(actor) else 0,
        far=far,
        with_city=with_city,
        unknown_city=unknown,
        city_names=names,
    )


def _whole_program(actor: Actor) -> bool:
    return actor.partner_id is None and actor.store_id is None


async def _stores(conn: AsyncConnection, program_id: int, actor: Actor) -> list[Any]:
    s = t.stores
    q = select(s.c.id, s.c.code, s.c.name, s.c.city, s.c.region, s.c.latitude, s.c.longitude).where(
        s.c.program_id == program_id
    )
    if actor.partner_id is not None:
        q = q.where(s.c.partner_id == actor.partner_id)
    if actor.store_id is not None:
        q = q.where(s.c.id == actor.store_id)
    return list((await conn.execute(q.order_by(s.c.id))).all())


def _members(program_id: int, period: Period) -> list[Any]:
    """The conditions of a counted member: active, registered before the period's end."""
    c = t.customers
    return [
        c.c.program_id == program_id,
        c.c.status == "active",
        c.c.registered_at < period.until,
    ]


async def _placed(
    conn: AsyncConnection, program_id: int, period: Period
) -> list[tuple[int | None, str | None, int]]:
    """(placement store or None, city as typed or None, members): the home store, else the
    store of most confirmed purchases before the period's end (ties: the lower store id).

    Three grouped reads, no join of customers to a derived table (SQLite would scan that
    table once per customer): members with a home store; members without one, per city;
    and of those, the ones placed by their purchases.  The difference is "not placed"."""
    r, c = t.receipts, t.customers
    members = _members(program_id, period)
    home = await conn.execute(
        select(c.c.home_store_id, c.c.city, func.count())
        .where(*members, c.c.home_store_id.is_not(None))
        .group_by(c.c.home_store_id, c.c.city)
    )
    out: list[tuple[int | None, str | None, int]] = [(sid, city, int(n)) for sid, city, n in home]
    homeless = Counter(
        {
            city: int(n)
            for city, n in await conn.execute(
                select(c.c.city, func.count())
                .where(*members, c.c.home_store_id.is_(None))
                .group_by(c.c.city)
            )
        }
    )
    ranked = (
        select(
            r.c.store_id,
            c.c.city,
            func.row_number()
            .over(partition_by=r.c.customer_id, order_by=(func.count().desc(), r.c.store_id))
            .label("rank"),
        )
        .select_from(r.join(c, c.c.id == r.c.customer_id))
        .where(
            *members,
            c.c.home_store_id.is_(None),
            r.c.program_id == program_id,
            r.c.state == "confirmed",
            r.c.occurred_at < period.until,
        )
        .group_by(r.c.customer_id, r.c.store_id, c.c.city)
        .subquery()
    )
    bought = await conn.execute(
        select(ranked.c.store_id, ranked.c.city, func.count())
        .where(ranked.c.rank == 1)
        .group_by(ranked.c.store_id, ranked.c.city)
    )
    for sid, city, n in bought:
        out.append((sid, city, int(n)))
        homeless[city] -= int(n)
    out.extend((None, city, n) for city, n in homeless.items() if n > 0)
    return out


async def _sales(
    conn: AsyncConnection, program_id: int, period: Period
) -> dict[int, tuple[Decimal, int]]:
    r = t.receipts
    q = (
        select(r.c.store_id, func.sum(r.c.amount), func.count())
        .where(
            r.c.program_id == program_id,
            r.c.state == "confirmed",
            r.c.occurred_at >= period.since,
            r.c.occurred_at < period.until,
        )
        .group_by(r.c.store_id)
    )
    return {sid: (Decimal(total or 0), int(n)) for sid, total, n in await conn.execute(q)}


def _figures(
    row: Any, placed: Counter[int | None], sales: dict[int, tuple[Decimal, int]]
) -> territory.StoreFigures:
    amount, receipts = sales.get(row.id, (Decimal("0.00"), 0))
    return territory.StoreFigures(
        id=row.id,
        code=row.code,
        name=row.name,
        city=row.city,
        region_iso=store_region(row.region, row.city, row.longitude, row.latitude),
        latitude=row.latitude,
        longitude=row.longitude,
        members=placed.get(row.id, 0),
        sales=amount,
        receipts=receipts,
    )


def store_region(region: str, city: str, lon: float | None, lat: float | None) -> str | None:
    """A store's subject: its region as typed, else its city ("Москва" is both), else the
    subject its coordinates fall in."""
    for text in (region, city):
        hit = region_of(text or "")
        if hit is not None:
            return hit.iso
    if lon is not None and lat is not None:
        return geo.locate((lon, lat), shapes())
    return None


def _places(
    cities: list[tuple[str, int | None, int]],
    in_scope: set[int | None],
    towns: dict[str, geocode.Town],
) -> tuple[list[territory.Place], dict[str, str], int, int]:
    """Members per known town (in scope), the name shown per town, members with a city,
    and of them those whose city is unknown."""
    per_town: Counter[str] = Counter()
    typed: dict[str, Counter[str]] = defaultdict(Counter)
    with_city = unknown = 0
    for city, sid, n in cities:
        if sid not in in_scope:
            continue
        with_city += n
        k = key(city)
        town = towns.get(k)
        if town is None:
            unknown += n
            continue
        tk = f"{town.longitude},{town.latitude}"
        per_town[tk] += n
        typed[tk][city.strip()] += n
    names = {tk: typed[tk].most_common(1)[0][0] for tk in per_town}
    places = []
    for tk, n in per_town.items():
        lon, lat = (float(v) for v in tk.split(","))
        places.append(territory.Place(names[tk], lon, lat, n))
    return places, names, with_city, unknown


def region_name(iso: str | None, lang: str) -> str:
    if iso is None:
        return "?"
    return BY_ISO[iso].name(lang)
