"""The console's programs pages: programs, tiers, promotions, versions, the simulator
(see docs/console/programs.md)."""

from __future__ import annotations

from kopilka.web.programs import strings as strings
from kopilka.web.programs.settings import router as settings_router
from kopilka.web.programs.views import router

router.include_router(settings_router)

__all__ = ["router", "strings"]
