"""Pricing of derivative markets: how a market executes, where its price comes from, the dealer's
quote with its markup, the smoothed mark price, when a source is stale, funding-rate paging.

A Cfd or Perpetual market has at most one ``PricingSettings``: its execution mode (``Dealer``:
filled against the house at the source's price widened by the markup; ``OrderBook``: matched on
our engine) and its price source (another of our markets, a public exchange ticker through ccxt,
or bid/ask set by an operator). The source gives the *index*; the mark price follows it (or the
market's own book mid when there is no source) through an exponential moving average.

Body fields are parsed here from the back-office spelling (camelCase), so every edge refuses the
same input with the same field name. docs/api/brokerage.md "Price sources, mark price, funding
rates, circuit breaker".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from enum import StrEnum
from fractions import Fraction
from typing import Any, TypeVar

from bourse.domain.errors import BusinessRejection, Conflict, InvalidInput
from bourse.domain.ledger import MAX_SCALE
from bourse.domain.markets import Market, MarketType
from bourse.domain.notifications import AdminNotificationType, NewAdminNotification, admin_notification
from bourse.domain.values import decimal_places, format_decimal, parse_decimal

__all__ = [
    "DEFAULT_STALE_AFTER_SECONDS",
    "FUNDING_PAGE_DEFAULT",
    "FUNDING_PAGE_MAX",
    "MARK_SAMPLES",
    "MAX_MARKUP_RATE",
    "MAX_STALE_AFTER_SECONDS",
    "PRICING_ACTOR",
    "DealerQuote",
    "ExecutionMode",
    "ExecutionModeInUse",
    "FundingPage",
    "FundingQuery",
    "FundingRate",
    "HaltReason",
    "HaltState",
    "MarkPrice",
    "PriceSource",
    "PriceUnavailable",
    "PricingSettings",
    "SourceKind",
    "SourcePrice",
    "StoredPrices",
    "dealer_quote",
    "is_stale",
    "mark_sample",
    "market_halted_by_pricing",
    "market_resumed_by_pricing",
    "mid",
    "parse_pricing_settings",
    "price_text",
    "smooth_mark",
]

# The audit actor and notification author of what the pricing job does by itself.
PRICING_ACTOR = "system:pricing"

MAX_MARKUP_RATE = Decimal("0.5")  # exclusive: a markup of half the price is surely a typo
DEFAULT_STALE_AFTER_SECONDS = 30
MAX_STALE_AFTER_SECONDS = 86_400
# The mark is an exponential moving average over this many samples (one per pricing tick):
# alpha = 2 / (N + 1).
MARK_SAMPLES = 5
# NUMERIC(38, 18): at most 20 integer digits.
_MAX_MAGNITUDE = Decimal(10) ** 20
_EXCHANGE_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_SYMBOL_MAX = 64

FUNDING_PAGE_DEFAULT = 100
FUNDING_PAGE_MAX = 1000


class ExecutionMode(StrEnum):
    ORDER_BOOK = "OrderBook"  # matched on our engine against other accounts
    DEALER = "Dealer"  # filled at once against the house at the source's bid/ask plus the markup


class SourceKind(StrEnum):
    MARKET = "Market"  # another of our markets: its best bid/ask, else its last price
    CCXT = "Ccxt"  # a public exchange ticker through ccxt (bid/ask)
    MANUAL = "Manual"  # bid/ask set by an operator (paper trading, demo); never stale


class HaltReason(StrEnum):
    STALE_SOURCE = "StaleSource"
    CIRCUIT_BREAKER = "CircuitBreaker"


class PriceUnavailable(BusinessRejection):
    """The market has no fresh price to deal at (no source, never read, or stale)."""

    code = "price_unavailable"


class ExecutionModeInUse(Conflict):
    """The execution mode of a market with live derivative orders or open positions cannot change:
    its orders and positions belong to the mode's executor (the dealer job, or the market's
    engine runner, which keeps the book and the positions in memory)."""

    code = "execution_mode_in_use"


# --- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceSource:
    kind: SourceKind
    market_id: str | None = None  # Market
    exchange: str | None = None  # Ccxt: the ccxt exchange id (binance, kraken, ...)
    symbol: str | None = None  # Ccxt: the exchange's unified symbol (BTC/USDT)
    bid: Decimal | None = None  # Manual
    ask: Decimal | None = None  # Manual

    def describe(self) -> str:
        if self.kind is SourceKind.MARKET:
            return f"market {self.market_id}"
        if self.kind is SourceKind.CCXT:
            return f"{self.exchange} {self.symbol}"
        return "manual bid/ask"


@dataclass(frozen=True, slots=True)
class PricingSettings:
    market_id: str
    execution_mode: ExecutionMode
    source: PriceSource | None
    markup_rate: Decimal
    stale_after_seconds: int
    updated_at: datetime

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.stale_after_seconds)


_E = TypeVar("_E", bound=StrEnum)

_FIELDS = frozenset(
    {
        "executionMode",
        "sourceKind",
        "sourceMarketId",
        "exchange",
        "symbol",
        "bid",
        "ask",
        "markupRate",
        "staleAfterSeconds",
    }
)
_SOURCE_FIELDS: Mapping[SourceKind, frozenset[str]] = {
    SourceKind.MARKET: frozenset({"sourceMarketId"}),
    SourceKind.CCXT: frozenset({"exchange", "symbol"}),
    SourceKind.MANUAL: frozenset({"bid", "ask"}),
}


def _enum(kind: type[_E], value: object, name: str) -> _E:
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise InvalidInput(f"{name} must be one of {', '.join(k.value for k in kind)}", field=name)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be a non-empty string", field=name)
    return value.strip()


def _price(value: object, name: str) -> Decimal:
    price = parse_decimal(value, name)
    if price <= 0 or price >= _MAX_MAGNITUDE or decimal_places(price) > MAX_SCALE:
        raise InvalidInput(f"{name} must be a positive decimal with at most {MAX_SCALE} decimals", field=name)
    return price


def _source(kind: SourceKind, body: Mapping[str, Any], market: Market) -> PriceSource:
    for other, names in _SOURCE_FIELDS.items():
        if other is kind:
            continue
        for name in sorted(names):
            if body.get(name) is not None:
                raise InvalidInput(f"{name} does not apply to sourceKind {kind.value}", field=name)
    missing = sorted(n for n in _SOURCE_FIELDS[kind] if body.get(n) is None)
    if missing:
        raise InvalidInput(f"{missing[0]} is required for sourceKind {kind.value}", field=missing[0])
    if kind is SourceKind.MARKET:
        source_market = _text(body["sourceMarketId"], "sourceMarketId")
        if source_market == market.id:
            raise InvalidInput("a market cannot be its own price source", field="sourceMarketId")
        return PriceSource(kind, market_id=source_market)
    if kind is SourceKind.CCXT:
        exchange = _text(body["exchange"], "exchange").lower()
        if not _EXCHANGE_RE.match(exchange):
            raise InvalidInput("exchange must be a ccxt exchange id such as binance", field="exchange")
        symbol = _text(body["symbol"], "symbol")
        if len(symbol) > _SYMBOL_MAX or any(c.isspace() for c in symbol):
            raise InvalidInput(
                f"symbol must be 1-{_SYMBOL_MAX} characters without spaces, such as BTC/USDT", field="symbol"
            )
        return PriceSource(kind, exchange=exchange, symbol=symbol)
    bid, ask = _price(body["bid"], "bid"), _price(body["ask"], "ask")
    if ask < bid:
        raise InvalidInput("ask must not be below bid", field="ask")
    return PriceSource(kind, bid=bid, ask=ask)


def parse_pricing_settings(market: Market, body: Mapping[str, Any], now: datetime) -> PricingSettings:
    """The settings of a back-office PUT body (a whole replacement: absent optional fields take their
    defaults). Only Cfd and Perpetual markets are priced; a Dealer market needs a source. Whether
    ``sourceMarketId`` exists and ``exchange`` is one ccxt knows is the service's check."""
    if not isinstance(body, Mapping):
        raise InvalidInput("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]}", field=unknown[0])
    if market.type is MarketType.SPOT:
        raise InvalidInput(
            f"market {market.id} is a Spot market: price sources are for Cfd and Perpetual markets",
            field="marketId",
        )
    if body.get("executionMode") is None:
        raise InvalidInput("executionMode is required", field="executionMode")
    mode = _enum(ExecutionMode, body["executionMode"], "executionMode")
    source: PriceSource | None = None
    if body.get("sourceKind") is not None:
        source = _source(_enum(SourceKind, body["sourceKind"], "sourceKind"), body, market)
    else:
        given = sorted(n for names in _SOURCE_FIELDS.values() for n in names if body.get(n) is not None)
        if given:
            raise InvalidInput(f"{given[0]} needs a sourceKind", field=given[0])
    if mode is ExecutionMode.DEALER and source is None:
        raise InvalidInput("a Dealer market needs a price source (sourceKind)", field="sourceKind")
    markup = Decimal(0)
    if body.get("markupRate") is not None:
        markup = parse_decimal(body["markupRate"], "markupRate")
        if not Decimal(0) <= markup < MAX_MARKUP_RATE or decimal_places(markup) > MAX_SCALE:
            raise InvalidInput(
                f"markupRate is a fraction in [0, {MAX_MARKUP_RATE}) (0.001 = 0.1%)", field="markupRate"
            )
    stale_after = DEFAULT_STALE_AFTER_SECONDS
    raw = body.get("staleAfterSeconds")
    if raw is not None:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_STALE_AFTER_SECONDS:
            raise InvalidInput(
                f"staleAfterSeconds must be an integer between 1 and {MAX_STALE_AFTER_SECONDS}",
                field="staleAfterSeconds",
            )
        stale_after = raw
    return PricingSettings(market.id, mode, source, markup, stale_after, now)


# --- prices ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourcePrice:
    """What a source gave: raw bid and ask (unrounded), read at ``at``."""

    bid: Decimal
    ask: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class DealerQuote:
    """The prices the house deals at: ``ask`` (a buy fills there) and ``bid`` (a sell), the source's
    ``raw_ask``/``raw_bid`` widened by the markup and rounded away from the trader."""

    market_id: str
    bid: Decimal
    ask: Decimal
    raw_bid: Decimal
    raw_ask: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class MarkPrice:
    market_id: str
    mark: Decimal
    index: Decimal | None  # the source's mid at the last sample; None without a source price
    at: datetime


@dataclass(frozen=True, slots=True)
class StoredPrices:
    """A market's latest prices as the pricing job keeps them."""

    market_id: str
    raw_bid: Decimal | None
    raw_ask: Decimal | None
    quoted_at: datetime | None  # when the source last gave a price
    mark: Decimal | None
    index: Decimal | None
    marked_at: datetime | None
    first_marked_at: datetime | None
    error: str | None  # why the last read of the source failed (None after a success)
    error_at: datetime | None
    # Funding times up to this one were dealt with (stored, or skipped for want of an index).
    funding_through: datetime | None = None


def dealer_quote(
    market_id: str,
    raw_bid: Decimal,
    raw_ask: Decimal,
    markup_rate: Decimal,
    price_scale: int,
    at: datetime,
    tick_size: Decimal | None = None,
) -> DealerQuote:
    """ask * (1 + m) rounded up and bid * (1 - m) rounded down to the market's tick (else to the
    price scale): the markup and the rounding are both the house's, never the trader's, and a
    fill price is always one the market could trade at."""
    step = Decimal(1).scaleb(-price_scale)
    tick = tick_size if tick_size is not None and tick_size > 0 else step
    with localcontext() as ctx:
        ctx.prec = 100  # products of two NUMERIC(38, 18) values never round
        ask_ticks = (raw_ask * (1 + markup_rate) / tick).to_integral_value(rounding=ROUND_CEILING)
        bid_ticks = (raw_bid * (1 - markup_rate) / tick).to_integral_value(rounding=ROUND_FLOOR)
        ask = (ask_ticks * tick).quantize(step, ROUND_HALF_EVEN)
        bid = (bid_ticks * tick).quantize(step, ROUND_HALF_EVEN)
    return DealerQuote(market_id, bid, ask, raw_bid, raw_ask, at)


def mid(bid: Decimal, ask: Decimal) -> Decimal:
    """(bid + ask) / 2, exact (one more decimal than the wider of the two at most)."""
    with localcontext() as ctx:
        ctx.prec = 100
        return (bid + ask) / 2


def _round_half_even(value: Fraction, scale: int) -> Decimal:
    units = round(value * 10**scale)  # Fraction.__round__ rounds half to even, exactly
    return Decimal(units).scaleb(-scale)


def smooth_mark(
    previous: Decimal | None, sample: Decimal, price_scale: int, samples: int = MARK_SAMPLES
) -> Decimal:
    """The next mark: ``previous + alpha * (sample - previous)`` with alpha = 2 / (samples + 1),
    computed exactly and rounded half-even to the price scale once. The first mark is the sample."""
    if previous is None:
        return _round_half_even(Fraction(sample), price_scale)
    alpha = Fraction(2, samples + 1)
    return _round_half_even(Fraction(previous) + alpha * (Fraction(sample) - Fraction(previous)), price_scale)


def mark_sample(index: Decimal | None, book_bid: Decimal | None, book_ask: Decimal | None) -> Decimal | None:
    """What the mark follows: the source's mid (the index) if there is one, else the market's own
    book mid (both sides needed), else nothing (the mark stays)."""
    if index is not None:
        return index
    if book_bid is not None and book_ask is not None:
        return mid(book_bid, book_ask)
    return None


def is_stale(quoted_at: datetime | None, now: datetime, stale_after_seconds: int) -> bool:
    """A source is stale when it never gave a price or its last one is older than the limit
    (exactly the limit is still fresh)."""
    return quoted_at is None or now - quoted_at > timedelta(seconds=stale_after_seconds)


@dataclass(frozen=True, slots=True)
class HaltState:
    """What the pricing job remembers of the halts it raised for a market.

    ``stale_since``: the current stale episode began then (None while the source is fresh);
    ``stale_halted_at``: the job halted the market in this episode (it halts once per episode and
    reopens only a market it halted itself, and nobody changed since). ``breaker_from_trade_id``:
    the circuit breaker's window starts at this trade (the last trade when it tripped)."""

    market_id: str
    stale_since: datetime | None = None
    stale_halted_at: datetime | None = None
    breaker_from_trade_id: int | None = None
    breaker_tripped_at: datetime | None = None


# --- funding rates -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FundingRate:
    market_id: str
    applied_at: datetime
    interval_hours: int
    rate: Decimal
    mark: Decimal
    index: Decimal


@dataclass(frozen=True, slots=True)
class FundingQuery:
    limit: int = FUNDING_PAGE_DEFAULT
    before: datetime | None = None  # only rates applied strictly before this time

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= FUNDING_PAGE_MAX:
            raise InvalidInput(f"limit must be between 1 and {FUNDING_PAGE_MAX}", field="limit")


@dataclass(frozen=True, slots=True)
class FundingPage:
    rates: list[FundingRate]  # newest first
    has_more: bool


# --- notifications -----------------------------------------------------------------------------


def market_halted_by_pricing(
    market_id: str, reason: HaltReason, explanation: str, details: Mapping[str, Any], at: datetime
) -> NewAdminNotification:
    return admin_notification(
        AdminNotificationType.MARKET_HALTED,
        f"Market {market_id} halted: {reason.value}",
        f"{explanation} Its orders are not matched until it is Active again.",
        {**details, "marketId": market_id, "by": PRICING_ACTOR, "reason": reason.value},
        at,
        dedupe_key=f"pricing-halt:{market_id}:{at.isoformat()}",
    )


def market_resumed_by_pricing(market_id: str, explanation: str, at: datetime) -> NewAdminNotification:
    return admin_notification(
        AdminNotificationType.MARKET_RESUMED,
        f"Market {market_id} resumed",
        explanation,
        {"marketId": market_id, "by": PRICING_ACTOR, "reason": HaltReason.STALE_SOURCE.value},
        at,
        dedupe_key=f"pricing-resume:{market_id}:{at.isoformat()}",
    )


def price_text(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)
