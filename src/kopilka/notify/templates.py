"""Transactional messages: Jinja2 templates run in a sandbox, per language and channel.

The package ships a default for every message in Russian and English (``DEFAULTS``); a
program may replace any of them (table ``message_templates``, edited in the console).
Templates are user text: they run in ``SandboxedEnvironment`` (no attribute access to
internals, no imports), see only the context given, and a template that fails to compile
or render is an error naming the template, never a crash of the worker.

Filters: ``money`` (``1 234,50 ₽``), ``points`` (``3 балла`` / ``3 points``), ``number``;
the same formats as the console (``kopilka.formatting``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, pass_context
from jinja2.sandbox import SandboxedEnvironment

from kopilka.formatting import DEFAULT, LANGS, money, number, points
from kopilka.notify.sms import SmsLength, sms_length

CHANNELS = ("sms", "email")
# The context key of the program's name of its points (``ProgramProfile.points_forms``),
# which the ``points`` filter uses: ``3 мили``.  Absent: ``балл``/``point``.
POINTS_FORMS = "points_forms"


@dataclass(frozen=True, slots=True)
class Template:
    """``subject`` is for e-mail only; ``body`` is the SMS text or the e-mail's text."""

    body: str
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    body: str
    subject: str | None = None


class TemplateFailed(Exception):
    """A template that does not compile or render; the message names it."""


def _t(body: str, subject: str | None = None) -> Template:
    return Template(body, subject)


_SIGN_RU = "\n\n{{ program }}"
_SIGN_EN = "\n\n{{ program }}"

# (name, channel, locale) -> Template
DEFAULTS: dict[tuple[str, str, str], Template] = {
    # points earned and burned after a confirmed purchase (the seed flow)
    ("purchase_confirmed", "sms", "ru"): _t(
        "{% if points_earned %}Начислено {{ points_earned|points }}. {% endif %}"
        "{% if points_redeemed %}Списано {{ points_redeemed|points }}. {% endif %}"
        "Баланс: {{ balance|points }}. {{ program }}"
    ),
    ("purchase_confirmed", "sms", "en"): _t(
        "{% if points_earned %}Earned {{ points_earned|points }}. {% endif %}"
        "{% if points_redeemed %}Redeemed {{ points_redeemed|points }}. {% endif %}"
        "Balance: {{ balance|points }}. {{ program }}"
    ),
    ("purchase_confirmed", "email", "ru"): _t(
        "Здравствуйте{% if name %}, {{ name }}{% endif %}!\n\n"
        "{% if points_earned %}За покупку начислено {{ points_earned|points }}.\n{% endif %}"
        "{% if points_redeemed %}Списано {{ points_redeemed|points }}.\n{% endif %}"
        "Ваш баланс: {{ balance|points }}." + _SIGN_RU,
        "Баллы за покупку — {{ program }}",
    ),
    ("purchase_confirmed", "email", "en"): _t(
        "Hello{% if name %}, {{ name }}{% endif %}!\n\n"
        "{% if points_earned %}You earned {{ points_earned|points }}.\n{% endif %}"
        "{% if points_redeemed %}You redeemed {{ points_redeemed|points }}.\n{% endif %}"
        "Your balance: {{ balance|points }}." + _SIGN_EN,
        "Points for your purchase — {{ program }}",
    ),
    ("welcome", "sms", "ru"): _t(
        "{{ name or 'Здравствуйте' }}, добро пожаловать в {{ program }}!"
        "{% if points %} Вам начислено {{ points|points }}.{% endif %}"
    ),
    ("welcome", "sms", "en"): _t(
        "{{ name or 'Hello' }}, welcome to {{ program }}!"
        "{% if points %} You got {{ points|points }}.{% endif %}"
    ),
    ("welcome", "email", "ru"): _t(
        "Здравствуйте{% if name %}, {{ name }}{% endif %}!\n\nВы стали участником программы"
        " {{ program }}.{% if points %} Вам начислено {{ points|points }}.{% endif %}" + _SIGN_RU,
        "Добро пожаловать в {{ program }}",
    ),
    ("welcome", "email", "en"): _t(
        "Hello{% if name %}, {{ name }}{% endif %}!\n\nYou have joined {{ program }}."
        "{% if points %} You got {{ points|points }}.{% endif %}" + _SIGN_EN,
        "Welcome to {{ program }}",
    ),
    # the one-time login code: SMS only, always (ADR 0013)
    ("login_code", "sms", "ru"): _t("Код: {{ code }}. Никому его не сообщайте. {{ program }}"),
    ("login_code", "sms", "en"): _t("Code: {{ code }}. Do not share it. {{ program }}"),
    # expires_on: the last day the points can be spent
    ("points_expiring", "sms", "ru"): _t(
        "Успейте потратить {{ points|points }} до {{ expires_on }} включительно. {{ program }}"
    ),
    ("points_expiring", "sms", "en"): _t(
        "Use {{ points|points }} by {{ expires_on }}: they expire after that day. {{ program }}"
    ),
    ("points_expiring", "email", "ru"): _t(
        "Здравствуйте{% if name %}, {{ name }}{% endif %}!\n\n{{ points|points }} можно"
        " потратить до {{ expires_on }} включительно, потом они сгорят." + _SIGN_RU,
        "Скоро сгорят баллы — {{ program }}",
    ),
    ("points_expiring", "email", "en"): _t(
        "Hello{% if name %}, {{ name }}{% endif %}!\n\nYou can spend {{ points|points }} until"
        " {{ expires_on }}; they expire after that day." + _SIGN_EN,
        "Your points expire soon — {{ program }}",
    ),
    ("tier_changed", "sms", "ru"): _t(
        "{% if up %}Поздравляем! {% endif %}Ваш уровень теперь «{{ tier }}». {{ program }}"
    ),
    ("tier_changed", "sms", "en"): _t(
        "{% if up %}Congratulations! {% endif %}Your tier is now “{{ tier }}”. {{ program }}"
    ),
    ("tier_changed", "email", "ru"): _t(
        "Здравствуйте{% if name %}, {{ name }}{% endif %}!\n\nВаш уровень теперь"
        " «{{ tier }}»." + _SIGN_RU,
        "Ваш новый уровень — {{ program }}",
    ),
    ("tier_changed", "email", "en"): _t(
        "Hello{% if name %}, {{ name }}{% endif %}!\n\nYour tier is now “{{ tier }}”." + _SIGN_EN,
        "Your new tier — {{ program }}",
    ),
    ("discount_changed", "sms", "ru"): _t(
        "Ваша скидка теперь {{ percent|number(0) }}%. {{ program }}"
    ),
    ("discount_changed", "sms", "en"): _t(
        "Your discount is now {{ percent|number(0) }}%. {{ program }}"
    ),
    ("birthday", "sms", "ru"): _t(
        "С днём рождения{% if name %}, {{ name }}{% endif %}!"
        "{% if points %} Дарим {{ points|points }}.{% endif %} {{ program }}"
    ),
    ("birthday", "sms", "en"): _t(
        "Happy birthday{% if name %}, {{ name }}{% endif %}!"
        "{% if points %} Here are {{ points|points }}.{% endif %} {{ program }}"
    ),
    ("birthday", "email", "ru"): _t(
        "С днём рождения{% if name %}, {{ name }}{% endif %}!"
        "{% if points %}\n\nДарим вам {{ points|points }}.{% endif %}" + _SIGN_RU,
        "С днём рождения! — {{ program }}",
    ),
    ("birthday", "email", "en"): _t(
        "Happy birthday{% if name %}, {{ name }}{% endif %}!"
        "{% if points %}\n\nHere are {{ points|points }} for you.{% endif %}" + _SIGN_EN,
        "Happy birthday! — {{ program }}",
    ),
    ("coupon_issued", "sms", "ru"): _t(
        "Ваш купон {{ coupon }}{% if title %}: {{ title }}{% endif %}"
        "{% if valid_until %}, действует до {{ valid_until }}{% endif %}. {{ program }}"
    ),
    ("coupon_issued", "sms", "en"): _t(
        "Your coupon {{ coupon }}{% if title %}: {{ title }}{% endif %}"
        "{% if valid_until %}, valid until {{ valid_until }}{% endif %}. {{ program }}"
    ),
    ("giftcard_balance", "sms", "ru"): _t(
        "Баланс подарочной карты *{{ card_tail }}: {{ balance|money }}. {{ program }}"
    ),
    ("giftcard_balance", "sms", "en"): _t(
        "Gift card *{{ card_tail }} balance: {{ balance|money }}. {{ program }}"
    ),
    ("draw_won", "sms", "ru"): _t(
        "Поздравляем! Вы выиграли в розыгрыше «{{ draw }}»"
        "{% if prize %}: {{ prize }}{% endif %}"
        "{% if points %} ({{ points|points }}){% endif %}. {{ program }}"
    ),
    ("draw_won", "sms", "en"): _t(
        "Congratulations! You won in the “{{ draw }}” draw"
        "{% if prize %}: {{ prize }}{% endif %}"
        "{% if points %} ({{ points|points }}){% endif %}. {{ program }}"
    ),
    ("draw_won", "email", "ru"): _t(
        "Здравствуйте{% if name %}, {{ name }}{% endif %}!\n\nВы выиграли в розыгрыше"
        " «{{ draw }}»{% if prize %}: {{ prize }}{% endif %}"
        "{% if points %} ({{ points|points }}){% endif %}." + _SIGN_RU,
        "Вы выиграли! — {{ program }}",
    ),
    ("draw_won", "email", "en"): _t(
        "Hello{% if name %}, {{ name }}{% endif %}!\n\nYou won in the “{{ draw }}” draw"
        "{% if prize %}: {{ prize }}{% endif %}{% if points %} ({{ points|points }}){% endif %}."
        + _SIGN_EN,
        "You won! — {{ program }}",
    ),
}

NAMES = tuple(sorted({name for name, _, _ in DEFAULTS}))

# Example values for each message: the editor's preview (and the tests) render with these.
SAMPLES: dict[str, dict[str, Any]] = {
    "purchase_confirmed": {
        "points_earned": Decimal("125"),
        "points_redeemed": Decimal("40"),
        "balance": Decimal("1234.5"),
    },
    "welcome": {"points": Decimal("100")},
    "login_code": {"code": "042917"},
    "points_expiring": {"points": Decimal("210"), "expires_on": "31.12.2026"},
    "tier_changed": {"tier": "Gold", "up": True},
    "discount_changed": {"percent": Decimal("7")},
    "birthday": {"points": Decimal("500")},
    "coupon_issued": {"coupon": "SPRING-7", "title": "-10%", "valid_until": "31.12.2026"},
    "giftcard_balance": {"card_tail": "4321", "balance": Decimal("1234.50")},
    "draw_won": {"draw": "New Year", "prize": "Kettle", "points": Decimal("0")},
}


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):  # never: money and points are Decimal or strings
        raise TypeError("a float reached a message template")
    return value if isinstance(value, Decimal) else Decimal(str(value))


@lru_cache(maxsize=len(LANGS))
def environment(locale: str) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        autoescape=False, undefined=StrictUndefined, keep_trailing_newline=False
    )
    env.filters["money"] = lambda v: money(locale, _dec(v))
    env.filters["points"] = pass_context(
        lambda ctx, v: points(locale, _dec(v) or Decimal(0), ctx.get(POINTS_FORMS))
    )
    env.filters["number"] = lambda v, places=2: number(locale, _dec(v), places)
    return env


def default(name: str, channel: str, locale: str) -> Template | None:
    """The shipped template, in ``locale`` or else in the default language."""
    return DEFAULTS.get((name, channel, locale)) or DEFAULTS.get((name, channel, DEFAULT))


def render(template: Template, context: Mapping[str, Any], *, locale: str, name: str) -> Rendered:
    """Render in the sandbox; ``TemplateFailed`` names the template on any error."""
    env = environment(locale if locale in LANGS else DEFAULT)
    try:
        body = env.from_string(template.body).render(context).strip()
        subject = (
            None
            if template.subject is None
            else " ".join(env.from_string(template.subject).render(context).split())
        )
    except (TemplateError, TypeError, ArithmeticError, ValueError) as exc:
        raise TemplateFailed(f"template {name!r} ({locale}): {exc}") from exc
    return Rendered(body, subject)


@dataclass(frozen=True, slots=True)
class Preview:
    rendered: Rendered
    length: SmsLength | None  # SMS only: encoding, length and parts


def preview(
    name: str,
    channel: str,
    locale: str,
    template: Template,
    *,
    program: str = "Kopilka",
    points_forms: Mapping[str, str] | None = None,
) -> Preview:
    """``template`` rendered with the message's sample values, with its SMS cost; raises
    ``TemplateFailed`` (the editor shows the message next to the field)."""
    context = {**SAMPLES.get(name, {}), "program": program, "name": "Анна"}
    if points_forms:
        context[POINTS_FORMS] = dict(points_forms)
    out = render(template, context, locale=locale, name=name)
    return Preview(out, sms_length(out.body) if channel == "sms" else None)
