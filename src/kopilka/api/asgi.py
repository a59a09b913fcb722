"""ASGI entry point for uvicorn workers: ``kopilka.api.asgi:make_app`` (a factory)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from kopilka.api.app import create_app
from kopilka.services.runtime import Runtime
from kopilka.store.db import resolve_url


def make_app() -> FastAPI:
    pool = int(os.environ.get("KOPILKA_DB_POOL", "20"))
    from kopilka.store.db import create_engine

    url = resolve_url(None)
    return create_app(Runtime(engine=create_engine(url, pool_size=pool), url=url))
