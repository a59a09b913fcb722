"""The figures of the territorial map, from per-store figures to per-region ones and the
members who live far from every store.  Pure: the report (``analytics.map``) reads the
rows and passes them in.

Definitions (docs/analytics/map.md):

- a store's *members*: active members registered before the period's end whose home
  store it is, or, for a member without a home store, the store of most of their
  confirmed purchases before the period's end (ties: the store with the lower id);
- a store's *sales*: the sum of the amounts (before discounts and points, refunds not
  deducted) of the confirmed receipts that occurred there in the period;
- a region's figures are the sums over its stores; *members per store* is members over
  stores, to one decimal (half up), and 0.0 for a region without stores.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from kopilka.domain.geo import Point, nearest
from kopilka.domain.regions import REGIONS

MEASURES = ("members", "sales", "members_per_store")
TENTH = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class StoreFigures:
    id: int
    code: str
    name: str
    city: str
    region_iso: str | None  # None: neither its region text nor its point says
    latitude: float | None
    longitude: float | None
    members: int
    sales: Decimal
    receipts: int

    @property
    def point(self) -> Point | None:
        if self.latitude is None or self.longitude is None:
            return None
        return (self.longitude, self.latitude)


@dataclass(frozen=True, slots=True)
class RegionFigures:
    iso: str
    stores: int
    members: int
    sales: Decimal
    receipts: int

    @property
    def members_per_store(self) -> Decimal:
        if self.stores == 0:
            return Decimal("0.0")
        return (Decimal(self.members) / self.stores).quantize(TENTH, ROUND_HALF_UP)

    def measure(self, name: str) -> Decimal:
        if name == "members":
            return Decimal(self.members)
        if name == "sales":
            return self.sales
        if name == "members_per_store":
            return self.members_per_store
        raise ValueError(f"unknown measure {name!r}")


def by_region(stores: Iterable[StoreFigures]) -> list[RegionFigures]:
    """Every subject of ``REGIONS`` (those without stores with zeros), in that order."""
    sums: dict[str, list[int | Decimal]] = {r.iso: [0, 0, Decimal(0), 0] for r in REGIONS}
    for s in stores:
        if s.region_iso is None or s.region_iso not in sums:
            continue
        acc = sums[s.region_iso]
        acc[0] += 1
        acc[1] += s.members
        acc[2] += s.sales
        acc[3] += s.receipts
    return [
        RegionFigures(iso, int(a[0]), int(a[1]), Decimal(a[2]), int(a[3]))
        for iso, a in sums.items()
    ]


@dataclass(frozen=True, slots=True)
class Place:
    """Where some members live: a named place with its coordinates and head count."""

    name: str
    longitude: float
    latitude: float
    members: int


@dataclass(frozen=True, slots=True)
class FarPlace:
    place: Place
    distance_km: float  # to the nearest store
    nearest_store: int  # the index of that store in the sites passed


def far_places(places: Iterable[Place], sites: Sequence[Point], *, km: float) -> list[FarPlace]:
    """The places farther than ``km`` from every site (stores with coordinates), most
    members first, then farthest first; with no sites at all nobody is "far" (there is
    nothing to be far from), so the answer is empty."""
    out: list[FarPlace] = []
    if not sites:
        return out
    for p in places:
        hit = nearest((p.longitude, p.latitude), sites)
        if hit is not None and hit[1] > km:
            out.append(FarPlace(p, hit[1], hit[0]))
    out.sort(key=lambda f: (-f.place.members, -f.distance_km, f.place.name))
    return out
