"""Small builders and readers for matching tests."""

from __future__ import annotations

from collections.abc import Iterable

from bourse.domain.matching import CancelOrder, MatchingEngine, PlaceOrder, RawEvent, typed
from bourse.domain.matching.commands import GTC_LIMIT, OrderTerms
from bourse.domain.matching.events import LIFECYCLE, EventKind, Trade
from bourse.domain.orders import (
    ClientOrderId,
    OrderId,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    StopStatus,
    TimeInForce,
    stop_transition,
    transition,
)
from bourse.domain.values import AccountId

BUY, SELL = Side.BUY, Side.SELL


def order(
    oid: int,
    side: Side,
    qty: int,
    price: int | None = None,
    account: str | None = None,
    *,
    order_type: OrderType = OrderType.LIMIT,
    tif: TimeInForce = TimeInForce.GTC,
    post_only: bool = False,
    stop_price: int | None = None,
    expire_at: int | None = None,
    stp: SelfTradePrevention | None = None,
    client_id: str | None = None,
    slow: bool = False,
) -> PlaceOrder:
    """An order; ``slow`` passes equal terms that are not GTC_LIMIT itself, so the engine takes
    its general path for a plain Gtc limit order (both paths must behave the same)."""
    terms = OrderTerms(order_type, tif, post_only, stop_price, expire_at, stp)
    if terms == GTC_LIMIT and not slow:
        terms = GTC_LIMIT  # the very object: the engine's fast path
    return PlaceOrder(
        OrderId(oid),
        AccountId(account or f"acct-{oid}"),
        side,
        qty,
        price,
        None if client_id is None else ClientOrderId(client_id),
        terms,
    )


def cancel(oid: int, account: str | None = None) -> CancelOrder:
    return CancelOrder(OrderId(oid), AccountId(account or f"acct-{oid}"))


def kinds(events: Iterable[RawEvent]) -> list[EventKind]:
    return [e[0] for e in events]


def trades(events: Iterable[RawEvent]) -> list[Trade]:
    return [t for t in (typed(e) for e in events) if isinstance(t, Trade)]


def fills(events: Iterable[RawEvent]) -> list[tuple[int, int, int, int]]:
    """(maker, taker, quantity, price) of each trade, in order."""
    return [(t.maker_order_id, t.taker_order_id, t.quantity, t.price) for t in trades(events)]


def of_kind(events: Iterable[RawEvent], kind: EventKind) -> list[RawEvent]:
    return [e for e in events if e[0] is kind]


def book(engine: MatchingEngine) -> dict[str, list[tuple[int, int, int]]]:
    """Resting orders as (price, order id, open quantity), bids best first then asks best first."""
    state = engine.state()
    return {
        "bids": [(o.price, o.order_id, o.open_quantity) for o in state.orders if o.side is BUY],
        "asks": [(o.price, o.order_id, o.open_quantity) for o in state.orders if o.side is SELL],
    }


class Lifecycle:
    """Folds engine events through the order transition tables, as the order store will."""

    def __init__(self) -> None:
        self.status: dict[int, OrderStatus] = {}
        self.stop_status: dict[int, StopStatus] = {}
        self.stops: set[int] = set()

    def submit(self, cmd: PlaceOrder) -> None:
        if cmd.terms.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
            self.stops.add(cmd.order_id)

    def apply(self, events: Iterable[RawEvent]) -> None:
        for e in events:
            event = LIFECYCLE.get(e[0])
            if event is None:
                continue
            oid = e[1]
            self.status[oid] = transition(self.status.get(oid), event)
            waiting = self.stop_status.get(oid)
            if oid in self.stops and (waiting is None or waiting is StopStatus.WAITING_FOR_ACTIVATION):
                if e[0] is EventKind.REJECTED and waiting is None:
                    continue  # refused before it ever waited
                self.stop_status[oid] = stop_transition(waiting, event)
