"""Price sources (back office, our extension) and funding rates (market data, the spec's shape).

``GET/PUT /back-api/backoffice/v2/markets/{marketId}/price-source``: a derivative market's
execution mode, price source, markup and staleness limit, with its latest quote and mark
(view-common to read, manage-markets to change, as the other back-office market routes).
``GET /marketdata/api/v4/instruments/{marketSymbol}/funding``: a Perpetual market's funding
rates, newest first, paged by ``before`` (trading-ui). docs/api/brokerage.md "Price sources,
mark price, funding rates, circuit breaker".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from bourse.api.common.auth import Meta, Services, require
from bourse.domain.identity import Operation, Principal
from bourse.domain.marketdata import parse_instant
from bourse.domain.markets import iso_millis
from bourse.domain.pricing import FUNDING_PAGE_DEFAULT, FundingQuery, price_text
from bourse.service.pricing import price_source_json

backoffice = APIRouter(prefix="/back-api/backoffice/v2", tags=["brokerage: pricing"])
marketdata = APIRouter(prefix="/marketdata/api/v4", tags=["brokerage: market data"])

ViewCommon = Annotated[Principal, Depends(require(Operation.VIEW_COMMON))]
ManageMarkets = Annotated[Principal, Depends(require(Operation.MANAGE_MARKETS))]
Trader = Annotated[Principal, Depends(require(Operation.TRADING_UI))]
JsonObject = Annotated[dict[str, Any], Body()]


@backoffice.get("/markets/{market_id}/price-source")
async def get_price_source(market_id: str, services: Services, principal: ViewCommon) -> dict[str, Any]:
    return price_source_json(await services.pricing.price_source(principal, market_id))


@backoffice.put("/markets/{market_id}/price-source")
async def put_price_source(
    market_id: str, body: JsonObject, services: Services, principal: ManageMarkets, meta: Meta
) -> dict[str, Any]:
    return price_source_json(await services.pricing.set_price_source(principal, market_id, body, meta))


@marketdata.get("/instruments/{marketSymbol}/funding")
async def funding(
    services: Services,
    principal: Trader,
    marketSymbol: str,  # the spec's path parameter name
    limit: int = FUNDING_PAGE_DEFAULT,
    before: str | None = None,
) -> dict[str, Any]:
    query = FundingQuery(limit, parse_instant(before, "before") if before is not None else None)
    page = await services.pricing.funding(principal, marketSymbol, query)
    return {
        "fundingData": [
            {"appliedAt": iso_millis(r.applied_at), "interval": r.interval_hours, "rate": price_text(r.rate)}
            for r in page.rates
        ],
        "hasMore": page.has_more,
    }
