"""PUT /back-api/backoffice/v2/markets/{marketId}/price-source cannot change the execution mode of
a market with live derivative orders or open positions: 409 ``execution_mode_in_use`` in the
brokerage error body, nothing changed; once they are gone the switch goes through."""

from __future__ import annotations

import pytest

from bourse.domain.identity import Role
from bourse.domain.positions import CloseReason
from tests.conftest import bearer, login
from tests.integration.derivatives.support import hedging_trader, make_cfd, place
from tests.integration.derivatives_orderbook.support import D, make_book_cfd, open_positions

BO = "/back-api/backoffice/v2"
DEALER = {"executionMode": "Dealer", "sourceKind": "Manual", "bid": "100", "ask": "100"}


@pytest.fixture
async def staff(client, container):
    await container.identity.create_user("ops", "ops-pass-123", roles=(Role.ADMIN,))
    return bearer(await login(client, "ops", "ops-pass-123"))


async def put(client, staff, market, body):
    return await client.put(f"{BO}/markets/{market}/price-source", headers=staff, json=body)


async def test_an_order_book_market_with_a_resting_order_or_a_position_keeps_its_mode(
    client, container, staff
):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    resting = await place(container, alice, market, "Sell", "2", "100", leverage=10)
    r = await put(client, staff, market, DEALER)
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "execution_mode_in_use" and "requestId" in body
    assert body["details"] == {"field": "executionMode", "liveOrders": 1, "openPositions": 0}
    got = await client.get(f"{BO}/markets/{market}/price-source", headers=staff)
    assert got.json()["settings"]["executionMode"] == "OrderBook"
    # The same mode with other settings is no switch: accepted.
    assert (
        await put(client, staff, market, {"executionMode": "OrderBook", "markupRate": "0"})
    ).status_code == 200

    await place(container, bob, market, "Buy", "2", "100", leverage=10)  # fills: two positions
    r = await put(client, staff, market, DEALER)
    assert r.status_code == 409 and r.json()["details"]["openPositions"] == 2
    # Bob rests a limit close of his long; alice's market close of her short takes it.
    (long,) = await open_positions(container, bob.account_id)
    (short,) = await open_positions(container, alice.account_id)
    await container.derivatives.close_position(
        bob.account_id, long.position_id, None, CloseReason.TRADER, limit_price=D("100")
    )
    await container.derivatives.close_position(alice.account_id, short.position_id, None, CloseReason.TRADER)
    assert (
        await open_positions(container, alice.account_id)
        == await open_positions(container, bob.account_id)
        == []
    )
    resting = await place(container, alice, market, "Sell", "1", "101", leverage=10)
    r = await put(client, staff, market, DEALER)
    assert r.status_code == 409 and r.json()["details"] == {
        "field": "executionMode",
        "liveOrders": 1,
        "openPositions": 0,
    }
    # Nothing live, nothing open: it switches.
    await container.derivatives.cancel(alice.principal, alice.account_id, str(resting.order.order_id))
    assert (await put(client, staff, market, DEALER)).status_code == 200


async def test_a_dealer_market_with_an_open_position_keeps_its_mode(client, container, staff):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    await place(container, alice, market, "Buy", "1", leverage=10)
    r = await put(client, staff, market, {"executionMode": "OrderBook"})
    assert r.status_code == 409 and r.json()["details"]["openPositions"] == 1
