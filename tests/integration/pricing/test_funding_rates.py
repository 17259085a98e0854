"""Funding rates of perpetual markets: stored at each due time from the last mark and index, once;
missed times are caught up after a gap; a time without an index has no funding; paging."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bourse.domain.pricing import FundingQuery
from tests.integration.pricing.support import make_perpetual, set_source, use_fake_feed
from tests.integration.trading.support import ADMIN, make_market

D = Decimal


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 9, day, hour, minute, second, tzinfo=UTC)


async def test_rates_are_stored_once_and_caught_up_after_a_gap(container, clock):
    use_fake_feed(container)
    clock.current = at(9, 6)
    market = await make_perpetual(container)  # funding every 8 h from 00:00 UTC
    await set_source(container, market, executionMode="Dealer", sourceKind="Manual", bid="100", ask="100")
    await container.pricing.tick()  # index 100, mark 100.00
    clock.advance(seconds=1)
    await set_source(container, market, executionMode="Dealer", sourceKind="Manual", bid="100.3", ask="100.3")
    await container.pricing.tick()  # index 100.3, mark 100 + 0.3 / 3 = 100.10
    mark = await container.pricing.mark(market)
    assert (mark.mark, mark.index) == (D("100.10"), D("100.3"))
    assert await container.pricing.run_funding_rates() == 0  # nothing due before 08:00

    clock.current = at(9, 8, 0, 5)
    assert await container.pricing.run_funding_rates() == 1
    assert await container.pricing.run_funding_rates() == 0  # a stored time is not stored again
    [rate] = await container.pricing.funding_rates_after(market, None)
    # (100.10 - 100.3) / 100.3 = -0.0019940179.. -> -0.00199402 (half-even, 8 decimals)
    assert (rate.applied_at, rate.interval_hours, rate.rate, rate.mark, rate.index) == (
        at(9, 8),
        8,
        D("-0.00199402"),
        D("100.10"),
        D("100.3"),
    )

    # The job was down until the next day 09:00: 16:00, 00:00 and 08:00 are caught up.
    clock.current = at(10, 9)
    assert await container.pricing.run_funding_rates() == 3
    rates = await container.pricing.funding_rates_after(market, None)
    assert [r.applied_at for r in rates] == [at(9, 8), at(9, 16), at(10, 0), at(10, 8)]
    assert {r.rate for r in rates} == {D("-0.00199402")}
    assert [r.applied_at for r in await container.pricing.funding_rates_after(market, at(9, 16))] == [
        at(10, 0),
        at(10, 8),
    ]

    # Paging, newest first.
    page = await container.pricing.funding(ADMIN, market, FundingQuery(limit=3))
    assert [r.applied_at for r in page.rates] == [at(10, 8), at(10, 0), at(9, 16)]
    assert page.has_more
    rest = await container.pricing.funding(ADMIN, market, FundingQuery(limit=3, before=at(9, 16)))
    assert [r.applied_at for r in rest.rates] == [at(9, 8)] and not rest.has_more
    exact = await container.pricing.funding(ADMIN, market, FundingQuery(limit=4))
    assert len(exact.rates) == 4 and not exact.has_more


async def test_a_time_without_an_index_has_no_funding(container, clock):
    feed = use_fake_feed(container)
    clock.current = at(9, 6)
    market = await make_perpetual(container)
    feed.set("binance", "BTC/USDT", "100", "102")
    await set_source(
        container, market, executionMode="Dealer", sourceKind="Ccxt", exchange="binance", symbol="BTC/USDT"
    )
    await container.pricing.tick()
    feed.fail("binance", "BTC/USDT")
    clock.current = at(9, 8, 0, 5)
    await container.pricing.tick()  # stale: no index
    assert (await container.pricing.mark(market)).index is None
    assert await container.pricing.run_funding_rates() == 0
    # The source is back: 08:00 stays without funding, 16:00 gets its rate.
    feed.set("binance", "BTC/USDT", "100", "102")
    await container.pricing.tick()
    assert await container.pricing.run_funding_rates() == 0
    clock.current = at(9, 16, 0, 1)
    await container.pricing.tick()
    assert await container.pricing.run_funding_rates() == 1
    [rate] = await container.pricing.funding_rates_after(market, None)
    assert (rate.applied_at, rate.rate, rate.mark, rate.index) == (at(9, 16), D(0), D("101.00"), D("101"))


async def test_only_priced_perpetual_markets_with_a_schedule_get_rates(container, clock):
    use_fake_feed(container)
    clock.current = at(9, 6)
    cfd = await make_perpetual(container, marketId="BTCCFD", type="Cfd")
    unscheduled = await make_perpetual(
        container, marketId="BTCPERP2", fundingStartTime=None, fundingIntervalInHours=None
    )
    unpriced = await make_perpetual(container, marketId="BTCPERP3")
    await make_market(container)  # spot
    for market in (cfd, unscheduled):
        await set_source(container, market, executionMode="Dealer", sourceKind="Manual", bid="1", ask="2")
    await container.pricing.tick()
    clock.current = at(10, 6)
    assert await container.pricing.run_funding_rates() == 0
    for market in (cfd, unscheduled, unpriced):
        assert await container.pricing.funding_rates_after(market, None) == []
