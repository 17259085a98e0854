"""The pricing job: quotes and marks from each kind of source, a stale source halts its market once
and the market reopens when the source is fresh again (only a halt the job raised itself)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bourse.domain.markets import MarketStatus
from bourse.domain.pricing import PriceUnavailable
from tests.integration.pricing.support import (
    admin_notifications,
    audit_statuses,
    make_perpetual,
    set_source,
    use_fake_feed,
)
from tests.integration.trading.support import make_market, make_trader, place, update_market

D = Decimal


async def status(container, market_id: str) -> MarketStatus:
    return (await container.markets.get(market_id)).status


async def test_manual_source_quotes_without_the_job_and_marks_with_it(container):
    use_fake_feed(container)
    market = await make_perpetual(container)
    await set_source(
        container,
        market,
        executionMode="Dealer",
        sourceKind="Manual",
        bid="100",
        ask="100.01",
        markupRate="0.001",
    )
    quote = await container.pricing.dealer_quote(market)
    # ask 100.01 * 1.001 = 100.11001 -> 100.12; bid 100 * 0.999 = 99.9
    assert (quote.bid, quote.ask, quote.raw_bid, quote.raw_ask) == (
        D("99.90"),
        D("100.12"),
        D(100),
        D("100.01"),
    )
    assert await container.pricing.mark(market) is None
    assert await container.pricing.tick() == 1
    mark = await container.pricing.mark(market)
    # index = mid 100.005; the first mark is the sample, half-even to 2 decimals: 100.00
    assert (mark.mark, mark.index, mark.at) == (D("100.00"), D("100.005"), container.clock.now())
    assert await container.pricing.marks([market, "NOPE"]) == {market: mark}


async def test_stale_ccxt_source_halts_once_and_resumes(container):
    feed = use_fake_feed(container)
    market = await make_perpetual(container)
    feed.set("binance", "BTC/USDT", "65000.10", "65000.30")
    await set_source(
        container,
        market,
        executionMode="Dealer",
        sourceKind="Ccxt",
        exchange="binance",
        symbol="BTC/USDT",
        staleAfterSeconds=30,
    )
    await container.pricing.tick()
    quote = await container.pricing.dealer_quote(market)
    assert (quote.bid, quote.ask) == (D("65000.10"), D("65000.30"))
    assert (await container.pricing.mark(market)).mark == D("65000.20")

    feed.fail("binance", "BTC/USDT", "connection refused")
    container.clock.advance(seconds=30)
    await container.pricing.tick()  # 30 s without a price: still fresh
    assert await status(container, market) is MarketStatus.ACTIVE
    assert (await container.pricing.dealer_quote(market)).ask == D("65000.30")

    container.clock.advance(seconds=1)
    await container.pricing.tick()
    assert await status(container, market) is MarketStatus.HALTED
    with pytest.raises(PriceUnavailable) as e:
        await container.pricing.dealer_quote(market)
    assert e.value.code == "price_unavailable"
    # The mark stays where it was; there is no index while the source is stale.
    mark = await container.pricing.mark(market)
    assert (mark.mark, mark.index) == (D("65000.20"), None)

    for _ in range(3):  # still stale: no second halt, no second notification
        container.clock.advance(seconds=5)
        await container.pricing.tick()
    halted = await admin_notifications(container, "MarketHalted")
    assert len(halted) == 1
    assert halted[0]["data"]["reason"] == "StaleSource"
    assert halted[0]["data"]["marketId"] == market and halted[0]["data"]["by"] == "system:pricing"
    assert "connection refused" in halted[0]["body"] and "binance BTC/USDT" in halted[0]["body"]

    feed.set("binance", "BTC/USDT", "65100.00", "65100.20")
    await container.pricing.tick()
    assert await status(container, market) is MarketStatus.ACTIVE
    assert (await container.pricing.dealer_quote(market)).bid == D("65100.00")
    resumed = await admin_notifications(container, "MarketResumed")
    assert len(resumed) == 1 and resumed[0]["data"]["marketId"] == market
    assert await audit_statuses(container, market) == [
        ("ops", None, None),  # the price source was set (ADMIN is "ops")
        ("system:pricing", "Halted", "StaleSource"),
        ("system:pricing", "Active", "SourceFresh"),
    ]
    await container.pricing.tick()
    assert len(await admin_notifications(container)) == 2


async def test_the_job_never_reopens_a_halt_it_did_not_raise(container):
    feed = use_fake_feed(container)
    market = await make_perpetual(container)
    feed.fail("binance", "BTC/USDT")
    await set_source(
        container, market, executionMode="Dealer", sourceKind="Ccxt", exchange="binance", symbol="BTC/USDT"
    )
    # A new source has its limit to answer before it counts as stale.
    await container.pricing.tick()
    assert await status(container, market) is MarketStatus.ACTIVE
    # An operator halts the market; the source goes stale and fresh again: the halt stands.
    await update_market(container, market, status="Halted")
    container.clock.advance(seconds=31)
    await container.pricing.tick()
    feed.set("binance", "BTC/USDT", "1", "2")
    await container.pricing.tick()
    assert await status(container, market) is MarketStatus.HALTED
    assert [n["data"]["by"] for n in await admin_notifications(container)] == ["ops"]


async def test_an_operator_reopening_a_stale_market_is_not_overruled(container):
    feed = use_fake_feed(container)
    market = await make_perpetual(container)
    feed.set("binance", "BTC/USDT", "1", "2")
    await set_source(
        container, market, executionMode="Dealer", sourceKind="Ccxt", exchange="binance", symbol="BTC/USDT"
    )
    await container.pricing.tick()
    feed.fail("binance", "BTC/USDT")
    container.clock.advance(seconds=31)
    await container.pricing.tick()
    assert await status(container, market) is MarketStatus.HALTED
    # The operator reopens it while the source is still stale: the job halts once per episode.
    await update_market(container, market, status="Active")
    container.clock.advance(seconds=5)
    await container.pricing.tick()
    assert await status(container, market) is MarketStatus.ACTIVE
    # Fresh, then stale again: a new episode halts again.
    feed.set("binance", "BTC/USDT", "1", "2")
    await container.pricing.tick()
    feed.fail("binance", "BTC/USDT")
    container.clock.advance(seconds=31)
    await container.pricing.tick()
    assert await status(container, market) is MarketStatus.HALTED
    assert len(await admin_notifications(container, "MarketHalted")) == 2
    assert await admin_notifications(container, "MarketResumed") == []


async def test_one_feed_call_per_exchange_symbol_per_tick(container):
    feed = use_fake_feed(container)
    feed.set("binance", "BTC/USDT", "10", "11")
    first = await make_perpetual(container)
    second = await make_perpetual(container, marketId="BTCCFD", type="Cfd")
    for market in (first, second):
        await set_source(
            container,
            market,
            executionMode="Dealer",
            sourceKind="Ccxt",
            exchange="binance",
            symbol="BTC/USDT",
        )
    await container.pricing.tick()
    assert feed.calls == [("binance", "BTC/USDT")]
    assert (await container.pricing.dealer_quote(second)).ask == D("11.00")


async def test_our_own_market_as_source_and_its_halt(container):
    """A perpetual priced from our spot book; the spot market halted -> the perpetual's source is
    stale -> the perpetual halts after its limit."""
    use_fake_feed(container)
    spot = await make_market(container)  # BTCUSDT, price scale 2
    perp = await make_perpetual(container)
    alice = await make_trader(container, "alice", usdt="10000")
    bob = await make_trader(container, "bob", btc="10")
    await set_source(
        container,
        perp,
        executionMode="Dealer",
        sourceKind="Market",
        sourceMarketId=spot,
        staleAfterSeconds=10,
    )
    # No bid, ask or trade yet: no price.
    await container.pricing.tick()
    assert (await container.pricing.price_source(_admin(), perp)).prices.error.endswith("no trade")
    await place(container, alice, spot, "Buy", "0.5", "100.00")
    await place(container, bob, spot, "Sell", "0.5", "101.00")
    await container.pricing.tick()
    quote = await container.pricing.dealer_quote(perp)
    assert (quote.bid, quote.ask) == (D("100.00"), D("101.00"))
    mark = await container.pricing.mark(perp)
    assert (mark.index, mark.mark) == (D("100.5"), D("100.50"))
    # One side gone (a trade takes the ask): the last trade price is the source.
    await place(container, alice, spot, "Buy", "0.5", "101.00")
    await container.pricing.tick()
    quote = await container.pricing.dealer_quote(perp)
    assert (quote.bid, quote.ask) == (D("101.00"), D("101.00"))

    await update_market(container, spot, status="Halted")
    await container.pricing.tick()
    view = await container.pricing.price_source(_admin(), perp)
    assert view.prices.error == f"the source market {spot} is Halted"
    assert await status(container, perp) is MarketStatus.ACTIVE
    container.clock.advance(seconds=11)
    await container.pricing.tick()
    assert await status(container, perp) is MarketStatus.HALTED
    await update_market(container, spot, status="Active")
    await container.pricing.tick()
    assert await status(container, perp) is MarketStatus.ACTIVE


async def test_order_book_market_without_source_has_no_quote_and_no_mark_on_an_empty_book(container):
    # Its mark would follow its own book mid (mark_sample); derivative order books are not open in
    # this release, so the book stays empty and there is nothing to sample.
    use_fake_feed(container)
    perp = await make_perpetual(container)
    await set_source(container, perp, executionMode="OrderBook")
    assert await container.pricing.tick() == 1
    assert await container.pricing.mark(perp) is None
    with pytest.raises(PriceUnavailable):
        await container.pricing.dealer_quote(perp)
    view = await container.pricing.price_source(_admin(), perp)
    assert view.stale is False and view.quote is None


def _admin():
    from tests.integration.trading.support import ADMIN

    return ADMIN
