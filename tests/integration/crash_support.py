"""The kill -9 harness the crash tests share: ``bourse serve`` on a scratch data dir, killed mid-load.

``kill_9_mid_load`` runs the whole story: serve a fresh data dir, let the test set up its
market and traders, run concurrent clients that send orders (and a few cancels) with client
order ids, SIGKILL the server once enough are acknowledged, restart it on the same data, hand
the database and what was acknowledged to the test's own checks, then run ``bourse ledger
check`` and show that the market trades again. What a test's orders look like, what it keeps
of an answer and what it checks in its tables stay in the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
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
OPS = ("ops", "ops-pass-123")


def bourse(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BOURSE), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )


def cli(data_dir: Path, *args: str) -> dict[str, Any]:
    done = bourse(data_dir, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def cli_together(data_dir: Path, *commands: tuple[str, ...]) -> list[dict[str, Any]]:
    """The commands at the same time, each its own process on the shared data dir."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda command: cli(data_dir, *command), commands))


def serve(data_dir: Path, name: str) -> Server:
    return start_serve(data_dir, name, env=ENV, ready_within=120)


@contextmanager
def serving(data_dir: Path, name: str) -> Iterator[Server]:
    server = serve(data_dir, name)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
        server.process.wait()


def token(server: Server, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{server.url}/auth/token", data={"username": username, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


# --- setting up -------------------------------------------------------------------------------


def create_users(server: Server, data_dir: Path, traders: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The admin ``ops`` and ``trader0..``; the traders as created and the admin's headers."""
    cli(data_dir, "admin", "create-user", OPS[0], "--password", OPS[1], "--role", "admin")
    created = cli_together(
        data_dir,
        *(("admin", "create-user", f"trader{i}", "--password", f"trader{i}-pass") for i in range(traders)),
    )
    return created, token(server, *OPS)


def create_assets(c: httpx.Client) -> None:
    for asset, scale in (("BTC", 8), ("USDT", 6)):
        r = c.post(
            f"{BO}/v2/internal-assets",
            json={"id": asset, "name": asset, "scale": scale, "type": "Crypto"},
        )
        assert r.status_code == 201, r.text


def deposit(c: httpx.Client, deduplication_id: str, account: str, asset: str, amount: str) -> None:
    r = c.post(
        f"{BO}/transfers/deposit",
        json={
            "deduplicationId": deduplication_id,
            "accountId": account,
            "amount": amount,
            "assetId": asset,
        },
    )
    assert r.status_code == 201, r.text


def trader_headers(server: Server, accounts: list[str]) -> list[dict[str, str]]:
    """Trader i's token and the account it trades on, for accounts[i]."""
    return [
        {**token(server, f"trader{i}", f"trader{i}-pass"), "accountId": a} for i, a in enumerate(accounts)
    ]


# --- the load ---------------------------------------------------------------------------------


class Load:
    def __init__(self) -> None:
        self.acked: dict[str, dict[str, Any]] = {}  # orderId -> what the test keeps (with clientOrderId)
        self.unacked: list[str] = []  # client order ids sent without a 2xx answer
        self.cancelled: set[str] = set()
        self.sent = 0


@dataclass(frozen=True)
class Traffic:
    """One test's load: how many clients, when to kill, what they send and keep of the answers."""

    clients_per_trader: int
    kill_after: int  # acknowledged orders
    max_orders: int  # sent by all the clients together, at the most
    # (rng, client order id) -> (path, body) of the next order
    order: Callable[[random.Random, str], tuple[str, dict[str, Any]]]
    # (client, the order as answered, client order id, load) -> whether it is live (may be
    # cancelled); it records the order in load.acked; an httpx.TransportError out of it ends
    # that client
    acknowledge: Callable[[httpx.AsyncClient, dict[str, Any], str, Load], Awaitable[bool]]
    # the answer to a DELETE (v3) of a live order -> whether the cancel is acknowledged
    cancel_stands: Callable[[httpx.Response], bool]


async def client_loop(
    url: str,
    headers: dict[str, str],
    name: str,
    load: Load,
    seed: int,
    traffic: Traffic,
) -> None:
    rng = random.Random(seed)
    mine: list[str] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as c:
        for n in range(traffic.max_orders):
            if load.sent >= traffic.max_orders:
                return
            if mine and rng.random() < 0.1:
                order_id = mine.pop(rng.randrange(len(mine)))
                try:
                    r = await c.delete(f"{V3}/orders/{order_id}")
                except httpx.TransportError:
                    return
                if traffic.cancel_stands(r):
                    load.cancelled.add(order_id)
                continue
            load.sent += 1
            cid = f"{name}-{n}"
            path, body = traffic.order(rng, cid)
            try:
                r = await c.post(path, json=body)
            except httpx.TransportError:
                load.unacked.append(cid)
                return
            assert r.status_code == 200, r.text
            answered = r.json()["order"]
            try:
                live = await traffic.acknowledge(c, answered, cid, load)
            except httpx.TransportError:
                return
            if live:
                mine.append(answered["orderId"])


async def run_load(server: Server, traders: list[dict[str, str]], traffic: Traffic) -> Load:
    """Clients per trader fire orders until ``traffic.kill_after`` are acknowledged, then SIGKILL the server."""
    load = Load()
    clients = [
        asyncio.create_task(client_loop(server.url, headers, f"c{i}-{k}", load, i * 10 + k, traffic))
        for i, headers in enumerate(traders)
        for k in range(traffic.clients_per_trader)
    ]
    while len(load.acked) < traffic.kill_after and not all(t.done() for t in clients):
        await asyncio.sleep(0.005)
    server.process.kill()  # SIGKILL, mid-load
    server.process.wait()
    await asyncio.gather(*clients)
    return load


# --- after the restart ------------------------------------------------------------------------


@asynccontextmanager
async def database(data_dir: Path) -> AsyncIterator[asyncpg.Connection]:
    """The embedded PostgreSQL of the data dir, straight (not through the server)."""
    db = await asyncpg.connect(f"postgresql://postgres:@/postgres?host={data_dir / 'pg'}")
    try:
        yield db
    finally:
        await db.close()


def acknowledged_rows(rows: Mapping[str, Any], load: Load) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """Each acknowledged order with its row, once it is shown there with its client order id."""
    for order_id, acked in load.acked.items():
        row = rows.get(order_id)
        assert row is not None, f"acknowledged order {order_id} was lost"
        assert row["client_order_id"] == acked["clientOrderId"]
        yield order_id, acked, row


def assert_cancels_stand(rows: Mapping[str, Any], load: Load) -> None:
    for order_id in load.cancelled:
        assert rows[order_id]["status"] == "Cancelled", dict(rows[order_id])


def assert_unacked_consistent(rows: Mapping[str, Any], load: Load) -> None:
    # Unacknowledged orders: absent, or present and consistent (checked with all the others).
    by_cid = {r["client_order_id"]: r for r in rows.values()}
    assert all(cid not in by_cid or by_cid[cid]["status"] for cid in load.unacked)


def assert_same_amounts(actual: Mapping[Any, Decimal], expected: Mapping[Any, Decimal]) -> None:
    """Key by key, a missing key counting as zero."""
    for key in set(actual) | set(expected):
        assert actual.get(key, 0) == expected.get(key, 0), key


def assert_ledger_check(data_dir: Path) -> None:
    check = bourse(data_dir, "ledger", "check")
    assert check.returncode == 0, check.stdout + check.stderr


async def assert_trades_again(server: Server, data_dir: Path, path: str, order: dict[str, Any]) -> None:
    """A new trader's market order fills: the rebuilt book matched its checkpoint, else the
    market (runner) would be stopped."""
    late = cli(data_dir, "admin", "create-user", "late", "--password", "late-pass-123")
    with httpx.Client(base_url=server.url, headers=token(server, *OPS), timeout=30) as c:
        deposit(c, "late", late["accountId"], "USDT", "1000")
    headers = {**token(server, "late", "late-pass-123"), "accountId": late["accountId"]}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as c:
        r = await c.post(path, json={"order": order})
        assert r.status_code == 200, r.text
        assert r.json()["order"]["status"] == "Filled", r.json()
    assert "market stopped" not in server.log.read_text()


# --- the whole story --------------------------------------------------------------------------


async def kill_9_mid_load(
    tmp_path: Path,
    setup: Callable[[Server, Path], list[dict[str, str]]],
    traffic: Traffic,
    check: Callable[[asyncpg.Connection, Load], Awaitable[None]],
    late_order: tuple[str, dict[str, Any]],
) -> None:
    """Serve, set up, load, kill -9, restart, ``check`` the tables, ledger check, trade again.

    ``setup`` answers each trader's headers (with its accountId); ``late_order`` is the path and
    order a fresh trader with 1000 USDT sends after the restart, which must fill.
    """
    data_dir = tmp_path / "data"
    try:
        with serving(data_dir, "serve-1") as first:
            traders = setup(first, data_dir)
            load = await run_load(first, traders, traffic)
            assert len(load.acked) >= traffic.kill_after and load.unacked  # killed with requests on the way
            print(
                f"acknowledged {len(load.acked)}, cancelled {len(load.cancelled)}, unacknowledged {len(load.unacked)}"
            )
            with serving(data_dir, "serve-2") as second:
                async with database(data_dir) as db:
                    await check(db, load)
                assert_ledger_check(data_dir)
                await assert_trades_again(second, data_dir, *late_order)
    finally:
        pm = postmaster(data_dir)
        if pm is not None:
            pm.send_signal(2)
            pm.wait(30)
