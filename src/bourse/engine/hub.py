"""Every market's runner in one process: started on first use or all at once, stopped together."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import structlog

from bourse.domain.markets import Market
from bourse.domain.order_requests import OrderRequest
from bourse.domain.trading import Order
from bourse.domain.values import AccountId
from bourse.engine.runner import CancelCommand, FeeTermsCache, MarketRunner, PlaceCommand, RunnerSettings
from bourse.service.ports import Clock, EventBus, UnitOfWorkFactory

log = structlog.get_logger("bourse.engine")


class EngineHub:
    """The order gateway of ``service.trading``: routes each command to its market's runner.

    A runner starts (and recovers its book) the first time its market is used, or for every
    market at once with ``start_all`` (the server's start-up).
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        bus: EventBus,
        settings: RunnerSettings | None = None,
        fee_ttl: float = 5.0,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._bus = bus
        self.settings = settings or RunnerSettings()
        self._fees = FeeTermsCache(fee_ttl)
        self._runners: dict[str, MarketRunner] = {}
        self._lock: asyncio.Lock | None = None

    async def runner(self, market_id: str) -> MarketRunner:
        runner = self._runners.get(market_id)
        if runner is not None:
            return runner
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            runner = self._runners.get(market_id)
            if runner is None:
                runner = MarketRunner(market_id, self._uow, self._clock, self._bus, self._fees, self.settings)
                await runner.start()  # NotFound for an unknown market: nothing is registered
                self._runners[market_id] = runner
        return runner

    async def place(self, account_id: AccountId, request: OrderRequest) -> Order:
        runner = await self.runner(request.market_id)
        order: Order = await runner.submit(PlaceCommand(account_id, request))
        return order

    async def cancel(
        self, market_id: str, account_id: AccountId, order_id: int, *, stop_only: bool
    ) -> Order | None:
        runner = await self.runner(market_id)
        result: Order | None = await runner.submit(CancelCommand(account_id, order_id, stop_only))
        return result

    def last_price(self, market_id: str) -> Decimal | None:
        runner = self._runners.get(market_id)
        return None if runner is None else runner.last_price

    def market(self, market_id: str) -> Market | None:
        runner = self._runners.get(market_id)
        return None if runner is None else runner.market

    async def start_all(self) -> None:
        """Start every market's runner; a market whose book does not match its checkpoint stays stopped."""
        async with self._uow() as uow:
            markets = await uow.markets.list()
        for market in markets:
            runner = await self.runner(market.id)
            if runner.stopped is not None:
                log.error("market not trading after recovery", market=market.id, reason=runner.stopped)

    async def aclose(self) -> None:
        runners, self._runners = list(self._runners.values()), {}
        for runner in runners:
            await runner.stop()
