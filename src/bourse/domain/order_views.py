"""Orders and executions in the brokerage front office's JSON shapes (v3 and v4).

They live in the domain, not in ``api/brokerage``, because the engine runner
publishes the v3 order shape on the bus (``orders.<accountId>``) after each
commit, and the WebSocket relays it as is. Amounts are strings, times ISO-8601
with milliseconds and ``Z``. ``requestedPrice`` is absent for market and
stop-market orders; ``executionPrice`` (the average fill price) is null until
the first fill; ``fillFactor`` is executed / requested. ``clientOrderId`` (a
bourse extension) appears only on orders that were given one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from bourse.domain.markets import Market
from bourse.domain.orders import OrderType, Side
from bourse.domain.trading import Order
from bourse.domain.values import AccountId, AssetId, format_decimal

REASON_TRADER = "Trader"
_FACTOR = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class Execution:
    """One order's side of one fill, as stored."""

    execution_id: int
    order_id: int
    account_id: AccountId
    market_id: str
    trade_id: int
    side: Side
    price: Decimal
    amount: Decimal
    quote_amount: Decimal
    commission: Decimal
    commission_asset: AssetId
    is_maker: bool
    created_at: datetime


@functools.lru_cache(maxsize=1024)
def iso_millis(moment: datetime) -> str:
    # isoformat truncates to milliseconds as the old strftime + microsecond // 1000 did, in half the
    # time (two per order answer); its "+00:00" becomes "Z". Cached (2 us -> 0.15): the orders of
    # one engine batch share its timestamp, and equal instants give the same text in any zone.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_millis(moment)


def fill_factor(order: Order) -> str:
    return format_decimal((order.executed / order.quantity).quantize(_FACTOR, ROUND_HALF_EVEN))


def execution_price(order: Order, market: Market | None) -> str | None:
    scale = (market.price_scale if market is not None else 8) + 4
    average = order.average_price(scale)
    return None if average is None else format_decimal(average)


def _display_name(order: Order, market: Market | None) -> str:
    return market.display_name if market is not None else order.market_id


def order_v3(order: Order, market: Market | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "marketId": order.market_id,
        "marketDisplayName": _display_name(order, market),
        "orderId": str(order.order_id),
        "orderType": order.type.value,
        "side": order.side.value,
        "status": order.status.value,
        "source": order.source,
        "timeInForce": order.time_in_force.value,
        "commission": format_decimal(order.commission),
        "requestedAmount": format_decimal(order.quantity),
        "remainingAmount": format_decimal(order.remaining),
    }
    if order.price is not None:
        view["requestedPrice"] = format_decimal(order.price)
    view.update(
        {
            "executionPrice": execution_price(order, market),
            "createdAt": iso_millis(order.created_at),
            "updatedAt": iso_millis(order.updated_at),
            "rejectDetails": order.reject_reason,
            "cancellationDate": _iso(order.cancellation_date),
            "fillFactor": fill_factor(order),
        }
    )
    if order.client_order_id is not None:
        view["clientOrderId"] = order.client_order_id
    return view


def stop_order_v3(order: Order, market: Market | None) -> dict[str, Any]:
    """The /stop-orders shape: ``orderType`` as requested there (Market or Limit), ``status`` the
    stop's own (WaitingForActivation, Activated, Cancelled); a stop refused on arrival shows
    Rejected and its ``rejectDetails``."""
    view: dict[str, Any] = {
        "marketId": order.market_id,
        "marketDisplayName": _display_name(order, market),
        "orderId": str(order.order_id),
        "orderType": (OrderType.MARKET if order.type is OrderType.STOP else OrderType.LIMIT).value,
        "side": order.side.value,
    }
    if order.price is not None:
        view["requestedPrice"] = format_decimal(order.price)
    view.update(
        {
            "activationPrice": None if order.stop_price is None else format_decimal(order.stop_price),
            "requestedAmount": format_decimal(order.quantity),
            "timeInForce": order.time_in_force.value,
            # A stop refused on arrival never waited: its status is the order's (Rejected).
            "status": order.status.value if order.stop_status is None else order.stop_status.value,
            "createdAt": iso_millis(order.created_at),
            "updatedAt": iso_millis(order.updated_at),
            "cancellationDate": _iso(order.cancellation_date),
        }
    )
    if order.reject_reason is not None:
        view["rejectDetails"] = order.reject_reason
    if order.client_order_id is not None:
        view["clientOrderId"] = order.client_order_id
    return view


def order_v4(order: Order, market: Market | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "marketId": order.market_id,
        "marketType": market.type.value if market is not None else "Spot",
        "marketDisplayName": _display_name(order, market),
        "marketFullName": market.full_name if market is not None else order.market_id,
        "orderId": str(order.order_id),
        "timeInForce": order.time_in_force.value,
        "status": order.status.value,
        "source": order.source,
        "reason": REASON_TRADER,
        "side": order.side.value,
        "orderType": order.type.value,
        "requestedAmount": format_decimal(order.quantity),
        "remainingAmount": format_decimal(order.remaining),
    }
    if order.price is not None:
        view["requestedPrice"] = format_decimal(order.price)
    view.update(
        {
            "executionPrice": execution_price(order, market),
            "createdAt": iso_millis(order.created_at),
            "updatedAt": iso_millis(order.updated_at),
            "cancellationDate": _iso(order.cancellation_date),
            "commissionAssetId": order.commission_asset,
            "commissionAmount": format_decimal(order.commission),
            "leverage": 1,
            "rejectDetails": order.reject_reason,
            "fillFactor": fill_factor(order),
        }
    )
    if order.client_order_id is not None:
        view["clientOrderId"] = order.client_order_id
    return view


def execution_v4(execution: Execution, commission_in_rat: Decimal | None) -> dict[str, Any]:
    """Spot has no positions: ``positionId`` is null and ``realizedPnlInRAT`` is 0.
    ``commissionAmountInRAT`` is null when the commission asset has no price in the root asset."""
    return {
        "positionId": None,
        "orderId": str(execution.order_id),
        "side": execution.side.value,
        "reason": REASON_TRADER,
        "createdAt": iso_millis(execution.created_at),
        "executionId": str(execution.execution_id),
        "baseAmount": format_decimal(execution.amount),
        "executionPrice": format_decimal(execution.price),
        "realizedPnlInRAT": "0",
        "commissionAmountInRAT": None if commission_in_rat is None else format_decimal(commission_in_rat),
        "commissions": [
            {"assetId": execution.commission_asset, "amount": format_decimal(execution.commission)}
        ],
    }
