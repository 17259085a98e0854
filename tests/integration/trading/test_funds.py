"""Placing, matching and cancelling move exactly the right money: holds, fills, fees, releases."""

from __future__ import annotations

from bourse.domain.orders import OrderStatus

from tests.integration.trading.support import BTC, USDT, D, balances, fees, make_market, make_trader, place


async def test_a_resting_buy_holds_its_cost_and_the_larger_fee(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    view = await place(container, alice, market, "Buy", "0.5", "100.00")
    assert view.order.status is OrderStatus.PLACED
    # 0.5 * 100 = 50, plus 0.1% = 0.05
    assert await balances(container, alice.account_id) == {BTC: (D(0), D(0)), USDT: (D("9949.95"), D("50.05"))}


async def test_a_fill_settles_both_sides_and_both_fees_in_one_go(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    bob = await make_trader(container, "bob", btc="1")
    buy = await place(container, alice, market, "Buy", "0.5", "100.00")
    sell = await place(container, bob, market, "Sell", "0.2", "99.00")
    assert sell.order.status is OrderStatus.FILLED
    # The trade is at the maker's price: 0.2 * 100 = 20, 0.02 fee each side.
    assert sell.order.executed_quote == D(20) and sell.order.commission == D("0.02")
    assert await balances(container, alice.account_id) == {BTC: (D("0.2"), D(0)), USDT: (D("9949.95"), D("30.03"))}
    assert await balances(container, bob.account_id) == {BTC: (D("0.8"), D(0)), USDT: (D("19.98"), D(0))}
    assert await fees(container) == D("0.04")

    cancelled = await container.trading.cancel(alice.principal, alice.account_id, str(buy.order.order_id))
    assert cancelled.order.status is OrderStatus.CANCELLED
    assert cancelled.order.remaining == D("0.3")
    assert await balances(container, alice.account_id) == {BTC: (D("0.2"), D(0)), USDT: (D("9979.98"), D(0))}
