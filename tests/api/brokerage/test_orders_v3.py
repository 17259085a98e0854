"""Front office v3 orders over HTTP: the spec's shapes, the accountId header, errors."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bourse.domain.identity import Role
from tests.conftest import bearer, login
from tests.integration.trading.support import USDT, D, balance, deposit, make_market

V3 = "/frontoffice/api/v3"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ORDER_KEYS = {
    "marketId",
    "marketDisplayName",
    "orderId",
    "orderType",
    "side",
    "status",
    "source",
    "timeInForce",
    "commission",
    "requestedAmount",
    "remainingAmount",
    "requestedPrice",
    "executionPrice",
    "createdAt",
    "updatedAt",
    "rejectDetails",
    "cancellationDate",
    "fillFactor",
}


class Trader:
    def __init__(self, headers: dict[str, str], account_id: str) -> None:
        self.headers = {**headers, "accountId": account_id}
        self.account_id = account_id


async def trader(client, container, name, *, usdt="0", btc="0", roles=(Role.TRADER,)) -> Trader:
    created = await container.identity.create_user(name, f"{name}-pass-123", roles=roles)
    account = created.account.account_id
    await deposit(container, account, USDT, D(usdt))
    await deposit(container, account, "BTC", D(btc))
    return Trader(bearer(await login(client, name, f"{name}-pass-123")), account)


@pytest.fixture
async def market(container):
    return await make_market(container, displayName="BTC/USDT")


@pytest.fixture
async def alice(client, container, market):
    return await trader(client, container, "alice", usdt="1000")


@pytest.fixture
async def bob(client, container, market):
    return await trader(client, container, "bob", btc="2")


def order(**fields):
    body = {
        "marketId": "BTCUSDT",
        "orderType": "Limit",
        "side": "Buy",
        "requestedAmount": "0.5",
        "requestedPrice": "100.00",
        "timeInForce": "Gtc",
    }
    body.update(fields)
    return {"order": {k: v for k, v in body.items() if v is not None}}


async def post_order(client, who, **fields):
    r = await client.post(f"{V3}/orders", headers=who.headers, json=order(**fields))
    assert r.status_code == 200, r.text
    return r.json()["order"]


async def test_placing_a_limit_order_answers_the_spec_shape(client, alice):
    r = await client.post(f"{V3}/orders", headers=alice.headers, json=order())
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"order"}
    o = body["order"]
    assert set(o) == ORDER_KEYS
    assert o["orderId"].isdigit()
    assert {k: o[k] for k in ORDER_KEYS - {"orderId", "createdAt", "updatedAt"}} == {
        "marketId": "BTCUSDT",
        "marketDisplayName": "BTC/USDT",
        "orderType": "Limit",
        "side": "Buy",
        "status": "Placed",
        "source": "Manual",
        "timeInForce": "Gtc",
        "commission": "0",
        "requestedAmount": "0.5",
        "remainingAmount": "0.5",
        "requestedPrice": "100",
        "executionPrice": None,
        "rejectDetails": None,
        "cancellationDate": None,
        "fillFactor": "0",
    }
    assert ISO.match(o["createdAt"]) and ISO.match(o["updatedAt"])


async def test_a_fill_shows_in_the_order_and_a_market_order_has_no_requested_price(
    client, container, alice, bob
):
    resting = await post_order(client, alice, requestedAmount="0.4")
    sold = await post_order(
        client, bob, side="Sell", orderType="Market", requestedPrice=None, requestedAmount="0.1"
    )
    assert "requestedPrice" not in sold
    assert sold["status"] == "Filled" and sold["executionPrice"] == "100" and sold["fillFactor"] == "1"
    assert sold["commission"] == "0.01"
    r = await client.get(f"{V3}/orders/{resting['orderId']}", headers=alice.headers)
    assert r.status_code == 200
    got = r.json()["order"]
    assert (
        got["status"] == "PartiallyFilled" and got["remainingAmount"] == "0.3" and got["fillFactor"] == "0.25"
    )
    assert got["executionPrice"] == "100" and got["commission"] == "0.01"


async def test_a_rejected_order_carries_its_reason(client, container, alice):
    o = await post_order(client, alice, requestedAmount="100")
    assert o["status"] == "Rejected" and o["rejectDetails"] == "InsufficientFunds"
    assert await balance(container, alice.account_id, USDT) == D(1000)


async def test_gtd_carries_its_cancellation_date(client, alice, clock):
    when = (clock.now() - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S") + ".250Z"
    o = await post_order(client, alice, timeInForce="Gtd", cancellationDate=when)
    assert o["status"] == "Rejected" and o["rejectDetails"] == "InvalidExpiry"  # not in the future
    later = (
        clock.now().replace(microsecond=0, year=clock.now().year + 1).strftime("%Y-%m-%dT%H:%M:%S") + ".250Z"
    )
    o = await post_order(client, alice, timeInForce="Gtd", cancellationDate=later)
    assert o["status"] == "Placed" and o["cancellationDate"] == later


async def test_cancel_answers_the_cancelled_order_once(client, alice):
    placed = await post_order(client, alice)
    r = await client.delete(f"{V3}/orders/{placed['orderId']}", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["order"]["status"] == "Cancelled" and set(r.json()["order"]) == ORDER_KEYS
    again = await client.delete(f"{V3}/orders/{placed['orderId']}", headers=alice.headers)
    assert again.status_code == 400 and "Cancelled" in again.json()["message"]
    missing = await client.delete(f"{V3}/orders/987654321", headers=alice.headers)
    assert missing.status_code == 404


async def test_another_users_orders_and_accounts_are_not_found(client, container, alice, bob):
    placed = await post_order(client, alice)
    # bob with his own account asking for alice's order
    assert (await client.get(f"{V3}/orders/{placed['orderId']}", headers=bob.headers)).status_code == 404
    assert (await client.delete(f"{V3}/orders/{placed['orderId']}", headers=bob.headers)).status_code == 404
    # bob naming alice's account
    as_alice = {**bob.headers, "accountId": alice.account_id}
    for call in (
        client.post(f"{V3}/orders", headers=as_alice, json=order()),
        client.get(f"{V3}/orders/{placed['orderId']}", headers=as_alice),
        client.post(f"{V3}/order-list", headers=as_alice, json={}),
        client.post(
            f"{V3}/order-data",
            headers=as_alice,
            json={
                "order": {
                    "marketId": "BTCUSDT",
                    "orderType": "Limit",
                    "side": "Buy",
                    "requestedPrice": "1",
                    "requestedBaseAmount": "1",
                }
            },
        ),
    ):
        r = await call
        assert r.status_code == 404, r.text
    assert await balance(container, alice.account_id, USDT, "locked") == D("50.05")


async def test_the_account_header_is_required_and_so_is_trading_ui(client, container, alice):
    no_header = {k: v for k, v in alice.headers.items() if k != "accountId"}
    r = await client.post(f"{V3}/orders", headers=no_header, json=order())
    assert r.status_code == 400 and r.json()["details"]["field"] == "accountId"
    assert (await client.post(f"{V3}/orders", json=order())).status_code == 401
    clerk = await trader(client, container, "clerk", roles=(Role.ACCOUNTANT,))
    assert (await client.post(f"{V3}/orders", headers=clerk.headers, json=order())).status_code == 403


async def test_malformed_bodies_are_400(client, alice):
    for body in (
        order(requestedAmount=0.5),
        order(orderType="Iceberg"),
        order(orderType="Stop"),
        order(side="Long"),
        order(requestedAmount="-1"),
        order(requestedPrice=None),
        order(orderType="Market"),
        order(timeInForce="Forever"),
        order(cancellationDate="tomorrow"),
        {"marketId": "BTCUSDT"},
    ):
        r = await client.post(f"{V3}/orders", headers=alice.headers, json=body)
        assert r.status_code == 400, (body, r.text)
    r = await client.post(f"{V3}/orders", headers=alice.headers, json=order(marketId="NOPE"))
    assert r.status_code == 404


async def test_client_order_id_is_idempotent_over_http(client, alice):
    first = await post_order(client, alice, clientOrderId="c-1")
    again = await post_order(client, alice, clientOrderId="c-1")
    assert again["orderId"] == first["orderId"] and again["clientOrderId"] == "c-1"
    r = await client.post(
        f"{V3}/orders", headers=alice.headers, json=order(clientOrderId="c-1", requestedAmount="1")
    )
    assert r.status_code == 409 and r.json()["code"] == "idempotency_conflict"


async def test_order_list_filters_and_pages_newest_first(client, clock, alice):
    ids = []
    for _ in range(5):
        ids.append((await post_order(client, alice, requestedAmount="0.1"))["orderId"])
        clock.advance(seconds=1)
    await client.delete(f"{V3}/orders/{ids[1]}", headers=alice.headers)
    r = await client.post(f"{V3}/order-list", headers=alice.headers, json={"limit": 2})
    assert r.status_code == 200 and set(r.json()) == {"data"}
    page = r.json()["data"]
    assert [o["orderId"] for o in page] == [ids[4], ids[3]] and set(page[0]) == ORDER_KEYS
    r = await client.post(f"{V3}/order-list", headers=alice.headers, json={"limit": 2, "lastOrderId": ids[3]})
    assert [o["orderId"] for o in r.json()["data"]] == [ids[2], ids[1]]
    r = await client.post(f"{V3}/order-list", headers=alice.headers, json={"orderStatus": ["Cancelled"]})
    assert [o["orderId"] for o in r.json()["data"]] == [ids[1]]
    r = await client.post(f"{V3}/order-list", headers=alice.headers, json={"orderStatus": ["Placed"]})
    assert [o["orderId"] for o in r.json()["data"]] == [ids[4], ids[3], ids[2], ids[0]]
    first = (await client.get(f"{V3}/orders/{ids[2]}", headers=alice.headers)).json()["order"]["createdAt"]
    r = await client.post(f"{V3}/order-list", headers=alice.headers, json={"createdAtFrom": first})
    assert [o["orderId"] for o in r.json()["data"]] == [ids[4], ids[3], ids[2]]
    r = await client.post(f"{V3}/order-list", headers=alice.headers, json={"createdAtTo": first})
    assert [o["orderId"] for o in r.json()["data"]] == [ids[2], ids[1], ids[0]]
    bad = await client.post(f"{V3}/order-list", headers=alice.headers, json={"orderStatus": ["Sleeping"]})
    assert bad.status_code == 400


async def test_order_data_previews_cost_and_commission(client, alice, bob):
    r = await client.post(
        f"{V3}/order-data",
        headers=alice.headers,
        json={
            "order": {
                "marketId": "BTCUSDT",
                "orderType": "Limit",
                "side": "Buy",
                "requestedPrice": "100.00",
                "requestedBaseAmount": "0.5",
            }
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "order": {"baseAmount": "0.5", "quoteAmount": "50", "commissionAmount": "0.05", "total": "50.05"}
    }
    r = await client.post(
        f"{V3}/order-data",
        headers=alice.headers,
        json={
            "order": {
                "marketId": "BTCUSDT",
                "orderType": "Limit",
                "side": "Sell",
                "requestedPrice": "30.00",
                "requestedQuoteAmount": "10",
            }
        },
    )
    # 0.1 % of 9.999, rounded up to USDT's 6 decimals
    assert r.json() == {
        "order": {
            "baseAmount": "0.3333",
            "quoteAmount": "9.999",
            "commissionAmount": "0.009999",
            "total": "9.989001",
        }
    }
    market = {"marketId": "BTCUSDT", "orderType": "Market", "side": "Buy", "requestedBaseAmount": "1"}
    r = await client.post(f"{V3}/order-data", headers=alice.headers, json={"order": market})
    assert r.status_code == 400  # no last price yet
    await post_order(client, bob, side="Sell", requestedAmount="0.1", requestedPrice="120.00")
    await post_order(client, alice, requestedAmount="0.1", requestedPrice="120.00")
    r = await client.post(f"{V3}/order-data", headers=alice.headers, json={"order": market})
    assert r.json() == {
        "order": {"baseAmount": "1", "quoteAmount": "120", "commissionAmount": "0.12", "total": "120.12"}
    }


async def test_stop_orders_wait_and_can_be_cancelled(client, container, alice, bob):
    r = await client.post(
        f"{V3}/stop-orders",
        headers=bob.headers,
        json={
            "order": {
                "marketId": "BTCUSDT",
                "orderType": "Market",
                "side": "Sell",
                "activationPrice": "90.00",
                "requestedAmount": "0.5",
                "timeInForce": "Gtc",
            }
        },
    )
    assert r.status_code == 200, r.text
    stop = r.json()["order"]
    assert set(stop) == {
        "marketId",
        "marketDisplayName",
        "orderId",
        "orderType",
        "side",
        "activationPrice",
        "requestedAmount",
        "timeInForce",
        "status",
        "createdAt",
        "updatedAt",
        "cancellationDate",
    }
    assert (stop["orderType"], stop["status"], stop["activationPrice"]) == (
        "Market",
        "WaitingForActivation",
        "90",
    )
    as_order = (await client.get(f"{V3}/orders/{stop['orderId']}", headers=bob.headers)).json()["order"]
    assert (as_order["orderType"], as_order["status"]) == ("Stop", "Started")
    r = await client.post(
        f"{V3}/stop-orders",
        headers=alice.headers,
        json={
            "order": {
                "marketId": "BTCUSDT",
                "orderType": "Limit",
                "side": "Buy",
                "activationPrice": "110.00",
                "requestedPrice": "111.00",
                "requestedAmount": "0.5",
            }
        },
    )
    limit_stop = r.json()["order"]
    assert limit_stop["requestedPrice"] == "111" and limit_stop["status"] == "WaitingForActivation"
    # a plain order is not a stop order
    plain = await post_order(client, alice, requestedAmount="0.1", requestedPrice="50.00")
    assert (
        await client.delete(f"{V3}/stop-orders/{plain['orderId']}", headers=alice.headers)
    ).status_code == 404
    r = await client.delete(f"{V3}/stop-orders/{stop['orderId']}", headers=bob.headers)
    assert r.status_code == 200 and r.json()["order"]["status"] == "Cancelled"
    again = await client.delete(f"{V3}/stop-orders/{stop['orderId']}", headers=bob.headers)
    assert again.status_code == 400
    missing_activation = await client.post(
        f"{V3}/stop-orders",
        headers=alice.headers,
        json={
            "order": {"marketId": "BTCUSDT", "orderType": "Market", "side": "Buy", "requestedAmount": "0.5"}
        },
    )
    assert missing_activation.status_code == 400
