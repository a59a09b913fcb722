"""The access matrix: for every route of the app, who may call it (issue 10).

Each route is declared once here: the permission it needs (``domain/roles.py``), and what
its URL points at:

- ``PROGRAM``: a thing of the whole program (a promotion, a coupon series, a draw…): a
  caller of the program reaches it whatever its partner;
- ``PARTNER``: a thing of one store of a partner (a store, a terminal, a receipt, a fraud
  alert, a customer of the store): a partner-scoped caller (partner, store manager,
  cashier) reaches only its own;
- ``PARTNER_WIDE``: a thing of a partner as a whole (its webhook, its saved report): its
  partner's users reach it, a store's staff do not;
- ``NONE``: no object (a list, a form): the answer itself must be filtered.

``named``: the URL names the program (path ``{code}`` or ``?program=``): another program
is refused with 403; an object of another program or partner is answered 404, as one that
does not exist (ADR 0026).

Special kinds: ``PUBLIC`` (no caller: health, docs, login forms, the unsubscribe page),
``POS`` (a terminal key), ``MEMBER`` (the customer cabinet's session).  A new route without
a line here fails ``test_every_route_is_declared``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kopilka.domain.roles import Perm

P = Perm
PROGRAM, PARTNER, NONE = "program", "partner", "none"
# a thing of a partner as a whole (its webhook, its saved report): not a store's staff's
PARTNER_WIDE = "partner_wide"
PUBLIC, POS, MEMBER = "public", "pos", "member"


@dataclass(frozen=True)
class Rule:
    perm: Perm | None  # None: any signed-in caller
    obj: str = NONE
    named: bool = False  # the program is named in the URL (another one: 403)
    params: dict[str, str] = field(default_factory=dict)  # path param -> world value
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None  # None: an empty JSON object / form
    run: bool = True  # False: declared, not called (says why in ``why``)
    deny_only: bool = False  # destructive: only the cells that must be refused are called
    also: Perm | None = None  # a second permission the route needs
    roles: frozenset[str] | None = None  # only these roles (e.g. a report's editors)
    whole_program: bool = False  # refused to partner-scoped callers (covers every store)
    partner_level: bool = False  # refused (403) to a store's staff: a partner's as a whole
    why: str = ""


def r(perm: Perm | None, obj: str = NONE, **kw: Any) -> Rule:
    return Rule(perm, obj, **kw)


def api(perm: Perm | None, obj: str = NONE, **kw: Any) -> Rule:
    kw.setdefault("named", True)
    return Rule(perm, obj, **kw)


A = "/api/admin/v1"
PC = "/api/admin/v1/programs/{code}"
S = "/api/admin/v1/settlement/{program}"

# The program is named by ``?program=`` (reports) or in the body (events, offers).
REPORT_Q = {"program": "{program}", "from": "2026-01-01", "to": "2026-12-31", "min_support": "0.5"}

ROUTES: dict[str, Rule] = {
    # --- no caller ------------------------------------------------------------------------
    "GET /openapi.json": r(None, PUBLIC),
    "GET /docs": r(None, PUBLIC),
    "GET /health": r(None, PUBLIC),
    "GET /healthz": r(None, PUBLIC),
    "GET /readyz": r(None, PUBLIC),
    "GET /metrics": r(None, PUBLIC, why="its own metrics token"),
    "MOUNT /static": r(None, PUBLIC),
    "GET /admin/login": r(None, PUBLIC),
    "POST /admin/login": r(None, PUBLIC),
    "GET /unsubscribe/{token}": r(None, PUBLIC, why="the campaign's signed token"),
    "POST /unsubscribe/{token}": r(None, PUBLIC, why="the campaign's signed token"),
    "GET /my/": r(None, PUBLIC),
    "GET /my": r(None, PUBLIC),
    "GET /my/{program}/lang/{lang}": r(None, PUBLIC),
    "GET /my/{program}/login": r(None, PUBLIC),
    "GET /my/{program}/brand.css": r(None, PUBLIC, why="the program's public colours"),
    "GET /my/{program}/logo": r(None, PUBLIC, why="the program's public logo"),
    "POST /my/{program}/login": r(None, PUBLIC),
    "POST /my/{program}/login/code": r(None, PUBLIC),
    # --- the member cabinet: a member's session, its own program only ----------------------
    "POST /my/{program}/logout": r(None, MEMBER, run=False, why="ends the member's session"),
    "GET /my/{program}/": r(None, MEMBER),
    "GET /my/{program}/history": r(None, MEMBER),
    "GET /my/{program}/card": r(None, MEMBER),
    "GET /my/{program}/card/qr": r(None, MEMBER),
    "POST /my/{program}/card": r(None, MEMBER),
    "GET /my/{program}/profile": r(None, MEMBER),
    "POST /my/{program}/profile": r(None, MEMBER),
    "GET /my/{program}/data": r(None, MEMBER),
    "GET /my/{program}/data/export.json": r(None, MEMBER),
    "GET /my/{program}/card/offline-token": r(None, MEMBER),
    "POST /my/{program}/data/delete": r(
        None, MEMBER, run=False, why="erases the member (its refusal elsewhere is tested)"
    ),
    # --- POS: a terminal key -----------------------------------------------------------------
    "GET /api/pos/v1/customers/lookup": r(None, POS, query={"identifier": "{card}"}),
    "GET /api/pos/v1/coupons/{code}": r(None, POS, params={"code": "{coupon}"}),
    "POST /api/pos/v1/coupons/{code}/redeem": r(
        None, POS, params={"code": "{coupon}"}, body={"identifier": "{card}"}, deny_only=True
    ),
    "POST /api/pos/v1/purchases/calculate": r(None, POS),
    "POST /api/pos/v1/purchases/batch": r(None, POS),
    "POST /api/pos/v1/purchases": r(None, POS),
    "POST /api/pos/v1/purchases/{receipt_id}/confirm": r(None, POS),
    "POST /api/pos/v1/purchases/{receipt_id}/cancel": r(None, POS),
    "POST /api/pos/v1/purchases/{receipt_id}/refunds": r(
        None, POS, body={"refund_id": "matrix-refund-{scope}"}, deny_only=True
    ),
    "POST /api/pos/v1/customers": r(None, POS),
    "POST /api/pos/v1/customers/{customer_id}/resend-code": r(None, POS),
    "POST /api/pos/v1/customers/{customer_id}/confirm-phone": r(
        None, POS, body={"code": "000000"}, deny_only=True
    ),
    "GET /api/pos/v1/rewards": r(None, POS),
    # the till's own program's keys (another program's keys are a leak: ``pos_markers``)
    "GET /api/pos/v1/offline/keys": r(None, POS),
    "POST /api/pos/v1/rewards/orders": r(None, POS),
    "GET /api/pos/v1/gift-cards/{number}": r(None, POS, params={"number": "{gift_card}"}),
    "POST /api/pos/v1/gift-cards/{number}/activate": r(None, POS, params={"number": "{gift_card}"}),
    # --- admin API: programs and promotions ----------------------------------------------
    f"GET {A}/programs": api(P.PROGRAMS_READ),
    f"GET {PC}": api(P.PROGRAMS_READ, PROGRAM),
    f"PUT {PC}": api(P.PROGRAMS_WRITE, PROGRAM),
    f"GET {PC}/versions": api(P.PROGRAMS_READ, PROGRAM),
    f"GET {PC}/versions/{{version}}": api(P.PROGRAMS_READ, PROGRAM),
    f"GET {PC}/diff": api(P.PROGRAMS_READ, PROGRAM, query={"from": "{version}"}),
    f"POST {PC}/rollback": api(P.PROGRAMS_WRITE, PROGRAM),
    f"GET {PC}/promotions": api(P.PROGRAMS_READ, PROGRAM),
    f"GET {PC}/promotions/{{promotion_id}}/describe": api(P.PROGRAMS_READ, PROGRAM),
    f"GET {PC}/promotions/{{promotion_id}}": api(P.PROGRAMS_READ, PROGRAM),
    f"PUT {PC}/promotions/{{promotion_id}}": api(P.PROGRAMS_WRITE, PROGRAM),
    f"DELETE {PC}/promotions/{{promotion_id}}": api(P.PROGRAMS_WRITE, PROGRAM, deny_only=True),
    f"GET {PC}/partner/promotions": api(P.STORES_READ, PROGRAM),
    # per-program settings and the cabinet's logo (ADR 0027)
    f"GET {PC}/settings": api(P.PROGRAMS_READ, PROGRAM),
    f"PATCH {PC}/settings": api(P.PROGRAMS_WRITE, PROGRAM),
    f"PUT {PC}/logo": api(P.PROGRAMS_WRITE, PROGRAM, why="a JSON body: refused as no image"),
    f"DELETE {PC}/logo": api(P.PROGRAMS_WRITE, PROGRAM, why="the world's programs have none"),
    f"GET {PC}/receipts": api(P.STORES_READ, PROGRAM),
    f"POST {A}/simulate": api(
        P.SIMULATE,
        body={"program": "{program}", "lines": [{"sku": "a", "quantity": 1, "price": 10}]},
    ),
    f"POST {A}/events": api(
        P.EVENTS_AWARD,
        body={
            "program": "{program}",
            "customer": {"card": "{card}"},
            "activity": "partner_event",
            "points": "5",
            "idempotency_key": "matrix-{who}-{program}",
        },
    ),
    f"POST {A}/personal-offers": api(
        P.PROGRAMS_WRITE,
        body={"program": "{program}", "customer": {"card": "{card}"}, "promotion": "{promotion}"},
    ),
    f"POST {A}/personal-offers/withdraw": api(
        P.PROGRAMS_WRITE,
        body={"program": "{program}", "customer": {"card": "{card}"}, "promotion": "{promotion}"},
    ),
    # --- admin API: mechanics ------------------------------------------------------------
    f"POST {PC}/coupon-series": api(P.MECHANICS_WRITE, PROGRAM),
    f"POST {PC}/coupon-surprises": api(P.MECHANICS_WRITE, PROGRAM),
    f"POST {PC}/gift-card-series": api(P.MECHANICS_WRITE, PROGRAM),
    f"POST {PC}/gift-cards/{{number}}/block": api(
        P.MECHANICS_WRITE, PROGRAM, params={"number": "{gift_card}"}, body={"reason": "x"}
    ),
    f"GET {PC}/gift-cards/breakage": api(P.MECHANICS_READ, PROGRAM),
    f"POST {PC}/draws": api(P.MECHANICS_WRITE, PROGRAM),
    f"POST {PC}/draws/{{draw}}/commit": api(P.MECHANICS_WRITE, PROGRAM, deny_only=True),
    f"POST {PC}/draws/{{draw}}/run": api(P.MECHANICS_WRITE, PROGRAM, deny_only=True),
    f"GET {PC}/draws/{{draw}}": api(P.MECHANICS_READ, PROGRAM),
    f"GET {PC}/rewards": api(P.MECHANICS_READ, PROGRAM),
    f"POST {PC}/rewards": api(P.MECHANICS_WRITE, PROGRAM),
    f"PUT {PC}/rewards/{{reward}}": api(P.MECHANICS_WRITE, PROGRAM),
    f"POST {PC}/reward-orders": api(P.MECHANICS_WRITE, PROGRAM),
    f"GET {PC}/reward-orders/{{order_id}}": api(P.MECHANICS_READ, PROGRAM),
    f"POST {PC}/reward-orders/{{order_id}}/issue": api(P.MECHANICS_WRITE, PROGRAM, deny_only=True),
    f"POST {PC}/reward-orders/{{order_id}}/cancel": api(P.MECHANICS_WRITE, PROGRAM, deny_only=True),
    f"GET {PC}/coupon-series": api(P.MECHANICS_READ, PROGRAM),
    f"GET {PC}/coupon-series/{{series}}": api(P.MECHANICS_READ, PROGRAM),
    f"GET {PC}/coupon-series/{{series}}/coupons": api(P.MECHANICS_READ, PROGRAM),
    f"GET {PC}/coupon-series/{{series}}/export": api(P.MECHANICS_READ, PROGRAM),
    f"POST {PC}/coupon-series/{{series}}/block": api(P.MECHANICS_WRITE, PROGRAM, deny_only=True),
    f"POST {PC}/coupon-series/{{series}}/unblock": api(P.MECHANICS_WRITE, PROGRAM),
    f"POST {PC}/coupons/{{coupon}}/block": api(P.MECHANICS_WRITE, PROGRAM, deny_only=True),
    f"POST {PC}/coupons/{{coupon}}/unblock": api(P.MECHANICS_WRITE, PROGRAM),
    f"GET {PC}/gift-card-series": api(P.MECHANICS_READ, PROGRAM),
    f"GET {PC}/gift-cards": api(P.MECHANICS_READ, PROGRAM),
    f"GET {PC}/gift-cards/export": api(P.MECHANICS_READ, PROGRAM),
    f"GET {PC}/gift-cards/{{number}}": api(
        P.MECHANICS_READ, PROGRAM, params={"number": "{gift_card}"}
    ),
    f"POST {PC}/gift-cards/{{number}}/unblock": api(
        P.MECHANICS_WRITE, PROGRAM, params={"number": "{gift_card}"}, body={"reason": "x"}
    ),
    f"GET {PC}/draws": api(P.MECHANICS_READ, PROGRAM),
    f"GET {PC}/draws/{{draw}}/winners": api(P.MECHANICS_READ, PROGRAM),
    f"GET {PC}/reward-orders": api(P.MECHANICS_READ, PROGRAM),
    # --- admin API: customers and cards ----------------------------------------------------
    f"GET {PC}/customers": api(P.CUSTOMERS_READ, PROGRAM, query={"q": "{phone}"}),
    f"GET {PC}/customers/{{customer_id}}": api(P.CUSTOMERS_READ, PARTNER),
    f"POST {PC}/customers/{{customer_id}}/adjust": api(P.CUSTOMERS_WRITE, PARTNER),
    f"POST {PC}/customers/{{customer_id}}/city": api(P.CUSTOMERS_WRITE, PARTNER),
    f"POST {PC}/cards/{{number}}/block": api(P.CARDS_BLOCK, PARTNER, params={"number": "{card}"}),
    f"POST {PC}/cards/{{number}}/unblock": api(P.CARDS_BLOCK, PARTNER, params={"number": "{card}"}),
    f"POST {PC}/cards/{{number}}/replace": api(
        P.CUSTOMERS_WRITE, PARTNER, params={"number": "{card}"}
    ),
    f"POST {PC}/customers/{{customer_id}}/merge": api(P.CUSTOMERS_WRITE, PARTNER),
    f"POST {PC}/customers/{{customer_id}}/virtual-card": api(P.CUSTOMERS_WRITE, PARTNER),
    f"PUT {PC}/customers/{{customer_id}}/consents": api(P.CUSTOMERS_WRITE, PARTNER),
    f"GET {PC}/customers/{{customer_id}}/consents": api(P.CUSTOMERS_READ, PARTNER),
    f"POST {PC}/customers/{{customer_id}}/erase": api(
        P.CUSTOMERS_WRITE, PARTNER, body={"confirm": 1, "reason": "matrix"}, deny_only=True
    ),
    f"POST {A}/customers/{{customer_id}}/erase": r(
        P.CUSTOMERS_WRITE, PARTNER, body={"confirm": 1, "reason": "matrix"}, deny_only=True
    ),
    # --- admin API: stores, terminals, users, audit -----------------------------------------
    f"GET {PC}/stores": api(P.STORES_READ, PROGRAM),
    f"POST {PC}/stores": api(P.STORES_WRITE, PROGRAM),
    f"PATCH {PC}/stores/{{store_code}}": api(P.STORES_WRITE, PARTNER),
    f"GET {PC}/stores/{{store_code}}/terminals": api(P.STORES_READ, PARTNER),
    f"POST {PC}/stores/{{store_code}}/terminals": api(P.STORES_WRITE, PARTNER),
    f"POST {PC}/terminals/{{terminal_id}}/disable": api(P.STORES_WRITE, PARTNER, deny_only=True),
    f"GET {A}/users": api(P.USERS_MANAGE),
    f"POST {A}/users": api(P.USERS_MANAGE, named=False),
    f"PATCH {A}/users/{{user_id}}": api(P.USERS_MANAGE, PROGRAM, named=False),
    f"PUT {A}/users/{{user_id}}/programs": api(P.USERS_MANAGE, PROGRAM, named=False),
    f"GET {A}/audit": api(P.AUDIT_READ),
    f"GET {A}/audit.csv": api(P.AUDIT_READ),
    # --- admin API: campaigns, reports, fraud ------------------------------------------------
    f"POST {PC}/campaigns": api(P.PROGRAMS_WRITE, PROGRAM),
    f"GET {PC}/campaigns": api(P.PROGRAMS_READ, PROGRAM),
    f"GET {PC}/campaigns/{{campaign_id}}/report": api(P.PROGRAMS_READ, PROGRAM),
    f"POST {A}/reports/custom/run": api(P.REPORTS_READ, query={"program": "{program}"}),
    f"GET {A}/reports/custom": api(P.REPORTS_READ, query={"program": "{program}"}),
    f"POST {A}/reports/custom": api(P.REPORTS_READ, query={"program": "{program}"}),
    f"GET {A}/reports/custom/{{report_id}}": api(P.REPORTS_READ, PARTNER_WIDE, named=False),
    f"PUT {A}/reports/custom/{{report_id}}": api(
        P.REPORTS_READ, PARTNER_WIDE, named=False, roles=frozenset({"owner"})
    ),
    f"DELETE {A}/reports/custom/{{report_id}}": api(
        P.REPORTS_READ, PARTNER_WIDE, named=False, deny_only=True, roles=frozenset({"owner"})
    ),
    f"GET {A}/reports/custom/{{report_id}}/schedules": api(
        P.REPORTS_READ, PARTNER_WIDE, named=False
    ),
    f"POST {A}/reports/custom/{{report_id}}/schedules": api(
        P.REPORTS_READ, PARTNER_WIDE, named=False, roles=frozenset({"owner"})
    ),
    f"DELETE {A}/reports/custom/{{report_id}}/schedules/{{schedule_id}}": api(
        P.REPORTS_READ, PARTNER_WIDE, named=False, deny_only=True, roles=frozenset({"owner"})
    ),
    f"GET {PC}/fraud/alerts": api(P.AUDIT_READ, PROGRAM),
    f"GET {PC}/fraud/alerts/{{alert_id}}": api(P.AUDIT_READ, PARTNER),
    f"POST {PC}/fraud/alerts/{{alert_id}}/assign": api(P.CARDS_BLOCK, PARTNER, also=P.AUDIT_READ),
    f"POST {PC}/fraud/alerts/{{alert_id}}/resolve": api(
        P.CARDS_BLOCK, PARTNER, also=P.AUDIT_READ, deny_only=True
    ),
    f"POST {PC}/fraud/alerts/{{alert_id}}/dismiss": api(
        P.CARDS_BLOCK, PARTNER, also=P.AUDIT_READ, deny_only=True
    ),
    f"POST {PC}/fraud/alerts/{{alert_id}}/block-card": api(
        P.CARDS_BLOCK, PARTNER, also=P.AUDIT_READ, deny_only=True
    ),
    f"GET {PC}/fraud/settings": api(P.AUDIT_READ, PROGRAM),
    f"PUT {PC}/fraud/settings": api(P.CARDS_BLOCK, PROGRAM, also=P.AUDIT_READ),
    f"GET {A}/reports/fraud-alerts": api(P.AUDIT_READ, query=REPORT_Q),
    f"GET {A}/reports/promotions": api(P.REPORTS_READ, query=REPORT_Q, whole_program=True),
    f"GET {A}/reports/rfm": api(P.REPORTS_READ, query={"program": "{program}"}, whole_program=True),
    f"GET {A}/reports/rfm/migration": api(P.REPORTS_READ, query=REPORT_Q, whole_program=True),
    f"GET {A}/reports/map": api(P.REPORTS_READ, query={"program": "{program}"}),
    f"GET {A}/reports/summary": api(P.REPORTS_READ, query=REPORT_Q),
    f"GET {A}/reports/stores": api(P.REPORTS_READ, query=REPORT_Q),
    f"GET {A}/reports/cohorts": api(P.REPORTS_READ, query=REPORT_Q),
    f"GET {A}/reports/basket": api(P.REPORTS_READ, query=REPORT_Q),
    # --- admin API: coalition settlement (ADR 0025): a partner's as a whole ----------------
    f"GET {S}/report": api(P.REPORTS_READ, query={"period": "{period}"}, partner_level=True),
    f"GET {S}/periods": api(P.REPORTS_READ, partner_level=True),
    f"GET {S}/statements/{{period}}/{{partner}}.pdf": api(
        P.REPORTS_READ, PARTNER_WIDE, partner_level=True
    ),
    f"PUT {S}/terms": api(P.PROGRAMS_WRITE, why="the body {}: the default terms again"),
    f"POST {S}/periods/{{period}}/close": api(
        P.PROGRAMS_WRITE, why="the world's period is closed already: 409 when allowed"
    ),
    f"PUT {S}/partners/{{code}}": api(
        P.STORES_WRITE, PARTNER_WIDE, params={"code": "{partner}"}, body={"inn": "7701234567"}
    ),
    f"GET {A}/reports/clv": api(
        P.REPORTS_READ,
        query={"program": "{program}", "as_of": "2020-01-01"},  # no data: no model fit
    ),
    # --- console -------------------------------------------------------------------------
    "POST /admin/logout": r(None, run=False, why="ends the caller's session"),
    "POST /admin/lang": r(None),
    "POST /admin/program": r(None),
    "GET /admin": r(None),
    "GET /admin/": r(None),
    "GET /admin/programs": r(P.PROGRAMS_READ),
    "GET /admin/programs/{code}": r(P.PROGRAMS_READ, PROGRAM, params={"code": "{program}"}),
    "GET /admin/programs/{code}/edit": r(P.PROGRAMS_WRITE, PROGRAM, params={"code": "{program}"}),
    "POST /admin/programs/{code}/edit": r(P.PROGRAMS_WRITE, PROGRAM, params={"code": "{program}"}),
    "GET /admin/programs/{code}/promotions/new": r(
        P.PROGRAMS_WRITE, PROGRAM, params={"code": "{program}"}
    ),
    "GET /admin/programs/{code}/promotions/{pid}": r(
        P.PROGRAMS_READ, PROGRAM, params={"code": "{program}", "pid": "{promotion}"}
    ),
    "POST /admin/programs/{code}/promotions/new": r(
        P.PROGRAMS_WRITE, PROGRAM, params={"code": "{program}"}
    ),
    "POST /admin/programs/{code}/promotions/{pid}": r(
        P.PROGRAMS_WRITE, PROGRAM, params={"code": "{program}", "pid": "{promotion}"}
    ),
    "POST /admin/programs/{code}/promotions/{pid}/delete": r(
        P.PROGRAMS_WRITE,
        PROGRAM,
        params={"code": "{program}", "pid": "{promotion}"},
        deny_only=True,
    ),
    "POST /admin/programs/{code}/preview": r(
        P.PROGRAMS_READ, PROGRAM, params={"code": "{program}"}
    ),
    "GET /admin/programs/{code}/settings": r(
        P.PROGRAMS_READ, PROGRAM, params={"code": "{program}"}
    ),
    "POST /admin/programs/{code}/settings": r(
        P.PROGRAMS_WRITE, PROGRAM, params={"code": "{program}"}
    ),
    "GET /admin/programs/{code}/versions": r(
        P.PROGRAMS_READ, PROGRAM, params={"code": "{program}"}
    ),
    "POST /admin/programs/{code}/rollback": r(
        P.PROGRAMS_WRITE, PROGRAM, params={"code": "{program}"}
    ),
    "GET /admin/simulator": r(P.SIMULATE),
    "POST /admin/simulator": r(P.SIMULATE),
    "GET /admin/customers": r(P.CUSTOMERS_READ, query={"q": "{phone}"}),
    "GET /admin/customers/{customer_id}": r(P.CUSTOMERS_READ, PARTNER),
    "GET /admin/customers/{customer_id}/adjust": r(P.CUSTOMERS_WRITE, PARTNER),
    "POST /admin/customers/{customer_id}/adjust": r(P.CUSTOMERS_WRITE, PARTNER),
    "GET /admin/customers/{customer_id}/consents": r(P.CUSTOMERS_WRITE, PARTNER),
    "POST /admin/customers/{customer_id}/consents": r(P.CUSTOMERS_WRITE, PARTNER),
    "GET /admin/customers/{customer_id}/city": r(P.CUSTOMERS_WRITE, PARTNER),
    "POST /admin/customers/{customer_id}/city": r(P.CUSTOMERS_WRITE, PARTNER),
    "GET /admin/customers/{customer_id}/virtual-card": r(P.CUSTOMERS_WRITE, PARTNER),
    "POST /admin/customers/{customer_id}/virtual-card": r(P.CUSTOMERS_WRITE, PARTNER),
    "GET /admin/customers/{customer_id}/merge": r(P.CUSTOMERS_WRITE, PARTNER),
    "GET /admin/customers/{customer_id}/erase": r(P.CUSTOMERS_WRITE, PARTNER),
    "POST /admin/customers/{customer_id}/erase": r(
        P.CUSTOMERS_WRITE, PARTNER, body={"confirm": "{customer_id}"}, deny_only=True
    ),
    "POST /admin/customers/{customer_id}/merge": r(P.CUSTOMERS_WRITE, PARTNER),
    "GET /admin/customers/{customer_id}/cards/{number}/{action}": r(
        P.CARDS_BLOCK, PARTNER, params={"number": "{card}", "action": "block"}
    ),
    "POST /admin/customers/{customer_id}/cards/{number}/{action}": r(
        P.CARDS_BLOCK, PARTNER, params={"number": "{card}", "action": "block"}
    ),
    "GET /admin/coupons": r(P.MECHANICS_READ),
    "GET /admin/coupons/new": r(P.MECHANICS_WRITE),
    "POST /admin/coupons/new": r(P.MECHANICS_WRITE),
    "GET /admin/coupons/{series}": r(P.MECHANICS_READ, PROGRAM),
    "GET /admin/coupons/{series}/export": r(P.MECHANICS_READ, PROGRAM),
    "POST /admin/coupons/{series}/block": r(P.MECHANICS_WRITE, PROGRAM, deny_only=True),
    "POST /admin/coupons/{series}/unblock": r(P.MECHANICS_WRITE, PROGRAM),
    "POST /admin/coupons/{series}/codes/{code}/block": r(
        P.MECHANICS_WRITE, PROGRAM, params={"code": "{coupon}"}, deny_only=True
    ),
    "POST /admin/coupons/{series}/codes/{code}/unblock": r(
        P.MECHANICS_WRITE, PROGRAM, params={"code": "{coupon}"}
    ),
    "GET /admin/gift-cards": r(P.MECHANICS_READ),
    "GET /admin/gift-cards/new": r(P.MECHANICS_WRITE),
    "POST /admin/gift-cards/new": r(P.MECHANICS_WRITE),
    "GET /admin/gift-cards/cards": r(P.MECHANICS_READ),
    "GET /admin/gift-cards/export": r(P.MECHANICS_READ),
    "GET /admin/gift-cards/cards/{number}": r(
        P.MECHANICS_READ, PROGRAM, params={"number": "{gift_card}"}
    ),
    "POST /admin/gift-cards/cards/{number}/{action}": r(
        P.MECHANICS_WRITE, PROGRAM, params={"number": "{gift_card}", "action": "unblock"}
    ),
    "GET /admin/draws": r(P.MECHANICS_READ),
    "GET /admin/draws/new": r(P.MECHANICS_WRITE),
    "POST /admin/draws/new": r(P.MECHANICS_WRITE),
    "GET /admin/draws/{code}": r(P.MECHANICS_READ, PROGRAM, params={"code": "{draw}"}),
    "GET /admin/draws/{code}/winners": r(P.MECHANICS_READ, PROGRAM, params={"code": "{draw}"}),
    "POST /admin/draws/{code}/{action}": r(
        P.MECHANICS_WRITE,
        PROGRAM,
        params={"code": "{draw}", "action": "commit"},
        run=False,
        why="post/redirect/get: a refusal is a flash on a 303 (tests/web/test_mechanics.py)",
    ),
    "GET /admin/rewards": r(P.MECHANICS_READ),
    "GET /admin/rewards/new": r(P.MECHANICS_WRITE),
    "POST /admin/rewards/new": r(P.MECHANICS_WRITE),
    "GET /admin/rewards/orders": r(P.MECHANICS_READ),
    "POST /admin/rewards/orders/{order_id}/{action}": r(
        P.MECHANICS_WRITE, PROGRAM, params={"action": "issue"}, deny_only=True
    ),
    "GET /admin/rewards/{code}": r(P.MECHANICS_WRITE, PROGRAM, params={"code": "{reward}"}),
    "POST /admin/rewards/{code}": r(P.MECHANICS_WRITE, PROGRAM, params={"code": "{reward}"}),
    "GET /admin/stores": r(P.STORES_READ),
    "GET /admin/stores/new": r(P.STORES_WRITE),
    "POST /admin/stores/new": r(P.STORES_WRITE),
    "GET /admin/stores/{store_id}": r(P.STORES_READ, PARTNER),
    "GET /admin/stores/{store_id}/edit": r(P.STORES_WRITE, PARTNER),
    "POST /admin/stores/{store_id}/edit": r(P.STORES_WRITE, PARTNER),
    "POST /admin/stores/{store_id}/terminals": r(P.STORES_WRITE, PARTNER),
    "POST /admin/terminals/{terminal_id}/disable": r(P.STORES_WRITE, PARTNER, deny_only=True),
    "GET /admin/receipts": r(P.STORES_READ),
    "GET /admin/users": r(P.USERS_MANAGE),
    "GET /admin/users/new": r(P.USERS_MANAGE),
    "POST /admin/users/new": r(P.USERS_MANAGE),
    "GET /admin/users/{user_id}": r(P.USERS_MANAGE, PROGRAM),
    "POST /admin/users/{user_id}": r(P.USERS_MANAGE, PROGRAM),
    "POST /admin/users/{user_id}/active": r(P.USERS_MANAGE, PROGRAM),
    "POST /admin/users/{user_id}/password": r(P.USERS_MANAGE, PROGRAM),
    "POST /admin/users/{user_id}/unlock": r(P.USERS_MANAGE, PROGRAM),
    "POST /admin/users/{user_id}/programs": r(P.USERS_MANAGE, PROGRAM, deny_only=True),
    "GET /admin/audit": r(P.AUDIT_READ),
    "GET /admin/audit.csv": r(P.AUDIT_READ),
    "GET /admin/audit.xlsx": r(P.AUDIT_READ),
    "GET /admin/campaigns": r(P.PROGRAMS_READ),
    "GET /admin/campaigns/new": r(P.PROGRAMS_WRITE),
    "POST /admin/campaigns/count": r(P.PROGRAMS_WRITE),
    "POST /admin/campaigns/new": r(P.PROGRAMS_WRITE),
    "GET /admin/campaigns/{campaign_id}": r(P.PROGRAMS_READ, PROGRAM),
    "POST /admin/campaigns/{campaign_id}/cancel": r(P.PROGRAMS_WRITE, PROGRAM, deny_only=True),
    "GET /admin/message-templates": r(P.PROGRAMS_READ),
    "GET /admin/message-templates/{name}/{channel}/{locale}": r(
        P.PROGRAMS_READ, params={"name": "birthday", "channel": "sms", "locale": "ru"}
    ),
    "POST /admin/message-templates/{name}/{channel}/{locale}/preview": r(
        P.PROGRAMS_READ, params={"name": "birthday", "channel": "sms", "locale": "ru"}
    ),
    "POST /admin/message-templates/{name}/{channel}/{locale}": r(
        P.PROGRAMS_WRITE, params={"name": "birthday", "channel": "sms", "locale": "ru"}
    ),
    "POST /admin/message-templates/{name}/{channel}/{locale}/reset": r(
        P.PROGRAMS_WRITE, params={"name": "birthday", "channel": "sms", "locale": "ru"}
    ),
    "GET /admin/outbox": r(P.AUDIT_READ),
    "POST /admin/outbox/retry": r(P.AUDIT_READ),
    "GET /admin/webhooks": r(P.AUDIT_READ),
    "POST /admin/webhooks": r(P.USERS_MANAGE),
    "POST /admin/webhooks/{webhook_id}/rotate": r(P.USERS_MANAGE, PARTNER_WIDE),
    "POST /admin/webhooks/{webhook_id}/{action}": r(
        P.USERS_MANAGE, PARTNER_WIDE, params={"action": "enable"}
    ),
    "GET /admin/reports": r(P.REPORTS_READ),
    "GET /admin/reports/builder": r(P.REPORTS_READ),
    "POST /admin/reports/builder/preview": r(P.REPORTS_READ),
    "POST /admin/reports/builder/save": r(P.REPORTS_READ),
    "POST /admin/reports/builder/export": r(P.REPORTS_READ),
    "GET /admin/reports/custom": r(P.REPORTS_READ),
    "GET /admin/reports/custom/{report_id}": r(P.REPORTS_READ, PARTNER_WIDE),
    "GET /admin/reports/custom/{report_id}/export": r(P.REPORTS_READ, PARTNER_WIDE),
    "POST /admin/reports/custom/{report_id}/delete": r(
        P.REPORTS_READ, PARTNER_WIDE, deny_only=True, roles=frozenset({"owner"})
    ),
    "POST /admin/reports/custom/{report_id}/schedules": r(
        P.REPORTS_READ, PARTNER_WIDE, roles=frozenset({"owner"})
    ),
    "POST /admin/reports/custom/{report_id}/schedules/{schedule_id}/delete": r(
        P.REPORTS_READ, PARTNER_WIDE, deny_only=True, roles=frozenset({"owner"})
    ),
    "GET /admin/reports/promotions": r(P.REPORTS_READ, whole_program=True),
    "GET /admin/reports/promotions.{fmt}": r(
        P.REPORTS_READ, params={"fmt": "csv"}, whole_program=True
    ),
    "GET /admin/reports/promotions/{promotion_id}": r(
        P.REPORTS_READ, PROGRAM, params={"promotion_id": "{promotion}"}, whole_program=True
    ),
    "GET /admin/reports/rfm": r(P.REPORTS_READ, whole_program=True),
    "GET /admin/reports/rfm/export": r(P.REPORTS_READ, whole_program=True),
    "GET /admin/reports/rfm/migration/export": r(P.REPORTS_READ, whole_program=True),
    "POST /admin/reports/rfm/save": r(P.PROGRAMS_WRITE),
    "GET /admin/reports/map": r(P.REPORTS_READ),
    "GET /admin/reports/map.json": r(P.REPORTS_READ),
    "GET /admin/reports/map.{fmt}": r(P.REPORTS_READ, params={"fmt": "csv"}),
    "GET /admin/reports/summary": r(P.REPORTS_READ),
    "GET /admin/reports/stores": r(P.REPORTS_READ),
    "GET /admin/reports/cohorts": r(P.REPORTS_READ),
    "GET /admin/reports/basket": r(P.REPORTS_READ),
    "GET /admin/reports/basket/export": r(P.REPORTS_READ),
    "POST /admin/reports/basket/save": r(P.PROGRAMS_WRITE),
    "GET /admin/reports/clv": r(P.REPORTS_READ),
    "GET /admin/reports/clv/export": r(P.REPORTS_READ),
    # coalition settlement of the console's program (ADR 0025); the statement names a
    # partner of that program: program 2's partner (another code) is not found there
    "GET /admin/reports/settlement": r(
        P.REPORTS_READ, query={"period": "{period}"}, partner_level=True
    ),
    "GET /admin/reports/settlement.{fmt}": r(
        P.REPORTS_READ, params={"fmt": "csv"}, query={"period": "{period}"}, partner_level=True
    ),
    "GET /admin/reports/settlement/{period}/{party}.pdf": r(
        P.REPORTS_READ, PARTNER_WIDE, params={"party": "{partner}"}, partner_level=True
    ),
    "POST /admin/reports/settlement/close": r(
        P.PROGRAMS_WRITE, why="no confirmation typed: the form again (422) when allowed"
    ),
    "GET /admin/fraud": r(P.AUDIT_READ),
    "GET /admin/fraud/export": r(P.AUDIT_READ),
    "GET /admin/fraud/settings": r(P.AUDIT_READ),
    "POST /admin/fraud/settings": r(P.CARDS_BLOCK, also=P.AUDIT_READ),
    "GET /admin/fraud/{alert_id}": r(P.AUDIT_READ, PARTNER),
    "POST /admin/fraud/{alert_id}/{action}": r(
        P.CARDS_BLOCK, PARTNER, params={"action": "assign"}, also=P.AUDIT_READ
    ),
    "GET /cashier": r(P.CASHIER),
    "POST /cashier/lookup": r(P.CASHIER),
    "POST /cashier/panel/{name}": r(P.CASHIER, params={"name": "register"}),
    "POST /cashier/basket": r(P.CASHIER),
    "POST /cashier/register": r(P.CASHIER),
    "POST /cashier/confirm-phone": r(P.CASHIER),
    "POST /cashier/coupon": r(P.CASHIER),
    "POST /cashier/gift-card": r(P.CASHIER),
}
