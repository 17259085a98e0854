"""Markets: what is traded, at which scales and limits, when, and the engine's view of it.

A market is immutable once loaded; changing one is building a new value
(``apply_fields``) and storing it. Validation lives in ``Market.__post_init__``
(its own consistency) and ``check_assets`` (consistency with the base and quote
assets), so a market that exists is a market the engine can run.

Fields a JSON body names are parsed here from the back-office spelling
(camelCase), so every dialect refuses the same inputs with the same field name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bourse.domain.calendars import (
    DayOfWeek,
    SessionOverride,
    TimeInterval,
    TradingCalendar,
    TradingSession,
    calendar_from_json,
    calendar_to_json,
    parse_time,
)
from bourse.domain.errors import InvalidInput
from bourse.domain.ledger import MAX_SCALE, Asset
from bourse.domain.matching.spec import MarketSpec, MarketStatus
from bourse.domain.values import AssetId, decimal_places, format_decimal, parse_decimal

__all__ = [
    "DEFAULT_LIMIT",
    "MARKET_ID_RE",
    "MAX_LABEL_LENGTH",
    "MAX_LIMIT",
    "MAX_NAME_LENGTH",
    "DayOfWeek",
    "Market",
    "MarketQuery",
    "MarketSort",
    "MarketSortField",
    "MarketStatus",
    "MarketType",
    "SessionOverride",
    "SessionStatus",
    "SortDirection",
    "SwapLeg",
    "SwapSettings",
    "SwapType",
    "TimeInterval",
    "TradingCalendar",
    "TradingSession",
    "amount_text",
    "apply_fields",
    "calendar_from_json",
    "calendar_to_json",
    "check_assets",
    "default_market_id",
    "iso_millis",
    "new_market",
    "to_millis",
    "truncate_millis",
]

MARKET_ID_RE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{1,31}$")
MAX_NAME_LENGTH = 128
MAX_LABEL_LENGTH = 64
# Stored as NUMERIC(38, 18): at most 20 integer digits.
MAX_MAGNITUDE = Decimal(10) ** 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MarketType(StrEnum):
    SPOT = "Spot"
    CFD = "Cfd"
    PERPETUAL = "Perpetual"


class SwapType(StrEnum):
    """How a derivatives market's overnight swap is sized (stored for issue #7, not applied yet)."""

    PERCENT = "Percent"
    FIXED = "Fixed"


# --- derivatives settings (stored for issue #7) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class SwapLeg:
    size: Decimal
    asset_id: AssetId


@dataclass(frozen=True, slots=True)
class SwapSettings:
    type: SwapType
    short: SwapLeg | None = None
    long: SwapLeg | None = None


# --- the market ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Market:
    id: str
    base_asset: AssetId
    quote_asset: AssetId
    display_name: str
    full_name: str
    type: MarketType
    subtype: str | None
    price_scale: int
    amount_scale: int
    tick_size: Decimal
    lot_step: Decimal
    min_amount: Decimal
    max_base_amount: Decimal | None
    min_quote_amount: Decimal | None
    # A fraction (0.05 = 5%): limit orders further than this from the last price are rejected.
    price_deviation: Decimal
    # A fraction: market orders never fill beyond last * (1 +- slippage_rate).
    slippage_rate: Decimal
    status: MarketStatus
    is_otc: bool
    is_hidden: bool
    calendar: TradingCalendar | None
    market_group_id: str | None
    created_at: datetime
    updated_at: datetime
    # Back-office fields kept so a PUT/GET round-trips; not used by spot trading.
    calendar_id: str | None = None
    is_synchronized: bool = False
    external_ttl: int | None = None
    internal_ttl: int | None = None
    trading_session_ids: tuple[str, ...] = ()
    market_data_session_ids: tuple[str, ...] = ()
    # Derivatives (issue #7): stored and shown, not applied.
    lot_size: int | None = None
    min_lot_amount: Decimal | None = None
    max_lot_amount: int | None = None
    swap_settings: SwapSettings | None = None
    max_leverage: int | None = None
    is_const_leverage: bool | None = None
    funding_start_time: time | None = None
    funding_interval_in_hours: int | None = None
    _spec: MarketSpec | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not MARKET_ID_RE.match(self.id):
            raise InvalidInput(
                "marketId must be 2-32 capital letters, digits or . _ - (starting with a letter or digit)",
                field="marketId",
            )
        if self.base_asset == self.quote_asset:
            raise InvalidInput("base and quote asset must differ", field="quoteAssetId")
        for name, value in (("displayName", self.display_name), ("fullName", self.full_name)):
            if not value.strip() or len(value) > MAX_NAME_LENGTH:
                raise InvalidInput(f"{name} must be 1-{MAX_NAME_LENGTH} characters", field=name)
        for name, scale in (("priceScale", self.price_scale), ("amountScale", self.amount_scale)):
            if not 0 <= scale <= MAX_SCALE:
                raise InvalidInput(f"{name} must be between 0 and {MAX_SCALE}", field=name)
        _positive(self.tick_size, "tickSize")
        _positive(self.lot_step, "lotStep")
        if decimal_places(self.tick_size) > self.price_scale:
            raise InvalidInput("tickSize has more decimals than priceScale", field="tickSize")
        if decimal_places(self.lot_step) > self.amount_scale:
            raise InvalidInput("lotStep has more decimals than amountScale", field="lotStep")
        _non_negative(self.min_amount, "minAmount")
        if self.min_amount % self.lot_step:
            raise InvalidInput("minAmount must be a multiple of lotStep", field="minAmount")
        if self.max_base_amount is not None:
            _positive(self.max_base_amount, "maxBaseAmount")
            if self.max_base_amount % self.lot_step:
                raise InvalidInput("maxBaseAmount must be a multiple of lotStep", field="maxBaseAmount")
            if self.max_base_amount < max(self.min_amount, self.lot_step):
                raise InvalidInput(
                    "maxBaseAmount must be at least minAmount and lotStep", field="maxBaseAmount"
                )
        if self.min_quote_amount is not None:
            _non_negative(self.min_quote_amount, "minQuoteAmount")
        for name, fraction in (
            ("priceDeviation", self.price_deviation),
            ("slippageRate", self.slippage_rate),
        ):
            if not Decimal(0) <= fraction < 1:
                raise InvalidInput(f"{name} is a fraction in [0, 1) (0.05 = 5%)", field=name)
        for name, label in (
            ("subtype", self.subtype),
            ("marketGroupId", self.market_group_id),
            ("calendarId", self.calendar_id),
        ):
            if label is not None and (not label.strip() or len(label) > MAX_LABEL_LENGTH):
                raise InvalidInput(f"{name} must be 1-{MAX_LABEL_LENGTH} characters", field=name)
        for name, number in (
            ("externalTtl", self.external_ttl),
            ("internalTtl", self.internal_ttl),
            ("lotSize", self.lot_size),
            ("maxLotAmount", self.max_lot_amount),
            ("maxLeverage", self.max_leverage),
        ):
            if number is not None and not 0 <= number <= 2**31 - 1:
                raise InvalidInput(f"{name} must be a non-negative integer", field=name)
        if self.funding_interval_in_hours is not None and not 1 <= self.funding_interval_in_hours <= 24 * 31:
            raise InvalidInput(
                "fundingIntervalInHours must be between 1 and 744", field="fundingIntervalInHours"
            )
        if self.min_lot_amount is not None:
            _non_negative(self.min_lot_amount, "minLotAmount")
        object.__setattr__(
            self,
            "_spec",
            MarketSpec(
                symbol=self.id,
                tick_size=self.tick_size,
                lot_step=self.lot_step,
                min_quantity=self.min_amount if self.min_amount > 0 else None,
                max_quantity=self.max_base_amount,
                price_band=self.slippage_rate,
            ),
        )

    def spec(self) -> MarketSpec:
        """The engine's view: Decimal <-> ticks/lots, quantity limits, the market-order band."""
        assert self._spec is not None
        return self._spec


def _positive(value: Decimal, name: str) -> None:
    if not value.is_finite() or value <= 0 or value >= MAX_MAGNITUDE or decimal_places(value) > MAX_SCALE:
        raise InvalidInput(f"{name} must be a positive decimal with at most {MAX_SCALE} decimals", field=name)


def _non_negative(value: Decimal, name: str) -> None:
    if not value.is_finite() or value < 0 or value >= MAX_MAGNITUDE or decimal_places(value) > MAX_SCALE:
        raise InvalidInput(
            f"{name} must be a non-negative decimal with at most {MAX_SCALE} decimals", field=name
        )


def check_assets(market: Market, base: Asset, quote: Asset) -> None:
    """A market's amounts must fit its assets: the ledger refuses what the asset's scale cannot hold."""
    if market.amount_scale > base.scale:
        raise InvalidInput(
            f"amountScale {market.amount_scale} exceeds the scale {base.scale} of {base.id}",
            field="amountScale",
        )
    if market.min_quote_amount is not None and decimal_places(market.min_quote_amount) > quote.scale:
        raise InvalidInput(f"minQuoteAmount has more decimals than {quote.id} allows", field="minQuoteAmount")
    if market.min_amount and decimal_places(market.min_amount) > base.scale:
        raise InvalidInput(f"minAmount has more decimals than {base.id} allows", field="minAmount")


def default_market_id(base: str, quote: str) -> str:
    candidate = f"{base}{quote}".upper()
    if not MARKET_ID_RE.match(candidate):
        raise InvalidInput(
            f"cannot derive a market id from {base!r} and {quote!r}; give marketId", field="marketId"
        )
    return candidate


def truncate_millis(moment: datetime) -> datetime:
    """Stored as shown: a timestamp with milliseconds, so a stored and a shown one agree."""
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


def to_millis(moment: datetime) -> int:
    """Epoch milliseconds."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def iso_millis(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``: 2025-09-09T23:03:37.501Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# --- parsing back-office bodies -----------------------------------------------------------------

# The body field -> (attribute, parser). Parsers take (value, field name) and return the attribute's value.


def _decimal(value: object, name: str) -> Decimal:
    return parse_decimal(value, name)


def _opt_decimal(value: object, name: str) -> Decimal | None:
    return None if value is None else parse_decimal(value, name)


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer", field=name)
    return value


def _opt_int(value: object, name: str) -> int | None:
    return None if value is None else _int(value, name)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    return value


def _opt_text(value: object, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", field=name)
    return value


def _opt_bool(value: object, name: str) -> bool | None:
    return None if value is None else _bool(value, name)


def _enum(kind: type[StrEnum]) -> Any:
    def parse(value: object, name: str) -> StrEnum:
        try:
            if isinstance(value, str):
                return kind(value)
        except ValueError:
            pass
        raise InvalidInput(f"{name} must be one of {', '.join(k.value for k in kind)}", field=name)

    return parse


def _ids(value: object, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(f"{name} must be a list of ids", field=name)
    return tuple(value)


def _opt_time(value: object, name: str) -> time | None:
    return None if value is None else parse_time(value, name)


def _calendar(value: object, name: str) -> TradingCalendar | None:
    return None if value is None else calendar_from_json(value)


def _swap_leg(value: object, name: str) -> SwapLeg | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"swapSize", "assetId"} or "swapSize" not in value:
        raise InvalidInput("a swap leg is {swapSize, assetId}", field=name)
    asset = value.get("assetId")
    if not isinstance(asset, str) or not asset:
        raise InvalidInput("a swap leg needs an assetId", field=name)
    return SwapLeg(parse_decimal(value["swapSize"], name), AssetId(asset))


def _swap(value: object, name: str) -> SwapSettings | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {
        "type",
        "shortPositionSettings",
        "longPositionSettings",
    }:
        raise InvalidInput("swapSettings is {type, shortPositionSettings, longPositionSettings}", field=name)
    return SwapSettings(
        _enum(SwapType)(value.get("type"), "swapSettings.type"),
        _swap_leg(value.get("shortPositionSettings"), "swapSettings.shortPositionSettings"),
        _swap_leg(value.get("longPositionSettings"), "swapSettings.longPositionSettings"),
    )


# Fields a PUT may change (the POST takes these plus baseAssetId, quoteAssetId, type, marketId).
UPDATABLE_FIELDS: Mapping[str, tuple[str, Any]] = {
    "displayName": ("display_name", _text),
    "fullName": ("full_name", _text),
    "minAmount": ("min_amount", _decimal),
    "priceDeviation": ("price_deviation", _decimal),
    "priceScale": ("price_scale", _int),
    "amountScale": ("amount_scale", _int),
    "slippageRate": ("slippage_rate", _decimal),
    "status": ("status", _enum(MarketStatus)),
    "subtype": ("subtype", _opt_text),
    "isSynchronized": ("is_synchronized", _bool),
    "externalTtl": ("external_ttl", _opt_int),
    "internalTtl": ("internal_ttl", _opt_int),
    "marketGroupId": ("market_group_id", _opt_text),
    "calendarId": ("calendar_id", _opt_text),
    "lotSize": ("lot_size", _opt_int),
    "minLotAmount": ("min_lot_amount", _opt_decimal),
    "maxLotAmount": ("max_lot_amount", _opt_int),
    "tickSize": ("tick_size", _decimal),
    "lotStep": ("lot_step", _decimal),
    "swapSettings": ("swap_settings", _swap),
    "maxLeverage": ("max_leverage", _opt_int),
    "isConstLeverage": ("is_const_leverage", _opt_bool),
    "minQuoteAmount": ("min_quote_amount", _opt_decimal),
    "maxBaseAmount": ("max_base_amount", _opt_decimal),
    "tradingSessionIds": ("trading_session_ids", _ids),
    "marketDataSessionIds": ("market_data_session_ids", _ids),
    # bourse extensions (documented in docs/api/brokerage.md)
    "isOtc": ("is_otc", _bool),
    "isHidden": ("is_hidden", _bool),
    "calendar": ("calendar", _calendar),
    "fundingStartTime": ("funding_start_time", _opt_time),
    "fundingIntervalInHours": ("funding_interval_in_hours", _opt_int),
}
CREATE_ONLY_FIELDS = frozenset({"baseAssetId", "quoteAssetId", "type", "marketId"})
NOT_NULL_FIELDS = frozenset(
    {
        "displayName",
        "fullName",
        "minAmount",
        "priceDeviation",
        "priceScale",
        "amountScale",
        "slippageRate",
        "status",
        "isSynchronized",
        "tickSize",
        "lotStep",
        "isOtc",
        "isHidden",
    }
)

DEFAULT_PRICE_DEVIATION = Decimal("0.1")
DEFAULT_SLIPPAGE_RATE = Decimal("0.05")


def _parse(fields: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    unknown = set(fields) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"unknown field {name}", field=name)
    values: dict[str, Any] = {}
    for name, raw in fields.items():
        if name in CREATE_ONLY_FIELDS:
            continue
        if raw is None and name in NOT_NULL_FIELDS:
            raise InvalidInput(f"{name} may not be null", field=name)
        attribute, parse = UPDATABLE_FIELDS[name]
        values[attribute] = parse(raw, name)
    return values


def new_market(fields: Mapping[str, Any], now: datetime) -> Market:
    """A market from a back-office POST body. Required: baseAssetId, quoteAssetId, priceScale,
    amountScale. tickSize defaults to 10^-priceScale, lotStep to 10^-amountScale, minAmount to lotStep."""
    values = _parse(fields, frozenset(UPDATABLE_FIELDS) | CREATE_ONLY_FIELDS)
    for name in ("baseAssetId", "quoteAssetId", "priceScale", "amountScale"):
        if fields.get(name) is None:
            raise InvalidInput(f"{name} is required", field=name)
    base = _text(fields["baseAssetId"], "baseAssetId")
    quote = _text(fields["quoteAssetId"], "quoteAssetId")
    market_id = fields.get("marketId")
    market_id = default_market_id(base, quote) if market_id is None else _text(market_id, "marketId")
    price_scale, amount_scale = values["price_scale"], values["amount_scale"]
    for name, scale in (("priceScale", price_scale), ("amountScale", amount_scale)):
        if not 0 <= scale <= MAX_SCALE:
            raise InvalidInput(f"{name} must be between 0 and {MAX_SCALE}", field=name)
    lot_step = values.get("lot_step", Decimal(1).scaleb(-amount_scale))
    display = values.get("display_name", f"{base}/{quote}")
    defaults: dict[str, Any] = {
        "id": market_id,
        "base_asset": AssetId(base),
        "quote_asset": AssetId(quote),
        "display_name": display,
        "full_name": display,
        "type": _enum(MarketType)(fields.get("type") or MarketType.SPOT.value, "type"),
        "subtype": None,
        "tick_size": Decimal(1).scaleb(-price_scale),
        "lot_step": lot_step,
        "min_amount": lot_step,
        "max_base_amount": None,
        "min_quote_amount": None,
        "price_deviation": DEFAULT_PRICE_DEVIATION,
        "slippage_rate": DEFAULT_SLIPPAGE_RATE,
        "status": MarketStatus.ACTIVE,
        "is_otc": False,
        "is_hidden": False,
        "calendar": None,
        "market_group_id": None,
        "created_at": truncate_millis(now),
        "updated_at": truncate_millis(now),
    }
    return Market(**(defaults | values))


def apply_fields(market: Market, fields: Mapping[str, Any], now: datetime) -> Market:
    """``market`` with the fields of a back-office PUT body applied: absent fields keep their value,
    ``null`` clears an optional one. The market id, assets and type cannot change."""
    fixed = set(fields) & CREATE_ONLY_FIELDS
    if fixed:
        name = sorted(fixed)[0]
        raise InvalidInput(f"{name} cannot be changed", field=name)
    return replace(market, **_parse(fields, frozenset(UPDATABLE_FIELDS)), updated_at=truncate_millis(now))


# --- listing ------------------------------------------------------------------------------------


class SortDirection(StrEnum):
    ASC = "Asc"
    DESC = "Desc"


class MarketSortField(StrEnum):
    MARKET_ID = "marketId"
    DISPLAY_NAME = "displayName"
    FULL_NAME = "fullName"
    BASE_ASSET_ID = "baseAssetId"
    QUOTE_ASSET_ID = "quoteAssetId"
    TYPE = "type"
    SUBTYPE = "subtype"
    STATUS = "status"
    MARKET_GROUP_ID = "marketGroupId"
    CALENDAR_ID = "calendarId"
    CREATED_AT = "createdAt"
    UPDATED_AT = "updatedAt"


class SessionStatus(StrEnum):
    """Status of a trading or market-data session (sessions come with liquidity providers, later)."""

    ACTIVE = "Active"
    INACTIVE = "Inactive"


@dataclass(frozen=True, slots=True)
class MarketSort:
    field: MarketSortField = MarketSortField.MARKET_ID
    direction: SortDirection = SortDirection.ASC


DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class MarketQuery:
    """Back-office market filters. Empty tuples do not filter; every given filter must match."""

    market_ids: tuple[str, ...] = ()
    types: tuple[MarketType, ...] = ()
    subtypes: tuple[str, ...] = ()
    display_names: tuple[str, ...] = ()
    full_names: tuple[str, ...] = ()
    calendar_ids: tuple[str, ...] = ()
    market_group_ids: tuple[str, ...] = ()
    exclude_market_group_ids: tuple[str, ...] = ()
    base_asset_ids: tuple[str, ...] = ()
    quote_asset_ids: tuple[str, ...] = ()
    statuses: tuple[MarketStatus, ...] = ()
    id_contains: str | None = None  # case-insensitive substring of the market id
    include_hidden: bool = True
    # Sessions are stored ids until a session registry exists: a session's name is its id and
    # its status Inactive (no liquidity provider runs it yet).
    trading_session_names: tuple[str, ...] = ()
    market_data_session_names: tuple[str, ...] = ()
    trading_session_status: SessionStatus | None = None
    market_data_session_status: SessionStatus | None = None
    limit: int | None = None
    offset: int = 0
    sort: MarketSort = MarketSort()

    def __post_init__(self) -> None:
        if self.limit is not None and not 0 <= self.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 0 and {MAX_LIMIT}", field="limit")
        if self.offset < 0:
            raise InvalidInput("offset must not be negative", field="offset")


def amount_text(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)
