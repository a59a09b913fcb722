"""Admin API: customers (issue 6) — the same services as the console, token-authenticated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

router = APIRouter(prefix="/api/admin/v1", tags=["Admin"])
SCHEMAS: tuple[Any, ...] = ()
