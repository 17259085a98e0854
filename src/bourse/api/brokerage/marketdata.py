"""Market data v4: candle history (spec), and the ticker, tickers, depth and trades tape (extensions).

Every route needs ``trading-ui``, as the spec's history does. Query parameters are
documented in docs/api/brokerage.md ("Market data").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from bourse.api.common.auth import Services, require
from bourse.domain.identity import Operation, Principal
from bourse.domain.marketdata import parse_instant, parse_interval
from bourse.service.marketdata import (
    DEPTH_DEFAULT,
    TAPE_DEFAULT,
    book_json,
    candle_json,
    ticker_json,
    trade_json,
)

router = APIRouter(prefix="/marketdata/api/v4", tags=["brokerage: market data"])

Trader = Annotated[Principal, Depends(require(Operation.TRADING_UI))]


@router.get("/instruments/{marketSymbol}/history")
async def history(
    services: Services,
    _: Trader,
    marketSymbol: str,  # the spec's path parameter name
    interval: str = "1h",
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    candles = await services.marketdata.history(
        marketSymbol,
        parse_interval(interval),
        parse_instant(start, "from") if start is not None else None,
        parse_instant(end, "to") if end is not None else None,
    )
    return {"data": [candle_json(c) for c in candles]}


@router.get("/instruments/{marketSymbol}/ticker")
async def ticker(services: Services, _: Trader, marketSymbol: str) -> dict[str, Any]:
    return ticker_json(await services.marketdata.ticker(marketSymbol))


@router.get("/tickers")
async def tickers(services: Services, _: Trader) -> dict[str, Any]:
    return {"data": [ticker_json(t) for t in await services.marketdata.tickers()]}


@router.get("/instruments/{marketSymbol}/depth")
async def depth(
    services: Services, _: Trader, marketSymbol: str, levels: int = DEPTH_DEFAULT
) -> dict[str, Any]:
    return book_json(await services.marketdata.depth(marketSymbol, levels))


@router.get("/instruments/{marketSymbol}/trades")
async def trades(
    services: Services, _: Trader, marketSymbol: str, limit: int = TAPE_DEFAULT
) -> dict[str, Any]:
    return {"data": [trade_json(t) for t in await services.marketdata.trades(marketSymbol, limit)]}
