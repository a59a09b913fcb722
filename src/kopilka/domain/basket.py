"""Baskets: frequent itemsets and association rules (docs/analytics/basket.md).

A transaction is the SET of SKUs of one receipt (quantities ignored, a SKU on two lines
counts once).  With ``n`` receipts in scope and ``count(X)`` the receipts containing
every SKU of ``X``:

- ``support(X) = count(X) / n``; an itemset is frequent when ``support >= min_support``
  and it has at most ``max_len`` SKUs;
- a rule ``A -> C`` (A, C non-empty and disjoint, ``A ∪ C`` frequent, ``|A ∪ C| >= 2``)
  has ``support = support(A ∪ C)``, ``confidence = count(A ∪ C) / count(A)`` and
  ``lift = confidence / support(C)``; rules with ``confidence >= min_confidence`` are
  kept, every non-empty split of every frequent itemset of two or more SKUs (so
  multi-SKU consequents too), as mlxtend's ``association_rules`` gives them.

The counting is efficient-apriori's (docs/decisions/0016-basket-clv-libraries.md); the
order of the answer, the text of item lists and the numbers are ours.  Pure: no I/O.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from efficient_apriori.itemsets import itemsets_from_transactions
from efficient_apriori.rules import generate_rules_apriori

MAX_LEN_DEFAULT = 3
MAX_LEN_LIMIT = 10
SUGGESTIONS_MAX = 3


class Invalid(ValueError):
    """Bad parameters; ``field`` names the option or form field."""

    def __init__(self, field_name: str, detail: str) -> None:
        super().__init__(f"{field_name}: {detail}")
        self.field = field_name
        self.detail = detail


@dataclass(frozen=True)
class Params:
    min_support: float
    min_confidence: float
    max_len: int = MAX_LEN_DEFAULT


@dataclass(frozen=True)
class Itemset:
    items: tuple[str, ...]  # SKUs, ascending
    count: int  # receipts that hold every SKU of it
    support: float


@dataclass(frozen=True)
class Rule:
    antecedents: tuple[str, ...]  # SKUs, ascending
    consequents: tuple[str, ...]
    count: int  # receipts holding both sides
    support: float
    confidence: float
    lift: float


@dataclass(frozen=True)
class Mined:
    receipts: int  # n: every receipt in scope, with or without frequent SKUs
    itemsets: list[Itemset]  # support desc, length, SKUs
    rules: list[Rule]  # lift desc, confidence desc, support desc, antecedents, consequents


def items_text(items: Iterable[str]) -> str:
    """An item list as the reports write it: SKUs sorted ascending as text, one space."""
    return " ".join(sorted(items))


def number_text(value: float) -> str:
    """A support, confidence or lift as the reports write it: the shortest decimal text
    that reads back to the same float (Python's ``repr``), never an exponent."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(value, ".17f").rstrip("0").rstrip(".")
    return text


def _fraction(value: object, field_name: str, *, low_open: bool) -> float:
    try:
        x = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise Invalid(field_name, "expected a number from 0 to 1, e.g. 0.01") from None
    if not math.isfinite(x) or x > 1 or x < 0 or (low_open and x == 0):
        bound = "0 < value <= 1" if low_open else "0 <= value <= 1"
        raise Invalid(field_name, f"expected {bound}, got {value}")
    return x


def parse_params(
    min_support: object, min_confidence: object, max_len: object = MAX_LEN_DEFAULT
) -> Params:
    """Check the three thresholds; ``Invalid`` names the first bad one."""
    s = _fraction(min_support, "min_support", low_open=True)
    c = _fraction(min_confidence, "min_confidence", low_open=False)
    text = str(max_len).strip()
    if not text.isdigit() or not 2 <= int(text) <= MAX_LEN_LIMIT:
        raise Invalid("max_len", f"expected a whole number from 2 to {MAX_LEN_LIMIT}")
    return Params(s, c, int(text))


def mine(transactions: Sequence[Iterable[str]], params: Params) -> Mined:
    """Frequent itemsets and rules of ``transactions`` (each an iterable of SKUs; it is
    made a set here).

    The transactions are read twice: first to count single SKUs, then, with the SKUs below
    the minimum support left out (no frequent itemset can hold one), by efficient-apriori.
    A receipt left empty still counts in ``n``.  Same answer, a fraction of the memory."""
    n = len(transactions)
    single: Counter[str] = Counter()
    for tx in transactions:
        single.update(set(tx))
    keep = {sku for sku, c in single.items() if c / n >= params.min_support} if n else set()
    counts, _ = itemsets_from_transactions(
        (keep.intersection(tx) for tx in transactions),
        params.min_support,
        params.max_len,
        0,
        output_transaction_ids=False,
    )
    itemsets = [
        Itemset(tuple(items), c, c / n)
        for size in sorted(counts)
        for items, c in counts[size].items()
    ]
    itemsets.sort(key=lambda i: (-i.count, len(i.items), i.items))
    rules: list[Rule] = []
    for r in generate_rules_apriori(counts, params.min_confidence, n) if counts else ():
        both = r.count_full
        conf = both / r.count_lhs
        lift = conf / (r.count_rhs / n)
        rules.append(Rule(tuple(sorted(r.lhs)), tuple(sorted(r.rhs)), both, both / n, conf, lift))
    rules.sort(key=rule_order)
    return Mined(n, itemsets, rules)


def rule_order(r: Rule) -> tuple[float, float, float, str, str]:
    return (
        -r.lift,
        -r.confidence,
        -r.support,
        items_text(r.antecedents),
        items_text(r.consequents),
    )


def suggest(
    rules: Iterable[Rule], basket: Iterable[str], *, limit: int = SUGGESTIONS_MAX
) -> list[Rule]:
    """ "Customers who buy X also buy Y" for a basket: rules of one consequent SKU that is
    not in the basket, whose antecedents all are; the best rule per SKU by lift (then
    confidence, support), the best ``limit`` of them.  (A rule of two consequent SKUs
    says less about either than the one-SKU rules of the same receipts, which are
    frequent too and at least as confident.)"""
    have = set(basket)
    best: dict[str, Rule] = {}
    for r in rules:
        if len(r.consequents) != 1 or r.consequents[0] in have or r.lift <= 1:
            continue  # lift <= 1: buying X does not make Y likelier
        if not have.issuperset(r.antecedents):
            continue
        old = best.get(r.consequents[0])
        if old is None or rule_order(r) < rule_order(old):
            best[r.consequents[0]] = r
    return sorted(best.values(), key=rule_order)[:limit]
