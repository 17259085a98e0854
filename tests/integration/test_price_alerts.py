"""Price alerts fired by trades: once per alert, from the real engine or the trades table, never twice
even when two consumers (two processes) see the same trades."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from bourse.api.app import create_app
from bourse.bootstrap import build
from bourse.domain.errors import PermissionDenied
from bourse.domain.identity import Principal, Role
from bourse.domain.notifications import Trade
from tests.api.marketdata.support import T0, eventually, insert_trades, trade_event
from tests.api.wsclient import WsClient
from tests.conftest import FAST_HASHER, login, make_settings
from tests.integration.trading.support import make_market, make_trader, place


async def _fired(container) -> list[dict]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id, fired_at, fired_trade_id, fired_price FROM price_alerts ORDER BY id")
        )
        return [dict(r._mapping) for r in rows]


async def _notes(container, uid) -> list[dict]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT * FROM trader_notifications WHERE uid = :u ORDER BY id"), {"u": uid}
        )
        return [dict(r._mapping) for r in rows]


async def test_real_trades_fire_each_alert_once_and_push_it(container, client, clock):
    clock.current = T0
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="100000")
    bob = await make_trader(container, "bob", btc="10")
    watcher = await make_trader(container, "carol")
    alerts = container.price_alerts
    up = await alerts.subscribe(watcher.principal, watcher.account_id, market, "105.00", "Gte")
    down = await alerts.subscribe(watcher.principal, watcher.account_id, market, "95", "Lte")
    never = await alerts.subscribe(watcher.principal, watcher.account_id, market, "500", "Gte")
    feed = container.bus.subscribe(f"notifications.{watcher.principal.uid}")
    consumer = asyncio.create_task(alerts.run())
    app = create_app(container, dispose_on_shutdown=False)
    try:
        async with WsClient(app) as ws:
            await ws.send_json({"op": "auth", "token": await login(client, "carol", "carol-pass-123")})
            assert (await ws.receive_json())["type"] == "authenticated"
            await ws.send_json({"op": "subscribe", "channel": "notifications", "id": 7})
            assert await ws.receive_json() == {"type": "subscribed", "channel": "notifications", "id": 7}

            async def trade(price: str) -> None:
                await place(container, alice, market, "Buy", "0.1", price)
                await place(container, bob, market, "Sell", "0.1", price)

            await trade("100.00")  # neither condition is met
            await trade("106.00")  # crosses 105 upwards
            await trade("110.00")  # still above: the fired alert stays fired
            await trade("94.00")  # crosses 95 downwards

            first, second = (
                (await asyncio.wait_for(feed.get(), 5))[1],
                (await asyncio.wait_for(feed.get(), 5))[1],
            )
            assert first["type"] == "MarketPrice" and second["type"] == "MarketPrice"
            assert first["data"] == {
                "type": "MarketPrice",
                "accountId": watcher.account_id,
                "accountName": "Main",
                "marketId": market,
                "subscriptionId": str(up.id),
                "price": "105",
                "condition": "Gte",
                "lastPrice": "106",
                "tradeId": first["data"]["tradeId"],
            }
            assert (second["data"]["subscriptionId"], second["data"]["lastPrice"]) == (str(down.id), "94")
            assert first["isRead"] is False and first["accountId"] == watcher.account_id

            pushed = [await ws.receive_json() for _ in range(2)]
            assert [(m["type"], m["channel"], m["seq"]) for m in pushed] == [
                ("notification", "notifications", 1),
                ("notification", "notifications", 2),
            ]
            assert [m["notification"] for m in pushed] == [first, second]

            await trade("120.00")
            await trade("90.00")
            assert await ws.nothing_within(0.3)
    finally:
        consumer.cancel()
        feed.close()

    fired = {row["id"]: row for row in await _fired(container)}
    assert fired[never.id]["fired_at"] is None
    assert fired[up.id]["fired_price"] == 106 and fired[down.id]["fired_price"] == 94
    assert len(await _notes(container, watcher.principal.uid)) == 2
    # the fired alerts are no longer listed as subscriptions
    listed = await alerts.by_markets(watcher.principal, watcher.account_id, None)
    assert listed == [
        {"marketId": market, "subscriptions": [{"id": str(never.id), "price": "500", "condition": "Gte"}]}
    ]


async def test_a_trade_from_before_the_alert_never_fires_it(container, clock):
    market = await make_market(container)
    watcher = await make_trader(container, "carol")
    (old,) = await insert_trades(container, market, [("110", "1", T0)])
    alert = await container.price_alerts.subscribe(
        watcher.principal, watcher.account_id, market, "105", "Gte"
    )
    # The event of that earlier trade arrives late, and the table is read again: neither counts.
    assert await container.price_alerts.on_trade(trade_event(market, old, "110", "1", T0)) == []
    assert await container.price_alerts.catch_up() == 0
    (new,) = await insert_trades(container, market, [("105", "1", T0 + timedelta(seconds=1))])
    fired = await container.price_alerts.on_trade(trade_event(market, new, "105", "1", T0))
    assert [n.data["subscriptionId"] for n in fired] == [str(alert.id)]


async def test_the_first_crossing_trade_of_a_batch_is_the_one_recorded(container):
    market = await make_market(container)
    watcher = await make_trader(container, "carol")
    alert = await container.price_alerts.subscribe(watcher.principal, watcher.account_id, market, "95", "Lte")
    ids = await insert_trades(container, market, [("99", "1", T0), ("94", "1", T0), ("90", "1", T0)])
    fired = await container.price_alerts.fire(
        market, [Trade(i, p) for i, p in zip(ids, (99, 94, 90), strict=True)]
    )
    assert [(n.data["tradeId"], n.data["lastPrice"]) for n in fired] == [(str(ids[1]), "94")]
    assert (await _fired(container))[0]["fired_trade_id"] == ids[1] and alert.after_trade_id == 0


async def test_trades_while_no_consumer_ran_fire_on_catch_up_once(container):
    market = await make_market(container)
    other = await make_market(container, baseAssetId="ETH", displayName="ETH/USDT")
    watcher = await make_trader(container, "carol")
    a = await container.price_alerts.subscribe(watcher.principal, watcher.account_id, market, "105", "Gte")
    b = await container.price_alerts.subscribe(watcher.principal, watcher.account_id, other, "3000", "Lte")
    await insert_trades(container, market, [("100", "1", T0), ("107", "1", T0)])
    await insert_trades(container, other, [("3100", "1", T0)])
    assert await container.price_alerts.catch_up() == 1
    assert await container.price_alerts.catch_up() == 0  # the progress is stored: nothing is checked twice
    await insert_trades(container, other, [("2999.5", "1", T0)])
    assert await container.price_alerts.catch_up() == 1
    fired = {row["id"]: row["fired_price"] for row in await _fired(container)}
    assert fired == {a.id: 107, b.id: 2999.5}
    assert len(await _notes(container, watcher.principal.uid)) == 2


async def test_a_consumer_the_bus_dropped_catches_up_from_the_trades_table(container):
    market = await make_market(container)
    watcher = await make_trader(container, "carol")
    alert = await container.price_alerts.subscribe(
        watcher.principal, watcher.account_id, market, "105", "Gte"
    )
    service = container.price_alerts
    service.bus_buffer = 2
    consumer = asyncio.create_task(service.run())
    try:
        await asyncio.sleep(0.1)  # subscribed and caught up
        ids = await insert_trades(container, market, [("100", "1", T0)] * 4 + [("106", "1", T0)])
        # Published without yielding: the consumer's queue of 2 overflows and the bus drops it.
        for i in ids:
            container.bus.publish(f"trades.{market}", trade_event(market, i, "100", "1", T0))

        async def fired() -> bool:
            return (await _fired(container))[0]["fired_at"] is not None

        await eventually(fired)
        assert (await _fired(container))[0]["fired_trade_id"] == ids[-1]
        assert len(await _notes(container, watcher.principal.uid)) == 1
        assert alert.id == (await _fired(container))[0]["id"]
    finally:
        consumer.cancel()


async def test_two_consumers_never_fire_one_alert_twice(container, db_url, clock):
    """Two processes (two containers on one database) see the same trades at the same time."""
    market = await make_market(container)
    watchers = [await make_trader(container, f"watcher{i}") for i in range(3)]
    alerts = []
    for i in range(30):
        w = watchers[i % 3]
        alerts.append(
            await container.price_alerts.subscribe(
                w.principal, w.account_id, market, f"{100 + i % 10}", "Gte" if i % 2 else "Lte"
            )
        )
    other = build(make_settings(), db_url, hasher=FAST_HASHER, clock=clock)
    try:
        ids = await insert_trades(container, market, [("90", "1", T0), ("120", "1", T0)])
        batches = [[Trade(ids[0], 90)], [Trade(ids[1], 120)], [Trade(ids[0], 90), Trade(ids[1], 120)]]
        runs = [
            svc.fire(market, batch)
            for _ in range(4)
            for batch in batches
            for svc in (container.price_alerts, other.price_alerts)
        ]
        results = await asyncio.gather(*runs)
    finally:
        await other.aclose()
    fired_ids = [n.data["subscriptionId"] for notes in results for n in notes]
    assert sorted(fired_ids) == sorted(str(a.id) for a in alerts)  # every alert once, none twice
    rows = await _fired(container)
    assert all(r["fired_at"] is not None for r in rows)
    assert sum([len(await _notes(container, w.principal.uid)) for w in watchers]) == 30


async def test_staff_roles_cannot_set_alerts(container):
    market = await make_market(container)
    created = await container.identity.create_user("ops", "ops-pass-123", roles=(Role.SUPPORT,))
    support = Principal.of(created.user.uid, "ops", frozenset({Role.SUPPORT}))
    with pytest.raises(PermissionDenied):
        await container.price_alerts.subscribe(support, created.account.account_id, market, "1", "Gte")


async def test_the_app_lifespan_runs_the_price_alert_consumer(db_url, clock):
    c = build(make_settings(background_jobs=True), db_url, hasher=FAST_HASHER, clock=clock)
    try:
        market = await make_market(c)
        alice = await make_trader(c, "alice", usdt="1000")
        bob = await make_trader(c, "bob", btc="1")
        watcher = await make_trader(c, "carol")
        await c.price_alerts.subscribe(watcher.principal, watcher.account_id, market, "100", "Gte")
        app = create_app(c, dispose_on_shutdown=False)
        async with app.router.lifespan_context(app):
            await place(c, alice, market, "Buy", "0.1", "100.00")
            await place(c, bob, market, "Sell", "0.1", "100.00")

            async def notified() -> bool:
                return len(await _notes(c, watcher.principal.uid)) == 1

            await eventually(notified)
    finally:
        await c.aclose()
