"""Pricing of derivative markets: price sources, dealer quotes, mark prices, funding rates, and the
circuit breaker of every market.

- ``tick()`` (the pricing job, once a second by default) reads each market's source (another of
  our markets' book, a ccxt ticker, or the operator's bid/ask), stores the raw quote, samples the
  mark (the source's mid, else the market's own book mid, smoothed), and halts an Active market
  whose source has been stale for longer than its ``stale_after_seconds``, once per stale episode,
  with an audit entry and a ``MarketHalted`` staff notification. When the source is fresh again
  it reopens the market, but only one it halted itself and nobody changed since.
- ``tick()`` also records the mark and index as they stood at each funding moment and each 00:00
  UTC it passes (``mark_history``: the last sample at or before the moment), so funding and
  swaps are paid at their moment's price however late their jobs run.
- ``run_funding_rates(now)`` stores the funding rate of each Perpetual market at each due funding
  time from the market's mark and index at that moment (the recorded one; the latest when the
  tick has not passed the moment yet); a time already stored is skipped, missed times are
  caught up.
- ``check_circuit_breakers(now)`` halts any Active market, spot included, whose trade price moved
  further than the configured fraction from the first trade of the window; a market an operator
  reopens is not halted again for the same move.

``dealer_quote``, ``mark`` and ``marks`` are what derivatives execution reads.
docs/api/brokerage.md "Price sources, mark price, funding rates, circuit breaker".
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import Any

import structlog

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.circuit_breaker import BreakerSettings, find_breach
from bourse.domain.errors import InvalidInput, NotFound
from bourse.domain.funding import funding_rate, funding_times
from bourse.domain.identity import Operation, Principal
from bourse.domain.markets import Market, MarketStatus, MarketType, iso_millis, truncate_millis
from bourse.domain.pricing import (
    PRICING_ACTOR,
    DealerQuote,
    ExecutionMode,
    FundingPage,
    FundingQuery,
    FundingRate,
    HaltReason,
    HaltState,
    MarkPrice,
    PriceUnavailable,
    PricingSettings,
    SourceKind,
    SourcePrice,
    StoredPrices,
    dealer_quote,
    is_stale,
    mark_sample,
    market_halted_by_pricing,
    market_resumed_by_pricing,
    mid,
    parse_pricing_settings,
    price_text,
    smooth_mark,
)
from bourse.domain.values import format_decimal
from bourse.service.context import RequestMeta
from bourse.service.markets import market_event
from bourse.service.ports import (
    Clock,
    EventBus,
    PriceFeed,
    PriceFeedError,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = structlog.get_logger("bourse.pricing")

# A ccxt read that takes longer is a failed read this tick (the adapter has its own HTTP timeout).
DEFAULT_FEED_TIMEOUT = 5.0
# Funding times stored per market per run at most (a long outage is caught up over a few runs).
FUNDING_CATCH_UP = 1000


@dataclass(frozen=True, slots=True)
class PricingView:
    """A market's price source as the back office sees it."""

    market: Market
    settings: PricingSettings | None
    prices: StoredPrices | None
    quote: DealerQuote | None  # the current dealer quote, if the market deals and has a fresh price
    stale: bool  # the source has no fresh price


def _empty_prices(market_id: str) -> StoredPrices:
    return StoredPrices(market_id, None, None, None, None, None, None, None, None, None, None)


class PricingService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        feed: PriceFeed,
        breaker: BreakerSettings,
        bus: EventBus | None = None,
        *,
        feed_timeout: float = DEFAULT_FEED_TIMEOUT,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._feed = feed
        self.breaker = breaker
        self._bus = bus
        self._feed_timeout = feed_timeout

    async def aclose(self) -> None:
        await self._feed.aclose()

    # --- what execution reads ------------------------------------------------------------------

    async def settings(self, market_id: str) -> PricingSettings | None:
        async with self._uow() as uow:
            return await uow.pricing.get_settings(market_id)

    async def dealer_quote(self, market_id: str) -> DealerQuote:
        """The prices the house deals at now; PriceUnavailable when the market has no source or no
        fresh price (never read, or older than its ``stale_after_seconds``)."""
        now = self._clock.now()
        async with self._uow() as uow:
            settings = await uow.pricing.get_settings(market_id)
            market = await uow.markets.get(market_id)
            prices = await uow.pricing.prices(market_id) if settings is not None else None
        if market is None:
            raise NotFound(f"market {market_id} not found", field="marketId")
        quote = _quote(market, settings, prices, now)
        if quote is None:
            raise PriceUnavailable(f"market {market_id} has no fresh price to deal at", marketId=market_id)
        return quote

    async def mark(self, market_id: str) -> MarkPrice | None:
        """The market's latest mark (None before the first sample)."""
        return (await self.marks([market_id])).get(market_id)

    async def marks(self, market_ids: Sequence[str]) -> dict[str, MarkPrice]:
        """The latest mark of each market that has one."""
        async with self._uow() as uow:
            stored = await uow.pricing.prices_of(market_ids)
        return {
            m: MarkPrice(m, p.mark, p.index, p.marked_at)
            for m, p in stored.items()
            if p.mark is not None and p.marked_at is not None
        }

    async def mark_at(self, market_id: str, at: datetime) -> MarkPrice | None:
        """The market's mark as it stood at ``at`` (the last sample at or before it): the one the
        tick recorded for that moment (funding moments and 00:00 UTC), else the latest mark if it
        was sampled at or before ``at``; None when the market had no mark yet then."""
        async with self._uow() as uow:
            recorded = await uow.pricing.mark_at(market_id, at)
            if recorded is not None:
                return recorded
            latest = await uow.pricing.prices(market_id)
        if latest is None or latest.mark is None or latest.marked_at is None or latest.marked_at > at:
            return None
        return MarkPrice(market_id, latest.mark, latest.index, latest.marked_at)

    async def funding_rates_after(
        self, market_id: str, after: datetime | None, limit: int = FUNDING_CATCH_UP
    ) -> list[FundingRate]:
        """The market's stored funding rates applied strictly after ``after``, oldest first."""
        async with self._uow() as uow:
            return await uow.pricing.funding_rates_after(market_id, after, limit)

    # --- back office and market data -----------------------------------------------------------

    async def price_source(self, principal: Principal, market_id: str) -> PricingView:
        principal.require(Operation.VIEW_COMMON)
        return await self._view(market_id)

    async def set_price_source(
        self, principal: Principal, market_id: str, body: Mapping[str, Any], meta: RequestMeta
    ) -> PricingView:
        """Replace the market's execution mode, source, markup and staleness limit (a whole PUT)."""
        principal.require(Operation.MANAGE_MARKETS)
        now = self._clock.now()
        async with self._uow() as uow:
            market = await uow.markets.get(market_id, for_update=True)
            if market is None:
                raise NotFound(f"market {market_id} not found", field="marketId")
            settings = parse_pricing_settings(market, body, truncate_millis(now))
            await self._check_source(uow, settings)
            before = await uow.pricing.get_settings(market_id)
            await uow.pricing.put_settings(settings)
            if before is None or before.source != settings.source:
                # A quote of the old source is never dealt at; the new one has its staleness limit
                # from now to give its first price.
                stored = await uow.pricing.prices(market_id, for_update=True)
                if stored is not None:
                    await uow.pricing.save_prices(
                        replace(stored, raw_bid=None, raw_ask=None, quoted_at=None, error=None, error_at=None)
                    )
            await uow.audit.append(
                AuditEntry(
                    principal.username,
                    AuditAction.MARKET_UPDATED,
                    f"market:{market_id}",
                    meta.request_id,
                    meta.ip,
                    {"fields": ["priceSource"], "priceSource": settings_json(settings)},
                )
            )
            await uow.commit()
        return await self._view(market_id)

    async def funding(self, principal: Principal, market_id: str, query: FundingQuery) -> FundingPage:
        """A market's funding rates, newest first; NotFound for an unknown market."""
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            if await uow.markets.get(market_id) is None:
                raise NotFound(f"market {market_id} not found", field="marketSymbol")
            return await uow.pricing.funding_rates(market_id, query)

    async def _view(self, market_id: str) -> PricingView:
        now = self._clock.now()
        async with self._uow() as uow:
            market = await uow.markets.get(market_id)
            if market is None:
                raise NotFound(f"market {market_id} not found", field="marketId")
            settings = await uow.pricing.get_settings(market_id)
            prices = await uow.pricing.prices(market_id)
        quote = None
        if settings is not None and settings.execution_mode is ExecutionMode.DEALER:
            quote = _quote(market, settings, prices, now)
        stale = settings is not None and settings.source is not None and _source_stale(settings, prices, now)
        return PricingView(market, settings, prices, quote, stale)

    async def _check_source(self, uow: UnitOfWork, settings: PricingSettings) -> None:
        source = settings.source
        if source is None:
            return
        if source.kind is SourceKind.MARKET:
            assert source.market_id is not None
            if await uow.markets.get(source.market_id) is None:
                raise InvalidInput(f"unknown market {source.market_id}", field="sourceMarketId")
        elif source.kind is SourceKind.CCXT:
            assert source.exchange is not None
            if not self._feed.supports(source.exchange):
                raise InvalidInput(f"ccxt knows no exchange {source.exchange}", field="exchange")

    # --- the pricing job -----------------------------------------------------------------------

    async def tick(self) -> int:
        """Read every source once, store quotes and marks, halt or reopen on staleness. The number of
        markets priced."""
        now = self._clock.now()
        async with self._uow() as uow:
            all_settings = await uow.pricing.list_settings()
            markets = {m.id: m for m in await uow.markets.list()}
        reads = await self._read_sources(all_settings, markets, now)
        priced = 0
        for settings in all_settings:
            market = markets.get(settings.market_id)
            if market is None:
                continue
            try:
                changed = await self._price(settings, market, reads.get(settings.market_id), now)
            except Exception:
                # One market's trouble must not stop the others being priced.
                log.exception("pricing a market failed", market=settings.market_id)
                continue
            priced += 1
            if changed is not None:
                self._publish(changed)
        return priced

    async def _read_sources(
        self, all_settings: Sequence[PricingSettings], markets: Mapping[str, Market], now: datetime
    ) -> dict[str, SourcePrice | str]:
        """Each market's source price this tick, or why there is none."""
        reads: dict[str, SourcePrice | str] = {}
        ccxt: dict[tuple[str, str], list[str]] = {}
        own: list[PricingSettings] = []
        for s in all_settings:
            source = s.source
            if source is None:
                continue
            if source.kind is SourceKind.MANUAL:
                assert source.bid is not None and source.ask is not None
                reads[s.market_id] = SourcePrice(source.bid, source.ask, now)
            elif source.kind is SourceKind.CCXT:
                assert source.exchange is not None and source.symbol is not None
                ccxt.setdefault((source.exchange, source.symbol), []).append(s.market_id)
            else:
                own.append(s)
        if own:
            async with self._uow() as uow:
                for s in own:
                    assert s.source is not None and s.source.market_id is not None
                    reads[s.market_id] = await _own_market_price(uow, markets.get(s.source.market_id), now)
        if ccxt:
            keys = list(ccxt)
            results = await asyncio.gather(*(self._ticker(e, sym) for e, sym in keys))
            for key, result in zip(keys, results, strict=True):
                for market_id in ccxt[key]:
                    reads[market_id] = result
        return reads

    async def _ticker(self, exchange: str, symbol: str) -> SourcePrice | str:
        try:
            return await asyncio.wait_for(self._feed.ticker(exchange, symbol), self._feed_timeout)
        except TimeoutError:
            return f"{exchange} {symbol}: no answer within {self._feed_timeout:g} s"
        except PriceFeedError as e:
            return str(e)

    async def _price(
        self, settings: PricingSettings, market: Market, read: SourcePrice | str | None, now: datetime
    ) -> Market | None:
        """Store one market's quote and mark and apply the staleness rule; the market if its status
        changed (to publish after commit)."""
        changed: Market | None = None
        async with self._uow() as uow:
            stored = await uow.pricing.prices(market.id, for_update=True) or _empty_prices(market.id)
            if isinstance(read, SourcePrice):
                stored = replace(
                    stored, raw_bid=read.bid, raw_ask=read.ask, quoted_at=read.at, error=None, error_at=None
                )
            elif isinstance(read, str):
                stored = replace(stored, error=read, error_at=now)
            index = None
            if (
                stored.raw_bid is not None
                and stored.raw_ask is not None
                and not is_stale(stored.quoted_at, now, settings.stale_after_seconds)
            ):
                index = mid(stored.raw_bid, stored.raw_ask)
            book_bid = book_ask = None
            if index is None:
                book_bid, book_ask, _ = await uow.pricing.book_top(market.id)
            sample = mark_sample(index, book_bid, book_ask)
            before = stored
            if sample is not None:
                stored = replace(
                    stored,
                    mark=smooth_mark(stored.mark, sample, market.price_scale),
                    marked_at=now,
                    first_marked_at=stored.first_marked_at or now,
                )
            stored = replace(stored, index=index)
            await uow.pricing.save_prices(stored)
            await uow.pricing.add_marks_at(_moments_passed(market, before, stored, now))
            if settings.source is not None and settings.source.kind is not SourceKind.MANUAL:
                changed = await self._staleness(uow, settings, market, stored, now)
            await uow.commit()
        return changed

    async def _staleness(
        self, uow: UnitOfWork, settings: PricingSettings, market: Market, stored: StoredPrices, now: datetime
    ) -> Market | None:
        state = await uow.pricing.halt_state(market.id, for_update=True) or HaltState(market.id)
        before = state
        changed: Market | None = None
        if _source_stale(settings, stored, now):
            if state.stale_since is None:
                state = replace(state, stale_since=now)
            if state.stale_halted_at is None:
                current = await uow.markets.get(market.id, for_update=True)
                if current is not None and current.status is MarketStatus.ACTIVE:
                    assert settings.source is not None
                    last = "never" if stored.quoted_at is None else stored.quoted_at.isoformat()
                    changed = await _halt(
                        uow,
                        current,
                        HaltReason.STALE_SOURCE,
                        f"The price source of {market.id} ({settings.source.describe()}) gave no price "
                        f"for more than {settings.stale_after_seconds} s (last price: {last}"
                        + (f"; last error: {stored.error}" if stored.error else "")
                        + "). bourse halted the market and reopens it when the source is fresh again.",
                        {
                            "source": settings.source.describe(),
                            "staleAfterSeconds": settings.stale_after_seconds,
                            "lastQuotedAt": None
                            if stored.quoted_at is None
                            else stored.quoted_at.isoformat(),
                            "error": stored.error,
                        },
                        now,
                    )
                    state = replace(state, stale_halted_at=changed.updated_at)
        else:
            if state.stale_halted_at is not None:
                current = await uow.markets.get(market.id, for_update=True)
                # Reopen only what this job halted and nobody touched since (an operator's own
                # halt or change stands).
                if (
                    current is not None
                    and current.status is MarketStatus.HALTED
                    and current.updated_at == state.stale_halted_at
                ):
                    changed = await _resume(uow, current, now)
            state = replace(state, stale_since=None, stale_halted_at=None)
        if state != before:
            await uow.pricing.save_halt_state(state)
        return changed

    # --- funding rates -------------------------------------------------------------------------

    async def run_funding_rates(self, now: datetime | None = None) -> int:
        """Store each Perpetual market's funding rate at every due funding time not stored yet, from
        its last mark and index (a market without an index then has no funding at that time).
        How many rates were stored."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            markets = [
                m
                for m in await uow.markets.list()
                if m.type is MarketType.PERPETUAL
                and m.funding_start_time is not None
                and m.funding_interval_in_hours is not None
            ]
            prices = await uow.pricing.prices_of([m.id for m in markets])
        stored = 0
        for market in markets:
            p = prices.get(market.id)
            if p is None or p.first_marked_at is None:
                continue  # never priced: nothing is due yet
            assert market.funding_start_time is not None and market.funding_interval_in_hours is not None
            async with self._uow() as uow:
                last = await uow.pricing.last_funding_time(market.id)
                since = max(t for t in (last, p.funding_through, p.first_marked_at) if t is not None)
                due = funding_times(market.funding_start_time, market.funding_interval_in_hours, since, now)
                due = due[:FUNDING_CATCH_UP]
                if not due:
                    continue
                for applied_at in due:
                    # The mark and index of the moment as the tick recorded them; before the tick
                    # passed it, the latest sample is the last one at or before the moment.
                    at = await uow.pricing.mark_at(market.id, applied_at)
                    mark, index = (at.mark, at.index) if at is not None else (p.mark, p.index)
                    if mark is None or index is None:
                        continue
                    rate = FundingRate(
                        market.id,
                        applied_at,
                        market.funding_interval_in_hours,
                        funding_rate(mark, index),
                        mark,
                        index,
                    )
                    if await uow.pricing.add_funding_rate(rate):
                        stored += 1
                # Without an index these times have no funding; they are not looked at again.
                await uow.pricing.set_funding_through(market.id, due[-1])
                await uow.commit()
        return stored

    # --- the circuit breaker -------------------------------------------------------------------

    async def check_circuit_breakers(self, now: datetime | None = None) -> builtins.list[str]:
        """Halt every Active market whose trades in the window moved too far; the ids halted."""
        if not self.breaker.enabled:
            return []
        now = now or self._clock.now()
        since = self.breaker.window_start(now)
        async with self._uow() as uow:
            markets = [m for m in await uow.markets.list() if m.status is MarketStatus.ACTIVE]
        # One connection reads every market's window; a market that tripped is halted in its own
        # unit of work, which looks again under the market's row lock.
        tripped: list[str] = []
        async with self._uow() as uow:
            for market in markets:
                state = await uow.pricing.halt_state(market.id) or HaltState(market.id)
                window = await uow.pricing.trade_window(market.id, since, state.breaker_from_trade_id or 0)
                if find_breach(window, self.breaker.max_move) is not None:
                    tripped.append(market.id)
        halted: list[str] = []
        for market_id in tripped:
            changed = await self._trip(market_id, since, now)
            if changed is not None:
                halted.append(changed.id)
                self._publish(changed)
        return halted

    async def _trip(self, market_id: str, since: datetime, now: datetime) -> Market | None:
        async with self._uow() as uow:
            current = await uow.markets.get(market_id, for_update=True)
            if current is None or current.status is not MarketStatus.ACTIVE:
                return None
            state = await uow.pricing.halt_state(market_id, for_update=True) or HaltState(market_id)
            window = await uow.pricing.trade_window(market_id, since, state.breaker_from_trade_id or 0)
            breach = find_breach(window, self.breaker.max_move)
            if breach is None:
                return None
            pct = format_decimal(breach.move * 100)
            limit = format_decimal(self.breaker.max_move * 100)
            halted = await _halt(
                uow,
                current,
                HaltReason.CIRCUIT_BREAKER,
                f"The trade price of {market_id} moved {pct}% within {self.breaker.window_seconds} s "
                f"(from {format_decimal(breach.reference.price)} at trade {breach.reference.trade_id} to "
                f"{format_decimal(breach.trade.price)} at trade {breach.trade.trade_id}; the limit is "
                f"{limit}%). The circuit breaker halted the market; an operator reopens it.",
                {
                    "referencePrice": format_decimal(breach.reference.price),
                    "referenceTradeId": breach.reference.trade_id,
                    "price": format_decimal(breach.trade.price),
                    "tradeId": breach.trade.trade_id,
                    "move": format_decimal(breach.move),
                    "maxMove": format_decimal(self.breaker.max_move),
                    "windowSeconds": self.breaker.window_seconds,
                },
                now,
            )
            last = await uow.pricing.last_trade_id(market_id)
            await uow.pricing.save_halt_state(
                replace(state, breaker_from_trade_id=last, breaker_tripped_at=now)
            )
            await uow.commit()
        log.warning("circuit breaker halted a market", market=market_id, move=str(breach.move))
        return halted

    def _publish(self, market: Market) -> None:
        if self._bus is not None:
            self._bus.publish(f"markets.{market.id}", market_event(market))


# --- helpers -----------------------------------------------------------------------------------

# Moments recorded per market per tick at most (a pricing job down for months records the latest).
MARK_MOMENTS_PER_TICK = 1000
_MIDNIGHT = time(0)


def _moments_passed(
    market: Market, before: StoredPrices, after: StoredPrices, now: datetime
) -> list[MarkPrice]:
    """The funding moments (Perpetual) and 00:00 UTC passed since the previous sample, each with
    the mark and index as they stood then: the previous sample's, or this one's for a moment that
    is exactly now. Nothing before the market's first mark."""
    since = before.marked_at
    if since is None or before.mark is None or after.marked_at != now:
        return []
    moments = set(funding_times(_MIDNIGHT, 24, since, now))
    if (
        market.type is MarketType.PERPETUAL
        and market.funding_start_time is not None
        and market.funding_interval_in_hours is not None
    ):
        moments.update(funding_times(market.funding_start_time, market.funding_interval_in_hours, since, now))
    out = []
    for moment in sorted(moments)[-MARK_MOMENTS_PER_TICK:]:
        if moment == now:
            assert after.mark is not None
            out.append(MarkPrice(market.id, after.mark, after.index, moment))
        else:
            out.append(MarkPrice(market.id, before.mark, before.index, moment))
    return out


def _source_stale(settings: PricingSettings, prices: StoredPrices | None, now: datetime) -> bool:
    """Stale: no price for longer than the limit, counted from the last price or, before the first,
    from when the source was set (a new source gets its limit to answer)."""
    if settings.source is None or settings.source.kind is SourceKind.MANUAL:
        return False
    quoted = None if prices is None else prices.quoted_at
    since = settings.updated_at if quoted is None else max(quoted, settings.updated_at)
    return is_stale(since, now, settings.stale_after_seconds)


def _quote(
    market: Market, settings: PricingSettings | None, prices: StoredPrices | None, now: datetime
) -> DealerQuote | None:
    if settings is None or settings.source is None:
        return None
    source = settings.source
    if source.kind is SourceKind.MANUAL:
        assert source.bid is not None and source.ask is not None
        return dealer_quote(market.id, source.bid, source.ask, settings.markup_rate, market.price_scale, now)
    if prices is None or prices.raw_bid is None or prices.raw_ask is None:
        return None
    if is_stale(prices.quoted_at, now, settings.stale_after_seconds):
        return None
    assert prices.quoted_at is not None
    return dealer_quote(
        market.id, prices.raw_bid, prices.raw_ask, settings.markup_rate, market.price_scale, prices.quoted_at
    )


async def _own_market_price(uow: UnitOfWork, source: Market | None, now: datetime) -> SourcePrice | str:
    """One of our markets as a source: its best bid and ask, else its last trade price."""
    if source is None:
        return "the source market does not exist"
    if source.status is not MarketStatus.ACTIVE:
        return f"the source market {source.id} is {source.status.value}"
    bid, ask, last = await uow.pricing.book_top(source.id)
    if bid is not None and ask is not None:
        return SourcePrice(bid, ask, now)
    if last is not None:
        return SourcePrice(last, last, now)
    return f"the source market {source.id} has no bid and ask and no trade"


async def _halt(
    uow: UnitOfWork,
    market: Market,
    reason: HaltReason,
    explanation: str,
    details: Mapping[str, Any],
    now: datetime,
) -> Market:
    """Set the market Halted through the markets repository, with its audit entry and staff
    notification, in the caller's unit of work."""
    halted = replace(market, status=MarketStatus.HALTED, updated_at=truncate_millis(now))
    await uow.markets.update(halted)
    await uow.audit.append(
        AuditEntry(
            PRICING_ACTOR,
            AuditAction.MARKET_UPDATED,
            f"market:{market.id}",
            None,
            None,
            {"fields": ["status"], "status": MarketStatus.HALTED.value, "reason": reason.value, **details},
        )
    )
    await uow.notifications.add_admin(market_halted_by_pricing(market.id, reason, explanation, details, now))
    return halted


async def _resume(uow: UnitOfWork, market: Market, now: datetime) -> Market:
    resumed = replace(market, status=MarketStatus.ACTIVE, updated_at=truncate_millis(now))
    await uow.markets.update(resumed)
    await uow.audit.append(
        AuditEntry(
            PRICING_ACTOR,
            AuditAction.MARKET_UPDATED,
            f"market:{market.id}",
            None,
            None,
            {"fields": ["status"], "status": MarketStatus.ACTIVE.value, "reason": "SourceFresh"},
        )
    )
    await uow.notifications.add_admin(
        market_resumed_by_pricing(
            market.id,
            f"The price source of {market.id} gives fresh prices again; bourse reopened the market "
            "it had halted.",
            now,
        )
    )
    return resumed


def settings_json(s: PricingSettings) -> dict[str, Any]:
    """The settings in the back-office spelling (the PUT body's fields)."""
    source = s.source
    return {
        "executionMode": s.execution_mode.value,
        "sourceKind": None if source is None else source.kind.value,
        "sourceMarketId": None if source is None else source.market_id,
        "exchange": None if source is None else source.exchange,
        "symbol": None if source is None else source.symbol,
        "bid": None if source is None or source.bid is None else format_decimal(source.bid),
        "ask": None if source is None or source.ask is None else format_decimal(source.ask),
        "markupRate": format_decimal(s.markup_rate),
        "staleAfterSeconds": s.stale_after_seconds,
    }


def _time(value: Any) -> str | None:
    return None if value is None else iso_millis(value)


def price_source_json(view: PricingView) -> dict[str, Any]:
    """The back office's view of a market's pricing (docs/api/brokerage.md)."""
    p, q = view.prices, view.quote
    return {
        "marketId": view.market.id,
        "marketType": view.market.type.value,
        "status": view.market.status.value,
        "settings": None if view.settings is None else settings_json(view.settings),
        "updatedAt": None if view.settings is None else _time(view.settings.updated_at),
        "isStale": view.stale,
        "rawBid": None if p is None else price_text(p.raw_bid),
        "rawAsk": None if p is None else price_text(p.raw_ask),
        "quotedAt": None if p is None else _time(p.quoted_at),
        "bid": None if q is None else price_text(q.bid),
        "ask": None if q is None else price_text(q.ask),
        "mark": None if p is None else price_text(p.mark),
        "index": None if p is None else price_text(p.index),
        "markedAt": None if p is None else _time(p.marked_at),
        "lastError": None if p is None else p.error,
        "lastErrorAt": None if p is None else _time(p.error_at),
    }
