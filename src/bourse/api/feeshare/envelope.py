"""The fee sharing envelope ``{"code", "msg", "data"}``, its error codes, and a record as the
spec shows it (docs/api/feeshare.md).

Every response under /platformapi/chainup/open has this shape, errors from routing,
validation, authentication and rate limiting included. Record numbers are JSON numbers
with the 16 decimals of the spec's example, written exactly (never through float).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from bourse.api.common.exact_json import ExactJSONResponse, RawNumber
from bourse.domain import errors as e
from bourse.domain import feeshare as fs


@dataclass(frozen=True, slots=True)
class FeeShareCode:
    code: str
    status: int
    msg: str


SUCCESS = FeeShareCode("0", 200, "suc")
INVALID_PARAMETER = FeeShareCode("10001", 400, "invalid parameter")
UNKNOWN_APP_KEY = FeeShareCode("10002", 401, "unknown or revoked appKey")
BAD_SIGNATURE = FeeShareCode("10003", 401, "signature error")
NOT_FOUND = FeeShareCode("10004", 404, "not found")
TOO_MANY_REQUESTS = FeeShareCode("10005", 429, "too many requests")
INTERNAL_ERROR = FeeShareCode("99999", 500, "internal error")

# Most specific first: the first isinstance match wins.
ERROR_CODES: tuple[tuple[type[e.BourseError], FeeShareCode], ...] = (
    (fs.BadSignature, BAD_SIGNATURE),
    (e.NotAuthenticated, UNKNOWN_APP_KEY),
    (e.InvalidInput, INVALID_PARAMETER),
    (e.NotFound, NOT_FOUND),
    (e.TooManyRequests, TOO_MANY_REQUESTS),
)


def code_of(error: e.BourseError) -> FeeShareCode:
    return next((code for kind, code in ERROR_CODES if isinstance(error, kind)), INTERNAL_ERROR)


def render_error(error: e.BourseError, status: int, request_id: str | None) -> JSONResponse:
    """The registered renderer for the prefix; the code's HTTP status wins over the core's."""
    code = code_of(error)
    # Only a bad parameter says what is wrong; authentication failures say no more than their title.
    msg = f"{code.msg}: {error.message}" if code is INVALID_PARAMETER else code.msg
    return JSONResponse({"code": code.code, "msg": msg, "data": None}, status_code=code.status)


def _n(value: Any) -> RawNumber:
    return RawNumber(fs.number_text(value))


def record_json(r: fs.FeeShareRecord) -> dict[str, Any]:
    """Every field of the spec's example, in its order."""
    return {
        "volumeDivideRate": _n(r.terms.volume_rate),
        "rateSymbol": r.terms.rate_symbol,
        "rateTime": fs.to_millis(r.rate_time),
        "itemDate": fs.day_millis(r.item_date),
        "maxDivideRate": _n(r.terms.max_rate),
        "otcTradeFeeConvertValue": _n(r.convert_value),
        "remark": r.remark,
        "billingStatusStr": r.status.label,
        "mtime": fs.to_millis(r.updated_at),
        "countTime": fs.to_millis(r.count_time),
        "billingStatus": int(r.status),
        "companyId": r.company_id,
        "coinSymbol": r.coin,
        "incomeDivideRate": _n(r.terms.income_rate),
        "otcTradeValueAll": _n(r.value_all),
        "fingerprint": r.fingerprint,
        "ctime": fs.to_millis(r.created_at),
        "id": r.id,
        "otcTradeValueSub": _n(r.value_sub),
        "changeRate": _n(r.change_rate),
        "otcTradeFeeValue": _n(r.fee),
    }


def success(count: int, records: list[fs.FeeShareRecord]) -> ExactJSONResponse:
    body = {
        "code": SUCCESS.code,
        "msg": SUCCESS.msg,
        "data": {"count": count, "list": [record_json(r) for r in records]},
    }
    return ExactJSONResponse(body)
