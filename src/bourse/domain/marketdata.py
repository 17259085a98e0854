"""Market data rules: candle periods, OHLC folding, the rolling 24-hour ticker, book deltas.

Every period is in UTC. The fixed intervals (1m ... 1d) are aligned to the Unix
epoch, so 4h candles start at 00:00, 04:00, ... UTC; weeks start on Monday 00:00
UTC; months on the 1st 00:00 UTC. A candle covers ``[start, end)``.

The ticker is the last 24 hours at one-minute granularity: the current minute's
candle and the 1439 before it. Keeping it on the 1m candles bounds its memory
to 1440 entries per market however many trades there are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from enum import StrEnum

from bourse.domain.errors import InvalidInput

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CANDLES_PER_REQUEST = 1000
DEFAULT_CANDLES_PER_REQUEST = 500
TICKER_WINDOW = timedelta(hours=24)
PERCENT_PLACES = Decimal("0.01")


class Interval(StrEnum):
    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"
    W1 = "1w"
    MN1 = "1M"

    def start_of(self, at: datetime) -> datetime:
        """The start of the period that contains ``at``."""
        at = as_utc(at)
        if self is Interval.MN1:
            return datetime(at.year, at.month, 1, tzinfo=UTC)
        if self is Interval.W1:
            day = datetime(at.year, at.month, at.day, tzinfo=UTC)
            return day - timedelta(days=day.weekday())
        size = _FIXED[self]
        return EPOCH + size * ((at - EPOCH) // size)

    def shift(self, start: datetime, periods: int) -> datetime:
        """The start ``periods`` periods after (or before, if negative) the period starting at ``start``."""
        if self is Interval.MN1:
            months = start.year * 12 + start.month - 1 + periods
            return datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)
        return start + _size(self) * periods

    def end_of(self, start: datetime) -> datetime:
        return self.shift(start, 1)

    def periods_between(self, first: datetime, last: datetime) -> int:
        """How many periods from the one containing ``first`` to the one containing ``last``, both included."""
        a, b = self.start_of(first), self.start_of(last)
        if self is Interval.MN1:
            return (b.year * 12 + b.month) - (a.year * 12 + a.month) + 1
        return (b - a) // _size(self) + 1


_FIXED: dict[Interval, timedelta] = {
    Interval.M1: timedelta(minutes=1),
    Interval.M5: timedelta(minutes=5),
    Interval.M15: timedelta(minutes=15),
    Interval.H1: timedelta(hours=1),
    Interval.H4: timedelta(hours=4),
    Interval.D1: timedelta(days=1),
}


def _size(interval: Interval) -> timedelta:
    if interval is Interval.W1:
        return timedelta(weeks=1)
    return _FIXED[interval]


def as_utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


def parse_interval(value: str) -> Interval:
    # Case matters: "1m" is a minute, "1M" a month.
    try:
        return Interval(value)
    except ValueError:
        allowed = ", ".join(i.value for i in Interval)
        raise InvalidInput(f"interval must be one of {allowed}", field="interval") from None


_EPOCH_MS = re.compile(r"^-?\d{1,15}$")


def parse_instant(value: str, field: str) -> datetime:
    """Epoch milliseconds (digits only) or ISO-8601; a time without an offset is UTC."""
    text = value.strip()
    if _EPOCH_MS.match(text):
        return EPOCH + timedelta(milliseconds=int(text))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field} must be ISO-8601 or epoch milliseconds", field=field) from None
    return as_utc(parsed)


@dataclass(frozen=True, slots=True)
class HistoryRange:
    interval: Interval
    first_start: datetime  # the start of the first candle that may be returned
    to: datetime  # candles starting after this are not returned


def history_range(
    interval: Interval,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    *,
    max_candles: int = MAX_CANDLES_PER_REQUEST,
    default_candles: int = DEFAULT_CANDLES_PER_REQUEST,
) -> HistoryRange:
    """The candles a history request covers: every period that overlaps ``[start, end]``.

    ``end`` defaults to now; ``start`` to ``default_candles`` periods back from ``end``.
    A range over more than ``max_candles`` periods is refused rather than cut short,
    so that a client never mistakes a truncated answer for the whole range.
    """
    to = as_utc(end) if end is not None else as_utc(now)
    first = (
        interval.start_of(as_utc(start))
        if start is not None
        else interval.shift(interval.start_of(to), -(default_candles - 1))
    )
    if first > to:
        raise InvalidInput("from must not be after to", field="from")
    count = interval.periods_between(first, to)
    if count > max_candles:
        raise InvalidInput(
            f"the range spans {count} {interval.value} candles; at most {max_candles} per request",
            field="from",
        )
    return HistoryRange(interval, first, to)


@dataclass(frozen=True, slots=True)
class TradeTick:
    """One trade as market data sees it."""

    market_id: str
    trade_id: int
    price: Decimal
    amount: Decimal
    quote_amount: Decimal
    taker_side: str
    at: datetime


@dataclass(slots=True)
class Candle:
    """One period's OHLC and volumes; ``last_trade_id`` makes folding a trade twice a no-op."""

    market_id: str
    interval: Interval
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    base_volume: Decimal
    quote_volume: Decimal
    trades: int
    last_trade_id: int

    @property
    def end(self) -> datetime:
        return self.interval.end_of(self.start)

    @classmethod
    def opened_by(cls, trade: TradeTick, interval: Interval) -> Candle:
        return cls(
            trade.market_id,
            interval,
            interval.start_of(trade.at),
            trade.price,
            trade.price,
            trade.price,
            trade.price,
            trade.amount,
            trade.quote_amount,
            1,
            trade.trade_id,
        )

    def add(self, trade: TradeTick) -> bool:
        """Fold a later trade of this period in; False (nothing changed) for one already folded."""
        if trade.trade_id <= self.last_trade_id:
            return False
        if trade.price > self.high:
            self.high = trade.price
        if trade.price < self.low:
            self.low = trade.price
        self.close = trade.price
        self.base_volume += trade.amount
        self.quote_volume += trade.quote_amount
        self.trades += 1
        self.last_trade_id = trade.trade_id
        return True

    def copy(self) -> Candle:
        return Candle(
            self.market_id,
            self.interval,
            self.start,
            self.open,
            self.high,
            self.low,
            self.close,
            self.base_volume,
            self.quote_volume,
            self.trades,
            self.last_trade_id,
        )


# --- 24-hour ticker ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ticker:
    market_id: str
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    last: Decimal | None
    vwap: Decimal | None
    change: Decimal | None
    percentage: Decimal | None
    base_volume: Decimal
    quote_volume: Decimal
    trades: int
    window_start: datetime
    window_end: datetime


def ticker_window_start(now: datetime) -> datetime:
    return Interval.M1.start_of(now) - (TICKER_WINDOW - timedelta(minutes=1))


def rolling_ticker(
    market_id: str,
    minute_candles: Iterable[Candle],
    now: datetime,
    last_price: Decimal | None,
    *,
    price_scale: int,
) -> Ticker:
    """The 24h ticker from 1m candles (any order; those outside the window are ignored).

    open is the first trade's price in the window, close the last one's; ``last`` is the
    last price ever, so a market quiet for a day still shows where it stands. vwap is
    quoteVolume / baseVolume rounded half-even to ``price_scale`` places; percentage is
    change / open * 100 rounded half-even to 2 places. With no trade in the window the
    prices all equal ``last`` and change is 0; vwap is null (no volume to weigh).
    """
    window_start = ticker_window_start(now)
    window_end = Interval.M1.end_of(Interval.M1.start_of(now))
    inside = sorted(
        (c for c in minute_candles if c.interval is Interval.M1 and window_start <= c.start < window_end),
        key=lambda c: c.start,
    )
    if not inside:
        zero = Decimal(0) if last_price is not None else None
        return Ticker(
            market_id,
            last_price,
            last_price,
            last_price,
            last_price,
            last_price,
            None,
            zero,
            zero,
            Decimal(0),
            Decimal(0),
            0,
            window_start,
            window_end,
        )
    base = sum((c.base_volume for c in inside), Decimal(0))
    quote = sum((c.quote_volume for c in inside), Decimal(0))
    open_, close = inside[0].open, inside[-1].close
    change = close - open_
    return Ticker(
        market_id,
        open=open_,
        high=max(c.high for c in inside),
        low=min(c.low for c in inside),
        close=close,
        last=last_price if last_price is not None else close,
        vwap=_divide(quote, base, Decimal(1).scaleb(-price_scale)) if base else None,
        change=change,
        percentage=_divide(change * 100, open_, PERCENT_PLACES) if open_ else None,
        base_volume=base,
        quote_volume=quote,
        trades=sum(c.trades for c in inside),
        window_start=window_start,
        window_end=window_end,
    )


def _divide(numerator: Decimal, denominator: Decimal, places: Decimal) -> Decimal:
    # Enough precision that the one rounding is the quantize, not the division.
    with localcontext() as ctx:
        ctx.prec = 80
        return (numerator / denominator).quantize(places, rounding=ROUND_HALF_EVEN)


# --- order book depth ----------------------------------------------------------------------------

Level = tuple[Decimal, Decimal]  # (price, amount)


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    market_id: str
    seq: int
    bids: tuple[Level, ...]  # best (highest) first
    asks: tuple[Level, ...]  # best (lowest) first
    at: datetime

    def supersedes(self, other: BookSnapshot) -> bool:
        """Whether this snapshot is newer. A later time also counts: an engine restarted in a running
        process numbers its snapshots from 1 again."""
        return self.seq > other.seq or self.at > other.at

    def top(self, levels: int) -> BookSnapshot:
        return BookSnapshot(self.market_id, self.seq, self.bids[:levels], self.asks[:levels], self.at)


def parse_levels(raw: object, field: str) -> tuple[Level, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise InvalidInput(f"{field} must be a list of [price, amount]", field=field)
    levels: list[Level] = []
    for item in raw:
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
            raise InvalidInput(f"{field} must be a list of [price, amount]", field=field)
        try:
            level = (Decimal(str(item[0])), Decimal(str(item[1])))
        except InvalidOperation:
            raise InvalidInput(f"{field} holds a price or amount that is not a number", field=field) from None
        levels.append(level)
    return tuple(levels)


def book_delta(before: Sequence[Level], after: Sequence[Level], *, descending: bool) -> list[Level]:
    """The levels of one side that differ from ``before`` to ``after``, best first.

    A level present before and gone after comes with amount 0 ("removed"); that
    includes a level that only slid out of the published top N.
    """
    old: Mapping[Decimal, Decimal] = dict(before)
    new: Mapping[Decimal, Decimal] = dict(after)
    changed = [(price, amount) for price, amount in new.items() if old.get(price) != amount]
    changed += [(price, Decimal(0)) for price in old if price not in new]
    changed.sort(key=lambda level: level[0], reverse=descending)
    return changed


def apply_delta(levels: Sequence[Level], delta: Sequence[Level], *, descending: bool) -> list[Level]:
    """What a client does with a delta: set each level's amount, drop the zeros."""
    book = dict(levels)
    for price, amount in delta:
        if amount == 0:
            book.pop(price, None)
        else:
            book[price] = amount
    return sorted(book.items(), key=lambda level: level[0], reverse=descending)
