"""Recovery: a restarted runner rebuilds the same book from the database; a book that does not match
its checkpoint stops that market (and only that one) with a clear error."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import text

from bourse.domain.orders import OrderStatus
from bourse.domain.trading import MarketStopped
from bourse.engine import MarketRunner, RunnerSettings
from bourse.engine.runner import CancelCommand, FeeTermsCache, PlaceCommand
from tests.integration.trading.support import make_market, make_trader, place, request


async def random_flow(container, runner, market, traders, count, seed=7):
    """Limit, market, stop and stop-limit orders of every time in force, and cancels, in batches."""
    rng = random.Random(seed)
    placed = []
    pending = []
    for i in range(count):
        t = traders[i % len(traders)]
        side = rng.choice(["Buy", "Sell"])
        amount = f"0.{rng.randint(1, 9)}"
        price = f"{rng.randint(95, 105)}.00"
        kind = rng.random()
        if kind < 0.08:
            req = request(market, side, amount, type="Stop", stop=price)
        elif kind < 0.14:
            req = request(market, side, amount, f"{rng.randint(95, 105)}.00", type="StopLimit", stop=price)
        elif kind < 0.22:
            req = request(market, side, amount)
        else:
            req = request(
                market,
                side,
                amount,
                price,
                tif=rng.choice(["Gtc", "Gtc", "Gtc", "Ioc", "Fok"]),
                post_only=rng.random() < 0.1,
            )
        if placed and rng.random() < 0.2:
            order = placed.pop(rng.randrange(len(placed)))
            pending.append(
                asyncio.ensure_future(runner.submit(CancelCommand(order.account_id, order.order_id)))
            )
        pending.append(asyncio.ensure_future(runner.submit(PlaceCommand(t.account_id, req))))
        if i % 20 == 19:
            for result in await asyncio.gather(*pending):
                if result is not None and result.is_live:
                    placed.append(result)
            pending = []
    await asyncio.gather(*pending)


async def test_a_restarted_runner_has_the_same_book(container, clock):
    market = await make_market(container)
    traders = [await make_trader(container, f"trader{i}", usdt="100000", btc="100") for i in range(6)]
    runner = MarketRunner(
        market, container.uow, clock, container.bus, FeeTermsCache(), RunnerSettings(verify_digest=True)
    )
    await runner.start()
    try:
        await random_flow(container, runner, market, traders, 400)
        assert runner.stopped is None
        assert len(runner.live) > 10 and runner.trade_seq > 10
    finally:
        await runner.stop()
    again = MarketRunner(market, container.uow, clock, container.bus, FeeTermsCache())
    await again.recover()
    assert again.stopped is None
    assert again.digest.hexdigest() == runner.digest.hexdigest()
    assert again.engine.state_hash() == runner.engine.state_hash()
    assert again.engine.waiting_stops() == runner.engine.waiting_stops()


async def test_a_tampered_order_row_stops_its_market_and_only_that_one(container):
    btc = await make_market(container)
    eth = await make_market(container, baseAssetId="ETH")
    alice = await make_trader(container, "alice", usdt="1000")
    resting = await place(container, alice, btc, "Buy", "0.5", "100.00")
    await place(container, alice, eth, "Buy", "0.5", "10.00")
    await container.trading.engines.aclose()  # the server stops
    async with container.engine.begin() as conn:
        await conn.execute(
            text("UPDATE orders SET remaining = 0.4 WHERE order_id = :o"), {"o": resting.order.order_id}
        )
    with pytest.raises(MarketStopped) as stopped:
        await place(container, alice, btc, "Buy", "0.1", "100.00")
    message = str(stopped.value)
    assert "BTCUSDT is stopped" in message and "not the one recorded at the last commit" in message
    # Its orders cannot be cancelled either: nothing trades on a book nobody can vouch for.
    with pytest.raises(MarketStopped):
        await container.trading.cancel(alice.principal, alice.account_id, str(resting.order.order_id))
    other = await place(container, alice, eth, "Buy", "0.1", "10.00")
    assert other.order.status is OrderStatus.PLACED


async def test_a_deleted_trade_changes_the_last_price_and_is_caught(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1000")
    bob = await make_trader(container, "bob", btc="1")
    await place(container, bob, market, "Sell", "0.1", "100.00")
    await place(container, alice, market, "Buy", "0.1", "100.00")
    await container.trading.engines.aclose()
    async with container.engine.begin() as conn:
        await conn.execute(text("DELETE FROM executions"))
        await conn.execute(text("DELETE FROM trades"))
    runner = await container.trading.engines.runner(market)
    assert runner.stopped is not None and "digest" in runner.stopped
