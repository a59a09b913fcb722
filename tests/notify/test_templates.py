"""The shipped templates render in both languages with Decimal amounts; the sandbox keeps
a program's own template from reaching Python internals."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest

from kopilka.notify import consent, messages, templates
from kopilka.notify.backoff import retry_delay
from kopilka.notify.channels.webhook import sign, verify
from kopilka.notify.config import ConfigError, load
from kopilka.notify.sms import sms_length

CONTEXTS = {
    "purchase_confirmed": {
        "points_earned": Decimal("1234.5"),
        "points_redeemed": Decimal("3"),
        "balance": Decimal("1500"),
    },
    "welcome": {"points": Decimal("100")},
    "login_code": {"code": "042917"},
    "points_expiring": {"points": Decimal("21"), "expires_on": "01.12.2026"},
    "tier_changed": {"tier": "Золото", "up": True},
    "discount_changed": {"percent": Decimal("7")},
    "birthday": {"points": Decimal("500")},
    "coupon_issued": {"coupon": "SPRING-7", "title": "−10%", "valid_until": "31.12.2026"},
    "giftcard_balance": {"card_tail": "4321", "balance": Decimal("1234.50")},
    "draw_won": {"draw": "Новогодний", "prize": "Чайник", "points": Decimal("0")},
}


@pytest.mark.parametrize("key", sorted(templates.DEFAULTS), ids="-".join)
def test_every_shipped_template_renders(key: tuple[str, str, str]) -> None:
    name, channel, locale = key
    ctx = {**CONTEXTS[name], "program": "Копилка", "name": "Анна"}

    out = templates.render(templates.DEFAULTS[key], ctx, locale=locale, name=name)

    assert out.body and "{{" not in out.body and "{%" not in out.body
    assert (out.subject is not None) == (channel == "email")
    if channel == "sms":
        assert sms_length(out.body).segments <= 2, out.body


def test_every_message_has_an_sms_in_both_languages() -> None:
    for name in templates.NAMES:
        assert "sms" in {c for n, c, _ in templates.DEFAULTS if n == name}, name
        for lang in ("ru", "en"):
            assert (name, "sms", lang) in templates.DEFAULTS


def test_amounts_are_formatted_like_the_console() -> None:
    tpl = templates.DEFAULTS[("purchase_confirmed", "sms", "ru")]
    ctx = {**CONTEXTS["purchase_confirmed"], "program": "Копилка", "name": ""}
    gift = templates.DEFAULTS[("giftcard_balance", "sms", "en")]

    assert templates.render(tpl, ctx, locale="ru", name="x").body == (
        "Начислено 1\xa0234,50 балла. Списано 3 балла. Баланс: 1\xa0500 баллов. Копилка"
    )
    assert templates.render(
        gift, {**CONTEXTS["giftcard_balance"], "program": "K"}, locale="en", name="x"
    ).body == ("Gift card *4321 balance: 1,234.50 ₽. K")


def test_a_float_never_reaches_a_message() -> None:
    tpl = templates.Template("{{ x|money }}")

    with pytest.raises(templates.TemplateFailed):
        templates.render(tpl, {"x": 1.5}, locale="ru", name="x")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ missing_variable }}",
        "{% if %}",
    ],
)
def test_a_bad_or_hostile_template_fails_with_its_name(source: str) -> None:
    with pytest.raises(templates.TemplateFailed, match="'welcome'"):
        templates.render(templates.Template(source), {}, locale="ru", name="welcome")


def test_the_login_code_goes_without_consent_and_nothing_else_does() -> None:
    shy = consent.Contact(1, "Анна", "+79030000001", "a@example.org", False, False, "active")
    keen = consent.Contact(2, "Иван", "+79030000002", "i@example.org", True, True, "active")
    gone = consent.Contact(3, "Олег", "+79030000003", "o@example.org", True, True, "merged")

    assert consent.recipient("login_code", "sms", shy) == "+79030000001"
    assert consent.recipient("login_code", "email", keen) is None
    assert consent.recipient("purchase_confirmed", "sms", shy) is None
    assert consent.recipient("purchase_confirmed", "email", shy) is None
    assert consent.recipient("purchase_confirmed", "sms", keen) == "+79030000002"
    assert consent.recipient("birthday", "email", keen) == "i@example.org"
    assert consent.recipient("birthday", "sms", gone) is None


def test_an_event_with_nothing_earned_or_burned_sends_nothing() -> None:
    assert messages.plan("purchase.confirmed", {"points_earned": "0.00"}) is None
    assert messages.plan("refund.uncollected", {"points": "5.00"}) is None
    plan = messages.plan("purchase.confirmed", {"points_earned": "5.50", "balance": {}})
    assert plan is not None and plan.context["points_earned"] == Decimal("5.50")


def test_backoff_doubles_up_to_the_cap_with_jitter_between_half_and_all() -> None:
    rng = random.Random(7)

    delays = [retry_delay(n, base_s=30, cap_s=600, rng=rng) for n in range(1, 9)]

    steps = [30, 60, 120, 240, 480, 600, 600, 600]
    for got, step in zip(delays, steps, strict=True):
        assert timedelta(seconds=step / 2) <= got <= timedelta(seconds=step)
    with pytest.raises(ValueError):
        retry_delay(0)


def test_webhook_signature_covers_timestamp_and_body() -> None:
    body = b'{"topic":"purchase.confirmed"}'
    sig = sign("s" * 16, 1_700_000_000, body)

    assert verify("s" * 16, timestamp="1700000000", signature=sig, body=body, now=1_700_000_100)
    assert not verify("s" * 16, timestamp="1700000000", signature=sig, body=body + b" ")
    assert not verify("s" * 16, timestamp="1700000001", signature=sig, body=body, now=1.7e9)
    assert not verify("s" * 16, timestamp="1700000000", signature=sig, body=body, now=1.7e9 + 301)


def test_settings_come_from_a_file_and_the_environment_wins(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "notify.toml"
    path.write_text(
        '[notify]\nsms_provider = "smsru"\nsmsru_api_id = "from-file"\nsmsru_test = true\n'
        'smtp_host = "mail.example.org"\nsmtp_from = "loyalty@example.org"\n'
        "notify_max_attempts = 5\n"
    )

    got = load({"KOPILKA_NOTIFY_CONFIG": str(path), "KOPILKA_SMSRU_API_ID": "from-env"})

    assert sorted(got.channels) == ["email", "sms", "webhook"]
    assert got.channels["sms"].api_id == "from-env"  # type: ignore[attr-defined]
    assert got.channels["sms"].test is True  # type: ignore[attr-defined]
    assert got.channels["email"].port == 587  # type: ignore[attr-defined]
    assert got.policy.max_attempts == 5
    with pytest.raises(ConfigError, match="KOPILKA_SMS_URL"):
        load({"KOPILKA_SMS_PROVIDER": "json"})
    with pytest.raises(ConfigError, match="KOPILKA_SMTP_SECURITY"):
        load({"KOPILKA_SMTP_HOST": "h", "KOPILKA_SMTP_FROM": "a@b", "KOPILKA_SMTP_SECURITY": "tls"})
    assert load({}).channels.keys() == {"webhook"}


def test_the_events_services_write_become_these_messages() -> None:
    tier = messages.plan(
        "tier.changed",
        {
            "account_id": 7,
            "customer_id": 0,
            "old": "base",
            "new": "gold",
            "new_name": "Золото",
            "direction": "up",
            "since": None,
        },
    )
    won = messages.plan(
        "draw.won",
        {
            "draw": "ny",
            "name": "Новогодний",
            "place": 1,
            "account_id": 7,
            "prize": "Чайник",
            "points": None,
            "goods": "Чайник",
        },
    )
    code = messages.plan(
        "sms.send", {"to": "+79030000001", "template": "phone_code", "code": "042917"}
    )

    assert tier is not None and (tier.name, tier.context) == (
        "tier_changed",
        {"tier": "Золото", "up": True},
    )
    assert won is not None and won.name == "draw_won"
    assert won.context == {"draw": "Новогодний", "prize": "Чайник", "points": Decimal(0)}
    assert code is not None and (code.name, code.phone) == ("login_code", "+79030000001")
    ctx = {**won.context, "program": "Копилка", "name": "Анна"}
    text = templates.render(
        templates.DEFAULTS[("draw_won", "sms", "ru")], ctx, locale="ru", name="d"
    )
    assert text.body == "Поздравляем! Вы выиграли в розыгрыше «Новогодний»: Чайник. Копилка"


def test_the_editor_preview_shows_the_text_and_its_cost_in_parts() -> None:
    tpl = templates.Template("{{ name }}, +{{ points_earned|points }} 🎉")

    got = templates.preview("purchase_confirmed", "sms", "ru", tpl, program="Копилка")

    assert got.rendered.body == "Анна, +125 баллов 🎉"
    assert got.length is not None
    assert (got.length.encoding, got.length.units, got.length.segments) == ("ucs2", 20, 1)
    assert set(templates.SAMPLES) == set(templates.NAMES)
