"""The console's mechanics pages: coupons, gift cards, draws, rewards
(docs/console/mechanics.md).  Reading needs ``mechanics.read``, changing
``mechanics.write``; every change goes through the services, which write its audit row
in the same transaction."""

from __future__ import annotations

from fastapi import APIRouter

from kopilka.web.mechanics import coupons, draws, giftcards, rewards, strings

router = APIRouter(include_in_schema=False)
for _sub in (coupons.router, giftcards.router, draws.router, rewards.router):
    router.include_router(_sub)

strings.register()
