"""The map's geometry without a database: distances, point in polygon, choropleth classes
and the Albers projection, against hand-worked values and independent methods."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.domain import geo, territory

lon = st.floats(min_value=19.0, max_value=190.0)
lat = st.floats(min_value=41.0, max_value=82.0)
points = st.tuples(lon, lat)


def test_a_degree_of_latitude_is_about_111_km() -> None:
    # an arc of 1° on a sphere of the mean radius: 2πR / 360 = 111.195 km
    assert geo.haversine_km((37.0, 55.0), (37.0, 56.0)) == pytest.approx(
        2 * math.pi * 6371.0088 / 360, rel=1e-9
    )


def test_a_degree_of_longitude_shrinks_with_the_cosine_of_the_latitude() -> None:
    # along a parallel at 60°, a 0.01° step is (almost) the arc R·cos 60°·Δλ
    d = geo.haversine_km((30.0, 60.0), (30.01, 60.0))

    assert abs(d - 6371.0088 * 0.5 * math.radians(0.01)) < 1e-6


def test_moscow_to_saint_petersburg() -> None:
    # the Kremlin (55.7520 N, 37.6175 E) to the Palace Square (59.9390 N, 30.3158 E):
    # about 634 km as the crow flies (a ruler on any atlas agrees within a km)
    d = geo.haversine_km((37.6175, 55.7520), (30.3158, 59.9390))

    assert 633 < d < 636


@given(points, points)
def test_distance_is_symmetric_and_not_negative(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    assert geo.haversine_km(a, b) >= 0
    assert math.isclose(geo.haversine_km(a, b), geo.haversine_km(b, a), abs_tol=1e-9)


@given(points, points, points)
def test_distance_keeps_the_triangle_inequality(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]
) -> None:
    assert geo.haversine_km(a, c) <= geo.haversine_km(a, b) + geo.haversine_km(b, c) + 1e-6


def test_nearest_site() -> None:
    sites = [(37.6, 55.75), (30.3, 59.9), (49.1, 55.8)]

    assert geo.nearest((35.9, 56.86), sites) == (0, geo.haversine_km((35.9, 56.86), sites[0]))
    assert geo.nearest((35.9, 56.86), []) is None


SQUARE_WITH_HOLE = [
    [
        [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
        [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]],
    ]
]


def test_a_point_in_the_hole_is_outside() -> None:
    assert geo.contains(SQUARE_WITH_HOLE, (2, 2)) is True
    assert geo.contains(SQUARE_WITH_HOLE, (5, 5)) is False
    assert geo.contains(SQUARE_WITH_HOLE, (11, 5)) is False


def test_locate_picks_the_shape_that_contains_the_point() -> None:
    shapes = {
        "west": [[[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]],
        "east": [[[[10, 0], [20, 0], [20, 10], [10, 10], [10, 0]]]],
    }

    assert geo.locate((15, 5), shapes) == "east"
    assert geo.locate((5, 5), shapes) == "west"
    assert geo.locate((25, 5), shapes) is None


def test_quantile_classes_by_hand() -> None:
    # ten values 1..10, five classes: upper bounds at ranks 2, 4, 6, 8, 10
    c = geo.quantile_classes([float(v) for v in range(1, 11)])

    assert c.breaks == (2.0, 4.0, 6.0, 8.0, 10.0)
    assert [c.of(v) for v in (0, 1, 2, 2.5, 4, 7, 10, 11)] == [0, 1, 1, 2, 2, 4, 5, 5]
    assert c.colour(0) == "#eeeeee" and c.colour(10) == "#bd0026"
    assert c.legend()[0] == (0.0, 2.0, "#ffffb2")


def test_equal_values_make_fewer_classes() -> None:
    c = geo.quantile_classes([5.0, 5.0, 5.0, 0.0])

    assert c.breaks == (5.0,)
    assert (c.of(0), c.of(5)) == (0, 1)


def test_no_positive_values_no_classes() -> None:
    c = geo.quantile_classes([0.0, 0.0])

    assert (c.breaks, c.legend(), c.of(0), c.of(7)) == ((), [], 0, 0)


@given(st.lists(st.floats(min_value=0, max_value=1e9), max_size=90), st.floats(0, 1e9))
def test_a_bigger_value_never_has_a_lower_class(values: list[float], x: float) -> None:
    c = geo.quantile_classes(values)

    assert c.of(x) <= c.of(x * 1.5 + 1)
    assert all(0 <= c.of(v) <= 5 for v in values)


def test_the_central_meridian_is_vertical() -> None:
    a = geo.Albers()

    x1, y1 = a.project(105, 50)
    x2, y2 = a.project(105, 70)
    assert x1 == 0 and x2 == 0 and y2 > y1


def test_albers_keeps_areas() -> None:
    # a 1°×1° cell covers R²·Δλ·(sin φ2 − sin φ1) on the unit sphere; projected, the same
    a = geo.Albers()

    for lon0, lat0 in ((40, 45), (105, 60), (170, 70), (20, 55)):
        corners = [a.project(lon0 + dx, lat0 + dy) for dx, dy in ((0, 0), (1, 0), (1, 1), (0, 1))]
        shoelace = 0.5 * abs(
            sum(
                corners[i][0] * corners[(i + 1) % 4][1] - corners[(i + 1) % 4][0] * corners[i][1]
                for i in range(4)
            )
        )
        sphere = math.radians(1) * (math.sin(math.radians(lat0 + 1)) - math.sin(math.radians(lat0)))
        assert abs(shoelace - sphere) / sphere < 0.001


def test_chukotka_east_of_180_stays_east() -> None:
    a = geo.Albers()

    assert a.project(190, 66)[0] > a.project(179, 66)[0] > a.project(105, 66)[0]


def _store(i: int, iso: str | None, members: int, sales: str) -> territory.StoreFigures:
    return territory.StoreFigures(i, f"S{i}", "s", "", iso, None, None, members, Decimal(sales), 1)


def test_regions_sum_their_stores() -> None:
    stores = [
        _store(1, "RU-MOW", 10, "100.10"),
        _store(2, "RU-MOW", 5, "0.01"),
        _store(3, "RU-TA", 7, "7.00"),
        _store(4, None, 99, "99.00"),
    ]

    regions = {r.iso: r for r in territory.by_region(stores)}

    mow = regions["RU-MOW"]
    assert (mow.stores, mow.members, mow.sales, mow.receipts) == (2, 15, Decimal("100.11"), 2)
    assert mow.members_per_store == Decimal("7.5")
    assert regions["RU-TA"].members_per_store == Decimal("7.0")
    assert regions["RU-SPE"].members_per_store == Decimal("0")
    assert sum(r.members for r in regions.values()) == 22  # the unplaced store's are left out


def test_members_per_store_rounds_half_up() -> None:
    stores = [_store(i, "RU-KDA", m, "0") for i, m in ((1, 1), (2, 0), (3, 0), (4, 0))]
    stores += [_store(i, "RU-SAM", m, "0") for i, m in ((5, 2), (6, 0), (7, 0))]

    regions = {r.iso: r for r in territory.by_region(stores)}

    assert regions["RU-KDA"].members_per_store == Decimal("0.3")  # 1/4 = 0.25 -> 0.3
    assert regions["RU-SAM"].members_per_store == Decimal("0.7")  # 2/3 = 0.666… -> 0.7


def test_far_places_are_those_beyond_the_distance_most_members_first() -> None:
    sites = [(37.605, 55.765)]
    places = [
        territory.Place("Химки", 37.445, 55.897, 50),  # ~18 km
        territory.Place("Тверь", 35.9006, 56.8584, 3),  # ~160 km
        territory.Place("Тула", 37.6156, 54.1961, 9),  # ~175 km
    ]

    far = territory.far_places(places, sites, km=30)

    assert [(f.place.name, f.nearest_store) for f in far] == [("Тула", 0), ("Тверь", 0)]
    assert territory.far_places(places, [], km=30) == []
