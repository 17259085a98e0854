"""CFD and perpetual orders over HTTP: order-data, orders, stop-orders, their rejections, the v4
order and execution lists and the v3 cancels for derivative orders."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bourse.domain.fees import CfdFee, FeeType
from bourse.domain.identity import Role
from bourse.domain.markets import iso_millis
from bourse.service.context import RequestMeta
from tests.api.derivatives.support import (
    CFD,
    FO,
    ISO,
    JSON_V4,
    PERP,
    V4,
    make_trader,
    netting_account,
    order_body,
    post_order,
)
from tests.integration.derivatives.support import make_cfd, money, set_price
from tests.integration.trading.support import ADMIN, D, make_market, update_market

V4_ORDER_KEYS = {
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
    "executionPrice",
    "createdAt",
    "updatedAt",
    "cancellationDate",
    "commissionAssetId",
    "commissionAmount",
    "leverage",
    "rejectDetails",
    "fillFactor",
    # extensions
    "positionId",
    "realizedPnlInRAT",
    "marginType",
}


@pytest.fixture
async def market(container):
    return await make_cfd(container, displayName="BTC CFD", fullName="Bitcoin CFD")


@pytest.fixture
async def alice(client, container, market):
    return await make_trader(client, container, "alice")


@pytest.fixture
async def bob(client, container, market):
    return await make_trader(client, container, "bob")


# --- order-data ---------------------------------------------------------------------------------


async def test_order_data_prices_margin_fee_level_and_triggers(client, alice):
    body = {
        "order": {
            "marketId": "BTCCFD",
            "orderType": "Limit",
            "side": "Buy",
            "requestedPrice": "100",
            "requestedLotAmount": "2",
            "leverage": 10,
            "takeProfit": {"triggerType": "Rate", "triggerSize": "0.05"},
            "stopLoss": {"triggerType": "Points", "triggerSize": "200", "isTrailing": False},
        }
    }
    r = await client.post(f"{CFD}/order-data", headers={**alice.headers, **JSON_V4}, json=body)
    assert r.status_code == 200, r.text
    # Notional 200, margin 20 (leverage 10), fee 0.2; level after = (1000 - 0.2) / 20 = 49.99.
    assert r.json() == {
        "order": {
            "requiredMarginInRAT": "20",
            "quoteAmount": "200",
            "commissionAmountInRAT": "0.2",
            "marginLevel": "49.99",
            "takeProfit": {"price": "105", "rate": "0.05", "points": 500, "pnl": "10"},
            "stopLoss": {"price": "98", "rate": "0.02", "points": 200, "pnl": "-4"},
        }
    }


async def test_order_data_of_a_market_order_uses_the_dealer_price_and_pnl_triggers(client, container, alice):
    await set_price(container, "BTCCFD", "100", "101", markup="0.01")
    body = {
        "order": {
            "marketId": "BTCCFD",
            "orderType": "Market",
            "side": "Sell",
            "requestedLotAmount": "1",
            "leverage": 5,
            "takeProfit": {"triggerType": "Pnl", "triggerSize": "9"},
            "stopLoss": {"triggerType": "Price", "triggerSize": "110", "isTrailing": False},
        }
    }
    r = await client.post(f"{CFD}/order-data", headers=alice.headers, json=body)
    assert r.status_code == 200, r.text
    o = r.json()["order"]
    # Sold at the bid 100 * 0.99 = 99; margin 19.8; fee 0.099.
    assert (o["quoteAmount"], o["requiredMarginInRAT"], o["commissionAmountInRAT"]) == ("99", "19.8", "0.099")
    assert o["takeProfit"] == {"price": "90", "rate": "0.09090909", "points": 900, "pnl": "9"}
    assert o["stopLoss"] == {"price": "110", "rate": "0.11111111", "points": 1100, "pnl": "-11"}


async def test_order_data_refuses_a_trigger_on_the_wrong_side(client, alice):
    body = order_body(orderType="Limit", requestedPrice="100")
    body["order"].pop("timeInForce")
    body["order"]["takeProfit"] = {"triggerType": "Price", "triggerSize": "95"}
    r = await client.post(f"{CFD}/order-data", headers=alice.headers, json=body)
    assert r.status_code == 400 and r.json()["details"]["field"] == "takeProfit"


# --- placing ------------------------------------------------------------------------------------


async def test_a_market_order_fills_at_once(client, container, alice):
    r = await client.post(f"{CFD}/orders", headers={**alice.headers, **JSON_V4}, json=order_body())
    assert r.status_code == 200, r.text
    placed = r.json()["order"]
    assert set(placed) == {"orderId", "status"} and placed["status"] == "Filled"
    assert (await money(container, alice.account_id)).margin == 20

    r = await client.get(f"{V4}/orders/{placed['orderId']}", headers=alice.headers)
    assert r.status_code == 200, r.text
    o = r.json()["order"]
    assert set(o) == V4_ORDER_KEYS
    assert {k: o[k] for k in V4_ORDER_KEYS - {"createdAt", "updatedAt", "positionId"}} == {
        "marketId": "BTCCFD",
        "marketType": "Cfd",
        "marketDisplayName": "BTC CFD",
        "marketFullName": "Bitcoin CFD",
        "orderId": placed["orderId"],
        "timeInForce": "Gtc",
        "status": "Filled",
        "source": "Manual",
        "reason": "Trader",
        "side": "Buy",
        "orderType": "Market",
        "requestedAmount": "2",
        "remainingAmount": "0",
        "executionPrice": "100",
        "cancellationDate": None,
        "commissionAssetId": "USDT",
        "commissionAmount": "0.2",
        "leverage": 10,
        "rejectDetails": None,
        "fillFactor": "1",
        "realizedPnlInRAT": "0",
        "marginType": "Cross",
    }
    assert o["positionId"] and ISO.match(o["createdAt"])


async def test_a_limit_order_rests_and_is_cancelled_through_v3(client, container, alice, bob):
    placed = await post_order(client, alice, orderType="Limit", requestedPrice="95")
    assert placed["status"] == "Placed"
    assert (await money(container, alice.account_id)).margin == 0  # nothing is held while it rests

    assert (
        await client.delete(f"{FO}/v3/orders/{placed['orderId']}", headers=bob.headers)
    ).status_code == 404
    r = await client.delete(f"{FO}/v3/orders/{placed['orderId']}", headers=alice.headers)
    assert r.status_code == 200, r.text
    o = r.json()["order"]
    assert (o["orderId"], o["status"], o["orderType"], o["requestedAmount"], o["requestedPrice"]) == (
        placed["orderId"],
        "Cancelled",
        "Limit",
        "2",
        "95",
    )
    again = await client.delete(f"{FO}/v3/orders/{placed['orderId']}", headers=alice.headers)
    assert again.status_code == 400


async def test_a_limit_order_the_dealer_price_reaches_fills_at_the_better_price(client, container, alice):
    placed = await post_order(client, alice, orderType="Limit", requestedPrice="105")
    assert placed["status"] == "Filled"
    r = await client.get(f"{V4}/orders/{placed['orderId']}", headers=alice.headers)
    assert r.json()["order"]["executionPrice"] == "100"


async def test_a_stop_order_waits_and_is_cancelled_through_v3(client, alice):
    r = await client.post(
        f"{CFD}/stop-orders",
        headers={**alice.headers, **JSON_V4},
        json={
            "order": {
                "marketId": "BTCCFD",
                "orderType": "Limit",
                "side": "Buy",
                "requestedPrice": "111",
                "activationPrice": "110",
                "requestedLotAmount": "1",
                "timeInForce": "Gtc",
                "leverage": 10,
                "takeProfit": {"price": "120"},
                "stopLoss": {"price": "105", "isTrailing": False},
            }
        },
    )
    assert r.status_code == 200, r.text
    placed = r.json()["order"]
    assert placed["status"] == "WaitingForActivation"
    r = await client.get(f"{V4}/orders/{placed['orderId']}", headers=alice.headers)
    o = r.json()["order"]
    assert (o["orderType"], o["status"], o["activationPrice"], o["stopStatus"]) == (
        "StopLimit",
        "Started",
        "110",
        "WaitingForActivation",
    )
    r = await client.delete(f"{FO}/v3/orders/{placed['orderId']}", headers=alice.headers)
    assert r.status_code == 200  # any live order can be cancelled through /orders
    r = await client.delete(f"{FO}/v3/stop-orders/{placed['orderId']}", headers=alice.headers)
    assert r.status_code == 400  # no longer waiting


async def test_a_waiting_stop_is_cancelled_through_the_stop_order_route(client, alice):
    placed = await post_order(client, alice, path=f"{CFD}/stop-orders", activationPrice="90", side="Sell")
    r = await client.delete(f"{FO}/v3/stop-orders/{placed['orderId']}", headers=alice.headers)
    assert r.status_code == 200, r.text
    o = r.json()["order"]
    assert (o["status"], o["orderType"], o["activationPrice"]) == ("Cancelled", "Market", "90")
    market = await post_order(client, alice)
    r = await client.delete(f"{FO}/v3/stop-orders/{market['orderId']}", headers=alice.headers)
    assert r.status_code == 404  # not a stop order


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"requestedLotAmount": "20", "leverage": 1}, "InsufficientMargin"),
        ({"leverage": 101}, "InvalidLeverage"),
        ({"leverage": 0}, "InvalidLeverage"),
        ({"requestedLotAmount": "0.015"}, "InvalidQuantity"),
        ({"requestedLotAmount": "101"}, "AmountAboveMaximum"),
        ({"orderType": "Limit", "requestedPrice": "99.999"}, "InvalidPrice"),
        ({"timeInForce": "Gtd"}, "InvalidExpiry"),
        ({"takeProfit": {"price": "95"}}, "InvalidTrigger"),
        ({"stopLoss": {"price": "101", "isTrailing": False}}, "InvalidTrigger"),
        ({"stopLoss": {"price": "90", "isTrailing": True, "rate": "0.2"}}, "InvalidTrigger"),
        ({"orderType": "Limit", "requestedPrice": "90", "timeInForce": "Fok"}, "FokNotFillable"),
    ],
)
async def test_orders_the_rules_refuse_are_rejected_with_the_reason(client, container, alice, fields, reason):
    placed = await post_order(client, alice, **fields)
    assert placed == {"orderId": placed["orderId"], "status": "Rejected", "rejectDetails": reason}
    assert await money(container, alice.account_id) == type(await money(container, alice.account_id))(1000, 0)
    r = await client.get(f"{V4}/orders/{placed['orderId']}", headers=alice.headers)
    assert r.json()["order"]["rejectDetails"] == reason


async def test_an_ioc_limit_that_does_not_cross_is_cancelled(client, alice):
    assert (await post_order(client, alice, orderType="Limit", requestedPrice="90", timeInForce="Ioc"))[
        "status"
    ] == "Cancelled"


async def test_below_the_minimum_lots_and_a_bad_stop_price(client, container, alice):
    await update_market(container, "BTCCFD", minLotAmount="1")
    assert (await post_order(client, alice, requestedLotAmount="0.5"))[
        "rejectDetails"
    ] == "AmountBelowMinimum"
    stop = await post_order(client, alice, path=f"{CFD}/stop-orders", activationPrice="90.001")
    assert stop["rejectDetails"] == "InvalidStopPrice"


async def test_market_status_session_and_price_rejections(client, container, alice):
    await update_market(container, "BTCCFD", status="Halted")
    assert (await post_order(client, alice))["rejectDetails"] == "MarketHalted"
    await update_market(container, "BTCCFD", status="CloseOnly")
    assert (await post_order(client, alice))["rejectDetails"] == "MarketCloseOnly"
    await update_market(
        container,
        "BTCCFD",
        status="Active",
        calendar={
            "timeZoneId": "UTC",
            "tradingSessions": [],
            "sessionOverrides": [{"date": container.clock.now().date().isoformat(), "timeIntervals": []}],
        },
    )
    assert (await post_order(client, alice))["rejectDetails"] == "SessionClosed"
    await update_market(container, "BTCCFD", calendar=None)
    # A source that has never given a price: nothing to deal at.
    await make_market(container)  # BTCUSDT spot, no trades
    await container.pricing.set_price_source(
        ADMIN,
        "BTCCFD",
        {"executionMode": "Dealer", "sourceKind": "Market", "sourceMarketId": "BTCUSDT"},
        RequestMeta(),
    )
    assert (await post_order(client, alice))["rejectDetails"] == "PriceUnavailable"


async def test_a_netting_account_may_reduce_on_a_close_only_market(client, container, alice):
    netting = await netting_account(container, alice)
    await post_order(client, netting, requestedLotAmount="2")
    await update_market(container, "BTCCFD", status="CloseOnly")
    assert (await post_order(client, netting, side="Sell", requestedLotAmount="3"))["rejectDetails"] == (
        "MarketCloseOnly"
    )
    assert (await post_order(client, netting, side="Sell", requestedLotAmount="1"))["status"] == "Filled"


async def test_wrong_markets_and_modes_are_400_or_404(client, container, alice):
    r = await client.post(f"{PERP}/orders", headers=alice.headers, json=order_body())
    assert r.status_code == 400 and r.json()["code"] == "market_type_mismatch"
    await make_market(container)  # BTCUSDT spot
    r = await client.post(f"{CFD}/orders", headers=alice.headers, json=order_body(marketId="BTCUSDT"))
    assert r.status_code == 400 and r.json()["code"] == "market_type_mismatch"
    r = await client.post(
        f"{FO}/v3/orders",
        headers=alice.headers,
        json={"order": {"marketId": "BTCCFD", "orderType": "Market", "side": "Buy", "requestedAmount": "1"}},
    )
    assert r.status_code == 400 and r.json()["code"] == "market_type_mismatch"
    r = await client.post(f"{CFD}/orders", headers=alice.headers, json=order_body(marketId="NOPE"))
    assert r.status_code == 404
    r = await client.post(f"{FO}/futures/v4/orders", headers=alice.headers, json=order_body())
    assert r.status_code == 404
    await container.pricing.set_price_source(ADMIN, "BTCCFD", {"executionMode": "OrderBook"}, RequestMeta())
    # An OrderBook market matches on our engine: a market buy before the book's first trade has no
    # price to hold its margin at; stop orders are not supported there yet.
    r = await client.post(f"{CFD}/orders", headers=alice.headers, json=order_body())
    assert r.status_code == 200 and r.json()["order"]["status"] == "Rejected", r.text
    r = await client.post(
        f"{CFD}/stop-orders", headers=alice.headers, json=order_body(activationPrice="90", side="Sell")
    )
    assert r.status_code == 400 and r.json()["code"] == "execution_mode_unsupported"


async def test_a_perpetual_market_trades_on_its_own_route(client, container, alice):
    await make_cfd(
        container, "BTCPERP", type="Perpetual", fundingStartTime="00:00:00", fundingIntervalInHours=8
    )
    placed = await post_order(client, alice, path=f"{PERP}/orders", marketId="BTCPERP")
    assert placed["status"] == "Filled"
    r = await client.post(f"{CFD}/orders", headers=alice.headers, json=order_body(marketId="BTCPERP"))
    assert r.json()["code"] == "market_type_mismatch"


async def _cfd_fee(container, asset, fee_type, size):
    async with container.uow() as uow:
        (rule,) = await uow.commissions.rules("default")
        await uow.commissions.update_rule(replace(rule, cfd=CfdFee(asset, FeeType(fee_type), D(size))))
        await uow.commit()


async def test_the_rules_cfd_fee_applies_and_another_asset_is_refused(client, container, alice):
    await _cfd_fee(container, "USDT", "Fixed", "0.5")
    placed = await post_order(client, alice)  # 2 lots at 0.5 per lot
    r = await client.get(f"{V4}/orders/{placed['orderId']}", headers=alice.headers)
    assert r.json()["order"]["commissionAmount"] == "1"
    await _cfd_fee(container, "BTC", "Fixed", "1")
    r = await client.post(f"{CFD}/orders", headers=alice.headers, json=order_body())
    assert r.status_code == 400 and r.json()["code"] == "fee_asset_mismatch"


async def test_malformed_bodies_are_400(client, alice):
    for fields, field in (
        ({"requestedLotAmount": 2}, "order.requestedLotAmount"),
        ({"orderType": "Stop"}, "orderType"),
        ({"side": "Long"}, "side"),
        ({"orderType": "Limit"}, "requestedPrice"),
        ({"requestedPrice": "100"}, "requestedPrice"),
        ({"marginType": "Partial"}, "marginType"),
        ({"timeInForce": "Day"}, "timeInForce"),
        ({"clientOrderId": ""}, "clientOrderId"),
    ):
        r = await client.post(f"{CFD}/orders", headers=alice.headers, json=order_body(**fields))
        assert r.status_code == 400, (fields, r.text)
        assert r.json()["details"]["field"] == field, (fields, r.json())


async def test_a_client_order_id_makes_a_placement_idempotent(client, container, alice):
    first = await post_order(client, alice, clientOrderId="c-1")
    again = await post_order(client, alice, clientOrderId="c-1")
    assert again == first
    assert (await money(container, alice.account_id)).margin == 20  # filled once
    r = await client.post(
        f"{CFD}/orders", headers=alice.headers, json=order_body(clientOrderId="c-1", side="Sell")
    )
    assert r.status_code == 409 and r.json()["code"] == "idempotency_conflict"


async def test_expiry_in_the_future_is_accepted_for_gtd(client, container, alice):
    later = iso_millis(container.clock.now() + timedelta(hours=1))
    placed = await post_order(
        client, alice, orderType="Limit", requestedPrice="90", timeInForce="Gtd", cancellationDate=later
    )
    assert placed["status"] == "Placed"


# --- the v4 lists -------------------------------------------------------------------------------


async def test_order_list_and_executions_merge_spot_and_derivative_orders(client, container, alice, bob):
    await make_market(container)  # BTCUSDT spot
    spot = await client.post(
        f"{FO}/v3/orders",
        headers=alice.headers,
        json={
            "order": {
                "marketId": "BTCUSDT",
                "orderType": "Limit",
                "side": "Buy",
                "requestedAmount": "0.1",
                "requestedPrice": "100.00",
            }
        },
    )
    assert spot.status_code == 200, spot.text
    spot_id = spot.json()["order"]["orderId"]
    derivative = await post_order(client, alice)

    r = await client.post(f"{V4}/order-list", headers={**alice.headers, **JSON_V4}, json={"limit": 10})
    assert r.status_code == 200, r.text
    rows = r.json()["data"]
    assert [o["orderId"] for o in rows] == [derivative["orderId"], spot_id]
    assert (rows[0]["marketType"], rows[0]["leverage"], rows[1]["marketType"], rows[1]["leverage"]) == (
        "Cfd",
        10,
        "Spot",
        1,
    )
    r = await client.post(f"{V4}/order-list", headers=alice.headers, json={"limit": 1})
    assert [o["orderId"] for o in r.json()["data"]] == [derivative["orderId"]]
    assert (await client.post(f"{V4}/order-list", headers=bob.headers, json={})).json()["data"] == []

    r = await client.post(f"{V4}/orders/executions/list", headers=alice.headers, json={"limit": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    (e,) = body["executions"]
    assert body["isExceeded"] is False
    assert {k: e[k] for k in e if k not in ("createdAt", "executionId", "positionId")} == {
        "orderId": derivative["orderId"],
        "side": "Buy",
        "reason": "Trader",
        "baseAmount": "2",
        "executionPrice": "100",
        "realizedPnlInRAT": "0",
        "commissionAmountInRAT": "0.2",
        "commissions": [{"assetId": "USDT", "amount": "0.2"}],
    }
    r = await client.post(
        f"{V4}/orders/{derivative['orderId']}/executions/list", headers=alice.headers, json={"limit": 1}
    )
    assert r.status_code == 200 and [x["executionId"] for x in r.json()["executions"]] == [e["executionId"]]
    r = await client.post(
        f"{V4}/orders/{derivative['orderId']}/executions/list",
        headers=alice.headers,
        json={"limit": 1, "lastExecutionId": e["executionId"]},
    )
    assert r.json() == {"executions": [], "isExceeded": False}


async def test_another_traders_order_is_not_found(client, alice, bob):
    placed = await post_order(client, alice)
    assert (await client.get(f"{V4}/orders/{placed['orderId']}", headers=bob.headers)).status_code == 404
    r = await client.post(f"{V4}/orders/{placed['orderId']}/executions/list", headers=bob.headers, json={})
    assert r.status_code == 404
    r = await client.post(
        f"{V4}/orders/executions/list", headers=bob.headers, json={"orderIds": [placed["orderId"]]}
    )
    assert r.json()["executions"] == []
    # An account of someone else in the header: 404 before anything else.
    r = await client.post(
        f"{CFD}/orders", headers={**bob.headers, "accountId": alice.account_id}, json=order_body()
    )
    assert r.status_code == 404


async def test_the_account_header_and_trading_ui_are_required(client, container, alice):
    no_header = {k: v for k, v in alice.headers.items() if k != "accountId"}
    r = await client.post(f"{CFD}/orders", headers=no_header, json=order_body())
    assert r.status_code == 400 and r.json()["details"]["field"] == "accountId"
    assert (await client.post(f"{CFD}/orders", json=order_body())).status_code == 401
    clerk = await make_trader(client, container, "clerk", roles=(Role.ACCOUNTANT,))
    for method, path, body in (
        ("POST", f"{CFD}/orders", order_body()),
        ("POST", f"{CFD}/order-data", order_body()),
        ("POST", f"{PERP}/stop-orders", order_body()),
        ("GET", f"{V4}/positions", None),
        ("GET", f"{V4}/account-margin-settings/assets", None),
        ("GET", f"{FO}/v3/margin-levels", None),
    ):
        r = await client.request(method, path, headers=clerk.headers, json=body)
        assert r.status_code == 403, (path, r.text)
