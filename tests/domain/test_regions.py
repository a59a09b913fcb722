"""Region names as people type them, matched to the federal subjects of the map file."""

from __future__ import annotations

import json

import pytest

from kopilka.analytics.map import SHAPES_FILE, store_region
from kopilka.demo import data
from kopilka.domain.regions import BY_ISO, REGIONS, key, region_of


def test_every_subject_of_the_map_file_has_names_and_no_more() -> None:
    doc = json.loads(SHAPES_FILE.read_text(encoding="utf-8"))
    isos = {f["properties"]["iso"] for f in doc["features"]}

    assert isos == set(BY_ISO)
    assert len(REGIONS) == 83


# DCW draws Moscow as it was before the 1980s annexations (and before New Moscow, 2012):
# these districts of Moscow lie in Moscow Oblast on its map.  That is why a store's
# typed region or city decides, and its point only when neither is known.
DCW_OLD_MOSCOW = {"Митино", "Южное Бутово"}


def test_every_demo_store_is_in_the_subject_of_its_city() -> None:
    expected = {
        "MSK": "RU-MOW",
        "SPB": "RU-SPE",
        "KZN": "RU-TA",
        "EKB": "RU-SVE",
        "NSK": "RU-NVS",
        "NNV": "RU-NIZ",
        "SMR": "RU-SAM",
        "KRD": "RU-KDA",
    }
    cities = {c.code: c for c in data.CITIES}

    for site in data.STORE_SITES:
        city = cities[site.city]
        by_name = region_of(city.region)
        by_point = store_region("", "", site.longitude, site.latitude)

        assert by_name is not None and by_name.iso == expected[site.city], city.region
        if site.district in DCW_OLD_MOSCOW:
            assert by_point == "RU-MOS"
        else:
            assert by_point == expected[site.city], (site.district, city.name)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Москва", "RU-MOW"),
        ("г. Москва", "RU-MOW"),
        ("город Москва", "RU-MOW"),
        ("Moscow", "RU-MOW"),
        ("  МОСКВА ", "RU-MOW"),
        ("Московская область", "RU-MOS"),
        ("Московская обл.", "RU-MOS"),
        ("Moscow Oblast", "RU-MOS"),
        ("Moscow Region", "RU-MOS"),
        ("Санкт-Петербург", "RU-SPE"),
        ("г. Санкт-Петербург", "RU-SPE"),
        ("St. Petersburg", "RU-SPE"),
        ("Saint Petersburg", "RU-SPE"),
        ("СПб", "RU-SPE"),
        ("Республика Татарстан", "RU-TA"),
        ("Татарстан", "RU-TA"),
        ("Татарстан Респ", "RU-TA"),
        ("Republic of Tatarstan", "RU-TA"),
        ("Свердловская область", "RU-SVE"),
        ("Sverdlovsk Oblast", "RU-SVE"),
        ("Краснодарский край", "RU-KDA"),
        ("Краснодарский кр.", "RU-KDA"),
        ("Krasnodar Krai", "RU-KDA"),
        ("Нижегородская обл", "RU-NIZ"),
        ("Ханты-Мансийский АО", "RU-KHM"),
        ("ХМАО", "RU-KHM"),
        ("Республика Саха (Якутия)", "RU-SA"),
        ("Якутия", "RU-SA"),
        ("Чувашия", "RU-CU"),
        ("Чувашская Республика", "RU-CU"),
        ("Алтайский край", "RU-ALT"),
        ("Республика Алтай", "RU-AL"),
        ("Altai Republic", "RU-AL"),
        ("Ёврейская автономная область", "RU-YEV"),
        ("RU-CHU", "RU-CHU"),
    ],
)
def test_names_as_people_type_them(text: str, iso: str) -> None:
    r = region_of(text)

    assert r is not None and r.iso == iso


@pytest.mark.parametrize("text", ["", "   ", "Марс", "область", "Нью-Йорк"])
def test_unknown_names_match_nothing(text: str) -> None:
    assert region_of(text) is None


def test_no_two_subjects_share_a_key() -> None:
    seen: dict[str, str] = {}
    for r in REGIONS:
        for name in {r.name_en, r.name_ru, r.iso, *r.aliases}:
            k = key(name)
            assert seen.setdefault(k, r.iso) == r.iso, (name, seen[k], r.iso)


def test_names_in_both_languages() -> None:
    assert BY_ISO["RU-TA"].name("ru") == "Республика Татарстан"
    assert BY_ISO["RU-TA"].name("en") == "Republic of Tatarstan"
