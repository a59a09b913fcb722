"""The federal subjects of Russia the territorial map knows, and how a store's free-text
region ("г. Москва", "Moscow", "Татарстан", "Свердловская обл.") is matched to one.

The list is that of the polygons the map ships (GMT DCW: 83 subjects, keyed by their
ISO 3166-2 code).  ``region_of(text)`` answers the subject or None; it compares a *key*
of the text: lower case, "ё" as "е", punctuation and the words that only say what kind
of subject it is ("г.", "город", "Республика", "Republic", "City") dropped, common
abbreviations expanded ("обл." -> "область", "АО" -> "автономный округ"), and the words
sorted, so "Республика Татарстан", "Татарстан Респ." and "Tatarstan" are one key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True, slots=True)
class Region:
    iso: str  # ISO 3166-2, "RU-MOW"
    name_en: str
    name_ru: str
    aliases: tuple[str, ...] = ()

    def name(self, lang: str) -> str:
        return self.name_ru if lang == "ru" else self.name_en


def _r(code: str, en: str, ru: str, *aliases: str) -> Region:
    return Region(f"RU-{code}", en, ru, aliases)


REGIONS: tuple[Region, ...] = (
    _r("AD", "Republic of Adygea", "Республика Адыгея", "Адыгея", "Adygeya"),
    _r("AL", "Altai Republic", "Республика Алтай"),
    _r("ALT", "Altai Krai", "Алтайский край"),
    _r("AMU", "Amur Oblast", "Амурская область"),
    _r("ARK", "Arkhangelsk Oblast", "Архангельская область"),
    _r("AST", "Astrakhan Oblast", "Астраханская область"),
    _r("BA", "Republic of Bashkortostan", "Республика Башкортостан", "Башкирия"),
    _r("BEL", "Belgorod Oblast", "Белгородская область"),
    _r("BRY", "Bryansk Oblast", "Брянская область"),
    _r("BU", "Republic of Buryatia", "Республика Бурятия", "Бурятия"),
    _r("CE", "Chechen Republic", "Чеченская Республика", "Чечня", "Chechnya"),
    _r("CHE", "Chelyabinsk Oblast", "Челябинская область"),
    _r("CHU", "Chukotka Autonomous Okrug", "Чукотский автономный округ", "Чукотка"),
    _r("CU", "Chuvash Republic", "Чувашская Республика", "Чувашия", "Chuvashia"),
    _r("DA", "Republic of Dagestan", "Республика Дагестан", "Дагестан"),
    _r("IN", "Republic of Ingushetia", "Республика Ингушетия", "Ингушетия"),
    _r("IRK", "Irkutsk Oblast", "Иркутская область"),
    _r("IVA", "Ivanovo Oblast", "Ивановская область"),
    _r("KAM", "Kamchatka Krai", "Камчатский край"),
    _r(
        "KB",
        "Kabardino-Balkarian Republic",
        "Кабардино-Балкарская Республика",
        "Кабардино-Балкария",
        "Kabardino-Balkaria",
    ),
    _r(
        "KC",
        "Karachay-Cherkess Republic",
        "Карачаево-Черкесская Республика",
        "Карачаево-Черкесия",
        "Karachay-Cherkessia",
    ),
    _r("KDA", "Krasnodar Krai", "Краснодарский край", "Кубань"),
    _r("KEM", "Kemerovo Oblast", "Кемеровская область", "Кузбасс", "Kuzbass"),
    _r("KGD", "Kaliningrad Oblast", "Калининградская область"),
    _r("KGN", "Kurgan Oblast", "Курганская область"),
    _r("KHA", "Khabarovsk Krai", "Хабаровский край"),
    _r(
        "KHM",
        "Khanty-Mansi Autonomous Okrug",
        "Ханты-Мансийский автономный округ",
        "Ханты-Мансийский автономный округ — Югра",
        "ХМАО",
        "Югра",
        "Yugra",
    ),
    _r("KIR", "Kirov Oblast", "Кировская область"),
    _r("KK", "Republic of Khakassia", "Республика Хакасия", "Хакасия"),
    _r("KL", "Republic of Kalmykia", "Республика Калмыкия", "Калмыкия"),
    _r("KLU", "Kaluga Oblast", "Калужская область"),
    _r("KO", "Komi Republic", "Республика Коми"),
    _r("KOS", "Kostroma Oblast", "Костромская область"),
    _r("KR", "Republic of Karelia", "Республика Карелия", "Карелия"),
    _r("KRS", "Kursk Oblast", "Курская область"),
    _r("KYA", "Krasnoyarsk Krai", "Красноярский край"),
    _r("LEN", "Leningrad Oblast", "Ленинградская область", "Ленобласть"),
    _r("LIP", "Lipetsk Oblast", "Липецкая область"),
    _r("MAG", "Magadan Oblast", "Магаданская область"),
    _r("ME", "Mari El Republic", "Республика Марий Эл", "Марий Эл"),
    _r("MO", "Republic of Mordovia", "Республика Мордовия", "Мордовия"),
    _r("MOS", "Moscow Oblast", "Московская область", "Подмосковье", "Moscow Region"),
    _r("MOW", "Moscow", "Москва", "Moskva"),
    _r("MUR", "Murmansk Oblast", "Мурманская область"),
    _r("NEN", "Nenets Autonomous Okrug", "Ненецкий автономный округ", "НАО"),
    _r("NGR", "Novgorod Oblast", "Новгородская область"),
    _r("NIZ", "Nizhny Novgorod Oblast", "Нижегородская область"),
    _r("NVS", "Novosibirsk Oblast", "Новосибирская область"),
    _r("OMS", "Omsk Oblast", "Омская область"),
    _r("ORE", "Orenburg Oblast", "Оренбургская область"),
    _r("ORL", "Oryol Oblast", "Орловская область"),
    _r("PER", "Perm Krai", "Пермский край"),
    _r("PNZ", "Penza Oblast", "Пензенская область"),
    _r("PRI", "Primorsky Krai", "Приморский край", "Приморье"),
    _r("PSK", "Pskov Oblast", "Псковская область"),
    _r("ROS", "Rostov Oblast", "Ростовская область"),
    _r("RYA", "Ryazan Oblast", "Рязанская область"),
    _r("SA", "Sakha Republic (Yakutia)", "Республика Саха (Якутия)", "Якутия", "Yakutia"),
    _r("SAK", "Sakhalin Oblast", "Сахалинская область"),
    _r("SAM", "Samara Oblast", "Самарская область"),
    _r("SAR", "Saratov Oblast", "Саратовская область"),
    _r(
        "SE",
        "Republic of North Ossetia-Alania",
        "Республика Северная Осетия — Алания",
        "Северная Осетия",
        "North Ossetia",
    ),
    _r("SMO", "Smolensk Oblast", "Смоленская область"),
    _r(
        "SPE",
        "Saint Petersburg",
        "Санкт-Петербург",
        "St. Petersburg",
        "Петербург",
        "СПб",
        "Sankt-Peterburg",
    ),
    _r("STA", "Stavropol Krai", "Ставропольский край"),
    _r("SVE", "Sverdlovsk Oblast", "Свердловская область"),
    _r("TA", "Republic of Tatarstan", "Республика Татарстан", "Татарстан"),
    _r("TAM", "Tambov Oblast", "Тамбовская область"),
    _r("TOM", "Tomsk Oblast", "Томская область"),
    _r("TUL", "Tula Oblast", "Тульская область"),
    _r("TVE", "Tver Oblast", "Тверская область"),
    _r("TY", "Tuva Republic", "Республика Тыва", "Тыва", "Тува", "Tyva"),
    _r("TYU", "Tyumen Oblast", "Тюменская область"),
    _r("UD", "Udmurt Republic", "Удмуртская Республика", "Удмуртия", "Udmurtia"),
    _r("ULY", "Ulyanovsk Oblast", "Ульяновская область"),
    _r("VGG", "Volgograd Oblast", "Волгоградская область"),
    _r("VLA", "Vladimir Oblast", "Владимирская область"),
    _r("VLG", "Vologda Oblast", "Вологодская область"),
    _r("VOR", "Voronezh Oblast", "Воронежская область"),
    _r("YAN", "Yamalo-Nenets Autonomous Okrug", "Ямало-Ненецкий автономный округ", "ЯНАО"),
    _r("YAR", "Yaroslavl Oblast", "Ярославская область"),
    _r("YEV", "Jewish Autonomous Oblast", "Еврейская автономная область", "ЕАО"),
    _r("ZAB", "Zabaykalsky Krai", "Забайкальский край", "Забайкалье"),
)

BY_ISO: dict[str, Region] = {r.iso: r for r in REGIONS}

# Words that only say what kind of place it is; dropping them lets "Республика Татарстан"
# and "Татарстан" meet.  Oblast/krai/okrug stay: "Moscow" and "Moscow Oblast" differ.
_NOISE = frozenset(
    {"г", "гор", "город", "city", "of", "the", "republic", "respublika", "республика", "респ"}
    | {"федерального", "значения", "federal", "federalnogo", "znacheniya"}
)
_ABBREVIATIONS = {
    "обл": "область",
    "кр": "край",
    "ао": "автономный округ",
    "авт": "автономный",
    "kray": "krai",
    "st": "saint",
    "sankt": "saint",
    "санкт": "санкт",
    "region": "oblast",
    "oblast'": "oblast",
}


def key(text: str) -> str:
    """The comparison key of a region's name (see the module's docstring)."""
    s = text.lower().replace("ё", "е")
    s = re.sub(r"[^\w']+", " ", s).replace("'", "")
    words: list[str] = []
    for w in s.split():
        if w in _NOISE:
            continue
        words.extend(_ABBREVIATIONS.get(w, w).split())
    return " ".join(sorted(words))


@cache
def _index() -> dict[str, Region]:
    index: dict[str, Region] = {}
    clashes: set[str] = set()
    for r in REGIONS:
        names = {r.name_en, r.name_ru, r.iso, *r.aliases}
        for name in names:
            k = key(name)
            if k in index and index[k] is not r:
                clashes.add(k)
            index[k] = r
    for k in clashes:  # a name two subjects share matches neither
        del index[k]
    return index


def region_of(text: str) -> Region | None:
    """The subject a free-text region name means, or None (empty or unknown text)."""
    k = key(text)
    if not k:
        return None
    return _index().get(k)
