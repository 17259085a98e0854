"""The circuit breaker: a market whose trade price moves too far too fast is halted.

Within a window of ``window_seconds`` (ending now) the first trade's price is the reference; a
later trade further than ``max_move`` (a fraction, 0.10 = 10%) from it, either way, trips the
breaker. After a trip the window starts again at the market's last trade then, so a market an
operator has reopened is not halted again for the move it was already halted for.
docs/api/brokerage.md "Price sources, mark price, funding rates, circuit breaker".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from bourse.domain.errors import InvalidInput

__all__ = ["Breach", "BreakerSettings", "TradePoint", "find_breach"]


@dataclass(frozen=True, slots=True)
class TradePoint:
    trade_id: int
    price: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    max_move: Decimal  # 0 disables the breaker
    window_seconds: int  # 0 disables the breaker

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.max_move < 1:
            raise InvalidInput("the circuit breaker move is a fraction in [0, 1)", field="max_move")
        if self.window_seconds < 0:
            raise InvalidInput("the circuit breaker window must not be negative", field="window_seconds")

    @property
    def enabled(self) -> bool:
        return self.max_move > 0 and self.window_seconds > 0

    def window_start(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.window_seconds)


@dataclass(frozen=True, slots=True)
class Breach:
    reference: TradePoint  # the window's first trade
    trade: TradePoint  # the first trade too far from it
    move: Decimal  # (trade - reference) / reference, signed, rounded half-even to 6 decimals


def find_breach(trades: Sequence[TradePoint], max_move: Decimal) -> Breach | None:
    """The first trade (by id) whose price is more than ``max_move`` from the first trade's price.

    ``trades`` are the window's trades, or any subset holding its first trade and its lowest and
    highest prices (a breach exists exactly when one of those two breaches)."""
    if max_move <= 0 or not trades:
        return None
    ordered = sorted(trades, key=lambda t: t.trade_id)
    reference = ordered[0]
    with localcontext() as ctx:
        ctx.prec = 100
        limit = max_move * reference.price
        for trade in ordered[1:]:
            if abs(trade.price - reference.price) > limit:  # compared exactly: no division
                move = ((trade.price - reference.price) / reference.price).quantize(
                    Decimal("0.000001"), rounding=ROUND_HALF_EVEN
                )
                return Breach(reference, trade, move)
    return None
