"""Russian for the report pages (English is the source)."""

from __future__ import annotations

RU: dict[str, str] = {
    "Reports": "Отчёты",
    "No reports yet.": "Отчётов пока нет.",
}
