"""Public tickers of other exchanges through ccxt (``ccxt.async_support``): the ``Ccxt`` price source.

One ccxt exchange object per exchange id, made on first use and kept (it holds the loaded
markets, the HTTP session and ccxt's own rate limiter); ``aclose`` closes them all. Only public
endpoints are called (no API keys). ccxt gives floats; they are read through ``str`` (the shortest
text that round-trips), so 65000.1 becomes Decimal("65000.1"), not its binary expansion.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import ccxt.async_support as ccxt_async

from bourse.adapters.venues.ccxt_venue import ccxt_context
from bourse.domain.pricing import SourcePrice
from bourse.service.ports import Clock, PriceFeedError

DEFAULT_TIMEOUT_SECONDS = 5.0
_MAX_ERROR = 300

ExchangeFactory = Callable[[str, dict[str, Any]], Any]


def _ccxt_exchange(exchange_id: str, config: dict[str, Any]) -> Any:
    return getattr(ccxt_async, exchange_id)(config)


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number > 0 else None


class CcxtPriceFeed:
    """The ``PriceFeed`` port over ccxt. ``factory`` makes an exchange object from its id and config
    (tests pass their own; the default is ccxt's class of that name)."""

    def __init__(
        self,
        clock: Clock,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        factory: ExchangeFactory = _ccxt_exchange,
        exchanges: frozenset[str] | None = None,
    ) -> None:
        self._clock = clock
        self._timeout_ms = max(1, int(timeout_seconds * 1000))
        self._factory = factory
        self._known = frozenset(ccxt_async.exchanges) if exchanges is None else exchanges
        self._exchanges: dict[str, Any] = {}

    def supports(self, exchange: str) -> bool:
        return exchange in self._known

    def exchange(self, exchange_id: str) -> Any:
        """The one exchange object of ``exchange_id`` (made on first use)."""
        client = self._exchanges.get(exchange_id)
        if client is None:
            if not self.supports(exchange_id):
                raise PriceFeedError(f"ccxt knows no exchange {exchange_id}")
            with ccxt_context():
                client = self._factory(exchange_id, {"timeout": self._timeout_ms, "enableRateLimit": True})
            self._exchanges[exchange_id] = client
        return client

    async def ticker(self, exchange: str, symbol: str) -> SourcePrice:
        """The ticker's bid and ask (its last price for both when the exchange gives no bid/ask)."""
        client = self.exchange(exchange)
        try:
            with ccxt_context():  # ccxt may change the decimal context it runs in (ccxt_venue.py)
                ticker = await client.fetch_ticker(symbol)
        except Exception as e:  # ccxt's own errors, aiohttp's, timeouts: all mean "no price now"
            raise PriceFeedError(f"{exchange} {symbol}: {type(e).__name__}: {str(e)[:_MAX_ERROR]}") from e
        if not isinstance(ticker, dict):
            raise PriceFeedError(f"{exchange} {symbol}: the ticker is not an object")
        bid, ask = _decimal(ticker.get("bid")), _decimal(ticker.get("ask"))
        if bid is None or ask is None:
            last = _decimal(ticker.get("last"))
            if last is None:
                raise PriceFeedError(f"{exchange} {symbol}: the ticker has no bid, ask or last price")
            bid = ask = last
        if ask < bid:
            raise PriceFeedError(f"{exchange} {symbol}: crossed ticker (bid {bid} above ask {ask})")
        return SourcePrice(bid, ask, self._clock.now())

    async def aclose(self) -> None:
        clients, self._exchanges = list(self._exchanges.values()), {}
        for client in clients:
            with ccxt_context():
                await client.close()
