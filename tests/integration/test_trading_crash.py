"""THE kill -9 test: ``bourse serve`` killed mid-load loses no acknowledged order and half-applies none.

A fresh data dir, a market and four funded traders set up through the CLI and HTTP;
eight concurrent clients fire orders (and a few cancels) with client order ids; the
server is killed with SIGKILL while they are at it, then restarted on the same data.
Afterwards every acknowledged order comes back as acknowledged (a final one exactly,
a live one at least as far along), every acknowledged cancel stands, every stored
order agrees with its executions and its holds, the ledger check passes, and the
market trades (its rebuilt book matched its checkpoint, else it would be stopped).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.integration.test_cli import BOURSE, Server, postmaster, start_serve

ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("BOURSE_")},
    "BOURSE_RATE_LIMIT": "off",
    "BOURSE_LOG_LEVEL": "WARNING",
}
BO = "/back-api/backoffice"
V3 = "/frontoffice/api/v3"
TRADERS = 4
CLIENTS_PER_TRADER = 2
KILL_AFTER = 150  # acknowledged orders
MAX_ORDERS = 400


def cli(data_dir: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(BOURSE), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def cli_together(data_dir: Path, *commands: tuple[str, ...]) -> list[dict[str, Any]]:
    running = [
        subprocess.Popen(
            [str(BOURSE), *c, "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for c in commands
    ]
    out = []
    for process in running:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        out.append(json.loads(stdout))
    return out


def serve(data_dir: Path, name: str) -> Server:
    return start_serve(data_dir, name, env=ENV, ready_within=120)


def token(server: Server, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{server.url}/auth/token", data={"username": username, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def setup(server: Server, data_dir: Path) -> list[tuple[dict[str, str], str]]:
    cli(data_dir, "admin", "create-user", "ops", "--password", "ops-pass-123", "--role", "admin")
    created = cli_together(
        data_dir,
        *(("admin", "create-user", f"trader{i}", "--password", f"trader{i}-pass") for i in range(TRADERS)),
    )
    ops = token(server, "ops", "ops-pass-123")
    with httpx.Client(base_url=server.url, headers=ops, timeout=30) as c:
        for asset, scale in (("BTC", 8), ("USDT", 6)):
            r = c.post(
                f"{BO}/v2/internal-assets",
                json={"id": asset, "name": asset, "scale": scale, "type": "Crypto"},
            )
            assert r.status_code == 201, r.text
        r = c.post(
            f"{BO}/v2/markets",
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
                r = c.post(
                    f"{BO}/transfers/deposit",
                    json={
                        "deduplicationId": f"{user['accountId']}-{asset}",
                        "accountId": user["accountId"],
                        "amount": amount,
                        "assetId": asset,
                    },
                )
                assert r.status_code == 201, r.text
    return [
        ({**token(server, f"trader{i}", f"trader{i}-pass"), "accountId": u["accountId"]}, u["accountId"])
        for i, u in enumerate(created)
    ]


class Load:
    def __init__(self) -> None:
        self.acked: dict[str, dict[str, Any]] = {}  # orderId -> the order as acknowledged
        self.unacked: list[str] = []  # client order ids sent without a 2xx answer
        self.cancelled: set[str] = set()
        self.sent = 0
        self.killed = asyncio.Event()


async def client_loop(url: str, headers: dict[str, str], name: str, load: Load, seed: int) -> None:
    rng = random.Random(seed)
    mine: list[str] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as c:
        for n in range(MAX_ORDERS):
            if load.sent >= MAX_ORDERS:
                return
            if mine and rng.random() < 0.1:
                order_id = mine.pop(rng.randrange(len(mine)))
                try:
                    r = await c.delete(f"{V3}/orders/{order_id}")
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    load.cancelled.add(order_id)
                continue
            load.sent += 1
            cid = f"{name}-{n}"
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
            try:
                r = await c.post(f"{V3}/orders", json=body)
            except httpx.TransportError:
                load.unacked.append(cid)
                return
            assert r.status_code == 200, r.text
            order = r.json()["order"]
            load.acked[order["orderId"]] = order
            if order["status"] in ("Placed", "PartiallyFilled"):
                mine.append(order["orderId"])


async def run_load(server: Server, traders: list[tuple[dict[str, str], str]]) -> Load:
    load = Load()
    clients = [
        asyncio.create_task(client_loop(server.url, headers, f"c{i}-{k}", load, seed=i * 10 + k))
        for i, (headers, _) in enumerate(traders)
        for k in range(CLIENTS_PER_TRADER)
    ]
    while len(load.acked) < KILL_AFTER and not all(t.done() for t in clients):
        await asyncio.sleep(0.005)
    server.process.kill()  # SIGKILL, mid-load
    server.process.wait()
    await asyncio.gather(*clients)
    return load


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


async def test_kill_9_mid_load(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = serve(data_dir, "serve-1")
    try:
        traders = setup(first, data_dir)
        load = await run_load(first, traders)
        assert len(load.acked) >= KILL_AFTER and load.unacked  # killed with requests on the way
        print(
            f"acknowledged {len(load.acked)}, cancelled {len(load.cancelled)}, unacknowledged {len(load.unacked)}"
        )
        second = serve(data_dir, "serve-2")
        try:
            await check_after_restart(second, data_dir, traders, load)
        finally:
            second.process.kill()
            second.process.wait()
    finally:
        if first.process.poll() is None:
            first.process.kill()
        pm = postmaster(data_dir)
        if pm is not None:
            pm.send_signal(2)
            pm.wait(30)


async def check_after_restart(
    server: Server, data_dir: Path, traders: list[tuple[dict[str, str], str]], load: Load
) -> None:
    db = await asyncpg.connect(f"postgresql://postgres:@/postgres?host={data_dir / 'pg'}")
    try:
        rows = {str(r["order_id"]): r for r in await db.fetch("SELECT * FROM orders")}
        # Every acknowledged order is there, as acknowledged or further along.
        for order_id, acked in load.acked.items():
            row = rows.get(order_id)
            assert row is not None, f"acknowledged order {order_id} was lost"
            assert row["client_order_id"] == acked["clientOrderId"]
            if (
                acked["status"] in ("Filled", "Cancelled", "Rejected", "Expired")
                and order_id not in load.cancelled
            ):
                assert row["status"] == acked["status"], (order_id, acked, dict(row))
                assert row["remaining"] == dec(acked["remainingAmount"])
                assert row["commission"] == dec(acked["commission"])
            else:
                assert row["remaining"] <= dec(acked["remainingAmount"])
        for order_id in load.cancelled:
            assert rows[order_id]["status"] == "Cancelled", dict(rows[order_id])
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
            for r in await db.fetch(
                "SELECT owner, asset, balance FROM ledger_accounts WHERE bucket = 'locked'"
            )
        }
        held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for row in rows.values():
            if row["status"] in ("Started", "Placed", "PartiallyFilled"):
                held[(f"acct:{row['account_id']}", row["locked_asset"])] += row["locked_remaining"]
        for key in set(locked) | set(held):
            assert locked.get(key, 0) == held.get(key, 0), key
        # Unacknowledged orders: absent, or present and consistent (checked above with all the others).
        by_cid = {r["client_order_id"]: r for r in rows.values()}
        assert all(cid not in by_cid or by_cid[cid]["status"] for cid in load.unacked)
    finally:
        await db.close()
    check = subprocess.run(
        [str(BOURSE), "ledger", "check", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # The rebuilt book matched its checkpoint (else the market would be stopped): it trades.
    late = cli(data_dir, "admin", "create-user", "late", "--password", "late-pass-123")
    with httpx.Client(base_url=server.url, headers=token(server, "ops", "ops-pass-123"), timeout=30) as c:
        r = c.post(
            f"{BO}/transfers/deposit",
            json={
                "deduplicationId": "late",
                "accountId": late["accountId"],
                "amount": "1000",
                "assetId": "USDT",
            },
        )
        assert r.status_code == 201, r.text
    headers = {**token(server, "late", "late-pass-123"), "accountId": late["accountId"]}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as c:
        bid = await c.post(
            f"{V3}/orders",
            json={
                "order": {
                    "marketId": "BTCUSDT",
                    "orderType": "Market",
                    "side": "Buy",
                    "requestedAmount": "0.0001",
                }
            },
        )
        assert bid.status_code == 200, bid.text
        assert bid.json()["order"]["status"] == "Filled", bid.json()
    assert "market stopped" not in server.log.read_text()
