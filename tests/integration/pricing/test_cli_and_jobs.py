"""`bourse market price-source` as an operator runs it (its own process on the configured database),
and the pricing jobs as the API process starts them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from decimal import Decimal

from bourse.domain.markets import MarketStatus
from bourse.jobs.runner import pricing_jobs
from tests.integration.pricing.support import make_perpetual, set_source, use_fake_feed
from tests.integration.trading.support import make_market, make_trader, place


def bourse(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOURSE_")}
    env.update(BOURSE_DATABASE_URL=db_url, BOURSE_ENV="dev", BOURSE_LOG_JSON="false")
    return subprocess.run(
        [sys.executable, "-m", "bourse.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def run(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(bourse, db_url, *args)


async def test_price_source_command(container, db_url):
    market = await make_perpetual(container)
    done = await run(
        db_url,
        "market", "price-source", market,
        "--mode", "Dealer", "--kind", "Manual", "--bid", "100", "--ask", "101", "--markup", "0.001",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["settings"] == {
        "executionMode": "Dealer",
        "sourceKind": "Manual",
        "sourceMarketId": None,
        "exchange": None,
        "symbol": None,
        "bid": "100",
        "ask": "101",
        "markupRate": "0.001",
        "staleAfterSeconds": 30,
    }
    assert (view["bid"], view["ask"]) == ("99.9", "101.11")  # 101 * 1.001 = 101.101 -> up
    settings = await container.pricing.settings(market)
    assert settings is not None and settings.source.ask == 101

    ccxt = await run(
        db_url,
        "market", "price-source", market,
        "--mode", "Dealer", "--kind", "Ccxt", "--exchange", "kraken", "--symbol", "BTC/USD", "--stale-after", "60",
    )  # fmt: skip
    assert ccxt.returncode == 0, ccxt.stderr
    shown = await run(db_url, "market", "show-price-source", market)
    assert shown.returncode == 0, shown.stderr
    got = json.loads(shown.stdout)["settings"]
    assert (got["exchange"], got["symbol"], got["staleAfterSeconds"]) == ("kraken", "BTC/USD", 60)

    bad = await run(
        db_url,
        "market",
        "price-source",
        market,
        "--mode",
        "Dealer",
        "--kind",
        "Manual",
        "--bid",
        "2",
        "--ask",
        "1",
    )
    assert bad.returncode != 0 and "ask must not be below bid" in bad.stderr
    assert (await container.pricing.settings(market)).source.exchange == "kraken"  # unchanged


async def test_the_jobs_price_mark_and_break(container):
    feed = use_fake_feed(container)
    perp = await make_perpetual(container)
    feed.set("binance", "BTC/USDT", "100", "100.02")
    await set_source(
        container, perp, executionMode="Dealer", sourceKind="Ccxt", exchange="binance", symbol="BTC/USDT"
    )
    spot = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    bob = await make_trader(container, "bob", btc="10")
    for price in ("100.00", "120.00"):
        await place(container, bob, spot, "Sell", "0.01", price)
        await place(container, alice, spot, "Buy", "0.01", price)
    jobs = pricing_jobs(container, tick=0.01, funding=0.01, breaker=0.01)
    for job in jobs:
        job.start()
    try:
        for _ in range(500):
            mark = await container.pricing.mark(perp)
            halted = (await container.markets.get(spot)).status is MarketStatus.HALTED
            if mark is not None and halted:
                break
            await asyncio.sleep(0.01)
    finally:
        for job in jobs:
            await job.stop()
    assert mark is not None and mark.index == Decimal("100.01")
    assert halted
    assert [j.name for j in jobs] == ["pricing", "funding-rates", "circuit-breaker"]


async def test_closing_the_container_closes_the_feed(container):
    feed = use_fake_feed(container)
    await container.aclose()
    assert feed.closed
