"""Positions over HTTP: the list (extension), close and its calculation, triggers and trigger-data,
the executions lists and closed positions, and that none of it shows another trader's position."""

from __future__ import annotations

import pytest

from tests.api.derivatives.support import ISO, JSON_V4, V4, make_trader, open_position
from tests.integration.derivatives.support import D, Money, make_cfd, money, set_price

POSITION_EXECUTION_KEYS = {
    "positionId",
    "orderId",
    "side",
    "reason",
    "createdAt",
    "executionId",
    "baseAmount",
    "executionPrice",
    "commissionAmountInRAT",
    "commissions",
}
CLOSED_KEYS = {
    "marketId",
    "marketFullName",
    "marketDisplayName",
    "marketType",
    "orderId",
    "orderType",
    "timeInForce",
    "side",
    "positionCloseLotAmount",
    "reason",
    "realizedPnlInRAT",
    "closedAt",
    "positionId",
    "openPrice",
    "closePrice",
    "positionPriceInRAT",
    "rateToRAT",
    "openedAt",
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


async def _position(client, who, position_id):
    r = await client.get(f"{V4}/positions/{position_id}", headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()["position"]


async def test_a_position_shows_its_price_pnl_margin_and_liquidation(client, container, market):
    carol = await make_trader(client, container, "carol", usdt="30")
    position_id = await open_position(client, carol)
    await set_price(container, market, "104", "106")  # mark 100 + (105 - 100) / 3 = 101.67

    r = await client.get(f"{V4}/positions", headers=carol.headers)
    assert r.status_code == 200, r.text
    (p,) = r.json()["positions"]
    assert {k: p[k] for k in p if k not in ("openedAt", "updatedAt")} == {
        "positionId": position_id,
        "marketId": "BTCCFD",
        "marketType": "Cfd",
        "marketDisplayName": "BTC CFD",
        "marketFullName": "Bitcoin CFD",
        "status": "Open",
        "side": "Long",
        "lotAmount": "2",
        "baseAmount": "2",
        "entryPrice": "100",
        "markPrice": "101.67",
        "leverage": 10,
        "marginType": "Cross",
        "settlementAssetId": "USDT",
        "margin": "20",
        "marginInRAT": "20",
        # 20 * stopOutLevel 0.5: the equity the position needs to stay open
        "maintenanceMargin": "10",
        "unrealizedPnl": "3.34",
        "unrealizedPnlInRAT": "3.34",
        "realizedPnl": "0",
        "realizedPnlInRAT": "0",
        # Equity 29.8 + 2 * (P - 100) reaches half the used margin (10) at P = 90.1.
        "liquidationPrice": "90.1",
        # (29.8 + 3.34) / 20
        "marginLevel": "1.657",
        "takeProfit": None,
        "takeProfitLevels": [],
        "stopLoss": None,
        "closedAt": None,
    }
    assert ISO.match(p["openedAt"])


async def test_an_isolated_position_has_its_own_liquidation_price_and_level(client, alice):
    position_id = await open_position(client, alice, marginType="Isolated")
    p = await _position(client, alice, position_id)
    # entry - margin * (1 - stopOut) / base = 100 - 20 * 0.5 / 2
    assert (p["marginType"], p["liquidationPrice"], p["marginLevel"]) == ("Isolated", "95", "1")


async def test_close_part_then_all_and_the_closed_list(client, container, alice):
    position_id = await open_position(client, alice)
    await set_price(container, "BTCCFD", "110", "110")

    r = await client.post(
        f"{V4}/positions/{position_id}/close",
        headers={**alice.headers, **JSON_V4},
        json={"closePositionLotAmount": "1"},
    )
    assert r.status_code == 200, r.text
    first_close = r.json()
    assert first_close["positionId"] == position_id
    assert (await _position(client, alice, position_id))["lotAmount"] == "1"
    r = await client.post(f"{V4}/positions/{position_id}/close", headers=alice.headers, json={})
    assert r.status_code == 200, r.text
    second_close = r.json()
    p = await _position(client, alice, position_id)
    assert (p["status"], p["lotAmount"], p["realizedPnl"], p["margin"]) == ("Closed", "0", "20", "0")
    assert ISO.match(p["closedAt"])
    # Profit 20; fees 0.2 (open) + 0.11 + 0.11 (each close of one lot at 110).
    assert await money(container, alice.account_id) == Money(D("1019.58"), D(0))
    r = await client.post(f"{V4}/positions/{position_id}/close", headers=alice.headers, json={})
    assert r.status_code == 400 and r.json()["code"] == "position_closed"

    r = await client.post(f"{V4}/orders/closed-positions", headers=alice.headers, json={"limit": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["isExceeded"] is True
    (row,) = body["data"]
    assert set(row) == CLOSED_KEYS
    assert {k: row[k] for k in CLOSED_KEYS - {"closedAt", "openedAt"}} == {
        "marketId": "BTCCFD",
        "marketFullName": "Bitcoin CFD",
        "marketDisplayName": "BTC CFD",
        "marketType": "Cfd",
        "orderId": second_close["orderId"],
        "orderType": "Market",
        "timeInForce": "Gtc",
        "side": "Sell",
        "positionCloseLotAmount": "1",
        "reason": "Trader",
        "realizedPnlInRAT": "10",
        "positionId": position_id,
        "openPrice": "100",
        "closePrice": "110",
        "positionPriceInRAT": "110",
        "rateToRAT": "1",
    }
    r = await client.post(
        f"{V4}/orders/closed-positions",
        headers=alice.headers,
        json={
            "createdAtFrom": "2000-01-01T00:00:00.000Z",
            "createdAtTo": "2999-01-01T00:00:00.000Z",
            "limit": 5,
            "lastOrderId": second_close["orderId"],
        },
    )
    assert [x["orderId"] for x in r.json()["data"]] == [first_close["orderId"]]
    assert r.json()["isExceeded"] is False

    r = await client.get(f"{V4}/positions", headers=alice.headers)
    assert r.json()["positions"] == []
    r = await client.get(f"{V4}/positions", headers=alice.headers, params={"status": "All"})
    assert [x["positionId"] for x in r.json()["positions"]] == [position_id]


async def test_close_calculation_answers_both_forms(client, alice):
    position_id = await open_position(client, alice)
    path = f"{V4}/positions/{position_id}/close/calculation"
    r = await client.post(path, headers=alice.headers, json={"closePositionLotAmountInPercent": "50"})
    assert r.status_code == 200, r.text
    assert r.json() == {"closePositionLotAmount": "1", "closePositionLotAmountInPercent": "50"}
    r = await client.post(path, headers=alice.headers, json={"closePositionLotAmount": "0.5"})
    assert r.json() == {"closePositionLotAmount": "0.5", "closePositionLotAmountInPercent": "25"}
    r = await client.post(path, headers=alice.headers, json={"closePositionLotAmountInPercent": "33.333"})
    assert r.json() == {"closePositionLotAmount": "0.66", "closePositionLotAmountInPercent": "33"}
    for body in (
        {},
        {"closePositionLotAmount": "1", "closePositionLotAmountInPercent": "50"},
        {"closePositionLotAmount": "3"},
        {"closePositionLotAmount": "0.005"},
        {"closePositionLotAmountInPercent": "150"},
    ):
        r = await client.post(path, headers=alice.headers, json=body)
        assert r.status_code == 400, body


async def test_triggers_replace_and_validate_against_the_mark(client, alice):
    position_id = await open_position(client, alice)
    path = f"{V4}/positions/{position_id}/triggers"
    r = await client.put(
        path,
        headers={**alice.headers, **JSON_V4},
        json={"takeProfit": {"price": "110"}, "stopLoss": {"price": "95", "isTrailing": False}},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"positionId": position_id}
    p = await _position(client, alice, position_id)
    assert p["takeProfit"] == {"price": "110"}
    assert p["takeProfitLevels"] == [{"price": "110", "lotAmount": "2", "isDone": False}]
    assert p["stopLoss"] == {"price": "95", "isTrailing": False, "limitPrice": None, "rate": None}

    # A trailing stop given as a price: its distance to the mark (2%) is the callback rate.
    r = await client.put(path, headers=alice.headers, json={"stopLoss": {"price": "98", "isTrailing": True}})
    assert r.status_code == 200, r.text
    p = await _position(client, alice, position_id)
    assert (p["takeProfit"], p["stopLoss"]) == (
        None,
        {"price": "98", "isTrailing": True, "limitPrice": None, "rate": "0.02"},
    )

    # A ladder and a limit stop (extensions).
    r = await client.put(
        path,
        headers=alice.headers,
        json={
            "takeProfit": {
                "levels": [{"price": "105", "lotAmount": "1"}, {"price": "110", "lotAmount": "1"}]
            },
            "stopLoss": {"price": "95", "limitPrice": "94.5"},
        },
    )
    assert r.status_code == 200, r.text
    p = await _position(client, alice, position_id)
    assert [lv["price"] for lv in p["takeProfitLevels"]] == ["105", "110"]
    assert p["stopLoss"]["limitPrice"] == "94.5"

    for body, field in (
        ({"takeProfit": {"price": "99"}}, "takeProfit"),
        ({"stopLoss": {"price": "101"}}, "stopLoss"),
        ({"stopLoss": {"price": "80", "isTrailing": True}}, "stopLoss"),  # a 20% trail is beyond 5%
        ({"takeProfit": {"levels": [{"price": "105", "lotAmount": "3"}]}}, "takeProfit"),
        ({"stopLoss": {"isTrailing": False}}, "stopLoss.price"),
    ):
        r = await client.put(path, headers=alice.headers, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["details"]["field"] == field, (body, r.json())

    r = await client.put(path, headers=alice.headers, json={})
    assert r.status_code == 200
    p = await _position(client, alice, position_id)
    assert (p["takeProfit"], p["takeProfitLevels"], p["stopLoss"]) == (None, [], None)


async def test_trigger_data_converts_both_ways(client, alice):
    position_id = await open_position(client, alice)
    r = await client.post(
        f"{V4}/positions/{position_id}/trigger-data",
        headers={**alice.headers, **JSON_V4},
        json={
            "takeProfit": {"triggerType": "Rate", "triggerSize": "0.1"},
            "stopLoss": {"triggerType": "Pnl", "triggerSize": "10", "isTrailing": False},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "takeProfit": {"price": "110", "rate": "0.1", "points": 1000, "pnl": "20"},
        "stopLoss": {"price": "95", "rate": "0.05", "points": 500, "pnl": "-10"},
    }
    r = await client.post(
        f"{V4}/positions/{position_id}/trigger-data",
        headers=alice.headers,
        json={"takeProfit": {"triggerType": "Points", "triggerSize": "250"}},
    )
    assert r.json() == {
        "takeProfit": {"price": "102.5", "rate": "0.025", "points": 250, "pnl": "5"},
        "stopLoss": None,
    }
    r = await client.post(
        f"{V4}/positions/{position_id}/trigger-data",
        headers=alice.headers,
        json={"takeProfit": {"triggerType": "Percent", "triggerSize": "1"}},
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "takeProfit.triggerType"


async def test_position_executions_lists(client, container, alice):
    position_id = await open_position(client, alice)
    await set_price(container, "BTCCFD", "101", "101")
    await client.post(f"{V4}/positions/{position_id}/close", headers=alice.headers, json={})
    other = await open_position(client, alice, side="Sell", requestedLotAmount="1")

    r = await client.post(
        f"{V4}/positions/executions/list",
        headers={**alice.headers, **JSON_V4},
        json={"positionIds": [position_id], "limit": 10},
    )
    assert r.status_code == 200, r.text
    opened, closed = r.json()["executions"]
    assert set(opened) == POSITION_EXECUTION_KEYS
    assert (
        opened["side"],
        opened["baseAmount"],
        opened["executionPrice"],
        opened["commissionAmountInRAT"],
    ) == (
        "Buy",
        "2",
        "100",
        "0.2",
    )
    assert (closed["side"], closed["executionPrice"], closed["commissions"]) == (
        "Sell",
        "101",
        [{"assetId": "USDT", "amount": "0.202"}],
    )
    r = await client.post(f"{V4}/positions/executions/list", headers=alice.headers, json={})
    assert [e["positionId"] for e in r.json()["executions"]] == [position_id, position_id, other]

    r = await client.post(
        f"{V4}/positions/{position_id}/executions/list", headers=alice.headers, json={"limit": 1, "offset": 1}
    )
    assert r.status_code == 200, r.text
    assert [e["executionId"] for e in r.json()["executions"]] == [closed["executionId"]]


async def test_another_traders_position_is_not_found(client, alice, bob):
    position_id = await open_position(client, alice)
    for method, path, body in (
        ("GET", f"{V4}/positions/{position_id}", None),
        ("POST", f"{V4}/positions/{position_id}/close", {}),
        ("POST", f"{V4}/positions/{position_id}/close/calculation", {"closePositionLotAmount": "1"}),
        ("PUT", f"{V4}/positions/{position_id}/triggers", {"takeProfit": {"price": "110"}}),
        (
            "POST",
            f"{V4}/positions/{position_id}/trigger-data",
            {"takeProfit": {"triggerType": "Price", "triggerSize": "110"}},
        ),
        ("POST", f"{V4}/positions/{position_id}/executions/list", {}),
        ("GET", f"{V4}/positions/nonsense", None),
    ):
        r = await client.request(method, path, headers=bob.headers, json=body)
        assert r.status_code == 404, (path, r.text)
    r = await client.post(
        f"{V4}/positions/executions/list", headers=bob.headers, json={"positionIds": [position_id]}
    )
    assert r.json()["executions"] == []
    assert (await client.get(f"{V4}/positions", headers=bob.headers)).json()["positions"] == []
    # Alice's position is untouched.
    assert (await _position(client, alice, position_id))["lotAmount"] == "2"
