"""Fok, Ioc, post-only, Gtd expiry and stop orders through the service, with their money."""

from __future__ import annotations

from datetime import timedelta

from bourse.domain.orders import OrderStatus, StopStatus
from tests.integration.trading.support import BTC, USDT, D, balances, make_market, make_trader, place


async def book(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    bob = await make_trader(container, "bob", btc="10")
    return market, alice, bob


async def test_fok_fills_completely_or_is_rejected_holding_nothing(container):
    market, alice, bob = await book(container)
    await place(container, bob, market, "Sell", "0.3", "100.00")
    before = await balances(container, alice.account_id)
    refused = await place(container, alice, market, "Buy", "0.5", "100.00", tif="Fok")
    assert refused.order.status is OrderStatus.REJECTED and refused.order.reject_reason == "FokNotFillable"
    assert await balances(container, alice.account_id) == before
    filled = await place(container, alice, market, "Buy", "0.3", "100.00", tif="Fok")
    assert filled.order.status is OrderStatus.FILLED


async def test_ioc_cancels_its_rest_and_releases_its_hold(container):
    market, alice, bob = await book(container)
    await place(container, bob, market, "Sell", "0.3", "100.00")
    ioc = await place(container, alice, market, "Buy", "0.5", "100.00", tif="Ioc")
    assert ioc.order.status is OrderStatus.CANCELLED and ioc.order.cancel_reason == "IocRemainder"
    assert ioc.order.remaining == D("0.2")
    assert await balances(container, alice.account_id) == {BTC: (D("0.3"), D(0)), USDT: (D("9969.97"), D(0))}


async def test_an_ioc_that_meets_nothing_leaves_no_trace_in_the_ledger(container):
    market, alice, _ = await book(container)
    ioc = await place(container, alice, market, "Buy", "0.5", "100.00", tif="Ioc")
    assert ioc.order.status is OrderStatus.CANCELLED
    assert ioc.order.hold_tx_id is None and ioc.order.locked_amount == 0
    assert await balances(container, alice.account_id) == {BTC: (D(0), D(0)), USDT: (D(10000), D(0))}


async def test_post_only_rests_or_is_rejected_when_it_would_cross(container):
    market, alice, bob = await book(container)
    await place(container, bob, market, "Sell", "0.3", "100.00")
    crossing = await place(container, alice, market, "Buy", "0.1", "100.00", post_only=True)
    assert (
        crossing.order.status is OrderStatus.REJECTED and crossing.order.reject_reason == "PostOnlyWouldCross"
    )
    resting = await place(container, alice, market, "Buy", "0.1", "99.00", post_only=True)
    assert resting.order.status is OrderStatus.PLACED
    assert await balances(container, alice.account_id) == {
        BTC: (D(0), D(0)),
        USDT: (D("9990.0901"), D("9.9099")),
    }


async def test_gtd_expires_when_its_time_has_come_and_releases_its_hold(container, clock):
    market, alice, _ = await book(container)
    expires = clock.now().replace(microsecond=0) + timedelta(minutes=1)
    gtd = await place(container, alice, market, "Buy", "0.1", "100.00", tif="Gtd", expires=expires)
    assert gtd.order.status is OrderStatus.PLACED and gtd.order.cancellation_date == expires
    runner = await container.trading.engines.runner(market)
    await runner.poke()
    assert (
        await container.trading.get(alice.principal, alice.account_id, str(gtd.order.order_id))
    ).order.is_live
    clock.advance(minutes=1)
    await runner.poke()
    view = await container.trading.get(alice.principal, alice.account_id, str(gtd.order.order_id))
    assert view.order.status is OrderStatus.EXPIRED
    assert await balances(container, alice.account_id) == {BTC: (D(0), D(0)), USDT: (D(10000), D(0))}


async def test_gtd_in_the_past_is_rejected(container, clock):
    market, alice, _ = await book(container)
    past = clock.now().replace(microsecond=0) - timedelta(seconds=1)
    view = await place(container, alice, market, "Buy", "0.1", "100.00", tif="Gtd", expires=past)
    assert view.order.status is OrderStatus.REJECTED and view.order.reject_reason == "InvalidExpiry"


async def trade_at(container, market, price, buyer, seller):
    await place(container, seller, market, "Sell", "0.1", price)
    await place(container, buyer, market, "Buy", "0.1", price)


async def test_a_sell_stop_waits_holding_its_amount_then_sells_when_the_price_falls(container):
    market, alice, bob = await book(container)
    stop = await place(container, bob, market, "Sell", "0.2", type="Stop", stop="95.00")
    assert stop.order.status is OrderStatus.STARTED
    assert stop.order.stop_status is StopStatus.WAITING_FOR_ACTIVATION
    assert (await balances(container, bob.account_id))[BTC] == (D("9.8"), D("0.2"))
    await place(container, alice, market, "Buy", "0.5", "94.00")
    await trade_at(container, market, "96.00", alice, bob)
    assert (
        await container.trading.get(bob.principal, bob.account_id, str(stop.order.order_id))
    ).order.is_live
    await trade_at(container, market, "95.00", alice, bob)
    done = (await container.trading.get(bob.principal, bob.account_id, str(stop.order.order_id))).order
    assert done.stop_status is StopStatus.ACTIVATED and done.status is OrderStatus.FILLED
    assert done.executed_quote == D("18.8")  # 0.2 at the resting bid of 94
    assert (await balances(container, bob.account_id))[BTC] == (D("9.6"), D(0))


async def test_a_stop_limit_buy_becomes_a_limit_order_when_the_price_rises(container):
    market, alice, bob = await book(container)
    stop = await place(container, alice, market, "Buy", "0.1", "106.00", type="StopLimit", stop="105.00")
    assert (await balances(container, alice.account_id))[USDT] == (D("9989.3894"), D("10.6106"))
    await trade_at(container, market, "105.00", alice, bob)
    order = (await container.trading.get(alice.principal, alice.account_id, str(stop.order.order_id))).order
    assert order.stop_status is StopStatus.ACTIVATED and order.status is OrderStatus.PLACED


async def test_a_stop_market_buy_never_pays_more_than_its_hold_covers(container):
    market, alice, bob = await book(container)
    stop = await place(container, alice, market, "Buy", "0.1", type="Stop", stop="100.00")
    # Held at the band bound of the stop price: 100 * 1.05 = 105 -> 10.5 + 0.0105 fee.
    assert stop.order.reserve_price == D(105)
    assert (await balances(container, alice.account_id))[USDT] == (D("9989.4895"), D("10.5105"))
    await place(container, bob, market, "Sell", "0.05", "104.00")
    await place(container, bob, market, "Sell", "0.05", "110.00")
    carol = await make_trader(container, "carol", usdt="1000")
    await trade_at(container, market, "100.00", carol, bob)  # triggers the stop at last 100
    order = (await container.trading.get(alice.principal, alice.account_id, str(stop.order.order_id))).order
    # 0.05 at 104 fills; 110 is beyond what the hold covers: the rest is cancelled like a market order's.
    assert order.status is OrderStatus.CANCELLED and order.remaining == D("0.05")
    assert (await balances(container, alice.account_id))[USDT] == (D(10000) - D("5.2") - D("0.0052"), D(0))


async def test_a_gtd_stop_market_buy_expires_while_waiting(container, clock):
    market, alice, _ = await book(container)
    expires = clock.now().replace(microsecond=0) + timedelta(minutes=5)
    stop = await place(
        container, alice, market, "Buy", "0.1", type="Stop", stop="100.00", tif="Gtd", expires=expires
    )
    assert stop.order.stop_status is StopStatus.WAITING_FOR_ACTIVATION
    runner = await container.trading.engines.runner(market)
    clock.advance(minutes=6)
    await runner.poke()
    order = (await container.trading.get(alice.principal, alice.account_id, str(stop.order.order_id))).order
    assert order.status is OrderStatus.EXPIRED and order.stop_status is StopStatus.CANCELLED
    assert await balances(container, alice.account_id) == {BTC: (D(0), D(0)), USDT: (D(10000), D(0))}


async def test_cancelling_a_waiting_stop_releases_its_hold(container):
    market, alice, _ = await book(container)
    stop = await place(container, alice, market, "Buy", "0.1", "106.00", type="StopLimit", stop="105.00")
    view = await container.trading.cancel(
        alice.principal, alice.account_id, str(stop.order.order_id), stop_only=True
    )
    assert view.order.status is OrderStatus.CANCELLED and view.order.stop_status is StopStatus.CANCELLED
    assert await balances(container, alice.account_id) == {BTC: (D(0), D(0)), USDT: (D(10000), D(0))}
