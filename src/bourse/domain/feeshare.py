"""OTC fee sharing with merchants (otc-fee-sharing.md; docs/api/feeshare.md).

A merchant (a company, ``companyId``) brings users; the platform shares the fees its
users pay on OTC markets with it. Per UTC day, merchant and coin (the quote asset of
the OTC markets traded, which is also the asset fees are charged in) one record goes
through three stages:

- 0 Statistic: the day's volume of the merchant's users (``otcTradeValueAll``), the
  part of it where both sides were the merchant's users (``otcTradeValueSub``,
  self-dealing, not shared) and the fees they paid (``otcTradeFeeValue``), with the
  merchant's share terms as they were when the day was collected;
- 1 Calculated: the share ``min(max(fee * income, shared * volume), shared * max)``
  with ``shared = all - sub``, its value in the rate symbol, and a fingerprint of
  every computed field;
- 3 Settled: the share posted from the platform's fee revenue to the merchant's fee
  pool, once; a record whose fingerprint no longer matches its fields is not settled.

Every number of a record has 16 decimals, the form the spec shows and the form the
fingerprint is computed over. Pure: the service stores, this computes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext
from enum import IntEnum
from typing import Any

from bourse.domain.errors import InvalidInput, NotAuthenticated
from bourse.domain.values import EXACT as _EXACT
from bourse.domain.values import AssetId, UserId, decimal_places, format_decimal, parse_decimal

SCALE = 16
Q16 = Decimal(1).scaleb(-SCALE)
MAX_COMPANY_ID = 2**63 - 1
MAX_NAME_LENGTH = 128
ASSET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")

FEE_POOL_PREFIX = "merchant:"
SETTLEMENT_KIND = "feeshare.otc"
# The spec's own wording for a record whose fingerprint does not match (example record).
FINGERPRINT_ERROR = "fingerprint error , stop Huisuan"

ALL_STATUSES = -999
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
MAX_PAGE = 1_000_000
DEFAULT_DAYS = 7


class BillingStatus(IntEnum):
    STATISTIC = 0
    CALCULATED = 1
    SETTLED = 3

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    BillingStatus.STATISTIC: "Statistic",
    BillingStatus.CALCULATED: "Calculated",
    BillingStatus.SETTLED: "Settled accounts",
}


class UnknownAppKey(NotAuthenticated):
    """No appKey, or one that is unknown, revoked or not a merchant's."""

    code = "unknown_app_key"


class BadSignature(NotAuthenticated):
    """No sign, or one that is not the HMAC of the request with the app secret."""

    code = "bad_signature"


def fee_pool(company_id: int) -> str:
    """The ledger owner of a merchant's fee pool (not ``sys:``: it can never go negative)."""
    return f"{FEE_POOL_PREFIX}{company_id}"


# --- merchants ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShareTerms:
    """What a merchant gets: rates are fractions (0.2 = 20%) from 0 to 1, at most 16 decimals."""

    income_rate: Decimal
    volume_rate: Decimal
    max_rate: Decimal
    rate_symbol: AssetId

    def __post_init__(self) -> None:
        for name, rate in (
            ("incomeDivideRate", self.income_rate),
            ("volumeDivideRate", self.volume_rate),
            ("maxDivideRate", self.max_rate),
        ):
            if not isinstance(rate, Decimal) or not rate.is_finite() or not 0 <= rate <= 1:
                raise InvalidInput(f"{name} must be a decimal from 0 to 1", field=name)
            if decimal_places(rate) > SCALE:
                raise InvalidInput(f"{name} has more than {SCALE} decimals", field=name)
        if not ASSET_RE.match(self.rate_symbol):
            raise InvalidInput("rateSymbol must be an asset id", field="rateSymbol")


@dataclass(frozen=True, slots=True)
class Merchant:
    company_id: int
    name: str
    terms: ShareTerms
    created_at: datetime
    updated_at: datetime

    def __post_init__(self) -> None:
        check_company_id(self.company_id)
        if not self.name.strip() or len(self.name) > MAX_NAME_LENGTH:
            raise InvalidInput(f"name must have 1-{MAX_NAME_LENGTH} characters", field="name")


@dataclass(frozen=True, slots=True)
class MerchantUser:
    uid: UserId
    username: str
    company_id: int
    assigned_at: datetime


def check_company_id(value: object, field: str = "companyId") -> int:
    """A positive integer (the spec shows ``companyId`` as a JSON number); digit strings are read too."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_COMPANY_ID:
        raise InvalidInput(f"{field} must be a positive integer", field=field)
    return value


def merchant_json(m: Merchant) -> dict[str, Any]:
    """A merchant as the back office and the CLI show it (rates as decimal strings)."""
    return {
        "companyId": m.company_id,
        "name": m.name,
        "incomeDivideRate": format_decimal(m.terms.income_rate),
        "volumeDivideRate": format_decimal(m.terms.volume_rate),
        "maxDivideRate": format_decimal(m.terms.max_rate),
        "rateSymbol": m.terms.rate_symbol,
        "createdAt": to_millis(m.created_at),
        "updatedAt": to_millis(m.updated_at),
    }


def merchant_user_json(u: MerchantUser) -> dict[str, Any]:
    return {"userId": u.uid, "username": u.username, "assignedAt": to_millis(u.assigned_at)}


_MERCHANT_FIELDS = frozenset(
    {"companyId", "name", "incomeDivideRate", "volumeDivideRate", "maxDivideRate", "rateSymbol"}
)
_TERM_FIELDS = {
    "incomeDivideRate": "income_rate",
    "volumeDivideRate": "volume_rate",
    "maxDivideRate": "max_rate",
}


def _check_fields(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]}", field=unknown[0])


def _name(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("name must be a string", field="name")
    return value.strip()


def _symbol(value: object) -> AssetId:
    if not isinstance(value, str):
        raise InvalidInput("rateSymbol must be a string", field="rateSymbol")
    return AssetId(value.strip())


def _terms(body: Mapping[str, Any], current: ShareTerms | None) -> ShareTerms:
    values: dict[str, Any] = {}
    for name, attr in _TERM_FIELDS.items():
        if name in body:
            values[attr] = parse_decimal(body[name], name)
        elif current is None:
            raise InvalidInput(f"{name} is required", field=name)
    if "rateSymbol" in body:
        values["rate_symbol"] = _symbol(body["rateSymbol"])
    elif current is None:
        raise InvalidInput("rateSymbol is required", field="rateSymbol")
    return replace(current, **values) if current is not None else ShareTerms(**values)


def new_merchant(body: Mapping[str, Any], now: datetime) -> Merchant:
    """From ``{companyId, name, incomeDivideRate, volumeDivideRate, maxDivideRate, rateSymbol}``."""
    _check_fields(body, _MERCHANT_FIELDS)
    if "companyId" not in body:
        raise InvalidInput("companyId is required", field="companyId")
    if "name" not in body:
        raise InvalidInput("name is required", field="name")
    return Merchant(check_company_id(body["companyId"]), _name(body["name"]), _terms(body, None), now, now)


def changed_merchant(current: Merchant, body: Mapping[str, Any], now: datetime) -> Merchant:
    """The fields present in ``body`` change; ``companyId`` cannot."""
    _check_fields(body, _MERCHANT_FIELDS)
    if "companyId" in body and check_company_id(body["companyId"]) != current.company_id:
        raise InvalidInput("companyId cannot change", field="companyId")
    name = _name(body["name"]) if "name" in body else current.name
    return replace(current, name=name, terms=_terms(body, current.terms), updated_at=now)


# --- days -----------------------------------------------------------------------------------------


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def to_millis(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def from_millis(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def day_millis(day: date) -> int:
    """``itemDate``: the epoch milliseconds of the day's UTC midnight."""
    return to_millis(day_bounds(day)[0])


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput("date must be YYYY-MM-DD", field="date") from None


def check_past_day(day: date, now: datetime) -> None:
    """Only a day that is over can be counted: its trades are all in."""
    if day >= now.astimezone(UTC).date():
        raise InvalidInput(f"{day.isoformat()} is not over yet (UTC)", field="date")


# --- numbers --------------------------------------------------------------------------------------


def q16(value: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    with localcontext(_EXACT):
        return value.quantize(Q16, rounding=rounding)


def number_text(value: Decimal) -> str:
    """A record number as the spec shows it: 16 decimals in the decimal (and Java
    ``BigDecimal.toString``) scientific-string form, so ``0.0004000000000000`` and, for
    zero, ``0E-16``."""
    return str(q16(value))


def fixed_text(value: Decimal) -> str:
    """16 decimals in plain notation, never an exponent: the fingerprint's form."""
    return format(q16(value), "f")


# --- statistics and calculation -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statistic:
    """One merchant's OTC day in one coin, as collected (stage 0)."""

    company_id: int
    coin: AssetId
    value_all: Decimal
    value_sub: Decimal
    fee: Decimal


def statistic(company_id: int, coin: str, value_all: Decimal, value_sub: Decimal, fee: Decimal) -> Statistic:
    return Statistic(company_id, AssetId(coin), q16(value_all), q16(value_sub), q16(fee))


def share_of(
    fee: Decimal, value_all: Decimal, value_sub: Decimal, terms: ShareTerms, coin_scale: int
) -> Decimal:
    """``min(max(fee * income, shared * volume), shared * max)``, ``shared = all - sub``; rounded
    down to the coin's scale (it is posted in the coin) and to 16 decimals, never below 0."""
    with localcontext(_EXACT):
        shared = value_all - value_sub
        raw = min(max(fee * terms.income_rate, shared * terms.volume_rate), shared * terms.max_rate)
        places = max(0, min(coin_scale, SCALE))
        return max(raw, Decimal(0)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)


@dataclass(frozen=True, slots=True)
class Rate:
    """The price of one coin in the rate symbol, and when it was traded."""

    value: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class FeeShareRecord:
    id: int
    company_id: int
    coin: AssetId
    item_date: date
    status: BillingStatus
    value_all: Decimal
    value_sub: Decimal
    fee: Decimal
    terms: ShareTerms
    share: Decimal
    change_rate: Decimal
    convert_value: Decimal
    fingerprint: str
    remark: str
    settle_tx_id: int | None
    created_at: datetime
    updated_at: datetime
    count_time: datetime
    rate_time: datetime


def fingerprint_text(r: FeeShareRecord) -> str:
    """The canonical form of a record's computed fields (docs/api/feeshare.md, "Fingerprint")."""
    pairs = (
        ("companyId", str(r.company_id)),
        ("coinSymbol", r.coin),
        ("itemDate", str(day_millis(r.item_date))),
        ("otcTradeValueAll", fixed_text(r.value_all)),
        ("otcTradeValueSub", fixed_text(r.value_sub)),
        ("otcTradeFeeValue", fixed_text(r.fee)),
        ("incomeDivideRate", fixed_text(r.terms.income_rate)),
        ("volumeDivideRate", fixed_text(r.terms.volume_rate)),
        ("maxDivideRate", fixed_text(r.terms.max_rate)),
        ("rateSymbol", r.terms.rate_symbol),
        ("share", fixed_text(r.share)),
        ("changeRate", fixed_text(r.change_rate)),
        ("otcTradeFeeConvertValue", fixed_text(r.convert_value)),
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


def fingerprint(r: FeeShareRecord) -> str:
    # MD5 as the spec's 32-hex fingerprint shows: a check against changed rows, not a secret.
    return hashlib.md5(fingerprint_text(r).encode(), usedforsecurity=False).hexdigest()


def fingerprint_matches(r: FeeShareRecord) -> bool:
    return bool(r.fingerprint) and hmac.compare_digest(r.fingerprint, fingerprint(r))


def calculated(r: FeeShareRecord, coin_scale: int, rate: Rate | None, now: datetime) -> FeeShareRecord:
    """Stage 0 -> 1. The share is converted at ``rate`` unless the coin is the rate symbol (then,
    as in the spec's example, changeRate is 0 and the share is shown unconverted); without a
    rate the converted value is 0 and the remark says so."""
    share = share_of(r.fee, r.value_all, r.value_sub, r.terms, coin_scale)
    remark = ""
    rate_time = now
    if r.coin == r.terms.rate_symbol:
        change_rate, converted = Decimal(0), share
    elif rate is None:
        change_rate, converted = Decimal(0), Decimal(0)
        remark = f"no {r.coin}/{r.terms.rate_symbol} price: not converted"
    else:
        change_rate = q16(rate.value)
        with localcontext(_EXACT):
            converted = q16(share * change_rate, ROUND_DOWN)
        rate_time = rate.at
    record = replace(
        r,
        status=BillingStatus.CALCULATED,
        share=q16(share),
        change_rate=change_rate,
        convert_value=q16(converted),
        remark=remark,
        updated_at=now,
        count_time=now,
        rate_time=rate_time,
    )
    return replace(record, fingerprint=fingerprint(record))


def inverse_rate(price: Decimal) -> Decimal:
    """The rate from a market quoted the other way round (rate symbol / coin)."""
    with localcontext(_EXACT):
        return q16(Decimal(1) / price)


# --- the merchants' query -------------------------------------------------------------------------


def signing_text(params: Mapping[str, str]) -> str:
    """Every parameter but ``sign`` with a non-empty value, sorted by name (code point order), as
    ``name=value`` joined by ``&``; values as sent, not URL-encoded."""
    return "&".join(
        f"{name}={params[name]}" for name in sorted(params) if name != "sign" and params[name] != ""
    )


def sign(secret: str, params: Mapping[str, str]) -> str:
    """Lowercase hex HMAC-SHA256 of ``signing_text`` with the app secret as the key."""
    return hmac.new(secret.encode(), signing_text(params).encode(), hashlib.sha256).hexdigest()


def check_sign(secret: str, params: Mapping[str, str]) -> None:
    given = params.get("sign", "")
    if not given:
        raise BadSignature("sign is missing")
    if not hmac.compare_digest(sign(secret, params).encode(), given.lower().encode()):
        raise BadSignature("sign does not match")


@dataclass(frozen=True, slots=True)
class RecordQuery:
    coin: AssetId | None  # matched case-insensitively
    first_day: date
    last_day: date
    status: BillingStatus | None
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def _int(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name, "")
    if value == "":
        return None
    if not re.fullmatch(r"-?[0-9]{1,19}", value):
        raise InvalidInput(f"{name} must be an integer", field=name)
    return int(value)


def _millis(params: Mapping[str, str], name: str) -> datetime | None:
    value = _int(params, name)
    if value is None:
        return None
    if not 0 <= value <= 253402300799999:  # up to 9999-12-31
        raise InvalidInput(f"{name} must be epoch milliseconds", field=name)
    return from_millis(value)


def parse_record_query(params: Mapping[str, str], now: datetime) -> RecordQuery:
    """The spec's query with its defaults: records whose ``itemDate`` is in [itemDateStart,
    itemDateEnd]; the end defaults to now, the start to the UTC midnight 7 days before the end's
    day (the last 7 days); pageSize 10 (1-1000), page 1, billstatus -999 (all)."""
    end = _millis(params, "itemDateEnd") or now
    start = _millis(params, "itemDateStart")
    if start is None:
        start = day_bounds(end.astimezone(UTC).date() - timedelta(days=DEFAULT_DAYS))[0]
    if start > end:
        raise InvalidInput("itemDateStart is after itemDateEnd", field="itemDateStart")
    start_day = start.astimezone(UTC).date()
    first_day = start_day if start == day_bounds(start_day)[0] else start_day + timedelta(days=1)
    page_size = _int(params, "pageSize")
    page_size = DEFAULT_PAGE_SIZE if page_size is None else page_size
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"pageSize must be from 1 to {MAX_PAGE_SIZE}", field="pageSize")
    page = _int(params, "page")
    page = 1 if page is None else page
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput(f"page must be from 1 to {MAX_PAGE}", field="page")
    raw_status = _int(params, "billstatus")
    status: BillingStatus | None = None
    if raw_status is not None and raw_status != ALL_STATUSES:
        try:
            status = BillingStatus(raw_status)
        except ValueError:
            raise InvalidInput("billstatus must be 0, 1, 3 or -999", field="billstatus") from None
    symbol = params.get("symbol", "")
    if symbol and not ASSET_RE.match(symbol):
        raise InvalidInput("symbol must be a coin symbol such as BTC", field="symbol")
    return RecordQuery(
        coin=AssetId(symbol) if symbol else None,
        first_day=first_day,
        last_day=end.astimezone(UTC).date(),
        status=status,
        page=page,
        page_size=page_size,
    )
