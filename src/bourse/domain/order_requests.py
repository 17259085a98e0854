"""A new order as a caller asks for it: parsed from a front-office body, fingerprinted for
``clientOrderId`` idempotency. Times are kept to the millisecond, as every API shows them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bourse.domain.errors import InvalidInput
from bourse.domain.orders import OrderType, Side, TimeInForce, is_stop
from bourse.domain.values import normalized, parse_decimal

MAX_CLIENT_ORDER_ID = 64
SOURCE_MANUAL = "Manual"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order as the caller asked for it (already parsed, not yet checked against the market).

    ``price`` is the limit price (Limit, StopLimit); ``stop_price`` the activation price (Stop,
    StopLimit); ``cancellation_date`` the expiry of a Gtd order, to the millisecond.
    """

    market_id: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    cancellation_date: datetime | None = None
    client_order_id: str | None = None
    source: str = SOURCE_MANUAL

    def fingerprint(self) -> bytes:
        """SHA-256 of what the order asks for: a repeated client order id must ask for the same."""
        parts = (
            self.market_id,
            self.side.value,
            self.type.value,
            _canon(self.quantity),
            _canon(self.price),
            _canon(self.stop_price),
            self.time_in_force.value,
            str(self.post_only),
            "" if self.cancellation_date is None else str(to_millis(self.cancellation_date)),
        )
        return hashlib.sha256("\x1f".join(parts).encode()).digest()


def _canon(value: Decimal | None) -> str:
    return "" if value is None else format(normalized(value), "f")


# Each enum's members by value: iterating an enum class walks its members through a generator,
# which cost more than the rest of parsing an order put together.
_MEMBERS: dict[Any, dict[object, Any]] = {}


def _enum(kind: Any, value: object, field: str) -> Any:
    members = _MEMBERS.get(kind)
    if members is None:
        members = _MEMBERS[kind] = {m.value: m for m in kind}
    try:
        return members[value]
    except (KeyError, TypeError):  # TypeError: an unhashable value (a JSON list or object)
        raise InvalidInput(
            f"{field} must be one of {', '.join(m.value for m in kind)}", field=field
        ) from None


def parse_time(value: object, field: str) -> datetime:
    """An ISO-8601 time with a zone (``Z`` or an offset), kept to the millisecond."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be an ISO-8601 time", field=field)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO-8601 time", field=field) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{field} needs a time zone (Z or an offset)", field=field)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _positive(value: object, field: str) -> Decimal:
    number = parse_decimal(value, field)
    if number <= 0:
        raise InvalidInput(f"{field} must be positive", field=field)
    return number


def parse_order_request(
    *,
    market_id: object,
    order_type: object,
    side: object,
    amount: object,
    price: object = None,
    stop_price: object = None,
    time_in_force: object = None,
    cancellation_date: object = None,
    post_only: object = False,
    client_order_id: object = None,
    stop_order: bool = False,
) -> OrderRequest:
    """An ``OrderRequest`` from a front-office body (strings). ``stop_order``: the body came to
    ``/stop-orders``, whose ``orderType`` Market/Limit means Stop/StopLimit."""
    if not isinstance(market_id, str) or not market_id:
        raise InvalidInput("marketId is required", field="marketId")
    kind: OrderType = _enum(OrderType, order_type, "orderType")
    if stop_order:
        if kind not in (OrderType.MARKET, OrderType.LIMIT):
            raise InvalidInput("a stop order's orderType is Market or Limit", field="orderType")
        kind = OrderType.STOP if kind is OrderType.MARKET else OrderType.STOP_LIMIT
        if stop_price is None:
            raise InvalidInput("activationPrice is required", field="activationPrice")
    elif is_stop(kind):
        raise InvalidInput("stop orders are placed through /stop-orders", field="orderType")
    tif: TimeInForce = (
        TimeInForce.GTC if time_in_force is None else _enum(TimeInForce, time_in_force, "timeInForce")
    )
    if not isinstance(post_only, bool):
        raise InvalidInput("postOnly must be true or false", field="postOnly")
    if client_order_id is not None and (
        not isinstance(client_order_id, str)
        or not 1 <= len(client_order_id) <= MAX_CLIENT_ORDER_ID
        or not client_order_id.isprintable()
    ):
        raise InvalidInput(
            f"clientOrderId must be 1-{MAX_CLIENT_ORDER_ID} printable characters", field="clientOrderId"
        )
    limit = None if price is None or price == "" else _positive(price, "requestedPrice")
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) and limit is None:
        raise InvalidInput("requestedPrice is required for limit orders", field="requestedPrice")
    if kind in (OrderType.MARKET, OrderType.STOP) and limit is not None:
        raise InvalidInput("a market order takes no requestedPrice", field="requestedPrice")
    expiry = (
        None
        if cancellation_date is None or cancellation_date == ""
        else parse_time(cancellation_date, "cancellationDate")
    )
    return OrderRequest(
        market_id=market_id,
        side=_enum(Side, side, "side"),
        type=kind,
        quantity=_positive(amount, "requestedAmount"),
        price=limit,
        stop_price=None if stop_price is None else _positive(stop_price, "activationPrice"),
        time_in_force=tif,
        post_only=post_only,
        cancellation_date=expiry,
        client_order_id=client_order_id,
    )


# --- time --------------------------------------------------------------------------------------


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_millis(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_millis(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)
