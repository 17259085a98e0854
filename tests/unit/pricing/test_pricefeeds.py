"""The ccxt price feed, without the network: a real ccxt exchange object whose HTTP layer
(``Exchange.fetch``) answers from canned exchange responses, and injected exchange objects."""

import decimal
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from bourse.adapters.pricefeeds import CcxtPriceFeed
from bourse.service.ports import PriceFeedError

NOW = datetime(2025, 9, 9, 12, 0, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return NOW


BINANCE_SPOT = {
    "timezone": "UTC",
    "serverTime": 1757419200000,
    "rateLimits": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "quoteAsset": "USDT",
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
            ],
            "permissions": ["SPOT"],
            "permissionSets": [["SPOT"]],
        }
    ],
}
BINANCE_TICKER = {
    "symbol": "BTCUSDT",
    "bidPrice": "65000.10",
    "askPrice": "65000.20",
    "lastPrice": "65000.15",
    "openTime": 1757332800000,
    "closeTime": 1757419200000,
    "volume": "1200.5",
    "quoteVolume": "78000000",
}


async def test_a_real_ccxt_binance_object_parses_the_ticker_through_its_http_layer():
    requests: list[str] = []

    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        requests.append(url)
        if url.endswith("/api/v3/exchangeInfo"):
            return BINANCE_SPOT
        if "exchangeInfo" in url:  # the futures markets: none
            return {"symbols": []}
        if "/api/v3/ticker/24hr" in url:
            return BINANCE_TICKER
        raise ccxt_async.ExchangeNotAvailable(f"not served in this test: {url}")

    feed = CcxtPriceFeed(Clock(), timeout_seconds=2)
    exchange = feed.exchange("binance")
    exchange.fetch = fetch  # the transport: everything above it is ccxt's own code
    assert exchange.timeout == 2000 and exchange.enableRateLimit is True
    price = await feed.ticker("binance", "BTC/USDT")
    # ccxt's floats read through str: the exchange's decimals, not a binary expansion
    assert (price.bid, price.ask, price.at) == (Decimal("65000.1"), Decimal("65000.2"), NOW)
    assert any("ticker/24hr?symbol=BTCUSDT" in u for u in requests)
    # one object per exchange id
    assert feed.exchange("binance") is exchange
    await feed.aclose()


async def test_ccxt_errors_become_price_feed_errors():
    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        raise ccxt_async.RequestTimeout("binance GET timed out")

    feed = CcxtPriceFeed(Clock())
    feed.exchange("binance").fetch = fetch
    with pytest.raises(PriceFeedError, match="binance BTC/USDT: RequestTimeout"):
        await feed.ticker("binance", "BTC/USDT")
    await feed.aclose()


class FakeExchange:
    def __init__(self, exchange_id: str, config: dict[str, Any], tickers: dict[str, Any]) -> None:
        self.id = exchange_id
        self.config = config
        self.tickers = tickers
        self.closed = False

    async def fetch_ticker(self, symbol: str) -> Any:
        value = self.tickers[symbol]
        if isinstance(value, Exception):
            raise value
        return value

    async def close(self) -> None:
        self.closed = True


def _feed(tickers: dict[str, Any]) -> tuple[CcxtPriceFeed, list[FakeExchange]]:
    made: list[FakeExchange] = []

    def factory(exchange_id: str, config: dict[str, Any]) -> FakeExchange:
        made.append(FakeExchange(exchange_id, config, tickers))
        return made[-1]

    return CcxtPriceFeed(Clock(), timeout_seconds=1.5, factory=factory), made


async def test_one_exchange_object_per_id_closed_on_shutdown():
    feed, made = _feed({"BTC/USDT": {"bid": 1.5, "ask": 2.25}})
    for exchange_id in ("binance", "kraken", "binance"):
        await feed.ticker(exchange_id, "BTC/USDT")
    assert [m.id for m in made] == ["binance", "kraken"]
    assert made[0].config == {"timeout": 1500, "enableRateLimit": True}
    await feed.aclose()
    assert all(m.closed for m in made)


async def test_last_price_when_no_bid_or_ask_and_refusals():
    feed, _ = _feed(
        {
            "A/B": {"bid": None, "ask": None, "last": 10.5},
            "C/D": {"bid": None, "ask": 3, "last": None},
            "E/F": {"bid": 5, "ask": 4},
            "G/H": {"bid": 0, "ask": 1, "last": None},
            "I/J": ccxt_async.BadSymbol("binance does not have market symbol I/J"),
        }
    )
    price = await feed.ticker("binance", "A/B")
    assert (price.bid, price.ask) == (Decimal("10.5"), Decimal("10.5"))
    for symbol, reason in (
        ("C/D", "no bid, ask or last"),
        ("E/F", "crossed"),
        ("G/H", "no bid, ask or last"),
        ("I/J", "BadSymbol"),
    ):
        with pytest.raises(PriceFeedError, match=reason):
            await feed.ticker("binance", symbol)
    await feed.aclose()


async def test_unknown_exchanges():
    feed, made = _feed({})
    assert feed.supports("binance") and feed.supports("kraken")
    assert not feed.supports("nosuchexchange")
    with pytest.raises(PriceFeedError, match="knows no exchange"):
        await feed.ticker("nosuchexchange", "BTC/USDT")
    assert made == []


async def test_a_ticker_read_leaves_the_callers_decimal_context_as_it_was():
    """ccxt may change the decimal context it runs in (ccxt_venue.py): a fake exchange does what
    ccxt's decimal_to_precision does; the feed's caller keeps half-even rounding."""

    class Rounding(FakeExchange):
        async def fetch_ticker(self, symbol: str) -> Any:
            ccxt_async.decimal_to_precision("1.5", precision=0)  # sets ROUND_HALF_UP in place
            return await super().fetch_ticker(symbol)

    context = decimal.getcontext()
    before = (context.rounding, dict(context.traps.items()))
    feed = CcxtPriceFeed(
        Clock(),
        factory=lambda exchange_id, config: Rounding(exchange_id, config, {"A/B": {"bid": 1, "ask": 2}}),
    )
    price = await feed.ticker("binance", "A/B")
    assert (price.bid, price.ask) == (Decimal(1), Decimal(2))
    assert decimal.getcontext() is context and (context.rounding, dict(context.traps.items())) == before
    await feed.aclose()
