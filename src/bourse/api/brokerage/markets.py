"""Markets (brokerage-platform.md): back office ``/back-api/backoffice/v2/markets...`` and front
office ``/frontoffice/api/v3|v4/markets...``, ``/v3/info`` (categories: categories.py).

Shapes here, rules in ``domain/markets.py`` and ``service/markets.py``. Back-office
bodies are passed to the domain as JSON objects so every field error names the
spec's field; unknown fields are refused (400), never ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from bourse.api.common.auth import Meta, Services, require
from bourse.domain.identity import Operation, Principal
from bourse.domain.markets import (
    DEFAULT_LIMIT,
    Market,
    MarketQuery,
    MarketSort,
    MarketSortField,
    MarketStatus,
    MarketType,
    SessionStatus,
    SortDirection,
    SwapSettings,
    amount_text,
    calendar_to_json,
    iso_millis,
)
from bourse.domain.values import format_decimal

backoffice = APIRouter(prefix="/back-api/backoffice/v2", tags=["brokerage: markets"])
frontoffice = APIRouter(prefix="/frontoffice/api", tags=["brokerage: markets"])

ViewCommon = Annotated[Principal, Depends(require(Operation.VIEW_COMMON))]
ManageMarkets = Annotated[Principal, Depends(require(Operation.MANAGE_MARKETS))]
Trader = Annotated[Principal, Depends(require(Operation.TRADING_UI))]
JsonObject = Annotated[dict[str, Any], Body()]

# Session names and status: until a session registry exists, a session is its stored id.
INACTIVE = SessionStatus.INACTIVE.value


# --- rendering ----------------------------------------------------------------------------------


def _swap(swap: SwapSettings | None, size_key: str) -> dict[str, Any] | None:
    if swap is None:
        return None

    def leg(x: Any) -> dict[str, Any] | None:
        return None if x is None else {size_key: format_decimal(x.size), "assetId": x.asset_id}

    return {
        "type": swap.type.value,
        "shortPositionSettings": leg(swap.short),
        "longPositionSettings": leg(swap.long),
    }


def _sessions(ids: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"id": i, "name": i, "status": INACTIVE, "liquidityProviderId": None} for i in ids]


def backoffice_view(m: Market) -> dict[str, Any]:
    """``GET /markets/{marketId}``; bourse extensions: isOtc, isHidden, calendar, fundingStartTime,
    fundingIntervalInHours."""
    return {
        "marketId": m.id,
        "displayName": m.display_name,
        "fullName": m.full_name,
        "baseAssetId": m.base_asset,
        "quoteAssetId": m.quote_asset,
        "minAmount": format_decimal(m.min_amount),
        "priceDeviation": format_decimal(m.price_deviation),
        "priceScale": m.price_scale,
        "amountScale": m.amount_scale,
        "slippageRate": format_decimal(m.slippage_rate),
        "status": m.status.value,
        "type": m.type.value,
        "subtype": m.subtype,
        "isSynchronized": m.is_synchronized,
        "createdAt": iso_millis(m.created_at),
        "updatedAt": iso_millis(m.updated_at),
        "externalTtl": m.external_ttl,
        "internalTtl": m.internal_ttl,
        "lotSize": m.lot_size,
        "minLotAmount": amount_text(m.min_lot_amount),
        "maxLotAmount": m.max_lot_amount,
        "tickSize": format_decimal(m.tick_size),
        "lotStep": format_decimal(m.lot_step),
        "swapSettings": _swap(m.swap_settings, "swapSize"),
        "calendarId": m.calendar_id,
        "marketGroupId": m.market_group_id,
        # No registries of groups and calendars yet: their names are their ids.
        "marketGroupName": m.market_group_id,
        "calendarName": m.calendar_id,
        "maxLeverage": m.max_leverage,
        "isConstLeverage": m.is_const_leverage,
        "minQuoteAmount": amount_text(m.min_quote_amount),
        "maxBaseAmount": amount_text(m.max_base_amount),
        "tradingSessions": _sessions(m.trading_session_ids),
        "marketDataSessions": _sessions(m.market_data_session_ids),
        "isOtc": m.is_otc,
        "isHidden": m.is_hidden,
        "calendar": None if m.calendar is None else calendar_to_json(m.calendar),
        "fundingStartTime": None
        if m.funding_start_time is None
        else m.funding_start_time.strftime("%H:%M:%S"),
        "fundingIntervalInHours": m.funding_interval_in_hours,
    }


def backoffice_list_view(m: Market) -> dict[str, Any]:
    """An item of ``POST /markets/list``: the same fields, but the spec shows maxLeverage as a string."""
    view = backoffice_view(m)
    view["maxLeverage"] = None if m.max_leverage is None else str(m.max_leverage)
    return view


def v3_view(m: Market) -> dict[str, Any]:
    return {
        "marketId": m.id,
        "displayName": m.display_name,
        "baseAssetId": m.base_asset,
        "quoteAssetId": m.quote_asset,
        "minAmount": format_decimal(m.min_amount),
        "priceDeviation": format_decimal(m.price_deviation),
        "priceScale": m.price_scale,
        "amountScale": m.amount_scale,
        "status": m.status.value,
        # Which order sides the market accepts now: spot Halted and CloseOnly take no new orders.
        "side": "Both" if m.status is MarketStatus.ACTIVE else "None",
        "isHidden": m.is_hidden,
    }


def v4_view(m: Market) -> dict[str, Any]:
    return {
        "marketId": m.id,
        "displayName": m.display_name,
        "fullName": m.full_name,
        "baseAssetId": m.base_asset,
        "quoteAssetId": m.quote_asset,
        "minAmount": format_decimal(m.min_amount),
        "maxBaseAmount": amount_text(m.max_base_amount),
        "priceDeviation": format_decimal(m.price_deviation),
        "priceScale": m.price_scale,
        "amountScale": m.amount_scale,
        "type": m.type.value,
        "subtype": m.subtype,
        "swapSettings": _swap(m.swap_settings, "size"),
        "lotSize": m.lot_size,
        "minLotAmount": amount_text(m.min_lot_amount),
        "maxLotAmount": m.max_lot_amount,
        "tickSize": format_decimal(m.tick_size),
        "lotStep": format_decimal(m.lot_step),
        "slippageRate": format_decimal(m.slippage_rate),
        "maxLeverage": m.max_leverage,
        "isConstLeverage": m.is_const_leverage,
        "calendar": None if m.calendar is None else calendar_to_json(m.calendar),
        "fundingStartTime": None
        if m.funding_start_time is None
        else m.funding_start_time.strftime("%H:%M:%S"),
        "fundingIntervalInHours": m.funding_interval_in_hours,
    }


# --- back office --------------------------------------------------------------------------------


class SortIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    direction: SortDirection = SortDirection.ASC
    field: MarketSortField = MarketSortField.MARKET_ID


class MarketListIn(BaseModel):
    """``POST /markets/list``: every filter of the spec; unknown fields are 400."""

    model_config = ConfigDict(extra="forbid")
    marketIds: list[str] | None = None
    types: list[MarketType] | None = None
    subtypes: list[str] | None = None
    displayNames: list[str] | None = None
    fullNames: list[str] | None = None
    calendarIds: list[str] | None = None
    marketGroupIds: list[str] | None = None
    excludeMarketGroupIds: list[str] | None = None
    baseAssetIds: list[str] | None = None
    quoteAssetIds: list[str] | None = None
    statuses: list[MarketStatus] | None = None
    marketId: str | None = None
    limit: int = Field(default=DEFAULT_LIMIT, strict=True)
    offset: int = Field(default=0, strict=True)
    sort: SortIn | None = None
    tradingSessionNames: list[str] | None = None
    marketDataSessionNames: list[str] | None = None
    tradingSessionStatus: SessionStatus | None = None
    marketDataSessionStatus: SessionStatus | None = None

    def query(self) -> MarketQuery:
        sort = self.sort or SortIn()
        return MarketQuery(
            market_ids=tuple(self.marketIds or ()),
            types=tuple(self.types or ()),
            subtypes=tuple(self.subtypes or ()),
            display_names=tuple(self.displayNames or ()),
            full_names=tuple(self.fullNames or ()),
            calendar_ids=tuple(self.calendarIds or ()),
            market_group_ids=tuple(self.marketGroupIds or ()),
            exclude_market_group_ids=tuple(self.excludeMarketGroupIds or ()),
            base_asset_ids=tuple(self.baseAssetIds or ()),
            quote_asset_ids=tuple(self.quoteAssetIds or ()),
            statuses=tuple(self.statuses or ()),
            id_contains=self.marketId or None,
            trading_session_names=tuple(self.tradingSessionNames or ()),
            market_data_session_names=tuple(self.marketDataSessionNames or ()),
            trading_session_status=self.tradingSessionStatus,
            market_data_session_status=self.marketDataSessionStatus,
            limit=self.limit,
            offset=self.offset,
            sort=MarketSort(sort.field, sort.direction),
        )


@backoffice.get("/markets")
async def list_markets(services: Services, principal: ViewCommon) -> list[dict[str, Any]]:
    markets = await services.markets.search(principal, MarketQuery())
    return [{"marketId": m.id, "displayName": m.display_name, "fullName": m.full_name} for m in markets]


@backoffice.post("/markets", status_code=201)
async def create_market(
    body: JsonObject, services: Services, principal: ManageMarkets, meta: Meta
) -> dict[str, str]:
    market = await services.markets.create(principal, body, meta)
    return {"marketId": market.id}


@backoffice.post("/markets/list")
async def search_markets(body: MarketListIn, services: Services, principal: ViewCommon) -> dict[str, Any]:
    markets = await services.markets.search(principal, body.query())
    return {"markets": [backoffice_list_view(m) for m in markets]}


@backoffice.get("/markets/{market_id}")
async def get_market(market_id: str, services: Services, _: ViewCommon) -> dict[str, Any]:
    return backoffice_view(await services.markets.get(market_id))


@backoffice.put("/markets/{market_id}", status_code=204, response_class=Response)
async def update_market(
    market_id: str, body: JsonObject, services: Services, principal: ManageMarkets, meta: Meta
) -> Response:
    await services.markets.update(principal, market_id, body, meta)
    return Response(status_code=204)


# --- front office -------------------------------------------------------------------------------


@frontoffice.get("/v3/markets")
async def v3_markets(services: Services, principal: Trader) -> list[dict[str, Any]]:
    return [
        {"marketId": m.id, "displayName": m.display_name} for m in await services.markets.listed(principal)
    ]


@frontoffice.get("/v3/markets/{market_id}")
async def v3_market(market_id: str, services: Services, principal: Trader) -> dict[str, Any]:
    # A hidden market is not listed, but its details stay readable (isHidden says so): a trader
    # with an order on it still needs its scales.
    return v3_view(await services.markets.shown(principal, market_id))


@frontoffice.get("/v4/markets")
async def v4_markets(services: Services, principal: Trader) -> list[dict[str, Any]]:
    return [
        {
            "marketId": m.id,
            "displayName": m.display_name,
            "fullName": m.full_name,
            "type": m.type.value,
            "subtype": m.subtype,
        }
        for m in await services.markets.listed(principal)
    ]


@frontoffice.get("/v4/markets/{market_id}")
async def v4_market(market_id: str, services: Services, principal: Trader) -> dict[str, Any]:
    return v4_view(await services.markets.shown(principal, market_id))


@frontoffice.get("/v3/info")
async def v3_info(services: Services, _: Trader) -> dict[str, str]:
    return {"serverTime": iso_millis(services.clock.now()), "serverTimeZone": "UTC"}
