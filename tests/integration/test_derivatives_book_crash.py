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
matched the checkpoint's digest, else the runner would be stopped).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.integration.test_cli import BOURSE, Server, postmaster
from tests.integration.test_trading_crash import BO, ENV, cli, cli_together, dec, serve, token

CFD = "/frontoffice/api/cfd/v4"
V3 = "/frontoffice/api/v3"
V4 = "/frontoffice/api/v4"
MARKET = "BTCBOOK"
TRADERS = 4
CLIENTS_PER_TRADER = 2
KILL_AFTER = 120  # acknowledged orders
MAX_ORDERS = 400
FINAL = ("Filled", "Cancelled", "Rejected", "Expired")
LIVE = ("Started", "Placed", "PartiallyFilled")


def setup(server: Server, data_dir: Path) -> list[tuple[dict[str, str], str]]:
    cli(data_dir, "admin", "create-user", "ops", "--password", "ops-pass-123", "--role", "admin")
    created = cli_together(
        data_dir,
        *(("admin", "create-user", f"trader{i}", "--password", f"trader{i}-pass") for i in range(TRADERS)),
    )
    ops = token(server, "ops", "ops-pass-123")
    accounts: list[str] = []
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
        r = c.put(f"{BO}/v2/markets/{MARKET}/price-source", json={"executionMode": "OrderBook"})
        assert r.status_code == 200, r.text
        for i, user in enumerate(created):
            account = user["accountId"]
            if i >= TRADERS // 2:  # the second half trade on Netting accounts
                r = c.post(
                    f"{BO}/v2/users/{user['uid']}/accounts",
                    json={"accountName": "netting", "accountType": "Netting"},
                )
                assert r.status_code == 201, r.text
                account = r.json()["accountId"]
            r = c.post(
                f"{BO}/transfers/deposit",
                json={
                    "deduplicationId": account,
                    "accountId": account,
                    "amount": "1000000",
                    "assetId": "USDT",
                },
            )
            assert r.status_code == 201, r.text
            accounts.append(account)
    return [
        ({**token(server, f"trader{i}", f"trader{i}-pass"), "accountId": a}, a)
        for i, a in enumerate(accounts)
    ]


class Load:
    def __init__(self) -> None:
        self.acked: dict[str, dict[str, Any]] = {}  # orderId -> {status, clientOrderId, final view}
        self.unacked: list[str] = []  # client order ids sent without an answer
        self.cancelled: set[str] = set()
        self.sent = 0


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
                if r.status_code == 200 and r.json()["order"]["status"] == "Cancelled":
                    load.cancelled.add(order_id)
                continue
            load.sent += 1
            cid = f"{name}-{n}"
            body = {
                "order": {
                    "marketId": MARKET,
                    "orderType": "Limit",
                    "side": rng.choice(["Buy", "Sell"]),
                    "requestedPrice": f"{Decimal(10000 + rng.randint(-8, 8)) / 100:.2f}",
                    "requestedLotAmount": f"0.0{rng.randint(1, 9)}",
                    "timeInForce": rng.choice(["Gtc", "Gtc", "Gtc", "Ioc"]),
                    "leverage": 10,
                    "clientOrderId": cid,
                }
            }
            try:
                r = await c.post(f"{CFD}/orders", json=body)
            except httpx.TransportError:
                load.unacked.append(cid)
                return
            assert r.status_code == 200, r.text
            placed = r.json()["order"]
            acked = {"status": placed["status"], "clientOrderId": cid, "view": None}
            load.acked[placed["orderId"]] = acked
            if placed["status"] in FINAL:
                # A final order never changes again: what it shows now is what was acknowledged.
                try:
                    view = await c.get(f"{V4}/orders/{placed['orderId']}")
                except httpx.TransportError:
                    return
                assert view.status_code == 200, view.text
                acked["view"] = view.json()["order"]
            else:
                mine.append(placed["orderId"])


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


async def test_kill_9_mid_derivative_book_load(tmp_path: Path) -> None:
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
            await check_after_restart(second, data_dir, load)
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


async def check_after_restart(server: Server, data_dir: Path, load: Load) -> None:
    db = await asyncpg.connect(f"postgresql://postgres:@/postgres?host={data_dir / 'pg'}")
    try:
        rows = {
            str(r["order_id"]): r
            for r in await db.fetch("SELECT * FROM derivative_orders WHERE market_id = $1", MARKET)
        }
        assert all(r["in_book"] for r in rows.values())
        fills_seen = 0
        for order_id, acked in load.acked.items():
            row = rows.get(order_id)
            assert row is not None, f"acknowledged order {order_id} was lost"
            assert row["client_order_id"] == acked["clientOrderId"]
            view = acked["view"]
            if view is not None and order_id not in load.cancelled:
                assert row["status"] == acked["status"] == view["status"], (order_id, acked, dict(row))
                assert row["remaining_lots"] == dec(view["remainingAmount"])
                assert row["commission"] == dec(view["commissionAmount"])
                fills_seen += row["lots"] > row["remaining_lots"]
            elif acked["status"] == "Placed":
                assert row["status"] in (*LIVE, "Filled", "Cancelled"), dict(row)
        assert fills_seen > 0  # the load did trade
        for order_id in load.cancelled:
            assert rows[order_id]["status"] == "Cancelled", dict(rows[order_id])

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
        for owner in set(margins) | set(buckets["margin"]):
            assert buckets["margin"].get(owner, 0) == margins.get(owner, 0), owner
        held: dict[str, Decimal] = defaultdict(Decimal)
        for row in rows.values():
            if row["status"] in LIVE:
                held[f"acct:{row['account_id']}"] += row["locked_remaining"]
        for owner in set(held) | set(buckets["locked"]):
            assert buckets["locked"].get(owner, 0) == held.get(owner, 0), owner
        # Unacknowledged orders: absent, or present and consistent (checked above with all the others).
        by_cid = {r["client_order_id"]: r for r in rows.values()}
        assert all(cid not in by_cid or by_cid[cid]["status"] for cid in load.unacked)
    finally:
        await db.close()
    check = await asyncio.create_subprocess_exec(
        str(BOURSE), "ledger", "check", "--data-dir", str(data_dir), env=ENV,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await check.communicate()
    assert check.returncode == 0, (out + err).decode()
    # The rebuilt book matched its checkpoint (else the runner would be stopped): it trades.
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
        r = await c.post(
            f"{CFD}/orders",
            json={
                "order": {
                    "marketId": MARKET,
                    "orderType": "Market",
                    "side": "Buy",
                    "requestedLotAmount": "0.01",
                    "leverage": 10,
                }
            },
        )
        assert r.status_code == 200, r.text
        assert r.json()["order"]["status"] == "Filled", r.json()
    assert "market stopped" not in server.log.read_text()
