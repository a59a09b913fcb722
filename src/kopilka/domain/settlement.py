"""Coalition settlement: who owes whom for points burned at another partner (issue 9).

Words (docs/coalition.md):

- The **issuer** (funder) of a point is the partner whose lot it sits in
  (``lots.funding_partner_id``); ``None`` is the operator (the program itself: welcome
  points, manual credits).
- The **acceptor** is the partner where the point is burned (the receipt's partner);
  ``None`` is the operator (a reward ordered from the catalogue, no receipt).
- Burning creates an **obligation** issuer → acceptor, unless they are the same party.
  A refund that gives burned points back reverses it (a negative obligation in the
  period the refund is booked in).

Money (ADR 0025):

- Each cell of the obligations matrix (issuer, acceptor) is priced once: roubles =
  points × rate, rounded half up to kopecks; the operator's fee = roubles × fee% / 100,
  rounded half up likewise.
- The issuer pays the full roubles; the acceptor receives roubles − fee; the operator
  keeps the fee.  The operator is the clearing centre: every partner settles its net
  with the operator, so the nets of the partners and the operator sum to zero exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from kopilka.domain.money import KOPECK

# a partner's legal details, as the statements print them
LEGAL_FIELDS = (
    "legal_name",
    "inn",
    "kpp",
    "ogrn",
    "legal_address",
    "bank_name",
    "bank_account",
    "bank_bik",
    "bank_corr_account",
    "contact_email",
)

ZERO = Decimal("0.00")
Party = int | None  # a partner's id, None: the operator


def price(points: Decimal, rate: Decimal) -> Decimal:
    """Roubles for ``points`` at ``rate`` roubles a point, rounded half up to kopecks
    (half away from zero: a reversal prices exactly as the obligation it undoes)."""
    return (points * rate).quantize(KOPECK, rounding=ROUND_HALF_UP)


def fee_of(roubles: Decimal, fee_percent: Decimal) -> Decimal:
    """The operator's fee on an obligation of ``roubles``, half up to kopecks."""
    return (roubles * fee_percent / 100).quantize(KOPECK, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Terms:
    """``rate``: roubles per point; ``fee_percent``: the operator's share of each obligation."""

    rate: Decimal
    fee_percent: Decimal


@dataclass(frozen=True, slots=True)
class Flow:
    """One aggregated line of the ledger in a period: the points (signed, as booked) of
    entries of ``kind`` (``earn``, ``burn``, ``expire``, ``adjust``, ``refund_out`` = earned
    points taken back, ``refund_in`` = burned points given back) funded by ``issuer`` and
    booked at ``acceptor``."""

    kind: str
    issuer: Party
    acceptor: Party
    points: Decimal


@dataclass(frozen=True, slots=True)
class Obligation:
    """What ``issuer`` owes ``acceptor`` for the period (negative: a reversal dominates)."""

    issuer: Party
    acceptor: Party
    points: Decimal
    roubles: Decimal
    fee: Decimal

    @property
    def to_acceptor(self) -> Decimal:
        return self.roubles - self.fee


@dataclass(slots=True)
class Position:
    """One party's figures for the period: points by movement, money by direction.

    ``issued``: points earned at the party's expense; ``burned``: points burned at it
    (whoever funded them); ``burned_elsewhere``: its points burned at another party
    (refunds' give-backs not subtracted: they are in the acceptor's ``given_back``);
    ``expired``: its points that expired (breakage); ``taken_back``: its earned points
    taken back by refunds; ``given_back``: burned points returned to customers by refunds
    at it; ``adjusted``: manual credits minus debits of its points.
    ``pays``: roubles it owes as issuer; ``receives``: roubles owed to it as acceptor,
    after the fee; ``fee``: the fee withheld from what it receives; ``net``: receives − pays
    (positive: it is paid); for the operator also + every fee."""

    party: Party
    issued: Decimal = ZERO
    burned: Decimal = ZERO
    burned_elsewhere: Decimal = ZERO
    expired: Decimal = ZERO
    taken_back: Decimal = ZERO
    given_back: Decimal = ZERO
    adjusted: Decimal = ZERO
    pays: Decimal = ZERO
    receives: Decimal = ZERO
    fee: Decimal = ZERO
    net: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class PairNet:
    """Between two partners ``a`` < ``b`` (the operator sorts first): ``points`` and
    ``roubles`` (gross, before fees) that ``a`` owes ``b`` net; negative: ``b`` owes ``a``."""

    a: Party
    b: Party
    points: Decimal
    roubles: Decimal


@dataclass(frozen=True)
class Clearing:
    """A period's clearing: the positions (operator first, then partners by id), the
    obligations matrix, the nets between pairs, and the terms it was priced with."""

    terms: Terms
    positions: Sequence[Position]
    obligations: Sequence[Obligation]
    pairs: Sequence[PairNet]
    extra: Mapping[str, object] = field(default_factory=dict)

    def position(self, party: Party) -> Position:
        for p in self.positions:
            if p.party == party:
                return p
        return Position(party)


def _order(p: Party) -> tuple[int, int]:
    return (0, 0) if p is None else (1, p)


def clear(flows: Iterable[Flow], terms: Terms, parties: Iterable[int] = ()) -> Clearing:
    """The clearing of a period from its aggregated ledger flows.

    ``parties``: partners to show even without a movement (every partner of the
    program).  Only ``burn`` and ``refund_in`` (a burn given back) create obligations."""
    pos: dict[Party, Position] = {None: Position(None)}
    for partner in parties:
        pos[partner] = Position(partner)
    matrix: dict[tuple[Party, Party], Decimal] = defaultdict(lambda: ZERO)

    def at(party: Party) -> Position:
        if party not in pos:
            pos[party] = Position(party)
        return pos[party]

    for f in flows:
        if f.kind == "earn":
            at(f.issuer).issued += f.points
        elif f.kind == "adjust":
            at(f.issuer).adjusted += f.points
        elif f.kind == "expire":
            at(f.issuer).expired -= f.points
        elif f.kind == "refund_out":
            at(f.issuer).taken_back -= f.points
        elif f.kind in ("burn", "refund_in"):
            burned = -f.points  # a burn is booked negative, a give-back positive
            if f.kind == "burn":
                at(f.acceptor).burned += burned
            else:
                at(f.acceptor).given_back -= burned
            if f.issuer != f.acceptor:
                if f.kind == "burn":
                    at(f.issuer).burned_elsewhere += burned
                matrix[(f.issuer, f.acceptor)] += burned
                at(f.issuer)
        else:
            raise ValueError(f"unknown flow kind {f.kind!r}")

    obligations = []
    for (issuer, acceptor), points in sorted(
        matrix.items(), key=lambda kv: (_order(kv[0][0]), _order(kv[0][1]))
    ):
        if points == 0:
            continue
        roubles = price(points, terms.rate)
        fee = fee_of(roubles, terms.fee_percent)
        obligations.append(Obligation(issuer, acceptor, points, roubles, fee))
        pos[issuer].pays += roubles
        pos[acceptor].receives += roubles - fee
        pos[acceptor].fee += fee

    total_fee = sum((o.fee for o in obligations), ZERO)
    for p in pos.values():
        p.net = p.receives - p.pays
    pos[None].net += total_fee
    assert sum((p.net for p in pos.values()), ZERO) == 0, "nets must sum to zero"

    return Clearing(
        terms=terms,
        positions=[pos[k] for k in sorted(pos, key=_order)],
        obligations=obligations,
        pairs=_pairs(obligations),
    )


def _pairs(obligations: Sequence[Obligation]) -> list[PairNet]:
    net: dict[tuple[Party, Party], tuple[Decimal, Decimal]] = {}
    for o in obligations:
        a, b = sorted((o.issuer, o.acceptor), key=_order)
        sign = 1 if (a, b) == (o.issuer, o.acceptor) else -1
        pts, rub = net.get((a, b), (ZERO, ZERO))
        net[(a, b)] = (pts + sign * o.points, rub + sign * o.roubles)
    return [
        PairNet(a, b, pts, rub)
        for (a, b), (pts, rub) in sorted(
            net.items(), key=lambda kv: (_order(kv[0][0]), _order(kv[0][1]))
        )
    ]


# The settlement figures' names in Russian, shared by the signed statement
# (services/settlement_files.py) and the console page (web/reports/settlement_strings.py).
FIGURES_RU: dict[str, str] = {
    "Burned here": "Списано у стороны",
    "Burned elsewhere": "Списано у других",
    "Expired": "Сгорело",
    "Taken back": "Отозвано",
    "Given back": "Восстановлено",
    "Adjusted": "Корректировки",
    "Pays, ₽": "Платит, ₽",
    "Receives, ₽": "Получает, ₽",
    "Fee, ₽": "Комиссия, ₽",
    "Net, ₽": "Сальдо, ₽",
    "Issuer": "Эмитент",
    "Acceptor": "Принимающая сторона",
    "To the acceptor, ₽": "Принимающей стороне, ₽",
}
