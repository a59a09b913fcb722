"""Request bodies of the admin API that are not the program document itself.

The program document and its promotions are validated by ``rules.model`` (their problems
name paths inside the document); these strict models cover the rest.  A simulated
basket's lines are the POS API's lines.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from kopilka.api.pos.schemas import NO_CONTROL, LineIn, Points, Scanned, Strict
from kopilka.domain.money import ZERO, fmt2
from kopilka.domain.receipt import Basket, BasketLine
from kopilka.services.errors import ServiceError
from kopilka.services.programs import GivenCustomer, Simulation

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL)]
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=4, allow_inf_nan=False)]


class SimCustomerIn(Strict):
    """A customer described instead of identified: every field optional."""

    tier: Name | None = None
    tags: Annotated[list[Name], Field(max_length=100)] = Field(default_factory=list)
    segments: Annotated[list[Name], Field(max_length=100)] = Field(
        default_factory=list,
        description="segments of the program he belongs to (made true for him)",
    )
    rfm: Name | None = None
    birthday: date | None = None
    purchases: Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        1, description="confirmed receipts before this one (0: a first purchase)"
    )
    last_purchase_on: date | None = None
    available: Points = Field(ZERO, description="points he could redeem")
    discount_percent: Percent | None = Field(None, description="cumulative discount level")
    offers: Annotated[list[Name], Field(max_length=1000)] = Field(
        default_factory=list, description="promotion ids offered to him personally"
    )
    keys: Annotated[list[Name], Field(max_length=100)] = Field(
        default_factory=list, description="customer id, phone or card naming him in lists"
    )


class SimulateIn(Strict):
    """What would this basket get for this customer at this store at this time?"""

    program: Name
    store: Name | None = None
    at: AwareDatetime | None = Field(None, description="the receipt's time (default: now)")
    version: Annotated[int, Field(ge=1)] | None = Field(
        None, description="a program version (default: the current one)"
    )
    identifier: Scanned | None = Field(None, description="a real customer: card, phone, QR")
    customer: SimCustomerIn | None = None
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=1000)]
    redeem_points: Points | Literal["max"] | None = None
    coupons: Annotated[list[Scanned], Field(max_length=100)] = Field(default_factory=list)
    gift_card_payment: bool = False
    explain: bool | Annotated[list[Name], Field(max_length=20_000)] = Field(
        True, description="true: why every promotion did (not) apply; or these ids"
    )


class RollbackIn(Strict):
    version: Annotated[int, Field(ge=1)]


def to_simulation(body: SimulateIn) -> Simulation:
    """The service's request; refuses what the schema cannot (both kinds of customer, a
    line discount above its amount)."""
    if body.identifier is not None and body.customer is not None:
        raise ServiceError(
            "validation_failed",
            "give identifier (a real customer) or customer (a described one), not both",
            field="customer",
        )
    lines = []
    for i, ln in enumerate(body.lines):
        line = BasketLine(ln.sku, ln.name, ln.category, ln.quantity, ln.price, ln.discount or ZERO)
        if line.discount > line.amount:
            raise ServiceError(
                "lines_do_not_add_up",
                f"discount {fmt2(line.discount)} exceeds the line amount {fmt2(line.amount)}",
                field=f"lines[{i}].discount",
            )
        lines.append(line)
    c = body.customer
    given = None
    if c is not None:
        given = GivenCustomer(
            tier=c.tier,
            tags=frozenset(c.tags),
            segments=tuple(c.segments),
            rfm=c.rfm,
            birthday=c.birthday,
            purchases=c.purchases,
            last_purchase_on=c.last_purchase_on,
            available=c.available,
            discount_percent=c.discount_percent,
            offers=frozenset(c.offers),
            keys=frozenset(c.keys),
        )
    return Simulation(
        program=body.program,
        store=body.store,
        at=body.at,
        identifier=body.identifier,
        customer=given,
        basket=Basket(
            tuple(lines),
            redeem_points=body.redeem_points,
            coupons=tuple(body.coupons),
            gift_card_payment=body.gift_card_payment,
        ),
        explain=body.explain if isinstance(body.explain, bool) else tuple(body.explain),
        version=body.version,
    )
