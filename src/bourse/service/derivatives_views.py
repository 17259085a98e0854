"""What the derivatives use cases take (an order preview, trigger sizes, a position's triggers)
and what they answer (orders, positions, closed positions, margin assets, a margin check).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bourse.domain.markets import Market
from bourse.domain.orders import OrderType, Side
from bourse.domain.positions import MarginType, Position
from bourse.domain.triggers import Triggers, TriggerType, TriggerValues
from bourse.domain.values import AssetId
from bourse.service.derivatives_records import ClosedPositionRow, DerivativeOrder

# --- what the use cases answer -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderView:
    order: DerivativeOrder
    market: Market | None
    realized_pnl_in_rat: Decimal | None


@dataclass(frozen=True, slots=True)
class OrderPreview:
    required_margin_in_rat: Decimal | None
    quote_amount: Decimal
    commission_in_rat: Decimal | None
    margin_level: Decimal | None
    take_profit: TriggerValues | None
    stop_loss: TriggerValues | None


@dataclass(frozen=True, slots=True)
class PositionView:
    position: Position
    market: Market
    base_amount: Decimal
    mark: Decimal | None
    unrealized_pnl: Decimal | None
    rate_to_rat: Decimal | None
    liquidation_price: Decimal | None
    margin_level: Decimal | None  # Isolated: the position's own; Cross: the account's
    triggers: Triggers | None
    maintenance_margin: Decimal | None = None  # margin * the group's stopOutLevel (open positions)


@dataclass(frozen=True, slots=True)
class ClosedPositionView:
    row: ClosedPositionRow
    market: Market | None


@dataclass(frozen=True, slots=True)
class MarginAssetView:
    asset_id: AssetId
    asset_name: str
    available: Decimal
    total: Decimal
    margin_ratio: Decimal
    is_selected: bool


@dataclass(frozen=True, slots=True)
class MarginCheck:
    """What one margin check did: the stop-out closes, whether a margin call was sent."""

    closed: list[OrderView]
    margin_call_sent: bool


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """A take profit or stop loss sized one of four ways (order-data, trigger-data)."""

    type: TriggerType
    size: Decimal
    trailing: bool = False


@dataclass(frozen=True, slots=True)
class PreviewRequest:
    market_id: str
    side: Side
    type: OrderType
    lots: Decimal
    price: Decimal | None = None
    leverage: int | None = None
    margin_type: MarginType = MarginType.CROSS
    take_profit: TriggerSpec | None = None
    stop_loss: TriggerSpec | None = None


@dataclass(frozen=True, slots=True)
class PositionTriggers:
    """What ``PUT /positions/{id}/triggers`` sets: ``take_profit`` levels ``(price, lots)``
    (lots None: the whole position), a stop loss (price; limit price; trailing with a rate)."""

    take_profit: tuple[tuple[Decimal, Decimal | None], ...] = ()
    stop_loss: Decimal | None = None
    stop_limit_price: Decimal | None = None
    trailing: bool = False
    trailing_rate: Decimal | None = None
