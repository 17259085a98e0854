"""Every reason an order is refused: the order is stored Rejected with its reason and nothing is held."""

from __future__ import annotations

import pytest

from bourse.domain.errors import NotFound
from bourse.domain.orders import OrderStatus
from tests.integration.trading.support import (
    BTC,
    USDT,
    D,
    balances,
    make_market,
    make_trader,
    place,
    update_market,
)


async def expect_rejected(container, trader, reason, *args, **kwargs):
    before = await balances(container, trader.account_id)
    view = await place(container, trader, *args, **kwargs)
    assert view.order.status is OrderStatus.REJECTED, view.order
    assert view.order.reject_reason == reason
    assert view.order.locked_amount == 0 and view.order.hold_tx_id is None
    assert await balances(container, trader.account_id) == before
    stored = await container.trading.get(trader.principal, trader.account_id, str(view.order.order_id))
    assert stored.order.status is OrderStatus.REJECTED and stored.order.reject_reason == reason


async def test_each_rule_of_the_market(container):
    market = await make_market(container, minAmount="0.001", maxBaseAmount="5", minQuoteAmount="1")
    alice = await make_trader(container, "alice", usdt="100")
    bob = await make_trader(container, "bob", btc="1")
    await expect_rejected(container, alice, "InsufficientFunds", market, "Buy", "1", "100.00")
    await expect_rejected(container, bob, "InsufficientFunds", market, "Sell", "2", "100.00")
    await expect_rejected(container, alice, "InvalidPrice", market, "Buy", "0.01", "10.001")
    await expect_rejected(container, alice, "InvalidQuantity", market, "Buy", "0.00105", "10.00")
    await expect_rejected(container, alice, "AmountBelowMinimum", market, "Buy", "0.0005", "10.00")
    await expect_rejected(container, alice, "AmountAboveMaximum", market, "Buy", "6", "1.00")
    await expect_rejected(container, alice, "QuoteAmountBelowMinimum", market, "Buy", "0.01", "10.00")
    await expect_rejected(container, alice, "NoReferencePrice", market, "Buy", "0.01")
    await expect_rejected(
        container, alice, "InvalidTimeInForce", market, "Buy", "0.1", "10.00", tif="Ioc", post_only=True
    )
    await expect_rejected(
        container, alice, "InvalidStopPrice", market, "Sell", "0.1", type="Stop", stop="1.001"
    )
    # After a trade at 100 a limit price more than 50 % away is refused.
    await place(container, bob, market, "Sell", "0.01", "100.00")
    await place(container, alice, market, "Buy", "0.01", "100.00")
    await expect_rejected(container, alice, "PriceDeviation", market, "Buy", "0.01", "49.99")
    await expect_rejected(container, bob, "PriceDeviation", market, "Sell", "0.01", "150.01")
    assert (await place(container, alice, market, "Buy", "0.1", "50.00")).order.status is OrderStatus.PLACED


async def test_a_halted_or_close_only_market_refuses_new_orders_but_cancels(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="100")
    resting = await place(container, alice, market, "Buy", "0.1", "10.00")
    await update_market(container, market, status="Halted")
    await expect_rejected(container, alice, "MarketHalted", market, "Buy", "0.1", "10.00")
    await update_market(container, market, status="CloseOnly")
    await expect_rejected(container, alice, "MarketCloseOnly", market, "Buy", "0.1", "10.00")
    view = await container.trading.cancel(alice.principal, alice.account_id, str(resting.order.order_id))
    assert view.order.status is OrderStatus.CANCELLED
    assert await balances(container, alice.account_id) == {BTC: (D(0), D(0)), USDT: (D(100), D(0))}


async def test_outside_the_trading_session_orders_are_refused(container, clock):
    today = clock.now().date().isoformat()
    closed_today = {
        "timeZoneId": "UTC",
        "tradingSessions": [],
        "sessionOverrides": [{"date": today, "timeIntervals": []}],
    }
    market = await make_market(container, calendar=closed_today)
    alice = await make_trader(container, "alice", usdt="100")
    await expect_rejected(container, alice, "SessionClosed", market, "Buy", "0.1", "10.00")


async def test_an_unknown_market_is_not_found(container):
    await make_market(container)
    alice = await make_trader(container, "alice", usdt="100")
    with pytest.raises(NotFound):
        await place(container, alice, "NOPE", "Buy", "0.1", "10.00")
