"""Server-side paging and sorting for every console table.

A view reads ``PageRequest.of(request, sorts=..., default=...)``, asks its service for
``offset``/``limit`` rows in ``order`` and returns ``Page``; the ``sort_th`` and ``pager``
macros link to the same URL with other parameters (htmx swaps only the table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

PER_PAGE = 50


@dataclass(frozen=True)
class PageRequest:
    path: str
    params: dict[str, str]
    number: int
    sort: str
    dir: str
    per_page: int = PER_PAGE

    @classmethod
    def of(
        cls,
        request: Request,
        *,
        sorts: Sequence[str],
        default: str,
        default_dir: str = "asc",
        per_page: int = PER_PAGE,
    ) -> PageRequest:
        q = dict(request.query_params)
        sort = q.get("sort", default)
        if sort not in sorts:
            sort = default
        direction = q.get("dir", default_dir)
        if direction not in ("asc", "desc"):
            direction = default_dir
        try:
            number = max(1, int(q.get("page", "1")))
        except ValueError:
            number = 1
        return cls(request.url.path, q, number, sort, direction, per_page)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    @property
    def limit(self) -> int:
        return self.per_page

    @property
    def descending(self) -> bool:
        return self.dir == "desc"

    def page(self, items: Sequence[Any], total: int) -> Page:
        return Page(self, list(items), total)


@dataclass(frozen=True)
class Page:
    request: PageRequest
    items: list[Any] = field(default_factory=list)
    total: int = 0

    @property
    def number(self) -> int:
        return self.request.number

    @property
    def sort(self) -> str:
        return self.request.sort

    @property
    def dir(self) -> str:
        return self.request.dir

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.request.per_page))

    def url(self, **changes: Any) -> str:
        params = {**self.request.params, **{k: str(v) for k, v in changes.items()}}
        params = {k: v for k, v in params.items() if v not in ("", "None")}
        return self.request.path + ("?" + urlencode(params) if params else "")
