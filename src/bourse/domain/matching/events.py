"""What the engine says happened.

The engine emits each event as a plain tuple whose first item is its ``EventKind``
(a tuple costs a fraction of an object, and a busy book emits several per order).
Each kind has a NamedTuple with exactly that layout, so ``typed(raw)`` gives the
typed event without copying semantics, and a raw event compares equal to its
typed view. Consumers on a hot path may read raw tuples by kind; everyone else
calls ``typed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Any, NamedTuple

from bourse.domain.orders import (
    CancelReason,
    ClientOrderId,
    OrderEvent,
    OrderId,
    RejectReason,
    Side,
)
from bourse.domain.values import AccountId

RawEvent = tuple[Any, ...]
# What one command returns: a tuple on the fast paths (one allocation), else a list.
Events = Sequence[RawEvent]


class EventKind(IntEnum):
    ACCEPTED = 1
    REJECTED = 2
    PLACED = 3
    TRADE = 4
    PARTIALLY_FILLED = 5
    FILLED = 6
    CANCELLED = 7
    EXPIRED = 8
    STOP_TRIGGERED = 9
    CANCEL_REJECTED = 10


class OrderAccepted(NamedTuple):
    """Accepted and Started; a stop order now waits for activation."""

    kind: EventKind
    order_id: OrderId
    account_id: AccountId
    client_order_id: ClientOrderId | None


class OrderRejected(NamedTuple):
    kind: EventKind
    order_id: OrderId
    account_id: AccountId
    client_order_id: ClientOrderId | None
    reason: RejectReason


class OrderPlaced(NamedTuple):
    """The order's rest now sits on the book at ``price`` (ticks)."""

    kind: EventKind
    order_id: OrderId
    price: int
    open_quantity: int


class Trade(NamedTuple):
    """One fill between a resting (maker) and an incoming (taker) order, at the maker's price."""

    kind: EventKind
    seq: int  # the market's trade number, 1, 2, 3, ...
    price: int
    quantity: int
    maker_order_id: OrderId
    taker_order_id: OrderId
    maker_account_id: AccountId
    taker_account_id: AccountId
    aggressor: Side


class OrderPartiallyFilled(NamedTuple):
    kind: EventKind
    order_id: OrderId
    filled_quantity: int  # cumulative
    open_quantity: int


class OrderFilled(NamedTuple):
    kind: EventKind
    order_id: OrderId
    filled_quantity: int


class OrderCancelled(NamedTuple):
    kind: EventKind
    order_id: OrderId
    reason: CancelReason
    cancelled_quantity: int  # the open quantity that will never fill
    filled_quantity: int


class OrderExpired(NamedTuple):
    kind: EventKind
    order_id: OrderId
    cancelled_quantity: int
    filled_quantity: int


class StopTriggered(NamedTuple):
    kind: EventKind
    order_id: OrderId
    last_price: int


class CancelRejected(NamedTuple):
    kind: EventKind
    order_id: OrderId
    account_id: AccountId
    reason: RejectReason


Event = (
    OrderAccepted
    | OrderRejected
    | OrderPlaced
    | Trade
    | OrderPartiallyFilled
    | OrderFilled
    | OrderCancelled
    | OrderExpired
    | StopTriggered
    | CancelRejected
)

EVENT_TYPES: dict[EventKind, type[Event]] = {
    EventKind.ACCEPTED: OrderAccepted,
    EventKind.REJECTED: OrderRejected,
    EventKind.PLACED: OrderPlaced,
    EventKind.TRADE: Trade,
    EventKind.PARTIALLY_FILLED: OrderPartiallyFilled,
    EventKind.FILLED: OrderFilled,
    EventKind.CANCELLED: OrderCancelled,
    EventKind.EXPIRED: OrderExpired,
    EventKind.STOP_TRIGGERED: StopTriggered,
    EventKind.CANCEL_REJECTED: CancelRejected,
}

# The lifecycle meaning of each kind for the order it names (a Trade is told by the fill events).
LIFECYCLE: dict[EventKind, OrderEvent] = {
    EventKind.ACCEPTED: OrderEvent.ACCEPT,
    EventKind.REJECTED: OrderEvent.REJECT,
    EventKind.PLACED: OrderEvent.PLACE,
    EventKind.PARTIALLY_FILLED: OrderEvent.PARTIAL_FILL,
    EventKind.FILLED: OrderEvent.FILL,
    EventKind.CANCELLED: OrderEvent.CANCEL,
    EventKind.EXPIRED: OrderEvent.EXPIRE,
    EventKind.STOP_TRIGGERED: OrderEvent.TRIGGER,
}

_new = tuple.__new__


def typed(raw: RawEvent) -> Event:
    """The typed view of a raw event (same items, a NamedTuple of its kind)."""
    cls = EVENT_TYPES[raw[0]]
    if len(raw) != len(cls._fields):
        raise ValueError(f"malformed {cls.__name__} event: {raw!r}")
    event: Event = _new(cls, raw)
    return event


def typed_all(raws: Iterable[RawEvent]) -> list[Event]:
    return [typed(r) for r in raws]
