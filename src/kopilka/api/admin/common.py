"""What every admin API module needs: the runtime, the caller checked against a program
and a permission, and a JSON answer."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from sqlalchemy import select
from starlette.responses import Response

from kopilka.domain.roles import Perm
from kopilka.services import admin, audit, programs
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

JSON = "application/json"


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def who(request: Request, code: str, perm: Perm) -> tuple[audit.Actor, int]:
    """Authenticate, check the role and the token's program scope; the program's id."""
    rt = runtime(request)
    token = await admin.check_token(rt, request.headers.get("authorization", ""))
    token.check_program(code)
    actor = token.actor(request.client.host if request.client else None)
    actor.require(perm)
    async with rt.engine.connect() as conn:
        pid = (
            await conn.execute(select(t.programs.c.id).where(t.programs.c.code == code))
        ).scalar_one_or_none()
    if pid is None:
        raise programs.not_found(code)
    return actor, int(pid)


def ok(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)
