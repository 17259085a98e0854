"""The circuit breaker on a spot market, with real trades through the engine: a move beyond the
limit within the window halts the market (audit, MarketHalted notification, new orders refused);
an operator's reopening is not overruled for the same move."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from bourse.domain.circuit_breaker import BreakerSettings
from bourse.domain.markets import MarketStatus
from bourse.domain.orders import OrderStatus
from tests.conftest import make_settings
from tests.integration.pricing.support import admin_notifications, audit_statuses, use_fake_feed
from tests.integration.trading.support import make_market, make_trader, place, update_market


async def trade(container, buyer, seller, market: str, price: str) -> None:
    await place(container, seller, market, "Sell", "0.01", price)
    view = await place(container, buyer, market, "Buy", "0.01", price)
    assert view.order.status is OrderStatus.FILLED, view.order


async def test_a_big_move_halts_a_spot_market_once(container):
    use_fake_feed(container, move="0.10", window=300)
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="100000")
    bob = await make_trader(container, "bob", btc="10")
    await trade(container, alice, bob, market, "100.00")
    await trade(container, alice, bob, market, "105.00")
    await trade(container, alice, bob, market, "110.00")  # exactly 10 %: not more than the limit
    assert await container.pricing.check_circuit_breakers() == []

    await trade(container, alice, bob, market, "110.01")
    assert await container.pricing.check_circuit_breakers() == [market]
    assert (await container.markets.get(market)).status is MarketStatus.HALTED
    notes = await admin_notifications(container, "MarketHalted")
    assert len(notes) == 1
    data = notes[0]["data"]
    assert data["reason"] == "CircuitBreaker" and data["marketId"] == market
    assert (data["referencePrice"], data["price"], data["move"], data["maxMove"]) == (
        "100",
        "110.01",
        "0.1001",
        "0.1",
    )
    assert "moved 10.01% within 300 s" in notes[0]["body"]
    assert (await audit_statuses(container, market))[-1] == ("system:pricing", "Halted", "CircuitBreaker")
    # The engine learned of the halt: a new order is refused.
    refused = await place(container, alice, market, "Buy", "0.01", "110.00")
    assert (refused.order.status, refused.order.reject_reason) == (OrderStatus.REJECTED, "MarketHalted")
    assert await container.pricing.check_circuit_breakers() == []  # halted already

    # The operator reopens it within the same window: the same move does not halt it again.
    await update_market(container, market, status="Active")
    container.clock.advance(seconds=10)
    await trade(container, alice, bob, market, "111.00")
    assert await container.pricing.check_circuit_breakers() == []
    assert (await container.markets.get(market)).status is MarketStatus.ACTIVE

    # A new move of more than 10 % from where trading resumed (110.01) halts it again.
    await trade(container, alice, bob, market, "121.02")
    assert await container.pricing.check_circuit_breakers() == [market]
    assert len(await admin_notifications(container, "MarketHalted")) == 2


async def test_the_window_slides(container):
    use_fake_feed(container, move="0.10", window=60)
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="100000")
    bob = await make_trader(container, "bob", btc="10")
    await trade(container, alice, bob, market, "100.00")
    container.clock.advance(seconds=61)
    await trade(container, alice, bob, market, "108.00")
    await trade(container, alice, bob, market, "115.00")  # 15 % from 100, but 100 left the window
    assert await container.pricing.check_circuit_breakers() == []
    await trade(container, alice, bob, market, "97.00")  # 10.2 % down from 108
    assert await container.pricing.check_circuit_breakers() == [market]


async def test_zero_disables_the_breaker(container):
    use_fake_feed(container, move="0", window=300)
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="100000")
    bob = await make_trader(container, "bob", btc="10")
    await trade(container, alice, bob, market, "100.00")
    await trade(container, alice, bob, market, "140.00")
    assert await container.pricing.check_circuit_breakers() == []
    assert (await container.markets.get(market)).status is MarketStatus.ACTIVE


async def test_defaults_come_from_the_settings(container, monkeypatch):
    assert container.settings.circuit_breaker_move == Decimal("0.10")
    assert container.settings.circuit_breaker_window_seconds == 300
    assert container.pricing.breaker == BreakerSettings(Decimal("0.10"), 300)
    monkeypatch.setenv("BOURSE_CIRCUIT_BREAKER_MOVE", "0.05")
    monkeypatch.setenv("BOURSE_CIRCUIT_BREAKER_WINDOW_SECONDS", "0")
    settings = make_settings()
    assert (settings.circuit_breaker_move, settings.circuit_breaker_window_seconds) == (Decimal("0.05"), 0)
    monkeypatch.setenv("BOURSE_CIRCUIT_BREAKER_MOVE", "1")
    with pytest.raises(ValidationError):
        make_settings()
