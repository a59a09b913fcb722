"""The console's notification pages: campaigns (and the customer's unsubscribe page),
message templates, the outbox with dead letters, webhooks (docs/campaigns.md,
docs/notifications.md "Console pages")."""

from __future__ import annotations

from fastapi import APIRouter

from kopilka.web import i18n
from kopilka.web.notify import campaigns, message_templates, outbox, webhooks
from kopilka.web.notify.translations import RU

i18n.add(RU, area="notify")

router = APIRouter(include_in_schema=False)
router.include_router(campaigns.router)
router.include_router(message_templates.router)
router.include_router(outbox.router)
router.include_router(webhooks.router)
