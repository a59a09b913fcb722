"""Small builders shared by the rules-engine tests: a program document from a few keys,
a basket line, and one call that compiles and prices.

Unless a test says otherwise: a bonus program earning 5% of the paid amount floored to
whole points, at most 30% of a receipt paid with points, a point worth 1 rouble, Moscow
time; the receipt is at 12:15 Moscow time on Monday 23 November 2026.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kopilka.domain.receipt import Basket, BasketLine, PricedLine, PricedReceipt
from kopilka.domain.rules.compiler import CompiledProgram, compile_program
from kopilka.domain.rules.engine import price_receipt
from kopilka.domain.rules.facts import BudgetLeft, CustomerContext, StoreContext
from kopilka.domain.rules.model import ProgramDoc, validate_document

D = Decimal
NOW = datetime(2026, 11, 23, 9, 15, tzinfo=UTC)  # Monday 12:15 in Moscow


def program(**keys: Any) -> ProgramDoc:
    """A valid document: ``code`` and ``name`` filled in, the rest from ``keys``."""
    return validate_document({"code": "test", "name": "Test program", **keys})


def promo(pid: str, *effects: dict[str, Any], **keys: Any) -> dict[str, Any]:
    """A promotion document with id ``pid`` (also its name) and these effects."""
    return {"id": pid, "name": pid, "effects": list(effects), **keys}


def percent_off(pct: str) -> dict[str, Any]:
    return {"kind": "line_discount", "percent": pct}


def line(
    sku: str, quantity: str, price: str, category: str | None = None, discount: str = "0"
) -> BasketLine:
    return BasketLine(sku, f"item {sku}", category, D(quantity), D(price), D(discount))


def member(available: str = "0", **keys: Any) -> CustomerContext:
    return CustomerContext(1, D(available), **keys)


def price(
    doc: ProgramDoc | CompiledProgram,
    *lines: BasketLine,
    customer: CustomerContext | None = None,
    at: datetime = NOW,
    store: StoreContext | None = None,
    budgets: Mapping[str, BudgetLeft] | None = None,
    explain: Collection[str] | bool = (),
    excluded: Collection[str] = (),
    **basket: Any,
) -> PricedReceipt:
    """Compile (when given a document) and price; ``basket`` keys go to ``Basket``."""
    compiled = compile_program(doc) if isinstance(doc, ProgramDoc) else doc
    return price_receipt(
        Basket(tuple(lines), **basket),
        customer,
        compiled,
        at,
        store=store or StoreContext("s1", "p1", "Moscow", "msk"),
        budgets=budgets,
        excluded=excluded,
        explain=explain,
    )


def column(receipt: PricedReceipt, name: str) -> list[str]:
    """One figure of every line, as strings: ``column(r, "discount") == ["10.00", ...]``."""
    return [str(getattr(x, name)) for x in receipt.lines]


def given_by(receipt: PricedReceipt | PricedLine) -> dict[str, tuple[str, str]]:
    """``{rule: (discount, points)}`` of what applied, as strings."""
    return {a.rule: (str(a.discount), str(a.points)) for a in receipt.applied}
