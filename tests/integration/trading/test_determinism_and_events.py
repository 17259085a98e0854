"""The runner adds no nondeterminism (the stored orders, replayed through a fresh engine at their
times, give the runner's book), and it publishes the contract's events after each commit."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import text

from bourse.domain.matching import MatchingEngine
from bourse.domain.order_requests import to_millis
from bourse.engine import MarketRunner
from bourse.engine.runner import FeeTermsCache, PlaceCommand
from bourse.engine.tick import engine_command
from tests.integration.trading.support import USDT, make_market, make_trader, place, request

# Refused before the engine: these orders never became engine commands.
PRE_ENGINE = {
    "InsufficientFunds",
    "AmountBelowMinimum",
    "AmountAboveMaximum",
    "QuoteAmountBelowMinimum",
    "PriceDeviation",
    "SessionClosed",
    "NoReferencePrice",
    "InvalidPrice",
    "InvalidQuantity",
    "InvalidStopPrice",
    "InvalidExpiry",
    "InvalidTimeInForce",
    "MarketHalted",
    "MarketCloseOnly",
}


async def test_replaying_the_stored_orders_rebuilds_the_runners_book(container, clock):
    market_id = await make_market(container)
    traders = [await make_trader(container, f"trader{i}", usdt="100000", btc="100") for i in range(5)]
    runner = MarketRunner(market_id, container.uow, clock, container.bus, FeeTermsCache())
    await runner.start()
    rng = random.Random(11)
    try:
        for round_ in range(12):
            clock.advance(seconds=1)
            commands = []
            for i in range(15):
                side = rng.choice(["Buy", "Sell"])
                kind = rng.random()
                if kind < 0.1:
                    req = request(market_id, side, "0.3", type="Stop", stop=f"{rng.randint(97, 103)}.00")
                elif kind < 0.2:
                    req = request(market_id, side, f"0.{rng.randint(1, 9)}")
                else:
                    req = request(
                        market_id,
                        side,
                        f"0.{rng.randint(1, 9)}",
                        f"{rng.randint(97, 103)}.00",
                        tif=rng.choice(["Gtc", "Gtc", "Ioc", "Fok"]),
                        post_only=rng.random() < 0.1,
                    )
                commands.append(runner.submit(PlaceCommand(traders[(round_ + i) % 5].account_id, req)))
            await asyncio.gather(*commands)
    finally:
        await runner.stop()
    async with container.uow() as uow:
        ids = [
            r[0]
            for r in (await uow.connection.execute(text("SELECT order_id FROM orders ORDER BY order_id")))
        ]
        orders = sorted(await uow.trading.orders_by_ids(ids), key=lambda o: o.order_id)
        market = await uow.markets.get(market_id)
    assert market is not None and len(orders) == 180
    replay = MatchingEngine(market.spec().engine_rules())
    for order in orders:
        if order.reject_reason in PRE_ENGINE:
            continue
        replay.on_time(to_millis(order.created_at))
        replay.place(engine_command(order, market))
    assert replay.state_hash() == runner.engine.state_hash()
    assert replay.depth(50) == runner.engine.depth(50)


async def test_events_are_published_after_the_commit(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1000")
    bob = await make_trader(container, "bob", btc="1")
    await place(container, bob, market, "Sell", "0.5", "100.00")
    subs = {
        name: container.bus.subscribe(topic)
        for name, topic in (
            ("trades", f"trades.{market}"),
            ("book", f"book.{market}"),
            ("alice", f"orders.{alice.account_id}"),
            ("bob", f"orders.{bob.account_id}"),
            ("balances", f"balances.{alice.account_id}"),
        )
    }
    buy = await place(container, alice, market, "Buy", "0.2", "101.00")
    async with container.engine.connect() as conn:
        trade_id = (await conn.execute(text("SELECT trade_id FROM trades"))).scalar_one()

    async def first(name):
        return (await asyncio.wait_for(subs[name].get(), 2))[1]

    trade = await first("trades")
    assert trade == {
        "marketId": market,
        "tradeId": trade_id,
        "price": "100",
        "amount": "0.2",
        "quoteAmount": "20",
        "takerSide": "Buy",
        "ts": trade["ts"],
    }
    book = await first("book")
    assert book["marketId"] == market and book["bids"] == [] and book["asks"] == [["100", "0.3"]]
    assert isinstance(book["seq"], int) and isinstance(book["ts"], int)
    mine = await first("alice")
    assert mine["orderId"] == str(buy.order.order_id) and mine["status"] == "Filled"
    theirs = await first("bob")
    assert theirs["status"] == "PartiallyFilled" and theirs["remainingAmount"] == "0.3"
    balances = await first("balances")
    assert balances["accountId"] == alice.account_id and balances["assetIds"] == ["BTC", USDT]
    for s in subs.values():
        s.close()
