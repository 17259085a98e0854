"""THE kill -9 test: ``bourse serve`` killed mid-load loses no acknowledged order and half-applies none.

A fresh data dir, a market and four funded traders set up through the CLI and HTTP;
eight concurrent clients fire orders (and a few cancels) with client order ids; the
server is killed with SIGKILL while they are at it, then restarted on the same data.
Afterwards every acknowledged order comes back as acknowledged (a final one exactly,
a live one at least as far along), every acknowledged cancel stands, every stored
order agrees with its executions and its holds, the ledger check passes, and the
market trades (its rebuilt book matched its checkpoint, else it would be stopped).
The server, the load, the kill and the steps every crash test takes are in ``crash_support``.
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

TRADERS = 4
CLIENTS_PER_TRADER = 2
KILL_AFTER = 150  # acknowledged orders
MAX_ORDERS = 400


def setup(server: Server, data_dir: Path) -> list[dict[str, str]]:
    created, ops = crash.create_users(server, data_dir, TRADERS)
    with httpx.Client(base_url=server.url, headers=ops, timeout=30) as c:
        crash.create_assets(c)
        r = c.post(
            f"{crash.BO}/v2/markets",
            json={
                "baseAssetId": "BTC",
                "quoteAssetId": "USDT",
                "priceScale": 2,
                "amountScale": 4,
                "priceDeviation": "0.5",
            },
        )
        assert r.status_code == 201, r.text
        for user in created:
            for asset, amount in (("BTC", "1000"), ("USDT", "1000000")):
                crash.deposit(c, f"{user['accountId']}-{asset}", user["accountId"], asset, amount)
    return crash.trader_headers(server, [u["accountId"] for u in created])


def order(rng: random.Random, cid: str) -> tuple[str, dict[str, Any]]:
    side = rng.choice(["Buy", "Sell"])
    price = f"{Decimal(10000 + rng.randint(-8, 8)) / 100:.2f}"
    body = {
        "order": {
            "marketId": "BTCUSDT",
            "orderType": "Limit",
            "side": side,
            "requestedPrice": price,
            "requestedAmount": f"0.0{rng.randint(1, 9)}",
            "timeInForce": rng.choice(["Gtc", "Gtc", "Gtc", "Ioc"]),
            "clientOrderId": cid,
        }
    }
    return f"{crash.V3}/orders", body


# After the restart, a market buy that must fill.
LATE_ORDER = (
    f"{crash.V3}/orders",
    {"marketId": "BTCUSDT", "orderType": "Market", "side": "Buy", "requestedAmount": "0.0001"},
)


async def acknowledge(c: httpx.AsyncClient, answered: dict[str, Any], cid: str, load: crash.Load) -> bool:
    load.acked[answered["orderId"]] = answered  # the order as acknowledged
    return answered["status"] in ("Placed", "PartiallyFilled")


def cancel_stands(r: httpx.Response) -> bool:
    return r.status_code == 200


async def test_kill_9_mid_load(tmp_path: Path) -> None:
    traffic = crash.Traffic(CLIENTS_PER_TRADER, KILL_AFTER, MAX_ORDERS, order, acknowledge, cancel_stands)
    await crash.kill_9_mid_load(tmp_path, setup, traffic, check_after_restart, LATE_ORDER)


async def check_after_restart(db: asyncpg.Connection, load: crash.Load) -> None:
    rows = {str(r["order_id"]): r for r in await db.fetch("SELECT * FROM orders")}
    # Every acknowledged order is there, as acknowledged or further along.
    for order_id, acked, row in crash.acknowledged_rows(rows, load):
        if (
            acked["status"] in ("Filled", "Cancelled", "Rejected", "Expired")
            and order_id not in load.cancelled
        ):
            assert row["status"] == acked["status"], (order_id, acked, dict(row))
            assert row["remaining"] == crash.dec(acked["remainingAmount"])
            assert row["commission"] == crash.dec(acked["commission"])
        else:
            assert row["remaining"] <= crash.dec(acked["remainingAmount"])
    crash.assert_cancels_stand(rows, load)
    # No order is half-applied: fills, fees and holds agree with the executions and the ledger.
    fills = {
        str(r["order_id"]): r
        for r in await db.fetch(
            "SELECT order_id, sum(amount) AS amount, sum(quote_amount) AS quote, sum(commission) AS fee, "
            "count(*) AS n FROM executions GROUP BY order_id"
        )
    }
    for order_id, row in rows.items():
        f = fills.get(order_id)
        assert row["quantity"] - row["remaining"] == (f["amount"] if f else 0), dict(row)
        assert row["executed_quote"] == (f["quote"] if f else 0)
        assert row["commission"] == (f["fee"] if f else 0)
        if row["locked_amount"] > 0:
            assert row["hold_tx_id"] is not None
        if row["status"] not in ("Started", "Placed", "PartiallyFilled"):
            assert row["locked_remaining"] == 0, dict(row)
    trades = await db.fetchval("SELECT count(*) FROM trades")
    assert await db.fetchval("SELECT count(*) FROM executions") == 2 * trades
    locked = {
        (r["owner"], r["asset"]): r["balance"]
        for r in await db.fetch("SELECT owner, asset, balance FROM ledger_accounts WHERE bucket = 'locked'")
    }
    held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows.values():
        if row["status"] in ("Started", "Placed", "PartiallyFilled"):
            held[(f"acct:{row['account_id']}", row["locked_asset"])] += row["locked_remaining"]
    crash.assert_same_amounts(locked, held)
    crash.assert_unacked_consistent(rows, load)
