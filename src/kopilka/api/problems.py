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

# pydantic error type -> our stable per-field code
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
    "string_too_short": "too_short",
    "string_too_long": "too_long",
    "string_pattern_mismatch": "bad_format",
    "too_short": "too_few_items",
    "too_long": "too_many_items",
    "timezone_aware": "needs_timezone",
    "literal_error": "bad_value",
    "value_error": "bad_value",
    "json_invalid": "malformed_json",
}


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
    return problem(exc.status, exc.code, exc.detail, field=exc.field, **exc.extra)


def validation_errors(exc: ValidationError, *, prefix: str = "") -> list[dict[str, str]]:
    errors = []
    for err in exc.errors(include_url=False):
        path = field_path(err["loc"])
        if prefix:
            path = prefix + ("." + path if path and not path.startswith("[") else path)
        errors.append(
            {
                "field": path or "body",
                "code": FIELD_CODES.get(
                    err["type"], "wrong_type" if err["type"].endswith("_type") else err["type"]
                ),
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
