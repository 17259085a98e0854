"""The ``VenueConnector``: one venue object per stored venue, remade when its settings change.

A paper venue is kept across setting changes (``configure``), so the orders it holds survive a
switch of its mode, as orders at a real venue survive a change of our settings. A ccxt venue is
made again with the new settings and keys; the old one's HTTP session is closed at ``aclose``
(it may still be in use by a job step that started before the change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ccxt.async_support as ccxt_async

from bourse.adapters.venues.ccxt_venue import (
    DEFAULT_TIMEOUT_SECONDS,
    CcxtVenue,
    ExchangeFactory,
    ccxt_exchange,
)
from bourse.adapters.venues.paper import PaperVenue, QuoteSource, Sleep
from bourse.domain.errors import InvariantViolation
from bourse.domain.venues import PaperSettings, VenueConfig, VenueCredentials, VenueKind, VenueUnavailable
from bourse.service.ports import Clock, Venue


@dataclass(slots=True)
class _Made:
    config: VenueConfig  # what it was made from: any difference (not only a newer time) remakes it
    venue: Any


class VenueRegistry:
    def __init__(
        self,
        clock: Clock,
        paper_quote: QuoteSource,
        *,
        ccxt_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        ccxt_factory: ExchangeFactory = ccxt_exchange,
        exchanges: frozenset[str] | None = None,
        paper_sleep: Sleep | None = None,
    ) -> None:
        self._clock = clock
        self._paper_quote = paper_quote
        self._ccxt_timeout = ccxt_timeout_seconds
        self._ccxt_factory = ccxt_factory
        self._known = frozenset(ccxt_async.exchanges) if exchanges is None else exchanges
        self._paper_sleep = paper_sleep
        self._made: dict[str, _Made] = {}
        self._retired: list[CcxtVenue] = []

    def supports_exchange(self, exchange: str) -> bool:
        return exchange in self._known

    def venue(self, config: VenueConfig, credentials: VenueCredentials | None) -> Venue:
        made = self._made.get(config.venue_id)
        if made is not None and made.config == config:
            venue: Venue = made.venue
            return venue
        if config.kind is VenueKind.PAPER:
            settings = config.paper or PaperSettings()
            if made is not None and isinstance(made.venue, PaperVenue):
                made.venue.configure(settings)
                made.config = config
                return made.venue
            extra = {} if self._paper_sleep is None else {"sleep": self._paper_sleep}
            paper = PaperVenue(config.venue_id, settings, self._paper_quote, self._clock, **extra)
            self._made[config.venue_id] = _Made(config, paper)
            return paper
        if config.exchange is None or credentials is None:
            raise InvariantViolation(f"ccxt venue {config.venue_id} without exchange or credentials")
        if not self.supports_exchange(config.exchange):
            raise VenueUnavailable(f"ccxt knows no exchange {config.exchange}")
        if made is not None and isinstance(made.venue, CcxtVenue):
            self._retired.append(made.venue)
        ccxt = CcxtVenue(
            config.exchange,
            credentials,
            sandbox=config.sandbox,
            timeout_seconds=self._ccxt_timeout,
            factory=self._ccxt_factory,
        )
        self._made[config.venue_id] = _Made(config, ccxt)
        return ccxt

    def made(self, venue_id: str) -> Any:
        """The venue object made for ``venue_id``, if any (demos and tests look at a paper venue's log)."""
        made = self._made.get(venue_id)
        return None if made is None else made.venue

    async def aclose(self) -> None:
        ccxt = [m.venue for m in self._made.values() if isinstance(m.venue, CcxtVenue)]
        retired, self._retired, self._made = self._retired, [], {}
        for venue in (*ccxt, *retired):
            await venue.aclose()
