"""External venues and per-market hedge settings (back office, our extension).

``GET/POST /back-api/backoffice/v2/venues``, ``GET/PUT/DELETE /back-api/backoffice/v2/venues/{venueId}``;
``GET/PUT /back-api/backoffice/v2/markets/{marketId}/hedging``. view-common to read, manage-markets to
change, as the other back-office market routes. API keys are write-only: answers show them masked.
docs/api/brokerage.md "External venues and hedging".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from bourse.api.common.auth import Meta, Services, require
from bourse.domain.identity import Operation, Principal

router = APIRouter(prefix="/back-api/backoffice/v2", tags=["brokerage: venues and hedging"])

ViewCommon = Annotated[Principal, Depends(require(Operation.VIEW_COMMON))]
ManageMarkets = Annotated[Principal, Depends(require(Operation.MANAGE_MARKETS))]
JsonBody = Annotated[Any, Body()]


@router.get("/venues")
async def list_venues(services: Services, principal: ViewCommon) -> dict[str, Any]:
    return {"data": await services.hedging.list_venues(principal)}


@router.post("/venues", status_code=201)
async def create_venue(
    body: JsonBody, services: Services, principal: ManageMarkets, meta: Meta
) -> dict[str, Any]:
    return await services.hedging.create_venue(principal, body, meta)


@router.get("/venues/{venue_id}")
async def get_venue(venue_id: str, services: Services, principal: ViewCommon) -> dict[str, Any]:
    return await services.hedging.get_venue(principal, venue_id)


@router.put("/venues/{venue_id}")
async def update_venue(
    venue_id: str, body: JsonBody, services: Services, principal: ManageMarkets, meta: Meta
) -> dict[str, Any]:
    return await services.hedging.update_venue(principal, venue_id, body, meta)


@router.delete("/venues/{venue_id}", status_code=204, response_class=Response)
async def delete_venue(venue_id: str, services: Services, principal: ManageMarkets, meta: Meta) -> Response:
    await services.hedging.delete_venue(principal, venue_id, meta)
    return Response(status_code=204)


@router.get("/markets/{market_id}/hedging")
async def get_hedging(market_id: str, services: Services, principal: ViewCommon) -> dict[str, Any]:
    return await services.hedging.hedging(principal, market_id)


@router.put("/markets/{market_id}/hedging")
async def put_hedging(
    market_id: str, body: JsonBody, services: Services, principal: ManageMarkets, meta: Meta
) -> dict[str, Any]:
    return await services.hedging.set_hedging(principal, market_id, body, meta)
