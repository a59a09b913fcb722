"""The console's org pages: stores and terminals, users and roles, the audit log
(docs/console/org.md)."""

from __future__ import annotations

from fastapi import APIRouter

from kopilka.web import i18n
from kopilka.web.org import audit_log, receipts, stores, users
from kopilka.web.org.translations import RU

i18n.add(RU, area="org")

router = APIRouter(include_in_schema=False)
router.include_router(stores.router)
router.include_router(users.router)
router.include_router(audit_log.router)
router.include_router(receipts.router)
