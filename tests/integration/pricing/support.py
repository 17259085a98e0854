"""Helpers for pricing tests: a fake price feed, derivative markets, the pricing service on it,
and what the job left behind (admin notifications, audit entries)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bourse.adapters.db import workspace_tables
from bourse.domain.circuit_breaker import BreakerSettings
from bourse.domain.pricing import SourcePrice
from bourse.service.context import RequestMeta
from bourse.service.ports import PriceFeedError
from bourse.service.pricing import PricingService
from tests.integration.trading.support import ADMIN, make_market

D = Decimal


class FakeFeed:
    """A ``PriceFeed``: the test sets each (exchange, symbol)'s bid/ask, or an error, by hand."""

    def __init__(self, clock: Any, exchanges: frozenset[str] = frozenset({"binance", "kraken"})) -> None:
        self._clock = clock
        self._exchanges = exchanges
        self.prices: dict[tuple[str, str], tuple[Decimal, Decimal] | str] = {}
        self.calls: list[tuple[str, str]] = []
        self.closed = False

    def set(self, exchange: str, symbol: str, bid: str, ask: str) -> None:
        self.prices[(exchange, symbol)] = (D(bid), D(ask))

    def fail(self, exchange: str, symbol: str, why: str = "connection refused") -> None:
        self.prices[(exchange, symbol)] = why

    def supports(self, exchange: str) -> bool:
        return exchange in self._exchanges

    async def ticker(self, exchange: str, symbol: str) -> SourcePrice:
        self.calls.append((exchange, symbol))
        price = self.prices.get((exchange, symbol), "no such symbol")
        if isinstance(price, str):
            raise PriceFeedError(f"{exchange} {symbol}: {price}")
        now: datetime = self._clock.now()
        return SourcePrice(price[0], price[1], now)

    async def aclose(self) -> None:
        self.closed = True


def use_fake_feed(container: Any, move: str = "0.10", window: int = 300) -> FakeFeed:
    """Swap the container's pricing service for one on a fake feed (no network in tests)."""
    feed = FakeFeed(container.clock)
    container.pricing = PricingService(
        container.uow, container.clock, feed, BreakerSettings(D(move), window), container.bus
    )
    return feed


PERPETUAL = {
    "type": "Perpetual",
    "marketId": "BTCPERP",
    "displayName": "BTC perpetual",
    "lotSize": 1,
    "maxLeverage": 10,
    "fundingStartTime": "00:00:00",
    "fundingIntervalInHours": 8,
}


async def make_perpetual(container: Any, **fields: Any) -> str:
    return await make_market(container, **{**PERPETUAL, **fields})


async def set_source(container: Any, market_id: str, **body: Any) -> Any:
    return await container.pricing.set_price_source(ADMIN, market_id, body, RequestMeta())


async def admin_notifications(container: Any, kind: str | None = None) -> list[dict[str, Any]]:
    t = workspace_tables.admin_notifications
    stmt = select(t.c.type, t.c.title, t.c.body, t.c.data).order_by(t.c.id)
    if kind is not None:
        stmt = stmt.where(t.c.type == kind)
    async with container.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(stmt)]


async def audit_statuses(container: Any, market_id: str) -> list[tuple[str, str | None, str | None]]:
    """(actor, status, reason) of the market's audit entries, oldest first."""
    async with container.engine.connect() as conn:
        rows = (
            await conn.exec_driver_sql(
                "SELECT actor, details->>'status', details->>'reason' FROM audit_log"
                f" WHERE subject = 'market:{market_id}' AND action = 'market.updated' ORDER BY id"
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]
