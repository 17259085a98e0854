"""History server: representative queries over a million trades, through HistoryService.

    python bench/history.py [--trades 1000000] [--accounts 2000] [--days 30] [--runs 3] [--keep]

Seeds a scratch database set-based (INSERT ... SELECT generate_series, no Python loop): assets BTC,
ETH, USDT; markets BTCUSDT, ETHUSDT, ETHBTC; ``--accounts`` users with one account each and a
balance per asset; ``--trades`` trades spread evenly over ``--days`` days, each filling a taker
order (its own) against a maker order (one per ten trades; every hundredth maker order is left
PartiallyFilled, so open orders exist), and one execution per side with a 0.1 % fee in the quote
asset. Then it runs the queries below through ``container.history`` as an admin and prints, per
query, the rows returned and the median and worst time of ``--runs`` runs (goal: each under 1 s).

Uses BOURSE_DATABASE_URL if set (creating the scratch database there), else the embedded server
under var/bench-pg (loopback only); the scratch database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _scratch import plain, scratch_database  # noqa: E402

from bourse.bootstrap import build  # noqa: E402
from bourse.config import Settings  # noqa: E402
from bourse.domain.identity import Principal, Role  # noqa: E402
from bourse.domain.values import UserId  # noqa: E402
from bourse.service.history import Page  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)

SEED_REFERENCE = [
    """INSERT INTO assets (id, name, scale, type) VALUES
       ('BTC', 'Bitcoin', 8, 'Crypto'), ('ETH', 'Ether', 8, 'Crypto'), ('USDT', 'Tether', 6, 'Crypto')""",
    """INSERT INTO markets (market_id, base_asset_id, quote_asset_id, display_name, full_name, type,
                           price_scale, amount_scale, tick_size, lot_step, min_amount, price_deviation,
                           slippage_rate, status, created_at, updated_at)
       VALUES ('BTCUSDT', 'BTC', 'USDT', 'BTC/USDT', 'Bitcoin / Tether', 'Spot', 2, 4, 0.01, 0.0001, 0.0001,
               0.5, 0.05, 'Active', now(), now()),
              ('ETHUSDT', 'ETH', 'USDT', 'ETH/USDT', 'Ether / Tether', 'Spot', 2, 4, 0.01, 0.0001, 0.0001,
               0.5, 0.05, 'Active', now(), now()),
              ('ETHBTC', 'ETH', 'BTC', 'ETH/BTC', 'Ether / Bitcoin', 'Spot', 6, 4, 0.000001, 0.0001, 0.0001,
               0.5, 0.05, 'Active', now(), now())""",
]

SEED_ACCOUNTS = [
    """INSERT INTO users (username, password_hash, email)
       SELECT 'bench' || g, 'not-a-hash', 'bench' || g || '@example.com' FROM generate_series(1, $1::int) g""",
    "INSERT INTO accounts (account_id, uid, name, is_default) SELECT 'BA' || uid, uid, 'Main', true FROM users",
    """INSERT INTO ledger_accounts (owner, asset, bucket, balance)
       SELECT 'acct:' || a.account_id, s.id, 'available', (a.uid % 1000) + 1 FROM accounts a CROSS JOIN assets s""",
]

# Trade i belongs to maker group g = (i - 1) / 10: one market, one maker order, one side per group.
SEED_TRADES = """
INSERT INTO trades (trade_id, market_id, market_seq, price, amount, quote_amount, taker_side,
                    maker_order_id, taker_order_id, created_at)
SELECT i, m.market_id, i, p.price, a.amount, p.price * a.amount,
       CASE WHEN g % 2 = 0 THEN 'Buy' ELSE 'Sell' END, g + 1, $4::bigint + i,
       $2::timestamptz + make_interval(secs => i::double precision * $3::double precision / $1::int)
  FROM generate_series(1, $1::int) i
 CROSS JOIN LATERAL (SELECT (i - 1) / 10 AS g) grp
 CROSS JOIN LATERAL (SELECT (ARRAY['BTCUSDT', 'ETHUSDT', 'ETHBTC'])[g % 3 + 1] AS market_id) m
 CROSS JOIN LATERAL (
       SELECT CASE m.market_id WHEN 'BTCUSDT' THEN 30000 + (g % 1000)
                               WHEN 'ETHUSDT' THEN 2000 + (g % 100) * 0.5
                               ELSE 0.06 + (g % 100) * 0.0001 END::numeric AS price) p
 CROSS JOIN LATERAL (SELECT (0.001 * (1 + i % 100))::numeric AS amount) a
"""

FEE = "round(t.quote_amount * 0.001, 8)"

# Accounts are 'BA' || uid with consecutive uids from $1, $2 of them: computed, not looked up.
SEED_MAKER_ORDERS = f"""
INSERT INTO orders (order_id, market_id, account_id, side, type, time_in_force, price, quantity, remaining,
                    executed_quote, commission, commission_asset, status, created_at, updated_at)
SELECT t.maker_order_id, min(t.market_id), 'BA' || ($1::bigint + (t.maker_order_id * 7919) % $2::int),
       CASE WHEN min(t.taker_side) = 'Buy' THEN 'Sell' ELSE 'Buy' END, 'Limit', 'Gtc', min(t.price),
       sum(t.amount) + CASE WHEN t.maker_order_id % 100 = 0 THEN 1 ELSE 0 END,
       CASE WHEN t.maker_order_id % 100 = 0 THEN 1 ELSE 0 END,
       sum(t.quote_amount), sum({FEE}), min(m.quote_asset_id),
       CASE WHEN t.maker_order_id % 100 = 0 THEN 'PartiallyFilled' ELSE 'Filled' END,
       min(t.created_at) - interval '1 second', max(t.created_at)
  FROM trades t JOIN markets m ON m.market_id = t.market_id
 GROUP BY t.maker_order_id
"""

SEED_TAKER_ORDERS = f"""
INSERT INTO orders (order_id, market_id, account_id, side, type, time_in_force, price, quantity, remaining,
                    executed_quote, commission, commission_asset, status, created_at, updated_at)
SELECT t.taker_order_id, t.market_id, 'BA' || ($1::bigint + (t.trade_id * 104729) % $2::int), t.taker_side,
       CASE WHEN t.trade_id % 2 = 0 THEN 'Market' ELSE 'Limit' END,
       CASE WHEN t.trade_id % 2 = 0 THEN 'Ioc' ELSE 'Gtc' END,
       CASE WHEN t.trade_id % 2 = 0 THEN NULL ELSE t.price END,
       t.amount, 0, t.quote_amount, {FEE}, m.quote_asset_id, 'Filled', t.created_at, t.created_at
  FROM trades t JOIN markets m ON m.market_id = t.market_id
"""

SEED_EXECUTIONS = f"""
INSERT INTO executions (order_id, account_id, market_id, trade_id, side, price, amount, quote_amount,
                        commission, commission_asset, is_maker, ledger_tx_id, created_at)
SELECT o.order_id, o.account_id, t.market_id, t.trade_id, o.side, t.price, t.amount, t.quote_amount,
       {FEE}, o.commission_asset, o.order_id = t.maker_order_id, 0, t.created_at
  FROM trades t JOIN orders o ON o.order_id = t.{{column}}
 ORDER BY t.trade_id
"""


async def seed(url: str, trades: int, accounts: int, days: int) -> None:
    conn = await asyncpg.connect(plain(url))
    try:
        started = time.perf_counter()
        # A scratch database filled consistently by construction: no need to wait for each row's
        # foreign-key checks (triggers) or for the disk on commit.
        await conn.execute("SET synchronous_commit = off")
        try:
            await conn.execute("SET session_replication_role = replica")
        except asyncpg.InsufficientPrivilegeError:
            print("  (not a superuser: foreign keys are checked row by row, seeding is slower)")
        for sql in SEED_REFERENCE:
            await conn.execute(sql)
        for sql in SEED_ACCOUNTS:
            await conn.execute(sql, *([accounts] if "$1" in sql else []))
        makers = (trades + 9) // 10
        await conn.execute(SEED_TRADES, trades, START, days * 86400.0, makers)
        print(f"  trades      {trades:>9,}  {time.perf_counter() - started:6.1f} s", flush=True)
        first_uid, count = await conn.fetchrow("SELECT min(uid), count(*) FROM accounts")
        if await conn.fetchval("SELECT max(uid) - min(uid) + 1 FROM accounts") != count:
            raise SystemExit("the scratch database's uids are not consecutive")
        await conn.execute(SEED_MAKER_ORDERS, first_uid, count)
        await conn.execute(SEED_TAKER_ORDERS, first_uid, count)
        orders = await conn.fetchval("SELECT count(*) FROM orders")
        print(f"  orders      {orders:>9,}  {time.perf_counter() - started:6.1f} s", flush=True)
        for column in ("maker_order_id", "taker_order_id"):
            await conn.execute(SEED_EXECUTIONS.format(column=column))
        executions = await conn.fetchval("SELECT count(*) FROM executions")
        print(f"  executions  {executions:>9,}  {time.perf_counter() - started:6.1f} s", flush=True)
        await conn.execute("ANALYZE")
        print(f"  analyzed               {time.perf_counter() - started:6.1f} s", flush=True)
    finally:
        await conn.close()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def f(field: str, entry: str, value: Any) -> dict[str, Any]:
    return {"entryType": entry, "field": field, "value": value}


def queries(history: Any, who: Principal, end: datetime) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    day = [f("createdAt", "Between", [iso(end - timedelta(days=1)), iso(end)])]
    week = [f("createdAt", "GreaterOrEqual", iso(end - timedelta(days=7)))]
    account = "BA" + "100042"
    return [
        (
            "trades: market + last day, createdAt desc, limit 100",
            lambda: history.trades(
                who,
                {
                    "filters": [f("marketId", "Equals", "BTCUSDT"), *day],
                    "sort": {"field": "createdAt", "direction": "Desc"},
                    "limit": 100,
                },
            ),
        ),
        (
            "trades: market + last day, executionPrice asc, limit 100",
            lambda: history.trades(
                who,
                {
                    "filters": [f("marketId", "Equals", "ETHBTC"), *day],
                    "sort": {"field": "executionPrice", "direction": "Asc"},
                    "limit": 100,
                },
            ),
        ),
        (
            "trades: all markets, last week, page at offset 5000",
            lambda: history.trades(who, {"filters": week, "limit": 100, "offset": 5000}),
        ),
        (
            "trades: one account, createdAt desc, limit 100",
            lambda: history.trades(who, {"filters": [f("accountId", "Equals", account)], "limit": 100}),
        ),
        (
            "trades: quoteAmount > 100 in the last day",
            lambda: history.trades(
                who, {"filters": [f("quoteAmount", "GreaterThan", "100"), *day], "limit": 100}
            ),
        ),
        (
            "orders: one account, createdAt desc, limit 100",
            lambda: history.orders(who, {"filters": [f("accountId", "Equals", account)], "limit": 100}),
        ),
        (
            "orders: market + status In, last day",
            lambda: history.orders(
                who,
                {
                    "filters": [f("marketId", "Equals", "ETHUSDT"), f("orderStatus", "In", ["Filled"]), *day],
                    "limit": 100,
                },
            ),
        ),
        ("open orders: total + first page", lambda: history.open_orders(who, {"limit": 100})),
        (
            "commissions/users-assets: last day",
            lambda: history.commissions_users_assets(who, {"filters": day, "limit": 1000}),
        ),
        (
            "commissions/users: last week, by commission desc",
            lambda: history.commissions_users(
                who,
                {
                    "filters": week,
                    "sort": {"field": "totalCommissionInRAT", "direction": "Desc"},
                    "limit": 100,
                },
            ),
        ),
        (
            "commissions/users: all time (every execution)",
            lambda: history.commissions_users(who, {"limit": 100}),
        ),
        (
            "commissions/accounts: one account, all time",
            lambda: history.commissions_accounts(who, {"filters": [f("accountId", "Equals", account)]}),
        ),
        ("commissions/assets: all time (every execution)", lambda: history.commissions_assets(who, {})),
        ("markups revenue: last week", lambda: history.markup_revenue(who, {"filters": week})),
        ("billing-info: all time", lambda: history.billing_info(who, {})),
        ("active-accounts: last day", lambda: history.active_accounts(who, {"filters": day})),
        ("accounts/balances: first 1000", lambda: history.account_balances(who, {"limit": 1000})),
    ]


def count(result: Any) -> int:
    if isinstance(result, Page):
        return len(result.rows)
    return 1


async def run(url: str, runs: int, days: int) -> list[tuple[str, int, float, float]]:
    settings = Settings(env="dev", rate_limit="off", log_json=False, engines_on_start=False)
    container = build(settings, url)
    who = Principal.of(UserId(1), "bench", frozenset({Role.ADMIN}))
    end = START + timedelta(days=days)
    out = []
    try:
        for name, call in queries(container.history, who, end):
            times, rows = [], 0
            await call()  # warm: plan caches, buffers
            for _ in range(runs):
                started = time.perf_counter()
                rows = count(await call())
                times.append(time.perf_counter() - started)
            out.append((name, rows, statistics.median(times), max(times)))
            print(
                f"  {name:<56} {rows:>6} rows  {1000 * out[-1][2]:8.1f} ms  (max {1000 * max(times):.1f})",
                flush=True,
            )
    finally:
        await container.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", metavar="DATABASE", help="query a database kept by --keep, seed nothing")
    args = parser.parse_args()
    if not 1 <= args.trades <= 5_000_000 or not 2 <= args.accounts <= 1_000_000:
        parser.error("--trades must be 1..5,000,000 and --accounts 2..1,000,000")

    with scratch_database("bourse_bench_history", keep=args.keep, reuse=args.reuse) as url:
        name = make_url(url).database
        try:
            if not args.reuse:
                print(f"seeding {name}:", flush=True)
                asyncio.run(seed(url, args.trades, args.accounts, args.days))
            print(f"queries (median of {args.runs} runs):", flush=True)
            results = asyncio.run(run(url, args.runs, args.days))
            slow = [r for r in results if r[2] >= 1.0]
            print(
                f"{len(results) - len(slow)}/{len(results)} queries under 1 s"
                + (f"; slower: {', '.join(r[0] for r in slow)}" if slow else "")
            )
        finally:
            if args.keep or args.reuse:
                print(f"kept database {name}")


if __name__ == "__main__":
    main()
