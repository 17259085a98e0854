"""WebSocket /ws: public streams with sequence numbers, private streams after auth, slow clients dropped."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from bourse.api.app import create_app
from bourse.api.native import ws
from bourse.domain.ledger import EXTERNAL, Bucket, account_owner, move
from bourse.domain.marketdata import apply_delta
from tests.api.marketdata.support import T0, book_event, make_market, trade_event
from tests.api.wsclient import WsClient
from tests.conftest import login


@pytest.fixture
def app(container, clock):
    clock.current = T0
    return create_app(container, dispose_on_shutdown=False)


@pytest.fixture
async def market(container):
    return await make_market(container)


async def subscribe(client: WsClient, **topic) -> dict:
    await client.send_json({"op": "subscribe", **topic})
    answer = await client.receive_json()
    assert answer["type"] == "subscribed", answer
    return answer


def levels(raw):
    return [(Decimal(p), Decimal(a)) for p, a in raw]


async def test_orderbook_is_a_snapshot_then_deltas_with_increasing_seq(app, container, market):
    container.marketdata.on_book(
        book_event(market, 1, [["100", "2"], ["98", "1"]], [["101", "1"], ["102", "4"]])
    )
    async with WsClient(app) as client:
        ack = await subscribe(client, channel="orderbook", market=market)
        assert ack == {"type": "subscribed", "channel": "orderbook", "market": market}
        snapshot = await client.receive_json()
        assert snapshot == {
            "type": "snapshot",
            "channel": "orderbook",
            "market": market,
            "instrument": market,
            "seq": 1,
            "bookSeq": 1,
            "bids": [["100", "2"], ["98", "1"]],
            "asks": [["101", "1"], ["102", "4"]],
            "timestamp": "2025-09-09T12:00:00.000Z",
        }
        bids, asks = levels(snapshot["bids"]), levels(snapshot["asks"])

        books = [
            (2, [["100", "3"], ["99", "1"], ["98", "1"]], [["102", "4"]]),  # bid changed and added, ask taken
            (3, [["100", "3"], ["99", "1"], ["98", "1"]], [["102", "4"]]),  # nothing changed: no message
            (1, [["1", "1"]], []),  # older than what the client has: ignored
            (5, [["99", "1"]], [["102", "4"], ["103", "1"]]),  # seq 4 was never published: still fine
        ]
        for seq, b, a in books:
            container.bus.publish(f"book.{market}", book_event(market, seq, b, a))
        first = await client.receive_json()
        assert (first["type"], first["seq"], first["bookSeq"]) == ("update", 2, 2)
        assert (first["bids"], first["asks"]) == ([["100", "3"], ["99", "1"]], [["101", "0"]])
        second = await client.receive_json()
        assert (second["type"], second["seq"], second["bookSeq"]) == ("update", 3, 5)
        assert (second["bids"], second["asks"]) == ([["100", "0"], ["98", "0"]], [["103", "1"]])
        assert await client.nothing_within(0.1)
        # The client's book, kept from the snapshot and the deltas, is the last published one.
        for update in (first, second):
            bids = apply_delta(bids, levels(update["bids"]), descending=True)
            asks = apply_delta(asks, levels(update["asks"]), descending=False)
        assert (bids, asks) == (levels([["99", "1"]]), levels([["102", "4"], ["103", "1"]]))


async def test_trades_ticker_and_candles_streams(app, container, market, clock):
    clock.current = T0 + timedelta(seconds=30)
    async with WsClient(app) as client:
        await subscribe(client, channel="trades", market=market)
        await subscribe(client, channel="ticker", market=market)
        first_ticker = await client.receive_json()
        assert (first_ticker["type"], first_ticker["seq"], first_ticker["last"]) == ("ticker", 1, None)
        await subscribe(client, channel="candles", market=market, interval="1m")

        event = trade_event(market, 11, "100.5", "2", T0 + timedelta(seconds=3), taker_side="Sell")
        container.bus.publish(f"trades.{market}", event)
        trade = await client.receive_json()
        assert trade == {
            "type": "trade",
            "channel": "trades",
            "market": market,
            "seq": 1,
            "tradeId": 11,
            "instrument": market,
            "price": "100.5",
            "amount": "2",
            "quoteAmount": "201",
            "takerSide": "Sell",
            "timestamp": "2025-09-09T12:00:03.000Z",
        }

        # Market data folds the trade and publishes the changed candles and the ticker.
        await container.marketdata.on_trade(event)
        await container.marketdata.flush()
        got = {}
        for _ in range(2):
            message = await client.receive_json()
            got[message["channel"]] = message
        assert (got["ticker"]["seq"], got["ticker"]["last"], got["ticker"]["baseVolume"]) == (2, "100.5", "2")
        candle = got["candles"]
        assert (candle["type"], candle["seq"], candle["interval"], candle["start"], candle["close"]) == (
            "candle",
            1,
            "1m",
            "2025-09-09T12:00:00.000Z",
            "100.5",
        )
        assert await client.nothing_within(0.1)  # the 5m ... 1M candles are other subscriptions

        await client.send_json({"op": "unsubscribe", "channel": "trades", "market": market})
        assert (await client.receive_json())["type"] == "unsubscribed"
        container.bus.publish(f"trades.{market}", trade_event(market, 12, "101", "1", T0))
        assert await client.nothing_within(0.1)

    # A new subscriber to candles gets the current candle first.
    async with WsClient(app) as client:
        await subscribe(client, channel="candles", market=market, interval="1h")
        current = await client.receive_json()
        assert (current["type"], current["seq"], current["interval"], current["open"]) == (
            "candle",
            1,
            "1h",
            "100.5",
        )


async def test_bad_requests_are_answered_not_fatal(app, market):
    async with WsClient(app) as client:
        cases = [
            ("not json", "invalid_input", None),
            ({"op": "dance"}, "invalid_input", "op"),
            ({"op": "subscribe", "channel": "gossip", "market": market}, "invalid_input", "channel"),
            ({"op": "subscribe", "channel": "trades"}, "invalid_input", "market"),
            ({"op": "subscribe", "channel": "candles", "market": market}, "invalid_input", "interval"),
            (
                {"op": "subscribe", "channel": "candles", "market": market, "interval": "2m"},
                "invalid_input",
                "interval",
            ),
            ({"op": "subscribe", "channel": "trades", "market": "NOPE"}, "not_found", "marketSymbol"),
            ({"op": "unsubscribe", "channel": "trades", "market": market}, "not_found", None),
            ({"op": "auth"}, "invalid_input", "token"),
            ({"op": "auth", "token": "forged"}, "not_authenticated", None),
        ]
        for body, code, field in cases:
            if isinstance(body, str):
                await client.send_text(body)
            else:
                await client.send_json(body)
            answer = await client.receive_json()
            assert (answer["type"], answer["code"], answer.get("field")) == ("error", code, field), body
        await client.send_json({"op": "ping", "id": 7})
        assert await client.receive_json() == {"type": "pong", "id": 7}
        await subscribe(client, channel="trades", market=market)
        await client.send_json({"op": "subscribe", "channel": "trades", "market": market, "id": "again"})
        assert await client.receive_json() == {
            "type": "error",
            "code": "conflict",
            "message": "already subscribed; unsubscribe first for a fresh snapshot",
            "op": "subscribe",
            "channel": "trades",
            "market": market,
            "id": "again",
        }


async def test_a_client_that_keeps_sending_garbage_is_closed(app, monkeypatch):
    monkeypatch.setattr(ws, "MAX_ERRORS", 3)
    async with WsClient(app) as client:
        for _ in range(4):
            await client.send_text("{")
        closed = await client.close_frame()
        assert closed.code == 1008 and "refused" in closed.reason


async def fund(container, account_id, asset, amount):
    async with container.uow() as uow:
        await uow.ledger.apply(
            move(
                "test.fund",
                asset,
                Decimal(amount),
                (EXTERNAL, Bucket.AVAILABLE),
                (account_owner(account_id), Bucket.AVAILABLE),
            )
        )
        await uow.commit()


async def test_private_streams_need_auth_and_carry_only_the_callers_accounts(app, client, container, market):
    alice = await container.identity.create_user("alice", "alice-pass-1")
    bob = await container.identity.create_user("bob", "bob-pass-123")
    mine, theirs = alice.account.account_id, bob.account.account_id
    await fund(container, mine, "USDT", "250.5")
    token = await login(client, "alice", "alice-pass-1")
    async with WsClient(app) as ws_client:
        for channel in ("orders", "balances"):
            await ws_client.send_json({"op": "subscribe", "channel": channel})
            refused = await ws_client.receive_json()
            assert (refused["type"], refused["code"], refused["channel"]) == (
                "error",
                "not_authenticated",
                channel,
            )
        await ws_client.send_json({"op": "auth", "token": token})
        assert await ws_client.receive_json() == {
            "type": "authenticated",
            "userId": alice.user.uid,
            "username": "alice",
        }
        await ws_client.send_json({"op": "auth", "token": token})
        assert (await ws_client.receive_json())["code"] == "conflict"

        assert (await subscribe(ws_client, channel="orders"))["accounts"] == [mine]
        assert (await subscribe(ws_client, channel="balances"))["accounts"] == [mine]
        initial = await ws_client.receive_json()
        assert initial == {
            "type": "balances",
            "channel": "balances",
            "seq": 1,
            "accountId": mine,
            "balances": [{"assetId": "USDT", "available": "250.5", "locked": "0", "total": "250.5"}],
        }

        # Bob's events never reach Alice.
        container.bus.publish(f"orders.{theirs}", {"orderId": 1, "status": "Placed"})
        container.bus.publish(f"balances.{theirs}", {"accountId": theirs, "assetIds": ["USDT"], "ts": 0})
        assert await ws_client.nothing_within(0.1)

        container.bus.publish(f"orders.{mine}", {"orderId": 2, "marketId": market, "status": "Placed"})
        order = await ws_client.receive_json()
        assert order == {
            "type": "order",
            "channel": "orders",
            "seq": 1,
            "accountId": mine,
            "order": {"orderId": 2, "marketId": market, "status": "Placed"},
        }
        await fund(container, mine, "USDT", "0.5")
        container.bus.publish(f"balances.{mine}", {"accountId": mine, "assetIds": ["USDT"], "ts": 0})
        pushed = await ws_client.receive_json()
        assert (pushed["seq"], pushed["balances"][0]["total"]) == (2, "251")


async def test_a_client_that_stops_reading_is_closed_and_never_holds_up_publishers(
    app, container, market, monkeypatch
):
    monkeypatch.setattr(ws, "SEND_BUFFER", 5)
    watcher = container.bus.subscribe(f"trades.{market}", maxsize=1000)
    async with WsClient(app) as client:
        await subscribe(client, channel="trades", market=market)
        client.stall()
        for n in range(1, 51):
            container.bus.publish(f"trades.{market}", trade_event(market, n, "100", "1", T0))
            await asyncio.sleep(0)  # let the connection's stream run between trades
        closed = await client.close_frame()
        assert closed.code == 4000 and "send buffer full" in closed.reason
    # Everyone else got every event.
    assert [(await watcher.get())[1]["tradeId"] for _ in range(50)] == list(range(1, 51))


async def test_a_stream_the_bus_drops_closes_the_connection_with_the_reason(
    app, container, market, monkeypatch
):
    monkeypatch.setattr(ws, "BUS_BUFFER", 3)
    async with WsClient(app) as client:
        await subscribe(client, channel="trades", market=market)
        for n in range(1, 11):  # no await in between: the stream cannot keep up
            container.bus.publish(f"trades.{market}", trade_event(market, n, "100", "1", T0))
        closed = await client.close_frame()
        assert closed.code == 4001 and "fell behind" in closed.reason
