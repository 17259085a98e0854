"""Market data fed by the real trading engine: orders cross, candles, tape, depth and /ws follow."""

import asyncio
import contextlib
from datetime import timedelta

from bourse.api.app import create_app
from bourse.domain.marketdata import Interval
from bourse.domain.values import format_decimal
from tests.api.marketdata.support import T0, eventually, stored_candles
from tests.api.wsclient import WsClient
from tests.conftest import login
from tests.integration.trading.support import make_market, make_trader, place


async def test_engine_trades_become_candles_tape_depth_and_streams(container, clock, client):
    clock.current = T0
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    bob = await make_trader(container, "bob", btc="1")
    service = container.marketdata
    service.flush_interval = 0.01
    consumer = asyncio.create_task(service.run())
    app = create_app(container, dispose_on_shutdown=False)
    try:

        async def live() -> bool:
            return service.live

        await eventually(live)
        token = await login(client, "alice", "alice-pass-123")
        async with WsClient(app) as ws, WsClient(app) as mine:
            await mine.send_json({"op": "auth", "token": token})
            assert (await mine.receive_json())["type"] == "authenticated"
            await mine.send_json({"op": "subscribe", "channel": "orders"})
            assert (await mine.receive_json())["type"] == "subscribed"
            await ws.send_json({"op": "subscribe", "channel": "orderbook", "market": market})
            assert (await ws.receive_json())["type"] == "subscribed"
            snapshot = await ws.receive_json()
            assert (snapshot["type"], snapshot["bids"], snapshot["asks"]) == ("snapshot", [], [])

            await place(container, alice, market, "Buy", "0.5", "100.00")
            rested = await ws.receive_json()
            assert (rested["type"], rested["seq"], rested["bids"], rested["asks"]) == (
                "update",
                2,
                [["100", "0.5"]],
                [],
            )

            await place(container, bob, market, "Sell", "0.2", "99.00")  # 0.2 at the maker's 100
            clock.advance(minutes=1)
            await place(container, bob, market, "Sell", "0.1", "100.00")
            updates = [await ws.receive_json() for _ in range(2)]
            assert [(u["seq"], u["bids"]) for u in updates] == [(3, [["100", "0.3"]]), (4, [["100", "0.2"]])]
            # Alice sees her own order move through its states; Bob's orders are not hers to see.
            seen = [await mine.receive_json() for _ in range(3)]
            assert [(m["seq"], m["accountId"], m["order"]["status"]) for m in seen] == [
                (1, alice.account_id, "Placed"),
                (2, alice.account_id, "PartiallyFilled"),
                (3, alice.account_id, "PartiallyFilled"),
            ]
            assert await mine.nothing_within(0.1)

        async def both_trades_stored() -> bool:
            rows = await stored_candles(container, market, "1h")
            return bool(rows) and rows[0]["trades"] == 2

        await eventually(both_trades_stored)
        minutes = await service.history(market, Interval.M1, T0, T0 + timedelta(minutes=5))
        assert [(c.start, c.close) for c in minutes] == [(T0, 100), (T0 + timedelta(minutes=1), 100)]
        assert [str(c.base_volume.normalize()) for c in minutes] == ["0.2", "0.1"]
        tape = await service.trades(market, 10)
        assert [(str(t.amount.normalize()), t.taker_side) for t in tape] == [("0.1", "Sell"), ("0.2", "Sell")]
        depth = await service.depth(market, 5)
        assert [(format_decimal(p), format_decimal(a)) for p, a in depth.bids] == [("100", "0.2")]
        ticker = await service.ticker(market)
        assert (str(ticker.vwap), str(ticker.base_volume.normalize()), ticker.trades) == ("100.00", "0.3", 2)
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
