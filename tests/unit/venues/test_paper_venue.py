"""The paper venue: fills at the source price, latency, and its failure modes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bourse.adapters.venues.paper import PaperVenue
from bourse.adapters.venues.registry import VenueRegistry
from bourse.domain.errors import NotFound
from bourse.domain.orders import Side
from bourse.domain.pricing import PriceUnavailable
from bourse.domain.values import AssetId
from bourse.domain.venues import (
    PaperMode,
    PaperSettings,
    SourceQuote,
    VenueConfig,
    VenueKind,
    VenueOrderRef,
    VenueOrderRequest,
    VenueOrderState,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)

D = Decimal
T0 = datetime(2025, 9, 9, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


class Prices:
    def __init__(self) -> None:
        self.quotes = {"BTCCFD": SourceQuote(D("100.5"), D("101.25"), AssetId("USDT"))}
        self.stale: set[str] = set()

    async def __call__(self, symbol: str) -> SourceQuote:
        if symbol in self.stale:
            raise PriceUnavailable(f"market {symbol} has no fresh price")
        if symbol not in self.quotes:
            raise NotFound(f"market {symbol} not found")
        return self.quotes[symbol]


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def _venue(
    mode: PaperMode = PaperMode.FILL, latency: int = 0, fee: str = "0"
) -> tuple[PaperVenue, Prices, Clock, Sleeps]:
    prices, clock, sleeps = Prices(), Clock(), Sleeps()
    venue = PaperVenue("paper", PaperSettings(mode, latency, D(fee)), prices, clock, sleep=sleeps)
    return venue, prices, clock, sleeps


def _buy(
    client: str = "H1", amount: str = "2", symbol: str = "BTCCFD", side: Side = Side.BUY
) -> VenueOrderRequest:
    return VenueOrderRequest(client, symbol, side, D(amount))


async def test_fill_mode_fills_buys_at_the_ask_and_sells_at_the_bid_with_its_fee():
    venue, *_ = _venue(fee="0.001")
    buy = await venue.place(_buy())
    assert (buy.state, buy.filled, buy.average_price) == (VenueOrderState.FILLED, D(2), D("101.25"))
    assert (buy.commission, buy.commission_asset) == (D("0.2025"), "USDT")  # 202.5 * 0.001
    sell = await venue.place(_buy("H2", "0.3", side=Side.SELL))
    assert (sell.average_price, sell.commission) == (D("100.5"), D("0.03015"))
    assert buy.lp_order_id != sell.lp_order_id
    # the same client id names the same order: never a second fill
    assert await venue.place(_buy()) == buy
    assert await venue.get(VenueOrderRef("BTCCFD", "H1")) == buy
    assert venue.requests == [("place", "H1"), ("place", "H2"), ("place", "H1"), ("get", "H1")]


async def test_accept_mode_fills_at_the_first_look_up_after_the_latency_at_that_moments_price():
    venue, prices, clock, sleeps = _venue(PaperMode.ACCEPT, latency=250)
    placed = await venue.place(_buy())
    assert (placed.state, placed.filled) == (VenueOrderState.OPEN, 0)
    ref = VenueOrderRef("BTCCFD", "H1", placed.lp_order_id)
    clock.at = T0 + timedelta(milliseconds=249)
    assert (await venue.get(ref)).state is VenueOrderState.OPEN
    prices.quotes["BTCCFD"] = SourceQuote(D("110"), D("111"), AssetId("USDT"))
    clock.at = T0 + timedelta(milliseconds=250)
    filled = await venue.get(ref)
    assert (filled.state, filled.average_price) == (VenueOrderState.FILLED, D("111"))
    assert sleeps.seconds == [0.25, 0.25, 0.25]  # every answer takes the latency


async def test_cancel_an_open_order_and_a_filled_one_stays_filled():
    venue, *_ = _venue(PaperMode.ACCEPT, latency=1000)
    placed = await venue.place(_buy())
    cancelled = await venue.cancel(VenueOrderRef("BTCCFD", "H1"))
    assert (cancelled.state, cancelled.filled) == (VenueOrderState.CANCELLED, 0)
    venue.configure(PaperSettings(PaperMode.FILL))
    filled = await venue.place(_buy("H2"))
    assert (await venue.cancel(VenueOrderRef("BTCCFD", "H2"))).state is VenueOrderState.FILLED
    assert placed.lp_order_id != filled.lp_order_id
    with pytest.raises(VenueRejected, match="no order H9"):
        await venue.cancel(VenueOrderRef("BTCCFD", "H9"))
    with pytest.raises(VenueRejected, match="no order H2"):  # the venue id must match too
        await venue.get(VenueOrderRef("BTCCFD", "H2", "paper-999"))


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        (PaperMode.REJECT, VenueRejected),
        (PaperMode.UNAVAILABLE, VenueUnavailable),
        (PaperMode.SILENT, VenueTimeout),
    ],
)
async def test_failure_modes(mode, error):
    venue, *_ = _venue(mode)
    with pytest.raises(error):
        await venue.place(_buy())
    assert venue.requests == [("place", "H1")]


async def test_prices_it_cannot_get():
    venue, prices, *_ = _venue()
    with pytest.raises(VenueRejected, match="unknown symbol ETHCFD"):
        await venue.place(_buy(symbol="ETHCFD"))
    prices.stale.add("BTCCFD")
    with pytest.raises(VenueUnavailable, match="no price for BTCCFD"):
        await venue.place(_buy())
    with pytest.raises(VenueRejected, match="amount must be positive"):
        await venue.place(_buy("H3", "0"))


async def test_the_registry_keeps_one_paper_venue_and_its_orders_across_setting_changes():
    prices, clock = Prices(), Clock()
    registry = VenueRegistry(clock, prices, exchanges=frozenset({"binance"}))
    config = VenueConfig("paper", VenueKind.PAPER, "Paper", T0, T0, paper=PaperSettings(PaperMode.FILL))
    venue = registry.venue(config, None)
    assert registry.venue(config, None) is venue
    await venue.place(_buy())
    changed = VenueConfig(
        "paper",
        VenueKind.PAPER,
        "Paper",
        T0,
        T0 + timedelta(seconds=1),
        paper=PaperSettings(PaperMode.SILENT),
    )
    assert registry.venue(changed, None) is venue
    with pytest.raises(VenueTimeout):
        await venue.get(VenueOrderRef("BTCCFD", "H1"))
    assert registry.supports_exchange("binance") and not registry.supports_exchange("kraken")
    await registry.aclose()
