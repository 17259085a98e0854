"""Spot's price checks on OrderBook derivative orders: a limit price too far from the last trade
(``priceDeviation``) and a quote amount below ``minQuoteAmount`` are rejected before any hold."""

from __future__ import annotations

from bourse.domain.orders import OrderStatus
from bourse.domain.positions import CloseReason
from tests.integration.derivatives.support import hedging_trader, place
from tests.integration.derivatives_orderbook.support import D, funds, make_book_cfd, open_positions


async def traded_at_100(container, **fields):
    market = await make_book_cfd(container, priceDeviation="0.1", minQuoteAmount="50", **fields)
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    await place(container, bob, market, "Sell", "2", "100", leverage=10)
    await place(container, alice, market, "Buy", "1", "100", leverage=10)  # last 100
    return market, alice, bob


async def test_a_limit_price_beyond_the_deviation_from_the_last_trade_is_rejected(container):
    market, alice, _ = await traded_at_100(container)
    before = await funds(container, alice.account_id)
    for price in ("110.01", "89.99"):
        view = await place(container, alice, market, "Buy", "1", price, leverage=10)
        assert view.order.status is OrderStatus.REJECTED and view.order.reject_reason == "PriceDeviation"
    assert await funds(container, alice.account_id) == before  # nothing held
    # At the bound (|110 - 100| = 10% of 100) it is accepted.
    ok = await place(container, alice, market, "Buy", "1", "90", leverage=10)
    assert ok.order.status is OrderStatus.PLACED


async def test_no_deviation_check_before_the_first_trade_or_with_deviation_zero(container):
    market = await make_book_cfd(container, priceDeviation="0.1")
    alice = await hedging_trader(container, "alice", usdt="1000")
    far = await place(container, alice, market, "Sell", "1", "500", leverage=10)
    assert far.order.status is OrderStatus.PLACED
    other = await make_book_cfd(container, "BTCBOOK2", priceDeviation="0")
    bob = await hedging_trader(container, "bob", usdt="1000")
    await place(container, bob, other, "Sell", "1", "100", leverage=10)
    await place(container, alice, other, "Buy", "1", "100", leverage=10)
    assert (
        await place(container, bob, other, "Sell", "1", "300", leverage=10)
    ).order.status is OrderStatus.PLACED


async def test_a_quote_amount_below_the_minimum_is_rejected(container):
    market, alice, _ = await traded_at_100(container)
    before = await funds(container, alice.account_id)
    # 0.49 lot x 100 = 49 < 50: a limit (its price), a market order (the last price), a stop (its
    # activation price).
    limit = await place(container, alice, market, "Buy", "0.49", "100", leverage=10)
    market_order = await place(container, alice, market, "Buy", "0.49", leverage=10)
    stop = await place(container, alice, market, "Buy", "0.5", type="Stop", activation="99", leverage=10)
    for view in (limit, market_order, stop):
        assert view.order.status is OrderStatus.REJECTED
        assert view.order.reject_reason == "QuoteAmountBelowMinimum", view.order
    assert await funds(container, alice.account_id) == before
    ok = await place(container, alice, market, "Buy", "0.5", "100", leverage=10)  # 50: accepted
    assert ok.order.status is OrderStatus.FILLED


async def test_platform_closes_skip_the_price_checks(container):
    market, alice, _ = await traded_at_100(container)
    carol = await hedging_trader(container, "carol", usdt="1000")
    await place(container, carol, market, "Buy", "1", "91", leverage=10)
    (long,) = await open_positions(container, alice.account_id)
    # A stop-out's market close of 0.3 lot (quote 27.3 < 50) still closes.
    close = await container.derivatives.close_position(
        alice.account_id, long.position_id, D("0.3"), CloseReason.STOP_OUT
    )
    assert close.order.status is OrderStatus.FILLED and close.order.executed_quote == D("27.3")
    assert (await open_positions(container, alice.account_id))[0].lots == D("0.7")
