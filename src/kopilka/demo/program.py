"""The demo program's document (version 2, applied after a year of history): tiers and a
handful of the mechanics a Russian grocery chain runs, on the demo catalogue's categories,
so that the demo till shows promotions at work."""

from __future__ import annotations

from typing import Any


def demo_document(code: str, name: str) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "type": "bonus",
        "timezone": "Europe/Moscow",
        "points": {"earn_percent": 5, "burn_max_percent": 30, "expiry_days": 365},
        "tiers": {
            "qualify_by": "spend",
            "period_days": 365,
            "levels": [
                {"code": "base", "name": "Базовый", "threshold": 0},
                {"code": "silver", "name": "Серебряный", "threshold": 20000, "earn_percent": 7},
                {
                    "code": "gold",
                    "name": "Золотой",
                    "threshold": 60000,
                    "earn_percent": 10,
                    "burn_max_percent": 50,
                },
            ],
        },
        "max_discount_percent": 50,
        "stacking": {"groups": {"basket": {"mode": "best"}}},
        "promotions": [
            {
                "id": "weekend-coffee",
                "name": "Кофе и чай −10% по выходным",
                "when": {"weekday": ["sat", "sun"]},
                "lines": {"category": ["кофе и чай"]},
                "effects": [
                    {"kind": "line_discount", "percent": 10},
                    {"kind": "receipt_message", "text": "Выходные с кофе: −10% на кофе и чай"},
                ],
                "priority": 20,
            },
            {
                "id": "snacks-3-for-2",
                "name": "Снеки: 3 по цене 2",
                "lines": {"category": ["снеки"]},
                "effects": [{"kind": "cheapest_free", "every": 3, "free": 1}],
                "priority": 30,
            },
            {
                "id": "morning-coffee-x3",
                "name": "Утренний кофе: баллы ×3 до 10:00",
                "when": {"hours": ["07:00-10:00"], "member": True},
                "lines": {"category": ["кофе и чай"]},
                "effects": [{"kind": "earn_multiplier", "factor": 3}],
                "priority": 10,
            },
            {
                "id": "birthday-x2",
                "name": "День рождения: баллы ×2",
                "when": {"birthday": {"days_before": 3, "days_after": 3}},
                "effects": [
                    {"kind": "earn_multiplier", "factor": 2},
                    {"kind": "cashier_message", "text": "Поздравьте покупателя с днём рождения"},
                ],
                "priority": 5,
            },
            {
                "id": "big-basket-300",
                "name": "−300 ₽ при покупке от 3000 ₽",
                "when": {"basket": {"amount": {"min": 3000}}, "member": True},
                "effects": [{"kind": "basket_discount", "amount": "300.00"}],
                "group": "basket",
                "limits": [{"count": 1, "period": "week"}],
                "budget": {"money": "300000.00"},
            },
            {
                "id": "gold-basket-5",
                "name": "Золотым: −5% на корзину от 3000 ₽",
                "when": {"tier": ["gold"], "basket": {"amount": {"min": 3000}}},
                "effects": [{"kind": "basket_discount", "percent": 5}],
                "group": "basket",
            },
            {
                "id": "pets-food-points",
                "name": "Зоотовары: +20 баллов за каждую единицу",
                "lines": {"category": ["зоотовары"]},
                "effects": [{"kind": "points_per_unit", "points": 20}],
            },
        ],
    }
