"""Derivative orders, position executions and the other derivative rows as the service stores
and reads them, and the errors the derivatives use cases raise with their own codes.

The maths (positions, margin, triggers, funding) is in ``bourse.domain``; these are only the
shapes the repository (``ports.DerivativesRepository``) hands back and forth.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from bourse.domain.errors import BusinessRejection
from bourse.domain.orders import OrderStatus, OrderType, Side, StopStatus, TimeInForce
from bourse.domain.positions import CloseReason, MarginType
from bourse.domain.values import AccountId, AssetId, normalized

ZERO = Decimal(0)
LIVE = frozenset({OrderStatus.STARTED, OrderStatus.PLACED, OrderStatus.PARTIALLY_FILLED})


class OrderSource(StrEnum):
    """Who placed a derivative order (the v4 ``source``)."""

    MANUAL = "Manual"
    TAKE_PROFIT = "TakeProfit"
    STOP_LOSS = "StopLoss"
    TRAILING_STOP = "TrailingStop"
    STOP_OUT = "StopOut"


class DerivativeReject(StrEnum):
    """Why a derivative order was refused (``rejectDetails``); the order is stored Rejected."""

    INSUFFICIENT_MARGIN = "InsufficientMargin"
    INVALID_LEVERAGE = "InvalidLeverage"
    INVALID_QUANTITY = "InvalidQuantity"  # lots off the lot step
    AMOUNT_BELOW_MINIMUM = "AmountBelowMinimum"  # below minLotAmount
    QUOTE_AMOUNT_BELOW_MINIMUM = "QuoteAmountBelowMinimum"  # OrderBook: price x base below minQuoteAmount
    PRICE_DEVIATION = "PriceDeviation"  # OrderBook: a limit price too far from the last trade price
    AMOUNT_ABOVE_MAXIMUM = "AmountAboveMaximum"  # above maxLotAmount
    INVALID_PRICE = "InvalidPrice"  # off the tick
    INVALID_STOP_PRICE = "InvalidStopPrice"
    INVALID_EXPIRY = "InvalidExpiry"
    INVALID_TRIGGER = "InvalidTrigger"  # take profit / stop loss on the wrong side of the price
    INVALID_MARGIN_TYPE = "InvalidMarginType"  # netting: another margin type than the open position
    MARKET_HALTED = "MarketHalted"
    MARKET_CLOSE_ONLY = "MarketCloseOnly"  # only orders that reduce a position
    SESSION_CLOSED = "SessionClosed"
    PRICE_UNAVAILABLE = "PriceUnavailable"
    FOK_NOT_FILLABLE = "FokNotFillable"
    # OrderBook markets (the engine's reasons are stored as they are: PostOnlyWouldCross,
    # NoLiquidity, InvalidTimeInForce, ...).
    NO_REFERENCE_PRICE = "NoReferencePrice"  # a market buy before the book's first trade
    INVALID_TIME_IN_FORCE = "InvalidTimeInForce"  # post-only with Market, Ioc or Fok
    # the account's lots already waiting to close the position leave less than asked
    CLOSE_LOTS_TAKEN = "CloseLotsTaken"
    # A resting reduce-only close (a stop loss's limit close) whose position was closed another way.
    POSITION_CLOSED = "PositionClosed"


class DeficitKind(StrEnum):
    CLOSE = "Close"
    FUNDING = "Funding"
    SWAP = "Swap"


class ExecutionModeUnsupported(BusinessRejection):
    """The market executes on the order book, which derivatives do not support yet."""

    code = "execution_mode_unsupported"


class MarketTypeMismatch(BusinessRejection):
    """A derivative route named a Spot market, or a spot route a derivative one."""

    code = "market_type_mismatch"


class FeeAssetMismatch(BusinessRejection):
    """The commission rule charges derivative fees in another asset than the settlement asset."""

    code = "fee_asset_mismatch"


class PositionClosed(BusinessRejection):
    """The position has nothing left to close (or change)."""

    code = "position_closed"


class MarginAssetUnavailable(BusinessRejection):
    """An asset without a margin ratio cannot be selected as collateral."""

    code = "margin_asset_unavailable"


@dataclass(frozen=True, slots=True)
class TriggerRequest:
    """The take profit / stop loss asked for with an order (prices), set on the position it opens."""

    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    stop_limit_price: Decimal | None = None
    trailing: bool = False
    trailing_rate: Decimal | None = None

    @property
    def empty(self) -> bool:
        return self.take_profit is None and self.stop_loss is None


@dataclass(frozen=True, slots=True)
class DerivativeOrderRequest:
    """A new derivative order as the caller asked for it (parsed, not yet checked)."""

    market_id: str
    side: Side
    type: OrderType
    lots: Decimal
    price: Decimal | None = None
    activation_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    cancellation_date: datetime | None = None
    leverage: int | None = None
    margin_type: MarginType = MarginType.CROSS
    triggers: TriggerRequest = field(default_factory=TriggerRequest)
    client_order_id: str | None = None
    post_only: bool = False  # OrderBook markets: rest only, never take

    def fingerprint(self) -> bytes:
        """SHA-256 of what the order asks for: a repeated clientOrderId must ask for the same."""
        t = self.triggers
        parts = (
            self.market_id,
            self.side.value,
            self.type.value,
            _canon(self.lots),
            _canon(self.price),
            _canon(self.activation_price),
            self.time_in_force.value,
            "" if self.cancellation_date is None else self.cancellation_date.isoformat(),
            "" if self.leverage is None else str(self.leverage),
            self.margin_type.value,
            _canon(t.take_profit),
            _canon(t.stop_loss),
            _canon(t.stop_limit_price),
            str(t.trailing),
            _canon(t.trailing_rate),
        ) + (("postOnly",) if self.post_only else ())
        return hashlib.sha256("\x1f".join(parts).encode()).digest()


def _canon(value: Decimal | None) -> str:
    return "" if value is None else format(normalized(value), "f")


@dataclass(frozen=True, slots=True)
class DerivativeOrder:
    order_id: int
    market_id: str
    account_id: AccountId
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    lots: Decimal
    remaining_lots: Decimal
    leverage: int
    margin_type: MarginType
    status: OrderStatus
    commission_asset: AssetId
    created_at: datetime
    updated_at: datetime
    price: Decimal | None = None
    activation_price: Decimal | None = None
    position_id: str | None = None
    reduce_only: bool = False
    stop_status: StopStatus | None = None
    source: OrderSource = OrderSource.MANUAL
    reason: CloseReason = CloseReason.TRADER
    triggers: TriggerRequest = field(default_factory=TriggerRequest)
    executed_base: Decimal = ZERO
    executed_quote: Decimal = ZERO
    commission: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    reject_reason: str | None = None
    cancellation_date: datetime | None = None
    client_order_id: str | None = None
    fingerprint: bytes | None = None
    # OrderBook markets: matched by the market's engine runner (see engine/derivatives_runner.py).
    in_book: bool = False
    engine_seq: int | None = None
    post_only: bool = False
    reserve_price: Decimal | None = None  # the worst price the hold was sized for
    locked_amount: Decimal = ZERO  # the hold placed (settlement asset, available -> locked)
    locked_remaining: Decimal = ZERO  # what of it is still locked
    hold_tx_id: int | None = None
    fee_type: str | None = None  # the fee terms fixed at placement (FeeType value)
    fee_size: Decimal | None = None
    # The rule's minFeeRAT in the settlement asset at placement: the least each fill pays (None: none).
    min_fee: Decimal | None = None
    cancel_reason: str | None = None

    @property
    def is_live(self) -> bool:
        return self.status in LIVE

    @property
    def executed_lots(self) -> Decimal:
        return self.lots - self.remaining_lots

    def but(self, **changes: object) -> DerivativeOrder:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class BookOrderRequest:
    """An order for an OrderBook market's runner. ``reject``: a rule the service found broken
    (the runner stores the order Rejected with it). ``close_position_id``: a reduce-only close of
    that position (trader's close, trigger, stop-out). ``preempt``: the platform's own closes
    first cancel the account's other waiting closes of the position, so they always fit."""

    account_id: AccountId
    request: DerivativeOrderRequest
    reject: DerivativeReject | None = None
    close_position_id: str | None = None
    reason: CloseReason = CloseReason.TRADER
    source: OrderSource = OrderSource.MANUAL
    preempt: bool = False


@dataclass(frozen=True, slots=True)
class PositionExecution:
    """One (order, position) effect of a fill. ``closed_lots`` > 0: it closed that many lots of
    the position (entered at ``entry_price``); else it opened or increased the position."""

    order_id: int
    position_id: str
    account_id: AccountId
    market_id: str
    side: Side
    reason: CloseReason
    lots: Decimal
    base_amount: Decimal
    price: Decimal
    raw_price: Decimal
    markup: Decimal
    fee: Decimal
    fee_asset: AssetId
    realized_pnl: Decimal
    closed_lots: Decimal
    entry_price: Decimal
    rate_to_rat: Decimal | None
    ledger_tx_id: int
    created_at: datetime
    execution_id: int = 0  # given by the database


@dataclass(frozen=True, slots=True)
class ClosedPositionRow:
    """A close (an execution that closed lots) with its position's opening time."""

    execution: PositionExecution
    order_type: OrderType
    time_in_force: TimeInForce
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class Deficit:
    business_key: str
    account_id: AccountId
    market_id: str
    asset: AssetId
    amount: Decimal
    kind: DeficitKind
    created_at: datetime
    position_id: str | None = None
    order_id: int | None = None


@dataclass(frozen=True, slots=True)
class CollateralSeizure:
    """Another margin asset taken (available -> sys:house) towards a Cross shortfall."""

    business_key: str
    account_id: AccountId
    market_id: str
    kind: DeficitKind
    settlement_asset: AssetId
    asset: AssetId
    amount: Decimal
    rate: Decimal  # one unit of ``asset`` in the settlement asset
    value: Decimal  # amount * rate, settlement asset
    ledger_tx_id: int
    created_at: datetime
    position_id: str | None = None
    order_id: int | None = None


@dataclass(frozen=True, slots=True)
class FundingPayment:
    market_id: str
    applied_at: datetime
    position_id: str
    account_id: AccountId
    rate: Decimal
    mark: Decimal
    asset: AssetId
    amount: Decimal  # signed: > 0 the trader received it
    deficit: Decimal
    ledger_tx_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SwapPayment:
    market_id: str
    day: date
    position_id: str
    account_id: AccountId
    asset: AssetId
    amount: Decimal  # signed: > 0 the trader received it
    deficit: Decimal
    ledger_tx_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderListQuery:
    created_from: datetime | None = None
    created_to: datetime | None = None
    statuses: tuple[OrderStatus, ...] = ()
    last_order_id: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ExecutionQuery:
    """The account's executions: of these orders or positions if given, oldest first after
    ``after_id`` (or skipping ``offset``), at most ``limit``."""

    order_ids: tuple[int, ...] | None = None
    position_ids: tuple[str, ...] | None = None
    after_id: int | None = None
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ClosedPositionQuery:
    created_from: datetime | None = None
    created_to: datetime | None = None
    last_order_id: int | None = None
    limit: int = 100
