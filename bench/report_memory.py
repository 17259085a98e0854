"""Report memory: a one-million-row Trades report to CSV through ReportService, with the peak RSS.

    python bench/report_memory.py [--rows 1000000] [--accounts 1000] [--format Csv|Xlsx] [--keep]

Seeds a scratch database set-based (INSERT ... SELECT generate_series, no Python loop): assets BTC
and USDT, market BTCUSDT, ``--accounts`` users with one account each, ``--rows / 2`` trades, each
between a maker and a taker order of its own, and one execution per side (the Trades report has a
row per execution, so ``--rows`` rows). Then it creates a Trades report (every row, sorted by
createdAt, the query's default) as an admin and runs it the way the report job does (claim, then
process: rows streamed through a server-side cursor and written batch by batch). Prints the rows
written, the file size, the time and the process's peak RSS (``resource.getrusage``), and fails
unless the report completed with every row and the peak stayed under ``--max-rss-mb`` (200).

Uses BOURSE_DATABASE_URL if set (creating the scratch database there), else the embedded server
under var/bench-pg (loopback only); the scratch database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _scratch import plain, scratch_database  # noqa: E402

from bourse.adapters.crypto import Argon2PasswordHasher  # noqa: E402
from bourse.bootstrap import build  # noqa: E402
from bourse.config import Settings  # noqa: E402
from bourse.domain.identity import Principal, Role  # noqa: E402
from bourse.domain.reports import ReportStatus  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)

SEED = [
    "SET synchronous_commit = off",
    """INSERT INTO assets (id, name, scale, type) VALUES ('BTC', 'Bitcoin', 8, 'Crypto'), ('USDT', 'Tether', 6, 'Crypto')""",
    """INSERT INTO markets (market_id, base_asset_id, quote_asset_id, display_name, full_name, type,
                           price_scale, amount_scale, tick_size, lot_step, min_amount, price_deviation,
                           slippage_rate, status, created_at, updated_at)
       VALUES ('BTCUSDT', 'BTC', 'USDT', 'BTC/USDT', 'Bitcoin / Tether', 'Spot', 2, 4, 0.01, 0.0001, 0.0001,
               0.5, 0.05, 'Active', now(), now())""",
    """INSERT INTO users (username, password_hash, email)
       SELECT 'bench' || g, 'not-a-hash', 'bench' || g || '@example.com' FROM generate_series(1, $1::int) g""",
    "INSERT INTO accounts (account_id, uid, name, is_default) SELECT 'BA' || uid, uid, 'Main', true FROM users",
    # Trade i: maker order 2i - 1, taker order 2i, one second apart.
    """INSERT INTO trades (trade_id, market_id, market_seq, price, amount, quote_amount, taker_side,
                           maker_order_id, taker_order_id, created_at)
       SELECT i, 'BTCUSDT', i, 30000 + i % 1000, 0.001 * (1 + i % 100), (30000 + i % 1000) * 0.001 * (1 + i % 100),
              CASE WHEN i % 2 = 0 THEN 'Buy' ELSE 'Sell' END, 2 * i - 1, 2 * i,
              $2::timestamptz + make_interval(secs => i)
         FROM generate_series(1, $1::int) i""",
    """WITH accs AS (SELECT array_agg(account_id ORDER BY uid) AS ids, count(*)::int AS n FROM accounts)
       INSERT INTO orders (order_id, market_id, account_id, side, type, time_in_force, price, quantity, remaining,
                           executed_quote, commission, commission_asset, status, created_at, updated_at)
       SELECT o.id, t.market_id, accs.ids[1 + (o.id * 7919) % accs.n],
              CASE WHEN (o.id = t.taker_order_id) = (t.taker_side = 'Buy') THEN 'Buy' ELSE 'Sell' END,
              'Limit', 'Gtc', t.price, t.amount, 0, t.quote_amount, round(t.quote_amount * 0.001, 8), 'USDT',
              'Filled', t.created_at, t.created_at
         FROM trades t CROSS JOIN accs CROSS JOIN LATERAL (VALUES (t.maker_order_id), (t.taker_order_id)) o(id)""",
    """INSERT INTO executions (order_id, account_id, market_id, trade_id, side, price, amount, quote_amount,
                              commission, commission_asset, is_maker, ledger_tx_id, created_at)
       SELECT o.order_id, o.account_id, t.market_id, t.trade_id, o.side, t.price, t.amount, t.quote_amount,
              o.commission, 'USDT', o.order_id = t.maker_order_id, 0, t.created_at
         FROM trades t JOIN orders o ON o.order_id IN (t.maker_order_id, t.taker_order_id)
        ORDER BY t.trade_id, o.order_id""",
    "ANALYZE",
]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


async def seed(url: str, rows: int, accounts: int) -> None:
    conn = await asyncpg.connect(plain(url))
    try:
        started = time.perf_counter()
        for sql in SEED:
            args: list[object] = []
            if "$2" in sql:
                args = [rows // 2, START]
            elif "$1" in sql:
                args = [accounts]
            await conn.execute(sql, *args)
        count = await conn.fetchval("SELECT count(*) FROM executions")
        print(f"seeded {count:,} executions in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        await conn.close()


async def bench(url: str, args: argparse.Namespace) -> int:
    await seed(url, args.rows, args.accounts)
    data_dir = Path(tempfile.mkdtemp(prefix="bourse-report-bench-"))
    settings = Settings(env="dev", rate_limit="off", log_json=False, db_pool_size=2, data_dir=data_dir)
    container = build(settings, url, hasher=Argon2PasswordHasher(memory_kib=1024, time_cost=1, parallelism=1))
    try:
        created = await container.identity.create_user("bench-admin", "bench-pass-123", roles=(Role.ADMIN,))
        admin = Principal.of(created.user.uid, "bench-admin", created.user.roles)
        before = peak_rss_mb()
        report = await container.reports.create(
            admin, {"reportName": "All trades", "source": "Trades", "format": args.format}
        )
        started = time.perf_counter()
        claimed = await container.reports.claim()
        assert claimed is not None and claimed.id == report.id
        done = await container.reports.process(claimed)
        elapsed = time.perf_counter() - started
        peak = peak_rss_mb()
        ok = done.status is ReportStatus.COMPLETED and done.row_count == args.rows and peak < args.max_rss_mb
        completed = done.status is ReportStatus.COMPLETED
        path = (await container.reports.download(admin, report.id)).path if completed else None
        size = path.stat().st_size if path else 0
        print(f"report: {done.status.value}, {done.row_count:,} rows, {args.format}, {size / 2**20:,.1f} MiB")
        print(f"time: {elapsed:.1f} s ({(done.row_count or 0) / elapsed:,.0f} rows/s)")
        print(f"peak RSS: {peak:.0f} MB (before the report: {before:.0f} MB; limit {args.max_rss_mb} MB)")
        return 0 if ok else 1
    finally:
        await container.aclose()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="report rows (executions); trades = rows / 2"
    )
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--format", choices=["Csv", "Xlsx"], default="Csv")
    parser.add_argument("--max-rss-mb", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    args.rows -= args.rows % 2

    with scratch_database("bourse_report_bench", keep=args.keep) as url:
        code = asyncio.run(bench(url, args))
    sys.exit(code)


if __name__ == "__main__":
    main()
