"""Every history-server endpoint answers the spec's shape, with the values of a known history
(tests/api/history/support.py) as exact JSON numbers."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from tests.api.history.support import MINUTE, iso, world

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
D = Decimal


def body(response):
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


@pytest.fixture
async def w(client, container, clock):
    return await world(client, container, clock)


async def post(client, w, path, payload=None):
    return body(
        await client.post(f"/api{path}", headers=w.staff, json=payload if payload is not None else {})
    )


ORDER_KEYS = [
    "orderId",
    "userId",
    "userEmail",
    "accountId",
    "accountName",
    "marketId",
    "marketDisplayName",
    "side",
    "orderType",
    "timeInForce",
    "orderStatus",
    "hedge",
    "baseAmount",
    "quoteAmount",
    "avgExecutionPrice",
    "limitPrice",
    "filledAmount",
    "remainingAmount",
    "commissionAmount",
    "commissionAssetId",
    "commissionAssetName",
    "commissionInRAT",
    "createdAt",
    "updatedAt",
]
OPEN_ORDER_KEYS = [
    "orderId",
    "userId",
    "userEmail",
    "accountId",
    "accountName",
    "marketId",
    "marketDisplayName",
    "side",
    "orderType",
    "timeInForce",
    "orderStatus",
    "hedge",
    "baseAmount",
    "quoteAmount",
    "filledAmount",
    "remainingAmount",
    "avgExecutionPrice",
    "limitPrice",
    "commissionAmount",
    "commissionAssetId",
    "commissionAssetName",
    "commissionInRAT",
    "createdAt",
    "updatedAt",
]
TRADE_KEYS = [
    "userId",
    "userEmail",
    "accountId",
    "accountName",
    "orderId",
    "externalOrderId",
    "lpOrderId",
    "executionId",
    "lpExecutionId",
    "marketId",
    "marketDisplayName",
    "side",
    "orderType",
    "timeInForce",
    "baseAmount",
    "quoteAmount",
    "executionPrice",
    "commissionAmount",
    "commissionAssetId",
    "commissionAssetName",
    "commissionInRAT",
    "createdAt",
]
OWN_ORDER_KEYS = [
    "marketId",
    "orderId",
    "timeInForce",
    "status",
    "source",
    "side",
    "orderType",
    "requestedAmount",
    "remainingAmount",
    "requestedPrice",
    "executionPrice",
    "hedge",
    "createdAt",
    "updatedAt",
    "cancellationDate",
    "commission",
]


async def test_active_accounts_counts_accounts_that_traded(client, w):
    assert await post(client, w, "/active-accounts") == {"total": 2}
    assert await post(client, w, "/active-accounts", {"filters": []}) == {"total": 2}
    # carol and the staff user have accounts but no executions.
    one = {"filters": [{"entryType": "Equals", "field": "userId", "value": str(w.bob.uid)}]}
    assert await post(client, w, "/active-accounts", one) == {"total": 1}
    later = {"filters": [{"entryType": "GreaterThan", "field": "createdAt", "value": "2999-01-01T00:00:00Z"}]}
    assert await post(client, w, "/active-accounts", later) == {"total": 0}


async def test_a_users_total_balance_in_rat(client, w):
    r = body(await client.get(f"/api/users/{w.alice.uid}/balances", headers=w.staff))
    # BTC 0.24995 * 110 + ETH 1 * 5.5 + USDT 967.968
    assert r == {"totalBalanceInRAT": D("1000.9625")}
    assert body(await client.get(f"/api/users/{w.carol.uid}/balances", headers=w.staff)) == {
        "totalBalanceInRAT": 0
    }
    assert (await client.get("/api/users/999999/balances", headers=w.staff)).status_code == 404
    assert (await client.get("/api/users/alice/balances", headers=w.staff)).status_code == 400


async def test_user_balances_per_user_and_asset(client, w):
    r = await post(client, w, "/users/balances")
    assert set(r) == {"data", "limit"} and r["limit"] == {"isExceeded": False}
    rows = {(x["userId"], x["assetId"]): x for x in r["data"]}
    assert set(rows) == {(str(u), a) for u in (w.alice.uid, w.bob.uid) for a in ("BTC", "ETH", "USDT")}
    usdt = rows[(str(w.alice.uid), "USDT")]
    assert list(usdt) == [
        "userId",
        "assetId",
        "assetName",
        "totalAssetAmount",
        "availableAssetAmount",
        "lockedAssetAmount",
        "rateToRootAsset",
        "totalAssetAmountInRAT",
        "availableAssetAmountInRAT",
        "lockedAssetAmountInRAT",
    ]
    # alice's resting buy holds 0.4 * 100 plus its largest fee 0.04.
    assert usdt == {
        "userId": str(w.alice.uid),
        "assetId": "USDT",
        "assetName": "USDT",
        "totalAssetAmount": D("967.968"),
        "availableAssetAmount": D("927.928"),
        "lockedAssetAmount": D("40.04"),
        "rateToRootAsset": 1,
        "totalAssetAmountInRAT": D("967.968"),
        "availableAssetAmountInRAT": D("927.928"),
        "lockedAssetAmountInRAT": D("40.04"),
    }
    btc = rows[(str(w.bob.uid), "BTC")]
    assert (btc["totalAssetAmount"], btc["rateToRootAsset"], btc["totalAssetAmountInRAT"]) == (
        D("1.74995"),
        110,
        D("192.4945"),
    )


async def test_account_balances_per_account_and_asset(client, w):
    r = await post(client, w, "/accounts/balances")
    row = next(x for x in r["data"] if x["accountId"] == w.bob.account_id and x["assetId"] == "ETH")
    assert row == {
        "userId": str(w.bob.uid),
        "accountId": w.bob.account_id,
        "accountName": "Main",
        "assetId": "ETH",
        "assetName": "ETH",
        "totalAssetAmount": 9,
        "availableAssetAmount": 9,
        "lockedAssetAmount": 0,
        "rateToRootAsset": D("5.5"),
        "totalAssetAmountInRAT": D("49.5"),
        "availableAssetAmountInRAT": D("49.5"),
        "lockedAssetAmountInRAT": 0,
    }


async def test_billing_info(client, w):
    assert await post(client, w, "/billing/billing-info") == {
        "activeAccounts": 2,
        "rootAsset": "USDT",
        # 0.1 * 100 + 0.2 * 110 in BTCUSDT, and 0.05 BTC (5.5 USDT) in ETHBTC: each trade once.
        "tradedVolumeSpotInRAT": D("37.5"),
        "tradedVolumeCfdInRAT": 0,
        "tradedVolumeTotalInRAT": D("37.5"),
    }
    market = {"filters": [{"entryType": "Equals", "field": "marketId", "value": "ETHBTC"}]}
    assert (await post(client, w, "/billing/billing-info", market))["tradedVolumeSpotInRAT"] == D("5.5")


async def test_commissions_per_account_and_asset(client, w):
    r = await post(client, w, "/commissions/accounts-assets")
    assert r["limit"] == {"isExceeded": False}
    rows = {(x["accountId"], x["assetId"]): x for x in r["data"]}
    assert rows[(w.alice.account_id, "USDT")] == {
        "userId": str(w.alice.uid),
        "accountId": w.alice.account_id,
        "accountName": "Main",
        "assetId": "USDT",
        "assetName": "USDT",
        "totalAssetAmount": 32,
        "totalAssetAmountInRAT": 32,
        "totalAssetCommission": D("0.032"),
        "totalAssetCommissionInRAT": D("0.032"),
    }
    assert rows[(w.bob.account_id, "BTC")] == {
        "userId": str(w.bob.uid),
        "accountId": w.bob.account_id,
        "accountName": "Main",
        "assetId": "BTC",
        "assetName": "BTC",
        "totalAssetAmount": D("0.05"),
        "totalAssetAmountInRAT": D("5.5"),
        "totalAssetCommission": D("0.00005"),
        "totalAssetCommissionInRAT": D("0.0055"),
    }
    assert len(rows) == 4


async def test_commissions_per_user_and_asset(client, w):
    r = await post(client, w, "/commissions/users-assets")
    assert list(r["data"][0]) == [
        "userId",
        "assetId",
        "assetName",
        "totalAssetAmount",
        "totalAssetAmountInRAT",
        "totalAssetCommission",
        "totalAssetCommissionInRAT",
    ]
    assert [(x["userId"], x["assetId"], x["totalAssetCommission"]) for x in r["data"]] == [
        (str(w.alice.uid), "BTC", D("0.00005")),
        (str(w.alice.uid), "USDT", D("0.032")),
        (str(w.bob.uid), "BTC", D("0.00005")),
        (str(w.bob.uid), "USDT", D("0.032")),
    ]


async def test_commissions_per_user(client, w):
    r = await post(client, w, "/commissions/users")
    assert r["data"] == [
        {
            "userId": str(w.alice.uid),
            "userEmail": "alice@example.com",
            "status": "Active",
            "totalBalanceInRAT": D("1000.9625"),
            "totalCommissionInRAT": D("0.0375"),
            "totalTradedVolumeInRAT": D("37.5"),
        },
        {
            "userId": str(w.bob.uid),
            "userEmail": "bob@example.com",
            "status": "Active",
            "totalBalanceInRAT": D("273.9625"),
            "totalCommissionInRAT": D("0.0375"),
            "totalTradedVolumeInRAT": D("37.5"),
        },
    ]


async def test_commissions_per_account(client, w):
    r = await post(client, w, "/commissions/accounts", {"sort": {"field": "userId", "direction": "Desc"}})
    assert list(r["data"][0]) == [
        "userId",
        "userEmail",
        "accountId",
        "accountName",
        "totalBalanceInRAT",
        "totalCommissionInRAT",
        "totalTradedVolumeInRAT",
    ]
    assert [(x["accountId"], x["totalCommissionInRAT"]) for x in r["data"]] == [
        (w.bob.account_id, D("0.0375")),
        (w.alice.account_id, D("0.0375")),
    ]


async def test_commissions_per_asset(client, w):
    r = await post(client, w, "/commissions/assets")
    assert [x["assetId"] for x in r["data"]] == ["BTC", "USDT"]
    btc = r["data"][0]
    assert list(btc) == [
        "assetId",
        "assetName",
        "assetAmountScale",
        "totalAssetAmount",
        "totalAssetAmountInRAT",
        "totalAssetCommission",
        "totalAssetCommissionInRAT",
        "createdAt",
    ]
    assert {k: v for k, v in btc.items() if k != "createdAt"} == {
        "assetId": "BTC",
        "assetName": "BTC",
        "assetAmountScale": 8,
        "totalAssetAmount": D("0.1"),
        "totalAssetAmountInRAT": 11,
        "totalAssetCommission": D("0.0001"),
        "totalAssetCommissionInRAT": D("0.011"),
    }
    assert ISO.match(btc["createdAt"])


async def test_markup_revenue_is_a_bare_array_per_market(client, w):
    r = await post(client, w, "/v1/markups/revenue")
    assert r == [
        {
            "marketId": "BTCUSDT",
            "displayName": "BTC/USDT",
            "tradesCount": 2,
            "tradedVolume": 32,
            "tradedVolumeInRat": 32,
            "markupProfitInRat": 0,
            "commissionProfitInRat": D("0.064"),
        },
        {
            "marketId": "ETHBTC",
            "displayName": "ETH/BTC",
            "tradesCount": 1,
            "tradedVolume": D("0.05"),
            "tradedVolumeInRat": D("5.5"),
            "markupProfitInRat": 0,
            "commissionProfitInRat": D("0.011"),
        },
    ]


async def test_open_orders_have_a_total(client, w):
    r = await post(client, w, "/open-orders")
    assert list(r) == ["total", "data"] and r["total"] == 1
    (o,) = r["data"]
    assert list(o) == OPEN_ORDER_KEYS
    assert {k: v for k, v in o.items() if k not in ("createdAt", "updatedAt")} == {
        "orderId": w.orders["a1"],
        "userId": str(w.alice.uid),
        "userEmail": "alice@example.com",
        "accountId": w.alice.account_id,
        "accountName": "Main",
        "marketId": "BTCUSDT",
        "marketDisplayName": "BTC/USDT",
        "side": "Buy",
        "orderType": "Limit",
        "timeInForce": "Gtc",
        "orderStatus": "PartiallyFilled",
        "hedge": 0,
        "baseAmount": D("0.5"),
        "quoteAmount": 10,
        "filledAmount": D("0.1"),
        "remainingAmount": D("0.4"),
        "avgExecutionPrice": 100,
        "limitPrice": 100,
        "commissionAmount": D("0.01"),
        "commissionAssetId": "USDT",
        "commissionAssetName": "USDT",
        "commissionInRAT": D("0.01"),
    }
    assert ISO.match(o["createdAt"]) and ISO.match(o["updatedAt"])


async def test_orders_newest_first_with_a_limit_object(client, w):
    r = await post(client, w, "/orders")
    assert list(r) == ["data", "limit"] and r["limit"] == {"isExceeded": False}
    assert [o["orderId"] for o in r["data"]] == [w.orders[k] for k in ("a3", "b3", "a2", "b2", "b1", "a1")]
    assert all(list(o) == ORDER_KEYS for o in r["data"])
    market_sell = next(o for o in r["data"] if o["orderId"] == w.orders["b1"])
    assert (market_sell["orderType"], market_sell["limitPrice"], market_sell["avgExecutionPrice"]) == (
        "Market",
        None,
        100,
    )
    eth_buy = r["data"][0]
    assert (eth_buy["commissionAssetId"], eth_buy["commissionAmount"], eth_buy["commissionInRAT"]) == (
        "BTC",
        D("0.00005"),
        D("0.0055"),
    )


async def test_external_orders_are_empty_without_hedged_fills(client, w):
    # No market of this fixture is hedged (tests/api/venues has the rows and filters).
    assert await post(client, w, "/external-orders", {"limit": 5}) == {
        "data": [],
        "limit": {"isExceeded": False},
    }
    # Their fields are still checked.
    known = {"filters": [{"entryType": "Equals", "field": "lpOrderId", "value": "x"}]}
    assert await post(client, w, "/external-orders", known) == {"data": [], "limit": {"isExceeded": False}}
    bad = {"filters": [{"entryType": "Equals", "field": "venue", "value": "x"}]}
    assert (await client.post("/api/external-orders", headers=w.staff, json=bad)).status_code == 400


async def test_trades_are_executions_with_their_order_terms(client, w):
    r = await post(client, w, "/trades")
    assert r["limit"] == {"isExceeded": False} and len(r["data"]) == 6
    assert all(list(t) == TRADE_KEYS for t in r["data"])
    first_fill = r["data"][-1]
    assert {k: v for k, v in first_fill.items() if k not in ("executionId", "createdAt")} == {
        "userId": str(w.alice.uid),
        "userEmail": "alice@example.com",
        "accountId": w.alice.account_id,
        "accountName": "Main",
        "orderId": w.orders["a1"],
        "externalOrderId": None,
        "lpOrderId": None,
        "lpExecutionId": None,
        "marketId": "BTCUSDT",
        "marketDisplayName": "BTC/USDT",
        "side": "Buy",
        "orderType": "Limit",
        "timeInForce": "Gtc",
        "baseAmount": D("0.1"),
        "quoteAmount": 10,
        "executionPrice": 100,
        "commissionAmount": D("0.01"),
        "commissionAssetId": "USDT",
        "commissionAssetName": "USDT",
        "commissionInRAT": D("0.01"),
    }
    assert first_fill["executionId"].isdigit() and ISO.match(first_fill["createdAt"])


async def test_no_trade_is_unsolicited_yet(client, w):
    assert await post(client, w, "/unsolicited-trades") == {"data": [], "limit": {"isExceeded": False}}
    # The shape has no commission fields: a filter on one is an unknown field.
    fee = {"filters": [{"entryType": "Equals", "field": "commissionAmount", "value": "1"}]}
    assert (await client.post("/api/unsolicited-trades", headers=w.staff, json=fee)).status_code == 400


async def test_transfers(client, w):
    r = await post(client, w, "/transfers")
    assert r["limit"] == {"isExceeded": False}
    rows = {x["deduplicationId"]: x for x in r["data"]}
    assert set(rows) == {"a-usdt", "b-btc", "b-eth"}
    eth = rows["b-eth"]
    assert list(eth) == [
        "userId",
        "userEmail",
        "accountId",
        "accountName",
        "transferId",
        "assetId",
        "assetName",
        "type",
        "status",
        "assetAmount",
        "createdAt",
        "rateToRootAsset",
        "assetAmountInRAT",
        "deduplicationId",
    ]
    assert {k: v for k, v in eth.items() if k not in ("transferId", "createdAt")} == {
        "userId": str(w.bob.uid),
        "userEmail": "bob@example.com",
        "accountId": w.bob.account_id,
        "accountName": "Main",
        "assetId": "ETH",
        "assetName": "ETH",
        "type": "Deposit",
        "status": "Completed",
        "assetAmount": 10,
        "rateToRootAsset": D("5.5"),
        "assetAmountInRAT": 55,
        "deduplicationId": "b-eth",
    }


async def test_history_orders_is_the_callers_own_order(client, w):
    r = body(await client.get(f"/api/history/orders/{w.orders['a1']}", headers=w.alice.headers))
    (o,) = r
    assert list(o) == OWN_ORDER_KEYS
    assert {k: v for k, v in o.items() if k not in ("createdAt", "updatedAt")} == {
        "marketId": "BTCUSDT",
        "orderId": w.orders["a1"],
        "timeInForce": "Gtc",
        "status": "PartiallyFilled",
        "source": "Manual",
        "side": "Buy",
        "orderType": "Limit",
        "requestedAmount": D("0.5"),
        "remainingAmount": D("0.4"),
        "requestedPrice": 100,
        "executionPrice": 100,
        "hedge": 0,
        "cancellationDate": None,
        "commission": D("0.01"),
    }


async def test_history_orders_list_newest_first_and_paged_by_last_order_id(client, w):
    r = body(await client.post("/api/history/orders/list", headers=w.alice.headers, json={}))
    assert [o["orderId"] for o in r] == [w.orders["a3"], w.orders["a2"], w.orders["a1"]]
    assert all(list(o) == OWN_ORDER_KEYS for o in r)
    page = body(await client.post("/api/history/orders/list", headers=w.alice.headers, json={"limit": 2}))
    rest = body(
        await client.post(
            "/api/history/orders/list", headers=w.alice.headers, json={"lastOrderId": page[-1]["orderId"]}
        )
    )
    assert [o["orderId"] for o in page + rest] == [o["orderId"] for o in r]
    filled = body(
        await client.post(
            "/api/history/orders/list", headers=w.alice.headers, json={"orderStatuses": ["PartiallyFilled"]}
        )
    )
    assert [o["orderId"] for o in filled] == [w.orders["a1"]]
    window = {"createdAtFrom": iso(w.t0 + 2 * MINUTE), "createdAtTo": iso(w.t0 + 2 * MINUTE)}
    by_time = body(await client.post("/api/history/orders/list", headers=w.alice.headers, json=window))
    assert [o["orderId"] for o in by_time] == [w.orders["a2"]]
    mine = body(
        await client.post(
            "/api/history/orders/list", headers={**w.alice.headers, "accountId": w.alice.account_id}, json={}
        )
    )
    assert mine == r
