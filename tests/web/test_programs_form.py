"""The promotion form's mapping (web.programs.form): a stored promotion shown in the
rows and read back is the same promotion; error paths land on the right inputs."""

from __future__ import annotations

from typing import Any

from kopilka.domain.rules.model import Promotion
from kopilka.web.programs import form as pf

TZ = "Europe/Moscow"


def roundtrip(p: dict[str, Any]) -> dict[str, Any]:
    state = pf.from_promotion(p, TZ)
    assert state.representable
    built = pf.to_promotion(state.values, state.weekdays, TZ)
    return built.promotion


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return Promotion.model_validate(a) == Promotion.model_validate(b)


def test_a_promotion_with_every_kind_of_row_survives_the_form() -> None:
    p = {
        "id": "big",
        "name": "Everything",
        "description": "d",
        "priority": 7,
        "group": "g1",
        "exclusive": True,
        "max_discount": "500",
        "starts_at": "2026-12-01T00:00:00+03:00",
        "ends_at": "2026-12-31T00:00:00+03:00",
        "when": {
            "all": [
                {"city": ["Moscow", "Tver"]},
                {"not": {"store": ["S9"]}},
                {"dates": {"from": "2026-12-01", "to": "2026-12-20"}},
                {"days_since_last_purchase": {"min": "30"}},
                {"birthday": {"days_before": 3, "days_after": 2}},
                {"basket": {"amount": {"min": "1000"}, "lines": {"category": ["tea"]}}},
                {"coupon": True},
                {"first_purchase": False},
                {"weekday": ["sat", "sun"]},
                {"hours": ["10:00-14:00"]},
            ]
        },
        "lines": {"any": [{"category": ["coffee"]}, {"not": {"sku": ["X1"]}}]},
        "effects": [
            {"kind": "line_discount", "percent": "10"},
            {"kind": "cheapest_free", "every": 3, "free": 1},
            {
                "kind": "bundle_price",
                "items": [{"category": ["cheese"], "quantity": 2}, {"sku": ["W1"], "quantity": 1}],
                "price": "999",
            },
            {"kind": "gift", "sku": "G", "name": "Mug", "quantity": 1},
        ],
        "limits": [{"count": 1, "period": "day"}, {"count": 3, "period": "month"}],
        "budget": {"money": "100000", "points": "5000"},
    }
    back = roundtrip(p)
    assert same(p, back), back
    # The schedule rows went to the schedule inputs.
    state = pf.from_promotion(p, TZ)
    assert state.weekdays == ["sat", "sun"] and state.values["sched_hours"] == "10:00-14:00"
    assert state.values["starts_at"] == "2026-12-01T00:00"


def test_any_with_a_schedule_and_a_too_deep_tree() -> None:
    p = {
        "id": "x",
        "name": "x",
        "when": {"any": [{"tier": ["gold"]}, {"tag": ["vip"]}]},
        "effects": [{"kind": "earn_multiplier", "factor": "2"}],
    }
    assert same(p, roundtrip(p))
    state = pf.from_promotion(p, TZ)
    state.weekdays = ["mon"]
    built = pf.to_promotion(state.values, state.weekdays, TZ)
    assert built.promotion["when"] == {
        "all": [{"any": [{"tier": ["gold"]}, {"tag": ["vip"]}]}, {"weekday": ["mon"]}]
    }
    assert same(built.promotion, roundtrip(built.promotion))
    deep = {**p, "when": {"any": [{"all": [{"tier": ["gold"]}, {"tag": ["vip"]}]}]}}
    assert not pf.from_promotion(deep, TZ).representable


def test_error_paths_map_onto_inputs() -> None:
    form = {
        "id": "p",
        "name": "P",
        "when_mode": "all",
        "c0_kind": "tier",
        "c0_values": "gold",
        "c3_kind": "basket",
        "c3_min": "abc",
        "e0_kind": "receipt_message",
        "e0_text": "hi",
        "e2_kind": "line_discount",
        "e2_percent": "150",
        "limit1_count": "0",
        "limit1_period": "day",
    }
    built = pf.to_promotion(form, ["sat"], TZ)
    problems = [
        {"field": "effects[1].percent", "detail": "must be between 0 and 100"},
        {"field": "when.all[1].basket.amount.min", "detail": "bad"},
        {"field": "when.all[0].tier", "detail": "unknown tier 'gold'"},
        {"field": "when.all[2].weekday[0]", "detail": "bad day"},
        {"field": "limits[0].count", "detail": "must be at least 1"},
        {"field": "ends_at", "detail": "must be after starts_at"},
        {"field": "stacking", "detail": "elsewhere"},
    ]
    assert pf.errors_by_field(problems, built.fields) == {
        "e2_percent": "must be between 0 and 100",
        "c3_min": "bad",
        "c0_values": "unknown tier 'gold'",
        "sched_weekday": "bad day",
        "limit1_count": "must be at least 1",
        "ends_at": "must be after starts_at",
        "": "stacking: elsewhere",
    }


def test_what_cannot_be_read_is_refused_at_its_input() -> None:
    form = {"id": "p", "name": "P", "starts_at": "someday", "e0_kind": "bundle_price"}
    form["e0_items"] = "cheese and wine"
    try:
        pf.to_promotion(form, [], TZ)
    except pf.FormInvalid as exc:
        assert set(exc.errors) == {"starts_at", "e0_items"}
    else:
        raise AssertionError("not refused")


def test_a_weekday_among_any_rows_is_not_mistaken_for_the_schedule() -> None:
    p = {
        "id": "x",
        "name": "x",
        "when": {"any": [{"weekday": ["sat"]}, {"tier": ["gold"]}]},
        "effects": [{"kind": "fixed_points", "points": "5"}],
    }
    assert same(p, roundtrip(p))
    both = {**p, "when": {"all": [p["when"], {"hours": ["10:00-12:00"]}]}}
    assert not pf.from_promotion(both, TZ).representable


def test_the_holdout_survives_the_form_and_its_error_lands_on_its_input() -> None:
    p = {
        "id": "autumn",
        "name": "Autumn points",
        "effects": [{"kind": "fixed_points", "points": "10"}],
        "holdout_percent": "12.5",
    }

    back = roundtrip(p)
    none = roundtrip({**p, "holdout_percent": "0"})

    assert same(p, back), back
    assert "holdout_percent" not in none
    assert pf.field_of("holdout_percent", {}) == "holdout_percent"


def test_the_console_form_keeps_who_funds_a_promotion() -> None:
    p = {
        "id": "a-bonus",
        "name": "A: +10",
        "when": {"partner": ["a"]},
        "effects": [{"kind": "fixed_points", "points": "10"}],
        "funded_by": "partner",
        "burn_at": "partner",
    }

    state = pf.from_promotion(p, "Europe/Moscow")
    built = pf.to_promotion(state.values, state.weekdays, "Europe/Moscow").promotion

    assert (built.get("funded_by"), built.get("burn_at")) == ("partner", "partner")
