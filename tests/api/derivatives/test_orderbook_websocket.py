"""OrderBook Cfd markets: the runner tells the bus what its committed batch changed, so book
orders, positions and balances reach the private WebSocket channels as Dealer ones do; a maker
whose resting order fills hears of it though it sent nothing."""

from __future__ import annotations

import pytest

from bourse.api.app import create_app
from tests.api.derivatives.support import make_trader, post_order
from tests.api.derivatives.test_websocket_streams import receive, subscribe
from tests.api.wsclient import WsClient
from tests.conftest import login
from tests.integration.derivatives_orderbook.support import make_book_cfd


@pytest.fixture
def app(container):
    return create_app(container, dispose_on_shutdown=False)


async def test_book_orders_positions_and_balances_are_pushed_after_the_runner_commits(app, client, container):
    market = await make_book_cfd(container)
    alice = await make_trader(client, container, "alice", usdt="1000")
    bob = await make_trader(client, container, "bob", usdt="1000")
    token = await login(client, "alice", "alice-pass-123")
    async with WsClient(app) as ws:
        await ws.send_json({"op": "auth", "token": token})
        assert (await ws.receive_json())["type"] == "authenticated"
        await subscribe(ws, "orders")
        await subscribe(ws, "balances")
        assert (await ws.receive_json())["balances"][0]["available"] == "1000"
        await subscribe(ws, "positions")
        assert (await ws.receive_json())["positions"] == []

        await post_order(client, bob, marketId=market, orderType="Limit", requestedPrice="90")
        assert await ws.nothing_within(0.2)  # someone else's order: nothing for alice

        # Alice rests a sell of 2 lots at 100 (leverage 10): held 200 * (0.1 + 0.001) = 20.2.
        placed = await post_order(
            client, alice, marketId=market, orderType="Limit", side="Sell", requestedPrice="100"
        )
        pushed = await receive(ws, 2)
        order = pushed["order"]["order"]
        assert (order["orderId"], order["status"], order["marketId"]) == (placed["orderId"], "Placed", market)
        assert pushed["balances"]["balances"] == [
            {"assetId": "USDT", "available": "979.8", "locked": "20.2", "total": "1000"}
        ]

        # Bob's buy at 100 fills it: alice, the maker, hears of her fill and her new short.
        await post_order(client, bob, marketId=market, orderType="Limit", requestedPrice="100")
        pushed = await receive(ws, 3)
        order = pushed["order"]["order"]
        assert (order["orderId"], order["status"], order["commissionAmount"]) == (
            placed["orderId"],
            "Filled",
            "0.2",
        )
        position = pushed["position"]["position"]
        assert (position["positionId"], position["side"], position["lotAmount"], position["margin"]) == (
            order["positionId"],
            "Short",
            "2",
            "20",
        )
        # The margin shows as locked: 20 of margin, the fee paid.
        assert pushed["balances"]["balances"] == [
            {"assetId": "USDT", "available": "979.8", "locked": "20", "total": "999.8"}
        ]
        assert await ws.nothing_within(0.2)
