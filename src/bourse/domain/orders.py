"""The order model: enums shared by every dialect and the one lifecycle transition table.

An order's status only ever changes through ``ORDER_TRANSITIONS``; a stop order
additionally walks ``STOP_TRANSITIONS`` until it is activated. The matching engine
emits events (``bourse.domain.matching.events``) whose lifecycle meaning is an
``OrderEvent``; whoever stores orders folds those events through ``transition`` /
``stop_transition``, so an engine bug that emits an impossible sequence fails fast
as an ``InvariantViolation`` instead of corrupting an order.

    (new) --Accept--> Started --Place--------> Placed
    (new) --Reject--> Rejected  Started --Trigger--> Started        (stop activated)
    Started/Placed/PartiallyFilled --PartialFill--> PartiallyFilled --Place--> PartiallyFilled
    Started/Placed/PartiallyFilled --Fill--> Filled
    Started/Placed/PartiallyFilled --Cancel--> Cancelled, --Expire--> Expired
    Started --Reject--> Rejected                                     (a stop whose activation is refused)
    Filled, Cancelled, Rejected, Expired are final.

    stop orders: (new) --Accept--> WaitingForActivation --Trigger--> Activated
                 WaitingForActivation --Cancel/Expire--> Cancelled
"""

from __future__ import annotations

from enum import Enum, StrEnum
from types import MappingProxyType
from typing import NewType

from bourse.domain.errors import InvariantViolation

OrderId = NewType("OrderId", int)
ClientOrderId = NewType("ClientOrderId", str)


class Side(StrEnum):
    BUY = "Buy"
    SELL = "Sell"


class OrderType(StrEnum):
    MARKET = "Market"
    LIMIT = "Limit"
    STOP = "Stop"  # stop-market: becomes a market order when triggered
    STOP_LIMIT = "StopLimit"  # becomes a limit order when triggered


class TimeInForce(StrEnum):
    GTC = "Gtc"  # good till cancelled
    IOC = "Ioc"  # fill what crosses now, cancel the rest
    FOK = "Fok"  # fill all of it now or reject it, never a partial fill
    GTD = "Gtd"  # good till the expiry time of the order


class OrderStatus(StrEnum):
    STARTED = "Started"  # accepted, not yet on the book (a waiting stop stays here)
    PLACED = "Placed"
    PARTIALLY_FILLED = "PartiallyFilled"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    EXPIRED = "Expired"


class StopStatus(StrEnum):
    WAITING_FOR_ACTIVATION = "WaitingForActivation"
    ACTIVATED = "Activated"
    CANCELLED = "Cancelled"


class OrderEvent(Enum):
    """What happened to an order, as far as its lifecycle is concerned."""

    ACCEPT = "accept"
    REJECT = "reject"
    PLACE = "place"
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    CANCEL = "cancel"
    EXPIRE = "expire"
    TRIGGER = "trigger"


class RejectReason(StrEnum):
    """Why an order or a cancel was refused; rejections are values, not exceptions."""

    MARKET_HALTED = "MarketHalted"
    MARKET_CLOSE_ONLY = "MarketCloseOnly"
    INVALID_PRICE = "InvalidPrice"
    INVALID_QUANTITY = "InvalidQuantity"
    INVALID_STOP_PRICE = "InvalidStopPrice"
    INVALID_EXPIRY = "InvalidExpiry"
    INVALID_TIME_IN_FORCE = "InvalidTimeInForce"
    POST_ONLY_WOULD_CROSS = "PostOnlyWouldCross"
    FOK_NOT_FILLABLE = "FokNotFillable"
    NO_LIQUIDITY = "NoLiquidity"
    DUPLICATE_ORDER_ID = "DuplicateOrderId"
    DUPLICATE_CLIENT_ORDER_ID = "DuplicateClientOrderId"
    UNKNOWN_ORDER = "UnknownOrder"
    # Checked before an order reaches the engine (bourse.domain.trading.check_order, the runner).
    INSUFFICIENT_FUNDS = "InsufficientFunds"
    AMOUNT_BELOW_MINIMUM = "AmountBelowMinimum"
    AMOUNT_ABOVE_MAXIMUM = "AmountAboveMaximum"
    QUOTE_AMOUNT_BELOW_MINIMUM = "QuoteAmountBelowMinimum"
    PRICE_DEVIATION = "PriceDeviation"  # a limit or stop price too far from the last price
    SESSION_CLOSED = "SessionClosed"  # outside the market's trading calendar
    NO_REFERENCE_PRICE = "NoReferencePrice"  # a market buy before the market's first trade


class CancelReason(StrEnum):
    """Why an accepted order stopped short of a full fill."""

    REQUESTED = "Requested"  # the owner (or an operator) cancelled it
    SELF_TRADE_PREVENTION = "SelfTradePrevention"
    IOC_REMAINDER = "IocRemainder"  # an Ioc order's unfilled rest
    PRICE_BAND = "PriceBand"  # a market order's rest beyond last * (1 +- band)
    NO_LIQUIDITY = "NoLiquidity"  # a market order's rest after the book ran out


class SelfTradePrevention(StrEnum):
    """What happens when an order would trade with a resting order of the same account."""

    NONE = "None"  # let it trade (only for markets that allow wash trades, and for tests)
    CANCEL_NEWEST = "CancelNewest"  # cancel the incoming order's rest (default)
    CANCEL_OLDEST = "CancelOldest"  # cancel the resting order, keep matching
    CANCEL_BOTH = "CancelBoth"


_LIVE = (OrderStatus.STARTED, OrderStatus.PLACED, OrderStatus.PARTIALLY_FILLED)

ORDER_TRANSITIONS: MappingProxyType[tuple[OrderStatus | None, OrderEvent], OrderStatus] = MappingProxyType(
    {
        (None, OrderEvent.ACCEPT): OrderStatus.STARTED,
        (None, OrderEvent.REJECT): OrderStatus.REJECTED,
        (OrderStatus.STARTED, OrderEvent.TRIGGER): OrderStatus.STARTED,
        (OrderStatus.STARTED, OrderEvent.REJECT): OrderStatus.REJECTED,
        (OrderStatus.STARTED, OrderEvent.PLACE): OrderStatus.PLACED,
        (OrderStatus.PARTIALLY_FILLED, OrderEvent.PLACE): OrderStatus.PARTIALLY_FILLED,
        **{(s, OrderEvent.PARTIAL_FILL): OrderStatus.PARTIALLY_FILLED for s in _LIVE},
        **{(s, OrderEvent.FILL): OrderStatus.FILLED for s in _LIVE},
        **{(s, OrderEvent.CANCEL): OrderStatus.CANCELLED for s in _LIVE},
        **{(s, OrderEvent.EXPIRE): OrderStatus.EXPIRED for s in _LIVE},
    }
)

STOP_TRANSITIONS: MappingProxyType[tuple[StopStatus | None, OrderEvent], StopStatus] = MappingProxyType(
    {
        (None, OrderEvent.ACCEPT): StopStatus.WAITING_FOR_ACTIVATION,
        (StopStatus.WAITING_FOR_ACTIVATION, OrderEvent.TRIGGER): StopStatus.ACTIVATED,
        (StopStatus.WAITING_FOR_ACTIVATION, OrderEvent.CANCEL): StopStatus.CANCELLED,
        (StopStatus.WAITING_FOR_ACTIVATION, OrderEvent.EXPIRE): StopStatus.CANCELLED,
    }
)

FINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


def transition(status: OrderStatus | None, event: OrderEvent) -> OrderStatus:
    """The status after ``event``; ``None`` is an order not yet seen. Illegal moves are bugs."""
    try:
        return ORDER_TRANSITIONS[(status, event)]
    except KeyError:
        raise InvariantViolation(
            f"illegal order transition {status} --{event.value}-->", status=status, event=event.value
        ) from None


def stop_transition(status: StopStatus | None, event: OrderEvent) -> StopStatus:
    """The stop status after ``event``; once activated a stop order follows ``transition`` only."""
    try:
        return STOP_TRANSITIONS[(status, event)]
    except KeyError:
        raise InvariantViolation(
            f"illegal stop transition {status} --{event.value}-->", status=status, event=event.value
        ) from None


def is_stop(order_type: OrderType) -> bool:
    return order_type is OrderType.STOP or order_type is OrderType.STOP_LIMIT
