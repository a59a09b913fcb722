"""RFC 9457 problem details: every error the API gives, in one shape.

``{"type", "title", "status", "detail", "code", "field", "errors": [...]}``; validation
errors list every offending field as ``lines[0].price`` with a stable code each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.responses import Response

from kopilka.services.errors import ServiceError

TYPE_BASE = "https://kopilka.dev/problems/"

# pydantic error type -> our stable per-field code.  The vocabulary is ours and closed:
# a pydantic type not listed here becomes ``wrong_type`` (``*_type``) or ``bad_value``,
# never pydantic's own name, which may change with a pydantic upgrade.
FIELD_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "decimal_max_places": "too_many_decimals",
    "decimal_max_digits": "too_many_digits",
    "decimal_whole_digits": "too_many_digits",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "finite_number": "not_a_number",
    "decimal_parsing": "not_a_number",
    "string_too_short": "too_short",
    "string_too_long": "too_long",
    "string_pattern_mismatch": "bad_format",
    "too_short": "too_few_items",
    "too_long": "too_many_items",
    "timezone_aware": "needs_timezone",
    "datetime_parsing": "bad_format",
    "datetime_from_date_parsing": "bad_format",
    "datetime_object_invalid": "bad_format",
    "date_parsing": "bad_format",
    "date_from_datetime_parsing": "bad_format",
    "date_from_datetime_inexact": "bad_format",
    "int_parsing": "bad_format",
    "int_from_float": "wrong_type",
    "bool_parsing": "wrong_type",
    "literal_error": "bad_value",
    "value_error": "bad_value",
    "json_invalid": "malformed_json",
}
CODES = frozenset(FIELD_CODES.values()) | {"wrong_type", "bad_value", "bad_check_digit"}


def field_code(pydantic_type: str) -> str:
    """Our stable per-field code for a pydantic error type."""
    code = FIELD_CODES.get(pydantic_type)
    if code is not None:
        return code
    return "wrong_type" if pydantic_type.endswith("_type") else "bad_value"


def field_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after[", "decimal", "str", "literal['max']") or "[" in str(part):
            continue  # union branch names are not fields
        else:
            out += ("." if out else "") + str(part)
    return out


def problem(
    status: int, code: str, detail: str, *, field: str | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json")


def from_service_error(exc: ServiceError) -> Response:
    extra = exc.extra
    if exc.code == "validation_failed" and "errors" not in extra:
        # Same shape as a schema error: ``errors`` always lists the field with its code.
        field = exc.field or "body"
        extra = {**extra, "errors": [{"field": field, "code": "bad_value", "detail": exc.detail}]}
    return problem(exc.status, exc.code, exc.detail, field=exc.field, **extra)


def prefixed(prefix: str, path: str) -> str:
    """``receipts[3]`` + ``lines[0].price`` -> ``receipts[3].lines[0].price``."""
    if not prefix:
        return path
    if not path or path == "body":
        return prefix
    return prefix + (path if path.startswith("[") else "." + path)


def embedded(exc: ServiceError, *, prefix: str) -> dict[str, Any]:
    """A refusal of one item of a batch: its code, field (under ``prefix``) and details."""
    extra = dict(exc.extra)
    if "errors" in extra:
        extra["errors"] = [{**e, "field": prefixed(prefix, e["field"])} for e in extra["errors"]]
    return {
        "code": exc.code,
        "field": prefixed(prefix, exc.field or ""),
        "detail": exc.detail,
        **extra,
    }


def invalid(field: str, code: str, detail: str) -> ServiceError:
    """A validation error found by the edge's own checks, shaped like a schema error."""
    return ServiceError(
        "validation_failed",
        f"{field}: {detail}",
        field=field,
        errors=[{"field": field, "code": code, "detail": detail}],
    )


def validation_errors(exc: ValidationError, *, prefix: str = "") -> list[dict[str, str]]:
    errors = []
    for err in exc.errors(include_url=False):
        path = prefixed(prefix, field_path(err["loc"]))
        errors.append(
            {
                "field": path or "body",
                "code": field_code(err["type"]),
                "detail": err["msg"],
            }
        )
    # Unions report one error per branch; keep one per field.
    seen: set[str] = set()
    unique = []
    for e in errors:
        if e["field"] not in seen:
            seen.add(e["field"])
            unique.append(e)
    return unique


def from_validation_error(exc: ValidationError) -> Response:
    errors = validation_errors(exc)
    if any(e["code"] == "malformed_json" for e in errors):
        return problem(400, "malformed_json", "the body is not valid JSON")
    if errors and errors[0]["field"] == "body" and errors[0]["code"] == "wrong_type":
        return problem(400, "malformed_json", "the body must be a JSON object")
    first = errors[0] if errors else {"field": "body", "detail": "invalid"}
    return problem(
        422,
        "validation_failed",
        f"{first['field']}: {first['detail']}",
        field=first["field"],
        errors=errors,
    )


def problem_dict(resp: Response) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(bytes(resp.body))
    return out


def database_unreachable(exc: BaseException) -> bool:
    """The call failed because the database connection is gone or cannot be made (a
    restart, a failover, the network): the till should retry, nothing was committed.
    Looks through the exception's causes (SQLAlchemy wraps the driver's errors)."""
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    down = (
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.CannotConnectNowError,  # starting up / shutting down
        asyncpg.exceptions.AdminShutdownError,
        asyncpg.exceptions.ConnectionFailureError,
        asyncpg.exceptions.InterfaceError,  # the connection closed under a statement
        asyncpg.exceptions.InternalClientError,  # a connection left broken by the above
        ConnectionError,  # refused, reset
        TimeoutError,
    )
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, down):
            return True
        if isinstance(cur, DBAPIError) and cur.connection_invalidated:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def database_unavailable() -> Response:
    """503 with Retry-After: the database is restarting or unreachable."""
    resp = problem(
        503,
        "database_unavailable",
        "the database is unreachable (restarting?); nothing was written; retry the call",
    )
    resp.headers["Retry-After"] = "1"
    return resp
