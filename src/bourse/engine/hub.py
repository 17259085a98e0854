"""Every market's runner in one process: started on first use or all at once, stopped together."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import structlog

from bourse.domain.errors import NotFound
from bourse.domain.markets import Market, MarketType
from bourse.domain.order_requests import OrderRequest
from bourse.domain.trading import Order
from bourse.domain.values import AccountId
from bourse.engine.derivatives_runner import CancelDerivative, DerivativeMarketRunner, PlaceDerivative
from bourse.engine.runner import CancelCommand, FeeTermsCache, MarketRunner, PlaceCommand, RunnerSettings
from bourse.service.derivatives_records import BookOrderRequest, DerivativeOrder
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
        root_asset: str = "RAT",
    ) -> None:
        self._root = root_asset
        self._uow = uow
        self._clock = clock
        self._bus = bus
        self.settings = settings or RunnerSettings()
        self._fees = FeeTermsCache(fee_ttl, root_asset)
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
                async with self._uow() as uow:
                    market = await uow.markets.get(market_id)
                if market is None:
                    raise NotFound(f"market {market_id} not found", field="marketId")
                if market.type in (MarketType.CFD, MarketType.PERPETUAL):
                    # Derivative markets: the book holds derivative orders and the runner owns positions.
                    runner = DerivativeMarketRunner(
                        market_id, self._uow, self._clock, self._bus, self._fees, self.settings, self._root
                    )
                else:
                    runner = MarketRunner(
                        market_id, self._uow, self._clock, self._bus, self._fees, self.settings
                    )
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

    async def place_derivative(self, order: BookOrderRequest) -> DerivativeOrder:
        runner = await self.runner(order.request.market_id)
        result: DerivativeOrder = await runner.submit(PlaceDerivative(order))  # type: ignore[arg-type]
        return result

    async def cancel_derivative(
        self, market_id: str, account_id: AccountId, order_id: int
    ) -> DerivativeOrder | None:
        runner = await self.runner(market_id)
        result: DerivativeOrder | None = await runner.submit(CancelDerivative(account_id, order_id))  # type: ignore[arg-type]
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
