"""What the derivatives jobs call: ``process_order`` (resting limits, stops, expiry) and
``apply_triggers`` (take-profit ladder, stop loss, trailing stop, OCO) against real prices.

The mark follows the source's mid through an exponential average (alpha 1/3 per pricing tick),
so a test moves the price and ticks until the mark has passed the level it needs.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from bourse.domain.orders import OrderStatus, StopStatus
from bourse.domain.positions import CloseReason
from bourse.service.derivatives import PositionTriggers
from tests.integration.derivatives.support import D, hedging_trader, make_cfd, money, place, set_price
from tests.integration.trading.support import Trader


async def mark_to(container, market: str, price: str, *, until) -> Decimal:
    """Quote ``price`` and tick until ``until(mark)`` holds; the mark then."""
    await set_price(container, market, price, price)
    for _ in range(30):
        mark = (await container.pricing.mark(market)).mark
        if until(mark):
            return mark
        await container.pricing.tick()
    raise AssertionError(f"the mark never got there (last {mark})")


async def _open(container, trader: Trader, market: str, lots: str = "2"):
    view = await place(container, trader, market, "Buy", lots, leverage=10)
    assert view.order.status is OrderStatus.FILLED
    return view.order.position_id


async def test_a_resting_limit_fills_once_the_dealer_price_reaches_it(container):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    resting = await place(container, alice, market, "Buy", "1", "95", leverage=10)
    assert resting.order.status is OrderStatus.PLACED
    assert await container.derivatives.process_order(resting.order.order_id) is None  # 100: not yet

    await set_price(container, market, "93.5", "94")
    filled = await container.derivatives.process_order(resting.order.order_id)

    assert filled is not None and filled.order.status is OrderStatus.FILLED
    assert filled.order.executed_quote == D(94)  # at the ask, better than the limit
    assert await money(container, alice.account_id) == type(await money(container, alice.account_id))(
        D(1000) - D("9.4") - D("0.094"), D("9.4")
    )
    assert await container.derivatives.process_order(resting.order.order_id) is None  # final now


async def test_a_stop_waits_for_the_mark_then_fills_at_the_dealer_price(container):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    stop = await place(container, alice, market, "Buy", "1", type="Stop", activation="105", leverage=10)
    assert stop.order.stop_status is StopStatus.WAITING_FOR_ACTIVATION

    await set_price(container, market, "110", "110")  # the mark is 103.33 after one tick
    assert await container.derivatives.process_order(stop.order.order_id) is None
    await mark_to(container, market, "110", until=lambda m: m >= 105)
    filled = await container.derivatives.process_order(stop.order.order_id)

    assert filled is not None
    assert (filled.order.status, filled.order.stop_status) == (OrderStatus.FILLED, StopStatus.ACTIVATED)
    assert filled.order.executed_quote == D(110)


async def test_a_stop_limit_activates_then_rests_as_a_limit(container):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    stop = await place(
        container, alice, market, "Sell", "1", "97", type="StopLimit", activation="98", leverage=10
    )
    await mark_to(container, market, "96", until=lambda m: m <= 98)
    await set_price(container, market, "96.5", "96.6")  # below the limit: it rests
    activated = await container.derivatives.process_order(stop.order.order_id)
    assert activated is not None
    assert (activated.order.status, activated.order.stop_status) == (OrderStatus.PLACED, StopStatus.ACTIVATED)

    await set_price(container, market, "97.5", "97.6")
    filled = await container.derivatives.process_order(stop.order.order_id)
    assert filled is not None and filled.order.status is OrderStatus.FILLED
    assert filled.order.executed_quote == D("97.5")


async def test_a_gtd_order_expires(container, clock):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    resting = await place(
        container, alice, market, "Buy", "1", "90", tif="Gtd", expires=clock.now() + timedelta(hours=1)
    )
    assert resting.order.status is OrderStatus.PLACED
    clock.advance(hours=2)
    expired = await container.derivatives.process_order(resting.order.order_id)
    assert expired is not None and expired.order.status is OrderStatus.EXPIRED


async def test_a_take_profit_ladder_then_the_stop_loss_cancels_the_rest(container):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    position_id = await _open(container, alice, market, "3")
    await container.derivatives.set_triggers(
        alice.principal,
        alice.account_id,
        position_id,
        PositionTriggers(take_profit=((D(103), D(1)), (D(110), D(2))), stop_loss=D(99)),
    )
    assert await container.derivatives.apply_triggers(position_id) == []  # the mark is 100

    await mark_to(container, market, "104", until=lambda m: m >= 103)
    (first,) = await container.derivatives.apply_triggers(position_id)
    assert (first.order.reason, first.order.source.value, first.order.lots) == (
        CloseReason.TAKE_PROFIT,
        "TakeProfit",
        D(1),
    )
    assert first.order.realized_pnl == D(4)  # sold at 104
    view = await container.derivatives.position(alice.principal, alice.account_id, position_id)
    assert view.position.lots == D(2)
    assert [lv.done for lv in view.triggers.take_profit] == [True, False]

    await mark_to(container, market, "97", until=lambda m: m <= 99)
    (stop,) = await container.derivatives.apply_triggers(position_id)
    assert (stop.order.reason, stop.order.lots, stop.order.realized_pnl) == (
        CloseReason.STOP_LOSS,
        D(2),
        D(-6),
    )
    view = await container.derivatives.position(alice.principal, alice.account_id, position_id)
    assert not view.position.is_open and view.triggers is None
    assert await container.derivatives.apply_triggers(position_id) == []


async def test_a_trailing_stop_follows_the_best_mark_and_fires_on_the_retrace(container):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    position_id = await _open(container, alice, market, "1")
    await container.derivatives.set_triggers(
        alice.principal,
        alice.account_id,
        position_id,
        PositionTriggers(trailing=True, trailing_rate=D("0.02")),
    )
    # The mark climbs towards 120; each evaluation moves the stop to 98% of the best mark.
    best = await mark_to(container, market, "120", until=lambda m: m >= 115)
    await container.derivatives.apply_triggers(position_id)
    view = await container.derivatives.position(alice.principal, alice.account_id, position_id)
    assert view.triggers.stop_loss.best_mark == best
    assert view.triggers.stop_loss.price == (best * D("0.98")).quantize(D("0.01"))

    # A retrace of more than 2% from the best mark fires it.
    await mark_to(container, market, "100", until=lambda m: m <= best * D("0.98"))
    (fired,) = await container.derivatives.apply_triggers(position_id)
    assert (fired.order.reason, fired.order.source.value, fired.order.status) == (
        CloseReason.TRAILING_STOP,
        "TrailingStop",
        OrderStatus.FILLED,
    )


async def test_one_pass_of_each_job(container):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    resting = await place(container, alice, market, "Buy", "1", "95", leverage=10)
    position_id = await _open(container, alice, market, "1")
    await container.derivatives.set_triggers(
        alice.principal, alice.account_id, position_id, PositionTriggers(stop_loss=D(97))
    )
    bob = await hedging_trader(container, "bob", usdt="10.5")
    # Margin 10, fee 0.1: collateral 10.4; below the stop-out level 0.5 once the mark is below 94.6.
    await place(container, bob, market, "Buy", "1", leverage=10)

    assert (
        await container.derivatives.run_dealer_orders(),
        await container.derivatives.run_triggers(),
        await container.derivatives.run_margin(),
    ) == (0, 0, 0)
    await mark_to(container, market, "93", until=lambda m: m < 94.5)

    assert await container.derivatives.run_dealer_orders() == 1  # the limit at 95 fills at 93
    assert await container.derivatives.run_triggers() == 1  # alice's stop loss
    assert await container.derivatives.run_margin() == 1  # bob is stopped out
    got = await container.derivatives.get_order(
        alice.principal, alice.account_id, str(resting.order.order_id)
    )
    assert got is not None and got.order.status is OrderStatus.FILLED
