"""Charts (brokerage ``POST /api/charting``): a market's candles over a range, drawn as a PNG.

The candles are the market data service's (stored and in-memory, as ``/marketdata`` serves them),
so a chart agrees with the candle endpoints. A range over more than the candle endpoints' limit
(1000 candles) is refused, not cut short; a range without trades still gives a picture that says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from bourse.domain.errors import InvalidInput, NotFound
from bourse.domain.identity import Operation, Principal
from bourse.domain.marketdata import history_range, parse_interval
from bourse.domain.trading import parse_time
from bourse.service.marketdata import MarketDataService
from bourse.service.ports import ChartRenderer, Clock

_KEYS = frozenset({"marketId", "interval", "dateFrom", "dateTo"})


class ChartService:
    def __init__(self, marketdata: MarketDataService, renderer: ChartRenderer, clock: Clock) -> None:
        self._marketdata = marketdata
        self._renderer = renderer
        self._clock = clock

    async def chart(self, principal: Principal, body: object) -> bytes:
        principal.require(Operation.MANAGE_CHARTS)
        if not isinstance(body, Mapping):
            raise InvalidInput("the body must be a JSON object", field="body")
        unknown = sorted(set(body) - _KEYS)
        if unknown:
            raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])
        market_id = body.get("marketId")
        if not isinstance(market_id, str) or not market_id or len(market_id) > 64:
            raise InvalidInput("marketId is required", field="marketId")
        raw_interval = body.get("interval")
        if not isinstance(raw_interval, str):
            raise InvalidInput("interval is required", field="interval")
        interval = parse_interval(raw_interval)
        start = None if body.get("dateFrom") is None else parse_time(body.get("dateFrom"), "dateFrom")
        end = None if body.get("dateTo") is None else parse_time(body.get("dateTo"), "dateTo")
        if start is not None and end is not None and start > end:
            raise InvalidInput("dateFrom is after dateTo", field="dateFrom")
        try:
            span = history_range(interval, start, end, self._clock.now())
        except InvalidInput as error:
            raise InvalidInput(error.message, field="dateFrom") from None
        try:
            await self._marketdata.require_market(market_id)
        except NotFound:
            raise NotFound(f"market {market_id} not found", field="marketId") from None
        candles = await self._marketdata.history(market_id, interval, span.first_start, span.to)
        title = f"{market_id}  {interval.value}"
        return await asyncio.to_thread(self._renderer.render, title, candles, span.first_start, span.to)
