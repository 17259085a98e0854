"""Amounts in the root asset (RAT): at the latest trade price, directly or through one intermediate
market; null where an asset has no price (and left out of sums); exact JSON numbers to 18 decimals."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.api.history.support import deposit, ensure_asset, place_for, world

D = Decimal


@pytest.fixture
async def w(client, container, clock):
    return await world(client, container, clock)


def data(response):
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


async def balance_rows(client, w, who):
    r = await client.post(
        "/api/accounts/balances",
        headers=w.staff,
        json={"filters": [{"entryType": "Equals", "field": "accountId", "value": who.account_id}]},
    )
    return {b["assetId"]: b for b in data(r)["data"]}


async def test_rates_follow_the_latest_trade_directly_and_through_an_intermediate(
    client, container, clock, w
):
    rows = await balance_rows(client, w, w.bob)
    assert (
        rows["USDT"]["rateToRootAsset"],
        rows["BTC"]["rateToRootAsset"],
        rows["ETH"]["rateToRootAsset"],
    ) == (1, 110, D("5.5"))
    clock.advance(minutes=1)
    await place_for(container, w.bob, "BTCUSDT", "Sell", "0.1", "120")
    await place_for(container, w.alice, "BTCUSDT", "Buy", "0.1", "120")
    rows = await balance_rows(client, w, w.bob)
    # BTC directly (BTCUSDT at 120), ETH through BTC (ETHBTC 0.05 * 120).
    assert rows["BTC"]["rateToRootAsset"] == 120 and rows["ETH"]["rateToRootAsset"] == 6
    assert rows["ETH"]["totalAssetAmountInRAT"] == 54
    fills = data(
        await client.post(
            "/api/trades",
            headers=w.staff,
            json={"filters": [{"entryType": "Equals", "field": "commissionAssetId", "value": "BTC"}]},
        )
    )["data"]
    # The ETHBTC fees (0.00005 BTC) are converted at today's BTC price, not the price back then.
    assert {t["commissionInRAT"] for t in fills} == {D("0.006")}


async def test_an_asset_without_a_price_has_null_rates_and_is_left_out_of_sums(client, container, w):
    await ensure_asset(container, "TOK", 18)
    await deposit(container, w.carol, "TOK", "0.1", "c-tok-1")
    await deposit(container, w.carol, "TOK", "0.2", "c-tok-2")
    await deposit(container, w.carol, "TOK", "1.000000000000000001", "c-tok-3")
    await deposit(container, w.carol, "USDT", "5", "c-usdt")
    rows = await balance_rows(client, w, w.carol)
    assert rows["TOK"] == {
        "userId": str(w.carol.uid),
        "accountId": w.carol.account_id,
        "accountName": "Main",
        "assetId": "TOK",
        "assetName": "TOK",
        "totalAssetAmount": D("1.300000000000000001"),
        "availableAssetAmount": D("1.300000000000000001"),
        "lockedAssetAmount": 0,
        "rateToRootAsset": None,
        "totalAssetAmountInRAT": None,
        "availableAssetAmountInRAT": None,
        "lockedAssetAmountInRAT": None,
    }
    total = data(await client.get(f"/api/users/{w.carol.uid}/balances", headers=w.staff))
    assert total == {"totalBalanceInRAT": 5}
    transfers = data(
        await client.post(
            "/api/transfers",
            headers=w.staff,
            json={
                "filters": [{"entryType": "Equals", "field": "assetId", "value": "TOK"}],
                "sort": {"field": "assetAmount"},
            },
        )
    )["data"]
    assert [(t["assetAmount"], t["rateToRootAsset"], t["assetAmountInRAT"]) for t in transfers] == [
        (D("0.1"), None, None),
        (D("0.2"), None, None),
        (D("1.000000000000000001"), None, None),
    ]
    # Unpriced rows are matched by null, and a comparison never matches them.
    unpriced = data(
        await client.post(
            "/api/accounts/balances",
            headers=w.staff,
            json={"filters": [{"entryType": "Equals", "field": "rateToRootAsset", "value": None}]},
        )
    )["data"]
    assert {(b["accountId"], b["assetId"]) for b in unpriced} == {(w.carol.account_id, "TOK")}


async def test_numbers_are_written_exactly_never_through_a_float(client, container, w):
    await ensure_asset(container, "TOK", 18)
    await deposit(container, w.carol, "TOK", "0.1", "c-tok-1")
    await deposit(container, w.carol, "TOK", "0.2", "c-tok-2")
    await deposit(container, w.carol, "TOK", "12345678.123456789012345678", "c-tok-3")
    r = await client.post(
        "/api/users/balances",
        headers=w.staff,
        json={"filters": [{"entryType": "Equals", "field": "assetId", "value": "TOK"}]},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    # 0.1 + 0.2 as a float would be 0.30000000000000004; the raw text is the exact sum.
    assert '"totalAssetAmount":12345678.423456789012345678,' in r.text
    assert json.loads(r.text, parse_float=Decimal)["data"][0]["totalAssetAmount"] == D(
        "12345678.423456789012345678"
    )


async def test_front_office_total_balance_values_every_asset_in_rat(client, container, w):
    """GET /frontoffice/api/v3/accounts: the same conversion as the history server, over every
    balance (available and locked), not only the root asset."""
    rows = await balance_rows(client, w, w.bob)
    expected = sum((r["totalAssetAmountInRAT"] for r in rows.values()), D(0))
    r = await client.get("/frontoffice/api/v3/accounts", headers=w.bob.headers)
    assert r.status_code == 200, r.text
    [mine] = r.json()
    assert mine["accountId"] == w.bob.account_id
    assert D(mine["totalBalanceInRAT"]) == expected
    # bob holds BTC and ETH besides USDT: valued at 110 and 5.5, they are most of his total
    assert rows["BTC"]["totalAssetAmount"] > 0 and rows["ETH"]["totalAssetAmount"] > 0
    assert D(mine["totalBalanceInRAT"]) > rows["USDT"]["totalAssetAmountInRAT"]
