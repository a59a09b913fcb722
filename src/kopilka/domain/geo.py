"""Geometry of the territorial map: distances, which region a point is in, the classes of
a choropleth and the projection of the printed map.  Pure: no I/O; the polygons are
passed in (``analytics.map`` loads them from the shipped GeoJSON).

Coordinates are (longitude, latitude) in degrees, as in GeoJSON.  Longitudes east of
180° stay above 180 (Chukotka reaches 190.3°) so that shapes never wrap around.
Distances and coordinates are floats: they are measurements, not money.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

EARTH_RADIUS_KM = 6371.0088  # the mean radius (IUGG)

Point = tuple[float, float]  # (lon, lat)
Ring = Sequence[Sequence[float]]  # [[lon, lat], ...], first == last
Polygon = Sequence[Ring]  # outer ring, then holes
MultiPolygon = Sequence[Polygon]

# ColorBrewer YlOrRd, 5 classes (colorbrewer2.org, Apache-2.0); class 0 ("none") is grey.
PALETTE = ("#eeeeee", "#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
CLASSES = 5


def haversine_km(a: Point, b: Point) -> float:
    """The great-circle distance between two (lon, lat) points, in kilometres."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def nearest(p: Point, sites: Sequence[Point]) -> tuple[int, float] | None:
    """The index of the site nearest to ``p`` and its distance in km; None without sites."""
    best: tuple[int, float] | None = None
    for i, s in enumerate(sites):
        d = haversine_km(p, s)
        if best is None or d < best[1]:
            best = (i, d)
    return best


def _in_ring(x: float, y: float, ring: Ring) -> bool:
    """Ray casting: does a horizontal ray from (x, y) cross the ring an odd number of times."""
    inside = False
    n = len(ring)
    j = n - 1
    for i in range(n):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def contains(shape: MultiPolygon, p: Point) -> bool:
    """Is the point inside one of the polygons (inside its outer ring, outside its holes)."""
    x, y = p
    for polygon in shape:
        inside = polygon and _in_ring(x, y, polygon[0])
        if inside and not any(_in_ring(x, y, hole) for hole in polygon[1:]):
            return True
    return False


def bbox(shape: MultiPolygon) -> tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) of the shape's outer rings."""
    xs = [pt[0] for polygon in shape for pt in polygon[0]]
    ys = [pt[1] for polygon in shape for pt in polygon[0]]
    return min(xs), min(ys), max(xs), max(ys)


def locate(p: Point, shapes: dict[str, MultiPolygon]) -> str | None:
    """The key of the first shape that contains the point (a bounding box test first)."""
    for k, shape in shapes.items():
        x0, y0, x1, y1 = bbox(shape)
        if x0 <= p[0] <= x1 and y0 <= p[1] <= y1 and contains(shape, p):
            return k
    return None


@dataclass(frozen=True, slots=True)
class Classes:
    """A choropleth scale: ``breaks[i]`` is the upper bound (inclusive) of class i + 1;
    class 0 holds zero and negative values ("no data")."""

    breaks: tuple[float, ...]

    def of(self, value: float) -> int:
        if value <= 0 or not self.breaks:
            return 0
        return min(bisect_left(self.breaks, value), len(self.breaks) - 1) + 1

    def colour(self, value: float) -> str:
        return PALETTE[self.of(value)]

    def legend(self) -> list[tuple[float, float, str]]:
        """(lower bound exclusive, upper bound inclusive, colour) of each class above 0."""
        if not self.breaks:
            return []
        lows = (0.0, *self.breaks[:-1])
        pairs = zip(lows, self.breaks, strict=True)
        return [(lo, hi, PALETTE[i + 1]) for i, (lo, hi) in enumerate(pairs)]


def quantile_classes(values: Sequence[float], k: int = CLASSES) -> Classes:
    """Up to ``k`` classes with about as many of the positive values in each: the upper
    bound of class i is the value at rank ceil(i * n / k) of the n sorted positive values.
    Equal values never straddle a break, so there may be fewer than ``k`` classes."""
    positive = sorted(v for v in values if v > 0)
    n = len(positive)
    breaks: list[float] = []
    for i in range(1, k + 1):
        b = positive[math.ceil(i * n / k) - 1] if n else None
        if b is not None and (not breaks or b > breaks[-1]):
            breaks.append(b)
    return Classes(tuple(breaks))


@dataclass(frozen=True)
class Albers:
    """The Albers equal-area conic projection on a sphere: Russia with standard parallels
    52° and 64° and central meridian 105°E looks as in an atlas.  ``project`` answers
    (x, y) in units of the sphere's radius, y growing north."""

    lon0: float = 105.0
    lat1: float = 52.0
    lat2: float = 64.0
    lat0: float = 0.0

    @cached_property
    def _constants(self) -> tuple[float, float, float]:
        p1, p2, p0 = map(math.radians, (self.lat1, self.lat2, self.lat0))
        n = (math.sin(p1) + math.sin(p2)) / 2
        c = math.cos(p1) ** 2 + 2 * n * math.sin(p1)
        return n, c, math.sqrt(c - 2 * n * math.sin(p0)) / n

    def project(self, lon: float, lat: float) -> tuple[float, float]:
        n, c, rho0 = self._constants
        rho = math.sqrt(c - 2 * n * math.sin(math.radians(lat))) / n
        theta = n * math.radians(lon - self.lon0)
        return rho * math.sin(theta), rho0 - rho * math.cos(theta)
