"""The console's mechanics pages (see docs/user-guide.md)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
