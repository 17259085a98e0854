"""The paper venue: a simulated exchange inside the platform, for demos and tests.

It fills market orders at the current source price of one of our markets (the venue symbol is a
market id): a buy at the source's ask, a sell at its bid, before any dealer markup (what a real
venue would charge), with ``feeRate`` of the quote amount as commission in the market's quote
asset. Every answer takes ``latencyMs``. ``mode`` chooses how it answers
(``domain.venues.PaperMode``): fill at once, acknowledge and fill at the first look-up once the
latency has passed, reject, be unreachable, or never answer (so orders time out).

Orders live in this object (one per venue, kept by the registry across setting changes), like
orders at a real venue live there and not in our database. A client order id seen before returns
the order it named, as venues that keep client ids do. ``requests`` logs every call received,
in order: what an operator (or a test) looks at to see what the platform asked of the venue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal, localcontext

from bourse.domain.errors import BusinessRejection, NotFound
from bourse.domain.orders import Side
from bourse.domain.venues import (
    PaperMode,
    PaperSettings,
    SourceQuote,
    VenueOrder,
    VenueOrderRef,
    VenueOrderRequest,
    VenueOrderState,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)
from bourse.service.ports import Clock

COMMISSION_SCALE = 8


QuoteSource = Callable[[str], Awaitable[SourceQuote]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Order:
    report: VenueOrder
    side: Side
    symbol: str
    accepted_at: datetime


class PaperVenue:
    """The ``Venue`` port, simulated. ``quote`` gives a symbol's current source price (NotFound for
    no such market, a BusinessRejection such as PriceUnavailable when there is no fresh price);
    ``sleep`` is ``asyncio.sleep`` (tests may pass their own)."""

    def __init__(
        self,
        venue_id: str,
        settings: PaperSettings,
        quote: QuoteSource,
        clock: Clock,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.venue_id = venue_id
        self.settings = settings
        self._quote = quote
        self._clock = clock
        self._sleep = sleep
        self._orders: dict[str, _Order] = {}
        self._next = 0
        self.requests: list[tuple[str, str]] = []

    def configure(self, settings: PaperSettings) -> None:
        """New behaviour from now on; the orders it holds stay."""
        self.settings = settings

    async def _answer(self, operation: str, client_order_id: str) -> None:
        self.requests.append((operation, client_order_id))
        if self.settings.latency_ms:
            await self._sleep(self.settings.latency_ms / 1000)
        mode = self.settings.mode
        if mode is PaperMode.UNAVAILABLE:
            raise VenueUnavailable(f"paper venue {self.venue_id} is unavailable (mode Unavailable)")
        if mode is PaperMode.SILENT:
            raise VenueTimeout(f"paper venue {self.venue_id} did not answer (mode Silent)")

    async def place(self, request: VenueOrderRequest) -> VenueOrder:
        await self._answer("place", request.client_order_id)
        known = self._orders.get(request.client_order_id)
        if known is not None:
            return known.report
        if self.settings.mode is PaperMode.REJECT:
            raise VenueRejected(f"paper venue {self.venue_id} rejects every order (mode Reject)")
        if request.amount <= 0:
            raise VenueRejected(f"amount must be positive, not {request.amount}")
        self._next += 1
        report = VenueOrder(
            lp_order_id=f"{self.venue_id}-{self._next}",
            client_order_id=request.client_order_id,
            state=VenueOrderState.OPEN,
            amount=request.amount,
            filled=Decimal(0),
            average_price=None,
            commission=Decimal(0),
            commission_asset=None,
        )
        order = _Order(report, request.side, request.symbol, self._clock.now())
        if self.settings.mode is PaperMode.FILL:
            order = await self._fill(order)
        self._orders[request.client_order_id] = order
        return order.report

    async def get(self, ref: VenueOrderRef) -> VenueOrder:
        await self._answer("get", ref.client_order_id)
        order = self._find(ref)
        latency = timedelta(milliseconds=self.settings.latency_ms)
        if order.report.state is VenueOrderState.OPEN and self._clock.now() >= order.accepted_at + latency:
            order = await self._fill(order)
            self._orders[ref.client_order_id] = order
        return order.report

    async def cancel(self, ref: VenueOrderRef) -> VenueOrder:
        await self._answer("cancel", ref.client_order_id)
        order = self._find(ref)
        if order.report.state in (VenueOrderState.OPEN, VenueOrderState.PARTIALLY_FILLED):
            order = replace(
                order, report=replace(order.report, state=VenueOrderState.CANCELLED, reason="cancelled")
            )
            self._orders[ref.client_order_id] = order
        return order.report

    def _find(self, ref: VenueOrderRef) -> _Order:
        order = self._orders.get(ref.client_order_id)
        if order is None or (ref.lp_order_id is not None and order.report.lp_order_id != ref.lp_order_id):
            raise VenueRejected(f"paper venue {self.venue_id} has no order {ref.client_order_id}")
        return order

    async def _fill(self, order: _Order) -> _Order:
        try:
            quote = await self._quote(order.symbol)
        except NotFound as e:
            raise VenueRejected(f"paper venue {self.venue_id}: unknown symbol {order.symbol}") from e
        except BusinessRejection as e:  # no fresh price (PriceUnavailable), a halted market
            raise VenueUnavailable(f"paper venue {self.venue_id}: no price for {order.symbol}: {e}") from e
        price = quote.ask if order.side is Side.BUY else quote.bid
        amount = order.report.amount
        with localcontext() as ctx:
            ctx.prec = 100
            fee = (price * amount * self.settings.fee_rate).quantize(
                Decimal(1).scaleb(-COMMISSION_SCALE), rounding=ROUND_CEILING
            )
        report = replace(
            order.report,
            state=VenueOrderState.FILLED,
            filled=amount,
            average_price=price,
            commission=fee,
            commission_asset=quote.quote_asset,
        )
        return replace(order, report=report)
