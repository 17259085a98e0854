"""What the engine is asked to do. Prices and quantities are already ticks and lots (see spec.py)."""

from __future__ import annotations

from typing import NamedTuple

from bourse.domain.orders import (
    ClientOrderId,
    OrderId,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from bourse.domain.values import AccountId


class OrderTerms(NamedTuple):
    """How an order trades, beyond side, quantity and price.

    ``stop_price`` is the trigger of Stop and StopLimit orders; ``expire_at`` (epoch
    ms) is required for Gtd and refused otherwise; ``stp`` overrides the market's
    self-trade prevention for this order as the incoming side. Market orders never
    rest: Gtc, Gtd and Ioc all mean "fill within the price band now, cancel the
    rest"; Fok means "all of it within the band, or nothing".
    """

    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    stop_price: int | None = None
    expire_at: int | None = None
    stp: SelfTradePrevention | None = None


# The terms of most orders; passing this very object lets the engine take its fast path.
GTC_LIMIT = OrderTerms()


class PlaceOrder(NamedTuple):
    """Place an order. ``order_id`` is assigned by the caller and unique per market.

    ``price`` is the limit price of Limit and StopLimit orders and must be None for
    Market and Stop orders. A plain Gtc limit order needs no ``terms``.
    """

    order_id: OrderId
    account_id: AccountId
    side: Side
    quantity: int
    price: int | None = None
    client_order_id: ClientOrderId | None = None
    terms: OrderTerms = GTC_LIMIT


class CancelOrder(NamedTuple):
    """Cancel a live order or a waiting stop of ``account_id``; anyone else's order is unknown."""

    order_id: OrderId
    account_id: AccountId
