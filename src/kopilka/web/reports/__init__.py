"""The console's reports (issue 8): /admin/reports lists them; each report is a module
of this package with its own router, registered in ``PAGES`` and ``router`` below.

Charts are ECharts (vendored, SVG renderer) drawn by /static/console/charts.js from a
JSON data island: ``{{ chart("id", option) }}`` in ``reports/_charts.html``.  No inline
script (the console's CSP allows only scripts from this site).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.web import i18n
from kopilka.web.auth import Console, console
from kopilka.web.reports.strings import RU
from kopilka.web.templating import render

i18n.add(RU, area="reports")


@dataclass(frozen=True)
class ReportPage:
    href: str
    title: str
    what: str  # one line: what the report answers
    perm: Perm = Perm.REPORTS_READ


# One line per report page; the index shows those the viewer may open.
PAGES: list[ReportPage] = []

router = APIRouter(include_in_schema=False)


@router.get("/admin/reports")
async def reports_index(
    request: Request, c: Annotated[Console, Depends(console(Perm.REPORTS_READ))]
) -> Response:
    pages = sorted((p for p in PAGES if c.can(p.perm)), key=_place)
    return render(request, "reports/index.html", {"pages": pages})


# The index reads from the everyday reports to the analyst's tools.
ORDER = ("summary", "stores", "cohorts", "rfm", "map", "promotions", "basket", "clv")


def _place(page: ReportPage) -> tuple[int, str]:
    name = page.href.rstrip("/").rsplit("/", 1)[-1]
    return (ORDER.index(name) if name in ORDER else len(ORDER), page.href)


# --- report pages (each module adds its router and its PAGES lines) ----------------------------
from kopilka.web.reports import builder as _builder  # noqa: E402

PAGES += [
    ReportPage(
        "/admin/reports/builder",
        "Report builder",
        "Build your own report: dimensions, measures, filters and a chart; save, share, e-mail.",
    ),
    ReportPage(
        "/admin/reports/custom",
        "Saved reports",
        "Reports built and saved by you or shared with your role.",
    ),
]
router.include_router(_builder.router)

# --- the reports (one block each) ---------------------------------------------------------

from kopilka.web.reports import promotions as _promotions  # noqa: E402

PAGES.append(
    ReportPage(
        "/admin/reports/promotions",
        "Promotion effect",
        "what each promotion cost and the sales it added, against a control group",
    )
)
router.include_router(_promotions.router)

# --- the reports (one import and one line each) -------------------------------------------
from kopilka.web.reports import rfm as _rfm  # noqa: E402

PAGES.append(
    ReportPage(
        "/admin/reports/rfm",
        "RFM segments",
        "Customers by recency, frequency and monetary value: scores, segments, migration.",
    )
)
router.include_router(_rfm.router)

# The report pages (each module registers its router and its line in PAGES).
from kopilka.web.reports import map as _map  # noqa: E402

router.include_router(_map.router)
PAGES.append(
    ReportPage(
        "/admin/reports/map",
        "Territorial map",
        "Where members are, by region and store; members far from every store.",
    )
)


def _register_summary() -> None:
    from kopilka.web.reports import summary  # imports this package

    router.include_router(summary.router)
    PAGES.extend(
        [
            ReportPage(
                "/admin/reports/summary",
                "Summary",
                "Sales, members, points and liability of a period against the previous one",
            ),
            ReportPage(
                "/admin/reports/stores",
                "Stores and cashiers",
                "Sales, members' share, points and refunds by store and cashier",
            ),
            ReportPage(
                "/admin/reports/cohorts", "Cohorts", "Retention by month of the first purchase"
            ),
        ]
    )


_register_summary()

# The report pages' modules (each its router and a line in PAGES).
from kopilka.web.reports import basket_clv  # noqa: E402
from kopilka.web.reports.basket_clv_strings import RU as _RU_BASKET_CLV  # noqa: E402

i18n.add(_RU_BASKET_CLV, area="reports")
router.include_router(basket_clv.router)
PAGES.append(
    ReportPage(
        "/admin/reports/basket",
        "Baskets",
        "Which goods are bought together: itemsets and association rules",
    )
)
PAGES.append(
    ReportPage(
        "/admin/reports/clv",
        "Customer lifetime value",
        "Who is still buying, how much they will buy: BG/NBD and Gamma-Gamma",
    )
)


# Coalition settlement (issue 9): who owes whom for points burned at another partner.
from kopilka.web.reports import settlement as _settlement  # noqa: E402

router.include_router(_settlement.router)
PAGES.append(
    ReportPage(
        "/admin/reports/settlement",
        "Settlement",
        "points burned at another partner: who owes whom, per month; closing and signed statements",
    )
)
