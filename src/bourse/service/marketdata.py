"""Market data: candles kept as trades happen, the 24h ticker, the trades tape, book depth.

In: ``trades.<marketId>`` and ``book.<marketId>`` from the bus (the engine runner
publishes them after each commit). Each trade is folded into the market's eight
current candles in memory; changed candles are written in batches (every
``flush_interval`` seconds, or sooner when many are waiting) together with the
market's progress (the last trade id folded), and then published as
``candles.<marketId>`` and ``ticker.<marketId>``.

The trades table is the truth: a market's state is loaded lazily (its latest
candles, the 1m candles of the ticker window) and every trade after its stored
progress is folded from the table before anything else, at start and whenever
the bus subscription was lost. Folding is idempotent per candle
(``Candle.last_trade_id``), so a trade seen both in the table and on the bus
counts once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from bourse.domain.errors import InvalidInput, NotFound
from bourse.domain.marketdata import (
    EPOCH,
    BookSnapshot,
    Candle,
    Interval,
    Ticker,
    TradeTick,
    history_range,
    parse_levels,
    rolling_ticker,
    ticker_window_start,
)
from bourse.domain.transfers import iso_millis
from bourse.domain.values import format_decimal, parse_decimal
from bourse.service.ports import Clock, EventBus, SubscriptionDropped, UnitOfWorkFactory

log = structlog.get_logger("bourse.marketdata")

TAPE_DEFAULT, TAPE_MAX = 100, 1000
DEPTH_DEFAULT, DEPTH_MAX = 20, 50
CATCH_UP_PAGE = 5000


@dataclass(eq=False)
class _MarketState:
    market_id: str
    price_scale: int
    folded: int  # the last trade id folded in
    last_price: Decimal | None
    current: dict[Interval, Candle] = field(default_factory=dict)  # the latest candle of each interval
    minutes: dict[datetime, Candle] = field(default_factory=dict)  # the 1m candles of the ticker window
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def candle_json(c: Candle) -> dict[str, Any]:
    """The history item of the spec, plus interval and volumes (extensions)."""
    return {
        "instrument": c.market_id,
        "start": iso_millis(c.start),
        "end": iso_millis(c.end),
        "low": format_decimal(c.low),
        "high": format_decimal(c.high),
        "open": format_decimal(c.open),
        "close": format_decimal(c.close),
        "interval": c.interval.value,
        "baseVolume": format_decimal(c.base_volume),
        "quoteVolume": format_decimal(c.quote_volume),
        "trades": c.trades,
    }


def ticker_json(t: Ticker) -> dict[str, Any]:
    return {
        "instrument": t.market_id,
        "high": _opt(t.high),
        "low": _opt(t.low),
        "vwap": _opt(t.vwap),
        "open": _opt(t.open),
        "close": _opt(t.close),
        "last": _opt(t.last),
        "change": _opt(t.change),
        "percentage": _opt(t.percentage),
        "baseVolume": format_decimal(t.base_volume),
        "quoteVolume": format_decimal(t.quote_volume),
        "trades": t.trades,
        "windowStart": iso_millis(t.window_start),
        "windowEnd": iso_millis(t.window_end),
    }


def trade_json(t: TradeTick) -> dict[str, Any]:
    return {
        "tradeId": t.trade_id,
        "instrument": t.market_id,
        "price": format_decimal(t.price),
        "amount": format_decimal(t.amount),
        "quoteAmount": format_decimal(t.quote_amount),
        "takerSide": t.taker_side,
        "timestamp": iso_millis(t.at),
    }


def book_json(b: BookSnapshot) -> dict[str, Any]:
    return {
        "instrument": b.market_id,
        "seq": b.seq,
        "bids": [[format_decimal(p), format_decimal(a)] for p, a in b.bids],
        "asks": [[format_decimal(p), format_decimal(a)] for p, a in b.asks],
        "timestamp": iso_millis(b.at),
    }


def from_millis(value: object, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be epoch milliseconds", field=field)
    return EPOCH + timedelta(milliseconds=value)


def parse_trade_event(event: Mapping[str, Any]) -> TradeTick:
    """A ``trades.<marketId>`` event of the exchange contract."""
    trade_id = event.get("tradeId")
    if isinstance(trade_id, bool) or not isinstance(trade_id, int):
        raise InvalidInput("tradeId must be an integer", field="tradeId")
    return TradeTick(
        market_id=str(event["marketId"]),
        trade_id=trade_id,
        price=parse_decimal(event["price"], "price"),
        amount=parse_decimal(event["amount"], "amount"),
        quote_amount=parse_decimal(event["quoteAmount"], "quoteAmount"),
        taker_side=str(event["takerSide"]),
        at=from_millis(event["ts"], "ts"),
    )


def parse_book_event(event: Mapping[str, Any]) -> BookSnapshot:
    """A ``book.<marketId>`` event of the exchange contract."""
    seq = event.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InvalidInput("seq must be an integer", field="seq")
    return BookSnapshot(
        market_id=str(event["marketId"]),
        seq=seq,
        bids=parse_levels(event.get("bids", ()), "bids"),
        asks=parse_levels(event.get("asks", ()), "asks"),
        at=from_millis(event["ts"], "ts"),
    )


class MarketDataService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        bus: EventBus,
        *,
        flush_interval: float = 0.25,
        max_pending: int = 2000,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._bus = bus
        self.flush_interval = flush_interval
        self.bus_buffer = 10_000  # trade events waiting for the consumer before the bus drops it
        self._max_pending = max_pending
        self._states: dict[str, _MarketState] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self._pending: dict[tuple[str, Interval, datetime], Candle] = {}
        self._touched: set[str] = set()
        self._books: dict[str, BookSnapshot] = {}
        self._flush_lock = asyncio.Lock()
        # True while run() consumes the bus: the state is then kept current by events and a
        # query does not have to look for new trades in the table first.
        self.live = False

    # --- queries -----------------------------------------------------------------------------

    async def history(
        self, market_id: str, interval: Interval, start: datetime | None, end: datetime | None
    ) -> list[Candle]:
        """Candles overlapping [start, end], oldest first; periods without trades have none."""
        state = await self._current_state(market_id)
        span = history_range(interval, start, end, self._clock.now())
        async with self._uow() as uow:
            stored = await uow.marketdata.candles(market_id, interval, span.first_start, span.to)
        merged = {c.start: c for c in stored}
        # Candles changed since the last flush are newer in memory than in the table.
        fresh = [c for (m, i, _), c in self._pending.items() if m == market_id and i is interval]
        if interval in state.current:
            fresh.append(state.current[interval])
        for c in fresh:
            if span.first_start <= c.start <= span.to:
                old = merged.get(c.start)
                if old is None or old.last_trade_id <= c.last_trade_id:
                    merged[c.start] = c.copy()
        return [merged[s] for s in sorted(merged)]

    async def latest_candle(self, market_id: str, interval: Interval) -> Candle | None:
        """The market's newest candle of ``interval``, as it stands now."""
        state = await self._current_state(market_id)
        candle = state.current.get(interval)
        return candle.copy() if candle is not None else None

    async def ticker(self, market_id: str) -> Ticker:
        return self._ticker(await self._current_state(market_id))

    async def tickers(self) -> list[Ticker]:
        """The ticker of every market that is not hidden, by market id."""
        async with self._uow() as uow:
            markets = await uow.markets.list()
        return [await self.ticker(m.id) for m in markets if not m.is_hidden]

    async def depth(self, market_id: str, levels: int = DEPTH_DEFAULT) -> BookSnapshot:
        """The latest published book, ``levels`` per side; an empty book (seq 0) before any was published."""
        if not 1 <= levels <= DEPTH_MAX:
            raise InvalidInput(f"levels must be 1-{DEPTH_MAX}", field="levels")
        await self.require_market(market_id)
        book = self._books.get(market_id)
        if book is None:
            return BookSnapshot(market_id, 0, (), (), self._clock.now())
        return book.top(levels)

    async def trades(self, market_id: str, limit: int = TAPE_DEFAULT) -> list[TradeTick]:
        """The trades tape, newest first."""
        if not 1 <= limit <= TAPE_MAX:
            raise InvalidInput(f"limit must be 1-{TAPE_MAX}", field="limit")
        await self.require_market(market_id)
        async with self._uow() as uow:
            return await uow.marketdata.recent_trades(market_id, limit)

    async def require_market(self, market_id: str) -> None:
        """NotFound unless the market exists."""
        if market_id in self._states:
            return
        async with self._uow() as uow:
            if await uow.markets.get(market_id) is None:
                raise NotFound(f"market {market_id} not found", field="marketSymbol")

    def _ticker(self, state: _MarketState) -> Ticker:
        return rolling_ticker(
            state.market_id,
            state.minutes.values(),
            self._clock.now(),
            state.last_price,
            price_scale=state.price_scale,
        )

    # --- events in ---------------------------------------------------------------------------

    async def on_trade(self, event: Mapping[str, Any]) -> bool:
        """Fold one ``trades.*`` event in; False for a trade folded already."""
        trade = parse_trade_event(event)
        state = await self._state(trade.market_id)
        async with state.lock:
            changed = await self._fold(state, trade)
        if len(self._pending) >= self._max_pending:
            await self.flush()
        return changed

    def on_book(self, event: Mapping[str, Any]) -> None:
        book = parse_book_event(event)
        known = self._books.get(book.market_id)
        if known is None or book.supersedes(known):
            self._books[book.market_id] = book

    async def catch_up(self, market_ids: list[str] | None = None) -> int:
        """Fold every trade after each market's progress from the trades table, then flush.

        All markets by default. Returns how many trades were folded.
        """
        if market_ids is None:
            async with self._uow() as uow:
                market_ids = [m.id for m in await uow.markets.list()]
        folded = 0
        for market_id in market_ids:
            state = await self._state(market_id)
            async with state.lock:
                folded += await self._catch_up(state)
        await self.flush()
        return folded

    async def flush(self) -> None:
        """Write the candles changed since the last flush with each market's progress; publish them."""
        async with self._flush_lock:
            pending, self._pending = self._pending, {}
            touched, self._touched = self._touched, set()
            rows = [c.copy() for c in pending.values()]
            progress = {c.market_id: self._states[c.market_id].folded for c in rows}
            try:
                if rows:
                    async with self._uow() as uow:
                        await uow.marketdata.upsert_candles(rows)
                        for market_id, last in sorted(progress.items()):
                            await uow.marketdata.set_progress(market_id, last, self._clock.now())
                        await uow.commit()
            except Exception:
                # Kept for the next flush; whatever changed them since is in the same objects.
                for key, candle in pending.items():
                    self._pending.setdefault(key, candle)
                self._touched |= touched
                raise
            self._publish(rows, touched)

    def _publish(self, rows: list[Candle], touched: set[str]) -> None:
        for c in rows:
            self._bus.publish(f"candles.{c.market_id}", candle_json(c))
        for market_id in sorted(touched):
            self._bus.publish(f"ticker.{market_id}", ticker_json(self._ticker(self._states[market_id])))

    # --- the consumer ------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume the bus until cancelled: subscribe first, then catch up from the table, so that no
        trade falls between the two; flush every ``flush_interval``."""
        flusher = asyncio.create_task(self._flush_forever(), name="marketdata:flush")
        books = asyncio.create_task(self._consume_books(), name="marketdata:books")
        try:
            while True:
                subscription = self._bus.subscribe("trades.*", maxsize=self.bus_buffer)
                try:
                    await self.catch_up()
                    self.live = True
                    while True:
                        _, event = await subscription.get()
                        try:
                            await self.on_trade(event)
                        except (InvalidInput, NotFound, KeyError) as e:
                            log.warning("trade event skipped", event_body=dict(event), error=str(e))
                except SubscriptionDropped as e:
                    # The table has every trade the bus lost: catch up and go on.
                    log.warning("market data fell behind the trades bus; catching up", reason=str(e))
                finally:
                    self.live = False
                    subscription.close()
        finally:
            for task in (flusher, books):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(Exception):
                await self.flush()

    async def _consume_books(self) -> None:
        while True:
            subscription = self._bus.subscribe("book.*", maxsize=self.bus_buffer)
            try:
                while True:
                    _, event = await subscription.get()
                    try:
                        self.on_book(event)
                    except (InvalidInput, KeyError) as e:
                        log.warning("book event skipped", error=str(e))
            except SubscriptionDropped:
                pass  # the next snapshot replaces whatever was lost
            finally:
                subscription.close()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:
                log.exception("market data flush failed; retrying")

    # --- state -------------------------------------------------------------------------------

    async def _current_state(self, market_id: str) -> _MarketState:
        state = await self._state(market_id)
        if not self.live:
            async with state.lock:
                if await self._catch_up(state):
                    await self.flush()
        return state

    async def _state(self, market_id: str) -> _MarketState:
        state = self._states.get(market_id)
        if state is not None:
            return state
        lock = self._loading.setdefault(market_id, asyncio.Lock())
        async with lock:
            state = self._states.get(market_id)
            if state is None:
                state = await self._load(market_id)
                self._states[market_id] = state
        return state

    async def _load(self, market_id: str) -> _MarketState:
        now = self._clock.now()
        async with self._uow() as uow:
            market = await uow.markets.get(market_id)
            if market is None:
                raise NotFound(f"market {market_id} not found", field="marketSymbol")
            folded = await uow.marketdata.progress(market_id)
            latest = await uow.marketdata.latest_candles(market_id)
            minutes = await uow.marketdata.candles(
                market_id, Interval.M1, ticker_window_start(now), now + timedelta(days=1)
            )
        last = max(latest, key=lambda c: c.last_trade_id, default=None)
        state = _MarketState(market_id, market.price_scale, folded, last.close if last else None)
        state.current = {c.interval: c for c in latest}
        state.minutes = {c.start: c for c in minutes}
        if Interval.M1 in state.current:
            # One object per candle, so folding into the current minute also moves the ticker.
            current_minute = state.current[Interval.M1]
            state.minutes[current_minute.start] = current_minute
        return state

    async def _catch_up(self, state: _MarketState) -> int:
        folded = 0
        while True:
            async with self._uow() as uow:
                page = await uow.marketdata.trades_after(state.market_id, state.folded, CATCH_UP_PAGE)
            for trade in page:
                folded += await self._fold(state, trade)
            if len(self._pending) >= self._max_pending:
                await self.flush()
            if len(page) < CATCH_UP_PAGE:
                return folded

    async def _fold(self, state: _MarketState, trade: TradeTick) -> bool:
        if trade.trade_id <= state.folded:
            return False
        for interval in Interval:
            start = interval.start_of(trade.at)
            candle = state.current.get(interval)
            if candle is not None and candle.start == start:
                candle.add(trade)
            elif candle is None or start > candle.start:
                candle = Candle.opened_by(trade, interval)
                state.current[interval] = candle
                if interval is Interval.M1:
                    state.minutes[start] = candle
                    self._forget_old_minutes(state, start)
            else:
                # A trade stamped before the current period (clocks are not perfectly monotonic).
                candle = await self._older_candle(state, interval, start, trade)
            self._pending[(state.market_id, interval, candle.start)] = candle
        state.folded = trade.trade_id
        state.last_price = trade.price
        self._touched.add(state.market_id)
        return True

    async def _older_candle(
        self, state: _MarketState, interval: Interval, start: datetime, trade: TradeTick
    ) -> Candle:
        candle = self._pending.get((state.market_id, interval, start))
        if candle is None and interval is Interval.M1:
            candle = state.minutes.get(start)
        if candle is None:
            async with self._uow() as uow:
                candle = await uow.marketdata.candle(state.market_id, interval, start)
        if candle is None:
            candle = Candle.opened_by(trade, interval)
            if interval is Interval.M1 and start >= ticker_window_start(self._clock.now()):
                state.minutes[start] = candle
        else:
            candle.add(trade)
        return candle

    @staticmethod
    def _forget_old_minutes(state: _MarketState, newest: datetime) -> None:
        oldest = ticker_window_start(newest)
        if len(state.minutes) > 1440:
            for start in [s for s in state.minutes if s < oldest]:
                del state.minutes[start]
