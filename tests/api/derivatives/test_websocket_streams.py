"""CFD/perpetual changes reach the private WebSocket channels after their commit: ``orders`` (the
v4 derivative order), ``positions`` (our channel: open positions first, then each change) and
``balances`` (margin shown as locked); only the caller's own accounts."""

from __future__ import annotations

import pytest

from bourse.api.app import create_app
from bourse.domain.positions import CloseReason
from tests.api.derivatives.support import make_trader, post_order
from tests.api.wsclient import WsClient
from tests.conftest import login
from tests.integration.derivatives.support import make_cfd, set_price


@pytest.fixture
def app(container):
    return create_app(container, dispose_on_shutdown=False)


async def subscribe(ws: WsClient, channel: str) -> dict:
    await ws.send_json({"op": "subscribe", "channel": channel})
    answer = await ws.receive_json()
    assert answer["type"] == "subscribed", answer
    return answer


async def receive(ws: WsClient, count: int) -> dict[str, dict]:
    """The next ``count`` messages by type (the channels' streams interleave in any order)."""
    got = [await ws.receive_json() for _ in range(count)]
    by_type = {m["type"]: m for m in got}
    assert len(by_type) == count, got
    return by_type


async def test_orders_positions_and_balances_are_pushed_from_trader_calls_and_jobs(app, client, container):
    market = await make_cfd(container)
    alice = await make_trader(client, container, "alice", usdt="1000")
    bob = await make_trader(client, container, "bob", usdt="1000")
    token = await login(client, "alice", "alice-pass-123")
    async with WsClient(app) as ws:
        await ws.send_json({"op": "auth", "token": token})
        assert (await ws.receive_json())["type"] == "authenticated"
        assert (await subscribe(ws, "orders"))["accounts"] == [alice.account_id]
        assert (await subscribe(ws, "balances"))["accounts"] == [alice.account_id]
        assert (await ws.receive_json())["balances"] == [
            {"assetId": "USDT", "available": "1000", "locked": "0", "total": "1000"}
        ]
        assert (await subscribe(ws, "positions"))["accounts"] == [alice.account_id]
        assert await ws.receive_json() == {
            "type": "positions",
            "channel": "positions",
            "seq": 1,
            "accountId": alice.account_id,
            "positions": [],
        }

        await post_order(client, bob)  # someone else's fill: nothing for alice
        assert await ws.nothing_within(0.2)

        placed = await post_order(client, alice)  # 2 lots at 100, leverage 10: margin 20, fee 0.2
        pushed = await receive(ws, 3)
        order = pushed["order"]
        assert (order["channel"], order["accountId"]) == ("orders", alice.account_id)
        assert (order["order"]["orderId"], order["order"]["status"], order["order"]["marketType"]) == (
            placed["orderId"],
            "Filled",
            "Cfd",
        )
        position_id = order["order"]["positionId"]
        position = pushed["position"]["position"]
        assert (position["positionId"], position["status"], position["lotAmount"], position["margin"]) == (
            position_id,
            "Open",
            "2",
            "20",
        )
        assert pushed["balances"]["balances"] == [
            {"assetId": "USDT", "available": "979.8", "locked": "20", "total": "999.8"}
        ]

        # A platform close (what the trigger and stop-out jobs call) with no client request.
        await set_price(container, market, "103", "103")
        await container.derivatives.close_position(
            alice.account_id, position_id, None, CloseReason.TAKE_PROFIT
        )
        pushed = await receive(ws, 3)
        closing = pushed["order"]["order"]
        assert (closing["status"], closing["reason"], closing["source"], closing["positionId"]) == (
            "Filled",
            "TakeProfit",
            "TakeProfit",
            position_id,
        )
        assert (pushed["position"]["position"]["status"], pushed["position"]["position"]["lotAmount"]) == (
            "Closed",
            "0",
        )
        # +6 of profit, 0.206 of fee: 999.8 + 6 - 0.206.
        assert pushed["balances"]["balances"] == [
            {"assetId": "USDT", "available": "1005.594", "locked": "0", "total": "1005.594"}
        ]
