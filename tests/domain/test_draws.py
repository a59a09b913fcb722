"""Prize draws, pure: tickets from receipts, the seeded selection and its verification."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

import pytest

from kopilka.domain import draws as d

SEED = "00" * 31 + "2a"
ONE_PRIZE = d.DrawRules(prizes=(d.Prize("iPhone", goods="iPhone"),))


def rules(**kw: object) -> d.DrawRules:
    data: dict[str, object] = {"prizes": [{"points": "5000", "count": 3}]}
    data.update(kw)
    return d.rules_from_dict(data)


def seed_of(i: int) -> str:
    return hashlib.sha256(f"seed {i}".encode()).hexdigest()


# --- tickets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to_pay", "per_purchase", "per_amount", "min_purchase", "expected"),
    [
        ("499.99", 0, "500", "0", 0),
        ("500.00", 0, "500", "0", 1),
        ("1499.99", 0, "500", "0", 2),
        ("1500.00", 1, "500", "0", 4),
        ("300.00", 1, None, "0", 1),
        ("299.99", 1, None, "300", 0),
        ("0.00", 1, None, "0", 0),
    ],
    ids=[
        "below-one-step",
        "exactly-one-step",
        "floor",
        "per-purchase-plus-per-amount",
        "per-purchase-only",
        "below-min-purchase",
        "paid-nothing",
    ],
)
def test_tickets_of_a_receipt(
    to_pay: str, per_purchase: int, per_amount: str | None, min_purchase: str, expected: int
) -> None:
    r = rules(
        tickets_per_purchase=per_purchase, tickets_per_amount=per_amount, min_purchase=min_purchase
    )

    n = d.tickets_of(d.PaidReceipt(1, Decimal(to_pay)), r)

    assert n == expected


def test_tickets_for_sums_per_account_and_sorts_by_account_id() -> None:
    receipts = [
        d.PaidReceipt(30, Decimal("1000")),
        d.PaidReceipt(7, Decimal("600")),
        d.PaidReceipt(30, Decimal("100")),
        d.PaidReceipt(9, Decimal("10")),
    ]

    tickets = d.tickets_for(receipts, rules(tickets_per_purchase=0, tickets_per_amount="500"))

    assert tickets == [(7, 1), (30, 2)]


def test_ticket_digest_is_sha256_of_account_colon_tickets_lines() -> None:
    tickets = [(30, 2), (7, 1)]

    digest = d.tickets_digest(tickets)

    assert digest == hashlib.sha256(b"7:1\n30:2\n").hexdigest()


def test_an_account_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        d.tickets_digest([(7, 1), (7, 2)])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"prizes": []}, "at least one prize"),
        ({"prizes": [{"points": "10", "goods": "mug"}]}, "either points or goods"),
        ({"prizes": [{"points": "0.001"}]}, "two decimals"),
        ({"prizes": [{"goods": "mug", "count": 0}]}, "at least 1"),
        ({"prizes": [{"goods": "mug"}], "tickets_per_amount": "0"}, "must be positive"),
        ({"prizes": [{"goods": "mug"}], "tickets_per_purchase": 0}, "must give tickets"),
        ({"prizes": [{"goods": "mug"}], "min_purchase": "x"}, "rules:"),
    ],
    ids=[
        "no-prizes",
        "both-kinds",
        "points-precision",
        "zero-count",
        "zero-step",
        "no-tickets",
        "nan",
    ],
)
def test_invalid_rules_are_refused_when_written(data: dict[str, object], message: str) -> None:
    with pytest.raises(d.InvalidRules, match=message):
        d.rules_from_dict(data)


def test_rules_round_trip_through_their_json_form() -> None:
    r = rules(tickets_per_amount="500", min_purchase="100", one_prize_per_member=False)

    again = d.rules_from_dict(d.rules_to_dict(r))

    assert again == r


# --- selection ----------------------------------------------------------------------------


def test_commitment_is_sha256_of_the_ascii_hex_seed() -> None:
    assert d.commitment(SEED) == hashlib.sha256(SEED.encode()).hexdigest()


def test_prize_slots_follow_the_listed_order_and_counts() -> None:
    r = d.rules_from_dict(
        {"prizes": [{"goods": "car"}, {"points": "1000", "count": 2}, {"goods": "mug"}]}
    )

    slots = [(s.place, s.prize.name) for s in d.slots_of(r)]

    assert slots == [(1, "car"), (2, "1000 points"), (3, "1000 points"), (4, "mug")]


def test_the_same_seed_and_tickets_give_the_same_winners() -> None:
    tickets = [(i, i % 5 + 1) for i in range(1, 40)]

    first = d.select_winners(SEED, tickets, rules())
    again = d.select_winners(SEED, list(reversed(tickets)), rules())

    assert [(w.place, w.account_id) for w in first] == [(w.place, w.account_id) for w in again]
    assert len(first) == 3


def test_the_first_draw_follows_the_documented_hmac_counter() -> None:
    tickets = [(11, 2), (12, 3), (13, 5)]
    x = int.from_bytes(
        hmac.new(bytes.fromhex(SEED), (0).to_bytes(8, "big"), hashlib.sha256).digest(), "big"
    )
    r = x % 10  # 2**256 - 2**256 % 10 is above almost every x: no rejection expected
    assert x < (1 << 256) - (1 << 256) % 10
    expected = 11 if r < 2 else 12 if r < 5 else 13

    winners = d.select_winners(SEED, tickets, ONE_PRIZE)

    assert [(w.place, w.account_id) for w in winners] == [(1, expected)]


def test_one_prize_per_member_gives_each_winner_one_prize() -> None:
    tickets = [(1, 100), (2, 1), (3, 1)]

    winners = d.select_winners(SEED, tickets, rules())

    assert sorted(w.account_id for w in winners) == [1, 2, 3]


def test_without_one_prize_per_member_a_member_may_win_twice() -> None:
    tickets = [(1, 1000), (2, 1)]
    r = rules(one_prize_per_member=False)

    winners = [d.select_winners(seed_of(i), tickets, r) for i in range(20)]

    assert any([w.account_id for w in ws].count(1) >= 2 for ws in winners)


def test_fewer_winners_than_prizes_when_tickets_run_out() -> None:
    winners = d.select_winners(SEED, [(5, 1), (6, 1)], rules())

    assert sorted(w.account_id for w in winners) == [5, 6]
    assert [w.place for w in winners] == [1, 2]


def test_no_tickets_no_winners() -> None:
    assert d.select_winners(SEED, [], rules()) == []


def test_each_ticket_has_the_same_chance() -> None:
    # 1 ticket against 3: the first account should win a quarter of 4000 draws.
    # The standard deviation is sqrt(4000 * 0.25 * 0.75) ~ 27; 5 sigma is 137.
    tickets = [(1, 1), (2, 3)]

    wins = sum(
        d.select_winners(seed_of(i), tickets, ONE_PRIZE)[0].account_id == 1 for i in range(4000)
    )

    assert abs(wins - 1000) < 137


def test_every_account_of_many_can_win_the_first_place() -> None:
    tickets = [(a, 1) for a in range(1, 11)]

    firsts = {d.select_winners(seed_of(i), tickets, ONE_PRIZE)[0].account_id for i in range(300)}

    assert firsts == set(range(1, 11))


# --- verification -------------------------------------------------------------------------


def test_verify_accepts_the_draw_it_made() -> None:
    tickets = [(1, 4), (2, 7), (3, 1), (9, 2)]
    winners = [(w.place, w.account_id) for w in d.select_winners(SEED, tickets, rules())]

    assert d.verify(SEED, d.commitment(SEED), tickets, winners, rules()) is True


def test_verify_fails_when_the_seed_does_not_match_its_hash() -> None:
    tickets = [(1, 4), (2, 7), (3, 1)]
    winners = [(w.place, w.account_id) for w in d.select_winners(SEED, tickets, rules())]
    other = "ff" + SEED[2:]

    assert d.verify(other, d.commitment(SEED), tickets, winners, rules()) is False


def test_verify_fails_when_the_winners_are_altered() -> None:
    tickets = [(1, 4), (2, 7), (3, 1)]
    winners = [(w.place, w.account_id) for w in d.select_winners(SEED, tickets, rules())]
    swapped = [(1, winners[1][1]), (2, winners[0][1]), winners[2]]

    assert d.verify(SEED, d.commitment(SEED), tickets, swapped, rules()) is False


def test_verify_fails_when_the_ticket_list_changes_the_outcome() -> None:
    tickets = [(a, 1) for a in range(1, 30)]
    winners = [(w.place, w.account_id) for w in d.select_winners(SEED, tickets, rules())]
    # Giving one account many more tickets changes who wins for this seed.
    altered = [(a, 500 if a == 29 else 1) for a in range(1, 30)]

    assert d.verify(SEED, d.commitment(SEED), altered, winners, rules()) is False


def _record(tickets: list[tuple[int, int]]) -> dict[str, object]:
    r = rules()
    winners = d.select_winners(SEED, tickets, r)
    return {
        "algorithm": d.ALGORITHM,
        "rules": d.rules_to_dict(r),
        "seed_hash": d.commitment(SEED),
        "seed": SEED,
        "tickets": [{"account_id": a, "tickets": n} for a, n in tickets],
        "tickets_digest": d.tickets_digest(tickets),
        "winners": [{"place": w.place, "account_id": w.account_id} for w in winners],
    }


def test_a_record_verifies() -> None:
    assert d.verify_record(_record([(1, 4), (2, 7), (3, 1)])) == (True, "OK")


def test_a_record_with_an_edited_ticket_list_fails_on_its_digest() -> None:
    record = _record([(1, 4), (2, 7), (3, 1)])
    record["tickets"] = [
        {"account_id": 1, "tickets": 4},
        {"account_id": 2, "tickets": 8},
        {"account_id": 3, "tickets": 1},
    ]

    assert d.verify_record(record) == (False, "the ticket list does not match its digest")


def test_a_record_without_the_seed_is_not_verifiable_yet() -> None:
    record = _record([(1, 4)])
    record["seed"] = None

    assert d.verify_record(record) == (False, "the seed is not revealed yet")


def test_a_record_with_another_seed_fails_on_the_commitment() -> None:
    record = _record([(1, 4), (2, 1)])
    record["seed"] = "ff" + SEED[2:]

    assert d.verify_record(record) == (
        False,
        "the seed does not match the published seed hash",
    )


def _reimplemented_from_the_docs(
    seed: str, tickets: list[tuple[int, int]], places: int, one_per_member: bool
) -> list[tuple[int, int]]:
    """docs/draws.md, steps 2-5, written again without the module's helpers."""
    left = dict(sorted(tickets))
    c, out = 0, []
    for place in range(1, places + 1):
        n = sum(left.values())
        if n == 0:
            break
        while True:
            mac = hmac.new(bytes.fromhex(seed), c.to_bytes(8, "big"), hashlib.sha256)
            x, c = int.from_bytes(mac.digest(), "big"), c + 1
            if x < 2**256 - 2**256 % n:
                break
        r, running = x % n, 0
        for account, k in left.items():
            running += k
            if running > r:
                out.append((place, account))
                left[account] = 0 if one_per_member else k - 1
                break
    return out


@pytest.mark.parametrize("one_per_member", [True, False], ids=["one-per-member", "many"])
def test_a_reimplementation_from_the_documented_steps_agrees(one_per_member: bool) -> None:
    r = rules(one_prize_per_member=one_per_member)
    for i in range(200):
        tickets = [(a * 7 + i, (a * i) % 4) for a in range(1, 2 + i % 9)]

        ours = [(w.place, w.account_id) for w in d.select_winners(seed_of(i), tickets, r)]
        theirs = _reimplemented_from_the_docs(seed_of(i), tickets, 3, one_per_member)

        assert ours == theirs, i
