"""Stop and StopLimit orders on an OrderBook Cfd market: they wait in the runner (not in the
engine) holding as an order that may open, and activate when the LAST TRADE price reaches them
(buy: last >= activation, sell: last <= activation), when their hold is sized again at the book
of that moment. Default commission 0.1%, lot step 0.01, slippage band 20%."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bourse.domain.orders import OrderStatus, StopStatus
from bourse.engine.derivatives_runner import DerivativeMarketRunner
from tests.integration.derivatives.support import hedging_trader, place
from tests.integration.derivatives_orderbook.support import D, F, funds, make_book_cfd, open_positions, runner


async def test_a_stop_buy_waits_then_activates_on_the_last_trade_and_fills(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    carol = await hedging_trader(container, "carol", usdt="1000")
    stop = await place(container, alice, market, "Buy", "1", type="Stop", activation="105", leverage=10)
    assert stop.order.status is OrderStatus.STARTED
    assert stop.order.stop_status is StopStatus.WAITING_FOR_ACTIVATION and stop.order.in_book
    # Held as a market buy at the band above the stop: 105 * 1.2 = 126 per lot;
    # 100 steps * (margin 0.126 + fee 0.00126) = 12.726.
    assert await funds(container, alice.account_id) == F("987.274", "12.726")
    # Bob offers at 106; a trade at 104 does not reach the stop, a trade at 106 does.
    await place(container, bob, market, "Sell", "3", "106", leverage=10)
    await place(container, carol, market, "Sell", "0.01", "104", leverage=10)
    await place(container, bob, market, "Buy", "0.01", "104", leverage=10)
    waiting = await container.derivatives.get_order(
        alice.principal, alice.account_id, str(stop.order.order_id)
    )
    assert waiting is not None and waiting.order.stop_status is StopStatus.WAITING_FOR_ACTIVATION
    await place(container, carol, market, "Buy", "0.01", "106", leverage=10)
    view = await container.derivatives.get_order(alice.principal, alice.account_id, str(stop.order.order_id))
    assert view is not None
    assert view.order.stop_status is StopStatus.ACTIVATED and view.order.status is OrderStatus.FILLED
    assert view.order.executed_quote == D(106) and view.order.commission == D("0.106")
    # Margin 10.6 and fee 0.106 paid; the rest of the hold back.
    assert await funds(container, alice.account_id) == F("989.294", "0", "10.6")
    (long,) = await open_positions(container, alice.account_id)
    assert (long.lots, long.entry_price, long.margin) == (1, 106, D("10.6"))


async def test_a_stop_already_reached_activates_at_once(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    await place(container, bob, market, "Sell", "2", "100", leverage=10)
    await place(container, alice, market, "Buy", "0.01", "100", leverage=10)  # last 100
    # A sell StopLimit at 101 (last 100 <= 101): it activates and rests as a limit sell at 102.
    stop = await place(
        container, alice, market, "Sell", "1", "102", type="StopLimit", activation="101", leverage=10
    )
    assert stop.order.stop_status is StopStatus.ACTIVATED and stop.order.status is OrderStatus.PLACED
    # Its hold is a limit sell's: 100 steps * (0.102 + 0.00102) = 10.302; the buy paid 0.1 + 0.001.
    assert await funds(container, alice.account_id) == F("989.597", "10.302", "0.1")


async def test_a_waiting_stop_cancelled_gives_its_hold_back(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    stop = await place(
        container, alice, market, "Sell", "1", "89", type="StopLimit", activation="90", leverage=10
    )
    # A sell holds at its limit (no bid above it): 100 * (0.089 + 0.00089) = 8.989.
    assert await funds(container, alice.account_id) == F("991.011", "8.989")
    cancelled = await container.derivatives.cancel(
        alice.principal, alice.account_id, str(stop.order.order_id), stop_only=True
    )
    assert cancelled is not None
    assert (
        cancelled.order.status is OrderStatus.CANCELLED
        and cancelled.order.stop_status is StopStatus.CANCELLED
    )
    assert await funds(container, alice.account_id) == F("1000")
    r = await runner(container, market)
    assert stop.order.order_id not in r.live


async def test_a_waiting_stop_survives_a_restart_and_activates_after_it(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    carol = await hedging_trader(container, "carol", usdt="1000")
    await place(container, bob, market, "Buy", "3", "95", leverage=10)
    stop = await place(container, alice, market, "Sell", "1", type="Stop", activation="96", leverage=10)
    assert stop.order.stop_status is StopStatus.WAITING_FOR_ACTIVATION
    first = await runner(container, market)
    digest = first.digest.hexdigest()
    hub = container.trading.engines
    await first.stop()
    del hub._runners[market]
    second = await runner(container, market)
    assert isinstance(second, DerivativeMarketRunner) and second.stopped is None
    assert second.digest.hexdigest() == digest
    assert second.live[stop.order.order_id].stop_status is StopStatus.WAITING_FOR_ACTIVATION
    # A trade at 95 (<= 96) activates the sell stop: it sells into bob's bid at 95.
    await place(container, carol, market, "Sell", "0.01", "95", leverage=10)
    view = await container.derivatives.get_order(alice.principal, alice.account_id, str(stop.order.order_id))
    assert view is not None and view.order.status is OrderStatus.FILLED
    assert view.order.executed_quote == D(95)
    (short,) = await open_positions(container, alice.account_id)
    assert (short.lots, short.entry_price, short.margin) == (1, 95, D("9.5"))
    assert await funds(container, alice.account_id) == F(str(D(1000) - D("9.5") - D("0.095")), "0", "9.5")


async def test_an_activated_stop_the_account_cannot_hold_for_is_rejected_and_releases(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="10")
    bob = await hedging_trader(container, "bob", usdt="1000")
    carol = await hedging_trader(container, "carol", usdt="1000")
    # Waiting: a sell Stop at 90 holds at 90 per lot: 100 * (0.09 + 0.0009) = 9.09.
    stop = await place(container, alice, market, "Sell", "1", type="Stop", activation="90", leverage=10)
    assert await funds(container, alice.account_id) == F("0.91", "9.09")
    # Bob's buy at 150 takes carol's 0.01 at 89 (last 89: the stop is due) and rests at 150: the
    # activated market sell reserves the best bid, 100 * (0.15 + 0.0015) = 15.15, more than alice has.
    await place(container, carol, market, "Sell", "0.01", "89", leverage=10)
    await place(container, bob, market, "Buy", "1.01", "150", leverage=10)
    view = await container.derivatives.get_order(alice.principal, alice.account_id, str(stop.order.order_id))
    assert view is not None and view.order.status is OrderStatus.REJECTED
    assert view.order.reject_reason == "InsufficientMargin" and view.order.stop_status is StopStatus.ACTIVATED
    assert await funds(container, alice.account_id) == F("10")


async def test_a_gtd_waiting_stop_expires_by_the_runners_clock(container, clock):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    stop = await place(
        container,
        alice,
        market,
        "Sell",
        "1",
        "89",
        type="StopLimit",
        activation="90",
        leverage=10,
        tif="Gtd",
        expires=clock.now() + timedelta(hours=1),
    )
    assert stop.order.stop_status is StopStatus.WAITING_FOR_ACTIVATION
    assert await funds(container, alice.account_id) == F("991.011", "8.989")
    clock.advance(hours=2)
    # No command needed: the runner's timer wakes it for the due expiry.
    for _ in range(100):
        view = await container.derivatives.get_order(
            alice.principal, alice.account_id, str(stop.order.order_id)
        )
        assert view is not None
        if view.order.status is not OrderStatus.STARTED:
            break
        await asyncio.sleep(0.05)
    assert view.order.status is OrderStatus.EXPIRED and view.order.stop_status is StopStatus.CANCELLED
    assert await funds(container, alice.account_id) == F("1000")
