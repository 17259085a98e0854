"""The runner of an OrderBook derivative market: a restart rebuilds the book and the open
positions with the same digest; a trigger's close goes through the runner as a reduce-only order."""

from __future__ import annotations

from bourse.domain.orders import OrderStatus
from bourse.domain.positions import CloseReason
from bourse.engine.derivatives_runner import DerivativeMarketRunner
from tests.integration.derivatives.support import hedging_trader, house, netting_trader, place
from tests.integration.derivatives_orderbook.support import D, F, funds, make_book_cfd, open_positions, runner


async def test_a_restarted_runner_rebuilds_the_book_and_positions_with_the_same_digest(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await netting_trader(container, "bob", usdt="1000")
    await place(container, alice, market, "Sell", "2", "100", leverage=10)
    await place(container, bob, market, "Buy", "3", "100", leverage=5)  # 2 fill, 1 rests
    await place(container, alice, market, "Sell", "1", "103", leverage=10)
    await place(container, bob, market, "Sell", "1", "104", leverage=5)  # reduces bob's long: fee only
    first = await runner(container, market)
    assert isinstance(first, DerivativeMarketRunner) and first.stopped is None
    digest, positions = first.digest.hexdigest(), dict(first.positions)
    live = {k: (o.remaining_lots, o.locked_remaining, o.engine_seq) for k, o in first.live.items()}
    assert len(live) == 3 and len(positions) == 2

    hub = container.trading.engines
    await first.stop()
    del hub._runners[market]
    second = await runner(container, market)
    assert second is not first and second.stopped is None
    assert second.digest.hexdigest() == digest
    assert second.positions == positions
    assert {k: (o.remaining_lots, o.locked_remaining, o.engine_seq) for k, o in second.live.items()} == live
    # Self-trade prevention as on spot: alice's buy at 104 meets her own sell at 103 first.
    own = await place(container, alice, market, "Buy", "1", "104", leverage=10)
    assert own.order.status is OrderStatus.CANCELLED and own.order.cancel_reason == "SelfTradePrevention"
    # It trades on: carol's buy takes alice's 103 and bob's reducing sell at 104.
    carol = await hedging_trader(container, "carol", usdt="1000")
    taken = await place(container, carol, market, "Buy", "2", "104", leverage=10)
    assert taken.order.status is OrderStatus.FILLED and taken.order.executed_quote == D(207)
    (long,) = await open_positions(container, bob.account_id)
    assert long.lots == 1 and long.realized_pnl == 4


async def test_a_stop_loss_closes_through_the_runner(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    carol = await hedging_trader(container, "carol", usdt="1000")
    await place(container, bob, market, "Sell", "2", "100", leverage=10)
    opened = await place(container, alice, market, "Buy", "2", "100", leverage=10, sl="95")
    (long,) = await open_positions(container, alice.account_id)
    # The book moves down: carol bids 94, bob offers 95; the mark is the book mid 94.5.
    await place(container, carol, market, "Buy", "2", "94", leverage=10)
    await place(container, bob, market, "Sell", "1", "95", leverage=10)
    await container.pricing.tick()
    orders = await container.derivatives.apply_triggers(long.position_id)
    (close,) = orders
    assert close.order.reason is CloseReason.STOP_LOSS and close.order.in_book and close.order.reduce_only
    assert close.order.status is OrderStatus.FILLED and close.order.executed_quote == D(188)
    # Margin 20 back, loss (94 - 100) * 2 = -12 to the house, fee 0.188.
    assert await funds(container, alice.account_id) == F(str(D("979.8") + 20 - 12 - D("0.188")))
    assert await open_positions(container, alice.account_id) == []
    assert await house(container) == D(12)
    assert opened.order.position_id == long.position_id
    # Nothing left to fire.
    assert await container.derivatives.apply_triggers(long.position_id) == []


async def test_a_stop_out_close_goes_through_the_runner(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="25")
    bob = await hedging_trader(container, "bob", usdt="1000")
    carol = await hedging_trader(container, "carol", usdt="1000")
    await place(container, bob, market, "Sell", "2", "100", leverage=10)
    await place(container, alice, market, "Buy", "2", "100", leverage=10)
    # Mark 90.5: equity 4.8 + 20 - 19 = 5.8, used 20: level 0.29 < 0.5 -> stop out at carol's bid.
    await place(container, carol, market, "Buy", "2", "90", leverage=10)
    await place(container, bob, market, "Sell", "1", "91", leverage=10)
    await container.pricing.tick()
    check = await container.derivatives.check_margin(alice.account_id)
    (close,) = check.closed
    assert close.order.reason is CloseReason.STOP_OUT and close.order.in_book
    assert close.order.status is OrderStatus.FILLED
    assert await open_positions(container, alice.account_id) == []
    # 4.8 + 20 - 20 (loss) - 0.18 fee: 4.62 left; nothing negative, no deficit.
    assert await funds(container, alice.account_id) == F("4.62")
