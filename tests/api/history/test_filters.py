"""History-server filters, sorts and pages through HTTP and SQL: every entryType, refusals (400),
both sort directions, limit/offset/isExceeded, period filters of the aggregates."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.api.history.support import MINUTE, iso, world

D = Decimal


@pytest.fixture
async def w(client, container, clock):
    return await world(client, container, clock)


def f(field, entry, value):
    return {"entryType": entry, "field": field, "value": value}


async def rows(client, w, path, *filters, **extra):
    r = await client.post(f"/api{path}", headers=w.staff, json={"filters": list(filters), **extra})
    assert r.status_code == 200, r.text
    return json.loads(r.text, parse_float=Decimal)["data"]


async def refused(client, w, path, payload):
    r = await client.post(f"/api{path}", headers=w.staff, json=payload)
    assert r.status_code == 400, r.text
    return r.json()


async def test_equals_and_not_equals(client, w):
    eth = await rows(client, w, "/trades", f("marketId", "Equals", "ETHBTC"))
    assert len(eth) == 2 and {t["marketId"] for t in eth} == {"ETHBTC"}
    sells = await rows(client, w, "/trades", f("side", "NotEquals", "Buy"))
    assert len(sells) == 3 and {t["side"] for t in sells} == {"Sell"}
    mine = await rows(client, w, "/trades", f("userId", "Equals", str(w.bob.uid)))
    assert {t["accountId"] for t in mine} == {w.bob.account_id} and len(mine) == 3


async def test_null_and_not_null(client, w):
    market_orders = await rows(client, w, "/orders", f("limitPrice", "Equals", None))
    assert [o["orderId"] for o in market_orders] == [w.orders["b1"]]
    priced = await rows(client, w, "/orders", f("limitPrice", "NotEquals", None))
    assert len(priced) == 5
    # NotEquals keeps rows whose value is null (SQL's plain <> would drop them).
    not_100 = await rows(client, w, "/orders", f("limitPrice", "NotEquals", "100"))
    assert w.orders["b1"] in {o["orderId"] for o in not_100} and w.orders["a1"] not in {
        o["orderId"] for o in not_100
    }


async def test_contains_is_case_insensitive_and_takes_wildcards_literally(client, w):
    alice = await rows(client, w, "/trades", f("userEmail", "Contains", "ALICE@"))
    assert len(alice) == 3 and {t["userEmail"] for t in alice} == {"alice@example.com"}
    assert await rows(client, w, "/trades", f("userEmail", "Contains", "%")) == []
    assert await rows(client, w, "/trades", f("userEmail", "Contains", "_")) == []
    assert len(await rows(client, w, "/transfers", f("deduplicationId", "Contains", "-"))) == 3


async def test_comparisons(client, w):
    big = await rows(client, w, "/trades", f("baseAmount", "GreaterOrEqual", "0.2"))
    assert sorted(t["baseAmount"] for t in big) == [D("0.2"), D("0.2"), 1, 1]
    cheap = await rows(
        client, w, "/trades", f("executionPrice", "LessThan", 110), f("marketId", "Equals", "BTCUSDT")
    )
    assert {t["executionPrice"] for t in cheap} == {100} and len(cheap) == 2
    # A JSON number is read exactly: 0.05 is 0.05, not the float 0.05000000000000000277.
    raw = b'{"filters": [{"entryType": "LessOrEqual", "field": "quoteAmount", "value": 0.05}]}'
    r = await client.post("/api/trades", headers={**w.staff, "content-type": "application/json"}, content=raw)
    eth = json.loads(r.text, parse_float=Decimal)["data"]
    assert len(eth) == 2 and {t["quoteAmount"] for t in eth} == {D("0.05")}
    raw = b'{"filters": [{"entryType": "Equals", "field": "quoteAmount", "value": 0.05}]}'
    r = await client.post("/api/trades", headers={**w.staff, "content-type": "application/json"}, content=raw)
    assert len(r.json()["data"]) == 2
    later = await rows(client, w, "/trades", f("createdAt", "GreaterThan", iso(w.t0 + 2 * MINUTE)))
    assert {t["marketId"] for t in later} == {"ETHBTC"}
    ids = sorted(int(t["executionId"]) for t in await rows(client, w, "/trades"))
    assert len(await rows(client, w, "/trades", f("executionId", "GreaterThan", str(ids[3])))) == 2


async def test_in_and_between(client, w):
    wanted = [w.orders["a1"], w.orders["b3"]]
    assert sorted(
        o["orderId"] for o in await rows(client, w, "/orders", f("orderId", "In", wanted))
    ) == sorted(wanted)
    done = await rows(client, w, "/orders", f("orderStatus", "In", ["Filled", "Cancelled"]))
    assert len(done) == 5
    window = [iso(w.t0 + MINUTE), iso(w.t0 + 2 * MINUTE)]  # inclusive at both ends
    btc = await rows(client, w, "/trades", f("createdAt", "Between", window))
    assert len(btc) == 4 and {t["marketId"] for t in btc} == {"BTCUSDT"}
    amounts = await rows(client, w, "/trades", f("baseAmount", "Between", ["0.1", "0.2"]))
    assert len(amounts) == 4


async def test_filters_are_anded(client, w):
    got = await rows(
        client,
        w,
        "/trades",
        f("marketId", "Equals", "BTCUSDT"),
        f("side", "Equals", "Sell"),
        f("executionPrice", "GreaterThan", 100),
    )
    assert [(t["accountId"], t["executionPrice"]) for t in got] == [(w.bob.account_id, 110)]


async def test_aggregates_filter_on_their_columns_and_their_period(client, w):
    # The period: only the executions before the ETHBTC trade are summed.
    before = [f("createdAt", "LessThan", iso(w.t0 + 3 * MINUTE))]
    assets = await rows(client, w, "/commissions/assets", *before)
    assert [(a["assetId"], a["totalAssetCommission"]) for a in assets] == [("USDT", D("0.064"))]
    users = await rows(client, w, "/commissions/users", *before)
    assert {u["totalTradedVolumeInRAT"] for u in users} == {32}
    by_market = await rows(client, w, "/commissions/users-assets", f("marketId", "Equals", "ETHBTC"))
    assert {(r["assetId"], r["totalAssetAmount"]) for r in by_market} == {("BTC", D("0.05"))}
    # Columns of the rows, aggregated or not.
    rich = await rows(client, w, "/commissions/users", f("totalBalanceInRAT", "GreaterThan", 1000))
    assert [u["userId"] for u in rich] == [str(w.alice.uid)]
    fees = await rows(
        client, w, "/commissions/accounts-assets", f("totalAssetCommission", "GreaterOrEqual", "0.032")
    )
    assert {r["assetId"] for r in fees} == {"USDT"} and len(fees) == 2
    held = await rows(client, w, "/accounts/balances", f("lockedAssetAmount", "GreaterThan", 0))
    assert [(b["accountId"], b["assetId"]) for b in held] == [(w.alice.account_id, "USDT")]
    markups = await rows(client, w, "/commissions/assets", f("assetId", "In", ["BTC"]))
    assert [a["assetId"] for a in markups] == ["BTC"]
    r = await client.post(
        "/api/v1/markups/revenue",
        headers=w.staff,
        json={"filters": [f("createdAt", "GreaterOrEqual", iso(w.t0 + 2 * MINUTE))]},
    )
    assert [(m["marketId"], m["tradesCount"]) for m in r.json()] == [("BTCUSDT", 1), ("ETHBTC", 1)]
    total = await client.post(
        "/api/open-orders", headers=w.staff, json={"filters": [f("side", "Equals", "Sell")]}
    )
    assert total.json() == {"total": 0, "data": []}


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/trades", {"filters": [f("price", "Equals", "1")]}, "filters[0].field"),
        (
            "/orders",
            {"filters": [f("marketId", "Equals", "X"), f("nope", "Equals", "1")]},
            "filters[1].field",
        ),
        ("/transfers", {"filters": [f("orderId", "Equals", "1")]}, "filters[0].field"),
        (
            "/users/balances",
            {"filters": [f("createdAt", "LessThan", "2025-01-01T00:00:00Z")]},
            "filters[0].field",
        ),
        ("/active-accounts", {"filters": [f("side", "Equals", "Buy")]}, "filters[0].field"),
        ("/trades", {"filters": [f("marketId", "Unspecified", "X")]}, "filters[0].entryType"),
        ("/trades", {"filters": [f("marketId", "Like", "X")]}, "filters[0].entryType"),
        ("/trades", {"filters": [f("baseAmount", "Contains", "1")]}, "filters[0].entryType"),
        ("/trades", {"filters": [f("baseAmount", "Equals", "one")]}, "filters[0].value"),
        ("/trades", {"filters": [f("baseAmount", "Between", ["1"])]}, "filters[0].value"),
        ("/trades", {"filters": [f("side", "In", [])]}, "filters[0].value"),
        ("/trades", {"sort": {"field": "price"}}, "sort.field"),
        ("/trades", {"sort": {"field": "createdAt", "direction": "Down"}}, "sort.direction"),
        ("/trades", {"limit": 0}, "limit"),
        ("/trades", {"limit": 1001}, "limit"),
        ("/trades", {"offset": -1}, "offset"),
        ("/trades", {"filter": []}, "filter"),
        ("/billing/billing-info", {"limit": 5}, "limit"),
    ],
)
async def test_bad_queries_are_400_and_name_the_field(client, w, path, payload, field):
    body = await refused(client, w, path, payload)
    assert body["details"]["field"] == field


async def test_a_body_that_is_not_json_or_not_an_object_is_400(client, w):
    r = await client.post(
        "/api/trades", headers={**w.staff, "content-type": "application/json"}, content=b"{"
    )
    assert r.status_code == 400
    r = await client.post(
        "/api/trades", headers={**w.staff, "content-type": "application/json"}, content=b"[]"
    )
    assert r.status_code == 400
    # No body at all is "no filters".
    assert (await client.post("/api/trades", headers=w.staff)).status_code == 200


async def test_sort_both_directions_with_the_key_breaking_ties(client, w):
    asc = await rows(client, w, "/trades", sort={"field": "executionPrice", "direction": "Asc"})
    desc = await rows(client, w, "/trades", sort={"column": "executionPrice", "direction": "Desc"})
    key = [(t["executionPrice"], int(t["executionId"])) for t in asc]
    assert key == sorted(key)
    assert [t["executionId"] for t in desc] == [t["executionId"] for t in reversed(asc)]
    by_user = await rows(
        client, w, "/users/balances", sort={"field": "totalAssetAmountInRAT", "direction": "Desc"}
    )
    values = [b["totalAssetAmountInRAT"] for b in by_user]
    assert values == sorted(values, reverse=True) and values[0] == D("967.968")
    # Nullable columns sort their nulls last in both directions.
    for direction in ("Asc", "Desc"):
        got = await rows(client, w, "/orders", sort={"field": "limitPrice", "direction": direction})
        assert got[-1]["limitPrice"] is None


async def test_pages_with_limit_offset_and_is_exceeded(client, w):
    everything = await rows(client, w, "/orders")
    pages, offset = [], 0
    while True:
        r = await client.post("/api/orders", headers=w.staff, json={"limit": 4, "offset": offset})
        page = r.json()
        pages += page["data"]
        if not page["limit"]["isExceeded"]:
            assert len(page["data"]) == 2
            break
        assert len(page["data"]) == 4
        offset += 4
    assert [o["orderId"] for o in pages] == [o["orderId"] for o in everything]
    exact = await client.post("/api/orders", headers=w.staff, json={"limit": 6})
    assert exact.json()["limit"] == {"isExceeded": False}
    over = await client.post("/api/users/balances", headers=w.staff, json={"limit": 5})
    assert len(over.json()["data"]) == 5 and over.json()["limit"] == {"isExceeded": True}
    page2 = await client.post("/api/v1/markups/revenue", headers=w.staff, json={"limit": 1, "offset": 1})
    assert [m["marketId"] for m in page2.json()] == ["ETHBTC"]
    open_page = await client.post("/api/open-orders", headers=w.staff, json={"limit": 1, "offset": 1})
    assert open_page.json() == {"total": 1, "data": []}
