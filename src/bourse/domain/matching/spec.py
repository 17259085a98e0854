"""A market's scales and limits, and the exact Decimal <-> integer conversion at the engine's edge.

Inside the engine a price is a whole number of ticks (``price / tick_size``) and a
quantity a whole number of lots (``quantity / lot_step``). Converting never rounds:
a value finer than the tick or the lot is refused, so what the engine matches is
exactly what the user asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from bourse.domain.errors import InvalidInput
from bourse.domain.orders import RejectReason, SelfTradePrevention
from bourse.domain.values import decimal_places


class MarketStatus(StrEnum):
    ACTIVE = "Active"
    HALTED = "Halted"  # new orders are rejected, cancels still work
    # Spot has no positions to reduce, so close-only refuses every new order and
    # allows cancels (a derivatives market would let reducing orders through).
    CLOSE_ONLY = "CloseOnly"


@dataclass(frozen=True, slots=True)
class EngineRules:
    """What the engine checks, in ticks and lots (built by ``MarketSpec.engine_rules``)."""

    min_price: int = 1
    max_price: int = 10**18
    min_quantity: int = 1
    max_quantity: int = 10**18
    # a market order never fills beyond last * (1 +- band_num / band_den)
    band_num: int = 1
    band_den: int = 10
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST

    def __post_init__(self) -> None:
        if not 0 < self.min_price <= self.max_price:
            raise InvalidInput("price limits must satisfy 0 < min <= max", field="price")
        if not 0 < self.min_quantity <= self.max_quantity:
            raise InvalidInput("quantity limits must satisfy 0 < min <= max", field="quantity")
        if not 0 <= self.band_num < self.band_den:
            raise InvalidInput("the price band must be a fraction in [0, 1)", field="price_band")

    def band_bounds(self, reference: int) -> tuple[int, int]:
        """(lowest sell, highest buy) a market order may trade at around ``reference``."""
        num, den = self.band_num, self.band_den
        high = reference * (den + num) // den
        low = -(-reference * (den - num) // den)
        return max(low, 1), high


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """A market as users see it: Decimal tick, lot, limits and the market-order price band."""

    symbol: str
    tick_size: Decimal
    lot_step: Decimal
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_quantity: Decimal | None = None
    max_quantity: Decimal | None = None
    price_band: Decimal = Decimal("0.1")  # priceDeviation / slippageRate
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST
    _rules: EngineRules = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("tick_size", "lot_step"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise InvalidInput(f"{name} must be a positive decimal", field=name)
        if not Decimal(0) <= self.price_band < 1:
            raise InvalidInput("price_band must be in [0, 1)", field="price_band")
        band = self.price_band.as_integer_ratio()
        rules = EngineRules(
            min_price=self._bound(self.min_price, self.tick_size, 1, "min_price"),
            max_price=self._bound(self.max_price, self.tick_size, 10**18, "max_price"),
            min_quantity=self._bound(self.min_quantity, self.lot_step, 1, "min_quantity"),
            max_quantity=self._bound(self.max_quantity, self.lot_step, 10**18, "max_quantity"),
            band_num=band[0],
            band_den=band[1],
            stp=self.stp,
        )
        object.__setattr__(self, "_rules", rules)

    @staticmethod
    def _bound(value: Decimal | None, step: Decimal, default: int, name: str) -> int:
        if value is None:
            return default
        try:
            units, rest = divmod(value, step)
        except InvalidOperation:
            raise InvalidInput(f"{name} is too large", field=name) from None
        if rest or value <= 0:
            raise InvalidInput(f"{name} must be a positive multiple of {step}", field=name)
        return int(units)

    @property
    def price_scale(self) -> int:
        """Decimal places of a price (of the tick size)."""
        return decimal_places(self.tick_size)

    @property
    def amount_scale(self) -> int:
        """Decimal places of a quantity (of the lot step)."""
        return decimal_places(self.lot_step)

    def engine_rules(self) -> EngineRules:
        return self._rules

    def price_to_ticks(self, price: Decimal, field: str = "price") -> int:
        """Whole ticks of ``price``; off-tick, non-positive or out-of-range prices are refused."""
        return self._to_units(
            price,
            self.tick_size,
            self._rules.min_price,
            self._rules.max_price,
            field,
            RejectReason.INVALID_PRICE,
        )

    def quantity_to_lots(self, quantity: Decimal, field: str = "quantity") -> int:
        """Whole lots of ``quantity``; finer than the lot step or out of range is refused."""
        return self._to_units(
            quantity,
            self.lot_step,
            self._rules.min_quantity,
            self._rules.max_quantity,
            field,
            RejectReason.INVALID_QUANTITY,
        )

    def ticks_to_price(self, ticks: int) -> Decimal:
        return ticks * self.tick_size

    def lots_to_quantity(self, lots: int) -> Decimal:
        return lots * self.lot_step

    @staticmethod
    def _to_units(
        value: Decimal, step: Decimal, low: int, high: int, field: str, reason: RejectReason
    ) -> int:
        if not isinstance(value, Decimal) or not value.is_finite():
            raise InvalidInput(f"{field} must be a finite decimal", field=field, reason=reason.value)
        try:
            units, rest = divmod(value, step)
        except InvalidOperation:  # the quotient has more digits than the context holds
            units, rest = Decimal(high) + 1, Decimal(0)
        if rest:
            raise InvalidInput(f"{field} must be a multiple of {step}", field=field, reason=reason.value)
        n = int(units)
        if not low <= n <= high:
            raise InvalidInput(f"{field} is out of the market's range", field=field, reason=reason.value)
        return n
