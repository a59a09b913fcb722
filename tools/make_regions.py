"""Convert the Russian federal subjects of GMT's DCW (Debian package ``gmt-dcw``) into the
GeoJSON the territorial map ships: src/kopilka/api/static/map/ru-regions.geojson.

Run once, by hand, when the source data changes; the result is committed.  Needs ``h5py``
and ``numpy`` (a scratch virtualenv is enough: they are not dependencies of Kopilka)::

    apt-get download gmt-dcw && dpkg -x gmt-dcw_*.deb x
    python -m venv /tmp/sv && /tmp/sv/bin/pip install h5py numpy
    /tmp/sv/bin/python tools/make_regions.py x/usr/share/gmt-dcw

The source: ``dcw-gmt.nc`` (netCDF 4 = HDF5) holds ``RU<code>_lon``/``RU<code>_lat``
uint16 arrays; a coordinate is ``value / scale + min`` (attributes of the array), and a
lon value of 65535 starts a new ring.  The codes come from ``dcw-states.txt``; the
names the application shows are in ``kopilka.domain.regions``.

A separator whose latitude value is 1 starts a hole (Moscow in Moscow Oblast, Adygea in
Krasnodar Krai).

Simplification, so the file stays small (about 1 MB for 83 subjects): every ring goes
through Douglas-Peucker with a tolerance of ``TOLERANCE_DEG`` degrees (~1.5 km); rings
smaller than ``MIN_AREA_DEG2`` square degrees (small islands) are dropped unless they are
a subject's only ring; coordinates are rounded to 3 decimals (~100 m).

Longitudes stay continuous: Chukotka's eastern part keeps longitudes above 180°
(up to 190.3°), as DCW stores them, so that the polygon does not wrap around the world
in Leaflet and in the server's projection.  GeoJSON readers that insist on [-180, 180]
would need to subtract 360 there.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import h5py  # type: ignore[import-not-found]
import numpy as np  # type: ignore[import-not-found]

TOLERANCE_DEG = 0.015
MIN_AREA_DEG2 = 0.004
DIGITS = 3
OUT = Path(__file__).resolve().parent.parent / "src/kopilka/api/static/map/ru-regions.geojson"


def simplify(points: Any, tol: float) -> Any:
    """Douglas-Peucker on an (n, 2) array, iterative; keeps the first and last point."""
    n = len(points)
    if n < 4:
        return points
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        seg = points[b] - points[a]
        rel = points[a + 1 : b] - points[a]
        norm = float(np.hypot(*seg))
        if norm == 0.0:
            d = np.hypot(rel[:, 0], rel[:, 1])
        else:
            d = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm
        i = int(np.argmax(d))
        if d[i] > tol:
            m = a + 1 + i
            keep[m] = True
            stack.append((a, m))
            stack.append((m, b))
    return points[keep]


def ring_area(points: Any) -> float:
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def rings_of(f: Any, code: str) -> list[Any]:
    lon_v, lat_v = f[f"RU{code}_lon"], f[f"RU{code}_lat"]
    lon_raw, lat_raw = lon_v[:], lat_v[:]
    lon = lon_raw / float(lon_v.attrs["scale"][0]) + float(lon_v.attrs["min"][0])
    lat = lat_raw / float(lat_v.attrs["scale"][0]) + float(lat_v.attrs["min"][0])
    starts = [*np.where(lon_raw == 65535)[0].tolist(), len(lon_raw)]
    rings = []
    for a, b in itertools.pairwise(starts):
        pts = np.column_stack([lon[a + 1 : b], lat[a + 1 : b]])
        if len(pts) >= 3:
            rings.append((pts, int(lat_raw[a]) == 1))
    return rings


def ring_coords(ring: Any) -> list[list[float]] | None:
    s = simplify(ring, TOLERANCE_DEG)
    if len(s) < 3:
        s = ring[:: max(1, len(ring) // 4)]
    coords = [[round(float(x), DIGITS), round(float(y), DIGITS)] for x, y in s]
    if coords[0] != coords[-1]:
        coords.append(coords[0])
    return coords if len(coords) >= 4 else None


def feature(f: Any, code: str) -> dict[str, Any]:
    rings = rings_of(f, code)
    outers = sorted((r for r, hole in rings if not hole), key=ring_area, reverse=True)
    biggest = outers[0]
    polygons = []
    for ring in outers:
        if ring is biggest or ring_area(ring) >= MIN_AREA_DEG2:
            coords = ring_coords(ring)
            if coords is not None:
                polygons.append([coords])
    # DCW marks a hole (Moscow inside its oblast, Adygea inside Krasnodar Krai) with a
    # latitude of 1 at the ring's separator; here the holes are all in the biggest ring.
    for ring, hole in rings:
        if hole and ring_area(ring) >= MIN_AREA_DEG2 and (coords := ring_coords(ring)):
            polygons[0].append(coords)
    return {
        "type": "Feature",
        "properties": {"iso": f"RU-{code}"},
        "geometry": {"type": "MultiPolygon", "coordinates": polygons},
    }


def main(src: str) -> None:
    root = Path(src)
    names = []
    for line in (root / "dcw-states.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "RU":
            names.append(parts[1])
    with h5py.File(root / "dcw-gmt.nc", "r") as f:
        features = [feature(f, code) for code in sorted(names)]
    doc = {
        "type": "FeatureCollection",
        "source": "GMT DCW 2.1.1 (Debian gmt-dcw), LGPL-3.0-or-later; see LICENSE.md here",
        "features": features,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    n = sum(len(r[0]) for ft in features for r in ft["geometry"]["coordinates"])
    print(f"{len(features)} subjects, {n} points, {OUT.stat().st_size} bytes -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
