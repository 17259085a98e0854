"""Front office CFD and perpetual trading (brokerage-platform.md v4: cfd/perpetual order-data,
orders, stop-orders; positions; closed positions; account margin settings; margin levels).

Every route requires trading-ui and, where the spec sends one, the ``accountId`` header naming
one of the caller's accounts (missing: 400; anyone else's: 404). The margin assets and margin
levels routes take the header when given, else the caller's default account. Amounts are
decimal strings (a JSON number is refused), times ISO-8601 UTC with milliseconds and ``Z``.
An order the trading rules refuse is stored and answered with status Rejected and the reason
in ``rejectDetails``. docs/api/brokerage.md "CFD and perpetual trading".
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from bourse.api.common.auth import Meta, Services, require
from bourse.domain.errors import InvalidInput, NotFound
from bourse.domain.identity import Operation, Principal
from bourse.domain.markets import MarketType, iso_millis
from bourse.domain.order_requests import parse_time
from bourse.domain.orders import OrderType, Side, TimeInForce
from bourse.domain.positions import MarginType
from bourse.domain.triggers import Triggers, TriggerType, TriggerValues
from bourse.domain.values import format_decimal, parse_decimal
from bourse.service.derivatives import (
    ClosedPositionView,
    OrderView,
    PositionTriggers,
    PositionView,
    PreviewRequest,
    TriggerSpec,
)
from bourse.service.derivatives_records import (
    ClosedPositionQuery,
    DerivativeOrderRequest,
    PositionExecution,
    TriggerRequest,
)

router = APIRouter(tags=["brokerage: cfd and perpetual"])

Trader = Annotated[Principal, Depends(require(Operation.TRADING_UI))]
AccountHeader = Annotated[str | None, Header(alias="accountId")]

DEFAULT_LIMIT = 100
MAX_CLIENT_ORDER_ID = 64
PRODUCTS = {"cfd": MarketType.CFD, "perpetual": MarketType.PERPETUAL}


class _Body(BaseModel):
    # Amounts are decimal strings; a JSON number is refused rather than guessed at.
    model_config = ConfigDict(extra="ignore", strict=True)


# --- request bodies ----------------------------------------------------------------------------


class TriggerSizeIn(_Body):
    triggerType: str
    triggerSize: str


class StopLossSizeIn(TriggerSizeIn):
    isTrailing: bool = False


class OrderDataIn(_Body):
    marketId: str
    orderType: str
    side: str
    requestedPrice: str | None = None
    requestedLotAmount: str
    leverage: int | None = None
    marginType: str | None = None
    takeProfit: TriggerSizeIn | None = None
    stopLoss: StopLossSizeIn | None = None


class OrderDataRequest(_Body):
    order: OrderDataIn


class TakeProfitLevelIn(_Body):
    price: str
    lotAmount: str | None = None


class TakeProfitIn(_Body):
    price: str | None = None
    levels: list[TakeProfitLevelIn] | None = None  # extension: a ladder


class StopLossIn(_Body):
    price: str | None = None
    isTrailing: bool = False
    limitPrice: str | None = None  # extension: close with a limit order at this price
    rate: str | None = None  # extension: the trailing callback rate (0.001..0.05)


class OrderIn(_Body):
    marketId: str
    orderType: str
    side: str
    requestedPrice: str | None = None
    requestedLotAmount: str
    timeInForce: str | None = None
    cancellationDate: str | None = None
    leverage: int | None = None
    marginType: str | None = None
    clientOrderId: str | None = None
    takeProfit: TakeProfitIn | None = None
    stopLoss: StopLossIn | None = None


class OrderRequest(_Body):
    order: OrderIn


class StopOrderIn(OrderIn):
    activationPrice: str


class StopOrderRequest(_Body):
    order: StopOrderIn


class PositionExecutionsRequest(_Body):
    positionIds: list[str] | None = None
    limit: int | None = None


class OnePositionExecutionsRequest(_Body):
    limit: int | None = None
    offset: int | None = None


class CloseRequest(_Body):
    closePositionLotAmount: str | None = None


class CloseCalculationRequest(_Body):
    closePositionLotAmount: str | None = None
    closePositionLotAmountInPercent: str | None = None


class TriggersRequest(_Body):
    takeProfit: TakeProfitIn | None = None
    stopLoss: StopLossIn | None = None


class TriggerDataRequest(_Body):
    takeProfit: TriggerSizeIn | None = None
    stopLoss: StopLossSizeIn | None = None


class ClosedPositionsRequest(_Body):
    createdAtFrom: str | None = None
    createdAtTo: str | None = None
    limit: int | None = None
    lastOrderId: str | None = None


# --- parsing -----------------------------------------------------------------------------------


def _enum(kind: Any, value: object, field: str) -> Any:
    for member in kind:
        if value == member.value:
            return member
    raise InvalidInput(f"{field} must be one of {', '.join(m.value for m in kind)}", field=field)


def _positive(value: object, field: str) -> Decimal:
    number = parse_decimal(value, field)
    if number <= 0:
        raise InvalidInput(f"{field} must be positive", field=field)
    return number


def _opt_positive(value: str | None, field: str) -> Decimal | None:
    return None if value is None or value == "" else _positive(value, field)


def _product(product: str) -> MarketType:
    try:
        return PRODUCTS[product]
    except KeyError:
        raise NotFound(f"no such product {product}: cfd or perpetual", field="product") from None


def _margin_type(value: str | None) -> MarginType:
    return MarginType.CROSS if value is None else _enum(MarginType, value, "marginType")


def _trigger_spec(body: TriggerSizeIn | None, field: str) -> TriggerSpec | None:
    if body is None:
        return None
    kind: TriggerType = _enum(TriggerType, body.triggerType, f"{field}.triggerType")
    size = parse_decimal(body.triggerSize, f"{field}.triggerSize")
    return TriggerSpec(kind, size, isinstance(body, StopLossSizeIn) and body.isTrailing)


def _trigger_request(tp: TakeProfitIn | None, sl: StopLossIn | None) -> TriggerRequest:
    if tp is not None and tp.levels:
        raise InvalidInput(
            "an order takes one takeProfit price; set a ladder on the position", field="takeProfit"
        )
    return TriggerRequest(
        take_profit=None if tp is None else _opt_positive(tp.price, "takeProfit.price"),
        stop_loss=None if sl is None else _opt_positive(sl.price, "stopLoss.price"),
        stop_limit_price=None if sl is None else _opt_positive(sl.limitPrice, "stopLoss.limitPrice"),
        trailing=sl is not None and sl.isTrailing,
        trailing_rate=None if sl is None else _opt_positive(sl.rate, "stopLoss.rate"),
    )


def _order_request(o: OrderIn, *, stop: bool) -> DerivativeOrderRequest:
    kind: OrderType = _enum(OrderType, o.orderType, "orderType")
    if kind not in (OrderType.MARKET, OrderType.LIMIT):
        raise InvalidInput("orderType is Market or Limit", field="orderType")
    if stop:
        kind = OrderType.STOP if kind is OrderType.MARKET else OrderType.STOP_LIMIT
    price = _opt_positive(o.requestedPrice, "requestedPrice")
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) and price is None:
        raise InvalidInput("requestedPrice is required for limit orders", field="requestedPrice")
    if kind in (OrderType.MARKET, OrderType.STOP) and price is not None:
        raise InvalidInput("a market order takes no requestedPrice", field="requestedPrice")
    if o.clientOrderId is not None and (
        not 1 <= len(o.clientOrderId) <= MAX_CLIENT_ORDER_ID or not o.clientOrderId.isprintable()
    ):
        raise InvalidInput(
            f"clientOrderId must be 1-{MAX_CLIENT_ORDER_ID} printable characters", field="clientOrderId"
        )
    if _trailing_without_size(o.stopLoss):
        raise InvalidInput("a trailing stop needs stopLoss.price or stopLoss.rate", field="stopLoss")
    return DerivativeOrderRequest(
        market_id=o.marketId,
        side=_enum(Side, o.side, "side"),
        type=kind,
        lots=_positive(o.requestedLotAmount, "requestedLotAmount"),
        price=price,
        activation_price=_positive(o.activationPrice, "activationPrice")
        if isinstance(o, StopOrderIn)
        else None,
        time_in_force=TimeInForce.GTC
        if o.timeInForce is None
        else _enum(TimeInForce, o.timeInForce, "timeInForce"),
        cancellation_date=None
        if o.cancellationDate is None or o.cancellationDate == ""
        else parse_time(o.cancellationDate, "cancellationDate"),
        leverage=o.leverage,
        margin_type=_margin_type(o.marginType),
        triggers=_trigger_request(o.takeProfit, o.stopLoss),
        client_order_id=o.clientOrderId,
    )


def _trailing_without_size(sl: StopLossIn | None) -> bool:
    return sl is not None and sl.isTrailing and sl.price is None and sl.rate is None


def _last_order_id(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise InvalidInput("lastOrderId must be an order id", field="lastOrderId")
    return int(value)


def _limit(value: int | None) -> int:
    return DEFAULT_LIMIT if value is None else value


# --- views -------------------------------------------------------------------------------------


def _d(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def _iso(value: Any) -> str | None:
    return None if value is None else iso_millis(value)


def _rat(amount: Decimal, rate: Decimal | None) -> str | None:
    return None if rate is None else format_decimal(amount * rate)


def _average(view: OrderView) -> str | None:
    o = view.order
    if o.executed_base <= 0:
        return None
    scale = (view.market.price_scale if view.market is not None else 8) + 4
    return format_decimal(
        (o.executed_quote / o.executed_base).quantize(Decimal(1).scaleb(-scale), ROUND_HALF_EVEN)
    )


def _fill_factor(view: OrderView) -> str:
    o = view.order
    return format_decimal((o.executed_lots / o.lots).quantize(Decimal("0.00000001"), ROUND_HALF_EVEN))


def _display(view: OrderView) -> str:
    return view.market.display_name if view.market is not None else view.order.market_id


def _status(view: OrderView) -> str:
    """A waiting stop shows its stop status (as spot stop orders do)."""
    o = view.order
    return o.stop_status.value if o.stop_status is not None else o.status.value


def placed_json(view: OrderView) -> dict[str, Any]:
    body: dict[str, Any] = {"orderId": str(view.order.order_id), "status": _status(view)}
    if view.order.reject_reason is not None:
        body["rejectDetails"] = view.order.reject_reason
    return body


def order_v4_json(view: OrderView) -> dict[str, Any]:
    """The v4 order shape (``GET /v4/orders/{id}``, ``/v4/order-list``) plus ``positionId``,
    ``realizedPnlInRAT``, ``marginType`` and, for stop orders, ``activationPrice``."""
    o, m = view.order, view.market
    body: dict[str, Any] = {
        "marketId": o.market_id,
        "marketType": m.type.value if m is not None else "Cfd",
        "marketDisplayName": _display(view),
        "marketFullName": m.full_name if m is not None else o.market_id,
        "orderId": str(o.order_id),
        "timeInForce": o.time_in_force.value,
        "status": o.status.value,
        "source": o.source.value,
        "reason": o.reason.value,
        "side": o.side.value,
        "orderType": o.type.value,
        "requestedAmount": format_decimal(o.lots),
        "remainingAmount": format_decimal(o.remaining_lots),
    }
    if o.price is not None:
        body["requestedPrice"] = format_decimal(o.price)
    if o.activation_price is not None:
        body["activationPrice"] = format_decimal(o.activation_price)
    body.update(
        {
            "executionPrice": _average(view),
            "createdAt": iso_millis(o.created_at),
            "updatedAt": iso_millis(o.updated_at),
            "cancellationDate": _iso(o.cancellation_date),
            "commissionAssetId": o.commission_asset,
            "commissionAmount": format_decimal(o.commission),
            "leverage": o.leverage,
            "rejectDetails": o.reject_reason,
            "fillFactor": _fill_factor(view),
            "positionId": o.position_id,
            "realizedPnlInRAT": _d(view.realized_pnl_in_rat),
            "marginType": o.margin_type.value,
        }
    )
    if o.stop_status is not None:
        body["stopStatus"] = o.stop_status.value
    if o.client_order_id is not None:
        body["clientOrderId"] = o.client_order_id
    return body


def order_v3_json(view: OrderView) -> dict[str, Any]:
    """A derivative order in the v3 order shape (``DELETE /v3/orders/{id}``)."""
    o = view.order
    body: dict[str, Any] = {
        "marketId": o.market_id,
        "marketDisplayName": _display(view),
        "orderId": str(o.order_id),
        "orderType": o.type.value,
        "side": o.side.value,
        "status": o.status.value,
        "source": o.source.value,
        "timeInForce": o.time_in_force.value,
        "commission": format_decimal(o.commission),
        "requestedAmount": format_decimal(o.lots),
        "remainingAmount": format_decimal(o.remaining_lots),
    }
    if o.price is not None:
        body["requestedPrice"] = format_decimal(o.price)
    body.update(
        {
            "executionPrice": _average(view),
            "createdAt": iso_millis(o.created_at),
            "updatedAt": iso_millis(o.updated_at),
            "rejectDetails": o.reject_reason,
            "cancellationDate": _iso(o.cancellation_date),
            "fillFactor": _fill_factor(view),
        }
    )
    return body


def stop_order_v3_json(view: OrderView) -> dict[str, Any]:
    """A derivative stop order in the v3 stop shape (``DELETE /v3/stop-orders/{id}``)."""
    o = view.order
    body: dict[str, Any] = {
        "marketId": o.market_id,
        "marketDisplayName": _display(view),
        "orderId": str(o.order_id),
        "orderType": (OrderType.MARKET if o.type is OrderType.STOP else OrderType.LIMIT).value,
        "side": o.side.value,
    }
    if o.price is not None:
        body["requestedPrice"] = format_decimal(o.price)
    body.update(
        {
            "activationPrice": _d(o.activation_price),
            "requestedAmount": format_decimal(o.lots),
            "timeInForce": o.time_in_force.value,
            "status": _status(view),
            "createdAt": iso_millis(o.created_at),
            "updatedAt": iso_millis(o.updated_at),
            "cancellationDate": _iso(o.cancellation_date),
        }
    )
    return body


def execution_json(e: PositionExecution, *, with_pnl: bool) -> dict[str, Any]:
    """One fill of a position; ``with_pnl``: the order executions' shape (``realizedPnlInRAT``)."""
    body: dict[str, Any] = {
        "positionId": e.position_id,
        "orderId": str(e.order_id),
        "side": e.side.value,
        "reason": e.reason.value,
        "createdAt": iso_millis(e.created_at),
        "executionId": str(e.execution_id),
        "baseAmount": format_decimal(e.base_amount),
        "executionPrice": format_decimal(e.price),
    }
    if with_pnl:
        body["realizedPnlInRAT"] = _rat(e.realized_pnl, e.rate_to_rat)
    body["commissionAmountInRAT"] = _rat(e.fee, e.rate_to_rat)
    body["commissions"] = [{"assetId": e.fee_asset, "amount": format_decimal(e.fee)}]
    return body


def _values(v: TriggerValues | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {
        "price": format_decimal(v.price),
        "rate": format_decimal(v.rate),
        "points": v.points,
        "pnl": format_decimal(v.pnl),
    }


def _triggers_json(
    t: Triggers | None,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
    if t is None:
        return None, [], None
    levels = [
        {"price": format_decimal(lv.price), "lotAmount": format_decimal(lv.lots), "isDone": lv.done}
        for lv in t.take_profit
    ]
    pending = next((lv for lv in t.take_profit if not lv.done), None)
    tp = None if pending is None else {"price": format_decimal(pending.price)}
    sl = t.stop_loss
    sl_json = (
        None
        if sl is None
        else {
            "price": format_decimal(sl.price),
            "isTrailing": sl.is_trailing,
            "limitPrice": _d(sl.limit_price),
            "rate": _d(sl.trailing_rate),
        }
    )
    return tp, levels, sl_json


def position_json(v: PositionView) -> dict[str, Any]:
    p, m = v.position, v.market
    tp, levels, sl = _triggers_json(v.triggers)
    return {
        "positionId": p.position_id,
        "marketId": p.market_id,
        "marketType": m.type.value,
        "marketDisplayName": m.display_name,
        "marketFullName": m.full_name,
        "status": "Open" if p.is_open else "Closed",
        "side": p.side.value,
        "lotAmount": format_decimal(p.lots),
        "baseAmount": format_decimal(v.base_amount),
        "entryPrice": format_decimal(p.entry_price),
        "markPrice": _d(v.mark),
        "leverage": p.leverage,
        "marginType": p.margin_type.value,
        "settlementAssetId": m.quote_asset,
        "margin": format_decimal(p.margin),
        "marginInRAT": _rat(p.margin, v.rate_to_rat),
        "maintenanceMargin": _d(v.maintenance_margin),
        "unrealizedPnl": _d(v.unrealized_pnl),
        "unrealizedPnlInRAT": None if v.unrealized_pnl is None else _rat(v.unrealized_pnl, v.rate_to_rat),
        "realizedPnl": format_decimal(p.realized_pnl),
        "realizedPnlInRAT": _rat(p.realized_pnl, v.rate_to_rat),
        "liquidationPrice": _d(v.liquidation_price),
        "marginLevel": _d(v.margin_level),
        "takeProfit": tp,
        "takeProfitLevels": levels,
        "stopLoss": sl,
        "openedAt": iso_millis(p.opened_at),
        "updatedAt": iso_millis(p.updated_at),
        "closedAt": _iso(p.closed_at),
    }


def closed_position_json(v: ClosedPositionView) -> dict[str, Any]:
    e, m = v.row.execution, v.market
    rate = e.rate_to_rat
    return {
        "marketId": e.market_id,
        "marketFullName": m.full_name if m is not None else e.market_id,
        "marketDisplayName": m.display_name if m is not None else e.market_id,
        "marketType": m.type.value if m is not None else "Cfd",
        "orderId": str(e.order_id),
        "orderType": v.row.order_type.value,
        "timeInForce": v.row.time_in_force.value,
        "side": e.side.value,
        "positionCloseLotAmount": format_decimal(e.closed_lots),
        "reason": e.reason.value,
        "realizedPnlInRAT": _rat(e.realized_pnl, rate),
        "closedAt": iso_millis(e.created_at),
        "positionId": e.position_id,
        "openPrice": format_decimal(e.entry_price),
        "closePrice": format_decimal(e.price),
        "positionPriceInRAT": _rat(e.price * e.base_amount, rate),
        "rateToRAT": _d(rate),
        "openedAt": iso_millis(v.row.opened_at),
    }


# --- orders ------------------------------------------------------------------------------------


@router.post("/frontoffice/api/{product}/v4/order-data")
async def order_data(
    product: str,
    body: OrderDataRequest,
    principal: Trader,
    services: Services,
    account_id: AccountHeader = None,
) -> JSONResponse:
    o = body.order
    kind: OrderType = _enum(OrderType, o.orderType, "orderType")
    price = _opt_positive(o.requestedPrice, "requestedPrice")
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) and price is None:
        raise InvalidInput("requestedPrice is required for limit orders", field="requestedPrice")
    request = PreviewRequest(
        market_id=o.marketId,
        side=_enum(Side, o.side, "side"),
        type=kind,
        lots=_positive(o.requestedLotAmount, "requestedLotAmount"),
        price=price if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.STOP) else None,
        leverage=o.leverage,
        margin_type=_margin_type(o.marginType),
        take_profit=_trigger_spec(o.takeProfit, "takeProfit"),
        stop_loss=_trigger_spec(o.stopLoss, "stopLoss"),
    )
    preview = await services.derivatives.preview(principal, account_id, _product(product), request)
    return JSONResponse(
        {
            "order": {
                "requiredMarginInRAT": _d(preview.required_margin_in_rat),
                "quoteAmount": format_decimal(preview.quote_amount),
                "commissionAmountInRAT": _d(preview.commission_in_rat),
                "marginLevel": _d(preview.margin_level),
                "takeProfit": _values(preview.take_profit),
                "stopLoss": _values(preview.stop_loss),
            }
        }
    )


@router.post("/frontoffice/api/{product}/v4/orders")
async def place_order(
    product: str,
    body: OrderRequest,
    principal: Trader,
    services: Services,
    meta: Meta,
    account_id: AccountHeader = None,
) -> JSONResponse:
    kind = _product(product)
    view = await services.derivatives.place(
        principal, account_id, kind, _order_request(body.order, stop=False), meta
    )
    return JSONResponse({"order": placed_json(view)})


@router.post("/frontoffice/api/{product}/v4/stop-orders")
async def place_stop_order(
    product: str,
    body: StopOrderRequest,
    principal: Trader,
    services: Services,
    meta: Meta,
    account_id: AccountHeader = None,
) -> JSONResponse:
    kind = _product(product)
    view = await services.derivatives.place(
        principal, account_id, kind, _order_request(body.order, stop=True), meta
    )
    return JSONResponse({"order": placed_json(view)})


@router.post("/frontoffice/api/v4/orders/closed-positions")
async def closed_positions(
    body: ClosedPositionsRequest, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    query = ClosedPositionQuery(
        created_from=None if body.createdAtFrom is None else parse_time(body.createdAtFrom, "createdAtFrom"),
        created_to=None if body.createdAtTo is None else parse_time(body.createdAtTo, "createdAtTo"),
        last_order_id=_last_order_id(body.lastOrderId),
        limit=_limit(body.limit),
    )
    rows, exceeded = await services.derivatives.closed_positions(principal, account_id, query)
    return JSONResponse({"data": [closed_position_json(r) for r in rows], "isExceeded": exceeded})


# --- positions ---------------------------------------------------------------------------------


@router.get("/frontoffice/api/v4/positions")
async def list_positions(
    principal: Trader,
    services: Services,
    account_id: AccountHeader = None,
    status: Annotated[str, Query()] = "Open",
    lastPositionId: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query()] = DEFAULT_LIMIT,
) -> JSONResponse:
    if status not in ("Open", "All"):
        raise InvalidInput("status is Open or All", field="status")
    views = await services.derivatives.positions(
        principal, account_id, open_only=status == "Open", last_position_id=lastPositionId, limit=limit
    )
    return JSONResponse({"positions": [position_json(v) for v in views]})


@router.get("/frontoffice/api/v4/positions/{positionId}")
async def get_position(
    positionId: str, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    view = await services.derivatives.position(principal, account_id, positionId)
    return JSONResponse({"position": position_json(view)})


@router.post("/frontoffice/api/v4/positions/executions/list")
async def position_executions(
    body: PositionExecutionsRequest, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    rows = await services.derivatives.position_executions(
        principal, account_id, position_ids=body.positionIds, limit=_limit(body.limit)
    )
    return JSONResponse({"executions": [execution_json(e, with_pnl=False) for e in rows]})


@router.post("/frontoffice/api/v4/positions/{positionId}/executions/list")
async def one_position_executions(
    positionId: str,
    body: OnePositionExecutionsRequest,
    principal: Trader,
    services: Services,
    account_id: AccountHeader = None,
) -> JSONResponse:
    rows = await services.derivatives.position_executions(
        principal, account_id, position_id=positionId, limit=_limit(body.limit), offset=body.offset or 0
    )
    return JSONResponse({"executions": [execution_json(e, with_pnl=False) for e in rows]})


@router.post("/frontoffice/api/v4/positions/{positionId}/close")
async def close_position(
    positionId: str,
    body: CloseRequest,
    principal: Trader,
    services: Services,
    meta: Meta,
    account_id: AccountHeader = None,
) -> JSONResponse:
    lots = _opt_positive(body.closePositionLotAmount, "closePositionLotAmount")
    view = await services.derivatives.close(principal, account_id, positionId, lots, meta)
    return JSONResponse({"positionId": positionId, "orderId": str(view.order.order_id)})


@router.post("/frontoffice/api/v4/positions/{positionId}/close/calculation")
async def close_calculation(
    positionId: str,
    body: CloseCalculationRequest,
    principal: Trader,
    services: Services,
    account_id: AccountHeader = None,
) -> JSONResponse:
    lots, percent = await services.derivatives.close_calculation(
        principal,
        account_id,
        positionId,
        _opt_positive(body.closePositionLotAmount, "closePositionLotAmount"),
        _opt_positive(body.closePositionLotAmountInPercent, "closePositionLotAmountInPercent"),
    )
    return JSONResponse(
        {
            "closePositionLotAmount": format_decimal(lots),
            "closePositionLotAmountInPercent": format_decimal(percent),
        }
    )


@router.put("/frontoffice/api/v4/positions/{positionId}/triggers")
async def set_triggers(
    positionId: str,
    body: TriggersRequest,
    principal: Trader,
    services: Services,
    meta: Meta,
    account_id: AccountHeader = None,
) -> JSONResponse:
    tp, sl = body.takeProfit, body.stopLoss
    levels: list[tuple[Decimal, Decimal | None]] = []
    if tp is not None:
        if tp.levels:
            if tp.price is not None:
                raise InvalidInput("give takeProfit.price or takeProfit.levels, not both", field="takeProfit")
            levels = [
                (
                    _positive(lv.price, "takeProfit.levels.price"),
                    _opt_positive(lv.lotAmount, "takeProfit.levels.lotAmount"),
                )
                for lv in tp.levels
            ]
        elif tp.price is not None:
            levels = [(_positive(tp.price, "takeProfit.price"), None)]
    wanted = PositionTriggers(
        take_profit=tuple(levels),
        stop_loss=None if sl is None else _opt_positive(sl.price, "stopLoss.price"),
        stop_limit_price=None if sl is None else _opt_positive(sl.limitPrice, "stopLoss.limitPrice"),
        trailing=sl is not None and sl.isTrailing,
        trailing_rate=None if sl is None else _opt_positive(sl.rate, "stopLoss.rate"),
    )
    if sl is not None and not sl.isTrailing and wanted.stop_loss is None:
        raise InvalidInput("stopLoss.price is required", field="stopLoss.price")
    await services.derivatives.set_triggers(principal, account_id, positionId, wanted, meta)
    return JSONResponse({"positionId": positionId})


@router.post("/frontoffice/api/v4/positions/{positionId}/trigger-data")
async def trigger_data(
    positionId: str,
    body: TriggerDataRequest,
    principal: Trader,
    services: Services,
    account_id: AccountHeader = None,
) -> JSONResponse:
    tp, sl = await services.derivatives.trigger_data(
        principal,
        account_id,
        positionId,
        _trigger_spec(body.takeProfit, "takeProfit"),
        _trigger_spec(body.stopLoss, "stopLoss"),
    )
    return JSONResponse({"takeProfit": _values(tp), "stopLoss": _values(sl)})


# --- margin ------------------------------------------------------------------------------------


@router.get("/frontoffice/api/v4/account-margin-settings/assets")
async def margin_assets(
    principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    views = await services.derivatives.margin_assets(principal, account_id)
    return JSONResponse(
        {
            "assets": [
                {
                    "assetId": v.asset_id,
                    "assetName": v.asset_name,
                    "available": format_decimal(v.available),
                    "total": format_decimal(v.total),
                    "marginRatio": format_decimal(v.margin_ratio),
                    "isSelected": v.is_selected,
                }
                for v in views
            ]
        }
    )


@router.post("/frontoffice/api/v4/account-margin-settings/assets/{assetId}")
async def select_margin_asset(
    assetId: str, principal: Trader, services: Services, meta: Meta, account_id: AccountHeader = None
) -> JSONResponse:
    await services.derivatives.select_margin_asset(principal, account_id, assetId, True, meta)
    return JSONResponse({})


@router.delete("/frontoffice/api/v4/account-margin-settings/assets/{assetId}")
async def unselect_margin_asset(
    assetId: str, principal: Trader, services: Services, meta: Meta, account_id: AccountHeader = None
) -> JSONResponse:
    await services.derivatives.select_margin_asset(principal, account_id, assetId, False, meta)
    return JSONResponse({})


@router.get("/frontoffice/api/v3/margin-levels")
async def margin_levels(
    principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    lv = await services.derivatives.margin_levels(principal, account_id)
    return JSONResponse(
        {"marginCallLevel": format_decimal(lv.margin_call), "stopOutLevel": format_decimal(lv.stop_out)}
    )
