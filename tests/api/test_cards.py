"""Cards: other identifiers of the same account, blocking and replacing."""

from __future__ import annotations

from typing import Any

from kopilka.domain.identifiers import make_card_number
from kopilka.services import cards
from tests.conftest import receipt


async def test_an_rfid_tag_and_the_phone_identify_the_same_account(make_shop: Any) -> None:
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    uid = f"04A2{member.account_id:08X}"
    await cards.do_link_identifier(shop.rt, member.card, kind="rfid", value=uid)

    bought = await shop.post("/purchases", receipt("r1", uid, ("a", 1, "100.00")))
    by_phone = await shop.get("/customers/lookup", params={"identifier": member.phone})

    assert bought.status_code == 200, bought.text
    assert by_phone.json()["balance"]["available"] == "10.00"


async def test_a_blocked_card_is_refused_and_a_replacement_keeps_the_balance(
    make_shop: Any,
) -> None:
    shop = await make_shop(earn_percent="10")
    member = await shop.customer(points=25)
    new_card = make_card_number("28", shop.program_id * 1000 + member.account_id % 1000)

    await cards.do_replace_card(shop.rt, member.card, new_card)
    old = await shop.post("/purchases/calculate", receipt("r1", member.card, ("a", 1, "1.00")))
    new = await shop.get("/customers/lookup", params={"identifier": new_card})
    await cards.do_block_card(shop.rt, new_card, reason="lost")
    blocked = await shop.post("/purchases/calculate", receipt("r2", new_card, ("a", 1, "1.00")))

    assert old.status_code == 422 and old.json()["code"] == "card_blocked"
    assert new.json()["balance"]["available"] == "25.00"
    assert blocked.status_code == 422 and blocked.json()["code"] == "card_blocked"
