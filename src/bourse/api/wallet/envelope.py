"""The ext-orders envelope ``{"code", "msg", "time", "data", "success"}`` and its error codes.

Every response under /ext-orders has this shape, errors from FastAPI's validation
and from authentication included (see docs/api/wallet.md for the table).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from bourse.domain import errors as e
from bourse.domain import wallet as w

ENVELOPE_KEYS = ("code", "msg", "time", "data", "success")


@dataclass(frozen=True, slots=True)
class WalletCode:
    code: int
    status: int
    msg: str


INVALID_PARAMETER = WalletCode(11000001, 400, "Invalid parameter")
UNAUTHORIZED = WalletCode(11000002, 401, "Unauthorized")
FORBIDDEN = WalletCode(11000003, 403, "Forbidden")
NOT_FOUND = WalletCode(11000004, 404, "Request not found")
UNKNOWN_USER = WalletCode(11000005, 400, "User not found")
UNKNOWN_CURRENCY = WalletCode(11000006, 400, "Currency not found")
CONFLICT = WalletCode(11000007, 409, "extRequestId already used for a different request")
IN_PROGRESS = WalletCode(11000008, 409, "Request with this extRequestId is in progress")
TOO_MANY_REQUESTS = WalletCode(11000009, 429, "Too many requests")
REJECTED = WalletCode(11000010, 400, "Request rejected")
INSUFFICIENT_BALANCE = WalletCode(11000013, 400, "Insufficient Balance in Wallet")
OVER_RELEASE = WalletCode(11000014, 400, "Release exceeds staked amount")
NEGATIVE_SETTLEMENT = WalletCode(11000015, 400, "Negative settlement")
INTERNAL_ERROR = WalletCode(11000099, 500, "Internal error")

# Most specific first: the first isinstance match wins.
ERROR_CODES: tuple[tuple[type[e.BourseError], WalletCode], ...] = (
    (w.UnknownUser, UNKNOWN_USER),
    (w.UnknownCurrency, UNKNOWN_CURRENCY),
    (w.OverRelease, OVER_RELEASE),
    (w.NegativeSettlement, NEGATIVE_SETTLEMENT),
    (e.InsufficientFunds, INSUFFICIENT_BALANCE),
    (e.InvalidInput, INVALID_PARAMETER),
    (e.NotAuthenticated, UNAUTHORIZED),
    (e.PermissionDenied, FORBIDDEN),
    (e.NotFound, NOT_FOUND),
    (e.Conflict, CONFLICT),
    (e.InProgress, IN_PROGRESS),
    (e.TooManyRequests, TOO_MANY_REQUESTS),
    (e.BusinessRejection, REJECTED),
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def code_of(error: e.BourseError) -> WalletCode:
    if isinstance(error, e.Conflict) and error.details.get("retryable") is True:
        # The ledger asked for more runs than the wallet makes (a deadlock, say): nothing was
        # applied and the same request may be sent again, as after a long wait on a twin.
        return IN_PROGRESS
    return next((code for kind, code in ERROR_CODES if isinstance(error, kind)), INTERNAL_ERROR)


def success(data: Any = None, time_ms: int | None = None) -> JSONResponse:
    body = w.success_response(now_ms() if time_ms is None else time_ms)
    body["data"] = data
    return JSONResponse(body)


def render_error(error: e.BourseError, status: int, request_id: str | None) -> JSONResponse:
    """The registered renderer for /ext-orders; ``status`` (the core's choice) gives way to the code's."""
    code = code_of(error)
    # Only a bad parameter says which; the other codes are complete on their own (and the
    # internal error must not leak anything).
    msg = f"{code.msg}: {error.message}" if code is INVALID_PARAMETER else code.msg
    body = {"code": code.code, "msg": msg, "time": now_ms(), "data": None, "success": False}
    return JSONResponse(body, status_code=code.status)
