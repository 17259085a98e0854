"""GET /marketdata/api/v4/instruments/{marketSymbol}/history, and candles kept incrementally."""

import asyncio
import contextlib
from datetime import timedelta
from decimal import Decimal

import pytest

from bourse.api.app import create_app
from bourse.domain.identity import Role
from bourse.domain.marketdata import Interval
from bourse.service.marketdata import MarketDataService
from tests.api.marketdata.support import (
    T0,
    eventually,
    insert_trades,
    make_market,
    stored_candles,
    trade_event,
)
from tests.conftest import bearer, login

HISTORY = "/marketdata/api/v4/instruments/{}/history"
SPEC_KEYS = {"instrument", "start", "end", "low", "high", "open", "close"}


@pytest.fixture
async def trader(client, container, clock):
    clock.current = T0 + timedelta(hours=1)
    await container.identity.create_user("alice", "alice-pass-1")
    return bearer(await login(client, "alice", "alice-pass-1"))


async def test_history_has_the_spec_shape_and_candles_from_the_trades_table(client, container, trader):
    market = await make_market(container)
    await insert_trades(
        container,
        market,
        [
            ("100.5", "1", T0 + timedelta(seconds=1)),
            ("102", "0.5", T0 + timedelta(seconds=30)),
            ("99.75", "2", T0 + timedelta(seconds=59, microseconds=999000)),
            ("101", "1", T0 + timedelta(minutes=1)),
        ],
    )
    r = await client.get(
        HISTORY.format(market),
        headers=trader,
        params={"interval": "1m", "from": "2025-09-09T12:00:00Z", "to": "2025-09-09T12:59:00Z"},
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert all(item.keys() >= SPEC_KEYS for item in data)
    assert [{k: item[k] for k in SPEC_KEYS} for item in data] == [
        {
            "instrument": "BTCUSDT",
            "start": "2025-09-09T12:00:00.000Z",
            "end": "2025-09-09T12:01:00.000Z",
            "open": "100.5",
            "high": "102",
            "low": "99.75",
            "close": "99.75",
        },
        {
            "instrument": "BTCUSDT",
            "start": "2025-09-09T12:01:00.000Z",
            "end": "2025-09-09T12:02:00.000Z",
            "open": "101",
            "high": "101",
            "low": "101",
            "close": "101",
        },
    ]
    assert (data[0]["baseVolume"], data[0]["quoteVolume"], data[0]["trades"]) == ("3.5", "351", 3)
    # The same trades as one hourly candle; from/to as epoch milliseconds.
    ms = int(T0.timestamp() * 1000)
    r = await client.get(
        HISTORY.format(market),
        headers=trader,
        params={"interval": "1h", "from": str(ms), "to": str(ms + 3_599_999)},
    )
    assert [(c["open"], c["high"], c["low"], c["close"], c["baseVolume"]) for c in r.json()["data"]] == [
        ("100.5", "102", "99.75", "101", "4.5")
    ]


async def test_every_interval_has_its_own_periods(client, container, trader):
    market = await make_market(container)
    # Sunday 2025-08-31 23:59 and Monday 2025-09-01 00:00: one trade each side of a week and a month.
    sunday = T0.replace(month=8, day=31, hour=23, minute=59)
    monday = T0.replace(day=1, hour=0, minute=0)
    await insert_trades(container, market, [("10", "1", sunday), ("20", "1", monday)])
    around = {"from": "2025-08-31T23:00:00Z", "to": "2025-09-01T00:10:00Z"}
    expected = {"1m": 2, "5m": 2, "15m": 2, "1h": 2, "4h": 2, "1d": 2, "1w": 2, "1M": 2}
    for interval, count in expected.items():
        r = await client.get(HISTORY.format(market), headers=trader, params={"interval": interval, **around})
        assert r.status_code == 200, (interval, r.text)
        starts = [c["start"] for c in r.json()["data"]]
        assert len(starts) == count, (interval, starts)
    r = await client.get(HISTORY.format(market), headers=trader, params={"interval": "1w", **around})
    assert [(c["start"], c["end"]) for c in r.json()["data"]] == [
        ("2025-08-25T00:00:00.000Z", "2025-09-01T00:00:00.000Z"),
        ("2025-09-01T00:00:00.000Z", "2025-09-08T00:00:00.000Z"),
    ]
    r = await client.get(HISTORY.format(market), headers=trader, params={"interval": "1M", **around})
    assert [(c["start"], c["close"]) for c in r.json()["data"]] == [
        ("2025-08-01T00:00:00.000Z", "10"),
        ("2025-09-01T00:00:00.000Z", "20"),
    ]
    # A range that holds only the Monday returns only its candle.
    r = await client.get(
        HISTORY.format(market),
        headers=trader,
        params={"interval": "1d", "from": "2025-09-01T00:00:00Z", "to": "2025-09-01T23:00:00Z"},
    )
    assert [c["close"] for c in r.json()["data"]] == ["20"]


async def test_history_refuses_bad_parameters(client, container, trader):
    market = await make_market(container)
    url = HISTORY.format(market)
    cases = [
        ({"interval": "2m"}, "interval"),
        ({"interval": "1H"}, "interval"),
        ({"interval": "1m", "from": "yesterday"}, "from"),
        ({"interval": "1m", "to": "2025-13-40"}, "to"),
        ({"interval": "1m", "from": "2025-09-09T13:00:00Z", "to": "2025-09-09T12:00:00Z"}, "from"),
        # 1001 minutes: more than one response may hold.
        ({"interval": "1m", "from": "2025-09-09T00:00:00Z", "to": "2025-09-09T16:40:00Z"}, "from"),
    ]
    for params, field in cases:
        r = await client.get(url, headers=trader, params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["details"]["field"] == field
    ok = await client.get(
        url,
        headers=trader,
        params={"interval": "1m", "from": "2025-09-09T00:00:00Z", "to": "2025-09-09T16:39:00Z"},
    )
    assert ok.status_code == 200 and ok.json() == {"data": []}
    missing = await client.get(HISTORY.format("NOPE"), headers=trader, params={"interval": "1m"})
    assert missing.status_code == 404
    assert (await client.get(url, params={"interval": "1m"})).status_code == 401


async def test_history_needs_trading_ui(client, container, clock):
    await make_market(container)
    clock.current = T0
    await container.identity.create_user("acct", "acct-pass-12", roles=(Role.ACCOUNTANT,))
    headers = bearer(await login(client, "acct", "acct-pass-12"))
    assert (await client.get(HISTORY.format("BTCUSDT"), headers=headers)).status_code == 403


async def test_candles_follow_bus_events_and_are_persisted_without_a_query(client, container, trader):
    market = await make_market(container)
    service = container.marketdata
    service.flush_interval = 0.01
    consumer = asyncio.create_task(service.run())
    try:

        async def live() -> bool:
            return service.live

        await eventually(live)
        ids = await insert_trades(
            container, market, [("100", "1", T0), ("105", "2", T0 + timedelta(seconds=5))]
        )
        container.bus.publish(f"trades.{market}", trade_event(market, ids[0], "100", "1", T0))
        container.bus.publish(
            f"trades.{market}", trade_event(market, ids[1], "105", "2", T0 + timedelta(seconds=5))
        )

        async def flushed() -> bool:
            rows = await stored_candles(container, market, "1m")
            return bool(rows) and rows[-1]["trades"] == 2

        await eventually(flushed)
        for interval in ("1m", "5m", "15m", "1h", "4h", "1d", "1w", "1M"):
            [row] = await stored_candles(container, market, interval)
            assert (row["open"], row["high"], row["low"], row["close"]) == (100, 105, 100, 105)
            assert (row["base_volume"], row["quote_volume"], row["last_trade_id"]) == (3, 310, ids[1])
        # The same trade delivered again (e.g. after a reconnect) is not counted twice.
        container.bus.publish(
            f"trades.{market}", trade_event(market, ids[1], "105", "2", T0 + timedelta(seconds=5))
        )
        r = await client.get(HISTORY.format(market), headers=trader, params={"interval": "1h"})
        assert [(c["close"], c["baseVolume"], c["trades"]) for c in r.json()["data"]] == [("105", "3", 2)]
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer


async def test_a_restart_folds_only_the_trades_it_is_behind(container, clock):
    market = await make_market(container)
    clock.current = T0 + timedelta(hours=2)
    await insert_trades(container, market, [("100", "1", T0), ("110", "1", T0 + timedelta(minutes=10))])
    first = MarketDataService(container.uow, clock, container.bus)
    assert await first.catch_up() == 2
    # More trades while "down"; a new process starts with nothing in memory.
    await insert_trades(
        container, market, [("90", "2", T0 + timedelta(minutes=20)), ("95", "1", T0 + timedelta(hours=1))]
    )
    second = MarketDataService(container.uow, clock, container.bus)
    assert await second.catch_up() == 2
    assert await second.catch_up() == 0
    hours = await second.history(market, Interval.H1, None, None)
    assert [(c.open, c.high, c.low, c.close, c.base_volume, c.trades) for c in hours] == [
        (Decimal(100), Decimal(110), Decimal(90), Decimal(90), Decimal(4), 3),
        (Decimal(95), Decimal(95), Decimal(95), Decimal(95), Decimal(1), 1),
    ]
    [day] = await stored_candles(container, market, "1d")
    assert (day["trades"], day["base_volume"], day["close"]) == (4, 5, 95)


async def test_the_app_lifespan_runs_the_consumer_which_catches_up_first(container):
    market = await make_market(container)
    # Trades stored while no consumer ran: the start folds them before anything else.
    await insert_trades(container, market, [("100", "1", T0)])
    app = create_app(container, dispose_on_shutdown=False)
    service = container.marketdata
    async with app.router.lifespan_context(app):

        async def caught_up() -> bool:
            return service.live and bool(await stored_candles(container, market, "1d"))

        await eventually(caught_up)
    assert not service.live
    [day] = await stored_candles(container, market, "1d")
    assert (day["trades"], day["close"]) == (1, 100)


async def test_a_consumer_dropped_by_the_bus_catches_up_from_the_table(container):
    market = await make_market(container)
    service = container.marketdata
    service.flush_interval = 0.01
    service.bus_buffer = 2
    consumer = asyncio.create_task(service.run())
    try:

        async def live() -> bool:
            return service.live

        await eventually(live)
        trades = [(str(100 + n), "1", T0 + timedelta(seconds=n)) for n in range(10)]
        ids = await insert_trades(container, market, trades)
        for trade_id, (price, amount, at) in zip(ids, trades, strict=True):
            # All at once, no await in between: more than the consumer's queue holds.
            container.bus.publish(f"trades.{market}", trade_event(market, trade_id, price, amount, at))

        async def all_folded() -> bool:
            rows = await stored_candles(container, market, "1m")
            return bool(rows) and rows[0]["trades"] == 10

        await eventually(all_folded)
        [row] = await stored_candles(container, market, "1m")
        assert (row["open"], row["high"], row["low"], row["close"], row["base_volume"]) == (
            100,
            109,
            100,
            109,
            10,
        )
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
