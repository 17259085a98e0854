"""kill -9 of ``bourse serve`` mid-load on an OrderBook Cfd market: nothing acknowledged is lost,
nothing unacknowledged is half-applied.

As ``test_trading_crash`` does for spot: a fresh data dir, a Cfd market in OrderBook mode and
four funded traders (two on their Hedging default accounts, two on Netting accounts) set up
through the CLI and HTTP; eight concurrent clients send derivative limit orders (and a few
cancels) with client order ids; the server is killed with SIGKILL while they are at it and
restarted on the same data. Afterwards every acknowledged order is there with its acknowledged
status (a final one exactly as read back after its answer: remaining lots, fee, realized PnL),
every acknowledged cancel stands, every order agrees with its position executions and its hold,
every open position is what its executions add up to and every margin bucket is its open
positions' margin, the ledger check passes, and the market trades again (its rebuilt book
matched the checkpoint's digest, else the runner would be stopped). The server, the load, the kill
and the steps every crash test takes are in ``crash_support``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.integration import crash_support as crash
from tests.integration.test_cli import Server

CFD = "/frontoffice/api/cfd/v4"
V4 = "/frontoffice/api/v4"
MARKET = "BTCBOOK"
TRADERS = 4
CLIENTS_PER_TRADER = 2
KILL_AFTER = 120  # acknowledged orders
MAX_ORDERS = 400
FINAL = ("Filled", "Cancelled", "Rejected", "Expired")
LIVE = ("Started", "Placed", "PartiallyFilled")


def setup(server: Server, data_dir: Path) -> list[dict[str, str]]:
    created, ops = crash.create_users(server, data_dir, TRADERS)
    accounts: list[str] = []
    with httpx.Client(base_url=server.url, headers=ops, timeout=30) as c:
        crash.create_assets(c)
        r = c.post(
            f"{crash.BO}/v2/markets",
            json={
                "marketId": MARKET,
                "type": "Cfd",
                "baseAssetId": "BTC",
                "quoteAssetId": "USDT",
                "priceScale": 2,
                "amountScale": 2,
                "tickSize": "0.01",
                "lotStep": "0.01",
                "minAmount": "0.01",
                "lotSize": 1,
                "minLotAmount": "0.01",
                "maxLotAmount": 100,
                "maxLeverage": 100,
                "isConstLeverage": False,
                "priceDeviation": "0.5",
                "slippageRate": "0.2",
            },
        )
        assert r.status_code == 201, r.text
        r = c.put(f"{crash.BO}/v2/markets/{MARKET}/price-source", json={"executionMode": "OrderBook"})
        assert r.status_code == 200, r.text
        for i, user in enumerate(created):
            account = user["accountId"]
            if i >= TRADERS // 2:  # the second half trade on Netting accounts
                r = c.post(
                    f"{crash.BO}/v2/users/{user['uid']}/accounts",
                    json={"accountName": "netting", "accountType": "Netting"},
                )
                assert r.status_code == 201, r.text
                account = r.json()["accountId"]
            crash.deposit(c, account, account, "USDT", "1000000")
            accounts.append(account)
    return crash.trader_headers(server, accounts)


def order(rng: random.Random, cid: str) -> tuple[str, dict[str, Any]]:
    side = rng.choice(["Buy", "Sell"])
    body = {
        "order": {
            "marketId": MARKET,
            "orderType": "Limit",
            "side": side,
            "requestedPrice": f"{Decimal(10000 + rng.randint(-8, 8)) / 100:.2f}",
            "requestedLotAmount": f"0.0{rng.randint(1, 9)}",
            "timeInForce": rng.choice(["Gtc", "Gtc", "Gtc", "Ioc"]),
            "leverage": 10,
            "clientOrderId": cid,
        }
    }
    path = f"{CFD}/orders"
    if rng.random() < 0.1:  # a stop order: it waits in the runner until the tape reaches it
        path = f"{CFD}/stop-orders"
        away = rng.randint(2, 8) * (1 if side == "Buy" else -1)
        body["order"].update(  # a Limit on /stop-orders is a StopLimit
            timeInForce="Gtc",
            activationPrice=f"{Decimal(10000 + away) / 100:.2f}",
        )
    return path, body


# After the restart, a market buy that must fill.
LATE_ORDER = (
    f"{CFD}/orders",
    {"marketId": MARKET, "orderType": "Market", "side": "Buy", "requestedLotAmount": "0.01", "leverage": 10},
)


async def acknowledge(c: httpx.AsyncClient, placed: dict[str, Any], cid: str, load: crash.Load) -> bool:
    acked: dict[str, Any] = {"status": placed["status"], "clientOrderId": cid, "view": None}
    load.acked[placed["orderId"]] = acked
    if placed["status"] not in FINAL:
        return True
    # A final order never changes again: what it shows now is what was acknowledged.
    # (A transport error here ends this client, the order staying acknowledged without a view.)
    view = await c.get(f"{V4}/orders/{placed['orderId']}")
    assert view.status_code == 200, view.text
    acked["view"] = view.json()["order"]
    return False


def cancel_stands(r: httpx.Response) -> bool:
    return r.status_code == 200 and r.json()["order"]["status"] == "Cancelled"


async def test_kill_9_mid_derivative_book_load(tmp_path: Path) -> None:
    traffic = crash.Traffic(CLIENTS_PER_TRADER, KILL_AFTER, MAX_ORDERS, order, acknowledge, cancel_stands)
    await crash.kill_9_mid_load(tmp_path, setup, traffic, check_after_restart, LATE_ORDER)


async def check_after_restart(db: asyncpg.Connection, load: crash.Load) -> None:
    rows = {
        str(r["order_id"]): r
        for r in await db.fetch("SELECT * FROM derivative_orders WHERE market_id = $1", MARKET)
    }
    assert all(r["in_book"] for r in rows.values())
    fills_seen = stops_seen = 0
    for order_id, acked, row in crash.acknowledged_rows(rows, load):
        view = acked["view"]
        if view is not None and order_id not in load.cancelled:
            assert row["status"] == acked["status"] == view["status"], (order_id, acked, dict(row))
            assert row["remaining_lots"] == crash.dec(view["remainingAmount"])
            assert row["commission"] == crash.dec(view["commissionAmount"])
            fills_seen += row["lots"] > row["remaining_lots"]
        elif acked["status"] == "Placed":
            assert row["status"] in (*LIVE, "Filled", "Cancelled"), dict(row)
        elif acked["status"] == "WaitingForActivation":
            stops_seen += 1
            assert row["stop_status"] in ("WaitingForActivation", "Activated", "Cancelled"), dict(row)
        elif acked["status"] == "Activated":
            assert row["stop_status"] == "Activated", dict(row)
    assert fills_seen > 0 and stops_seen > 0  # the load did trade, and stops waited
    crash.assert_cancels_stand(rows, load)

    # No order is half-applied: its fills, fee and PnL are its executions; its hold is consistent.
    fills = {
        str(r["order_id"]): r
        for r in await db.fetch(
            "SELECT order_id, sum(lots) AS lots, sum(price * base_amount) AS quote, sum(fee) AS fee,"
            " sum(realized_pnl) AS pnl FROM position_executions WHERE market_id = $1 GROUP BY order_id",
            MARKET,
        )
    }
    for order_id, row in rows.items():
        f = fills.get(order_id)
        assert row["lots"] - row["remaining_lots"] == (f["lots"] if f else 0), dict(row)
        assert row["executed_quote"] == (f["quote"] if f else 0), dict(row)
        assert row["commission"] == (f["fee"] if f else 0), dict(row)
        assert row["realized_pnl"] == (f["pnl"] if f else 0), dict(row)
        if row["locked_amount"] > 0:
            assert row["hold_tx_id"] is not None, dict(row)
        if row["status"] not in LIVE:
            assert row["locked_remaining"] == 0 and row["engine_seq"] is None, dict(row)
        elif row["stop_status"] == "WaitingForActivation":  # held by the runner, not in the book
            assert row["engine_seq"] is None and row["executed_base"] == 0, dict(row)
        else:
            assert row["engine_seq"] is not None, dict(row)
    # Each trade filled a buy and a sell of the same lots.
    traded = await db.fetchval("SELECT coalesce(sum(amount), 0) FROM trades WHERE market_id = $1", MARKET)
    by_side = {
        r["side"]: r["lots"]
        for r in await db.fetch(
            "SELECT side, sum(lots - remaining_lots) AS lots FROM derivative_orders"
            " WHERE market_id = $1 GROUP BY side",
            MARKET,
        )
    }
    assert by_side.get("Buy", 0) == by_side.get("Sell", 0) == traded > 0
    # Positions are what their executions add up to; margin buckets are the open positions' margin.
    for p in await db.fetch(
        "SELECT p.position_id, p.lots, p.closed_at, p.margin, sum(e.lots) FILTER (WHERE e.closed_lots = 0)"
        " AS opened, coalesce(sum(e.closed_lots), 0) AS closed FROM positions p JOIN position_executions e"
        " USING (position_id) WHERE p.market_id = $1 GROUP BY p.position_id",
        MARKET,
    ):
        assert p["lots"] == (p["opened"] or 0) - p["closed"], dict(p)
        assert (p["closed_at"] is None) == (p["lots"] > 0), dict(p)
    margins = {
        f"acct:{r['account_id']}": r["margin"]
        for r in await db.fetch(
            "SELECT account_id, sum(margin) AS margin FROM positions WHERE closed_at IS NULL GROUP BY account_id"
        )
    }
    buckets: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for r in await db.fetch(
        "SELECT owner, bucket, balance FROM ledger_accounts WHERE asset = 'USDT' AND owner LIKE 'acct:%'"
    ):
        buckets[r["bucket"]][r["owner"]] = r["balance"]
    crash.assert_same_amounts(buckets["margin"], margins)
    held: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows.values():
        if row["status"] in LIVE:
            held[f"acct:{row['account_id']}"] += row["locked_remaining"]
    crash.assert_same_amounts(buckets["locked"], held)
    crash.assert_unacked_consistent(rows, load)
