"""A promotion in plain words, Russian and English (domain.rules.describe)."""

from __future__ import annotations

from typing import Any

import pytest

from kopilka.domain.rules.describe import describe_condition, describe_promotion, num, ru_plural
from kopilka.domain.rules.model import Condition, Promotion, validate_document
from kopilka.web.programs.form import CONDITION_KINDS, EFFECT_KINDS

DOC = validate_document(
    {
        "code": "cafe",
        "name": "Cafe",
        "categories": [{"code": "coffee", "name": "coffee"}, {"code": "tea", "name": "tea"}],
        "tiers": {
            "levels": [
                {"code": "base", "name": "Base", "threshold": "0"},
                {"code": "gold", "name": "Gold", "threshold": "1000"},
            ]
        },
    }
)


def promotion(**fields: Any) -> Promotion:
    return Promotion.model_validate({"id": "p", "name": "P", **fields})


def both(p: Promotion) -> tuple[str, str]:
    return describe_promotion(p, "en", DOC), describe_promotion(p, "ru", DOC)


def test_the_issue_example_in_both_languages() -> None:
    p = promotion(
        lines={"category": ["coffee"]},
        when={"city": ["Moscow"], "weekday": ["sat", "sun"], "tier": ["gold"]},
        effects=[{"kind": "line_discount", "percent": "10"}],
    )
    assert describe_promotion(p, "en", DOC) == (
        "10% off coffee at Moscow stores on weekends for Gold members."
    )
    p = promotion(
        lines={"category": ["coffee"]},
        when={"all": [{"city": ["Москва"]}, {"weekday": ["sat", "sun"]}, {"tier": ["gold"]}]},
        effects=[{"kind": "line_discount", "percent": "10"}],
    )
    assert describe_promotion(p, "ru", DOC) == (
        "Скидка 10% на coffee в магазинах г. Москва по выходным для уровня Gold."
    )


@pytest.mark.parametrize(
    ("effect", "en", "ru"),
    [
        (
            {"kind": "basket_discount", "amount": "500"},
            "500 ₽ off the basket",
            "Скидка 500 ₽ на чек",
        ),
        (
            {"kind": "line_discount", "amount": "49.9"},
            "49.90 ₽ off each unit",
            "Скидка 49,90 ₽ с каждой единицы",
        ),
        ({"kind": "price_override", "price": "99"}, "99 ₽ a unit", "Цена 99 ₽ за единицу"),
        ({"kind": "cheapest_free", "every": 3}, "3 for the price of 2", "3 по цене 2"),
        ({"kind": "earn_percent", "percent": "15"}, "15% back in points", "15% баллами"),
        ({"kind": "earn_multiplier", "factor": "2"}, "×2 points", "Баллы ×2"),
        ({"kind": "fixed_points", "points": "1"}, "A bonus of 1 point", "Бонус 1 балл"),
        (
            {"kind": "fixed_points", "points": "1500"},
            "A bonus of 1,500 points",
            "Бонус 1\xa0500 баллов",
        ),
        (
            {"kind": "points_per_unit", "points": "3"},
            "3 points per unit",
            "3 балла за каждую единицу",
        ),
        ({"kind": "gift", "sku": "G1", "name": "Mug"}, "A gift: Mug", "Подарок: Mug"),
        (
            {"kind": "receipt_message", "text": "Hi"},
            "A receipt message “Hi”",
            "Сообщение в чеке «Hi»",
        ),
        (
            {"kind": "cashier_message", "text": "Hi"},
            "A note to the cashier “Hi”",
            "Подсказка кассиру «Hi»",
        ),
        ({"kind": "draw_tickets", "tickets": 2}, "2 draw tickets", "2 билета розыгрыша"),
        (
            {
                "kind": "bundle_price",
                "items": [{"category": ["tea"], "quantity": 2}],
                "price": "300",
            },
            "A set of 2 × tea for 300 ₽",
            "Набор 2 × tea за 300 ₽",
        ),
    ],
)
def test_every_effect_kind_has_words(effect: dict[str, Any], en: str, ru: str) -> None:
    p = promotion(effects=[effect])
    got_en, got_ru = both(p)
    assert got_en == en + "."
    assert got_ru == ru + "."


def test_every_effect_and_condition_kind_of_the_model_is_covered() -> None:
    # The form generates its rows from the model; the words must know every kind too.
    assert set(EFFECT_KINDS) == {
        "earn_percent", "earn_multiplier", "fixed_points", "points_per_unit", "line_discount",
        "basket_discount", "price_override", "cheapest_free", "bundle_price", "gift",
        "receipt_message", "cashier_message", "draw_tickets",
    }  # fmt: skip
    samples: dict[str, Any] = {
        "dates": {"from": "2026-12-01", "to": "2026-12-31"},
        "days_since_last_purchase": {"min": "30"},
        "birthday": {"days_before": 3, "days_after": 3},
        "basket": {"amount": {"min": "1000"}},
        "weekday": ["mon"],
        "hours": ["10:00-14:00"],
        "tier": ["gold"],
        "coupon": True,
    }
    for key, shape in CONDITION_KINDS.items():
        value = samples.get(key, True if shape == "flag" else ["x"])
        c = Condition.model_validate({key: value})
        for lang in ("en", "ru"):
            words = describe_condition(c, lang, DOC)
            # Words, not the document's key (``days_since_last_purchase``).
            assert words and "_" not in words, (key, lang, words)


def test_conditions_any_not_and_schedule() -> None:
    p = promotion(
        when={
            "any": [{"tier": ["gold"]}, {"tag": ["staff"]}],
            "not": {"store": ["S9"]},
            "hours": ["08:00-11:00"],
            "basket": {"amount": {"min": "1000"}, "lines": {"category": ["tea"]}},
            "first_purchase": True,
        },
        effects=[{"kind": "fixed_points", "points": "100"}],
        starts_at="2026-12-01T00:00:00+03:00",
        ends_at="2026-12-31T00:00:00+03:00",
        limits=[{"count": 1, "period": "week"}],
        exclusive=True,
        budget={"money": "100000"},
    )
    en, ru = both(p)
    assert en == (
        "A bonus of 100 points from 08:00 to 11:00 on the first purchase for a purchase of "
        "at least 1,000 ₽ of tea (for Gold members or for customers tagged staff) except at "
        "stores S9. Runs from 01.12.2026 to 31.12.2026. Does not combine with others. "
        "At most 1 time a week per customer. Budget: 100,000 ₽."
    )
    assert ru.startswith("Бонус 100 баллов с 08:00 до 11:00 на первую покупку при покупке от ")
    assert "(для уровня Gold или для покупателей с меткой staff)" in ru
    assert "кроме случаев: в магазинах S9" in ru
    assert ru.endswith("Не более 1 раза в неделю на покупателя. Бюджет: 100\xa0000 ₽.")


def test_numbers_and_russian_plurals() -> None:
    assert num(1234567) == "1,234,567"
    assert num(1234.5, "ru") == "1\xa0234,5"
    assert [ru_plural(n, "балл", "балла", "баллов") for n in (1, 2, 5, 11, 21, 22, 112)] == [
        "балл", "балла", "баллов", "баллов", "балл", "балла", "баллов",
    ]  # fmt: skip


def test_a_partners_own_promotion_says_who_pays_and_where_the_points_go() -> None:
    p = promotion(
        when={"partner": ["pharmacy"]},
        effects=[{"kind": "fixed_points", "points": "100"}],
        funded_by="partner",
        burn_at="partner",
    )

    en, ru = both(p)

    assert en.endswith(" Points at the partner's cost, to be spent only at that partner.")
    assert ru.endswith(" Баллы за счёт партнёра, списываются только у него.")
