"""Position triggers: take-profit ladder, stop-loss (market, limit or trailing), and the
conversions between the four ways a trader may size one (Price, Rate, Points, Pnl).

Conversions (``trigger_values``) with ``s`` = +1 long / -1 short and ``d`` = +1 for a take-profit
/ -1 for a stop-loss (the direction the trigger lies in, seen from the entry):

    Price   the trigger price itself
    Rate    price = entry * (1 + s*d*rate)              (rate: a fraction of the entry, "0.05")
    Points  price = entry + s*d*points*tick             (an integer number of price ticks)
    Pnl     price = entry + s*pnl/base for a take-profit, entry - s*|pnl|/base for a stop-loss

A price derived from Rate or Pnl is rounded half-even to the tick. The answer gives all four for
the resulting price: ``rate`` and ``points`` as distances from the entry in the trigger's own
direction, ``pnl`` as the signed PnL of the whole position at that price (a stop-loss's is
negative). A take-profit must lie beyond the reference price (the entry, or the mark for an
existing position) in the profit direction, a stop-loss in the loss direction.

Evaluation against the mark (``evaluate``): the stop-loss is looked at first; when it fires it
closes everything and cancels the take-profit levels left (OCO). Otherwise every take-profit level
the mark has reached closes its lots (never more than the position has left); when the last level
has fired the stop-loss is cancelled. A trailing stop follows the best mark since it was set and
fires when the mark retraces by its rate. Trigger closes are reduce-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from enum import StrEnum
from typing import Literal

from bourse.domain.errors import InvalidInput, InvariantViolation
from bourse.domain.positions import (
    EXACT,
    ZERO,
    CloseReason,
    ContractSpec,
    Position,
    PositionSide,
    round_half_even,
    round_to,
)

MIN_TRAILING_RATE = Decimal("0.001")
MAX_TRAILING_RATE = Decimal("0.05")
# Rates are shown and stored with this many decimals (half-even).
RATE_SCALE = 8

TriggerKind = Literal["tp", "sl"]


class TriggerType(StrEnum):
    PRICE = "Price"
    RATE = "Rate"  # a fraction of the entry price
    POINTS = "Points"  # an integer number of price ticks
    PNL = "Pnl"  # a quote-asset amount of PnL


@dataclass(frozen=True, slots=True)
class TriggerValues:
    price: Decimal
    rate: Decimal
    points: int
    pnl: Decimal


def _field(kind: TriggerKind) -> str:
    return "takeProfit" if kind == "tp" else "stopLoss"


def _to_tick(price: Decimal, spec: ContractSpec) -> Decimal:
    with localcontext(EXACT):
        ticks = (price / spec.tick_size).to_integral_value(rounding=ROUND_HALF_EVEN)
        return round_half_even(ticks * spec.tick_size, spec.price_scale)


def trigger_values(
    kind: TriggerKind,
    side: PositionSide,
    entry: Decimal,
    base: Decimal,
    spec: ContractSpec,
    trigger_type: TriggerType,
    size: Decimal,
    *,
    reference: Decimal | None = None,
) -> TriggerValues:
    """The take-profit (``kind="tp"``) or stop-loss (``"sl"``) of a ``side`` position of ``base``
    entered at ``entry``, sized as ``trigger_type``/``size``, in all four forms. ``reference``
    (default: the entry) is the price the trigger must lie beyond. Raises InvalidInput for a
    size that is not positive where a distance is meant, an off-tick Price, or a trigger on the
    wrong side."""
    name = _field(kind)
    s = side.sign
    d = 1 if kind == "tp" else -1
    if entry <= 0 or base <= 0:
        raise InvariantViolation("a trigger needs a positive entry price and size")
    with localcontext(EXACT):
        if trigger_type is TriggerType.PRICE:
            price = size
            if price % spec.tick_size != 0:
                raise InvalidInput(
                    f"{name} price must be a multiple of the tick size {spec.tick_size}", field=name
                )
        elif trigger_type is TriggerType.PNL:
            if size == 0 or (kind == "tp" and size < 0):
                raise InvalidInput(f"{name} PnL must be a positive amount", field=name)
            price = _to_tick(entry + s * d * abs(size) / base, spec)
        else:
            if size <= 0:
                raise InvalidInput(f"{name} {trigger_type.value.lower()} must be positive", field=name)
            if trigger_type is TriggerType.RATE:
                price = _to_tick(entry * (1 + s * d * size), spec)
            else:
                if size != size.to_integral_value():
                    raise InvalidInput(f"{name} points must be a whole number of ticks", field=name)
                price = entry + s * d * size * spec.tick_size
        ref = entry if reference is None else reference
        if price <= 0 or s * d * (price - ref) <= 0:
            where = "above" if s * d > 0 else "below"
            raise InvalidInput(
                f"{name} must be {where} the {'entry' if reference is None else 'current'} price {ref}",
                field=name,
            )
        distance = s * d * (price - entry)
        rate = round_to(distance / entry, RATE_SCALE, ROUND_HALF_EVEN)
        points = int((distance / spec.tick_size).to_integral_value(rounding=ROUND_HALF_EVEN))
        pnl = round_half_even(s * (price - entry) * base, spec.settlement_scale)
    return TriggerValues(price=price, rate=rate, points=points, pnl=pnl)


def validate_trailing_rate(rate: Decimal) -> Decimal:
    """A trailing stop's callback rate: 0.1% to 5% (0.001..0.05)."""
    if not rate.is_finite() or not MIN_TRAILING_RATE <= rate <= MAX_TRAILING_RATE:
        raise InvalidInput(
            f"the trailing rate must be between {MIN_TRAILING_RATE} and {MAX_TRAILING_RATE}", field="stopLoss"
        )
    return rate


def trailing_rate_from_price(price: Decimal, mark: Decimal) -> Decimal:
    """The callback rate a trailing stop given as a price means: its distance to the current mark
    as a fraction of the mark (half-even to ``RATE_SCALE``), validated."""
    if mark <= 0:
        raise InvariantViolation("a trailing stop needs a positive mark")
    with localcontext(EXACT):
        return validate_trailing_rate(round_to(abs(mark - price) / mark, RATE_SCALE, ROUND_HALF_EVEN))


# --- the triggers of a position ------------------------------------------------------------------


@dataclass(slots=True)
class TakeProfitLevel:
    price: Decimal
    lots: Decimal
    done: bool = False


@dataclass(slots=True)
class StopLoss:
    price: Decimal  # for a trailing stop: the current stop price, moved with the best mark
    limit_price: Decimal | None = None  # None: close at market
    trailing_rate: Decimal | None = None
    best_mark: Decimal | None = None  # trailing only: the best mark since activation

    @property
    def is_trailing(self) -> bool:
        return self.trailing_rate is not None


@dataclass(slots=True)
class Triggers:
    take_profit: list[TakeProfitLevel] = field(default_factory=list)
    stop_loss: StopLoss | None = None

    def copy(self) -> Triggers:
        return Triggers(
            [replace(level) for level in self.take_profit],
            replace(self.stop_loss) if self.stop_loss else None,
        )

    @property
    def is_empty(self) -> bool:
        return self.stop_loss is None and all(level.done for level in self.take_profit)


@dataclass(frozen=True, slots=True)
class Firing:
    """A close a trigger asks for: ``lots`` of the position, at market or at ``limit_price``."""

    reason: CloseReason
    lots: Decimal
    limit_price: Decimal | None = None


def trailing_stop_price(side: PositionSide, best_mark: Decimal, rate: Decimal, spec: ContractSpec) -> Decimal:
    """Where a trailing stop stands: ``best * (1 - rate)`` for a long, ``best * (1 + rate)`` for a
    short, half-even to the market's tick (a stop price is a price the market could trade at)."""
    with localcontext(EXACT):
        return _to_tick(best_mark * (1 - side.sign * rate), spec)


def new_trailing_stop(
    side: PositionSide, mark: Decimal, rate: Decimal, spec: ContractSpec, limit_price: Decimal | None = None
) -> StopLoss:
    """A trailing stop activated now, at ``mark``."""
    rate = validate_trailing_rate(rate)
    return StopLoss(trailing_stop_price(side, mark, rate, spec), limit_price, rate, mark)


def _stop_hit(side: PositionSide, stop: Decimal, mark: Decimal) -> bool:
    return mark <= stop if side is PositionSide.LONG else mark >= stop


def evaluate(
    position: Position, triggers: Triggers, mark: Decimal, spec: ContractSpec
) -> tuple[list[Firing], Triggers]:
    """The closes ``mark`` fires for ``position`` and its triggers afterwards (trailing stop moved,
    fired levels done, OCO applied). The input is not changed."""
    after = triggers.copy()
    if not position.is_open:
        return [], after
    side = position.side
    sl = after.stop_loss
    if sl is not None and sl.trailing_rate is not None:
        best = (
            mark
            if sl.best_mark is None
            else (max(sl.best_mark, mark) if side is PositionSide.LONG else min(sl.best_mark, mark))
        )
        sl.best_mark = best
        sl.price = trailing_stop_price(side, best, sl.trailing_rate, spec)
    if sl is not None and _stop_hit(side, sl.price, mark):
        reason = CloseReason.TRAILING_STOP if sl.is_trailing else CloseReason.STOP_LOSS
        for level in after.take_profit:
            level.done = True
        after.stop_loss = None
        return [Firing(reason, position.lots, sl.limit_price)], after

    firings: list[Firing] = []
    left = position.lots
    # Nearest level first: ascending prices for a long, descending for a short.
    for level in sorted((lv for lv in after.take_profit if not lv.done), key=lambda lv: side.sign * lv.price):
        if side.sign * (mark - level.price) < 0:
            break
        level.done = True
        lots = min(level.lots, left)
        if lots > 0:
            firings.append(Firing(CloseReason.TAKE_PROFIT, lots))
            left -= lots
    if firings and after.take_profit and all(level.done for level in after.take_profit):
        after.stop_loss = None
    return firings, after


def take_profit_ladder(
    levels: list[tuple[Decimal, Decimal]], position_lots: Decimal
) -> list[TakeProfitLevel]:
    """Take-profit levels from ``(price, lots)`` pairs: lots positive, together at most the
    position's lots, prices distinct."""
    total = ZERO
    for _, lots in levels:
        if lots <= 0:
            raise InvalidInput("a take-profit level needs positive lots", field="takeProfit")
        total += lots
    if total > position_lots:
        raise InvalidInput("the take-profit levels close more lots than the position has", field="takeProfit")
    if len({price for price, _ in levels}) != len(levels):
        raise InvalidInput("two take-profit levels at the same price", field="takeProfit")
    return [TakeProfitLevel(price, lots) for price, lots in levels]
