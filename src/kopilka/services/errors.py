"""Every refusal the services can give, with its stable code; HTTP status in one table."""

from __future__ import annotations

from typing import Any

# code -> HTTP status.  The API turns a ServiceError into problem+json with this status.
STATUS: dict[str, int] = {
    "malformed_json": 400,
    "validation_failed": 422,
    "lines_do_not_add_up": 422,
    "unauthorized": 401,
    "terminal_disabled": 403,
    "unknown_identifier": 404,
    "receipt_not_found": 404,
    "customer_not_found": 404,
    "idempotency_conflict": 409,
    "receipt_cancelled": 409,
    "receipt_confirmed": 409,
    "receipt_expired": 409,
    "receipt_not_confirmed": 409,
    "hold_expired": 409,
    "ambiguous_receipt_id": 409,
    "already_registered": 409,
    "card_taken": 409,
    "phone_already_confirmed": 409,
    "card_blocked": 422,
    "not_a_member": 422,
    "insufficient_points": 422,
    "redeem_limit_exceeded": 422,
    "invalid_points_step": 422,
    "refund_exceeds_purchase": 422,
    "unknown_line": 422,
    "not_supported": 422,
    "invalid_code": 422,
    "code_expired": 422,
    "too_many_attempts": 429,
    "points_not_enabled": 422,
    "coupon_not_found": 404,
    "coupon_used": 422,
    "coupon_expired": 422,
    "coupon_not_yet_valid": 422,
    "coupon_not_for_customer": 422,
    "coupon_blocked": 422,
    "coupon_repeated": 422,
    "rate_limited": 429,
    "draw_not_found": 404,
    "promotion_not_found": 404,
    "program_not_found": 404,
    "draw_exists": 409,
    "ambiguous_draw": 409,
    "draw_period_ended": 409,
    "draw_period_not_ended": 409,
    "draw_not_committed": 409,
    "draw_busy": 409,
    "forbidden": 403,
    "not_found": 404,
    "user_exists": 409,
    "conflict": 409,
    "offline_token_invalid": 422,
    "offline_token_expired": 422,
    "offline_cap_exceeded": 422,
    "offline_burn_disabled": 409,
    "offline_nothing_to_burn": 409,
    "period_not_finished": 409,
    "period_closed": 409,
}


class ServiceError(Exception):
    """A refusal with a stable ``code``; ``field`` names the offending input, if any."""

    def __init__(self, code: str, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field
        self.extra = extra

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 422)
