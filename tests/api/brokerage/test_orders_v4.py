"""Front office v4 orders and executions over HTTP."""

from __future__ import annotations

import pytest

from tests.api.brokerage.test_orders_v3 import ISO, V3, order, post_order, trader
from tests.integration.trading.support import make_market

V4 = "/frontoffice/api/v4"
JSON_V4 = {"Content-Type": "application/json; x-api-version=4.0"}
ORDER_KEYS = {
    "marketId",
    "marketType",
    "marketDisplayName",
    "marketFullName",
    "orderId",
    "timeInForce",
    "status",
    "source",
    "reason",
    "side",
    "orderType",
    "requestedAmount",
    "remainingAmount",
    "requestedPrice",
    "executionPrice",
    "createdAt",
    "updatedAt",
    "cancellationDate",
    "commissionAssetId",
    "commissionAmount",
    "leverage",
    "rejectDetails",
    "fillFactor",
}
EXECUTION_KEYS = {
    "positionId",
    "orderId",
    "side",
    "reason",
    "createdAt",
    "executionId",
    "baseAmount",
    "executionPrice",
    "realizedPnlInRAT",
    "commissionAmountInRAT",
    "commissions",
}


@pytest.fixture
async def market(container):
    return await make_market(container, displayName="BTC/USDT", fullName="Bitcoin / Tether")


@pytest.fixture
async def alice(client, container, market):
    return await trader(client, container, "alice", usdt="1000")


@pytest.fixture
async def bob(client, container, market):
    return await trader(client, container, "bob", btc="2")


async def test_an_order_in_the_v4_shape(client, alice, bob):
    placed = await post_order(client, alice, requestedAmount="0.4")
    await post_order(client, bob, side="Sell", requestedAmount="0.1", requestedPrice="99.00")
    r = await client.get(f"{V4}/orders/{placed['orderId']}", headers=alice.headers)
    assert r.status_code == 200, r.text
    o = r.json()["order"]
    assert set(o) == ORDER_KEYS
    assert {k: o[k] for k in ORDER_KEYS - {"createdAt", "updatedAt"}} == {
        "marketId": "BTCUSDT",
        "marketType": "Spot",
        "marketDisplayName": "BTC/USDT",
        "marketFullName": "Bitcoin / Tether",
        "orderId": placed["orderId"],
        "timeInForce": "Gtc",
        "status": "PartiallyFilled",
        "source": "Manual",
        "reason": "Trader",
        "side": "Buy",
        "orderType": "Limit",
        "requestedAmount": "0.4",
        "remainingAmount": "0.3",
        "requestedPrice": "100",
        "executionPrice": "100",
        "cancellationDate": None,
        "commissionAssetId": "USDT",
        "commissionAmount": "0.01",
        "leverage": 1,
        "rejectDetails": None,
        "fillFactor": "0.25",
    }
    assert ISO.match(o["createdAt"])
    assert (await client.get(f"{V4}/orders/{placed['orderId']}", headers=bob.headers)).status_code == 404


async def test_order_list_in_the_v4_shape(client, alice):
    ids = [(await post_order(client, alice, requestedAmount="0.1"))["orderId"] for _ in range(3)]
    r = await client.post(f"{V4}/order-list", headers={**alice.headers, **JSON_V4}, content=b'{"limit": 2}')
    assert r.status_code == 200, r.text
    assert [o["orderId"] for o in r.json()["data"]] == [ids[2], ids[1]]
    assert set(r.json()["data"][0]) == ORDER_KEYS
    r = await client.post(f"{V4}/order-list", headers=alice.headers, json={"lastOrderId": ids[1]})
    assert [o["orderId"] for o in r.json()["data"]] == [ids[0]]


async def test_executions_lists_and_pages(client, alice, bob):
    buy = await post_order(client, alice, requestedAmount="0.3")
    for _ in range(3):
        await post_order(client, bob, side="Sell", requestedAmount="0.1", requestedPrice="100.00")
    r = await client.post(
        f"{V4}/orders/executions/list", headers=alice.headers, json={"orderIds": [buy["orderId"]], "limit": 2}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"executions", "isExceeded"} and body["isExceeded"] is True
    first = body["executions"][0]
    assert set(first) == EXECUTION_KEYS
    assert {k: first[k] for k in EXECUTION_KEYS - {"createdAt", "executionId"}} == {
        "positionId": None,
        "orderId": buy["orderId"],
        "side": "Buy",
        "reason": "Trader",
        "baseAmount": "0.1",
        "executionPrice": "100",
        "realizedPnlInRAT": "0",
        "commissionAmountInRAT": "0.01",
        "commissions": [{"assetId": "USDT", "amount": "0.01"}],
    }
    r = await client.post(
        f"{V4}/orders/{buy['orderId']}/executions/list",
        headers=alice.headers,
        json={"limit": 2, "lastExecutionId": body["executions"][1]["executionId"]},
    )
    assert r.status_code == 200
    assert len(r.json()["executions"]) == 1 and r.json()["isExceeded"] is False
    everything = await client.post(f"{V4}/orders/executions/list", headers=bob.headers, json={})
    assert len(everything.json()["executions"]) == 3
    assert {e["side"] for e in everything.json()["executions"]} == {"Sell"}
    # someone else's order: nothing of it is shown
    r = await client.post(f"{V4}/orders/{buy['orderId']}/executions/list", headers=bob.headers, json={})
    assert r.status_code == 404
    r = await client.post(
        f"{V4}/orders/executions/list", headers=bob.headers, json={"orderIds": [buy["orderId"]]}
    )
    assert r.json() == {"executions": [], "isExceeded": False}


async def test_v4_needs_the_account_header(client, alice):
    placed = await post_order(client, alice)
    no_header = {k: v for k, v in alice.headers.items() if k != "accountId"}
    assert (await client.get(f"{V4}/orders/{placed['orderId']}", headers=no_header)).status_code == 400
    assert (await client.post(f"{V4}/order-list", headers=no_header, json={})).status_code == 400
    r = await client.post(
        f"{V4}/orders/executions/list", headers={**alice.headers, "accountId": "A000"}, json={}
    )
    assert r.status_code == 404
    assert (await client.post(f"{V3}/orders", headers=alice.headers, json=order())).status_code == 200
