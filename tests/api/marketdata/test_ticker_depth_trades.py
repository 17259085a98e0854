"""Ticker, tickers, depth and trades tape endpoints (extensions), and the events market data publishes."""

import asyncio
from datetime import timedelta

import pytest

from tests.api.marketdata.support import T0, book_event, insert_trades, make_market, trade_event
from tests.conftest import bearer, login

NOW = T0 + timedelta(hours=1)
BASE = "/marketdata/api/v4"


@pytest.fixture
async def trader(client, container, clock):
    clock.current = NOW
    await container.identity.create_user("alice", "alice-pass-1")
    return bearer(await login(client, "alice", "alice-pass-1"))


async def test_ticker_is_the_rolling_24_hours(client, container, trader):
    market = await make_market(container)
    await insert_trades(
        container,
        market,
        [
            ("50", "10", NOW - timedelta(hours=25)),  # outside the window, but it was the last price then
            ("100", "1", NOW - timedelta(hours=23, minutes=59)),
            ("120", "0.5", NOW - timedelta(hours=5)),
            ("90", "2", NOW - timedelta(hours=3)),
            ("97", "0.5", NOW - timedelta(minutes=10)),
        ],
    )
    r = await client.get(f"{BASE}/instruments/{market}/ticker", headers=trader)
    assert r.status_code == 200, r.text
    body = r.json()
    # quote = 100 + 60 + 180 + 48.5 = 388.5 over 4 base: vwap 97.125 -> 97.12 (2 price decimals, half-even).
    assert {
        k: body[k]
        for k in (
            "open",
            "high",
            "low",
            "close",
            "last",
            "vwap",
            "change",
            "percentage",
            "baseVolume",
            "quoteVolume",
            "trades",
        )
    } == {
        "open": "100",
        "high": "120",
        "low": "90",
        "close": "97",
        "last": "97",
        "vwap": "97.12",
        "change": "-3",
        "percentage": "-3",
        "baseVolume": "4",
        "quoteVolume": "388.5",
        "trades": 4,
    }
    assert body["instrument"] == market
    assert body["windowEnd"] == "2025-09-09T13:01:00.000Z"

    await make_market(container, base="ETH")
    r = await client.get(f"{BASE}/tickers", headers=trader)
    assert [(t["instrument"], t["last"]) for t in r.json()["data"]] == [("BTCUSDT", "97"), ("ETHUSDT", None)]
    assert (await client.get(f"{BASE}/instruments/NOPE/ticker", headers=trader)).status_code == 404
    assert (await client.get(f"{BASE}/tickers")).status_code == 401


async def test_depth_comes_from_the_latest_book_event(client, container, trader):
    market = await make_market(container)
    url = f"{BASE}/instruments/{market}/depth"
    r = await client.get(url, headers=trader)
    assert r.status_code == 200
    assert (r.json()["seq"], r.json()["bids"], r.json()["asks"]) == (0, [], [])
    container.marketdata.on_book(book_event(market, 7, [["100.50", "1.5"], ["100", "2"]], [["101", "0.25"]]))
    container.marketdata.on_book(book_event(market, 6, [["1", "1"]], []))  # older: ignored
    r = await client.get(url, headers=trader, params={"levels": 1})
    assert r.json() == {
        "instrument": market,
        "seq": 7,
        "bids": [["100.5", "1.5"]],
        "asks": [["101", "0.25"]],
        "timestamp": "2025-09-09T12:00:00.000Z",
    }
    assert len((await client.get(url, headers=trader)).json()["bids"]) == 2
    for bad in ("0", "51", "x"):
        assert (await client.get(url, headers=trader, params={"levels": bad})).status_code == 400
    assert (await client.get(f"{BASE}/instruments/NOPE/depth", headers=trader)).status_code == 404


async def test_trades_tape_is_newest_first(client, container, trader):
    market = await make_market(container)
    ids = await insert_trades(
        container, market, [("100", "1", T0), ("101", "2", T0 + timedelta(seconds=1))], taker_side="Sell"
    )
    url = f"{BASE}/instruments/{market}/trades"
    r = await client.get(url, headers=trader)
    assert r.json()["data"] == [
        {
            "tradeId": ids[1],
            "instrument": market,
            "price": "101",
            "amount": "2",
            "quoteAmount": "202",
            "takerSide": "Sell",
            "timestamp": "2025-09-09T12:00:01.000Z",
        },
        {
            "tradeId": ids[0],
            "instrument": market,
            "price": "100",
            "amount": "1",
            "quoteAmount": "100",
            "takerSide": "Sell",
            "timestamp": "2025-09-09T12:00:00.000Z",
        },
    ]
    assert [
        t["tradeId"] for t in (await client.get(url, headers=trader, params={"limit": 1})).json()["data"]
    ] == [ids[1]]
    for bad in ("0", "1001"):
        assert (await client.get(url, headers=trader, params={"limit": bad})).status_code == 400


async def test_a_flush_publishes_changed_candles_and_the_ticker(container, clock):
    market = await make_market(container)
    clock.current = NOW
    ticker = container.bus.subscribe(f"ticker.{market}")
    candles = container.bus.subscribe(f"candles.{market}")
    await container.marketdata.on_trade(trade_event(market, 1, "100", "2", NOW - timedelta(minutes=2)))
    await container.marketdata.on_trade(trade_event(market, 2, "104", "1", NOW - timedelta(seconds=1)))
    await container.marketdata.flush()
    _, event = await asyncio.wait_for(ticker.get(), 1)
    assert (event["instrument"], event["open"], event["close"], event["baseVolume"]) == (
        market,
        "100",
        "104",
        "3",
    )
    seen = {}
    for _ in range(9):  # two 1m candles and one of each other interval
        _, event = await asyncio.wait_for(candles.get(), 1)
        seen[(event["interval"], event["start"])] = (event["open"], event["close"], event["trades"])
    assert seen[("1m", "2025-09-09T12:58:00.000Z")] == ("100", "100", 1)
    assert seen[("1m", "2025-09-09T12:59:00.000Z")] == ("104", "104", 1)
    assert seen[("1h", "2025-09-09T12:00:00.000Z")] == ("100", "104", 2)
    assert seen[("1M", "2025-09-01T00:00:00.000Z")] == ("100", "104", 2)
