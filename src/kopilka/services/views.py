"""The POS API's answers, built once and stored as bytes (so a retry gets the same bytes)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from kopilka.domain.ledger import Balance
from kopilka.domain.money import fmt2, fmt3
from kopilka.domain.receipt import Applied, BasketLine, PricedReceipt


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def applied_view(items: tuple[Applied, ...]) -> list[dict[str, str]]:
    return [
        {"id": x.rule, "discount": fmt2(x.discount), "points": fmt2(x.points), "reason": x.reason}
        for x in items
    ]


def balance_view(b: Balance) -> dict[str, str]:
    return {"available": fmt2(b.available), "pending": fmt2(b.pending), "held": fmt2(b.held)}


def priced_lines_view(lines: tuple[BasketLine, ...], priced: PricedReceipt) -> list[dict[str, Any]]:
    out = []
    for idx, (src, p) in enumerate(zip(lines, priced.lines, strict=True)):
        out.append(
            {
                "index": idx,
                "sku": src.sku,
                "name": src.name,
                "category": src.category,
                "quantity": fmt3(src.quantity),
                "price": fmt2(src.price),
                "amount": fmt2(p.amount),
                "discount": fmt2(p.discount),
                "points_redeemed": fmt2(p.points_redeemed),
                "redeemed_value": fmt2(p.redeemed_value),
                "to_pay": fmt2(p.to_pay),
                "points_earned": fmt2(p.points_earned),
                "promotions": applied_view(p.applied),
            }
        )
    return out


def totals_view(priced: PricedReceipt) -> dict[str, str]:
    return {
        "amount": fmt2(priced.amount),
        "discount": fmt2(priced.discount),
        "points_redeemed": fmt2(priced.points_redeemed),
        "redeemed_value": fmt2(priced.redeemed_value),
        "to_pay": fmt2(priced.to_pay),
        "points_earned": fmt2(priced.points_earned),
    }


def receipt_text(
    priced: PricedReceipt,
    balance: Balance | None,
    pending_earn: bool,
    *,
    unit: str = "баллов",
) -> list[str]:
    """Lines for the printed receipt, Russian first (the fiscal receipt's language):
    the promotions' messages, then the points.  ``unit`` is the program's name of its
    points in the genitive plural (``ProgramProfile.points_ru[2]``: ``баллов``, ``миль``),
    the form these lines need whatever the figure."""
    text = list(priced.messages)
    if balance is None:
        return text
    if priced.points_redeemed:
        text.append(
            f"Списано {unit}: {fmt2(priced.points_redeemed)} "
            f"(оплачено {fmt2(priced.redeemed_value)} руб.)"
        )
    if priced.points_earned:
        suffix = " (станут доступны позже)" if pending_earn else ""
        text.append(f"Начислено {unit}: {fmt2(priced.points_earned)}{suffix}")
    text.append(f"Баланс: {fmt2(balance.available)} {unit}")
    if balance.pending:
        text.append(f"Ожидают начисления: {fmt2(balance.pending)} {unit}")
    return text


def dec(value: Any) -> Decimal:
    return Decimal(str(value))
